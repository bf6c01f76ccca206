"""Inference throughput and single-image latency per backend, measured side by side.

Backends: eager PyTorch, TorchScript (traced and frozen), ``torch.compile`` (where it works on
the machine; its compile time is reported apart) and ONNX Runtime (the file ``digitnet export``
writes). Every backend gets the same normalised input tensors and the same number of threads;
measurements alternate (repeat -> model -> backend -> batch size), so a noisy neighbour hurts all
alike, and the medians over repeats are reported.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where used: building the CLI's parser imports this
    import numpy as np


__all__ = ["BACKENDS", "BATCHES", "DEFAULT_BACKENDS", "INFER_MODELS", "bench_infer"]

BACKENDS = ("eager", "torchscript", "compile", "onnx")
# torch.compile is opt-in (--backends ...,compile): on a 2-core CPU its compile took 107 s
# for the fast model (a run of digitnet bench, see docs/performance.md), longer than the rest.
DEFAULT_BACKENDS = ("eager", "torchscript", "onnx")
BATCHES = (1, 64, 1024)
# "fast": our speed model (fresh weights: speed does not depend on their values);
# "default": the bundled model (trained with the default recipe).
INFER_MODELS = ("fast", "default")


def _load_model(which: str):
    import dataclasses

    from ..inference import DEFAULT_INPUT, TorchPredictor, load_predictor
    from ..models import create_model

    if which == "default":
        p = load_predictor(None, backend="torch")
        assert isinstance(p, TorchPredictor)
        return p.model.eval(), p.meta
    m = create_model(which).eval()
    return m, {
        "model": which,
        "model_args": dataclasses.asdict(m.config),
        "input": dict(DEFAULT_INPUT),
    }


def _runner(backend: str, model, meta, tmp: Path, threads: int | None):
    """(callable taking a numpy batch, setup seconds), or raises with the reason it is
    unavailable."""
    import numpy as np
    import torch

    t0 = time.perf_counter()
    if backend == "eager":

        def run(x):
            with torch.inference_mode():
                return model(torch.from_numpy(x))

        return run, 0.0
    if backend == "torchscript":
        from ..export import jit_quiet

        with torch.no_grad(), jit_quiet():
            ts = torch.jit.freeze(torch.jit.trace(model, torch.zeros(2, 1, 28, 28)))

        def run(x):
            with torch.inference_mode(), jit_quiet():
                return ts(torch.from_numpy(x))

        run(np.zeros((2, 1, 28, 28), np.float32))  # first calls optimise the graph
        run(np.zeros((2, 1, 28, 28), np.float32))
        return run, time.perf_counter() - t0
    if backend == "compile":
        cm = torch.compile(model, dynamic=True)

        def run(x):
            with torch.inference_mode():
                return cm(torch.from_numpy(x))

        for b in (1, 7):  # compile now, for a dynamic batch axis, not inside the timed loop
            run(np.zeros((b, 1, 28, 28), np.float32))
        return run, time.perf_counter() - t0
    if backend == "onnx":
        from ..export import check_onnx_exporter, export_model
        from ..inference import OnnxPredictor, load_predictor

        check_onnx_exporter()
        path = export_model(model, meta, "onnx", tmp / f"{meta['model']}.onnx")
        sess = load_predictor(path, backend="onnx", threads=threads or torch.get_num_threads())
        assert isinstance(sess, OnnxPredictor)
        return sess.logits, time.perf_counter() - t0
    raise ValueError(f"unknown backend {backend!r}")


def _measure(run, x: np.ndarray, min_time: float) -> tuple[float, float]:
    """(images per second, median seconds per call) over calls filling ``min_time`` seconds."""
    run(x)  # warm caches and allocators for this shape
    times = []
    t_end = time.perf_counter() + min_time
    while True:
        t = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t)
        if t + times[-1] >= t_end and len(times) >= 3:
            break
    per_call = statistics.median(times)
    return len(x) / per_call, per_call


def bench_infer(
    models=INFER_MODELS,
    backends=DEFAULT_BACKENDS,
    batches=BATCHES,
    *,
    repeats: int = 3,
    min_time: float = 0.5,
    threads: int | None = None,
    log=None,
) -> dict[str, Any]:
    import numpy as np
    import torch

    from ..inference import DEFAULT_INPUT, normalise

    if threads:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    # Input values do not change the work a conv net does; seeded uniform images in [0, 1].
    x01 = torch.from_numpy(rng.random((max(batches), 1, 28, 28), dtype=np.float32))
    xs = {b: normalise(x01[:b], DEFAULT_INPUT).numpy().copy() for b in batches}
    runners: dict[tuple[str, str], Any] = {}
    results: dict[str, dict[str, Any]] = {m: {} for m in models}
    with tempfile.TemporaryDirectory(prefix="digitnet-bench-") as td:
        for m in models:
            model, meta = _load_model(m)
            for be in backends:
                try:
                    runners[m, be], setup = _runner(be, model, meta, Path(td), threads)
                    results[m][be] = {
                        "setup_seconds": round(setup, 3),
                        "images_per_s": {},
                        "runs": {},
                    }
                except Exception as exc:
                    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                    results[m][be] = {"unavailable": f"{type(exc).__name__}: {reason}"}
                    if log:
                        log(f"infer {m} {be}: unavailable ({results[m][be]['unavailable']})")
        samples: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
        for _ in range(repeats):
            for m in models:
                for be in backends:
                    if (m, be) not in runners:
                        continue
                    for b in batches:
                        samples.setdefault((m, be, b), []).append(
                            _measure(runners[m, be], xs[b], min_time)
                        )
    for (m, be, b), s in samples.items():
        r = results[m][be]
        r["images_per_s"][str(b)] = round(statistics.median(v[0] for v in s), 1)
        r["runs"][str(b)] = [round(v[0], 1) for v in s]
        if b == 1:
            r["latency_ms"] = round(1000 * statistics.median(v[1] for v in s), 3)
    for m in models:
        eager = results[m].get("eager", {}).get("images_per_s", {})
        for r in results[m].values():
            if "images_per_s" in r:
                r["x_eager"] = {
                    b: (round(v / eager[b], 2) if eager.get(b) else None)
                    for b, v in r["images_per_s"].items()
                }
        if log:
            log(f"infer {m}: done")
    return {
        "models": list(models),
        "backends": list(backends),
        "batches": list(batches),
        "repeats": repeats,
        "min_time_s": min_time,
        "threads": torch.get_num_threads(),
        "results": results,
    }
