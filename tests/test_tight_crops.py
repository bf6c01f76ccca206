"""Digits cropped tight to their ink (no margin) read like digits with a margin, both polarities.

Ink that touches the image border is ink: a cell cut from a form, a clip from a photo or a
canvas the digit fills. Before this was handled, about 38% of such crops were read right and
most were answered "blank image: no ink found".
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from digitnet.data.allographs import STYLES, draw
from digitnet.preprocess import prepare_single, read_digits
from digitnet.preprocess._ink import ink_layer


@pytest.fixture(scope="module")
def predictor():
    from digitnet.inference import load_predictor

    return load_predictor(None, backend="torch")


@pytest.fixture(scope="module")
def mnist_test(mnist_dir) -> tuple[np.ndarray, np.ndarray]:
    from digitnet.data.mnist import load_mnist

    x, y = load_mnist(mnist_dir, "test")
    return x[:300], y[:300]


def _mnist_ink(img28: np.ndarray, height: int) -> np.ndarray:
    """An MNIST digit upscaled to crisp ink ``height`` px tall, cropped to its ink."""
    a = img28.astype(np.float32) / 255.0
    rows, cols = np.flatnonzero(a.max(1) > 0.1), np.flatnonzero(a.max(0) > 0.1)
    a = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    f = height / a.shape[0]
    up = np.asarray(
        Image.fromarray(a, "F").resize((max(1, round(a.shape[1] * f)), height), Image.BICUBIC),
        dtype=np.float32,
    )
    ink = np.clip((ndi.gaussian_filter(up, 0.35 * f) - 0.45) * 6 + 0.5, 0, 1)
    rows, cols = np.flatnonzero(ink.max(1) > 0.05), np.flatnonzero(ink.max(0) > 0.05)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _image(ink: np.ndarray, dark_ink: bool, margin: int, rng: np.random.Generator) -> np.ndarray:
    ink = np.pad(ink, margin)
    paper, pen = rng.uniform(0.8, 0.95), rng.uniform(0.05, 0.3)
    if not dark_ink:
        paper, pen = 1 - paper, 1 - pen
    img = paper * (1 - ink) + pen * ink + rng.normal(0, 0.01, ink.shape)
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def _read(predictor, images) -> list[str]:
    return [r.text for r in read_digits(images, predictor)]


@pytest.mark.parametrize("dark_ink", [True, False])
def test_tight_mnist_digits_read_like_ones_with_a_margin(mnist_test, predictor, dark_ink):
    x, y = mnist_test
    rng = np.random.default_rng(0)
    idx = np.arange(120)
    inks = [_mnist_ink(x[i], int(rng.integers(40, 120))) for i in idx]
    tight = _read(predictor, [_image(k, dark_ink, 0, rng) for k in inks])
    framed = _read(predictor, [_image(k, dark_ink, k.shape[0] // 3, rng) for k in inks])
    labels = [str(int(y[i])) for i in idx]
    acc_tight = np.mean([t == lab for t, lab in zip(tight, labels, strict=True)])
    acc_framed = np.mean([t == lab for t, lab in zip(framed, labels, strict=True)])
    assert acc_framed >= 0.95
    assert acc_tight >= acc_framed - 0.04, (acc_tight, acc_framed)
    assert tight.count("") <= 1


@pytest.mark.parametrize("dark_ink", [True, False])
def test_a_digit_filling_its_canvas_has_ink_and_polarity(dark_ink):
    rng = np.random.default_rng(1)
    for key in [(1, "long_flag"), (7, "crossed"), (4, "open"), (0, "oval"), (8, "single")]:
        ink = draw(*key, rng, height=80, width=0.14, margin=0.0)
        layer = ink_layer(_image(ink, dark_ink, 0, rng).astype(np.float32) / 255.0)
        assert layer.message is None, key
        assert layer.dark_ink == dark_ink, key
        # The mask covers the strokes, including those on the border, and not the paper.
        truth = ink > 0.5
        assert (layer.mask & truth).sum() >= 0.9 * truth.sum(), key
        assert (
            layer.mask & ~np.pad(ndi.binary_dilation(truth, iterations=2), 0)
        ).sum() <= 0.02 * truth.size, key


@pytest.mark.parametrize("dark_ink", [True, False])
def test_tight_allographs_read_right(predictor, dark_ink):
    rng = np.random.default_rng(2)
    keys = [
        k
        for k in STYLES
        if k[1]
        in ("oval", "stem", "plain", "round", "closed", "standard", "loop", "single", "straight")
    ]
    images, labels = [], []
    for key in keys:
        for _ in range(3):
            ink = draw(*key, rng, height=int(rng.integers(40, 100)), margin=0.0)
            images.append(_image(ink, dark_ink, 0, rng))
            labels.append(str(key[0]))
    texts = _read(predictor, images)
    acc = np.mean([t == lab for t, lab in zip(texts, labels, strict=True)])
    assert acc >= 0.9, list(zip(texts, labels, strict=True))


def test_blank_images_still_read_as_nothing(predictor):
    rng = np.random.default_rng(3)
    blank = np.full((60, 40), 230, np.uint8)
    noisy = np.clip(rng.normal(200, 3, (60, 40)), 0, 255).astype(np.uint8)
    dark = np.full((30, 30), 20, np.uint8)
    for img in (blank, noisy, dark):
        assert prepare_single(img).crops == ()
    assert _read(predictor, [blank, noisy, dark]) == ["", "", ""]


def _falloff(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A strong photographic light field: bright near one corner, falling off by about half."""
    yy, xx = np.mgrid[0:h, 0:w] / float(max(h, w))
    cy, cx = rng.uniform(-0.2, 0.4, 2)
    return 1.0 - 0.55 * np.minimum((yy - cy) ** 2 + (xx - cx) ** 2, 1.0)


def test_tight_numbers_under_strong_light_falloff_are_read(predictor):
    # A tight clip from a photo whose light falls off across it hides its two grey levels
    # under the gradient (the first pass measures it as noise); it must still be read.
    rng = np.random.default_rng(4)
    keys = [(2, "plain"), (4, "closed"), (5, "standard"), (8, "single"), (3, "round")]
    images, labels = [], []
    for k in range(6):
        pick = [keys[int(i)] for i in rng.integers(0, len(keys), 2)]
        inks = [draw(*key, rng, height=48, margin=0.0) for key in pick]
        inks = [ink[np.flatnonzero(ink.max(1) > 0.05)][:, ink.max(0) > 0.05] for ink in inks]
        top = max(k.shape[0] for k in inks)
        inks = [np.pad(k, ((top - k.shape[0], 0), (0, 0))) for k in inks]
        ink = np.concatenate([inks[0], np.zeros((top, 4), np.float32), inks[1]], axis=1)
        light = _falloff(*ink.shape, rng) * 0.95
        img = light * (1 - 0.85 * ink) + rng.normal(0, 0.015, ink.shape)
        images.append(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))
        labels.append("".join(str(key[0]) for key in pick))
    texts = _read(predictor, images)
    assert texts.count("") == 0, list(zip(texts, labels, strict=True))
    assert np.mean([t == lab for t, lab in zip(texts, labels, strict=True)]) >= 0.8, texts


def test_light_fields_without_ink_stay_blank():
    # The second look through the flattened light field must not turn a bare gradient,
    # vignetting or noise into ink.
    rng = np.random.default_rng(5)
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w] / float(max(h, w))
    cases = {
        "linear": 0.3 + 0.6 * xx,
        "diagonal": 0.2 + 0.35 * (xx + yy),
        "vignette": 0.9 - 0.5 * ((xx - 0.5) ** 2 + (yy - 0.37) ** 2),
        "falloff": 0.95 * _falloff(h, w, rng),
        "gradient and noise": 0.3 + 0.6 * xx + rng.normal(0, 0.05, (h, w)),
        "quadratic": 0.2 + 0.7 * xx**2,
    }
    for name, img in cases.items():
        g = np.clip(img, 0, 1).astype(np.float32)
        assert ink_layer(g).message is not None, name
        assert prepare_single(g).crops == (), name


def _bold_tight_photos(count: int, seed: int) -> list[tuple[np.ndarray, str]]:
    """``load_digits`` digits (other writers, 8x8) upscaled with a bold pen, cropped to their
    ink and photographed: light falling off from a point, blur, noise, JPEG 45-80."""
    import io

    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(len(d.target), count, replace=False):
        a = np.pad(d.images[i].astype(np.float32) / 16, 1)
        side = int(rng.integers(35, 90))
        up = np.asarray(Image.fromarray(a, "F").resize((side, side), Image.BICUBIC), np.float32)
        ink = np.clip((ndi.gaussian_filter(up, side / 40) - 0.4) * 5 + 0.5, 0, 1)
        rows, cols = np.flatnonzero(ink.max(1) > 0.05), np.flatnonzero(ink.max(0) > 0.05)
        ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        h, w = ink.shape
        yy, xx = np.mgrid[0:h, 0:w] / float(max(h, w))
        cy, cx = rng.uniform(-0.5, 1.5, 2)
        light = 1 - rng.uniform(0.2, 0.6) * np.minimum((yy - cy) ** 2 + (xx - cx) ** 2, 1)
        img = light * (rng.uniform(0.75, 0.95) * (1 - ink) + rng.uniform(0.05, 0.3) * ink)
        img = ndi.gaussian_filter(img, rng.uniform(0.6, 1.6))
        img = img + rng.normal(0, rng.uniform(0.01, 0.04), img.shape)
        buf = io.BytesIO()
        u8 = (np.clip(img, 0, 1) * 255).astype(np.uint8)
        Image.fromarray(u8).save(buf, "JPEG", quality=int(rng.integers(45, 81)))
        out.append((np.asarray(Image.open(buf)), str(d.target[i])))
    return out


def test_bold_tight_photos_with_faint_two_levels_are_read(predictor, monkeypatch):
    # Bold ink fills a tight crop, and the photo's light falls off across it: its grey levels
    # fall only faintly into two classes (0.70-0.78), so the second look used to stay shut
    # and the digit was answered "blank image". It opens now, and the mark detector judges.
    from digitnet.preprocess import _ink

    faint = [
        (img, label)
        for img, label in _bold_tight_photos(160, seed=3)
        if _ink._ink_layer(img.astype(np.float32) / 255).message is not None
        and _ink._two_levels_ok(img.astype(np.float32) / 255) == 1
    ]
    assert len(faint) >= 10
    texts = _read(predictor, [img for img, _ in faint])
    assert texts.count("") <= 1, texts
    assert np.mean([t == lab for t, (_, lab) in zip(texts, faint, strict=True)]) >= 0.85, texts
    monkeypatch.setattr(_ink, "_MIN_TWO_LEVELS_FAINT", 1.0)  # the second look shut again
    assert _read(predictor, [img for img, _ in faint]).count("") == len(faint)


def _falloff_field(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A photo of a number with a margin, the light falling off strongly towards the bottom,
    sensor noise, and three dark specks of grain a few pixels from the bottom edge."""
    keys = list(STYLES)
    digits, label = [], ""
    for _ in range(int(rng.integers(3, 6))):
        d, style = keys[int(rng.integers(len(keys)))]
        digits.append(draw(d, style, rng, height=40, margin=0.0))
        label += str(d)
    h, w = 100, sum(x.shape[1] + 25 for x in digits) + 40
    ink = np.zeros((h, w), np.float32)
    x = 30
    for dg in digits:
        ink[30 : 30 + dg.shape[0], x : x + dg.shape[1]] = dg
        x += dg.shape[1] + 25
    yy = np.mgrid[0:h, 0:w][0] / h
    light = 1.0 - rng.uniform(0.45, 0.6) * yy**2
    img = (0.9 - 0.75 * ink) * light + rng.normal(0, 0.02, (h, w))
    for _ in range(3):
        img[int(rng.integers(h - 6, h - 2)), int(rng.integers(0, w))] = 0.0
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8), label


def test_specks_by_the_border_do_not_send_a_photo_to_the_framed_look(predictor, monkeypatch):
    # Grain by the border is no stroke running off the image: the first look (which follows
    # the light's falloff) is kept. The framed look's window, as wide as the field is tall,
    # cannot follow it and took the dark lower half for ink.
    from digitnet.preprocess import _ink

    rng = np.random.default_rng(3)
    fields = [_falloff_field(rng) for _ in range(20)]

    def right() -> int:
        texts = [r.text for r in read_digits([f[0] for f in fields], predictor)]
        return sum(t == f[1] for t, f in zip(texts, fields, strict=True))

    assert right() >= 17  # measured 19 of 20

    def any_border_ink(mask: np.ndarray) -> int:  # the rule before: any ink by the border
        b = max(2, round(0.03 * max(mask.shape)))
        near = mask[:b].any() or mask[-b:].any() or mask[:, :b].any() or mask[:, -b:].any()
        return _ink._STROKE if near else _ink._NONE

    monkeypatch.setattr(_ink, "_border_ink", any_border_ink)
    assert right() <= 5  # measured 0 of 20


def test_border_ink_tells_strokes_from_specks():
    from digitnet.preprocess._ink import _NONE, _SPECKS, _STROKE, _border_ink

    mask = np.zeros((100, 300), bool)
    mask[30:70, 100:106] = True  # a 1 clear of the border
    assert _border_ink(mask) == _NONE
    mask[97, 40] = True  # one pixel of grain by the bottom edge
    assert _border_ink(mask) == _SPECKS
    mask[30:100, 200:206] = True  # a stroke running off the bottom
    assert _border_ink(mask) == _STROKE
    # A wide field: writing 5 px under its top edge (3% of its width would be 15 px) is clear.
    field = np.zeros((80, 500), bool)
    field[5:60, 100:106] = field[5:60, 300:306] = True
    assert _border_ink(field) == _NONE
