"""Digit populations rendered as a user would supply them, for the cross-population benchmark.

Each generator yields ``(image, label, population, style)``: ``image`` a uint8 array (H, W)
grey or (H, W, 3) colour, exactly what a user's file would decode to; ``label`` the digit text;
``population`` who wrote it; ``style`` how it was written or presented.

- ``mnist``: MNIST *test* digits (never trained on) under ``synth_digits.py``'s 11 conditions.
- ``load_digits``: scikit-learn's 1,797 digits by 43 writers outside MNIST (8x8, 0..16),
  upscaled to drawing / scan / photo looks, each once with a margin and once cropped tight to
  the ink. Real handwriting no model here is trained on: the independent test.
- ``allographs``: digits in the shapes other writers use (flagged 1s, crossed 7s, open 4s ...),
  drawn stroke by stroke by ``digitnet.data.allographs`` with a seed and a pressure-varying
  pen that training never uses, as canvas drawings, scans and photos, with and without margin.
  ``style`` is ``"<digit>:<shape>|<look>/<framing>"``.
- ``numbers/allographs``, ``numbers/load_digits``: 2-6 digit numbers built from either.

Looks: ``canvas`` (the GUI's drawing canvas: white, black anti-aliased ink), ``scan`` (paper
grain, grey ink, slight blur, sensor noise, JPEG 60-90) and ``photo`` (uneven light and a
shadow, blur, noise, JPEG 45-80, sometimes white chalk on a dark board).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import synth_digits  # noqa: E402

from digitnet.data.allographs import STYLES, draw  # noqa: E402

Sample = tuple[np.ndarray, str, str, str]
LOOKS = ("canvas", "scan", "photo")
FRAMINGS = ("margin", "tight")
# Seeds of the benchmark's own draws; training uses the run's seed + 7919 (engine/fit.py), and
# draws with a constant-width pen, so the benchmark's allographs are never training images.
ALLOGRAPH_SEED = 424242
NUMBER_SEED = 515151


def _frame(ink: np.ndarray, framing: str, rng: np.random.Generator) -> np.ndarray:
    """Ink with a margin of 0.15-0.8 digit heights, or cropped tight (0-1 px) to the ink."""
    rows = np.flatnonzero(ink.max(1) > 0.05)
    cols = np.flatnonzero(ink.max(0) > 0.05)
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if framing == "tight":
        return np.pad(ink, int(rng.integers(0, 2)))
    h = ink.shape[0]
    m = [int(rng.uniform(0.15, 0.8) * h) for _ in range(4)]
    return np.pad(ink, ((m[0], m[1]), (m[2], m[3])))


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


def present(ink: np.ndarray, look: str, framing: str, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage (1 = ink) -> the uint8 image a user would hand over, in ``look``."""
    ink = _frame(ink, framing, rng)
    h, w = ink.shape
    if look == "canvas":
        img = 1.0 - ink
        return np.round(img * 255).astype(np.uint8)
    if look == "scan":
        bg = synth_digits.paper(h, w, rng, textured=True)
        level = rng.uniform(0.1, 0.4)
        img = bg * (1 - ink) + level * ink
        img = ndi.gaussian_filter(img, rng.uniform(0.4, 0.9))
        img = img + rng.normal(0, rng.uniform(0.008, 0.025), img.shape)
        u8 = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
        return _jpeg(u8, int(rng.integers(60, 91)))
    if look == "photo":
        bg = synth_digits.paper(h, w, rng, textured=True)
        level = rng.uniform(0.05, 0.35)
        if rng.random() < 0.25:  # chalk or a white pen on a dark board
            bg, level = 1.0 - bg * rng.uniform(0.85, 1.0), rng.uniform(0.75, 0.98)
        img = bg * (1 - ink) + level * ink
        img = img * synth_digits.lighting(h, w, rng, rng.uniform(0.2, 0.6))
        img = ndi.gaussian_filter(img, rng.uniform(0.6, 1.6))
        img = img + rng.normal(0, rng.uniform(0.01, 0.04), img.shape)
        u8 = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
        return _jpeg(u8, int(rng.integers(45, 81)))
    raise ValueError(f"unknown look {look!r}")


def load_digits_ink(d8: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """One 8x8 ``load_digits`` image (0..16) as crisp ink coverage ``height`` px tall."""
    a = np.asarray(d8, dtype=np.float32).reshape(8, 8) / 16.0
    a = np.pad(a, 1)
    side = height * 10 / 8
    up = np.asarray(
        Image.fromarray(a, "F").resize((round(side), round(side)), Image.BICUBIC), dtype=np.float32
    )
    up = ndi.gaussian_filter(up, side / 40)
    # A pen's crisp edge at a level chosen per writer sample: 0.4 (bold) .. 0.6 (fine).
    level = rng.uniform(0.4, 0.6)
    return np.clip((up - level) * 5.0 + 0.5, 0.0, 1.0)


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32), d.target.astype(np.int64)


def mnist_population(
    count: int = 1100, seed: int = 0, data_dir: Path | None = None
) -> Iterator[Sample]:
    """MNIST test digits as photos, scans and drawings (``synth_digits.py``'s conditions)."""
    x, y = synth_digits.load_test_digits(data_dir or synth_digits.default_data_dir())
    rng = np.random.default_rng(seed)
    conds = synth_digits.CONDITIONS
    for k in range(count):
        cond = conds[k % len(conds)]
        pil, label, _ = synth_digits.make_image(x, y, cond, rng)
        yield np.asarray(pil), label, "mnist" if cond != "number" else "numbers/mnist", cond


def load_digits_population(limit: int | None = None, seed: int = 1) -> Iterator[Sample]:
    """Each of the 1,797 ``load_digits`` digits once with a margin and once cropped tight."""
    images, labels = _load_digits()
    rng = np.random.default_rng(seed)
    n = len(labels) if limit is None else min(limit, len(labels))
    for i in range(n):
        look = LOOKS[i % len(LOOKS)]
        height = int(rng.uniform(28, 160))
        ink = load_digits_ink(images[i], height, rng)
        for framing in FRAMINGS:
            yield (
                present(ink, look, framing, rng),
                str(int(labels[i])),
                "load_digits",
                f"{look}/{framing}",
            )


def allograph_population(per_style: int = 3, seed: int = ALLOGRAPH_SEED) -> Iterator[Sample]:
    """Every allograph style in every look and framing, ``per_style`` times each."""
    rng = np.random.default_rng(seed)
    for digit, shape in STYLES:
        for look in LOOKS:
            for framing in FRAMINGS:
                for _ in range(per_style):
                    ink = draw(
                        digit,
                        shape,
                        rng,
                        height=int(rng.uniform(32, 160)),
                        pressure=float(rng.uniform(0.2, 0.6)),
                        margin=0.0,
                        jitter=0.03,
                    )
                    yield (
                        present(ink, look, framing, rng),
                        str(digit),
                        "allographs",
                        f"{digit}:{shape}|{look}/{framing}",
                    )


WRITER_SEED = 616161


def writer(index: int, count_per_digit: int, seed: int = WRITER_SEED) -> tuple[str, list[Sample]]:
    """One synthetic person's digits: ``(description, samples)``, ``count_per_digit`` of each.

    A person keeps their habits: one allograph per digit (drawn at random among that digit's
    shapes), one pen width, slant, width and pen pressure, and one look (canvas, scan or photo,
    by ``index``); each digit still varies a little (the jitter of the strokes, +-10% pen width,
    +-0.05 slant, +-5% width, +-4 degrees, its height) and is framed with a margin or tight.
    """
    rng = np.random.default_rng([seed, index])
    shapes = {d: [s for dd, s in STYLES if dd == d] for d in range(10)}
    hand = {d: shapes[d][int(rng.integers(len(shapes[d])))] for d in range(10)}
    width = float(rng.uniform(0.07, 0.16))
    slant = float(rng.uniform(-0.15, 0.4))
    aspect = float(np.exp(rng.uniform(np.log(0.75), np.log(1.3))))
    pressure = float(rng.uniform(0.0, 0.6))
    look = LOOKS[index % len(LOOKS)]
    height = float(rng.uniform(40, 140))
    samples: list[Sample] = []
    for _ in range(count_per_digit):
        for d in range(10):
            ink = draw(
                d,
                hand[d],
                rng,
                height=int(height * rng.uniform(0.9, 1.1)),
                width=width * float(rng.uniform(0.9, 1.1)),
                slant=slant + float(rng.uniform(-0.05, 0.05)),
                aspect=aspect * float(rng.uniform(0.95, 1.05)),
                rotate=float(rng.uniform(-4, 4)),
                pressure=pressure,
                margin=0.0,
                jitter=0.04,
            )
            framing = FRAMINGS[int(rng.integers(len(FRAMINGS)))]
            samples.append(
                (present(ink, look, framing, rng), str(d), f"writer {index}", f"{look}/{framing}")
            )
    desc = f"writer {index} ({look}; " + ", ".join(f"{d}:{hand[d]}" for d in range(10)) + ")"
    return desc, samples


def _compose(inks: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Digits side by side with handwriting-like spacing (one gap in six touching), and whether
    any two neighbours touch (a gap of 0 or less: their boxes meet or overlap)."""
    height = max(p.shape[0] for p in inks)
    gaps = [
        int(height * (rng.uniform(-0.04, 0.0) if rng.random() < 1 / 6 else rng.uniform(0.08, 0.35)))
        for _ in inks[1:]
    ]
    H = height + int(0.1 * height) + 1
    W = sum(p.shape[1] for p in inks) + sum(gaps) + 2
    canvas = np.zeros((H, max(W, 1)), np.float32)
    x = 0
    for i, p in enumerate(inks):
        if i:
            x = max(0, x + gaps[i - 1])
        y = int(rng.integers(0, H - p.shape[0] + 1))
        w = min(p.shape[1], canvas.shape[1] - x)
        canvas[y : y + p.shape[0], x : x + w] = np.maximum(
            canvas[y : y + p.shape[0], x : x + w], p[:, :w]
        )
        x += p.shape[1]
    return canvas, any(g <= 0 for g in gaps)


def _crop(ink: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(ink.max(1) > 0.05)
    cols = np.flatnonzero(ink.max(0) > 0.05)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def number_population(count: int = 200, seed: int = NUMBER_SEED) -> Iterator[Sample]:
    """2-6 digit numbers, half built from allographs, half from ``load_digits`` digits."""
    images, labels = _load_digits()
    rng = np.random.default_rng(seed)
    keys = list(STYLES)
    for k in range(count):
        n = int(rng.integers(2, 7))
        height = int(rng.uniform(40, 120))
        j = k // 2  # each half of the numbers goes through every look and framing
        look = LOOKS[j % len(LOOKS)]
        framing = FRAMINGS[(j // len(LOOKS)) % len(FRAMINGS)]
        if k % 2 == 0:
            picks = [keys[int(i)] for i in rng.integers(0, len(keys), n)]
            pressure = float(rng.uniform(0.2, 0.6))
            inks = [
                _crop(
                    draw(
                        d,
                        s,
                        rng,
                        height=int(height * rng.uniform(0.9, 1.08)),
                        pressure=pressure,
                        margin=0.0,
                    )
                )
                for d, s in picks
            ]
            label = "".join(str(d) for d, _ in picks)
            pop = "numbers/allographs"
        else:
            idx = rng.integers(0, len(labels), n)
            inks = [
                _crop(load_digits_ink(images[i], int(height * rng.uniform(0.9, 1.08)), rng))
                for i in idx
            ]
            label = "".join(str(int(labels[i])) for i in idx)
            pop = "numbers/load_digits"
        canvas, touching = _compose(inks, rng)
        spacing = "touching" if touching else "apart"
        yield present(canvas, look, framing, rng), label, pop, f"{look}/{framing}|{spacing}"


POPULATIONS = ("mnist", "load_digits", "allographs", "numbers")


def all_populations(
    quick: bool = False, data_dir: Path | None = None, only: tuple[str, ...] = POPULATIONS
) -> Iterator[Sample]:
    """Every population (or those named in ``only``); ``quick`` takes about a fifth of each (for
    trying settings)."""
    if "mnist" in only:
        yield from mnist_population(220 if quick else 1100, data_dir=data_dir)
    if "load_digits" in only:
        yield from load_digits_population(360 if quick else None)
    if "allographs" in only:
        yield from allograph_population(1 if quick else 3)
    if "numbers" in only:
        yield from number_population(60 if quick else 200)
