"""Cross-population benchmark: how well a model reads writers who are not MNIST's.

    python benchmarks/bench_population.py [--model CKPT] [--quick] [--json OUT.json]

Every image of ``populations.py`` is read the way ``digitnet predict`` reads a file (same
preprocessing, segmentation and network; the bundled model unless ``--model``), and scored
exact-match on its text. Per population and per style it prints accuracy, the expected
calibration error (ECE, 15 bins) of the reading's confidence (the product of its digits'
confidences: the chance the whole text is right if the model is honest), and the accuracy of
the 95% of readings given with the most confidence. MNIST's own 10,000 test images, fed to the
network directly as 28x28 inputs, give the reference row ``mnist-test-28x28``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import populations  # noqa: E402

from digitnet.calibration import accuracy_at_coverage, expected_calibration_error  # noqa: E402


def _row(name: str, conf: list[float], ok: list[bool]) -> dict:
    c, k = np.asarray(conf, np.float64), np.asarray(ok, bool)
    acc95, _ = accuracy_at_coverage(c, k, 0.95)
    return {
        "group": name,
        "n": int(k.size),
        "accuracy": float(k.mean()),
        "ece": expected_calibration_error(c, k),
        "acc_at_95": acc95,
        "mean_confidence": float(c.mean()),
    }


def mnist_reference(predictor, data_dir: Path | None) -> dict:
    x, y = populations.synth_digits.load_test_digits(
        data_dir or populations.synth_digits.default_data_dir()
    )
    p = np.concatenate(
        [
            predictor.predict_proba(x[i : i + 1000].astype(np.float32) / 255.0)
            for i in range(0, len(y), 1000)
        ]
    )
    return _row("mnist-test-28x28", list(p.max(1)), list(p.argmax(1) == y))


def run(
    model: str | None,
    quick: bool,
    data_dir: Path | None,
    batch: int = 64,
    only: tuple[str, ...] = populations.POPULATIONS,
) -> dict:
    from digitnet.preprocess import read_digits

    try:
        from digitnet.inference import load_predictor  # applies meta["calibration"]

        predictor = load_predictor(model, backend="torch")
    except ImportError:  # an older tree (the "before" measurement)
        from digitnet.inference import Predictor

        predictor = Predictor.load(model)
    cal = predictor.meta.get("calibration")
    samples = list(populations.all_populations(quick=quick, data_dir=data_dir, only=only))
    t0 = time.perf_counter()
    conf: list[float] = []
    ok: list[bool] = []
    texts: list[str] = []
    for i in range(0, len(samples), batch):
        chunk = samples[i : i + batch]
        readings = read_digits(
            [s[0] for s in chunk], predictor, names=[f"{s[2]}-{i + j}" for j, s in enumerate(chunk)]
        )
        for s, r in zip(chunk, readings, strict=False):
            c = float(np.prod([d.confidence for d in r.digits])) if r.digits else 0.0
            conf.append(c)
            ok.append(r.text == s[1])
            texts.append(r.text)
    seconds = time.perf_counter() - t0
    groups: dict[str, list[int]] = defaultdict(list)
    styles: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[s[2]].append(i)
        if "|" in s[3] and s[2].startswith("numbers/"):
            framed, spacing = s[3].split("|")
            styles[f"{s[2]} {framed}"].append(i)
            styles[f"{s[2]} {spacing}"].append(i)
            styles[f"numbers {spacing}"].append(i)
        elif s[2] == "allographs":
            shape, look = s[3].split("|")
            styles[f"allographs {shape}"].append(i)
            styles[f"allographs {look}"].append(i)
            styles[f"allographs digit {shape.split(':')[0]}"].append(i)
        else:
            styles[f"{s[2]} {s[3]}"].append(i)
        if s[2] == "load_digits":
            styles[f"load_digits digit {s[1]}"].append(i)
    pick = lambda idx: ([conf[i] for i in idx], [ok[i] for i in idx])  # noqa: E731
    out = {
        "model": str(predictor.path),
        "save_id": predictor.meta.get("save_id"),
        "calibration": cal,
        "images": len(samples),
        "seconds": round(seconds, 1),
        "reference": mnist_reference(predictor, data_dir),
        "populations": [_row(g, *pick(idx)) for g, idx in groups.items()],
        "styles": [_row(g, *pick(idx)) for g, idx in sorted(styles.items())],
        # Of the numbers read wrong, how many have the wrong number of digits (a segmentation
        # error: touching digits merged, one digit split) and how many the right count.
        "number_errors": _number_errors(samples, texts, ok),
        "wrong": [
            {"population": s[2], "style": s[3], "label": s[1], "read": texts[i]}
            for i, s in enumerate(samples)
            if not ok[i]
        ][:400],
    }
    return out


def _number_errors(samples: list, texts: list[str], ok: list[bool]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for s, text, right in zip(samples, texts, ok, strict=True):
        if not s[2].startswith("numbers/"):
            continue
        spacing = s[3].split("|")[1] if "|" in s[3] else "mnist"
        row = out.setdefault(spacing, {"numbers": 0, "wrong": 0, "merged": 0, "split": 0})
        row["numbers"] += 1
        if not right:
            row["wrong"] += 1
            if len(text) < len(s[1]):
                row["merged"] += 1
            elif len(text) > len(s[1]):
                row["split"] += 1
    return out


def _print_table(rows: list[dict], title: str) -> None:
    print(f"\n{title}")
    print(f"{'group':<34} {'n':>6} {'accuracy':>9} {'ECE':>7} {'acc@95%':>8} {'mean conf':>9}")
    for r in rows:
        print(
            f"{r['group']:<34} {r['n']:>6} {100 * r['accuracy']:>8.1f}% {r['ece']:>7.3f} "
            f"{100 * r['acc_at_95']:>7.1f}% {r['mean_confidence']:>9.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="checkpoint (default: the bundled model)")
    ap.add_argument("--quick", action="store_true", help="about a fifth of each population")
    ap.add_argument("--data-dir", type=Path, help="MNIST folder (default $DIGITNET_DATA)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    ap.add_argument("--styles", action="store_true", help="print the per-style table too")
    ap.add_argument(
        "--only",
        default=",".join(populations.POPULATIONS),
        help="populations to read, comma-separated (default: all of "
        + ", ".join(populations.POPULATIONS)
        + ")",
    )
    args = ap.parse_args(argv)
    only = tuple(args.only.split(","))
    if unknown := set(only) - set(populations.POPULATIONS):
        ap.error(f"--only: unknown population {sorted(unknown)[0]!r}")
    res = run(args.model, args.quick, args.data_dir, only=only)
    cal = res["calibration"]
    print(
        f"model {res['model']} (save_id {res['save_id']}), temperature "
        f"{cal['temperature'] if cal else 'none'}; {res['images']:,} images in "
        f"{res['seconds']} s"
    )
    _print_table([res["reference"], *res["populations"]], "per population")
    if args.styles:
        _print_table(res["styles"], "per style")
    print("\nnumbers read wrong: too few digits (merged) / too many (split) / right count")
    for spacing, r in sorted(res["number_errors"].items()):
        same = r["wrong"] - r["merged"] - r["split"]
        print(
            f"  {spacing:<9} {r['numbers']:>4} numbers: {r['wrong']} wrong = "
            f"{r['merged']} merged + {r['split']} split + {same} misread"
        )
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
