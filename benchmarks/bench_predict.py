"""Quality and speed of ``digitnet predict`` on a synthetic collection (benchmarks/synth_digits.py).

Prints: single-digit accuracy and exact match on numbers (targets >= 99% and >= 97%), accuracy
per condition, ms per image warm (decode + preprocess + predict, one image at a time), images/s
over a whole folder (the whole `digitnet predict FOLDER` command), and the cold-start seconds of
``digitnet predict one.png`` in a fresh interpreter.

    python benchmarks/synth_digits.py out/synth --count 1000
    python benchmarks/bench_predict.py out/synth [--model CHECKPOINT]

Figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "folder", type=Path, help="output folder of synth_digits.py (with manifest.csv)"
    )
    ap.add_argument("--model", default=None, help="checkpoint (default: the bundled model)")
    ap.add_argument(
        "--backend",
        choices=["torch", "onnx"],
        default=None,
        help="network backend, as `digitnet predict --backend` (default: the same "
        "choice the command makes)",
    )
    ap.add_argument("--warm-images", type=int, default=100, help="images timed one at a time")
    ap.add_argument("--jobs", type=int, default=None, help="worker processes for the folder run")
    ap.add_argument(
        "--quality-only",
        action="store_true",
        help="accuracy figures only (skip the warm, folder and cold-start timings)",
    )
    ap.add_argument(
        "--show-wrong",
        type=int,
        default=0,
        metavar="N",
        help="list up to N misread images (file, condition, label, read)",
    )
    args = ap.parse_args(argv)

    import numpy as np

    from digitnet.inference import load_predictor
    from digitnet.preprocess import classify, prepare

    rows = list(csv.DictReader(open(args.folder / "manifest.csv", newline="")))
    files = [str(args.folder / r["file"]) for r in rows]
    # The network exactly as `digitnet predict` loads it (backend rule, one thread).
    predictor = load_predictor(args.model, backend=args.backend or "auto", threads=1)
    backend = predictor.backend
    print(
        f"model: {predictor.name} ({args.model or 'bundled'}, backend {backend}); "
        f"{len(rows)} images in {args.folder}"
    )

    # Quality: every image, batched like the CLI does.
    prepared = [prepare(f, name=f) for f in files]
    readings = classify(prepared, files, predictor, top_k=3)
    per_cond: dict[str, list[bool]] = defaultdict(list)
    single, number, seg_ok, wrong = [], [], [], []
    for r, row in zip(readings, rows, strict=True):
        right = r.text == row["label"]
        if not right:
            wrong.append(
                f"  {row['file']:<24} {row['condition']:<14} {row['label']:<8} {r.text or '-'}"
            )
        per_cond[row["condition"]].append(right)
        (single if len(row["label"]) == 1 else number).append(right)
        seg_ok.append(len(r.digits) == len(row["label"]))
    if single:
        print(
            f"single-digit accuracy: {np.mean(single) * 100:.2f}% of {len(single)} (target >= 99%)"
        )
    if number:
        print(
            f"numbers exact match:   {np.mean(number) * 100:.2f}% of {len(number)} (target >= 97%)"
        )
    print(f"digit count right:     {np.mean(seg_ok) * 100:.2f}%")
    print("per condition:")
    for c in sorted(per_cond):
        v = per_cond[c]
        print(f"  {c:<14} {np.mean(v) * 100:6.2f}%  (n={len(v)})")
    if args.show_wrong and wrong:
        print(f"misread ({len(wrong)}; file, condition, label, read):")
        print("\n".join(wrong[: args.show_wrong]))
    if args.quality_only:
        return 0

    # Speed, warm, one image at a time (what the GUI and `predict one.png` do).
    n = min(args.warm_images, len(files))
    for f in files[:5]:
        classify([prepare(f)], [f], predictor)
    t = time.perf_counter()
    for f in files[:n]:
        classify([prepare(f)], [f], predictor)
    print(
        f"warm, one image at a time: {(time.perf_counter() - t) / n * 1e3:.2f} ms/image "
        f"(target <= 10 ms)"
    )

    # Folder throughput: the whole command in a fresh interpreter (start-up, worker processes,
    # batched network calls, JSON output), as a user runs it; median of 3.
    model_args = (["--model", args.model] if args.model else []) + ["--backend", backend]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    cmd = [sys.executable, "-m", "digitnet", "predict", str(args.folder), "--json", *model_args]
    if args.jobs:
        cmd += ["--jobs", str(args.jobs)]
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t)
    dt = float(np.median(times))
    print(
        f"folder of {len(files)} via `digitnet predict FOLDER --json` (whole command, median "
        f"of 3): {len(files) / dt:.0f} images/s ({dt:.2f} s; target >= 300 images/s)"
    )

    # Cold start: a fresh interpreter running the CLI on one image.
    one = files[0]
    cmd = [sys.executable, "-m", "digitnet", "predict", one, *model_args]
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t)
    print(
        f"cold start `digitnet predict one.png`: {min(times):.2f} s best of 3, "
        f"{np.median(times):.2f} s median (target <= 1 s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
