"""Tables from the stored runs: runs.csv (one row per run), summary.csv/.md/.json (per model).

Everything here is computed from ``RunRecord``s read back from disk, never from a training
session's memory, so the tables always describe exactly the runs in the folder.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path
from typing import Any

from .._io import write_json, write_text
from .runner import RunRecord

__all__ = ["RUN_COLUMNS", "best_run", "summarize", "write_tables"]

RUN_COLUMNS = [
    "model",
    "arch",
    "recipe",
    "seed",
    "epochs",
    "train_images",
    "train_accuracy",
    "train_loss",
    "test_accuracy",
    "test_loss",
    "seconds",
    "parameters",
]
SUMMARY_COLUMNS = [
    "model",
    "arch",
    "recipe",
    "n",
    "train_images",
    "epochs",
    "parameters",
    "test_accuracy_mean",
    "test_accuracy_std",
    "test_accuracy_best",
    "test_accuracy_worst",
    "train_accuracy_mean",
    "train_accuracy_std",
    "train_accuracy_best",
    "train_accuracy_worst",
    "test_loss_mean",
    "seconds_mean",
]


def _std(xs: list[float]) -> float | None:
    # Sample standard deviation (n - 1 in the denominator): the runs are a sample of seeds.
    return statistics.stdev(xs) if len(xs) > 1 else None


def _same_or_list(values: list[Any]) -> Any:
    u = sorted(set(values))
    return u[0] if len(u) == 1 else u


def best_run(records: list[RunRecord]) -> RunRecord | None:
    """Highest test accuracy; ties go to the lower test loss, then the lower seed."""
    if not records:
        return None
    return min(records, key=lambda r: (-r.test_accuracy, r.test_loss, r.seed))


def summarize(records: list[RunRecord], labels: list[str] | None = None) -> dict[str, Any]:
    labels = labels or list(dict.fromkeys(r.label for r in records))
    rows = []
    for label in labels:
        rs = [r for r in records if r.label == label]
        if not rs:
            continue
        te = [r.test_accuracy for r in rs]
        tr = [r.train_accuracy for r in rs]
        rows.append(
            {
                "model": label,
                "arch": rs[0].model,
                "recipe": rs[0].recipe,
                "n": len(rs),
                "train_images": _same_or_list([r.train_images for r in rs]),
                "epochs": _same_or_list([r.epochs for r in rs]),
                "parameters": rs[0].parameters,
                "test_accuracy_mean": statistics.fmean(te),
                "test_accuracy_std": _std(te),
                "test_accuracy_best": max(te),
                "test_accuracy_worst": min(te),
                "train_accuracy_mean": statistics.fmean(tr),
                "train_accuracy_std": _std(tr),
                "train_accuracy_best": max(tr),
                "train_accuracy_worst": min(tr),
                "test_loss_mean": statistics.fmean(r.test_loss for r in rs),
                "seconds_mean": statistics.fmean(r.seconds for r in rs),
                "seeds": [r.seed for r in rs],
            }
        )
    b = best_run(records)
    return {
        "std": "sample standard deviation over runs (n - 1 denominator); null when n = 1",
        "models": rows,
        "best_run": None
        if b is None
        else {
            "model": b.label,
            "seed": b.seed,
            "test_accuracy": b.test_accuracy,
            "run_dir": b.run_dir,
        },
    }


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue()


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _pct(x: float | None, digits: int = 2) -> str:
    return (
        "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}"
    )


def summary_markdown(summary: dict[str, Any], command: str | None = None) -> str:
    rows = summary["models"]
    imgs = sorted(
        {
            f"{r['train_images']:,}"
            if isinstance(r["train_images"], int)
            else str(r["train_images"])
            for r in rows
        }
    )
    lines = ["# Experiment summary", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        (
            "Accuracies in % on the 10,000 MNIST test images (train: on the training images "
            "as seen "
            "during the last epoch, i.e. augmented where the recipe augments). "
            "std is the sample standard deviation over the n runs (n - 1 denominator). "
            "Time is training time per run, evaluation excluded."
        ),
        "",
        (
            "| model | recipe | n | trained on | epochs | params | test mean ± std | test best "
            "| test worst | train mean ± std | train best | train worst | time / run |"
        ),
        "| --- | --- " + "| ---: " * 11 + "|",
    ]
    for r in rows:
        ti = r["train_images"]
        ti_s = f"{ti:,} images" if isinstance(ti, int) else f"{ti} images"
        lines.append(
            f"| {r['model']} | {r['recipe']} | {r['n']} | {ti_s} | {_num(r['epochs'])} "
            f"| {r['parameters']:,} "
            f"| {_pct(r['test_accuracy_mean'])} ± {_pct(r['test_accuracy_std'])} "
            f"| {_pct(r['test_accuracy_best'])} | {_pct(r['test_accuracy_worst'])} "
            f"| {_pct(r['train_accuracy_mean'])} ± {_pct(r['train_accuracy_std'])} "
            f"| {_pct(r['train_accuracy_best'])} | {_pct(r['train_accuracy_worst'])} "
            f"| {r['seconds_mean']:.1f} s |"
        )
    b = summary.get("best_run")
    if b:
        lines += [
            "",
            (
                f"Best run: {b['model']} seed {b['seed']}, "
                f"{_pct(b['test_accuracy'])}% test accuracy "
                f"(`{b['run_dir']}`), trained on {', '.join(imgs)} images."
            ),
        ]
    return "\n".join(lines) + "\n"


def write_tables(
    out: Path, records: list[RunRecord], summary: dict[str, Any], command: str | None = None
) -> None:
    rows = [{**r.to_json(), "model": r.label, "arch": r.model} for r in records]
    write_text(out / "runs.csv", _csv(RUN_COLUMNS, rows))
    write_text(out / "summary.csv", _csv(SUMMARY_COLUMNS, summary["models"]))
    write_text(out / "summary.md", summary_markdown(summary, command))
    write_json(out / "summary.json", summary)
