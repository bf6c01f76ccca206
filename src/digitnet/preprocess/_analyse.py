"""Analysis of one image: decode, find the ink, segment, and make the candidate digits.

``prepare`` is the entry point (a file, bytes, a PIL image or an array -> ``Prepared``);
``prepare_single`` reads a whole image as one digit (a canvas drawing); ``segment`` returns
the digit crops alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image

from ._candidates import DigitCrop, Prepared, SplitSource, crops_of, join_candidates
from ._ink import ONLY_LIGHT, InkLayer, ink_layer, mostly_ink, other_polarity
from ._load import ImageSource, as_float, decode, from_array, from_pil, resize_box, shape_of
from ._pairs import mark_probability, upright_bar
from ._rules import remove_ruling
from ._segment import Piece, cut_candidates, find_pieces, path_candidate

__all__ = ["prepare", "prepare_single", "segment"]


def _as_gray(gray: Any) -> np.ndarray:
    if isinstance(gray, np.ndarray) and gray.ndim == 2 and gray.dtype == np.float32:
        return gray
    if isinstance(gray, np.ndarray):
        return from_array(gray)
    return from_pil(gray)


# Analysis resolution. The image is first analysed with its longer side at most _COARSE_SIDE
# pixels; if its digits are at least _ENOUGH_PX tall there (1.6 times the 20 px box of the
# network input; 40 px read no better on our synthetic collections) that analysis is used,
# otherwise the image is analysed again at the size where digits are about _TARGET_PX tall
# (never above the decoded size). Per-image cost
# then depends on how many digits there are, not on how many megapixels the camera had.
_COARSE_SIDE = 256
_ENOUGH_PX = 32
_TARGET_PX = 64


def _shrunk(gray: np.ndarray | Image.Image, f: float) -> np.ndarray:
    h, w = shape_of(gray)
    return resize_box(gray, max(1, round(w * f)), max(1, round(h * f)))


def _locate(gray: np.ndarray, single: bool):
    layer = ink_layer(gray)
    if mostly_ink(layer):
        layer = _lined_other_polarity(gray, layer)
    layer = remove_ruling(layer)
    if layer.message:
        return layer, None, [], layer.message
    lab, pieces, message = find_pieces(layer.mask, single=single)
    return layer, lab, pieces, message


# Ink is a minority of an image of handwriting, except for one bold digit cropped tight
# (load_digits' tight crops: up to 0.89 of the image, and at most 0.76 times as wide as tall).
# A field at least WIDE_FIELD times as wide as tall (several digits) whose second look took
# most of it for ink has usually had its paper taken for ink: it is read with the other
# polarity when that has printed lines (at least LINES_MIN of its ink taken out as a form's
# lines). Fields of benchmarks/bench_forms.py that came here measured 2.9 times as wide as
# tall or more, lines 0.08-0.74 of the ink for most of them.
WIDE_FIELD = 1.5
LINES_MIN = 0.05


def _lined_other_polarity(gray: np.ndarray, layer: InkLayer) -> InkLayer:
    """``layer`` (a second look that took most of the image for ink), or, for a wide field,
    the other polarity's ink when that has printed lines round the writing: a field cropped
    to its box, whose dark border the polarity cue took for paper."""
    h, w = gray.shape
    if w < WIDE_FIELD * h:
        return layer
    other = other_polarity(gray, not layer.dark_ink)
    if other is None:
        return layer
    lines = 1.0 - float(remove_ruling(other).mask.sum()) / max(1, int(other.mask.sum()))
    if lines < LINES_MIN:
        return layer
    return replace(other, doubt=layer.doubt, faint=layer.faint)


def _analyse(
    gray: np.ndarray | Image.Image,
    single: bool,
    deskew_digits: bool,
    scale: float = 1.0,
    joins: list[tuple[int, int, DigitCrop]] | None = None,
    splits: list[tuple[int, SplitSource]] | None = None,
    parts: set[int] | None = None,
    join_splits: list[tuple[int, SplitSource]] | None = None,
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
    crops = crops_of(layer.ink, lab, [[p] for p in pieces], deskew_digits, scale)
    if not crops:
        return [], "no digit found"
    if layer.doubt and not _digit_like(crops, *_mark_at(layer)):
        return [], layer.doubt
    if not single and joins is not None and len(crops) == len(pieces) >= 2:
        for i, j in join_candidates(pieces):
            # (Parts of a group that the width rule cut apart are offered too, with no extra
            # margin: that rule cuts wide 2s and 0s as readily as touching digits.)
            for c in crops_of(layer.ink, lab, [pieces[i:j]], deskew_digits, scale):
                whole = _rejoined(pieces[i:j]) if join_splits is not None else None
                if join_splits is not None and whole is not None:
                    shared: dict = {}
                    join_splits.extend(
                        (
                            len(joins),
                            SplitSource.cut(layer.ink, lab, a, b, deskew_digits, scale, shared),
                        )
                        for a, b in cut_candidates(whole, lab)
                    )
                joins.append((i, j, c))
    if parts is not None and len(crops) == len(pieces):
        parts.update(i for i, p in enumerate(pieces) if p.cut is not None)
    if not single and splits is not None and len(crops) == len(pieces):
        widths = [p.x1 - p.x0 for p in pieces]
        for i, p in enumerate(pieces):
            others = widths[:i] + widths[i + 1 :]
            typical = float(np.median(others)) if len(others) >= 2 else None
            windows: dict = {}  # the cuts of one piece share its window (pickled once)
            for left, right in cut_candidates(p, lab, typical):
                splits.append(
                    (i, SplitSource.cut(layer.ink, lab, left, right, deskew_digits, scale, windows))
                )
            if path_candidate(p):
                splits.append((i, SplitSource.path(layer.ink, lab, p, deskew_digits, scale)))
    return crops, None


# A second look's ink is kept when at least one of its crops is a digit by the mark detector
# (P(not a digit) under MARK_AT), or under MARK_AT_INK when the first look had found ink too
# (touching the border; a tight crop of a digit, most often). Chosen on the benchmark
# populations' crops (none lost at either) and on photos of empty pages (docs/reading.md,
# "Empty pages under uneven light").
# A second look opened by faint two-level evidence (``InkLayer.faint``) asks P under
# MARK_AT_FAINT, with no benefit of the doubt for bars: bold tight photo crops of digits
# measured P <= 0.02 but for one in 18, photos of empty pages mostly 0.1-0.9.
MARK_AT = 0.7
MARK_AT_INK = 0.95
MARK_AT_BAR = 0.9
MARK_AT_FAINT = 0.05


def _mark_at(layer: InkLayer) -> tuple[float, float]:
    """The detector's thresholds for a second look's crops: (any crop, an upright bar)."""
    if layer.faint:
        return MARK_AT_FAINT, MARK_AT_FAINT
    at = MARK_AT_INK if layer.doubt == ONLY_LIGHT else MARK_AT
    return at, max(at, MARK_AT_BAR)


def _digit_like(crops: list[DigitCrop], at: float, at_bar: float) -> bool:
    p = mark_probability(np.stack([c.image for c in crops]))
    # An upright bar is given more benefit of the doubt: it is drawn like a 1, and the
    # detector was not trained on bars of shadow (they are drawn like a 1 too).
    bar = np.array([upright_bar(c.image) for c in crops])
    limit = np.where(bar, at_bar, at)
    if not (p < limit).any():
        return False
    # ... and the crops taken together must look like digits too: a textured empty page under
    # uneven light gives a row of blobs of which one or two pass (their median P measured
    # mostly 0.67-1.0, the benchmark's digits 0.06 or less in 99 of 100 images; under 0.42
    # when the first look found border ink). Each crop is measured against its own limit, so
    # one crop alone is judged as before.
    return bool(np.median(p / limit) < 1.0)


def _rejoined(run: list[Piece]) -> Piece | None:
    """Two neighbouring parts of one piece of ink that the width rule cut apart, as one
    piece again (None for anything else)."""
    if len(run) != 2:
        return None
    a, b = run
    if a.cut is None or b.cut is None or a.shift or b.shift or a.labels != b.labels:
        return None
    if abs(a.cut[1] - b.cut[0]) > 1e-9:
        return None
    return Piece(
        min(a.y0, b.y0),
        max(a.y1, b.y1),
        min(a.x0, b.x0),
        max(a.x1, b.x1),
        a.labels,
        cut=(a.cut[0], b.cut[1]),
    )


def segment(gray: Any, *, deskew_digits: bool = False) -> list[DigitCrop]:
    """Digits of a grey image (or any array / PIL image), left to right; [] when none."""
    return _analyse(_as_gray(gray), single=False, deskew_digits=deskew_digits)[0]


def prepare_single(gray: Any, *, deskew_digits: bool = False) -> Prepared:
    """The whole image as one digit (no segmentation): a canvas drawing, a cropped digit."""
    g = _as_gray(gray)
    crops, message = _analyse(g, single=True, deskew_digits=deskew_digits)
    return Prepared(tuple(crops), message, (g.shape[1], g.shape[0]))


def prepare(
    src: ImageSource, *, single: bool = False, name: str | None = None, deskew_digits: bool = False
) -> Prepared:
    """Decode ``src`` and find its digits; boxes are in the upright full-size image's pixels.

    Raises ``ImageError`` (one line naming the file) when ``src`` is not a readable image.
    """
    gray, scale, size = decode(src, name=name, keep_8bit=True)
    joins: list[tuple[int, int, DigitCrop]] = []
    splits: list[tuple[int, SplitSource]] = []
    parts: set[int] = set()
    join_splits: list[tuple[int, SplitSource]] = []
    crops, message = _analyse(
        gray,
        single=single,
        deskew_digits=deskew_digits,
        scale=scale,
        joins=joins,
        splits=splits,
        parts=parts,
        join_splits=join_splits,
    )
    return Prepared(
        tuple(crops),
        message,
        size,
        tuple(joins),
        split_sources=tuple(splits),
        cut_parts=frozenset(parts),
        join_splits=tuple(join_splits),
    )
