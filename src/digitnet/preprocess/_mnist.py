"""One digit's ink -> the 28x28 MNIST-style input (white ink on black, 20x20 box, centre of mass).

This is the recipe MNIST itself was made with (LeCun et al.: size-normalised to fit a 20x20 box
with anti-aliasing, aspect ratio kept, centred by centre of mass in 28x28), plus a stroke
thickness normalisation: a thick canvas brush or a fine pen scaled to 20 px gives strokes far
from MNIST's, and networks trained on MNIST read those poorly.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

__all__ = ["center_of_mass_28", "deskew", "stroke_width", "to_mnist"]

SIDE = 28
BOX = 20
# Stroke width in the 28x28 image, measured as 2 * area / perimeter on pixels > 0.5: MNIST's
# test set has 10th/50th/90th percentiles of 2.1 / 2.6 / 3.7 px. Strokes outside
# [_THIN, _THICK] are brought to _TO_THIN / _TO_THICK (well inside the MNIST range).
_THIN, _THICK = 1.7, 3.8
_TO_THIN, _TO_THICK = 2.8, 2.3
# Morphology runs at this many pixels per final pixel (an intermediate 60 px digit): fine enough
# for sub-pixel width changes, small enough to cost a fraction of a millisecond.
_OVERSAMPLE = 3


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary shape in pixels: 2 * area / perimeter.

    For a stroke of length L and width w the area is L*w and the boundary about 2L, so this is
    w, without needing a skeleton.
    """
    m = np.asarray(mask, dtype=bool)
    area = int(m.sum())
    if area == 0:
        return 0.0
    # Boundary pixels: ink with a 4-neighbour outside the ink (a cross-shaped erosion, written
    # with slices: this runs for every digit and scipy's call overhead dominated it).
    p = np.zeros((m.shape[0] + 2, m.shape[1] + 2), bool)
    p[1:-1, 1:-1] = m
    inner = m & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    perim = area - int(np.count_nonzero(inner))
    return 2.0 * area / max(perim, 1)


def _resize(a: np.ndarray, w: int, h: int) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), "F")
    shrinking = w <= a.shape[1] and h <= a.shape[0]
    # BOX = area averaging: exactly the anti-aliasing of a binary glyph MNIST was made with.
    return np.asarray(
        img.resize((w, h), Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR),
        dtype=np.float32,
    )


def _bbox(a: np.ndarray, eps: float = 0.02) -> tuple[slice, slice] | None:
    rows = np.flatnonzero((a > eps).any(axis=1))
    cols = np.flatnonzero((a > eps).any(axis=0))
    if rows.size == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def center_of_mass_28(small: np.ndarray) -> np.ndarray:
    """Paste ``small`` (at most 28x28) into a 28x28 frame so its centre of mass is at the centre."""
    out = np.zeros((SIDE, SIDE), np.float32)
    h, w = small.shape
    total = float(small.sum())
    if total <= 0:
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    else:
        cy = float((small.sum(axis=1) * np.arange(h)).sum()) / total
        cx = float((small.sum(axis=0) * np.arange(w)).sum()) / total
    # Centre of the 28x28 frame in pixel-index coordinates is 13.5; keep the digit inside.
    y0 = int(np.clip(round(13.5 - cy), 0, SIDE - h))
    x0 = int(np.clip(round(13.5 - cx), 0, SIDE - w))
    out[y0 : y0 + h, x0 : x0 + w] = small
    return out


def deskew(img28: np.ndarray) -> np.ndarray:
    """Remove the slant of a 28x28 digit using its second-order image moments."""
    total = float(img28.sum())
    if total <= 0:
        return img28
    ys, xs = np.mgrid[:SIDE, :SIDE]
    cy = float((ys * img28).sum()) / total
    cx = float((xs * img28).sum()) / total
    mu02 = float(((ys - cy) ** 2 * img28).sum()) / total
    mu11 = float(((ys - cy) * (xs - cx) * img28).sum()) / total
    if mu02 < 1e-3:
        return img28
    alpha = mu11 / mu02
    # Output (y, x) samples input (y, x + alpha * (y - cy)): a shear about the centre row.
    matrix = np.array([[1.0, 0.0], [alpha, 1.0]])
    offset = np.array([0.0, -alpha * cy])
    out = ndi.affine_transform(img28, matrix, offset=offset, order=1, mode="constant")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def to_mnist(
    ink: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    normalize_stroke: bool = True,
    deskew_digit: bool = False,
) -> np.ndarray | None:
    """A crop of one digit's ink (float [0, 1], 1 = ink) -> float32 (28, 28) MNIST-style input.

    ``mask`` (the thresholded ink of the same crop) is used to measure stroke width; without it
    ``ink > 0.5`` is used. Returns None when the crop holds no ink.
    """
    ink = np.asarray(ink, dtype=np.float32)
    box = _bbox(ink)
    if box is None:
        return None
    ink = ink[box]
    m = (ink > 0.5) if mask is None else np.asarray(mask, dtype=bool)[box]
    h, w = ink.shape
    longest = max(h, w)
    width28 = stroke_width(m) * BOX / longest
    x = ink
    if normalize_stroke and m.any() and (width28 > _THICK or width28 < _THIN):
        # Intermediate resolution for the width change: the longer side = 20 * _OVERSAMPLE px.
        # (Strokes already in MNIST's range skip it and go straight to 20x20.)
        a = BOX * _OVERSAMPLE / longest
        iw, ih = max(1, round(w * a)), max(1, round(h * a))
        x = _resize(ink, iw, ih)
        frac = _resize(m.astype(np.float32), iw, ih)
        # A stroke narrower than one intermediate pixel covers only that fraction of it: cut
        # at half the expected coverage so thin pen strokes are not lost.
        cover = min(1.0, width28 * _OVERSAMPLE)
        binary = frac > 0.5 * cover
        if binary.any():
            if width28 > _THICK:
                r = min((width28 - _TO_THIN) * _OVERSAMPLE / 2.0, 0.35 * width28 * _OVERSAMPLE)
                dist = ndi.distance_transform_edt(binary)
                x = x * np.clip(dist - r, 0.0, 1.0)
            else:
                r = (_TO_THICK - width28) * _OVERSAMPLE / 2.0
                binary = np.pad(binary, int(np.ceil(r)) + 1)
                x = np.pad(x, int(np.ceil(r)) + 1)
                dist = ndi.distance_transform_edt(~binary)
                peak = float(x.max()) or 1.0
                x = np.maximum(x / peak, np.clip(r + 1.0 - dist, 0.0, 1.0))
    box = _bbox(x)
    if box is None:
        return None
    x = x[box]
    h, w = x.shape
    b = BOX / max(h, w)
    small = _resize(x, max(1, round(w * b)), max(1, round(h * b)))
    peak = float(small.max())
    if peak <= 0:
        return None
    small = np.clip(small / peak, 0.0, 1.0)
    out = center_of_mass_28(small)
    if deskew_digit:
        out = deskew(out)
    return out
