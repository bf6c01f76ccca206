"""Touching digits: how often two MNIST test digits drawn as one piece of ink read right.

Each pair is two MNIST test digits side by side, sharing 1-3 columns of 28 (bottoms aligned),
drawn 4x the MNIST size with a pen on paper, and kept only when its ink is one connected piece.
Prints the exact-match rate per kind of pair:

    python benchmarks/bench_touching.py [--pairs 100] [--model CHECKPOINT]

  any   two random digits
  11    two 1s (the hardest: two slim strokes, no column between them)
  1x    a 1, then a 1, 4, 7 or 9
  x1    a 1, 4, 7 or 9, then a 1

Figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))


def tight(d: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(d > 30)
    return d[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def touching(a28: np.ndarray, b28: np.ndarray, overlap: int) -> np.ndarray | None:
    """Dark ink on paper, grey float32 [0, 1]; None if the digits are too slim to overlap so."""
    a, b = tight(a28).astype(np.float32), tight(b28).astype(np.float32)
    if min(a.shape[1], b.shape[1]) <= overlap:
        return None
    h = max(a.shape[0], b.shape[0])
    a = np.pad(a, ((h - a.shape[0], 0), (0, 0)))
    b = np.pad(b, ((h - b.shape[0], 0), (0, 0)))
    w = a.shape[1] + b.shape[1] - overlap
    canvas = np.zeros((h, w), np.float32)
    canvas[:, : a.shape[1]] = a
    canvas[:, w - b.shape[1] :] = np.maximum(canvas[:, w - b.shape[1] :], b)
    canvas = np.pad(canvas, 4)
    big = np.asarray(
        Image.fromarray(canvas / 255.0, "F").resize(
            (canvas.shape[1] * 4, canvas.shape[0] * 4), Image.BICUBIC
        ),
        np.float32,
    )
    ink = np.pad(np.clip((big - 0.45) * 6 + 0.5, 0, 1), 30)
    return (0.9 * (1 - ink) + 0.15 * ink).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=100, help="pairs of each kind")
    ap.add_argument("--model", default=None, help="checkpoint (default: the bundled model)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from synth_digits import default_data_dir, load_test_digits

    from digitnet.inference import load_predictor
    from digitnet.preprocess import ink_mask, read_digits

    x, y = load_test_digits(default_data_dir())
    predictor = load_predictor(args.model, threads=1)  # as `digitnet predict` loads it
    rng = np.random.default_rng(args.seed)
    ones, slim = np.flatnonzero(y == 1), np.flatnonzero(np.isin(y, [1, 4, 7, 9]))
    everything = np.arange(len(y))
    kinds = {
        "any": (everything, everything),
        "11": (ones, ones),
        "1x": (ones, slim),
        "x1": (slim, ones),
    }
    print(
        f"model: {predictor.name} ({args.model or 'bundled'}, backend {predictor.backend}); "
        f"{args.pairs} one-piece pairs of each kind"
    )
    for kind, (first, second) in kinds.items():
        images, labels = [], []
        while len(images) < args.pairs:
            i, j = int(rng.choice(first)), int(rng.choice(second))
            img = touching(x[i], x[j], int(rng.integers(1, 4)))
            if img is None or ndi.label(ink_mask(img), structure=np.ones((3, 3)))[1] != 1:
                continue
            images.append(img)
            labels.append(f"{y[i]}{y[j]}")
        readings = read_digits(images, predictor)
        right = np.mean([r.text == t for r, t in zip(readings, labels, strict=True)])
        print(f"  {kind:<4} {right * 100:5.1f}% read right")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
