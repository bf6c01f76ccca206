"""Candidate digits of one image: crops, and the joins and splits offered to the network.

``Prepared`` holds what ``prepare`` found in one image: its digits left to right (``crops``)
and the alternatives the reading step may choose instead (``joins``: neighbouring pieces read
as one digit; ``splits`` / ``split_sources``: one piece read as two touching digits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._mnist import to_mnist
from ._segment import Piece, cut_candidates, path_cut

__all__ = ["DigitCrop", "Prepared", "SplitSource", "crops_of", "join_candidates"]


@dataclass(frozen=True)
class DigitCrop:
    """One digit: the network's input and where it was found."""

    image: np.ndarray  # float32 (28, 28) in [0, 1], white ink on black
    box: tuple[int, int, int, int]  # x, y, w, h in pixels of the image the caller gave


@dataclass(frozen=True)
class Prepared:
    """All digits of one image, left to right, or the reason there are none."""

    crops: tuple[DigitCrop, ...]
    message: str | None = None  # set when ``crops`` is empty: why
    size: tuple[int, int] = (0, 0)  # (width, height) of the image the boxes refer to
    # Runs of neighbouring pieces that together are shaped like one digit (a 5 whose bar came
    # off, a 2 cut in two by the touching-digit split, a tail the pen left separate):
    # ``(i, j, crop)`` = crops i..j-1 read as one digit. ``classify`` lets the network decide
    # (see ``best_reading``), so a wrong guess here costs time, never accuracy by itself.
    joins: tuple[tuple[int, int, DigitCrop], ...] = ()
    # Ways to read one piece as two touching digits: ``(i, left, right)``. ``classify`` takes a
    # split only when the network is clearly surer of it than of the whole piece.
    splits: tuple[tuple[int, DigitCrop, DigitCrop], ...] = ()
    # The same, not yet made into crops (``prepare`` offers splits this way): ``(i, source)``.
    split_sources: tuple[tuple[int, SplitSource], ...] = ()
    # Pieces that are parts of one wider piece of ink, cut apart by the width rule.
    cut_parts: frozenset[int] = frozenset()
    # Other ways to cut such a join of two parts in two: ``(k, source)``, k indexing ``joins``.
    # Used when the pair detector finds the join to be two digits: the width rule's cut is one
    # guess at where they meet, these are the others.
    join_splits: tuple[tuple[int, SplitSource], ...] = ()

    @property
    def image(self) -> np.ndarray | None:
        """The first digit's 28x28 input (the only one with ``single=True``), or None."""
        return self.crops[0].image if self.crops else None

    @property
    def inputs(self) -> np.ndarray:
        """All digits' inputs stacked: float32 (N, 28, 28)."""
        if not self.crops:
            return np.zeros((0, 28, 28), np.float32)
        return np.stack([c.image for c in self.crops])


def _shifted(p: Piece, oy: int, ox: int) -> Piece:
    """``p`` in a window at (oy, ox) whose labels are reduced to 1 = p's ink (``_window``)."""
    return Piece(
        p.y0 - oy,
        p.y1 - oy,
        p.x0 - ox,
        p.x1 - ox,
        [1],
        cut=None if p.cut is None else (p.cut[0] - ox, p.cut[1] - ox),
        shift=None if p.shift is None else (p.shift[0] - oy, tuple(v - ox for v in p.shift[1])),
    )


def _window(
    ink: np.ndarray, lab: np.ndarray, labels: list[int], y0: int, y1: int, x0: int, x1: int
) -> tuple[np.ndarray, np.ndarray]:
    """A piece's window of ink, and of labels reduced to one byte: 1 = the piece's ink."""
    return (ink[y0:y1, x0:x1].copy(), np.isin(lab[y0:y1, x0:x1], labels).astype(np.uint8))


@dataclass(frozen=True)
class SplitSource:
    """One way to cut a piece into two touching digits, kept as the piece's window of ink and
    labels: the two 28x28 crops are made only if the network needs them (``crops``), which for
    most pieces it does not (see ``classify``). Small, and picklable for worker processes."""

    ink: np.ndarray
    lab: np.ndarray
    origin: tuple[int, int]  # (y, x) of the window in the analysed image
    left: Piece | None  # in window coordinates; None: cut ``whole`` along a path when needed
    right: Piece | None
    deskew: bool
    scale: float
    whole: Piece | None = None

    @classmethod
    def cut(
        cls,
        ink: np.ndarray,
        lab: np.ndarray,
        left: Piece,
        right: Piece,
        deskew: bool,
        scale: float,
        windows: dict | None = None,
    ) -> SplitSource:
        h, w = ink.shape
        # The window crops_of would read for either half: the pair's box plus one pixel.
        y0, y1 = max(0, min(left.y0, right.y0) - 1), min(h, max(left.y1, right.y1) + 1)
        x0, x1 = max(0, min(left.x0, right.x0) - 1), min(w, max(left.x1, right.x1) + 1)
        key = (y0, y1, x0, x1)
        if windows is None or key not in windows:
            win = _window(ink, lab, left.labels, y0, y1, x0, x1)
            if windows is not None:
                windows[key] = win
        else:
            win = windows[key]
        return cls(
            win[0], win[1], (y0, x0), _shifted(left, y0, x0), _shifted(right, y0, x0), deskew, scale
        )

    @classmethod
    def path(
        cls, ink: np.ndarray, lab: np.ndarray, piece: Piece, deskew: bool, scale: float
    ) -> SplitSource:
        """A narrow piece to be cut along its least-ink path (``path_cut``), found only if the
        network needs it."""
        h, w = ink.shape
        y0, y1 = max(0, piece.y0 - 1), min(h, piece.y1 + 1)
        x0, x1 = max(0, piece.x0 - 1), min(w, piece.x1 + 1)
        win = _window(ink, lab, piece.labels, y0, y1, x0, x1)
        # Offered for most single digits and used for few: its ink travels as 8 bits (a
        # quarter of the bytes between processes; 1/255 is far below what 28x28 can show).
        ink8 = np.round(win[0] * 255.0).astype(np.uint8)
        return cls(ink8, win[1], (y0, x0), None, None, deskew, scale, _shifted(piece, y0, x0))

    def more_cuts(self) -> list[SplitSource]:
        """The piece's other column cuts (``cut_candidates(..., more=True)``) in the same
        window, asked for only when the pair detector found the piece to be two digits."""
        whole = self.whole
        if whole is None:
            rows = np.flatnonzero(self.lab.any(axis=1))
            cols = np.flatnonzero(self.lab.any(axis=0))
            if rows.size == 0:
                return []
            whole = Piece(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1, [1])
        return [
            SplitSource(self.ink, self.lab, self.origin, a, b, self.deskew, self.scale)
            for a, b in cut_candidates(whole, self.lab, more=True)
        ]

    def crops(self) -> tuple[DigitCrop, DigitCrop] | None:
        left, right = self.left, self.right
        if left is None or right is None:
            halves = path_cut(self.whole, self.lab) if self.whole is not None else None
            if halves is None:
                return None
            left, right = halves
        ink = (
            self.ink
            if self.ink.dtype != np.uint8
            else self.ink.astype(np.float32) * np.float32(1.0 / 255.0)
        )
        pair = crops_of(ink, self.lab, [[left], [right]], self.deskew, self.scale, self.origin)
        return (pair[0], pair[1]) if len(pair) == 2 else None


# Runs of up to _JOIN_MAX neighbouring pieces are offered to the network as one digit when the
# digit-height pieces among them (at least _JOIN_BODY of the run's height) are together at most
# _JOIN_ASPECT times as wide as tall (MNIST's widest 0s and 2s, written wide, reach about 1.5),
# the whole run, bars and tails included, at most _JOIN_SPAN times (a 5's bar or a 2's tail
# drawn far out), and no gap between them exceeds _JOIN_GAP of the height (a pen lift inside a
# digit is a few percent of its height; digits are usually further apart, and when they are not
# the network still has to prefer the joined reading).
_JOIN_MAX = 3
_JOIN_ASPECT = 1.6
_JOIN_SPAN = 2.2
_JOIN_BODY = 0.5
_JOIN_GAP = 0.25
_JOIN_TALL = 0.75
_JOIN_TALL_GAP = 0.08


def join_candidates(pieces: list[Piece]) -> list[tuple[int, int]]:
    out = []
    # Typical digit height of this image (pieces of one number share it, give or take a hand's
    # wobble); a run's own height varies with how far apart its pieces sit vertically.
    typical = float(np.median([p.y1 - p.y0 for p in pieces]))
    for i in range(len(pieces) - 1):
        x1 = pieces[i].x1
        for j in range(i + 2, min(len(pieces), i + _JOIN_MAX) + 1):
            run = pieces[i:j]
            h = max(p.y1 for p in run) - min(p.y0 for p in run)
            gap = pieces[j - 1].x0 - x1
            x1 = max(x1, pieces[j - 1].x1)
            # Two pieces that each look like a whole digit (nearly full height) are joined only
            # across a pen lift, not across the space between written digits.
            a, b = pieces[j - 2], pieces[j - 1]
            both_tall = min(a.y1 - a.y0, b.y1 - b.y0) >= _JOIN_TALL * typical
            if gap > (_JOIN_TALL_GAP if both_tall else _JOIN_GAP) * h:
                break
            body = [p for p in run if p.y1 - p.y0 >= _JOIN_BODY * h]
            if not body:  # only short pieces at different heights: not one digit's shape
                continue
            span = max(p.x1 for p in run) - min(p.x0 for p in run)
            width = max(p.x1 for p in body) - min(p.x0 for p in body)
            if width <= _JOIN_ASPECT * h and span <= _JOIN_SPAN * h:
                out.append((i, j))
    return out


def _member(lab: np.ndarray, p: Piece) -> np.ndarray:
    """Pixels of ``p`` within its box: its components, limited to its columns if it was cut."""
    member = np.isin(lab[p.y0 : p.y1, p.x0 : p.x1], p.labels)
    cut = p.cut_mask(p.y0, p.y1, p.x0, p.x1)
    if cut is not None:
        # Pixels outside this piece's share of a split group belong to its neighbours.
        member &= cut
    return member


def _dilate3(m: np.ndarray) -> np.ndarray:
    """Binary dilation by a 3x3 square (separable, with slices: cheaper than scipy's call)."""
    r = m.copy()
    r[:, 1:] |= m[:, :-1]
    r[:, :-1] |= m[:, 1:]
    out = r.copy()
    out[1:] |= r[:-1]
    out[:-1] |= r[1:]
    return out


def crops_of(
    ink_full: np.ndarray,
    lab: np.ndarray,
    groups: list[list[Piece]],
    deskew_digits: bool,
    scale: float,
    origin: tuple[int, int] = (0, 0),
) -> list[DigitCrop]:
    """One crop per group of pieces (a group is read as one digit). ``ink_full`` and ``lab``
    may be a window of the analysed image whose top-left pixel is ``origin`` (y, x) there."""
    crops = []
    h, w = ink_full.shape
    oy, ox = origin
    for group in groups:
        py0, py1 = min(p.y0 for p in group), max(p.y1 for p in group)
        px0, px1 = min(p.x0 for p in group), max(p.x1 for p in group)
        # One pixel of margin so the anti-aliased edge of the stroke (below the threshold)
        # keeps its grey levels.
        y0, y1 = max(0, py0 - 1), min(h, py1 + 1)
        x0, x1 = max(0, px0 - 1), min(w, px1 + 1)
        m = np.zeros((y1 - y0, x1 - x0), bool)
        near = np.zeros_like(m)
        for p in group:
            pm = np.zeros_like(m)
            pm[p.y0 - y0 : p.y1 - y0, p.x0 - x0 : p.x1 - x0] = _member(lab, p)
            pn = _dilate3(pm)
            cut = p.cut_mask(y0, y1, x0, x1)
            if cut is not None:
                pn &= cut
            m |= pm
            near |= pn
        ink = ink_full[y0:y1, x0:x1] * near
        img = to_mnist(ink, m, deskew_digit=deskew_digits)
        if img is None:
            continue
        box = (
            round((px0 + ox) * scale),
            round((py0 + oy) * scale),
            max(1, round((px1 - px0) * scale)),
            max(1, round((py1 - py0) * scale)),
        )
        crops.append(DigitCrop(img, box))
    return crops
