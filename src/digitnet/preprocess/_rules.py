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

Form fields whose lines do not cross the whole image are found as line segments instead
(``_frames``): straight thin runs of ink, horizontal and vertical, assembled into cells (a box
per digit, with or without gaps between the boxes, or a row of cells sharing their sides; a box
counts only with ink inside it, so a square 0 stays a 0), combs (a base line with ticks of one
height standing on it, one at each end) and lines under the writing (``_underlines``). They are
looked for on a lower cut of the ink (``_LINE_INK``): printed lines are often lighter than the
writing, and at the ink's threshold they come out dotted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage as ndi

from ._ink import InkLayer

__all__ = ["remove_ruling"]

_SPAN = 0.9
_THICK = 0.08
_UNDER_SPAN = 0.8
_UNDER_TOUCH = 0.2
_UNDER_PIECE = 0.5


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
    if cols.size == 0:
        return False
    if cols[-1] + 1 - cols[0] > _UNDER_SPAN * w and not _several_above(above, w):
        return False
    touching = mask[a - 1].sum() + mask[max(0, a - 2)].sum()
    return bool(touching <= _UNDER_TOUCH * 2 * w)


def _several_above(above: np.ndarray, w: int) -> bool:
    """Several pieces of ink above a line, each less than _UNDER_PIECE of its length wide: a
    number written along the whole line (a tight crop's own 2 has one piece, as wide as its
    base)."""
    lab, n = ndi.label(above, structure=np.ones((3, 3), bool))
    if n < 2:
        return False
    widths = [sl[1].stop - sl[1].start for sl in ndi.find_objects(lab) if sl is not None]
    return max(widths) < _UNDER_PIECE * w


# Line segments: runs of ink along a row at least _SEG_MIN_H of the ink's height long (a cell is
# at least _CELL_ASPECT[0] as wide as tall, a comb's base spans several), along a column
# _SEG_MIN_V (a comb's ticks reach a third of the way up or more), and _SEG_MIN_PX, labelled
# into segments; a segment is a printed line when it is thin: its
# median thickness at most _SEG_THICK of its length (and _SEG_THICK_PX). A pen's stroke, even
# a straight one, is thicker for its length than a form's line, or not straight enough along a
# single row or column to make such long runs.
_LINE_INK = 0.25
_SEG_MIN_H = 0.35
_SEG_MIN_V = 0.25
_SEG_MIN_PX = 6
_SEG_THICK = 0.12
_SEG_THICK_PX = 3
_SEG_TILT = 0.06  # up to about 3.4 degrees off the axis (a form photographed a little askew)
# A cell: two vertical segments of about the same extent (each overlapping the other by
# _CELL_OVERLAP of the taller), _CELL_ASPECT apart (width over height), joined at top and at
# bottom by horizontal segments (within _CELL_TOL of the height), with ink inside.
_CELL_OVERLAP = 0.8
_CELL_ASPECT = (0.4, 12.0)  # one box around a whole number is wide
_CELL_TOL = 0.12
# A comb: at least _COMB_TICKS ticks standing on one horizontal segment, their heights within
# _COMB_SPREAD of their median, one tick at each end of the base.
_COMB_TICKS = 3
_COMB_SPREAD = 0.3
_COMB_THICK = 1.5
# An underline at least this many times as long as the writing above it is tall (a 1's or a
# 2's base is shorter than the digit is tall).
_LINE_LONG = 1.2


@dataclass(frozen=True)
class _Segment:
    y0: int
    y1: int  # exclusive
    x0: int
    x1: int  # exclusive
    pixels: tuple[np.ndarray, np.ndarray]  # rows, columns
    thick: float  # median thickness across

    @property
    def xc(self) -> float:
        return (self.x0 + self.x1 - 1) / 2

    @property
    def yc(self) -> float:
        return (self.y0 + self.y1 - 1) / 2


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """For each pixel of ``mask``, the length of the run along its row that it belongs to."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    ys, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)  # the same order: row by row, left to right
    out = np.zeros((h, w + 1), np.int32)
    # Starts and ends are distinct pixels (runs are apart by at least one), so plain assignment.
    out[ys, starts] = ends - starts
    out[ys, ends] = starts - ends
    return np.cumsum(out, axis=1)[:, :w]


def _segments(mask: np.ndarray, length: int) -> list[_Segment]:
    """Thin straight horizontal line segments of ``mask``: runs along a row at least ``length``
    long, labelled together, each as thin as a line across (the mask's runs along the columns
    through it, so a pen's broad stroke is not taken for lines) and straight (its extent across
    no more than its thickness and a slight tilt). Only rows holding ``length`` pixels are
    looked at, and each segment's thickness in a window around it: most images have none."""
    rows = np.flatnonzero(np.count_nonzero(mask, axis=1) >= length)
    if rows.size == 0:
        return []
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    runs = np.zeros((r1 - r0, mask.shape[1]), bool)
    runs[rows - r0] = _run_lengths(mask[rows]) >= length
    if not runs.any():
        return []
    lab, _ = ndi.label(runs, structure=np.ones((3, 3), bool))
    out = []
    h = mask.shape[0]
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        sub = lab[sl] == i
        long = sub.shape[1]
        limit = max(_SEG_THICK_PX, _SEG_THICK * long)
        y0, y1 = sl[0].start + r0, sl[0].stop + r0
        if sub.shape[0] > limit + 1 + _SEG_TILT * long:
            continue  # too tall for any line's thickness: skip measuring it (checked below)
        # Runs along the columns through the segment, in a window just over the limit on each
        # side (a run reaching the window's edge is longer than any line's thickness anyway).
        m = int(limit) + 2
        wa, wb = max(0, y0 - m), min(h, y1 + m)
        across = _run_lengths(mask[wa:wb, sl[1]].T).T[y0 - wa : y1 - wa]
        thick = float(np.median(across[sub]))
        if thick > limit or sub.shape[0] > thick + 1 + _SEG_TILT * long:
            continue
        ys, xs = np.nonzero(sub)
        out.append(_Segment(y0, y1, sl[1].start, sl[1].stop, (ys + y0, xs + sl[1].start), thick))
    return out


def _transposed(s: _Segment) -> _Segment:
    return _Segment(s.x0, s.x1, s.y0, s.y1, (s.pixels[1], s.pixels[0]), s.thick)


def _cells(mask, hs: list[_Segment], vs: list[_Segment]) -> list[_Segment]:
    """The segments that make cells: box sides joined at top and bottom, with ink inside."""
    used: dict[int, _Segment] = {}
    vs = sorted(vs, key=lambda s: s.xc)
    for i, a in enumerate(vs):
        ha = a.y1 - a.y0
        for b in vs[i + 1 :]:
            hb = b.y1 - b.y0
            tall = max(ha, hb)
            if min(a.y1, b.y1) - max(a.y0, b.y0) < _CELL_OVERLAP * tall:
                continue
            width = b.xc - a.xc
            if not _CELL_ASPECT[0] * tall <= width <= _CELL_ASPECT[1] * tall:
                continue
            tol = max(3.0, _CELL_TOL * tall)
            top, bottom = min(a.y0, b.y0), max(a.y1, b.y1) - 1

            def joined(y: float, tol=tol, a=a, b=b):
                return [
                    h for h in hs
                    if abs(h.yc - y) <= tol and h.x0 <= a.xc + tol and h.x1 - 1 >= b.xc - tol
                ]  # fmt: skip

            tops, bottoms = joined(top), joined(bottom)
            if not tops or not bottoms:
                continue
            # Ink inside, clear of the lines (a box with nothing in it, or a square 0, is not
            # taken apart: it may be the digit).
            m = int(tol)
            inner = mask[top + m : bottom - m + 1, int(a.xc) + m : int(b.xc) - m + 1]
            if inner.size == 0 or not inner.any():
                continue
            for s in (a, b, *tops, *bottoms):
                used[id(s)] = s
    return list(used.values())


def _combs(hs: list[_Segment], vs: list[_Segment]) -> list[_Segment]:
    """The segments that make combs: a base and the ticks standing on it, printed as thin as
    the base (a written 1 standing on the line is a pen's stroke, wider)."""
    used: list[_Segment] = []
    for base in hs:
        tol = max(3.0, 2.0 * (base.y1 - base.y0))
        ticks = [
            v for v in vs
            if abs(v.y1 - 1 - base.yc) <= tol and base.x0 - tol <= v.xc <= base.x1 - 1 + tol
            and v.yc < base.yc and v.thick <= _COMB_THICK * base.thick + 1.0
        ]  # fmt: skip
        if len(ticks) < _COMB_TICKS:
            continue
        heights = np.asarray([base.yc - v.y0 for v in ticks], np.float64)
        med = float(np.median(heights))
        ticks = [
            v for v, hh in zip(ticks, heights, strict=True) if abs(hh - med) <= _COMB_SPREAD * med
        ]
        if len(ticks) < _COMB_TICKS:
            continue
        xs = [v.xc for v in ticks]
        if min(xs) - base.x0 > tol or base.x1 - 1 - max(xs) > tol:
            continue
        used += [base, *ticks]
    return used


def _underlines(mask: np.ndarray, hs: list[_Segment]) -> list[_Segment]:
    """Lines drawn under the writing that do not cross the whole image (a field's line with
    paper around it): a segment at least _LINE_LONG times as long as the ink above it is tall,
    in the lower half of the ink, under which nothing is written, and above which the ink spans
    at most _UNDER_SPAN of its length or stands in several pieces (``_several_above``)."""
    rows = np.flatnonzero(mask.any(axis=1))
    out = []
    for s in hs:
        if s.yc < (rows[0] + rows[-1]) / 2 or s.y0 < 3:
            continue
        long = s.x1 - s.x0
        above = mask[: s.y0, s.x0 : s.x1]
        if np.count_nonzero(mask[s.y1 + 2 :]) > 0.1 * np.count_nonzero(above):
            continue  # writing below it too: a line between rows, a 2's base, a 7's bar
        arows = np.flatnonzero(above.any(axis=1))
        if arows.size == 0 or long < _LINE_LONG * (s.y0 - arows[0]):
            continue
        cols = np.flatnonzero(above.any(axis=0))
        if cols[-1] + 1 - cols[0] > _UNDER_SPAN * long and not _several_above(above, long):
            continue
        touching = np.count_nonzero(mask[s.y0 - 1, s.x0 : s.x1]) + np.count_nonzero(
            mask[max(0, s.y0 - 2), s.x0 : s.x1]
        )
        if touching <= _UNDER_TOUCH * 2 * long:
            out.append(s)
    return out


def _frames(mask: np.ndarray) -> np.ndarray | None:
    """The pixels of form cells, combs and underlines in ``mask`` (None when there are none)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    ink_h = rows[-1] + 1 - rows[0]
    hs = _segments(mask, max(_SEG_MIN_PX, round(_SEG_MIN_H * ink_h)))
    if not hs:
        return None
    vs = [_transposed(s) for s in _segments(mask.T, max(_SEG_MIN_PX, round(_SEG_MIN_V * ink_h)))]
    found = _underlines(mask, hs)
    if vs:
        cells = _cells(mask, hs, vs)
        taken = {id(s) for s in cells}
        found += cells + _combs([h for h in hs if id(h) not in taken], vs)
    if not found:
        return None
    out = np.zeros_like(mask)
    for s in found:
        out[s.pixels] = True
    return out


def _clear_segments(mask: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """``mask`` without the pixels of ``lines``, except where a stroke crosses a line: a pixel
    stays when the mask continues beyond the line on both sides, across it (up and down for a
    horizontal run of line pixels, left and right for a vertical one)."""

    def crossing(m: np.ndarray, ln: np.ndarray) -> np.ndarray:
        # Per column, the line's run of pixels; ink just above its top and just below its
        # bottom means a stroke goes through.
        h = m.shape[0]
        idx = np.arange(h)[:, None]
        top = np.where(ln, idx, h).min(axis=0)
        bot = np.where(ln, idx, -1).max(axis=0)
        cols = np.flatnonzero(bot >= 0)
        above = np.zeros(m.shape[1], bool)
        below = np.zeros(m.shape[1], bool)
        t, b = top[cols], bot[cols]
        above[cols] = np.where(t > 0, m[np.maximum(t - 1, 0), cols], False)
        below[cols] = np.where(b < h - 1, m[np.minimum(b + 1, h - 1), cols], False)
        return ln & (above & below)[None, :]

    horizontal = crossing(mask, lines)
    vertical = crossing(mask.T, lines.T).T
    return mask & ~(lines & ~(horizontal | vertical))


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
    # Form lines are found on a lower cut of the ink (_LINE_INK of the way from paper to the
    # stroke's core): printed lines are often lighter than the writing, and the threshold
    # leaves them dotted, too broken to be found, their dots read as digits.
    low = mask | (layer.ink > _LINE_INK)
    frames = _frames(low)
    if not keep_rows and not keep_cols and frames is None:
        return layer
    # Both directions are judged on the original mask (a grid's crossings are line, not stroke).
    cleaned = _clear_rows(mask, keep_rows) if keep_rows else mask
    if keep_cols:
        cleaned = cleaned & _clear_rows(mask.T, keep_cols).T
    if frames is not None:
        cleaned = cleaned & _clear_segments(low, frames)
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
