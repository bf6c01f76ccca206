"""Train every entry of a plan K times; skip finished runs, continue interrupted ones.

Layout under ``out``: ``runs/<label>/seed-<seed>/`` is fit's run folder (config.json, metrics,
``last.safetensors`` after every epoch, ``model.safetensors`` at the end) plus ``record.json``,
written last and only for a finished run: its presence is what "finished" means.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
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

__all__ = [
    "ExperimentProgress",
    "RunRecord",
    "final_evaluation",
    "load_records",
    "read_record",
    "run_dir",
    "run_experiment",
]

RECORD = "record.json"
FINAL_EVAL = "final_eval.json"  # the final model evaluated on its training and test images
MAX_RECORD_BYTES = 64 << 20  # a record is a few KB (one history row per evaluation)
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


_DEFAULTS = TrainConfig().to_dict()


def _with_defaults(stored: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with the settings it lacks (also inside ``augment``) taken from ``defaults``.

    A setting added to TrainConfig after a run was stored is absent from its config: the run
    used what is now that setting's default, so it still counts as the same run.
    """
    out = dict(stored)
    for k, d in defaults.items():
        if k not in out:
            out[k] = d
        elif isinstance(d, dict) and isinstance(out[k], dict) and k != "model_args":
            out[k] = _with_defaults(out[k], d)
    return out


def _check_same(where: Path, stored: dict[str, Any], wanted: TrainConfig) -> None:
    a, b = _comparable(_with_defaults(stored, _DEFAULTS)), _comparable(wanted.to_dict())
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if diff:
        k = diff[0]
        raise UsageError(
            f"{where}: was started with other settings ({k} {a.get(k)!r}, now {b.get(k)!r}); "
            f"use another --out or delete that folder"
        )


_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "label": (str,),
    "model": (str,),
    "recipe": (str,),
    "seed": (int,),
    "epochs": (int, float),
    "train_images": (int,),
    "train_accuracy": (int, float),
    "train_loss": (int, float),
    "test_accuracy": (int, float),
    "test_loss": (int, float),
    "seconds": (int, float),
    "parameters": (int,),
    "history": (list,),
    "resumed_from_step": (int,),
    "config": (dict,),
    "run_dir": (str,),
}


def _read_json_file(p: Path, what: str, limit: int) -> Any:
    """A small JSON file, or a one-line UsageError naming it (FIFOs refused before opening)."""
    hint = "; delete it to train that run again" if what == "run record" else ""
    try:
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{p}: unreadable {what} (not a regular file){hint}")
        if st.st_size > limit:
            raise UsageError(
                f"{p}: unreadable {what} ({st.st_size:,} bytes, at most {limit:,}){hint}"
            )
        with open(p, "rb") as fh:
            raw = fh.read(limit + 1)
        return json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise UsageError(f"{p}: unreadable {what} ({exc.strerror or exc}){hint}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{p}: unreadable {what} (not UTF-8 text){hint}") from None
    except ValueError as exc:
        raise UsageError(
            f"{p}: unreadable {what} (not valid JSON: {str(exc).splitlines()[0]}){hint}"
        ) from None
    except RecursionError:
        raise UsageError(f"{p}: unreadable {what} (JSON nested too deeply){hint}") from None


def read_record(p: Path) -> RunRecord:
    """A run's record.json, type-checked; anything wrong is one line naming the file."""
    d = _read_json_file(p, "run record", MAX_RECORD_BYTES)

    def bad(why: str) -> UsageError:
        return UsageError(f"{p}: unreadable run record ({why}); delete it to train that run again")

    if not isinstance(d, dict):
        return _raise(bad("not a JSON object"))
    missing = [k for k in _RECORD_TYPES if k not in d]
    if missing:
        raise bad(f"missing {', '.join(missing)}")
    for k, types_ in _RECORD_TYPES.items():
        v = d[k]
        if isinstance(v, bool) or not isinstance(v, types_):
            raise bad(f"{k} is {type(v).__name__}")
        if isinstance(v, float) and not math.isfinite(v):
            raise bad(f"{k} is {v}")
    for k in ("train_accuracy", "test_accuracy"):
        if not 0.0 <= d[k] <= 1.0:
            raise bad(f"{k} {d[k]!r} is not a fraction")
    for i, row in enumerate(d["history"]):
        if not isinstance(row, dict) or not all(
            (isinstance(v, (int, float)) and not isinstance(v, bool)) or v is None
            for v in row.values()
        ):
            raise bad(f"history row {i} is not a table of numbers")
    # Unknown keys (written by a newer digitnet) are ignored, not fatal.
    return RunRecord(**{k: d[k] for k in _RECORD_TYPES})


def _raise(exc: Exception):
    raise exc


def load_records(plan: Plan, *, check: bool = True) -> list[RunRecord]:
    """The finished runs of ``plan`` stored on disk, in plan order (entries, then seeds).

    With ``check`` a record trained with other settings than the plan's is refused (one line),
    so the tables never mix two experiments.
    """
    records = []
    for e in plan.entries:
        for s in plan.seeds(e):
            p = run_dir(plan.out, e.label, s) / RECORD
            if p.exists() or p.is_symlink():
                rec = read_record(p)
                if check:
                    _check_same(p.parent, rec.config, dataclasses.replace(e.config, seed=s))
                records.append(rec)
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

    def announce(
        self, done: int, label: str, seed: int, what: str, remaining: list[tuple[str, float]]
    ) -> None:
        if not self.enabled:
            return
        eta = self.eta(remaining)
        eta_s = "ETA unknown until a run finishes" if eta is None else f"ETA {_hms(eta)}"
        print(
            f"[experiment] runs done {done}/{self.total}; {what} {label} seed {seed}; {eta_s}",
            file=self.stream,
            flush=True,
        )


def _hms(s: float) -> str:
    s = round(s)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class _StartStep(Callback):
    """Remembers where fit started (0, or the step a resumed run continues at)."""

    start_step = 0

    def on_fit_start(self, info):
        self.start_step = info.start_step


def run_experiment(
    plan: Plan,
    *,
    run_callbacks=list,
    stop=None,
    progress: ExperimentProgress | None = None,
    trainer=None,
) -> tuple[list[RunRecord], bool]:
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
    for s in plan.seeds(max(plan.entries, key=lambda x: x.runs)):
        for e in plan.entries:
            if s not in plan.seeds(e):
                continue
            rd = run_dir(plan.out, e.label, s)
            record_path = rd / RECORD
            if record_path.exists() or record_path.is_symlink():
                _check_same(
                    rd, read_record(record_path).config, dataclasses.replace(e.config, seed=s)
                )
                continue
            todo.append((e, s))
    total = plan.total_runs()
    done = total - len(todo)
    progress = progress or ExperimentProgress(total, enabled=False)
    progress.total = total

    datasets: dict[tuple, Any] = {}
    for i, (e, s) in enumerate(todo):
        out = run_dir(plan.out, e.label, s)
        cfg = dataclasses.replace(e.config, seed=s, out=str(out))
        last = out / "last.safetensors"
        resume = None
        if last.exists():
            from ..checkpoint import read_metadata

            _check_same(out, read_metadata(last)["config"], cfg)
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
        result = trainer(
            cfg,
            callbacks=[start, *run_callbacks()],
            stop=stop,
            resume=resume,
            datasets=datasets[key],
        )
        if result.interrupted:
            return load_records(plan), True
        progress.observe(
            e.label,
            time.perf_counter() - t0,
            result.epochs - (start.start_step / max(1, _steps(result))),
        )
        f = result.final()
        params = sum(p.numel() for p in result.model.parameters())
        rec = RunRecord(
            label=e.label,
            model=cfg.model,
            recipe=cfg.recipe,
            seed=s,
            epochs=result.epochs,
            # the real training images; synthetic extras a recipe adds are in its config
            train_images=int(datasets[key].description.get("train_images", result.n_train)),
            train_accuracy=f["train_accuracy"],
            train_loss=f["train_loss"],
            test_accuracy=f["test_accuracy"],
            test_loss=f["test_loss"],
            seconds=round(result.train_seconds, 3),
            parameters=int(params),
            history=[m.to_row() for m in result.history],
            resumed_from_step=start.start_step,
            config=cfg.to_dict(),
            run_dir=str(out.relative_to(plan.out)),
        )
        write_json(out / RECORD, rec.to_json())
        final_evaluation(plan.out, rec, model=result.model, datasets=datasets[key])
        done += 1
    return load_records(plan), False


def _steps(result) -> int:
    # steps per epoch of a finished run, from its config and data size (as fit computes it)
    import math

    n, b = result.n_train, result.config.batch_size
    s = max(1, math.ceil(n / b))
    return s - 1 if n % b == 1 and s > 1 else s


def final_evaluation(out: Path, rec: RunRecord, *, model=None, datasets=None) -> dict[str, Any]:
    """The run's final model evaluated on its own training images and the test set.

    A record's ``train_accuracy`` is the running mean over the last epoch, measured while the
    weights still changed and with dropout / augmentation on. This evaluates the saved final
    model in eval mode on the (unaugmented) training images instead; the result is kept next to
    the record in ``final_eval.json`` (computed once, from ``model.safetensors`` for runs that
    finished before it existed).
    """
    rd = Path(out) / rec.run_dir
    cache = rd / FINAL_EVAL
    ckpt = rd / "model.safetensors"
    if cache.exists():
        d = _read_json_file(cache, "final evaluation", 1 << 20)
        keys = ("train_accuracy", "train_loss", "test_accuracy", "test_loss")
        if isinstance(d, dict) and all(isinstance(d.get(k), (int, float)) for k in keys):
            return d
    import torch

    from ..engine.fit import evaluate, load_datasets

    if model is None:
        from ..inference import load_predictor

        model = load_predictor(ckpt, backend="torch").model
    if datasets is None:
        cfg = TrainConfig.from_dict({**rec.config, "device": "cpu"})
        datasets = load_datasets(cfg, torch.device("cpu"))
    t0 = time.perf_counter()
    train = datasets.train
    n_real = int(datasets.description.get("train_images", len(train)))
    if n_real < len(train):  # synthetic images appended by the recipe are not "training images"
        train = dataclasses.replace(
            train, images=train.images[:n_real], labels=train.labels[:n_real]
        )
    tr = evaluate(model, train)
    te = evaluate(model, datasets.test)
    d = {
        "train_accuracy": tr["accuracy"],
        "train_loss": tr["loss"],
        "train_images": len(train),
        "test_accuracy": te["accuracy"],
        "test_loss": te["loss"],
        "test_images": len(datasets.test),
        "seconds": round(time.perf_counter() - t0, 3),
        "what": "the final model in eval mode on the unaugmented training and the test images",
    }
    write_json(cache, d)
    return d
