"""Splitting a written number into digits, left to right.

Works on the ink mask: connected components, pieces of one digit merged (a 5 whose top bar is
detached, a 7 with a separate cross-bar, a pen lifted mid-digit), specks and dots dropped, and
groups much wider than a digit split at the thinnest column near where a digit boundary is
expected (touching digits). ``cut_candidates`` offers further cuts of one piece for the network
to judge.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ._mnist import stroke_width

__all__ = ["MIN_DIGIT_PX", "Piece", "cut_candidates", "find_pieces", "path_candidate", "path_cut"]

# A digit needs at least this many pixels of height at the analysis resolution; below that the
# 20x20 box would be filled by upscaled blur (and marks this small are dots or specks).
MIN_DIGIT_PX = 8
# Components kept for grouping, largest first: a written number has a few dozen pieces at most;
# more means texture or noise, and the extra tiny ones are specks anyway.
_MAX_COMPONENTS = 64
# A piece at least this fraction of the tallest substantial piece is a digit (or a large part
# of one); shorter pieces are bars, dots, dashes or specks. "1" written short and the halves of
# a broken 8 are about 0.5 of the height in our synthetic collection.
_MAIN_HEIGHT = 0.45
# Widest single digit, as width / height: MNIST's widest digits (0, 2, 4 in a wide hand) reach
# about 1.2; a group wider than this holds touching digits.
_MAX_ASPECT = 1.3
_EIGHT = np.ones((3, 3), dtype=bool)
# A short piece at least this wide (fraction of the digit height) whose box lies within
# _BAR_GAP of a digit's box is that digit's detached bar.
_BAR_WIDTH = 0.25
_BAR_GAP = 0.2
_DASH_GAP = 0.06
# Short pieces one above the other (``_stacked``) gather into one digit across this gap.
_STACK_GAP = 0.45


@dataclass
class Piece:
    """One digit candidate at the analysis resolution."""

    y0: int
    y1: int
    x0: int
    x1: int
    labels: list[int]  # component labels (of the label image) that belong to this digit
    cut: tuple[float, float] | None = None  # column range kept when a group was split
    body: tuple[int, int] | None = None  # columns of the digit-height pieces (no bars/hooks)
    # A cut along a path rather than a column: ``cut`` then bounds x - offset(y), the offsets
    # given per row from a first row: ``shift = (row0, offsets)`` (touching slanted strokes).
    shift: tuple[int, tuple[float, ...]] | None = None

    def cut_mask(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray | None:
        """Which pixels of the window [y0:y1, x0:x1] lie within this piece's cut (None: no cut)."""
        if self.cut is None:
            return None
        u = np.arange(x0, x1, dtype=np.float64)[None, :]
        if self.shift is not None:
            row0, offsets = self.shift
            rows = np.clip(np.arange(y0, y1) - row0, 0, len(offsets) - 1)
            u = u - np.asarray(offsets, np.float64)[rows][:, None]
        else:
            u = np.broadcast_to(u, (y1 - y0, x1 - x0))
        return (u >= self.cut[0]) & (u < self.cut[1])

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x0, self.y0, self.x1 - self.x0, self.y1 - self.y0


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return min(a1, b1) - max(a0, b0)


# Gaps narrower than this fraction of the digit height are bridged before the ink is cut into
# pieces: a fine pen or faint pencil stroke that the threshold broke into dashes is one piece
# again, while the space between two written digits (at least 5% of the height in the writing
# we simulate, usually far more) stays open. Only the labels are bridged; the ink is unchanged.
_BRIDGE = 0.02


def _components(mask: np.ndarray) -> tuple[np.ndarray, list[Piece], np.ndarray]:
    lab, n = ndi.label(mask, structure=_EIGHT)
    if n == 0:
        return lab, [], np.zeros(0)
    objs = ndi.find_objects(lab)
    areas = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    # Height of the largest piece: the scale the bridging radius is measured against.
    big = objs[int(np.argmax(areas))][0]
    r = int(_BRIDGE * (big.stop - big.start))
    if r >= 1 and n > 1:
        # r dilations by the 3x3 square = one by a (2r+1) square: a separable max filter.
        near = ndi.maximum_filter(mask.view(np.uint8), size=2 * r + 1, mode="constant") > 0
        lab, n = ndi.label(near, structure=_EIGHT)
        lab = lab * mask
        areas = np.bincount(lab.ravel(), minlength=n + 1)[1:]
        objs = ndi.find_objects(lab)
    order = np.argsort(-areas)[:_MAX_COMPONENTS]
    # Specks: under 1% of the largest piece's area (a dot of noise, a dust speck on a scan).
    order = order[areas[order] >= max(2, 0.01 * areas[order[0]])]
    pieces = []
    for i in order:
        sy, sx = objs[i]
        pieces.append(Piece(sy.start, sy.stop, sx.start, sx.stop, [int(i) + 1]))
    return lab, pieces, areas[order]


def _merge(a: Piece, b: Piece, minor: bool = False) -> Piece:
    ab = a.body or (a.x0, a.x1)
    body = (
        ab
        if minor
        else (min(ab[0], (b.body or (b.x0, b.x1))[0]), max(ab[1], (b.body or (b.x0, b.x1))[1]))
    )
    return Piece(
        min(a.y0, b.y0),
        max(a.y1, b.y1),
        min(a.x0, b.x0),
        max(a.x1, b.x1),
        a.labels + b.labels,
        body=body,
    )


def _group(pieces: list[Piece], ref_h: float) -> list[Piece]:
    main = [p for p in pieces if (p.y1 - p.y0) >= _MAIN_HEIGHT * ref_h]
    minor = [p for p in pieces if (p.y1 - p.y0) < _MAIN_HEIGHT * ref_h]
    # Stacked pieces of one digit: they share most of their columns but not their rows (the two
    # loops of a broken 8, a 5's body and its bar), or one lies almost entirely within the
    # other's columns. Side-by-side digits share rows, so "1" next to "7" stays two digits.
    changed = True
    while changed:
        changed = False
        for i in range(len(main)):
            for j in range(i + 1, len(main)):
                a, b = main[i], main[j]
                ov = _overlap(a.x0, a.x1, b.x0, b.x1)
                narrow = min(a.x1 - a.x0, b.x1 - b.x0)
                vov = _overlap(a.y0, a.y1, b.y0, b.y1)
                short = min(a.y1 - a.y0, b.y1 - b.y0)
                if (ov >= 0.5 * narrow and vov < 0.5 * short) or ov >= 0.9 * narrow:
                    main[i] = _merge(a, b)
                    del main[j]
                    changed = True
                    break
            if changed:
                break
    # Bars, hooks and cross-bars join the digit whose columns they overlap most; those over no
    # digit (decimal points, dashes, specks) are dropped.
    orphans: list[Piece] = []
    for p in minor:
        best, best_ov = None, 0.3 * (p.x1 - p.x0)
        for k, q in enumerate(main):
            ov = _overlap(p.x0, p.x1, q.x0, q.x1)
            if ov > best_ov:
                best, best_ov = k, ov
        if best is None:
            # A bar beside a narrow body (a 5's top bar drawn off to the upper right of a slim
            # stem when the pen was lifted) overlaps few of its columns but nearly touches it;
            # smaller pieces (a dash of a skipping pen) are taken only when closer still, so a
            # full stop written apart from the digits stays out.
            wide = (p.x1 - p.x0) >= _BAR_WIDTH * ref_h
            best_gap = (_BAR_GAP if wide else _DASH_GAP) * ref_h
            for k, q in enumerate(main):
                gap = _box_gap(p, q)
                if gap <= best_gap:
                    best, best_gap = k, gap
        if best is not None:
            main[best] = _merge(main[best], p, minor=True)
        else:
            orphans.append(p)
    # A faint or fine-pen digit can break into short pieces only, none tall enough to count
    # as a digit alone: pieces near each other (boxes within _BAR_GAP of the height) are
    # gathered, and a gathering as tall as a digit is one. A lone dash or dot stays out.
    # Arcs stacked in the same columns gather across a wider gap: a faint 0 or 8 whose sides
    # fell under the threshold leaves only its top and bottom arcs (dots, a colon's, do not).
    clusters: list[Piece] = []
    for p in orphans:
        near = [
            c
            for c in clusters
            if _box_gap(c, p) <= (_STACK_GAP if _stacked(c, p, ref_h) else _BAR_GAP) * ref_h
        ]
        for c in near:
            clusters.remove(c)
            p = _merge(c, p)
        clusters.append(p)
    main.extend(c for c in clusters if (c.y1 - c.y0) >= _MAIN_HEIGHT * ref_h)
    return main


def _stacked(a: Piece, b: Piece, ref_h: float) -> bool:
    """Two arcs one above the other: both as wide as a bar, sharing at least half of the
    narrower one's columns."""
    narrow = min(a.x1 - a.x0, b.x1 - b.x0)
    return narrow >= _BAR_WIDTH * ref_h and _overlap(a.x0, a.x1, b.x0, b.x1) >= 0.5 * narrow


def _box_gap(a: Piece, b: Piece) -> int:
    """Distance between two boxes: the larger of the horizontal and vertical gaps."""
    return max(a.x0 - b.x1, b.x0 - a.x1, a.y0 - b.y1, b.y0 - a.y1)


def _split(group: Piece, lab: np.ndarray, digit_w: float) -> list[Piece]:
    gw, gh = group.x1 - group.x0, group.y1 - group.y0
    # Judge the width by the digit-height pieces: a 5's top bar or a 7's cross-bar reaching
    # far to the right makes the box wide without there being a second digit.
    body = group.body or (group.x0, group.x1)
    if body[1] - body[0] <= _MAX_ASPECT * gh:
        return [group]
    n = int(min(8, max(2, round(gw / digit_w))))
    region = np.isin(lab[group.y0 : group.y1, group.x0 : group.x1], group.labels)
    cols = region.sum(axis=0).astype(np.float64)
    # Smooth the column profile a little so a single-pixel gap in a stroke is not taken for
    # the space between two digits.
    cols = ndi.uniform_filter1d(cols, size=3, mode="nearest")
    step = gw / n
    cuts = [0]
    for k in range(1, n):
        centre = k * step
        lo = int(max(cuts[-1] + 0.5 * step, centre - 0.35 * step))
        hi = int(min(gw - 1, centre + 0.35 * step))
        if hi <= lo:
            continue
        cuts.append(lo + int(np.argmin(cols[lo : hi + 1])))
    cuts.append(gw)
    out = []
    for a, b in itertools.pairwise(cuts):
        part = region[:, a:b]
        rows = np.flatnonzero(part.any(axis=1))
        if rows.size == 0 or b - a < 2:
            continue
        colsnz = np.flatnonzero(part.any(axis=0))
        out.append(
            Piece(
                group.y0 + int(rows[0]),
                group.y0 + int(rows[-1]) + 1,
                group.x0 + a + int(colsnz[0]),
                group.x0 + a + int(colsnz[-1]) + 1,
                group.labels,
                cut=(group.x0 + a, group.x0 + b),
            )
        )
    return out


def find_pieces(
    mask: np.ndarray, *, single: bool = False
) -> tuple[np.ndarray, list[Piece], str | None]:
    """Digit candidates of an ink mask, left to right.

    Returns ``(labels, pieces, message)``; ``message`` says why nothing digit-like was found.
    With ``single`` all kept ink (specks dropped) is one digit.
    """
    lab, pieces, areas = _components(mask)
    if not pieces:
        return lab, [], "no digit found: no ink"
    big = [p for p, a in zip(pieces, areas, strict=True) if a >= 0.2 * areas[0]]
    ref_h = max(p.y1 - p.y0 for p in big)
    if ref_h < MIN_DIGIT_PX:
        return lab, [], "no digit found: only marks too small to be digits"
    if single:
        keep = [p for p in pieces if (p.y1 - p.y0) >= 0.1 * ref_h or (p.x1 - p.x0) >= 0.1 * ref_h]
        whole = keep[0]
        for p in keep[1:]:
            whole = _merge(whole, p)
        return lab, [whole], None
    groups = _group(pieces, ref_h)
    narrow = [g.x1 - g.x0 for g in groups if (g.x1 - g.x0) <= 1.1 * (g.y1 - g.y0)]
    heights = [g.y1 - g.y0 for g in groups]
    # Expected digit width: the typical width of groups that are one digit wide; without any,
    # MNIST's mean width/height ratio (about 0.7).
    digit_w = float(np.median(narrow)) if len(narrow) >= 2 else 0.7 * float(np.median(heights))
    digit_w = max(digit_w, 0.45 * float(np.median(heights)))
    out: list[Piece] = []
    for g in groups:
        out.extend(_split(g, lab, digit_w))
    out = [p for p in out if (p.y1 - p.y0) >= MIN_DIGIT_PX * 0.75]
    if not out:
        return lab, [], "no digit found: only marks too small to be digits"
    out.sort(key=lambda p: (p.x0 + p.x1) / 2.0)
    return lab, out, None


# Touching digits the width rule cannot see: two digits that overlap ("47" written close)
# make one piece no wider than a wide single digit. A piece at least _CUT_MIN_ASPECT as wide as
# tall, or _CUT_WIDER times as wide as the typical digit of its number, gets up to _CUT_MAX
# candidate cuts near its middle; the network then decides between the whole piece and each
# split (the split must be clearly better: see ``classify``), as it already decides on joins.
# Narrower pieces are left whole: an MNIST network reads the halves of a slim, oddly written
# single digit (a 7, a 5) with high confidence, so offering those cuts misreads more single
# digits than it rescues touching pairs; two touching 1s stay a known limit.
_CUT_MIN_ASPECT = 0.9
# Narrower pieces (down to _NARROW_MIN_ASPECT as wide as tall: two touching 1s, a 1 beside a
# 7) get one candidate cut along the top-to-bottom path that crosses the least ink
# (``path_cut``), when that is at most _PATH_INK stroke widths; each sideways step costs
# _PATH_STEP pixels of ink, so straight paths win ties. Only pieces the network reads with
# little confidence ever get this far (see ``classify``).
_NARROW_MIN_ASPECT = 0.2
_PATH_INK = 3.0
_PATH_STEP = 0.05
_PATH_ROWS = 48
_CUT_WIDER = 1.4
_CUT_MAX = 3
_MORE_CUTS = 11  # the finer grid of ``cut_candidates(..., more=True)``


def cut_candidates(
    piece: Piece, lab: np.ndarray, typical_w: float | None = None, *, more: bool = False
) -> list[tuple[Piece, Piece]]:
    """Ways to cut ``piece`` into a left and a right digit (``typical_w``: the usual width of
    a digit in the same number, when there are enough others to tell).

    ``more``: instead, the columns of a finer grid (every 5% of the width from 25% to 75%) that
    the usual cuts leave out, whatever the piece's width: for a piece the pair detector found
    to be two digits, where overlapping digits often meet off the thinnest column.
    """
    w, h = piece.x1 - piece.x0, piece.y1 - piece.y0
    wide = w >= _CUT_MIN_ASPECT * h or (typical_w is not None and w >= _CUT_WIDER * typical_w)
    if not (wide or more) or w < 6:
        return []
    region = np.isin(lab[piece.y0 : piece.y1, piece.x0 : piece.x1], piece.labels)
    cut = piece.cut_mask(piece.y0, piece.y1, piece.x0, piece.x1)
    if cut is not None:
        region &= cut
    cols = ndi.uniform_filter1d(region.sum(axis=0).astype(np.float64), size=3, mode="nearest")
    # Cuts where the least ink crosses, in the middle 40% (each digit keeps at least 30% of the
    # width): the thinnest column overall, and the thinnest in each half of that window, so an
    # overlap that moved the true boundary off the minimum still has a candidate.
    lo, hi = round(0.3 * w), round(0.7 * w)
    if hi - lo < 2:
        return []
    mid = (lo + hi) // 2
    found: list[int] = []
    for a, b in ((lo, hi), (lo, mid), (mid, hi)):
        c = a + int(np.argmin(cols[a:b]))
        if all(abs(c - f) > 1 for f in found):
            found.append(c)
    columns = found[:_CUT_MAX]
    if more:
        columns = []
        for k in range(_MORE_CUTS):
            c = round((0.25 + 0.5 * k / (_MORE_CUTS - 1)) * w)
            if all(abs(c - f) > 1 for f in found[:_CUT_MAX] + columns):
                columns.append(c)
    out = []
    for c in columns:
        halves = []
        for a, b in ((0, c), (c, w)):
            part = region[:, a:b]
            rows = np.flatnonzero(part.any(axis=1))
            cs = np.flatnonzero(part.any(axis=0))
            if rows.size == 0:
                break
            halves.append(
                Piece(
                    piece.y0 + int(rows[0]),
                    piece.y0 + int(rows[-1]) + 1,
                    piece.x0 + a + int(cs[0]),
                    piece.x0 + a + int(cs[-1]) + 1,
                    piece.labels,
                    cut=(piece.x0 + a, piece.x0 + b),
                )
            )
        if len(halves) == 2 and min(q.y1 - q.y0 for q in halves) >= 0.4 * h:
            out.append((halves[0], halves[1]))
    return out


def path_candidate(piece: Piece) -> bool:
    """Is ``piece`` narrow but wide enough to be two touching slim digits ("11", "17")?"""
    w, h = piece.x1 - piece.x0, piece.y1 - piece.y0
    return piece.cut is None and w >= 6 and _NARROW_MIN_ASPECT * h <= w < _CUT_MIN_ASPECT * h


def path_cut(piece: Piece, lab: np.ndarray) -> tuple[Piece, Piece] | None:
    """Cut a narrow piece along the top-to-bottom path that crosses the least ink (one step
    down per row, at most one column sideways), or None when every such path crosses more
    than _PATH_INK stroke widths of ink (one stroke, not two touching ones)."""
    full = np.isin(lab[piece.y0 : piece.y1, piece.x0 : piece.x1], piece.labels)
    # The search runs on at most _PATH_ROWS rows (blocks of f x f pixels, ink if any pixel is):
    # enough to find the gap between two strokes, and a cost that does not grow with the image.
    f = max(1, int(np.ceil(full.shape[0] / _PATH_ROWS)))
    region: np.ndarray
    if f > 1:
        ph, pw = -full.shape[0] % f, -full.shape[1] % f
        padded = np.pad(full, ((0, ph), (0, pw)))
        region = np.any(
            padded.reshape(padded.shape[0] // f, f, padded.shape[1] // f, f), axis=(1, 3)
        )
    else:
        region = full
    h, w = region.shape
    lo, hi = max(1, int(0.15 * w)), min(w - 1, int(np.ceil(0.85 * w)))
    if hi - lo < 1 or h < 8:
        return None
    cost = region.astype(np.float64)
    inf = np.inf
    acc = cost[0].copy()
    acc[:lo] = inf
    acc[hi:] = inf
    back = np.zeros((h, w), np.int8)
    cols = np.arange(w)
    for y in range(1, h):
        came = np.full((3, w), inf)
        came[0, 1:] = acc[:-1] + _PATH_STEP  # from the column to the left
        came[1] = acc
        came[2, :-1] = acc[1:] + _PATH_STEP  # from the column to the right
        k = came.argmin(axis=0)
        acc = came[k, cols] + cost[y]
        acc[:lo] = inf
        acc[hi:] = inf
        back[y] = k.astype(np.int8) - 1
    x = int(np.argmin(acc))
    crossed = float(np.count_nonzero(region[h - 1, x]))
    xs = np.empty(h, np.int64)
    xs[h - 1] = x
    for y in range(h - 1, 0, -1):
        xs[y - 1] = xs[y] + back[y, xs[y]]
        crossed += float(region[y - 1, xs[y - 1]])
    if crossed > _PATH_INK * stroke_width(region):
        return None
    # Back to full resolution: each block row's cut column, at the middle of its block.
    xs = np.repeat(xs * f + f // 2, f)[: full.shape[0]]
    region = full
    h, w = region.shape
    area = int(region.sum())
    left = region & (np.arange(w)[None, :] < xs[:, None])
    right = region & ~left
    halves = []
    shift = (piece.y0, tuple(float(v + piece.x0) for v in xs))
    for part, bounds in ((left, (-np.inf, 0.0)), (right, (0.0, np.inf))):
        if part.sum() < 0.15 * area:
            return None
        rows = np.flatnonzero(part.any(axis=1))
        cs = np.flatnonzero(part.any(axis=0))
        if rows[-1] + 1 - rows[0] < 0.4 * h:
            return None
        halves.append(
            Piece(
                piece.y0 + int(rows[0]),
                piece.y0 + int(rows[-1]) + 1,
                piece.x0 + int(cs[0]),
                piece.x0 + int(cs[-1]) + 1,
                piece.labels,
                cut=bounds,
                shift=shift,
            )
        )
    return halves[0], halves[1]
