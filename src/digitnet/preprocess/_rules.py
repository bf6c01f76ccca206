"""Printed ruling taken out of the ink: the box of a form's cell, grid paper, ruled lines.

A digit written in a form's box, on squared or on ruled paper shares its ink mask with lines
that run across the whole image; segmentation then reads the box as a 0 and the grid as 8s.
Lines are found as bands of rows (or columns) whose ink crosses at least _SPAN of the image,
each band thin (at most _THICK of the image's other side). They are removed only where the
pattern is unmistakably ruling: two or more such bands in each direction (a box, a grid) or
three or more parallel ones (ruled paper). A tight crop of a single digit has at most one
such band per direction (a 7's bar, a 1's stem), so it is left alone. Where a stroke crosses a
line (ink on both sides of the band), the band's pixels are kept, so the digit stays whole.
"""

from __future__ import annotations

import numpy as np

from ._ink import InkLayer

__all__ = ["remove_ruling"]

_SPAN = 0.9
_THICK = 0.08


def _bands(counts: np.ndarray, length: int, across: int) -> list[tuple[int, int]]:
    """Runs of consecutive rows whose ink count is at least _SPAN of ``length``, each at most
    _THICK of ``across`` thick (at least 2 px allowed)."""
    full = counts >= _SPAN * length
    if not full.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], full.view(np.int8), [0]])))
    limit = max(2, round(_THICK * across))
    return [
        (int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a <= limit
    ]


def _clear_rows(mask: np.ndarray, bands: list[tuple[int, int]]) -> np.ndarray:
    """``mask`` without the rows of ``bands``, except columns where ink continues on both
    sides of a band (a stroke crossing the line)."""
    out = mask.copy()
    h = mask.shape[0]
    for a, b in bands:
        above = mask[a - 1] if a > 0 else np.zeros(mask.shape[1], bool)
        below = mask[b] if b < h else np.zeros(mask.shape[1], bool)
        crossing = above & below
        out[a:b] &= crossing[None, :]
    return out


def remove_ruling(layer: InkLayer) -> InkLayer:
    """``layer`` with box borders, grid and ruled lines removed (unchanged when there are none)."""
    mask = layer.mask
    if layer.message is not None or min(mask.shape) < 8:
        return layer
    h, w = mask.shape
    rows = _bands(mask.sum(axis=1), w, h)
    cols = _bands(mask.sum(axis=0), h, w)
    boxed = len(rows) >= 2 and len(cols) >= 2
    keep_rows = rows if boxed or len(rows) >= 3 else []
    keep_cols = cols if boxed or len(cols) >= 3 else []
    if not keep_rows and not keep_cols:
        return layer
    # Both directions are judged on the original mask (a grid's crossings are line, not stroke).
    cleaned = _clear_rows(mask, keep_rows) if keep_rows else mask
    if keep_cols:
        cleaned = cleaned & _clear_rows(mask.T, keep_cols).T
    # The removed lines' ink goes too, with the pixel on each side of them (their anti-aliased
    # edges, under the threshold), except where a stroke continues.
    removed = mask & ~cleaned
    near = removed.copy()
    near[1:] |= removed[:-1]
    near[:-1] |= removed[1:]
    near[:, 1:] |= removed[:, :-1]
    near[:, :-1] |= removed[:, 1:]
    ink = np.where(near & ~cleaned, np.float32(0.0), layer.ink).astype(np.float32, copy=False)
    return InkLayer(ink, cleaned, layer.dark_ink, None)
