"""Numbers written in form fields: a box per digit, a row of cells, a comb, a line, one box.

    python benchmarks/bench_forms.py [--count 300] [--model CKPT] [--seed 0]

A postcode, an amount or a date on a form is written into printed boxes. Each image here is
such a field: 3-6 digits (MNIST *test* digits and the benchmark's own allographs, never trained
on), one in each cell, the printed lines 1-3 px thin and lighter or as dark as the ink, the
whole field sometimes a degree or two askew, shown as a canvas drawing, a scan or a photo
(``populations.present``), with a margin or cropped to the lines. Every image is read the way
``digitnet predict`` reads a file and scored exact-match on its text, per kind of field and per
look. Figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import populations  # noqa: E402
import synth_digits  # noqa: E402

from digitnet.data.allographs import STYLES, draw  # noqa: E402

KINDS = ("boxes", "cells", "comb", "line", "one box")
FORM_SEED = 626262


def _digit_ink(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, size: int):
    """One digit's ink coverage, about ``size`` px tall, and its label."""
    if rng.random() < 0.5:
        i = int(rng.integers(len(y)))
        a = x[i].astype(np.float32) / 255.0
        rows, cols = np.flatnonzero(a.max(1) > 0.05), np.flatnonzero(a.max(0) > 0.05)
        a = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        f = size / a.shape[0]
        w = max(1, round(a.shape[1] * f))
        im = Image.fromarray(a, "F").resize((w, size), Image.Resampling.BICUBIC)
        return np.clip(np.asarray(im, np.float32), 0.0, 1.0), int(y[i])
    keys = list(STYLES)
    d, style = keys[int(rng.integers(len(keys)))]
    ink = draw(d, style, rng, height=size, margin=0.0)
    return populations._crop(ink), int(d)


def field(x: np.ndarray, y: np.ndarray, kind: str, rng: np.random.Generator):
    """The ink of one form field (digits + printed lines) and the number written in it."""
    n = int(rng.integers(3, 7))
    cell = int(rng.integers(36, 65))
    t = int(rng.integers(1, 4))  # line thickness
    tone = float(rng.uniform(0.55, 1.0))  # printed lines are often lighter than the ink
    gap = int(rng.uniform(0.15, 0.5) * cell) if kind == "boxes" else 0
    pad = cell // 2
    tick = cell // int(rng.integers(2, 4))  # a comb's ticks: a half or a third of the cell
    width = n * cell + (n - 1) * gap
    ink = np.zeros((cell + 2 * pad, width + 2 * pad), np.float32)
    lines = np.zeros_like(ink)
    label = ""
    for j in range(n):
        x0, y0 = pad + j * (cell + gap), pad
        size = int(cell * rng.uniform(0.55, 0.8))
        d, digit = _digit_ink(x, y, rng, size)
        d = d[:, : cell - 2 * t - 2]
        dy = int(rng.integers(t + 1, max(t + 2, cell - d.shape[0] - t)))
        dx = int(rng.integers(t + 1, max(t + 2, cell - d.shape[1] - t)))
        sub = ink[y0 + dy : y0 + dy + d.shape[0], x0 + dx : x0 + dx + d.shape[1]]
        np.maximum(sub, d[: sub.shape[0], : sub.shape[1]], out=sub)
        label += str(digit)
        if kind == "boxes":
            lines[y0 : y0 + t, x0 : x0 + cell] = 1
            lines[y0 + cell - t : y0 + cell, x0 : x0 + cell] = 1
            lines[y0 : y0 + cell, x0 : x0 + t] = 1
            lines[y0 : y0 + cell, x0 + cell - t : x0 + cell] = 1
        elif kind in ("cells", "comb"):
            top = y0 if kind == "cells" else y0 + cell - tick
            lines[top : y0 + cell, x0 : x0 + t] = 1
            if j == n - 1:
                lines[top : y0 + cell, x0 + cell - t : x0 + cell] = 1
    if kind in ("cells", "one box"):
        lines[pad : pad + t, pad : pad + width] = 1
        lines[pad + cell - t : pad + cell, pad : pad + width] = 1
    if kind == "one box":
        lines[pad : pad + cell, pad : pad + t] = 1
        lines[pad : pad + cell, pad + width - t : pad + width] = 1
    if kind in ("comb", "line"):
        over = int(rng.uniform(0.0, 0.4) * cell) if kind == "line" else 0
        lines[pad + cell - t : pad + cell, max(0, pad - over) : pad + width + over] = 1
    out = np.maximum(ink, tone * lines)
    if rng.random() < 0.5:  # a little askew
        out = np.clip(ndi.rotate(out, rng.uniform(-2.0, 2.0), reshape=True, order=1), 0, 1)
    return out, label


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=300, help="fields (spread over the kinds)")
    ap.add_argument("--model", default=None, help="checkpoint (default: the bundled model)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, default=None, help="MNIST folder")
    ap.add_argument("--save", type=Path, default=None, help="also write the images here")
    args = ap.parse_args(argv)

    from digitnet.inference import load_predictor
    from digitnet.preprocess import read_digits

    x, y = synth_digits.load_test_digits(args.data_dir or synth_digits.default_data_dir())
    rng = np.random.default_rng(FORM_SEED + args.seed)
    samples = []
    for k in range(args.count):
        kind = KINDS[k % len(KINDS)]
        look = populations.LOOKS[(k // len(KINDS)) % len(populations.LOOKS)]
        framing = populations.FRAMINGS[(k // (len(KINDS) * 3)) % 2]
        ink, label = field(x, y, kind, rng)
        samples.append((populations.present(ink, look, framing, rng), label, kind, look, framing))
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for i, (img, label, kind, look, _) in enumerate(samples):
            name = f"{label}_{kind.replace(' ', '-')}_{look}_{i:04d}.png"
            Image.fromarray(img).save(args.save / name)
    predictor = load_predictor(args.model, backend="torch")
    t0 = time.perf_counter()
    readings = []
    for i in range(0, len(samples), 64):
        readings += read_digits([s[0] for s in samples[i : i + 64]], predictor)
    seconds = time.perf_counter() - t0
    groups: dict[str, list[bool]] = defaultdict(list)
    for s, r in zip(samples, readings, strict=True):
        ok = r.text == s[1]
        groups["all"].append(ok)
        groups[f"kind {s[2]}"].append(ok)
        groups[f"look {s[3]}"].append(ok)
        groups[f"framing {s[4]}"].append(ok)
    print(
        f"model {predictor.path.name} (save_id {predictor.meta.get('save_id')}); "
        f"{len(samples)} fields in {seconds:.1f} s"
    )
    print(f"{'group':<16} {'n':>5} {'exact match':>12}")
    for g, oks in sorted(groups.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        print(f"{g:<16} {len(oks):>5} {100 * np.mean(oks):>11.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
