"""Any user image or canvas -> 28x28 MNIST-style input(s); shared by the CLI and the GUI.

Pipeline (see docs/architecture.md, "Input convention"):

1. ``load_image`` / ``from_pil`` / ``from_array``: decode safely (EXIF orientation, transparency
   composited, 16-bit scaled, first frame only, decompression bombs refused) to grey float32.
2. ``ink_layer`` / ``ink_mask``: decide polarity, flatten uneven lighting, Otsu threshold with
   a noise floor, ink grey levels in [0, 1].
3. ``segment``: digits left to right (pieces merged, specks dropped, touching digits split).
4. ``to_mnist``: crop, stroke-width normalisation, fit in 20x20 (anti-aliased), centre of mass
   in 28x28; white ink on black, float32 in [0, 1].

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
from ._load import (MAX_PIXELS, WORK_MAX_SIDE, ImageSource, decode, from_array, from_pil,
                    load_image)
from ._mnist import deskew, stroke_width, to_mnist
from ._segment import Piece, find_pieces

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
    # When the segmentation found 2-3 pieces that together are shaped like one digit (a broken
    # 5, a wide thick 4 cut in two), the whole ink as one digit: ``classify`` keeps whichever
    # reading the network is surer of (product of the digits' confidences).
    alternative: DigitCrop | None = None
    # Neighbouring pieces that together are shaped like one digit (a 3 or 5 broken where the
    # pen was lifted, inside a longer number): ``(i, crop)`` = crops i and i+1 read as one.
    # ``classify`` merges them when the network is surer of the merged digit.
    pair_merges: tuple[tuple[int, DigitCrop], ...] = ()

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
# pixels; if its digits are at least _ENOUGH_PX tall there (twice the 20 px box
# of the network input) that analysis is used, otherwise the image is analysed again at the
# size where digits are about _TARGET_PX tall (never above the decoded size). Per-image cost
# then depends on how many digits there are, not on how many megapixels the camera had.
_COARSE_SIDE = 256
_ENOUGH_PX = 40
_TARGET_PX = 64


def _shrunk(gray: np.ndarray, f: float) -> np.ndarray:
    h, w = gray.shape
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return np.asarray(Image.fromarray(gray, "F").resize(size, Image.BOX), dtype=np.float32)


def _locate(gray: np.ndarray, single: bool):
    layer = ink_layer(gray)
    if layer.message:
        return layer, None, [], layer.message
    lab, pieces, message = find_pieces(layer.mask, single=single)
    return layer, lab, pieces, message


def _analyse(gray: np.ndarray, single: bool, deskew_digits: bool, scale: float = 1.0,
             alternatives: list[DigitCrop] | None = None,
             pairs: list[tuple[int, DigitCrop]] | None = None
             ) -> tuple[list[DigitCrop], str | None]:
    side = max(gray.shape)
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
        result = _locate(gray, single)
    layer, lab, pieces, message = result
    if message:
        return [], message
    crops = _crops(gray, layer, lab, pieces, deskew_digits, scale)
    if not crops:
        return [], "no digit found"
    if not single and pairs is not None and len(crops) == len(pieces) >= 2:
        for i in range(len(pieces) - 1):
            a, b = pieces[i], pieces[i + 1]
            h = max(a.y1, b.y1) - min(a.y0, b.y0)
            gap = b.x0 - a.x1
            if max(a.x1, b.x1) - min(a.x0, b.x0) <= _PAIR_ASPECT * h and gap <= 0.15 * h:
                cut = None
                if a.cut is not None and b.cut is not None:
                    cut = (min(a.cut[0], b.cut[0]), max(a.cut[1], b.cut[1]))
                merged = Piece(min(a.y0, b.y0), max(a.y1, b.y1), min(a.x0, b.x0),
                               max(a.x1, b.x1), sorted(set(a.labels + b.labels)), cut=cut)
                pairs.extend((i, c) for c in _crops(gray, layer, lab, [merged], deskew_digits,
                                                    scale))
    if not single and len(crops) in (2, 3) and alternatives is not None:
        x0 = min(p.x0 for p in pieces)
        x1 = max(p.x1 for p in pieces)
        y0 = min(p.y0 for p in pieces)
        y1 = max(p.y1 for p in pieces)
        # A broken or wide single digit cut in pieces spans up to about 1.6 times its height
        # in our synthetic set (wide 2s and 0s); longer numbers are wider than that, so only
        # short readings get the one-digit alternative.
        if (x1 - x0) <= _ONE_DIGIT_ASPECT * (y1 - y0):
            _, whole, _ = find_pieces(layer.mask, single=True)
            alternatives.extend(_crops(gray, layer, lab, whole, deskew_digits, scale))
    return crops, None


_ONE_DIGIT_ASPECT = 1.6
# Two neighbouring pieces are offered to the network as one digit when together they are no
# wider than tall (MNIST's digits, bar the widest 0s and 2s).
_PAIR_ASPECT = 1.0


def _crops(gray, layer, lab, pieces, deskew_digits: bool, scale: float) -> list[DigitCrop]:
    crops = []
    h, w = gray.shape
    for p in pieces:
        sub = lab[p.y0:p.y1, p.x0:p.x1]
        member = np.isin(sub, p.labels)
        if p.cut is not None:
            # Columns outside this piece's share of a split group belong to its neighbours.
            xs = np.arange(p.x0, p.x1)
            member &= ((xs >= p.cut[0]) & (xs < p.cut[1]))[None, :]
        # One pixel of margin so the anti-aliased edge of the stroke (below the threshold)
        # keeps its grey levels.
        y0, y1 = max(0, p.y0 - 1), min(h, p.y1 + 1)
        x0, x1 = max(0, p.x0 - 1), min(w, p.x1 + 1)
        m = np.zeros((y1 - y0, x1 - x0), bool)
        m[p.y0 - y0:p.y1 - y0, p.x0 - x0:p.x1 - x0] = member
        near = ndi.binary_dilation(m, structure=np.ones((3, 3), bool))
        if p.cut is not None:
            xs = np.arange(x0, x1)
            near &= ((xs >= p.cut[0]) & (xs < p.cut[1]))[None, :]
        ink = layer.ink[y0:y1, x0:x1] * near
        img = to_mnist(ink, m, deskew_digit=deskew_digits)
        if img is None:
            continue
        bx, by, bw, bh = p.box
        box = (int(round(bx * scale)), int(round(by * scale)),
               max(1, int(round(bw * scale))), max(1, int(round(bh * scale))))
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
    gray, scale, size = decode(src, name=name)
    alt: list[DigitCrop] = []
    pairs: list[tuple[int, DigitCrop]] = []
    crops, message = _analyse(gray, single=single, deskew_digits=deskew_digits, scale=scale,
                              alternatives=alt, pairs=pairs)
    return Prepared(tuple(crops), message, size, alt[0] if alt else None, tuple(pairs))


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


def _surer(merged: float, split: float) -> bool:
    """Read pieces as one digit only when the network is clearly surer of that reading.

    The product of several confidences is smaller than one confidence even when every digit is
    read well; the margin keeps two clear digits (0.9 each) from being merged into one.
    """
    return merged >= 0.9 and merged > split + 0.1


def _merge_pairs(crops: list, rows: list, merges, merge_rows):
    """Left to right, read pieces i and i+1 as one digit where the network is surer of that."""
    best = {i: (c, r) for (i, c), r in zip(merges, merge_rows)}
    out_c, out_r, i = [], [], 0
    while i < len(crops):
        if i in best and i + 1 < len(crops):
            c, r = best[i]
            if _surer(float(r.max()), float(rows[i].max()) * float(rows[i + 1].max())):
                out_c.append(c)
                out_r.append(r)
                i += 2
                continue
        out_c.append(crops[i])
        out_r.append(rows[i])
        i += 1
    return tuple(out_c), np.stack(out_r)


def classify(prepared: Sequence[Prepared | str], labels: Sequence[str],
             predictor: ProbaPredictor, *, top_k: int = 3, min_confidence: float = 0.0,
             batch_size: int = 512) -> list[Reading]:
    """Run the network over already prepared images (a string entry is that input's error)."""
    inputs = []
    for p in prepared:
        if isinstance(p, Prepared) and p.crops:
            inputs.append(p.inputs)
            if p.alternative is not None:
                inputs.append(p.alternative.image[None])
            inputs.extend(c.image[None] for _, c in p.pair_merges)
    stack = np.concatenate(inputs) if inputs else np.zeros((0, 28, 28), np.float32)
    probs = np.zeros((0, 10), np.float32)
    if len(stack):
        parts = [np.asarray(predictor.predict_proba(stack[i:i + batch_size]), dtype=np.float32)
                 for i in range(0, len(stack), batch_size)]
        probs = np.concatenate(parts)
        if probs.shape != (len(stack), 10):
            raise DigitnetError(f"predictor returned shape {probs.shape}, "
                                f"expected ({len(stack)}, 10)")
    k = max(1, min(10, top_k))
    out, at = [], 0
    for p, label in zip(prepared, labels):
        if isinstance(p, str):
            out.append(Reading(label, error=p))
            continue
        rows = probs[at:at + len(p.crops)]
        at += len(p.crops)
        crops = p.crops
        alt = None
        if p.alternative is not None and p.crops:
            alt = probs[at]
            at += 1
        pair_rows = probs[at:at + len(p.pair_merges)]
        at += len(p.pair_merges)
        if p.pair_merges:
            crops, rows = _merge_pairs(list(crops), list(rows), p.pair_merges, pair_rows)
        if alt is not None and _surer(float(alt.max()), float(np.prod(np.max(rows, axis=1)))):
            crops, rows = (p.alternative,), alt[None]
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
