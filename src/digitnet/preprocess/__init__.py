"""Any user image or canvas -> 28x28 MNIST-style input(s); shared by the CLI and the GUI.

Pipeline (see docs/architecture.md, "Input convention"):

1. ``load_image`` / ``from_pil`` / ``from_array``: decode safely (EXIF orientation, transparency
   composited, 16-bit scaled, first frame only, decompression bombs refused) to grey float32.
2. ``ink_layer`` / ``ink_mask``: decide polarity, flatten uneven lighting, Otsu threshold with
   a noise floor, ink grey levels in [0, 1].
3. ``segment``: digits left to right (pieces merged, specks dropped, touching digits split).
4. ``to_mnist``: crop, stroke-width normalisation, fit in 20x20 (anti-aliased), centre of mass
   in 28x28; white ink on black, float32 in [0, 1].

``prepare`` also offers alternatives (neighbouring pieces joined into one digit, one piece cut
into two touching digits); ``classify`` lets the network choose among them (docs/reading.md).
``read_digits`` runs all of it for many images and batches the network calls. Nothing here
imports torch: the predictor is handed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from ..errors import DigitnetError, ImageError
from ._ink import InkLayer, ink_layer, ink_mask, otsu_threshold
from ._load import (MAX_PIXELS, WORK_MAX_SIDE, ImageSource, as_float, decode, from_array,
                    from_pil, load_image, resize_box, shape_of)
from ._mnist import deskew, stroke_width, to_mnist
from ._segment import Piece, cut_candidates, find_pieces, path_candidate, path_cut

__all__ = [
    "DigitCrop", "Prepared", "DigitResult", "Reading", "ImageSource",
    "load_image", "from_pil", "from_array", "ink_layer", "ink_mask", "otsu_threshold",
    "to_mnist", "stroke_width", "deskew", "segment", "prepare_single", "prepare",
    "read_digits", "InkLayer", "MAX_PIXELS", "WORK_MAX_SIDE",
]


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
    # (see ``_best_reading``), so a wrong guess here costs time, never accuracy by itself.
    joins: tuple[tuple[int, int, DigitCrop], ...] = ()
    # Ways to read one piece as two touching digits: ``(i, left, right)``. ``classify`` takes a
    # split only when the network is clearly surer of it than of the whole piece.
    splits: tuple[tuple[int, DigitCrop, DigitCrop], ...] = ()
    # The same, not yet made into crops (``prepare`` offers splits this way): ``(i, source)``.
    split_sources: tuple[tuple[int, SplitSource], ...] = ()

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


def _as_gray(gray: Any) -> np.ndarray:
    if isinstance(gray, np.ndarray) and gray.ndim == 2 and gray.dtype == np.float32:
        return gray
    if isinstance(gray, np.ndarray):
        return from_array(gray)
    return from_pil(gray)


# Analysis resolution. The image is first analysed with its longer side at most _COARSE_SIDE
# pixels; if its digits are at least _ENOUGH_PX tall there (1.6 times the 20 px box of the
# network input; 40 px read no better on our synthetic collections) that analysis is used, otherwise the image is analysed again at the
# size where digits are about _TARGET_PX tall (never above the decoded size). Per-image cost
# then depends on how many digits there are, not on how many megapixels the camera had.
_COARSE_SIDE = 256
_ENOUGH_PX = 32
_TARGET_PX = 64


def _shrunk(gray, f: float) -> np.ndarray:
    h, w = shape_of(gray)
    return resize_box(gray, max(1, round(w * f)), max(1, round(h * f)))


def _locate(gray: np.ndarray, single: bool):
    layer = ink_layer(gray)
    if layer.message:
        return layer, None, [], layer.message
    lab, pieces, message = find_pieces(layer.mask, single=single)
    return layer, lab, pieces, message


def _analyse(gray: np.ndarray, single: bool, deskew_digits: bool, scale: float = 1.0,
             joins: list[tuple[int, int, DigitCrop]] | None = None,
             splits: list[tuple[int, SplitSource]] | None = None
             ) -> tuple[list[DigitCrop], str | None]:
    side = max(shape_of(gray))
    result = None
    if side > _COARSE_SIDE:
        f = _COARSE_SIDE / side
        coarse = _shrunk(gray, f)
        layer, lab, pieces, message = _locate(coarse, single)
        if pieces:
            tallest = max(p.y1 - p.y0 for p in pieces)
            if tallest >= _ENOUGH_PX:
                result, gray, scale = (layer, lab, pieces, message), coarse, scale / f
            else:
                f2 = min(1.0, _TARGET_PX / (tallest / f))
                if f2 < 0.9:
                    gray, scale = _shrunk(gray, f2), scale / f2
    if result is None:
        gray = as_float(gray)
        result = _locate(gray, single)
    layer, lab, pieces, message = result
    if message:
        return [], message
    crops = _crops(layer.ink, lab, [[p] for p in pieces], deskew_digits, scale)
    if not crops:
        return [], "no digit found"
    if not single and joins is not None and len(crops) == len(pieces) >= 2:
        for i, j in _join_candidates(pieces):
            # (Parts of a group that the width rule cut apart are offered too, with no extra
            # margin: that rule cuts wide 2s and 0s as readily as touching digits.)
            joins.extend((i, j, c) for c in _crops(layer.ink, lab, [pieces[i:j]],
                                                   deskew_digits, scale))
    if not single and splits is not None and len(crops) == len(pieces):
        widths = [p.x1 - p.x0 for p in pieces]
        for i, p in enumerate(pieces):
            others = widths[:i] + widths[i + 1:]
            typical = float(np.median(others)) if len(others) >= 2 else None
            windows: dict = {}  # the cuts of one piece share its window (pickled once)
            for left, right in cut_candidates(p, lab, typical):
                splits.append((i, SplitSource.cut(layer.ink, lab, left, right, deskew_digits,
                                                  scale, windows)))
            if path_candidate(p):
                splits.append((i, SplitSource.path(layer.ink, lab, p, deskew_digits, scale)))
    return crops, None


def _shifted(p: Piece, oy: int, ox: int) -> Piece:
    """``p`` in a window at (oy, ox) whose labels are reduced to 1 = p's ink (``_window``)."""
    return Piece(p.y0 - oy, p.y1 - oy, p.x0 - ox, p.x1 - ox, [1],
                 cut=None if p.cut is None else (p.cut[0] - ox, p.cut[1] - ox),
                 shift=None if p.shift is None else
                 (p.shift[0] - oy, tuple(v - ox for v in p.shift[1])))


def _window(ink: np.ndarray, lab: np.ndarray, labels: list[int], y0: int, y1: int, x0: int,
            x1: int) -> tuple[np.ndarray, np.ndarray]:
    """A piece's window of ink, and of labels reduced to one byte: 1 = the piece's ink."""
    return (ink[y0:y1, x0:x1].copy(),
            np.isin(lab[y0:y1, x0:x1], labels).astype(np.uint8))


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
    def cut(cls, ink: np.ndarray, lab: np.ndarray, left: Piece, right: Piece, deskew: bool,
            scale: float, windows: dict | None = None) -> SplitSource:
        h, w = ink.shape
        # The window _crops would read for either half: the pair's box plus one pixel.
        y0, y1 = max(0, min(left.y0, right.y0) - 1), min(h, max(left.y1, right.y1) + 1)
        x0, x1 = max(0, min(left.x0, right.x0) - 1), min(w, max(left.x1, right.x1) + 1)
        key = (y0, y1, x0, x1)
        if windows is None or key not in windows:
            win = _window(ink, lab, left.labels, y0, y1, x0, x1)
            if windows is not None:
                windows[key] = win
        else:
            win = windows[key]
        return cls(win[0], win[1], (y0, x0), _shifted(left, y0, x0), _shifted(right, y0, x0),
                   deskew, scale)

    @classmethod
    def path(cls, ink: np.ndarray, lab: np.ndarray, piece: Piece, deskew: bool,
             scale: float) -> SplitSource:
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

    def crops(self) -> tuple[DigitCrop, DigitCrop] | None:
        left, right = self.left, self.right
        if left is None or right is None:
            halves = path_cut(self.whole, self.lab) if self.whole is not None else None
            if halves is None:
                return None
            left, right = halves
        ink = self.ink if self.ink.dtype != np.uint8 else \
            self.ink.astype(np.float32) * np.float32(1.0 / 255.0)
        pair = _crops(ink, self.lab, [[left], [right]], self.deskew, self.scale, self.origin)
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


def _join_candidates(pieces: list[Piece]) -> list[tuple[int, int]]:
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
    member = np.isin(lab[p.y0:p.y1, p.x0:p.x1], p.labels)
    if p.cut is not None:
        # Pixels outside this piece's share of a split group belong to its neighbours.
        member &= p.cut_mask(p.y0, p.y1, p.x0, p.x1)
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


def _crops(ink_full: np.ndarray, lab: np.ndarray, groups: list[list[Piece]], deskew_digits: bool,
           scale: float, origin: tuple[int, int] = (0, 0)) -> list[DigitCrop]:
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
            pm[p.y0 - y0:p.y1 - y0, p.x0 - x0:p.x1 - x0] = _member(lab, p)
            pn = _dilate3(pm)
            if p.cut is not None:
                pn &= p.cut_mask(y0, y1, x0, x1)
            m |= pm
            near |= pn
        ink = ink_full[y0:y1, x0:x1] * near
        img = to_mnist(ink, m, deskew_digit=deskew_digits)
        if img is None:
            continue
        box = (int(round((px0 + ox) * scale)), int(round((py0 + oy) * scale)),
               max(1, int(round((px1 - px0) * scale))), max(1, int(round((py1 - py0) * scale))))
        crops.append(DigitCrop(img, box))
    return crops


def segment(gray: Any, *, deskew_digits: bool = False) -> list[DigitCrop]:
    """Digits of a grey image (or any array / PIL image), left to right; [] when none."""
    return _analyse(_as_gray(gray), single=False, deskew_digits=deskew_digits)[0]


def prepare_single(gray: Any, *, deskew_digits: bool = False) -> Prepared:
    """The whole image as one digit (no segmentation): a canvas drawing, a cropped digit."""
    g = _as_gray(gray)
    crops, message = _analyse(g, single=True, deskew_digits=deskew_digits)
    return Prepared(tuple(crops), message, (g.shape[1], g.shape[0]))


def prepare(src: ImageSource, *, single: bool = False, name: str | None = None,
            deskew_digits: bool = False) -> Prepared:
    """Decode ``src`` and find its digits; boxes are in the upright full-size image's pixels.

    Raises ``ImageError`` (one line naming the file) when ``src`` is not a readable image.
    """
    gray, scale, size = decode(src, name=name, keep_8bit=True)
    joins: list[tuple[int, int, DigitCrop]] = []
    splits: list[tuple[int, SplitSource]] = []
    crops, message = _analyse(gray, single=single, deskew_digits=deskew_digits, scale=scale,
                              joins=joins, splits=splits)
    return Prepared(tuple(crops), message, size, tuple(joins), split_sources=tuple(splits))


class ProbaPredictor(Protocol):
    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class DigitResult:
    digit: int
    confidence: float
    box: tuple[int, int, int, int]
    top: list[tuple[int, float]]  # the k most likely digits with their probabilities
    low_confidence: bool  # confidence under the caller's threshold
    image: np.ndarray = field(repr=False)  # the 28x28 input the network saw

    def to_json(self) -> dict[str, Any]:
        return {"digit": self.digit, "confidence": round(self.confidence, 4),
                "box": list(self.box), "top": [[d, round(p, 4)] for d, p in self.top],
                "low_confidence": self.low_confidence}


@dataclass(frozen=True)
class Reading:
    """What was read from one input: the text, each digit, or the error."""

    source: str
    text: str = ""
    digits: tuple[DigitResult, ...] = ()
    message: str | None = None  # why no digit was found
    error: str | None = None  # why the input could not be read at all

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.source, "text": self.text,
                "digits": [d.to_json() for d in self.digits],
                "message": self.message, "error": self.error}


def _label(src: Any, i: int) -> str:
    import os

    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    return f"<image {i}>"


def read_digits(sources: Iterable[ImageSource], predictor: ProbaPredictor, *,
                single: bool = False, top_k: int = 3, min_confidence: float = 0.0,
                deskew_digits: bool = False, batch_size: int = 512,
                names: Sequence[str] | None = None) -> list[Reading]:
    """Read the digits in each source; one ``Reading`` per source, in order.

    Inputs that cannot be read give a ``Reading`` with ``error`` set (the others are still
    read). Network calls are batched across images and digits, ``batch_size`` digits at a time.
    """
    srcs = list(sources)
    labels = list(names) if names is not None else [_label(s, i) for i, s in enumerate(srcs)]
    prepared: list[Prepared | str] = []
    for src, label in zip(srcs, labels):
        try:
            prepared.append(prepare(src, single=single, name=label, deskew_digits=deskew_digits))
        except ImageError as exc:
            prepared.append(str(exc))
    return classify(prepared, labels, predictor, top_k=top_k, min_confidence=min_confidence,
                    batch_size=batch_size)


# Each digit of a reading earns this bonus (in log-probability): a join must make the network
# at least exp(0.1) = 1.1 times surer than the product of the pieces' confidences, so two
# clearly read digits are not fused into one merely because the fused image also looks like a
# digit; a fragment read with low confidence (a 5's bar, a broken stroke) is still absorbed.
_DIGIT_BONUS = 0.1


def _best_reading(n: int, rows: np.ndarray, joins, join_rows: np.ndarray):
    """Which pieces to read as one digit: the split of 0..n-1 into runs with the highest sum of
    log(confidence) + _DIGIT_BONUS (dynamic programming over the offered joins).

    Returns the chosen runs as ``(start, stop, source)``; source is -1 for a single piece and
    the index into ``joins`` otherwise.
    """
    conf = np.log(np.maximum(rows.max(axis=1), 1e-9)) + _DIGIT_BONUS
    jconf = np.log(np.maximum(join_rows.max(axis=1), 1e-9)) + _DIGIT_BONUS \
        if len(joins) else np.zeros(0)
    ending: dict[int, list[tuple[int, int]]] = {}
    for k, (i, j, _) in enumerate(joins):
        ending.setdefault(j, []).append((i, k))
    best = np.full(n + 1, -np.inf)
    best[0] = 0.0
    back: list[tuple[int, int]] = [(0, -1)] * (n + 1)
    for j in range(1, n + 1):
        best[j], back[j] = best[j - 1] + conf[j - 1], (j - 1, -1)
        for i, k in ending.get(j, []):
            if best[i] + jconf[k] > best[j]:
                best[j], back[j] = best[i] + jconf[k], (i, k)
    runs, j = [], n
    while j > 0:
        i, k = back[j]
        runs.append((i, j, k))
        j = i
    return runs[::-1]


# A split of one piece into two touching digits is taken only when the network is clearly
# surer of it: the product of the halves' confidences beats the whole by _SPLIT_MARGIN (log),
# each half is read at least _SPLIT_EACH surer than the whole and at least _SPLIT_MIN. An
# MNIST network has no "not a digit" answer, so the halves of a single 0, 4 or 8 cut down the
# middle are often read with fair confidence; on our synthetic single digits this rule splits
# about 1 in 900, and it recovers about a quarter of the touching pairs the width rule missed.
_SPLIT_MARGIN = 0.2
_SPLIT_EACH = 0.15
_SPLIT_MIN = 0.8
_PATH_BELOW = 0.6
def _choose(p: Prepared, rows: np.ndarray, join_rows: np.ndarray, splits, split_rows: np.ndarray):
    """The digits to report: joins chosen by ``_best_reading``, then each piece still read on
    its own replaced by its best two-digit split (of ``splits``, ``(i, left, right)``) where
    the network is clearly surer of that. Returns ``(crops, rows)``."""
    crops = list(p.crops)
    split_best: dict[int, tuple[float, int, float]] = {}
    for k, (i, _, _) in enumerate(splits):
        pa, pb = float(split_rows[2 * k].max()), float(split_rows[2 * k + 1].max())
        score = np.log(max(pa, 1e-9)) + np.log(max(pb, 1e-9)) + 2 * _DIGIT_BONUS
        if i not in split_best or score > split_best[i][0]:
            split_best[i] = (score, k, min(pa, pb))
    out_c, out_r = [], []
    for i, j, src in _best_reading(len(crops), rows, p.joins, join_rows):
        if src >= 0:
            out_c.append(p.joins[src][2])
            out_r.append(join_rows[src])
            continue
        pw = float(rows[i].max())
        whole = np.log(max(pw, 1e-9)) + _DIGIT_BONUS
        score, k, weakest = split_best.get(i, (-np.inf, -1, 0.0))
        if score > whole + _SPLIT_MARGIN and weakest >= max(_SPLIT_MIN, pw + _SPLIT_EACH):
            out_c.extend(splits[k][1:])
            out_r.extend(split_rows[2 * k:2 * k + 2])
        else:
            out_c.append(crops[i])
            out_r.append(rows[i])
    return tuple(out_c), np.stack(out_r)


def classify(prepared: Sequence[Prepared | str], labels: Sequence[str],
             predictor: ProbaPredictor, *, top_k: int = 3, min_confidence: float = 0.0,
             batch_size: int = 512) -> list[Reading]:
    """Run the network over already prepared images (a string entry is that input's error)."""
    ok = [p for p in prepared if isinstance(p, Prepared) and p.crops]
    inputs = []
    for p in ok:
        inputs.append(p.inputs)
        inputs.extend(c.image[None] for _, _, c in p.joins)
    probs = _predict(predictor, inputs, batch_size)
    # Splits second, and only where one can win: ``_choose`` takes a split only when each half
    # is read at least _SPLIT_EACH surer than the whole, impossible once the whole is read
    # above 1 - _SPLIT_EACH (most digits). Those splits are left out (their crops are not even
    # made, for ``split_sources``): they could never be chosen.
    at, offered, split_inputs = 0, [], []
    for p in ok:
        rows = probs[at:at + len(p.crops)]
        at += len(p.crops) + len(p.joins)
        unsure = {i for i in range(len(p.crops)) if float(rows[i].max()) <= 1.0 - _SPLIT_EACH}
        cands = [sp for sp in p.splits if sp[0] in unsure]
        for i, source in p.split_sources:
            # Path cuts (narrow pieces, most single digits) only for pieces read at
            # _PATH_BELOW or less: touching 1s are read as a hesitant 4 or 1, and the search
            # is the costliest candidate.
            wanted = i in unsure and (source.whole is None
                                      or float(rows[i].max()) <= _PATH_BELOW)
            pair = source.crops() if wanted else None
            if pair is not None:
                cands.append((i, *pair))
        offered.append(cands)
        split_inputs.extend(np.stack([a.image, b.image]) for _, a, b in cands)
    split_probs = _predict(predictor, split_inputs, batch_size)
    k = max(1, min(10, top_k))
    out, at, n_ok, at_split = [], 0, 0, 0
    for p, label in zip(prepared, labels):
        if isinstance(p, str):
            out.append(Reading(label, error=p))
            continue
        crops = p.crops
        if not crops:
            out.append(Reading(label, "", (), p.message))
            continue
        rows = probs[at:at + len(crops)]
        at += len(crops)
        join_rows = probs[at:at + len(p.joins)]
        at += len(p.joins)
        cands = offered[n_ok]
        n_ok += 1
        split_rows = split_probs[at_split:at_split + 2 * len(cands)]
        at_split += 2 * len(cands)
        crops, rows = _choose(p, rows, join_rows, cands, split_rows)
        digits = []
        for crop, row in zip(crops, rows):
            order = np.argsort(-row, kind="stable")[:k]
            conf = float(row[order[0]])
            digits.append(DigitResult(int(order[0]), conf, crop.box,
                                      [(int(d), float(row[d])) for d in order],
                                      conf < min_confidence, crop.image))
        text = "".join(str(d.digit) for d in digits)
        out.append(Reading(label, text, tuple(digits), p.message))
    return out


def _predict(predictor: ProbaPredictor, inputs: list[np.ndarray], batch_size: int) -> np.ndarray:
    """Probabilities for the concatenated ``inputs``, ``batch_size`` images per network call."""
    stack = np.concatenate(inputs) if inputs else np.zeros((0, 28, 28), np.float32)
    if not len(stack):
        return np.zeros((0, 10), np.float32)
    parts = [np.asarray(predictor.predict_proba(stack[i:i + batch_size]), dtype=np.float32)
             for i in range(0, len(stack), batch_size)]
    probs = np.concatenate(parts)
    if probs.shape != (len(stack), 10):
        raise DigitnetError(f"predictor returned shape {probs.shape}, "
                            f"expected ({len(stack)}, 10)")
    return probs
