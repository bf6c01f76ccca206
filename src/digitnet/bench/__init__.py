"""``digitnet bench``: training time-to-accuracy and inference speed, ours beside the peers.

``bench_train`` (train.py) and ``bench_infer`` (infer.py) return plain dicts (the ``--json``
output); ``format_report`` turns them into the tables printed by the command and quoted in
docs/performance.md. Nothing here asserts a speed: the figures are for people.
"""

from __future__ import annotations

import os
import platform
from typing import Any

from .infer import BACKENDS, BATCHES, DEFAULT_BACKENDS, INFER_MODELS, bench_infer
from .train import LEVELS, TRAIN_RECIPES, bench_train, peak_rss_mb

__all__ = [
    "BACKENDS",
    "BATCHES",
    "DEFAULT_BACKENDS",
    "INFER_MODELS",
    "LEVELS",
    "TRAIN_RECIPES",
    "bench_infer",
    "bench_train",
    "format_report",
    "machine_info",
    "peak_rss_mb",
]


def machine_info() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Load average at the start: on a shared machine, the context every figure needs.
        "loadavg": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def _secs(m: dict[str, Any]) -> str:
    if m["median_s"] is None:
        part = f" ({m['reached_in']})" if m.get("runs_s") else ""
        return f"not reached in {m['not_reached_in_s']:g} s{part}"
    ratio = "" if m.get("x_fast") is None else f" ({m['x_fast']:.2f}x)"
    return f"{m['median_s']:.1f} s{ratio}"


def format_report(report: dict[str, Any]) -> str:
    lines: list[str] = []
    mi = report.get("machine") or {}
    if mi:
        lines.append(
            f"machine: {mi.get('cpu')}, {mi.get('affinity') or mi.get('cpu_count')} CPU cores, "
            f"torch {mi.get('torch')}, {mi.get('torch_threads')} threads"
            + (f", {mi['cuda']}" if mi.get("cuda") else "")
            + (f"; load average {mi['loadavg'][0]:g} at start" if mi.get("loadavg") else "")
        )
    tr = report.get("train")
    if tr:
        lines.append("")
        lines.append(
            f"training: seconds (evaluation excluded) to reach test accuracy, median of "
            f"{tr['repeats']} run(s), {tr['train_images']:,} training images, checked every "
            f"{tr['eval_every']:g} epoch, cap {tr['time_cap_s']:g} s; (Nx) = time / ours 'fast'"
        )
        hdr = ["recipe"] + [f"{float(k):.1%}" for k in tr["levels"]] + ["best acc"]
        rows = [
            [r]
            + [_secs(s["levels"][k]) for k in tr["levels"]]
            + ["-" if s["best_accuracy"] is None else f"{s['best_accuracy']:.2%}"]
            for r, s in tr["results"].items()
        ]
        lines += _table(hdr, rows)
        lines.append(
            f"peak resident memory of the training process: {tr['peak_rss_mb']:.0f} MB "
            f"(before training: {tr['peak_rss_mb_before_training']:.0f} MB)"
        )
    inf = report.get("infer")
    if inf:
        lines.append("")
        lines.append(
            f"inference: images/s (median of {inf['repeats']} repeat(s), {inf['threads']} "
            f"threads); (Nx) = vs eager PyTorch; latency = one image, ms"
        )
        hdr = (
            ["model", "backend"]
            + [f"batch {b}" for b in inf["batches"]]
            + ["latency ms", "setup s"]
        )
        rows = []
        for m, per in inf["results"].items():
            for be, r in per.items():
                if "unavailable" in r:
                    rows.append([m, be, f"unavailable: {r['unavailable'][:60]}"])
                    continue
                cells = []
                for b in inf["batches"]:
                    v = r["images_per_s"].get(str(b))
                    x = (r.get("x_eager") or {}).get(str(b))
                    cells.append(
                        "-"
                        if v is None
                        else f"{v:,.0f}" + ("" if x is None or be == "eager" else f" ({x:.2f}x)")
                    )
                lat = r.get("latency_ms")
                rows.append(
                    [
                        m,
                        be,
                        *cells,
                        "-" if lat is None else f"{lat:.3f}",
                        f"{r['setup_seconds']:.1f}",
                    ]
                )
        lines += _table(hdr, rows)
    return "\n".join(lines)


def _table(hdr: list[str], rows: list[list[str]]) -> list[str]:
    n = len(hdr)
    widths = [max([len(hdr[i])] + [len(r[i]) for r in rows if i < len(r)]) for i in range(n)]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(widths[i]) if i < n else c for i, c in enumerate(r)).rstrip()

    return [fmt(hdr), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
