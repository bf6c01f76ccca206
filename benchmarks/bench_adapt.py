"""How much ``digitnet adapt`` helps a new population of writers, and what it costs elsewhere.

A population the project never trained on, scikit-learn's ``load_digits`` (1,797 digits by 43
writers, 8x8 scans), is rendered as people's image files. For each number of examples per digit
(1, 2, 5, 10 by default) that many digits of each class are drawn at random, written as labelled
PNG files and given to ``adapt_model`` exactly as ``digitnet adapt`` would; the adapted model is
then read on

* the rest of that population (held out: never seen while adapting),
* the MNIST test set (all 10,000),
* another population (the benchmark populations' allograph set when benchmarks/populations.py
  offers one, else MNIST test digits rendered as photos and scans by synth_digits.py),

next to the base model's figures on the same images. Every image goes through the preprocessing
``digitnet predict --single`` uses.

``--writers N`` also measures what the command is for, one person's handwriting: N synthetic
writers (benchmarks/populations.py ``writer``: one allograph per digit, one pen, slant and look
each), adapted on that person's first examples and read on 20 more digits of each kind by the
same person.

    python benchmarks/bench_adapt.py [--per-digit 1 2 5 10] [--seconds 60] [--seeds 0]
                                     [--writers N] [--data-dir DIR] [--model BASE] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))


# ---------------------------------------------------------------------------- populations


def render_load_digits_fallback(seed: int = 0) -> tuple[list[Image.Image], np.ndarray]:
    """load_digits as dark ink on light paper, 8x8 scaled up smoothly to about 64 px tall with
    a margin of a quarter digit (used when benchmarks/populations.py has no renderer)."""
    from scipy import ndimage as ndi
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    out = []
    for img8 in d.images:
        a = Image.fromarray((img8 / 16.0).astype(np.float32), "F")
        side = int(rng.integers(48, 80))
        ink = np.asarray(a.resize((side, side), Image.BICUBIC), dtype=np.float32)
        ink = np.clip(ndi.gaussian_filter(ink, side / 40), 0, 1)
        m = side // 4
        ink = np.pad(ink, m)
        paper = rng.uniform(0.85, 1.0)
        img = paper * (1 - ink) + rng.uniform(0.05, 0.3) * ink
        img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1)
        out.append(Image.fromarray((img * 255).astype(np.uint8), "L"))
    return out, d.target.astype(np.int64)


def load_digits_population(seed: int) -> tuple[str, list[Any], np.ndarray, np.ndarray]:
    """``(name, images, labels, groups)``: images of one underlying digit share a group (the
    benchmark populations show each load_digits digit with a margin and cropped tight), so
    an example's other presentation is never among the held-out images."""
    try:
        import populations  # type: ignore[import-not-found]
    except ImportError:
        imgs, labels = render_load_digits_fallback(seed)
        return "load_digits (rendered here)", imgs, labels, np.arange(len(labels))
    samples = list(populations.load_digits_population())
    imgs = [s[0] for s in samples]
    labels = np.asarray([int(s[1]) for s in samples], np.int64)
    per = len(samples) // 1797 if len(samples) % 1797 == 0 else 1
    return (
        "load_digits (benchmarks/populations.py: drawing/scan/photo, margin and tight)",
        imgs,
        labels,
        np.arange(len(samples)) // per,
    )


def other_population(
    data_dir: Path, seed: int, count: int = 1000
) -> tuple[str, list[Any], np.ndarray]:
    try:
        import populations  # type: ignore[import-not-found]
    except ImportError:
        populations = None
    if populations is not None:
        samples = list(populations.allograph_population())
        return (
            "allographs (benchmarks/populations.py)",
            [s[0] for s in samples],
            np.asarray([int(s[1]) for s in samples], np.int64),
        )
    import synth_digits  # type: ignore[import-not-found]

    x, y = synth_digits.load_test_digits(data_dir)
    rng = np.random.default_rng(seed + 1)
    conds = [c for c in synth_digits.CONDITIONS if c != "number"]
    imgs, labels = [], []
    for k in range(count):
        pil, label, _ = synth_digits.make_image(x, y, conds[k % len(conds)], rng)
        imgs.append(pil)
        labels.append(int(label))
    return "MNIST test digits as photos/scans", imgs, np.asarray(labels, np.int64)


def to_inputs(images: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """28x28 inputs as ``predict --single`` makes them; the indices of images that gave one."""
    from digitnet.preprocess import prepare

    xs, keep = [], []
    for i, im in enumerate(images):
        p = prepare(im, single=True, name=f"image {i}")
        if p.image is not None:
            xs.append(p.image)
            keep.append(i)
    return np.stack(xs).astype(np.float32), np.asarray(keep, np.int64)


# ---------------------------------------------------------------------------- measuring


def accuracy(predictor, x: np.ndarray, y: np.ndarray, missing: int = 0) -> float:
    """Share read right; images with no digit found (``missing``) count as wrong."""
    right = 0
    for i in range(0, len(x), 1000):
        right += int((predictor.predict_proba(x[i : i + 1000]).argmax(1) == y[i : i + 1000]).sum())
    return right / (len(x) + missing)


def pick(
    labels: np.ndarray, groups: np.ndarray, per_digit: int, rng: np.random.Generator
) -> np.ndarray:
    """``per_digit`` images of each digit, each from another group (underlying digit), one
    presentation of each chosen digit drawn at random among its images."""
    out = []
    for d in range(10):
        idx = np.flatnonzero(labels == d)
        gs = np.unique(groups[idx])
        for g in rng.choice(gs, per_digit, replace=False):
            out.append(rng.choice(idx[groups[idx] == g]))
    return np.asarray(out, np.int64)


def save_image(img: Any, path: Path) -> None:
    (img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img))).save(path)


WRITER_HELD_OUT = 20  # held-out digits of each kind per writer


def _adapt_and_measure(
    examples: list[tuple[Any, Any]], held: tuple[np.ndarray, np.ndarray, int], ctx: dict, **kw
) -> dict[str, Any]:
    """Write ``examples`` (image, label) as labelled PNG files, adapt on them as ``digitnet
    adapt`` would (``kw``: ``adapt_model``'s options) and measure the result: the held-out
    images ``(x, y, missing)``, MNIST test and the other population, next to the base."""
    from digitnet.adapt import adapt_model
    from digitnet.inference import load_predictor

    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for j, (img, label) in enumerate(examples):
            f = Path(tmp) / f"{label}_example{j:03d}.png"
            save_image(img, f)
            files.append(str(f))
        out = Path(tmp) / "adapted.safetensors"
        r = adapt_model(files, out=out, **kw)
        adapted = load_predictor(out, backend="torch")
    hx, hy, miss = held
    return {
        "mode": r.mode,
        "steps": r.steps,
        "stopped": r.stopped,
        "seconds": round(r.seconds, 1),
        "pop_base": accuracy(ctx["base"], hx, hy, miss),
        "pop_adapted": accuracy(adapted, hx, hy, miss),
        "mnist_base": ctx["mnist_base"],
        "mnist_adapted": accuracy(adapted, *ctx["mnist"]),
        "other_base": ctx["other_base"],
        "other_adapted": accuracy(adapted, *ctx["other"]),
        "held_out": len(hy) + miss,
    }


def _writers(args, ctx: dict) -> list[dict[str, Any]]:
    """Adapt to each of ``args.writers`` synthetic writers; one row per writer and count."""
    if not args.writers:
        return []
    import populations  # type: ignore[import-not-found]

    out: list[dict[str, Any]] = []
    for w in range(args.writers):
        most = max(args.per_digit)
        hand, samples = populations.writer(w, most + WRITER_HELD_OUT)
        held = samples[10 * most :]  # the samples come ten at a time, one of each digit
        hx, hkeep = to_inputs([s[0] for s in held])
        hy = np.asarray([int(s[1]) for s in held], np.int64)[hkeep]
        miss = len(held) - len(hkeep)
        for k in args.per_digit:
            row = {"writer": w, "hand": hand, "per_digit": k}
            row |= _adapt_and_measure(
                [(s[0], s[1]) for s in samples[: 10 * k]],
                (hx, hy, miss),
                ctx,
                base=args.model,
                seconds=args.seconds,
                data_dir=args.data_dir,
            )
            out.append(row)
            print(json.dumps(row), file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-digit", type=int, nargs="+", default=[1, 2, 5, 10])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument(
        "--data-dir",
        default=os.environ.get("DIGITNET_DATA") or str(REPO.parent / "shared" / "data" / "mnist"),
    )
    ap.add_argument(
        "--no-replay",
        action="store_true",
        help="adapt without MNIST replay (the l2sp mode of a machine without data)",
    )
    ap.add_argument("--model", default=None, help="base checkpoint (default: the bundled model)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument(
        "--writers", type=int, default=0, help="also adapt to N synthetic single writers"
    )
    ap.add_argument(
        "--no-population", action="store_true", help="skip the load_digits rows (writers only)"
    )
    ap.add_argument("--json", default=None, help="write the results here too")
    args = ap.parse_args(argv)

    import torch

    from digitnet.checkpoint import read_metadata
    from digitnet.data.mnist import load_mnist
    from digitnet.inference import bundled_model_path, load_predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    base_path = Path(args.model) if args.model else bundled_model_path()
    base_meta = read_metadata(base_path)
    t = time.monotonic()
    pop_name, pop_imgs, pop_y, pop_g = load_digits_population(0)
    pop_x, pop_keep = to_inputs(pop_imgs)
    oth_name, oth_imgs, oth_y = other_population(Path(args.data_dir), 0)
    oth_x, oth_keep = to_inputs(oth_imgs)
    mx, my = load_mnist(args.data_dir, "test")
    mx = mx.astype(np.float32) / 255.0
    print(
        f"populations ready in {time.monotonic() - t:.1f} s: {pop_name} {len(pop_imgs)}, "
        f"{oth_name} {len(oth_imgs)}",
        file=sys.stderr,
    )

    base = load_predictor(base_path, backend="torch")
    oth_miss = len(oth_imgs) - len(oth_keep)
    base_mnist = accuracy(base, mx, my)
    base_other = accuracy(base, oth_x, oth_y[oth_keep], oth_miss)
    ctx = {
        "base": base,
        "mnist_base": base_mnist,
        "mnist": (mx, my),
        "other_base": base_other,
        "other": (oth_x, oth_y[oth_keep], oth_miss),
    }
    if args.no_replay:  # a path with no MNIST files: adapt falls back to its l2sp mode
        os.environ["DIGITNET_DATA"] = str(Path(tempfile.gettempdir()) / "digitnet-no-mnist-here")
    rows: list[dict[str, Any]] = []
    for k in [] if args.no_population else args.per_digit:
        for seed in args.seeds:
            rng = np.random.default_rng(1000 + seed)
            chosen = pick(pop_y, pop_g, k, rng)
            held = np.flatnonzero(~np.isin(pop_g, pop_g[chosen]))
            held_in = np.isin(pop_keep, held)
            miss = len(held) - int(held_in.sum())
            hx, hy = pop_x[held_in], pop_y[pop_keep[held_in]]
            row = {"per_digit": k, "seed": seed}
            row |= _adapt_and_measure(
                [(pop_imgs[i], pop_y[i]) for i in chosen],
                (hx, hy, miss),
                ctx,
                base=args.model,
                seed=seed,
                seconds=args.seconds,
                data_dir=None if args.no_replay else args.data_dir,
            )
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)

    writer_rows = _writers(args, ctx)

    print(
        f"base model: {base_path.name} save_id {base_meta.get('save_id')} "
        f"(trained on {(base_meta.get('data') or {}).get('train_images', '?'):,} images)"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch threads "
        f"{torch.get_num_threads()}; population: {pop_name}; other: {oth_name}"
    )
    hdr = (
        f"{'per digit':>9} {'seed':>4} {'mode':>6} {'steps':>5} {'stop':>5} {'s':>5}  "
        f"{'population':>17}  {'MNIST test':>17}  {'other':>17}"
    )
    print(hdr)
    for r in rows:
        print(
            f"{r['per_digit']:>9} {r['seed']:>4} {r['mode']:>6} {r['steps']:>5} "
            f"{r['stopped']:>5} {r['seconds']:>5.1f}  "
            f"{100 * r['pop_base']:>6.2f} -> {100 * r['pop_adapted']:>6.2f}%  "
            f"{100 * r['mnist_base']:>6.2f} -> {100 * r['mnist_adapted']:>6.2f}%  "
            f"{100 * r['other_base']:>6.2f} -> {100 * r['other_adapted']:>6.2f}%"
        )
    if writer_rows:
        print(f"\none writer each: {WRITER_HELD_OUT} held-out digits of each kind by that writer")
        print(
            f"{'writer':>6} {'per digit':>9} {'steps':>5} {'stop':>5} {'s':>5}  "
            f"{'that writer':>17}  {'MNIST test':>17}  {'other':>17}  hand"
        )
        for r in writer_rows:
            print(
                f"{r['writer']:>6} {r['per_digit']:>9} {r['steps']:>5} {r['stopped']:>5} "
                f"{r['seconds']:>5.1f}  "
                f"{100 * r['pop_base']:>6.2f} -> {100 * r['pop_adapted']:>6.2f}%  "
                f"{100 * r['mnist_base']:>6.2f} -> {100 * r['mnist_adapted']:>6.2f}%  "
                f"{100 * r['other_base']:>6.2f} -> {100 * r['other_adapted']:>6.2f}%  "
                f"{r['hand']}"
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "base": {"path": base_path.name, "save_id": base_meta.get("save_id")},
                    "population": pop_name,
                    "other": oth_name,
                    "seconds": args.seconds,
                    "threads": torch.get_num_threads(),
                    "rows": rows,
                    "writer_rows": writer_rows,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
