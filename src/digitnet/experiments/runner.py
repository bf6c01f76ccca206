"""Train every entry of a plan K times; skip finished runs, continue interrupted ones.

Layout under ``out``: ``runs/<label>/seed-<seed>/`` is fit's run folder (config.json, metrics,
``last.safetensors`` after every epoch, ``model.safetensors`` at the end) plus ``record.json``,
written last and only for a finished run: its presence is what "finished" means.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._io import ensure_dir, write_json
from ..engine.callbacks import Callback
from ..engine.config import TrainConfig
from ..errors import UsageError
from .plan import Plan

__all__ = ["ExperimentProgress", "RunRecord", "load_records", "run_dir", "run_experiment"]

RECORD = "record.json"
# Settings that may differ between the first attempt at a run and its continuation: they say
# where and how fast it runs, not what is trained.
_FREE = {"out", "device", "threads", "tensorboard", "data_dir", "compile"}


@dataclass
class RunRecord:
    label: str
    model: str
    recipe: str
    seed: int
    epochs: float
    train_images: int
    train_accuracy: float
    train_loss: float
    test_accuracy: float
    test_loss: float
    seconds: float  # training time only (fit excludes evaluation)
    parameters: int
    history: list[dict[str, Any]]  # fit's per-epoch rows
    resumed_from_step: int  # 0 for a run trained in one go; else the global step it continued at
    config: dict[str, Any]
    run_dir: str  # relative to the experiment folder

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run_dir(out: Path, label: str, seed: int) -> Path:
    return Path(out) / "runs" / label / f"seed-{seed}"


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k not in _FREE}


def _check_same(where: Path, stored: dict[str, Any], wanted: TrainConfig) -> None:
    a, b = _comparable(stored), _comparable(wanted.to_dict())
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if diff:
        k = diff[0]
        raise UsageError(f"{where}: was started with other settings ({k} {a.get(k)!r}, now {b.get(k)!r}); "
                         f"use another --out or delete that folder")


def load_records(plan: Plan) -> list[RunRecord]:
    """The finished runs of ``plan`` stored on disk, in plan order (entries, then seeds)."""
    records = []
    for e in plan.entries:
        for s in plan.seeds():
            p = run_dir(plan.out, e.label, s) / RECORD
            if p.exists():
                try:
                    d = json.loads(p.read_text(encoding="utf-8"))
                    records.append(RunRecord(**d))
                except (ValueError, TypeError) as exc:
                    raise UsageError(f"{p}: unreadable run record ({exc}); delete it to train that run again") from None
    return records


class ExperimentProgress(Callback):
    """One line per run on stderr: runs done / total and an ETA for the whole experiment.

    The ETA sums, over the runs left, the measured wall seconds per epoch of the same model in
    this session (or of all models until that one has run), times the run's epochs.
    """

    def __init__(self, total: int, enabled: bool = True, stream=None) -> None:
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.per_epoch: dict[str, list[float]] = {}

    def observe(self, label: str, wall_seconds: float, epochs: float) -> None:
        if epochs > 0:
            self.per_epoch.setdefault(label, []).append(wall_seconds / epochs)

    def eta(self, remaining: list[tuple[str, float]]) -> float | None:
        every = [v for vs in self.per_epoch.values() for v in vs]
        if not every:
            return None
        overall = sum(every) / len(every)
        t = 0.0
        for label, epochs in remaining:
            vs = self.per_epoch.get(label)
            t += (sum(vs) / len(vs) if vs else overall) * epochs
        return t

    def announce(self, done: int, label: str, seed: int, what: str, remaining: list[tuple[str, float]]) -> None:
        if not self.enabled:
            return
        eta = self.eta(remaining)
        eta_s = "ETA unknown until a run finishes" if eta is None else f"ETA {_hms(eta)}"
        print(f"[experiment] runs done {done}/{self.total}; {what} {label} seed {seed}; {eta_s}",
              file=self.stream, flush=True)


def _hms(s: float) -> str:
    s = round(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class _StartStep(Callback):
    """Remembers where fit started (0, or the step a resumed run continues at)."""

    start_step = 0

    def on_fit_start(self, info):
        self.start_step = int(info.get("start_step", 0))


def run_experiment(plan: Plan, *, run_callbacks=list, stop=None, progress: ExperimentProgress | None = None,
                   trainer=None) -> tuple[list[RunRecord], bool]:
    """Train what is missing; return (records of finished runs, interrupted?).

    ``run_callbacks()`` makes fresh fit callbacks for each run (e.g. a tqdm bar). ``trainer`` is
    ``fit`` unless a test substitutes a counting wrapper.
    """
    from ..engine.fit import fit, load_datasets, resolve_device

    trainer = trainer or fit
    ensure_dir(plan.out)
    todo = []
    # Seed-major order: after k full rounds every model has k runs, so an experiment stopped
    # early (or extended later with --runs) still compares like with like.
    for s in plan.seeds():
        for e in plan.entries:
            rd = run_dir(plan.out, e.label, s)
            rec = rd / RECORD
            if rec.exists():
                _check_same(rd, json.loads(rec.read_text(encoding="utf-8"))["config"], dataclasses.replace(e.config, seed=s))
                continue
            todo.append((e, s))
    total = len(plan.entries) * plan.runs
    done = total - len(todo)
    progress = progress or ExperimentProgress(total, enabled=False)
    progress.total = total

    datasets: dict[tuple, Any] = {}
    for i, (e, s) in enumerate(todo):
        cfg = dataclasses.replace(e.config, seed=s, out=str(run_dir(plan.out, e.label, s)))
        last = Path(cfg.out) / "last.safetensors"
        resume = None
        if last.exists():
            from ..checkpoint import read_metadata

            _check_same(Path(cfg.out), read_metadata(last)["config"], cfg)
            resume = last
        # load_datasets applies limit_train, val_split and the input scaling (raw 0..255 for
        # the course recipe): runs that agree on those share one copy in memory.
        device = resolve_device(cfg.device)
        key = (cfg.data_dir, cfg.limit_train, cfg.val_split, cfg.input, str(device))
        if key not in datasets:
            datasets[key] = load_datasets(cfg, device)
        remaining = [(x.label, float(x.config.epochs)) for x, _ in todo[i:]]
        progress.announce(done, e.label, s, "continuing" if resume else "training", remaining)
        start = _StartStep()
        t0 = time.perf_counter()
        result = trainer(cfg, callbacks=[start, *run_callbacks()], stop=stop, resume=resume, datasets=datasets[key])
        if result.interrupted:
            return load_records(plan), True
        progress.observe(e.label, time.perf_counter() - t0, result.epochs - (start.start_step / max(1, _steps(result))))
        f = result.final()
        params = sum(p.numel() for p in result.model.parameters())
        rec = RunRecord(
            label=e.label, model=cfg.model, recipe=cfg.recipe, seed=s, epochs=result.epochs,
            train_images=result.n_train, train_accuracy=f["train_accuracy"], train_loss=f["train_loss"],
            test_accuracy=f["test_accuracy"], test_loss=f["test_loss"], seconds=round(result.train_seconds, 3),
            parameters=int(params), history=result.history, resumed_from_step=start.start_step,
            config=cfg.to_dict(), run_dir=str(Path(cfg.out).relative_to(plan.out)),
        )
        write_json(Path(cfg.out) / RECORD, rec.to_json())
        done += 1
    return load_records(plan), False


def _steps(result) -> int:
    # steps per epoch of a finished run, from its config and data size (as fit computes it)
    import math

    n, b = result.n_train, result.config.batch_size
    s = max(1, math.ceil(n / b))
    return s - 1 if n % b == 1 and s > 1 else s
