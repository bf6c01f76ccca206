"""Train the reader's pair detector (``preprocess._pairs``): one digit or two touching digits?

    python -m digitnet.engine.pair_detector --data-dir ../shared/data/mnist \\
        --out src/digitnet/weights/pairs.npz

Examples are made the way the reader makes its crops (``to_mnist`` on a piece's ink), from the
MNIST training images only (the test images stay for measuring) and the synthetic allographs.
Every digit is first sheared by up to 0.3 and turned by up to 10 degrees (people slant); then

- one digit (label 0): an MNIST digit or an allograph, drawn 0.7-1.8x as wide as it is (wide
  0s, 2s and 7s are single digits too); a quarter of them with a sliver of another digit
  stuck to one side (what a cut in slightly the wrong place leaves);
- two digits (label 1): two MNIST digits side by side, each 0.8-1.25x as wide, heights within
  15%, overlapping by 0-4 columns of their 28, bottoms within 2 px, the pair squeezed to
  0.7-1.15x its width.

The network is a small CNN (conv 5x5 16 + pool, conv 3x3 32 + pool, 64 hidden, 1 output)
trained with Adam and a one-cycle schedule; the weights are saved as a NumPy archive the
reader runs without torch. Seeded: the same command gives the same file on the same machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..preprocess._mnist import to_mnist

__all__ = ["make_examples", "train"]


def _tight(d: np.ndarray, thr: float = 0.12) -> np.ndarray:
    rows = np.flatnonzero((d > thr).any(axis=1))
    cols = np.flatnonzero((d > thr).any(axis=0))
    return d[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _resize(a: np.ndarray, w: int, h: int) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(a, np.float32), "F")
    return np.asarray(img.resize((max(1, w), max(1, h)), Image.Resampling.BILINEAR), np.float32)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


_ZOOM = 2.0  # the pieces are drawn at twice MNIST's size before to_mnist, as a photo's would be


def _slanted(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``d`` sheared by up to 0.3 and turned by up to 10 degrees (people slant their digits)."""
    pad = np.pad(d, 8)
    sh = float(rng.uniform(-0.3, 0.3))
    img = Image.fromarray(np.ascontiguousarray(pad, np.float32), "F").transform(
        pad.shape[::-1],
        Image.Transform.AFFINE,
        (1.0, sh, -sh * pad.shape[0] / 2, 0.0, 1.0, 0.0),
        Image.Resampling.BILINEAR,
    )
    img = img.rotate(float(rng.uniform(-10, 10)), Image.Resampling.BILINEAR)
    return np.asarray(img, np.float32)


def _single(d: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    a = _tight(_slanted(d, rng))
    h, w = a.shape
    s = _log_uniform(rng, 0.7, 1.8)
    a = _resize(a, round(w * s * _ZOOM), round(h * _ZOOM))
    if rng.random() < 0.25:  # a sliver of a neighbour, touching
        b = _tight(other)
        b = _resize(b, round(b.shape[1] * _ZOOM), round(b.shape[0] * _ZOOM))
        k = int(rng.integers(2, max(3, b.shape[1] // 6) + 1))
        sliver = b[:, -k:] if rng.random() < 0.5 else b[:, :k]
        hh = max(a.shape[0], sliver.shape[0])
        canvas = np.zeros((hh, a.shape[1] + k - 1), np.float32)
        left = rng.random() < 0.5
        ya, ys = hh - a.shape[0], hh - sliver.shape[0]
        if left:
            canvas[ys:, :k] = sliver
            canvas[ya:, k - 1 :] = np.maximum(canvas[ya:, k - 1 :], a)
        else:
            canvas[ya:, : a.shape[1]] = a
            canvas[ys:, -k:] = np.maximum(canvas[ys:, -k:], sliver)
        a = canvas
    return to_mnist(np.clip(a, 0.0, 1.0))


def _pair(d1: np.ndarray, d2: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    a, b = _tight(_slanted(d1, rng)), _tight(_slanted(d2, rng))
    sa = rng.uniform(0.85, 1.15)
    a = _resize(
        a, round(a.shape[1] * _ZOOM * sa * rng.uniform(0.8, 1.25)), round(a.shape[0] * _ZOOM * sa)
    )
    b = _resize(b, round(b.shape[1] * _ZOOM * rng.uniform(0.8, 1.25)), round(b.shape[0] * _ZOOM))
    h = max(a.shape[0], b.shape[0]) + 8
    dy = int(rng.integers(-4, 5))
    ov = min(int(rng.integers(0, 9)), a.shape[1] - 2, b.shape[1] - 2)
    w = a.shape[1] + b.shape[1] - ov
    c = np.zeros((h + 10, w), np.float32)
    ya = h - a.shape[0]
    yb = max(0, min(h + 10 - b.shape[0], h - b.shape[0] + dy))
    c[ya : ya + a.shape[0], : a.shape[1]] = a
    right = c[yb : yb + b.shape[0], w - b.shape[1] :]
    c[yb : yb + b.shape[0], w - b.shape[1] :] = np.maximum(right, b)
    c = _resize(c, round(c.shape[1] * _log_uniform(rng, 0.7, 1.15)), c.shape[0])
    return to_mnist(np.clip(c, 0.0, 1.0))


def make_examples(
    digits: np.ndarray, count: int, seed: int, allographs: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` crops (float32 N x 28 x 28) and labels (1 = two digits), half of each.

    ``digits``: uint8 MNIST-style images (white on black); ``allographs``: more single
    digits (float [0, 1]), used for 3 in 10 of the single examples when given.
    """
    rng = np.random.default_rng(seed)
    xf = digits.astype(np.float32) / 255.0
    xs = np.zeros((count, 28, 28), np.float32)
    ys = np.zeros(count, np.int64)
    n = 0
    while n < count:
        two = n % 2 == 1
        if two:
            img = _pair(xf[rng.integers(len(xf))], xf[rng.integers(len(xf))], rng)
        else:
            use_allo = allographs is not None and rng.random() < 0.3
            src = allographs if use_allo and allographs is not None else xf
            img = _single(src[rng.integers(len(src))], xf[rng.integers(len(xf))], rng)
        if img is None:
            continue
        xs[n], ys[n] = img, int(two)
        n += 1
    return xs, ys


def _network():
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 64),
        nn.ReLU(),
        nn.Linear(64, 1),
    )


# Names of the saved arrays, by index of the layer in ``_network``.
_NAMES = {"0": "conv1", "3": "conv2", "7": "fc1", "9": "fc2"}


def train(
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 8,
    seed: int = 0,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    names: tuple[str, str] = ("one digit", "two digits"),
    log=print,
) -> dict[str, np.ndarray]:
    """Train the detector on crops ``x`` and labels ``y``; the weights by saved name.
    ``names``: what labels 0 and 1 are, for the validation line of each epoch."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    net = _network()
    xt, yt = torch.from_numpy(x[:, None]), torch.from_numpy(y).float()
    batch = 128
    steps = epochs * (len(x) // batch)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x) - batch + 1, batch):
            b = perm[i : i + batch]
            dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
            xb = torch.roll(xt[b], (dy, dx), (2, 3))  # up to 2 px off centre
            loss = F.binary_cross_entropy_with_logits(net(xb).squeeze(1), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        line = f"epoch {epoch + 1}/{epochs}: loss {float(loss.detach()):.4f}"
        if val is not None:
            net.eval()
            with torch.no_grad():
                p = torch.sigmoid(net(torch.from_numpy(val[0][:, None])).squeeze(1)).numpy()
            one, two = p[val[1] == 0], p[val[1] == 1]
            line += (
                f"; validation: {names[0]} taken for {names[1]} {np.mean(one >= 0.9):.2%} "
                f"(P >= 0.9), {names[1]} found {np.mean(two >= 0.9):.2%}"
            )
        log(f"{line} ({time.perf_counter() - t0:.0f} s)")
    return {
        f"{_NAMES[k.split('.')[0]]}.{k.split('.')[1]}": v.detach().numpy().astype(np.float32)
        for k, v in net.state_dict().items()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None, help="MNIST folder (default: as `digitnet train`)")
    ap.add_argument("--out", required=True, help="the .npz file to write")
    ap.add_argument("--count", type=int, default=120_000, help="training examples")
    ap.add_argument("--epochs", type=int, default=8)
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
    allo = allographs.training_pool(6000, seed=11)[0].astype(np.float32) / 255.0
    t0 = time.perf_counter()
    xs, ys = make_examples(fit, args.count, args.seed, allo)
    val = make_examples(held, 4000, args.seed + 1)
    print(f"{args.count:,} examples made in {time.perf_counter() - t0:.0f} s", flush=True)
    weights = train(
        xs, ys, epochs=args.epochs, seed=args.seed, val=val, log=lambda s: print(s, flush=True)
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
