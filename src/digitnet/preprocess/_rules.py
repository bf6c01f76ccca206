"""Printed ruling taken out of the ink: the box of a form's cell, grid paper, ruled lines.

A digit written in a form's box, on squared or on ruled paper shares its ink mask with lines
that run across the whole image; segmentation then reads the box as a 0 and the grid as 8s.
Lines are found as bands of rows (or columns) whose ink crosses at least _SPAN of the image,
each band thin (at most _THICK of the image's other side). They are removed only where the
pattern is unmistakably ruling: two or more such bands in each direction (a box, a grid) or
three or more parallel ones (ruled paper); a single band is removed when it is a line under
the writing (``_underline``). A tight crop of a single digit has at most one such band per
direction (a 7's bar, a 1's stem), so it is left alone. Where a stroke crosses a
line (ink on both sides of the band), the band's pixels are kept, so the digit stays whole.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ._ink import InkLayer

__all__ = ["remove_ruling"]

_SPAN = 0.9
_THICK = 0.08
_UNDER_SPAN = 0.8
_UNDER_TOUCH = 0.2


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


def _underline(mask: np.ndarray, band: tuple[int, int]) -> bool:
    """Is the one full-width band ``band`` a line drawn under the writing? It lies in the lower
    half, the ink above it spans at most _UNDER_SPAN of the width (an underline runs past the
    digits; a tight crop's own base stroke, a 2's, spans the digit), and the two rows just above
    it hold ink in at most _UNDER_TOUCH of their columns (the writing barely touches it)."""
    a = band[0]
    h, w = mask.shape
    if a < h // 2 or a < 3:
        return False
    above = mask[:a]
    cols = np.flatnonzero(above.any(axis=0))
    if cols.size == 0 or cols[-1] + 1 - cols[0] > _UNDER_SPAN * w:
        return False
    touching = mask[a - 1].sum() + mask[max(0, a - 2)].sum()
    return bool(touching <= _UNDER_TOUCH * 2 * w)


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
    if not keep_rows and len(rows) == 1 and not cols and _underline(mask, rows[0]):
        keep_rows = rows
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
    return replace(layer, ink=ink, mask=cleaned, message=None)
