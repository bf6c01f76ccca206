"""Train the reader's mark detector (``preprocess._pairs``): is this crop a digit at all?

    python -m digitnet.engine.mark_detector --data-dir ../shared/data/mnist \\
        --out src/digitnet/weights/marks.npz

A digit cropped tight to its ink hides the paper, so the reader looks at an image it found
blank a second time, inside a frame of paper (``preprocess._ink.framed_layer``). A photo of an
empty page under uneven light (a vignette, a shadow, light falling off from one corner) also
has two grey levels, and that second look turns its darker part into a blob of "ink" which the
digit network reads as some digit. This detector tells the two apart. Both kinds of examples
are made by the reader's own code (``ink_layer`` / ``framed_layer``, ``find_pieces``,
``crops_of``), so they are the crops the reader would make:

- a digit (label 0): an MNIST *training* digit or a synthetic allograph, drawn 16-120 px tall,
  sometimes with a bolder pen or seen at a low resolution (8-12 px tall, then enlarged), with
  a margin or cropped tight, dark on light paper (or light on dark), under the same kinds of
  light as below, with noise, blur and JPEG; read by the first look, or by the second look
  when it is cropped tight;
- not a digit (label 1): an empty page under such light: a slope, a radial falloff that
  levels off, a shadow edge (soft or hard, straight or curved), paper texture, noise, blur and
  JPEG; read by the second look (and by the first, when that finds "ink" in it). A blob
  that comes out as an upright bar is left out: it is drawn exactly like a 1.

The network and its training are the pair detector's (``engine.pair_detector``); the weights
are saved as a NumPy archive the reader runs without torch. Seeded: the same command gives the
same file on the same machine.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from ..preprocess._candidates import crops_of
from ..preprocess._ink import framed_layer, ink_layer
from ..preprocess._pairs import upright_bar
from ..preprocess._segment import find_pieces
from .pair_detector import _log_uniform, _resize, _tight, train

__all__ = ["blank_page", "digit_page", "make_examples", "reader_crops"]


def _light(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A multiplicative light field (1 = full light) of the kinds a phone photo has."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / float(max(h, w))
    f = np.ones((h, w), np.float32)
    if rng.random() < 0.8:  # light sloping across the page
        t = rng.uniform(0, 2 * np.pi)
        f *= 1 + rng.uniform(0, 0.5) * ((xx - 0.5) * np.cos(t) + (yy - 0.5) * np.sin(t))
    if rng.random() < 0.6:  # light falling off from a point, levelling off further out
        cy, cx = rng.uniform(-0.5, 1.5, 2)
        r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(0.2, 2.0)
        f *= 1 - rng.uniform(0, 0.6) * np.minimum(r2, 1.0)
    if rng.random() < 0.4:  # a shadow's edge: a line or a circle, soft or hard
        soft = _log_uniform(rng, 0.01, 0.4)
        if rng.random() < 0.5:
            t = rng.uniform(0, 2 * np.pi)
            d = (xx - rng.uniform()) * np.cos(t) + (yy - rng.uniform()) * np.sin(t)
        else:
            cy, cx = rng.uniform(-0.5, 1.5, 2)
            d = np.hypot(yy - cy, xx - cx) - rng.uniform(0.2, 1.0)
        f *= 1 - rng.uniform(0.1, 0.6) / (1 + np.exp(-np.clip(d / soft, -30, 30)))
    if rng.random() < 0.3:  # paper texture
        tex = ndi.gaussian_filter(rng.normal(0, 1, (h, w)), rng.uniform(1, 6))
        f *= 1 + rng.uniform(0.01, 0.05) * tex / max(float(tex.std()), 1e-6)
    return f


def _photo(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage (1 = ink, maybe all 0) -> a uint8 grey image under ``_light``."""
    h, w = ink.shape
    paper = rng.uniform(0.55, 0.97)
    depth = rng.uniform(0.3, 0.9) * paper
    img = (paper - depth * ink) * _light(h, w, rng)
    if rng.random() < 0.15:  # light ink on a dark ground (a board, a screen, an inverted scan)
        img = 1.0 - img
    img = img + rng.normal(0, rng.uniform(0.002, 0.04), img.shape)
    img = ndi.gaussian_filter(img, rng.uniform(0, 1.5))
    u8 = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    if rng.random() < 0.35:
        buf = io.BytesIO()
        Image.fromarray(u8).save(buf, "JPEG", quality=int(rng.integers(30, 96)))
        u8 = np.asarray(Image.open(buf).convert("L"))
    return u8


def blank_page(rng: np.random.Generator) -> np.ndarray:
    """An empty page (no ink) photographed under uneven light, 16-400 px a side."""
    h, w = (int(v) for v in rng.integers(16, 401, 2))
    return _photo(np.zeros((h, w), np.float32), rng)


def digit_page(d: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """One digit (float [0, 1], white on black) as a photo; and whether it was cropped tight."""
    a = _tight(d)
    hgt = int(rng.integers(16, 121))
    a = _resize(a, round(a.shape[1] * hgt / a.shape[0] * rng.uniform(0.8, 1.25)), hgt)
    if rng.random() < 0.3:  # a bolder pen
        a = ndi.grey_dilation(a, size=int(rng.integers(2, max(3, hgt // 12) + 1)))
    if rng.random() < 0.25:  # seen at a low resolution, then enlarged
        lo = int(rng.integers(8, 13))
        small = _resize(a, max(2, round(a.shape[1] * lo / hgt)), lo)
        a = ndi.gaussian_filter(_resize(small, a.shape[1], a.shape[0]), hgt / 40)
    a = np.clip(a, 0, 1)
    tight = rng.random() < 0.6
    m = int(rng.integers(0, 2)) if tight else round(hgt * rng.uniform(0.1, 0.6))
    return _photo(np.pad(a, m), rng), tight


def reader_crops(img: np.ndarray, framed: bool) -> list[np.ndarray]:
    """The reader's 28x28 crops of ``img`` read as one digit: by the first look at its ink
    (``ink_layer``) or, with ``framed``, by the second look in a frame (``framed_layer``).
    (Not the faint second looks ``ink_layer`` opens too: the shipped weights were trained
    before it opened them, and their examples are kept as they were.)"""
    g = img.astype(np.float32) / 255.0
    layer = framed_layer(g) if framed else ink_layer(g)
    if layer.message is not None or layer.faint:
        return []
    lab, pieces, message = find_pieces(layer.mask, single=True)
    if message or not pieces:
        return []
    return [c.image for c in crops_of(layer.ink, lab, [[p] for p in pieces], False, 1.0)]


def make_examples(
    digits: np.ndarray, count: int, seed: int, allographs: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` crops (float32 N x 28 x 28) and labels (1 = not a digit), half of each.

    ``digits``: uint8 MNIST-style images (white on black); ``allographs``: more digits
    (float [0, 1]), used for 3 in 10 of the digit examples when given.
    """
    rng = np.random.default_rng(seed)
    xf = digits.astype(np.float32) / 255.0
    xs = np.zeros((count, 28, 28), np.float32)
    ys = np.zeros(count, np.int64)
    n = 0
    while n < count:
        blank = n % 2 == 1
        if blank:
            crops = reader_crops(blank_page(rng), framed=rng.random() < 0.85)
        else:
            use_allo = allographs is not None and rng.random() < 0.3
            src = allographs if use_allo and allographs is not None else xf
            page, tight = digit_page(src[rng.integers(len(src))], rng)
            crops = reader_crops(page, framed=tight and rng.random() < 0.7)
        if not crops:
            continue
        crop = crops[int(rng.integers(len(crops)))]
        if blank and upright_bar(crop):
            continue  # a sliver of shadow upright is drawn like a 1: not something to learn
        xs[n], ys[n] = crop, int(blank)
        n += 1
    return xs, ys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="MNIST folder (default: as `digitnet train`)")
    ap.add_argument("--out", required=True, help="the .npz file to write")
    ap.add_argument("--count", type=int, default=40_000, help="training examples")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    args = ap.parse_args(argv)

    import torch

    from ..data import allographs
    from ..data.mnist import load_mnist, resolve_data_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    x, _ = load_mnist(resolve_data_dir(args.data_dir), "train")
    # Validation digits are training images too (the last 2,000, not used for examples).
    fit, held = x[:-2000], x[-2000:]
    allo = allographs.training_pool(6000, seed=12)[0].astype(np.float32) / 255.0
    t0 = time.perf_counter()
    xs, ys = make_examples(fit, args.count, args.seed, allo)
    val = make_examples(held, 4000, args.seed + 1)
    print(f"{args.count:,} examples made in {time.perf_counter() - t0:.0f} s", flush=True)
    weights = train(
        xs,
        ys,
        epochs=args.epochs,
        seed=args.seed,
        val=val,
        names=("a digit", "not a digit"),
        log=lambda s: print(s, flush=True),
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    save: Any = np.savez_compressed  # (numpy's stubs take a keyword array for an option)
    save(tmp, **weights)
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
