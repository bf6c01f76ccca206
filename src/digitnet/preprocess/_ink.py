"""Finding the ink: polarity, uneven lighting, threshold, and the ink's grey levels.

Input is a grey float32 image (0 black .. 1 white) as the camera or scanner saw it. Output is an
``InkLayer``: ink intensity in [0, 1] (1 = stroke core, 0 = paper), a boolean ink mask, and,
when there is no ink at all, the reason why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from ._load import resize_box

__all__ = ["InkLayer", "framed_layer", "ink_layer", "ink_mask", "otsu_threshold"]

# Ink must stand out from the paper by at least this much (fraction of full scale, ~10 grey
# levels of 255) and by this many noise standard deviations: JPEG ringing on a blank page and
# sensor noise on a uniform photo fall below both; faint pencil on a phone photo (contrast 0.15
# and noise 0.02 in our synthetic set) passes both.
MIN_CONTRAST = 0.04
MIN_SNR = 6.0
# Pixels further than this many noise standard deviations above the paper are ink even when
# Otsu (which balances the two classes) would put the cut higher; Otsu's cut is used when it
# is above this floor, so a few thousand noise pixels can never outvote the ink.
NOISE_FLOOR_SIGMAS = 4.0
# Background estimate: analysed at most this many pixels on the long side; lighting varies
# slowly, so nothing is lost and the morphology costs well under a millisecond.
_BG_SIDE = 64
# A field cropped to its printed box (``_framed_by_line``).
_LINE_EDGE = 0.04
_LINE_INSIDE = 0.12
_LINE_SHARE = 0.6  # a row of boxes has paper between them
_LINE_JUST_IN = 0.15
_LINE_ASPECT = 0.7  # a field is at least this wide for its height (one box round one digit)


@dataclass(frozen=True)
class InkLayer:
    ink: np.ndarray  # float32 (H, W) in [0, 1]: 1 = stroke core, 0 = paper
    mask: np.ndarray  # bool (H, W): ink pixels (Otsu / noise-floor threshold)
    dark_ink: bool  # True when the ink was darker than the paper
    message: str | None  # why there is no ink, or None
    # Set when the ink was found by the second look, in a frame (ink touching the border, or
    # an image the first look found blank), or by a first look with specks by the border: why
    # there would be no digit if it is not one (the first look's message, ``ONLY_LIGHT`` or
    # ``ONLY_TEXTURE``). Uneven light on an empty page gives such ink
    # too, so the caller keeps it only if it looks like digits (the mark detector).
    doubt: str | None = None
    # Set with ``doubt`` when the second look was opened only by the weaker two-level measure
    # (``_MIN_TWO_LEVELS_FAINT``), or for the specks' first look: the mark detector then asks
    # more of the ink.
    faint: bool = False


ONLY_LIGHT = "no digit found: only light and shadow on the paper, nothing drawn"
ONLY_TEXTURE = "no ink found: only noise or texture, nothing stands out from the paper"


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values`` (any range): the cut maximising between-class variance."""
    v = np.asarray(values, dtype=np.float32).ravel()
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return lo
    idx = np.minimum(((v - lo) * (bins / (hi - lo))).astype(np.int64), bins - 1)
    hist = np.bincount(idx, minlength=bins).astype(np.float64)
    centers = lo + (np.arange(bins) + 0.5) * (hi - lo) / bins
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centers)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    k = int(np.argmax(between[:-1]))
    return lo + (k + 1) * (hi - lo) / bins


def _median(a: np.ndarray) -> float:
    """Median of a (small) array: np.median's result, at a fifth of its call overhead."""
    v = np.asarray(a).ravel()
    n = v.size
    if n % 2:
        return float(np.partition(v, n // 2)[n // 2])
    part = np.partition(v, (n // 2 - 1, n // 2))
    return 0.5 * (float(part[n // 2 - 1]) + float(part[n // 2]))


def _small(a: np.ndarray, side: int) -> np.ndarray:
    h, w = a.shape
    if max(h, w) <= side:
        return a
    f = side / max(h, w)
    return resize_box(a, max(1, round(w * f)), max(1, round(h * f)))


def _upsample(small: np.ndarray, w: int, h: int) -> np.ndarray:
    """Bilinear upsampling that continues a gradient to the image border.

    Plain resizing holds the outermost half-pixel of ``small`` constant, which leaves a false
    stroke along the edge of a steep light gradient; one pixel of linear extrapolation fixes it.
    """
    sh, sw = small.shape
    p = np.pad(small, 1, mode="reflect" if min(sh, sw) > 1 else "edge")
    if min(sh, sw) > 1:
        p[0], p[-1] = 2 * p[1] - p[2], 2 * p[-2] - p[-3]
        p[:, 0], p[:, -1] = 2 * p[:, 1] - p[:, 2], 2 * p[:, -2] - p[:, -3]
    img = Image.fromarray(np.ascontiguousarray(p, dtype=np.float32), "F")
    return np.asarray(
        img.resize((w, h), Image.Resampling.BILINEAR, box=(1, 1, 1 + sw, 1 + sh)), dtype=np.float32
    )


def _dark_ink(s: np.ndarray) -> bool:
    """Is the ink darker than the paper? (``s``: the image at low resolution.)

    Two cues, both independent of lighting level: (1) ink is the minority, so the high-passed
    image is skewed towards the ink's side (negative skew = dark ink); (2) the border is mostly
    paper, so the image median sits between the border and the ink. Ties go to dark ink, the
    usual case (pen, pencil, scans).
    """
    sigma = max(1.0, max(s.shape) / 8.0)
    d = s - ndi.gaussian_filter(s, sigma, mode="nearest", truncate=2.0)
    sd = float(d.std())
    skew = float(np.mean(d * d * d)) / (sd**3) if sd > 1e-6 else 0.0  # (d * d * d: pow is slow)
    h, w = s.shape
    if h >= 3 and w >= 3:
        border = np.concatenate([s[0], s[-1], s[1:-1, 0], s[1:-1, -1]])
        spread = float(s.std())
        cue = (_median(s) - _median(border)) / spread if spread > 1e-6 else 0.0
    else:
        cue = 0.0
    return skew + 2.0 * cue <= 0.0


def _framed_by_line(g: np.ndarray) -> bool:
    """Is ``g`` bounded by a thin dark printed line, light paper inside it? (A form's field
    cropped to its box: the border, which ``_dark_ink`` takes for paper, is then the line.) Each
    side's darkest level within _LINE_EDGE of the edge is mostly (_LINE_SHARE) well under the
    paper's level, measured on a ring _LINE_INSIDE in; that paper is most of the image and
    starts just inside the line (at most _LINE_JUST_IN of a ring 3 px inside the edge band is
    dark). A digit cropped tight touches its border only here and there; light ink on a dark
    board has the board at the border and reaching in between the strokes."""
    h, w = g.shape
    if min(h, w) < 16 or w < _LINE_ASPECT * h:  # a narrow strip is one digit, not a field
        return False
    k = max(3, round(_LINE_EDGE * min(h, w)))
    d = max(k + 4, round(_LINE_INSIDE * min(h, w)))

    def ring(i: int) -> np.ndarray | None:
        r = g[i : h - i, i : w - i]
        if min(r.shape) < 3:
            return None
        return np.concatenate([r[0], r[-1], r[1:-1, 0], r[1:-1, -1]])

    inner, just_in = ring(d), ring(k + 3)
    if inner is None or just_in is None:
        return False
    paper = _median(inner)
    sample = g.ravel()[:: max(1, g.size // 4096)]
    low = float(np.percentile(sample, 1))
    if paper - low < MIN_CONTRAST or abs(_median(sample) - paper) > 0.25 * (paper - low):
        return False
    cut = paper - 0.5 * (paper - low)
    if np.mean(just_in < cut) > _LINE_JUST_IN:
        return False
    edge = np.concatenate(
        [g[:k].min(axis=0), g[-k:].min(axis=0), g[:, :k].min(axis=1), g[:, -k:].min(axis=1)]
    )
    return bool(np.mean(edge < cut) >= _LINE_SHARE)


def _background(s: np.ndarray, k: int) -> np.ndarray:
    """Paper level of the (ink bright) low-resolution image ``s``: grey opening of size k."""
    # (No extra smoothing: the opening reproduces a linear light gradient exactly, right up to
    # the border, where a blur would bend it and leave a false stroke along the edge.)
    # Padding by odd reflection continues a gradient linearly past the border, so the opening
    # (which would otherwise flatten the last k/2 pixels of a ramp) follows it to the edge.
    if min(s.shape) > 1:
        pad = min(k, min(s.shape) - 1)
        return ndi.grey_opening(
            np.pad(s, pad, mode="reflect", reflect_type="odd"), size=(k, k), mode="nearest"
        )[pad:-pad, pad:-pad]
    return ndi.grey_opening(s, size=(k, k), mode="nearest")


# A digit cropped tight to its ink (a form's cell, a clip from a photo) touches the image border.
# Its border is then partly ink, and the opening's window (a quarter of a side that is all
# digit) is narrower than the strokes, so the paper estimate and the threshold came out wrong
# (about 38% of tight crops read right, most answered "blank image"). Such images are analysed
# again inside a frame of paper this wide (fraction of the longer side); the result is cropped
# back to the image. Images whose ink stays clear of the border are analysed as before.
_FRAME = 0.5


# A second look that finds ink in more than this share of the image may have found the paper
# (a form's field cropped to its printed lines, whose dark border the polarity cue took for
# paper: 0.52-0.82 of the image) or a bold digit cropped tight (load_digits' too).
_MOSTLY_INK = 0.5


# An image the first pass found blank is analysed again in a frame only when its grey levels
# fall into two classes (Otsu's between-class share of the variance, 1 = two pure levels):
# tight crops the first pass missed measured 0.78-0.98 (photos lowest), a linear light
# gradient 0.75 and sensor noise 0.62 (benchmarks/populations.py, load_digits tight crops).
# A photo whose light falls off strongly across a tight crop hides its two levels under the
# gradient (a clear "24" measured 0.73); measured again after a smooth quadratic light field
# fitted to its paper is divided out, such crops give 0.85, while bare gradients, vignetting
# and noise give 0.61-0.67 (a sine ripple 0.77), so either measure may open the second pass.
# Bold tight photo crops measure lower still (0.66-0.78 plain: 20 of the 3,594 load_digits
# images were answered "blank image"); most of them keep 0.70-0.80 after flattening, where
# bare gradients and vignettes stay under 0.67 and photos of empty pages mostly under 0.70.
# From ``_MIN_TWO_LEVELS_FAINT`` (flattened) the second look opens for them too, its ink
# marked ``faint``: kept only when the mark detector is all but sure it is a digit
# (``_analyse.MARK_AT_FAINT``; docs/reading.md, "Empty pages under uneven light").
_MIN_TWO_LEVELS = 0.78
_MIN_TWO_LEVELS_FLAT = 0.80
_MIN_TWO_LEVELS_FAINT = 0.70


def _two_class_share(s: np.ndarray) -> float:
    s = s.ravel()
    t = otsu_threshold(s)
    lo, hi = s[s <= t], s[s > t]
    var = float(s.var())
    if lo.size == 0 or hi.size == 0 or var <= 1e-12:
        return 0.0
    w0 = lo.size / s.size
    return w0 * (1 - w0) * (float(lo.mean()) - float(hi.mean())) ** 2 / var


def _two_levels(g: np.ndarray) -> float:
    return _two_class_share(_small(g, _BG_SIDE))


def _flattened(g: np.ndarray) -> np.ndarray:
    """``g`` (at the statistics size) minus a quadratic light field fitted to its paper: least
    squares on all pixels, then twice more on the larger of Otsu's two classes of the residual
    (the paper; ink is the smaller class in any digit image)."""
    s = _small(g, _BG_SIDE).astype(np.float64)
    h, w = s.shape
    yy, xx = np.mgrid[0:h, 0:w] / float(max(h, w)) - 0.5
    a = np.stack([np.ones_like(xx), xx, yy, xx * xx, xx * yy, yy * yy], -1).reshape(-1, 6)
    v = s.ravel()
    keep = np.ones(v.size, bool)
    r = v
    for _ in range(3):
        if keep.sum() < 6:
            break
        coef, *_ = np.linalg.lstsq(a[keep], v[keep], rcond=None)
        r = v - a @ coef
        low = r <= otsu_threshold(r.astype(np.float32))
        keep = low if low.mean() >= 0.5 else ~low
    return r.reshape(h, w).astype(np.float32)


def _two_levels_ok(g: np.ndarray) -> int:
    """2 when ``g``'s grey levels fall clearly into two classes, 1 faintly, 0 not."""
    plain = _two_levels(g)
    if plain >= _MIN_TWO_LEVELS:
        return 2
    flat = _two_class_share(_flattened(g)) if min(g.shape) >= 3 else 0.0
    if flat >= _MIN_TWO_LEVELS_FLAT:
        return 2
    return int(flat >= _MIN_TWO_LEVELS_FAINT)


def _touches_border(mask: np.ndarray) -> bool:
    """Ink within 2 px (or 3% of the longer side) of the border: the anti-aliased edge of a
    stroke that runs off the image often falls under the threshold itself."""
    return _border_ink(mask) == _STROKE


_NONE, _SPECKS, _STROKE = 0, 1, 2


def _border_ink(mask: np.ndarray) -> int:
    """What ink lies within 2 px (or 3% of the longer side) of the border: _NONE, only
    _SPECKS (pieces of under _SPECK of the ink: a noisy photo's grain, no stroke), or a
    _STROKE."""
    h, w = mask.shape
    # (At the top and bottom of a wide image, 3% of its height: a field's band of 3% of its
    # width reached well into the writing.)
    bx = max(2, round(0.03 * max(h, w)))
    by = max(2, round(0.03 * h))
    band = np.zeros(mask.shape, bool)
    band[:by] = band[-by:] = True
    band[:, :bx] = band[:, -bx:] = True
    if not (band & mask).any():
        return _NONE
    # (4-connected pieces: 8-connected ones read the same forms, load_digits and collection A,
    # and 2 more of 400 textured empty pages as a digit, tests/test_marks.py's seed 1.)
    lab, _ = ndi.label(mask)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    stroke = (sizes[np.unique(lab[band & mask])] >= _SPECK * mask.sum()).any()
    return _STROKE if stroke else _SPECKS


# Share of an image's ink under which a piece touching the border is a speck (photo grain, JPEG
# noise), not the end of a stroke: the pieces of 1-3 px that sent fields of
# benchmarks/bench_forms.py photos to the framed look (whose window, as wide as the field is
# tall, cannot follow a light falloff across it) measured under 0.2% of their ink. Such an
# image keeps its first look, judged as a second look's ink is (the grain may be a textured
# page's).
_SPECK = 0.01


def _paper_level(g: np.ndarray, dark: bool) -> float:
    """The paper's grey level, from the pixels on the paper side of Otsu's cut (not the border).

    (The median of the paper class, not of the image: in a tight crop ink can be near half.)
    """
    small = _small(g, _BG_SIDE)
    t = otsu_threshold(small)
    side = small[small > t] if dark else small[small <= t]
    return _median(side) if side.size else _median(small)


def _framed(g: np.ndarray, pad: int, dark: bool) -> np.ndarray:
    """``g`` inside a frame of paper ``pad`` px wide that continues the border's paper.

    The frame repeats the outermost row and column outwards, after their ink pixels were
    replaced by the paper level: a light gradient runs on into the frame without a step (a
    constant frame would make the far end of a gradient look like ink), and a stroke that runs
    off the image does not.
    """
    small = _small(g, _BG_SIDE)
    t = otsu_threshold(small)
    paper = _paper_level(g, dark)
    edge = g.copy()
    ring = np.zeros(g.shape, bool)
    ring[0], ring[-1], ring[:, 0], ring[:, -1] = True, True, True, True
    inky = (g < t) if dark else (g > t)
    edge[ring & inky] = paper
    out = np.pad(edge, pad, mode="edge")
    h, w = g.shape
    out[pad : pad + h, pad : pad + w] = g
    return out


def ink_layer(gray: np.ndarray) -> InkLayer:
    """Ink intensity and mask of a grey image, whatever the polarity and lighting.

    Ink that touches the image border is ink: such an image is analysed again inside a frame
    of paper (its polarity decided first, from the image alone), so a digit that fills its
    image is read like one with a margin.
    """
    g = np.asarray(gray, dtype=np.float32)
    layer = _ink_layer(g)
    if min(g.shape) < 2:
        return layer
    if layer.message is None:
        border = _border_ink(layer.mask)
        if border == _NONE:
            return layer
        if border == _SPECKS:
            return replace(layer, doubt=ONLY_TEXTURE, faint=True)
    levels = _two_levels_ok(g) if layer.message is not None else 2
    if not levels:
        return layer  # blank, noise or a bare gradient: nothing a frame would change
    inner = framed_layer(g, layer.dark_ink, wide=layer.message is None)
    if inner.message is not None and layer.message is None:
        return layer
    if inner.message is None:
        return replace(inner, doubt=layer.message or ONLY_LIGHT, faint=levels == 1)
    return inner


def mostly_ink(layer: InkLayer) -> bool:
    """Did a second look (the first found nothing) take most of the image for ink?"""
    return (
        layer.message is None
        and layer.doubt not in (None, ONLY_LIGHT)
        and float(layer.mask.mean()) > _MOSTLY_INK
    )


def other_polarity(g: np.ndarray, dark: bool) -> InkLayer | None:
    """``g``'s ink with the polarity ``dark`` forced (a first look, then in a frame when that
    finds nothing or touches the border, as ``ink_layer`` does); None unless ink is found and
    is a minority of the image."""
    g = np.asarray(g, dtype=np.float32)
    layer = _ink_layer(g, dark=dark)
    if layer.message is not None or _touches_border(layer.mask):
        inner = framed_layer(g, dark, wide=layer.message is None)
        if inner.message is None:
            layer = inner
    if layer.message is not None or layer.mask.mean() > _MOSTLY_INK:
        return None
    return layer


def framed_layer(g: np.ndarray, dark: bool | None = None, wide: bool = False) -> InkLayer:
    """``g``'s ink analysed inside a frame of paper (``_FRAME``), cropped back to ``g``.

    ``wide``: the opening's window as wide as the image's shorter side, so every window
    reaches paper (the frame's or the paper between strokes) and a stroke as bold as a fifth
    of the digit is not taken for paper and left hollow. (For images whose first look found
    ink touching the border; an image found blank is analysed with the usual window, which
    follows a light gradient instead of reading it.) ``dark``: the ink's polarity, decided
    here when not given.
    """
    if dark is None:
        dark = _dark_ink(_small(g, _BG_SIDE)) or _framed_by_line(g)
    pad = max(2, round(_FRAME * max(g.shape)))
    framed = _framed(g, pad, dark)
    inner = _ink_layer(
        framed, dark=dark, min_window=min(g.shape) / max(framed.shape) if wide else 0.0
    )
    h, w = g.shape
    crop = (slice(pad, pad + h), slice(pad, pad + w))
    return InkLayer(
        np.ascontiguousarray(inner.ink[crop]),
        np.ascontiguousarray(inner.mask[crop]),
        dark,
        inner.message,
    )


def _ink_layer(g: np.ndarray, dark: bool | None = None, min_window: float = 0.0) -> InkLayer:
    h, w = g.shape
    small = _small(g, _BG_SIDE)
    if dark is None:
        dark = _dark_ink(small) or _framed_by_line(g)
    x = 1.0 - g if dark else g  # ink is bright from here on
    # Uneven lighting: a grey opening (min then max filter) wider than any stroke removes the
    # strokes and keeps the slowly varying paper; it is computed at low resolution (paper
    # varies slowly) and subtracted. The window is a quarter of the shorter side: wider than
    # the thickest canvas stroke we have seen (about 15% of the digit height in a tight crop).
    s = 1.0 - small if dark else small
    k = max(3, round(min(s.shape) / 4), round(min_window * max(s.shape)))
    bg = _background(s, k)
    # A stroke wider than the window is taken for paper and comes out hollow (a thick brush or
    # marker on a tight crop: a filled 6 read as a 0). The thickest stroke is measured on a
    # first cut of the ink; if it does not fit well inside the window, the window grows to
    # twice its width (up to the whole image: then the background is close to one level,
    # which loses only the flattening of strong gradients, rare on such close-ups).
    if min(s.shape) > 3:
        rough = s - bg
        rough_mask = rough > otsu_threshold(rough)
        widest = 2.0 * float(ndi.distance_transform_edt(rough_mask).max()) + 1.0
        if widest > 0.6 * k:
            k2 = min(min(s.shape), int(np.ceil(2.0 * widest)))
            if k2 > k:
                bg = _background(s, k2)
    if bg.shape != x.shape:
        bg = _upsample(bg, w, h)
    if dark:
        # Dark ink under light that varies multiplicatively (shadows, vignetting): the ink's
        # depth relative to the local paper brightness does not depend on the light.
        f = (x - bg) / np.maximum(1.0 - bg, 0.1)
    else:
        f = x - bg
    # Paper level and noise from a subsample (the statistics of 4k pixels are as good as
    # those of a megapixel, and a full median is the costliest step here).
    sample = f.ravel()[:: max(1, f.size // 4096)]
    med = _median(sample)
    sig = 1.4826 * _median(np.abs(sample - med)) + 1e-4
    empty = np.zeros_like(f, dtype=bool)
    if float(f.max()) - med < MIN_CONTRAST:
        return InkLayer(np.zeros_like(f), empty, dark, "blank image: no ink found")
    t = max(otsu_threshold(sample), med + NOISE_FLOOR_SIGMAS * sig)
    mask = f > t
    if not mask.any():
        return InkLayer(np.zeros_like(f), empty, dark, "blank image: no ink found")
    inkpx = f[mask]
    v = inkpx[:: max(1, inkpx.size // 5000)]
    core = float(np.partition(v, int(0.9 * (v.size - 1)))[int(0.9 * (v.size - 1))])  # 90th pct
    contrast = core - med
    if contrast < MIN_CONTRAST or contrast < MIN_SNR * sig:
        return InkLayer(
            np.zeros_like(f),
            empty,
            dark,
            ONLY_TEXTURE,
        )
    # Grey levels: paper (median + 2 sigma of noise) -> 0, stroke core -> 1, so the
    # anti-aliased edges keep their in-between values like MNIST's strokes do. (Texture that
    # rises above the paper is removed per digit, where only pixels next to its mask are kept.)
    lo = med + 2.0 * sig
    ink = np.clip((f - lo) / max(core - lo, 1e-6), 0.0, 1.0)
    return InkLayer(ink.astype(np.float32, copy=False), mask, dark, None)


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Boolean ink mask of a grey image (True where there is ink), any polarity."""
    return ink_layer(gray).mask
