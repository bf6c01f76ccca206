"""Time-to-accuracy of training recipes, measured side by side in one process.

Every recipe trains on the same tensors (loaded once per input scaling), with the same threads,
recipes alternating within each repeat so that a noisy neighbour on a shared machine hurts all of
them alike. The clock is ``fit``'s own training clock: evaluation (every quarter epoch here) is
not counted. A run stops at the highest level asked for, at the end of its recipe, or once its
training time passes ``time_cap``; a level it did not reach is reported as "not reached in N s".
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported only when a benchmark runs
    from ..engine.callbacks import BatchState, EvalResult

__all__ = ["LEVELS", "TRAIN_RECIPES", "bench_train", "peak_rss_mb", "summarise"]

LEVELS = (0.990, 0.993, 0.995)
# Ours first, then the peers (the recipes named after where they come from).
TRAIN_RECIPES = (
    "fast",
    "classic",
    "default",
    "pytorch_example",
    "keras_example",
    "paper",
    "course",
)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1 << 20) if sys.platform == "darwin" else r / 1024


class _Cap:
    """Callback + stop flag: stop at ``top`` accuracy or after ``cap`` training seconds."""

    def __init__(self, top: float, cap: float) -> None:
        self.top, self.cap = top, cap
        self.event = threading.Event()
        self.capped = False

    def is_set(self) -> bool:
        return self.event.is_set()

    def on_fit_start(self, info: object) -> None:
        pass

    def on_batch_end(self, state: BatchState) -> None:
        if state.elapsed >= self.cap:
            self.capped = True
            self.event.set()

    def on_eval(self, result: EvalResult) -> None:
        if result.accuracy >= self.top:
            self.event.set()

    def on_epoch_end(self, metrics: object) -> None:
        pass

    def on_fit_end(self, result: object) -> None:
        pass


def _one_run(
    recipe: str,
    data,
    device: str,
    threads: int | None,
    cap: float,
    levels,
    seed: int,
    data_dir: str | None,
) -> dict[str, Any]:
    from ..engine import fit, resolve_config

    cfg = resolve_config(
        recipe=recipe,
        device=device,
        threads=threads,
        eval_every=0.25,
        seed=seed,
        data_dir=data_dir,
        save_every_epoch=False,
    )
    cap_cb = _Cap(max(levels), cap)
    res = fit(cfg, callbacks=[cap_cb], stop=cap_cb, datasets=data, write=False)
    reached = {}
    for lv in levels:
        hit = next((e for e in res.evals if e.accuracy >= lv), None)
        reached[f"{lv:.3f}"] = (
            None if hit is None else {"seconds": round(hit.train_seconds, 4), "epoch": hit.epoch}
        )
    best = max((e.accuracy for e in res.evals), default=None)
    return {
        "recipe": recipe,
        "seed": seed,
        "train_seconds": round(res.train_seconds, 3),
        "epochs": max((e.epoch for e in res.evals), default=0.0),
        "best_accuracy": best,
        "capped": cap_cb.capped,
        "reached": reached,
        "evals": [
            {
                "epoch": e.epoch,
                "train_seconds": round(e.train_seconds, 4),
                "select_accuracy": e.accuracy,
            }
            for e in res.evals
        ],
        "n_train": res.n_train,
        "peak_rss_mb_after": round(peak_rss_mb(), 1),
        "loadavg_after": [round(v, 2) for v in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
    }


def summarise(runs: dict[str, list[dict[str, Any]]], levels=LEVELS) -> dict[str, Any]:
    """Per recipe: median seconds to each level over its runs, and the ratio to ``fast``'s."""
    summary: dict[str, Any] = {}
    for recipe, rs in runs.items():
        med: dict[str, Any] = {}
        for lv in levels:
            key = f"{lv:.3f}"
            secs = [r["reached"][key]["seconds"] for r in rs if r["reached"][key] is not None]
            # A level counts as reached only when every repeat reached it; otherwise the median
            # would silently drop the slow runs.
            if len(secs) == len(rs):
                med[key] = {"median_s": round(statistics.median(secs), 3), "runs_s": secs}
            else:
                med[key] = {
                    "median_s": None,
                    "runs_s": secs,
                    "reached_in": f"{len(secs)}/{len(rs)}",
                    "not_reached_in_s": round(max(r["train_seconds"] for r in rs), 1),
                }
        summary[recipe] = {
            "levels": med,
            "best_accuracy": statistics.median(
                r["best_accuracy"] for r in rs if r["best_accuracy"] is not None
            )
            if any(r["best_accuracy"] is not None for r in rs)
            else None,
            "runs": rs,
        }
    ref = summary.get("fast") if "fast" in summary else None
    for s in summary.values():
        for key, m in s["levels"].items():
            base = None if ref is None else ref["levels"][key]["median_s"]
            m["x_fast"] = (
                None if base is None or m["median_s"] is None else round(m["median_s"] / base, 2)
            )
    return summary


def bench_train(
    recipes=TRAIN_RECIPES,
    *,
    device: str = "cpu",
    data_dir: str | None = None,
    repeats: int = 1,
    time_cap: float = 120.0,
    threads: int | None = None,
    levels=LEVELS,
    log=None,
) -> dict[str, Any]:
    """Train each recipe ``repeats`` times (alternating); medians of time-to-level per recipe."""
    import torch

    from ..data.datasets import load_datasets
    from ..engine import resolve_config
    from ..engine.devices import resolve_device

    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    datasets: dict[str, Any] = {}
    runs: dict[str, list[dict[str, Any]]] = {r: [] for r in recipes}
    rss_start = peak_rss_mb()
    t0 = time.perf_counter()
    for rep in range(repeats):
        for recipe in recipes:
            cfg = resolve_config(recipe=recipe, device=str(dev), data_dir=data_dir)
            if cfg.input not in datasets:
                datasets[cfg.input] = load_datasets(cfg, dev)
            run = _one_run(
                recipe, datasets[cfg.input], str(dev), threads, time_cap, levels, rep, data_dir
            )
            runs[recipe].append(run)
            if log:
                got = ", ".join(
                    f"{float(k):.1%} {'-' if v is None else format(v['seconds'], '.1f') + ' s'}"
                    for k, v in run["reached"].items()
                )
                best = (
                    "none (no evaluation yet)"
                    if run["best_accuracy"] is None
                    else f"{run['best_accuracy']:.4f}"
                )
                log(
                    f"train {recipe} (repeat {rep + 1}/{repeats}): {got}; best {best} "
                    f"after {run['train_seconds']:.1f} s{' (capped)' if run['capped'] else ''}"
                )
    summary = summarise(runs, levels)
    n_train = next((r["n_train"] for rs in runs.values() for r in rs), None)
    return {
        "levels": [f"{lv:.3f}" for lv in levels],
        "recipes": list(recipes),
        "repeats": repeats,
        "time_cap_s": time_cap,
        "eval_every": 0.25,
        "train_images": n_train,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "results": summary,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_mb_before_training": round(rss_start, 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
