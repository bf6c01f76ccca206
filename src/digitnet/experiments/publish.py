"""The publishable results of an experiment: runs.csv, history.csv, summary.json, tables.md.

``digitnet experiment --results DIR`` writes these from the finished run records (and, when
present, ``DIR/classical.json`` from ``--classical``); ``--plot DIR`` draws the figures from
these files alone, so the published figures can be regenerated from what is committed, without
the run folders (checkpoints, event files) that are not.

Accuracies are fractions (0.9931, not 99.31) in every file here; the Markdown shows percent.
"""

from __future__ import annotations

import csv
import io
import math
import os
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._io import write_json, write_text
from ..errors import UsageError
from .plan import Plan
from .runner import RunRecord, final_evaluation

__all__ = [
    "HISTORY_COLUMNS",
    "REPORTED",
    "RUN_COLUMNS",
    "build_summary",
    "describe_machine",
    "history_rows",
    "read_results",
    "run_rows",
    "tables_markdown",
    "write_results",
]

# What the 2024 seed paper cites from the literature (its Figure 6 comparison). Not measured
# here: drawn and listed as kind "reported", apart from the measured and classical rows.
REPORTED: list[dict[str, Any]] = [
    {"model": "cascade classifier", "test_accuracy": 0.883},
    {"model": "optimised BP network", "test_accuracy": 0.95},
    {"model": "PCA-based method", "test_accuracy": 0.96},
    {"model": "TensorFlow deep model", "test_accuracy": 0.9832},
]
REPORTED_SOURCE = "cited by the 2024 seed paper"
# The seed paper's own result for its network, trained on all 60,000 training images.
PAPER_OWN = {
    "model": "paper network (paper's own result, trained on 60,000 images)",
    "test_accuracy": 0.9931,
    "source": "the 2024 seed paper (trained on 60,000 images; ours on 24,345)",
}

RUN_COLUMNS = [
    "model",
    "label",
    "recipe",
    "seed",
    "epochs",
    "train_images",
    "test_images",
    "test_accuracy",
    "train_accuracy",
    "test_loss",
    "train_loss",
    "train_accuracy_last_epoch",
    "train_loss_last_epoch",
    "train_seconds",
    "parameters",
    "resumed_from_step",
]
HISTORY_COLUMNS = [
    "label",
    "model",
    "recipe",
    "seed",
    "epoch",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "seconds",
    "lr",
]
STD_NOTE = "sample standard deviation over runs (n - 1 denominator); null when n = 1"
TRAIN_NOTE = (
    "train_accuracy: the final model in eval mode on its (unaugmented) training images; "
    "train_accuracy_last_epoch: the running mean over the last epoch, while the weights "
    "still changed, with dropout / augmentation on"
)


def describe_machine(threads: int | None = None, note: str | None = None) -> str:
    """This machine in words, e.g. '2 CPU cores (Intel Xeon ...), 1 torch thread'."""
    parts = []
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor()
    cores = os.cpu_count() or 1
    parts.append(f"{cores} CPU core{'s' if cores != 1 else ''}" + (f" ({model})" if model else ""))
    try:
        import torch

        if torch.cuda.is_available():
            parts.append(torch.cuda.get_device_name(0))
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if threads:
        parts.append(f"{threads} torch thread{'s' if threads != 1 else ''}")
    if note:
        parts.append(note)
    return ", ".join(parts)


def _stats(xs: Sequence[float]) -> dict[str, float | None] | None:
    if not xs:
        return None
    return {
        "mean": statistics.fmean(xs),
        "std": statistics.stdev(xs) if len(xs) > 1 else None,
        "best": max(xs),
        "worst": min(xs),
    }


def _same(values: list[Any]) -> Any:
    u = sorted(set(values))
    return u[0] if len(u) == 1 else u


def run_rows(out: Path, records: list[RunRecord]) -> list[dict[str, Any]]:
    """One row per run; train accuracy / loss: the final model evaluated on its training images."""
    rows = []
    for r in records:
        fe = final_evaluation(out, r)
        rows.append(
            {
                "model": r.model,
                "label": r.label,
                "recipe": r.recipe,
                "seed": r.seed,
                "epochs": r.epochs,
                # the real training images (a recipe's synthetic extras are not counted)
                "train_images": fe.get("train_images", r.train_images),
                "test_images": fe.get("test_images", 10000),
                "test_accuracy": r.test_accuracy,
                "train_accuracy": fe["train_accuracy"],
                "test_loss": r.test_loss,
                "train_loss": fe["train_loss"],
                "train_accuracy_last_epoch": r.train_accuracy,
                "train_loss_last_epoch": r.train_loss,
                "train_seconds": r.seconds,
                "parameters": r.parameters,
                "resumed_from_step": r.resumed_from_step,
            }
        )
    return rows


def history_rows(records: list[RunRecord]) -> list[dict[str, Any]]:
    """One row per run and evaluated epoch (the per-epoch curves)."""
    rows = []
    for r in records:
        for h in r.history:
            rows.append(
                {
                    "label": r.label,
                    "model": r.model,
                    "recipe": r.recipe,
                    "seed": r.seed,
                    **{k: h.get(k) for k in HISTORY_COLUMNS[4:]},
                }
            )
    return rows


def build_summary(
    plan: Plan | None, runs: list[dict[str, Any]], classical: list[dict[str, Any]], machine: str
) -> dict[str, Any]:
    """summary.json: one row per measured entry, then the classical and the reported rows."""
    labels = (
        [e.label for e in plan.entries] if plan else list(dict.fromkeys(r["label"] for r in runs))
    )
    planned = {e.label: e.runs for e in plan.entries} if plan else {}
    trained_on = sorted(
        {int(r["train_images"]) for r in runs} | {int(c["train_images"]) for c in classical}
    )
    rows: list[dict[str, Any]] = []
    for label in labels:
        rs = [r for r in runs if r["label"] == label]
        if not rs:
            continue
        n, want = len(rs), planned.get(label, len(rs))
        rows.append(
            {
                "model": label,
                "arch": rs[0]["model"],
                "recipe": rs[0]["recipe"],
                "kind": "measured",
                "epochs": _same([r["epochs"] for r in rs]),
                "runs": n,
                "runs_planned": want,
                "seeds": [int(r["seed"]) for r in rs],
                "parameters": int(rs[0]["parameters"]),
                "test_accuracy": _stats([float(r["test_accuracy"]) for r in rs]),
                "train_accuracy": _stats([float(r["train_accuracy"]) for r in rs]),
                "train_accuracy_last_epoch": _stats(
                    [float(r["train_accuracy_last_epoch"]) for r in rs]
                ),
                "test_loss_mean": statistics.fmean(float(r["test_loss"]) for r in rs),
                "train_seconds_mean": statistics.fmean(float(r["train_seconds"]) for r in rs),
                "source": f"measured here with digitnet experiment ({n} of {want} runs finished)",
            }
        )
    for c in classical:
        rows.append(
            {
                "model": c["model"],
                "arch": None,
                "recipe": c["recipe"],
                "kind": "classical",
                "epochs": None,
                "runs": 1,
                "test_accuracy": _stats([c["test_accuracy"]]),
                "train_accuracy": _stats([c["train_accuracy"]]),
                "train_seconds_mean": c["fit_seconds"],
                "source": c["source"],
            }
        )
    for r in [*REPORTED, PAPER_OWN]:
        rows.append(
            {
                "model": r["model"],
                "arch": None,
                "recipe": None,
                "kind": "reported",
                "epochs": None,
                "runs": None,
                "test_accuracy": {
                    "mean": r["test_accuracy"],
                    "std": None,
                    "best": None,
                    "worst": None,
                },
                "train_accuracy": None,
                "train_seconds_mean": None,
                "source": r.get("source", REPORTED_SOURCE),
            }
        )
    return {
        "machine": machine,
        "trained_on": trained_on[0] if len(trained_on) == 1 else (trained_on or None),
        "rows": rows,
        "notes": {
            "tested_on": "the 10,000 MNIST test images",
            "std": STD_NOTE,
            "train_accuracy": TRAIN_NOTE,
            "train_seconds_mean": (
                "training time per run, evaluation excluded; classical rows: fit time"
            ),
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
    return "-" if x is None else (f"{x:g}" if isinstance(x, float) else str(x))


def images_text(n: Any) -> str:
    """24345 -> '24,345'; a list (mixed runs) -> '300 / 24,345'; None -> 'no'."""
    if isinstance(n, list):
        return " / ".join(f"{int(i):,}" for i in n) or "no"
    return "no" if n is None else f"{int(n):,}"


def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}"


def _report_table(row: dict[str, Any]) -> list[str]:
    """The course report's table: rows Training / Test accuracy, columns best/worst/mean/std."""
    lines = ["| | best | worst | mean | std |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, key in (("Training accuracy", "train_accuracy"), ("Test accuracy", "test_accuracy")):
        s = row[key]
        lines.append(
            f"| {name} | {_pct(s['best'])}% | {_pct(s['worst'])}% | {_pct(s['mean'])}% "
            f"| {_pct(s['std'])} |"
        )
    return lines


def tables_markdown(summary: dict[str, Any], command: str | None = None) -> str:
    measured = [r for r in summary["rows"] if r["kind"] == "measured"]
    lines = [
        "# Results tables",
        "",
        "Generated by `digitnet experiment` from the run records; do not edit by hand.",
        "",
    ]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        f"Machine: {summary['machine']}. "
        f"Trained on {images_text(summary['trained_on'])} images, tested on "
        f"the 10,000 MNIST test images. Accuracies in %; std in percentage points ({STD_NOTE}). "
        "Training accuracy: the final model on its unaugmented training images.",
        "",
    ]
    for label, title in (
        ("course", "The course report's table: course network, course recipe"),
        ("paper", "The same for the seed paper's network, paper recipe"),
    ):
        row = next((r for r in measured if r["model"] == label), None)
        if row is None:
            continue
        lines += [
            f"## {title} ({row['runs']} of {row['runs_planned']} runs, "
            f"{_num(row['epochs'])} epochs)",
            "",
        ]
        lines += [*_report_table(row), ""]
    lines += [
        "## All rows",
        "",
        "| kind | model | recipe | epochs | runs | test mean ± std | test best / worst "
        "| train mean | train time / run | source |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in summary["rows"]:
        te, tr = r["test_accuracy"], r["train_accuracy"]
        std = f" ± {_pct(te['std'])}" if te["std"] is not None else ""
        bw = f"{_pct(te['best'])} / {_pct(te['worst'])}" if te["best"] is not None else "-"
        secs = "-" if r["train_seconds_mean"] is None else f"{r['train_seconds_mean']:.1f} s"
        runs = (
            "-"
            if r["runs"] is None
            else (f"{r['runs']} of {r['runs_planned']}" if "runs_planned" in r else str(r["runs"]))
        )
        lines.append(
            f"| {r['kind']} | {r['model']} | {r['recipe'] or '-'} | {_num(r['epochs'])} | {runs} "
            f"| {_pct(te['mean'])}{std} | {bw} | {_pct(tr['mean']) if tr else '-'} | {secs} "
            f"| {r['source']} |"
        )
    lines += ["", f"Times: {summary['machine']}."]
    return "\n".join(lines) + "\n"


def write_results(
    dest: Path,
    plan: Plan | None,
    records: list[RunRecord],
    machine: str,
    command: str | None = None,
) -> dict[str, Any]:
    """Write runs.csv, history.csv, summary.json and tables.md into ``dest``; return the summary."""
    runs = run_rows(plan.out if plan else dest, records)
    classical = (
        read_classical(dest / "classical.json") if (dest / "classical.json").exists() else []
    )
    summary = build_summary(plan, runs, classical, machine)
    write_text(dest / "runs.csv", _csv(RUN_COLUMNS, runs))
    write_text(dest / "history.csv", _csv(HISTORY_COLUMNS, history_rows(records)))
    write_json(dest / "summary.json", summary)
    write_text(dest / "tables.md", tables_markdown(summary, command))
    return summary


def read_classical(path: Path) -> list[dict[str, Any]]:
    from .runner import _read_json_file

    d = _read_json_file(path, "classical results file", 1 << 20)
    keys = {
        "model": str,
        "recipe": str,
        "test_accuracy": float,
        "train_accuracy": float,
        "fit_seconds": float,
        "train_images": int,
        "source": str,
    }
    rows = d.get("rows") if isinstance(d, dict) else None
    if not isinstance(rows, list):
        raise UsageError(f'{path}: expected {{"rows": [...]}}')
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise UsageError(f"{path}: row {i} is not an object")
        for k, t in keys.items():
            v = r.get(k)
            ok = (
                isinstance(v, (int, float)) and not isinstance(v, bool)
                if t is float
                else (isinstance(v, t) and not isinstance(v, bool))
            )
            if not ok:
                raise UsageError(f"{path}: row {i}: {k} must be {t.__name__}, not {v!r}")
    return rows


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None


def read_results(src: Path) -> tuple[dict[str, Any], list[dict[str, str]], list[dict[str, str]]]:
    """summary.json, runs.csv and history.csv of a results folder (for ``--plot``)."""
    from .runner import _read_json_file

    for name in ("summary.json", "runs.csv", "history.csv"):
        if not (src / name).is_file():
            raise UsageError(
                f"{src / name}: missing (write it with digitnet experiment --results {src})"
            )
    summary = _read_json_file(src / "summary.json", "results summary", 16 << 20)
    if not isinstance(summary, dict) or not isinstance(summary.get("rows"), list):
        raise UsageError(f"{src / 'summary.json'}: not a results summary (no rows)")
    return summary, _read_csv(src / "runs.csv"), _read_csv(src / "history.csv")
