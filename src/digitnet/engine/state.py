"""Everything a run needs to continue bit for bit: ``TrainingState``.

``state_dict()`` gives tensors (optimizer buffers, RNG states, the epoch's permutation and
running sums) and JSON (position, optimizer hyper-parameters, scheduler, history), the two parts
a resumable checkpoint stores (``checkpoint.save_checkpoint(train_state=...)``).
``load_state_dict()`` checks every part against the model, optimizer and data of this run
before applying any of it, so a tampered or mismatched ``last.safetensors`` is refused with one
line naming the file instead of failing later with a traceback (or training on garbage).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import CheckpointError
from .callbacks import EpochMetrics, EvalResult
from .optim import ScheduleUnit

__all__ = ["RunningTotals", "TrainingState"]


@dataclass
class RunningTotals:
    """The epoch's training loss sum, hits and images, accumulated on the device (no sync)."""

    loss_sum: torch.Tensor
    correct: torch.Tensor
    seen: torch.Tensor

    @classmethod
    def zeros(cls, device: torch.device) -> RunningTotals:
        return cls(
            torch.zeros((), device=device, dtype=torch.float64),
            torch.zeros((), device=device, dtype=torch.int64),
            torch.zeros((), device=device, dtype=torch.int64),
        )

    @classmethod
    def from_tensor(cls, acc: torch.Tensor, device: torch.device) -> RunningTotals:
        return cls(acc[0].to(device).double(), acc[1].to(device).long(), acc[2].to(device).long())

    def to_tensor(self) -> torch.Tensor:
        return torch.stack(
            [self.loss_sum.cpu().double(), self.correct.cpu().double(), self.seen.cpu().double()]
        )

    def means(self) -> tuple[float, float]:
        """(mean loss, accuracy) of the epoch so far; one device sync."""
        n = max(int(self.seen), 1)
        return float(self.loss_sum) / n, int(self.correct) / n


@dataclass
class TrainingState:
    """The mutable state of one run: modules, random generators, position and records.

    ``epoch`` is the 0-based epoch in progress (or the next one), ``step`` the steps done in it;
    mid-epoch (``step > 0``) ``perm`` holds the epoch's permutation and ``totals`` its sums.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    data_rng: torch.Generator  # draws each epoch's permutation
    aug_rng: torch.Generator  # draws the augmentation's random transforms
    device: torch.device
    n_train: int
    steps_per_epoch: int
    epochs: int
    epoch: int = 0
    step: int = 0
    perm: torch.Tensor | None = None
    totals: RunningTotals | None = None
    history: list[EpochMetrics] = field(default_factory=list)
    evals: list[EvalResult] = field(default_factory=list)
    train_seconds: float = 0.0
    best_accuracy: float | None = None
    best_epoch: float | None = None
    schedule_unit: ScheduleUnit = "none"  # when the scheduler steps: each batch or each epoch

    @property
    def global_step(self) -> int:
        return self.epoch * self.steps_per_epoch + self.step

    def finished(self, target: float | None) -> bool:
        """All epochs trained, or the target accuracy reached."""
        return self.epoch >= self.epochs or self.target_reached(target) is not None

    def next_epoch(self) -> None:
        self.epoch, self.step, self.perm, self.totals = self.epoch + 1, 0, None, None

    def target_reached(self, target: float | None) -> EvalResult | None:
        """The first evaluation that reached ``target`` (None: not reached or no target)."""
        if target is None:
            return None
        return next((e for e in self.evals if e.accuracy >= target), None)

    def record_eval(self, result: EvalResult) -> bool:
        """Append ``result``; True when it is the best selection accuracy so far."""
        self.evals.append(result)
        if self.best_accuracy is None or result.accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch = result.accuracy, result.epoch
            return True
        return False

    # ------------------------------------------------------------------ save

    def state_dict(self) -> dict[str, Any]:
        """``{"tensors": name -> tensor, "json": plain data}``: the resumable training state."""
        tensors: dict[str, torch.Tensor] = {}
        scalars: dict[str, Any] = {}
        sd = self.optimizer.state_dict()
        for pid, st in sd["state"].items():
            for k, v in st.items():
                if isinstance(v, torch.Tensor):
                    tensors[f"optim.{pid}.{k}"] = v
                else:
                    scalars[f"{pid}.{k}"] = v
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.data"] = self.data_rng.get_state()
        tensors["rng.aug"] = self.aug_rng.get_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        if self.step > 0:
            if self.perm is None or self.totals is None:
                raise RuntimeError("mid-epoch training state without its permutation")
            tensors["perm"] = self.perm
            tensors["acc"] = self.totals.to_tensor()
        js = {
            "epoch": self.epoch,
            "step": self.step,
            "optimizer": {"param_groups": sd["param_groups"], "scalars": scalars},
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "history": [m.to_row() for m in self.history],
            "evals": [e.to_json() for e in self.evals],
            "train_seconds": self.train_seconds,
            "best_accuracy": self.best_accuracy,
            "best_epoch": self.best_epoch,
        }
        return {"tensors": tensors, "json": js}

    # ------------------------------------------------------------------ load

    def load_state_dict(self, state: dict[str, Any], source: str | os.PathLike[str]) -> None:
        """Check ``state`` (as ``state_dict()`` makes it) against this run, then apply it.

        Raises ``CheckpointError`` naming ``source`` when any part is missing, of the wrong type
        or shape, or does not fit this model, optimizer, schedule or data.
        """
        tensors, js = state.get("tensors"), state.get("json")
        if not isinstance(tensors, dict) or not isinstance(js, dict):
            raise CheckpointError(f"{source}: resumable training state is missing or malformed")
        check = _Checker(source)
        epoch = check.integer(js, "epoch", 0, self.epochs)
        step = check.integer(js, "step", 0, self.steps_per_epoch - 1)
        perm = totals = None
        if epoch == self.epochs and step > 0:
            raise check.error(f"step {step} lies past the last epoch ({self.epochs})")
        if step > 0:
            perm = check.tensor(tensors, "perm", (self.n_train,), torch.int64)
            if not torch.equal(torch.sort(perm).values, torch.arange(self.n_train)):
                raise check.error("perm is not a permutation of the training images")
            acc = check.tensor(tensors, "acc", (3,), torch.float64)
            if not bool(torch.isfinite(acc).all()) or bool((acc < 0).any()):
                raise check.error("acc (the epoch's running sums) is negative or not finite")
            totals = RunningTotals.from_tensor(acc, self.device)
        opt_state = check.optimizer_state(self.optimizer, tensors, js.get("optimizer"))
        rng = {
            k: check.tensor(tensors, f"rng.{k}", None, torch.uint8)
            for k in ("torch", "data", "aug")
        }
        history = check.records(js, "history", EpochMetrics.from_row)
        evals = check.records(js, "evals", EvalResult.from_json)
        seconds = check.number(js, "train_seconds", 0.0)
        best_acc = (
            None if js.get("best_accuracy") is None else check.number(js, "best_accuracy", None)
        )
        best_epoch = None if js.get("best_epoch") is None else check.number(js, "best_epoch", None)
        # Apply: optimizer and scheduler first (they can still refuse), then generators.
        check.apply("optimizer state", lambda: self.optimizer.load_state_dict(opt_state))
        sched = js.get("scheduler")
        if self.scheduler is not None and sched is not None:
            if not isinstance(sched, dict):
                raise check.error("scheduler state is not an object")
            scheduler = self.scheduler
            check.apply("scheduler state", lambda: scheduler.load_state_dict(sched))
        saved_torch_rng = torch.get_rng_state()
        try:
            torch.set_rng_state(rng["torch"])
            self.data_rng.set_state(rng["data"])
            self.aug_rng.set_state(rng["aug"])
        except (RuntimeError, ValueError, TypeError) as exc:
            torch.set_rng_state(saved_torch_rng)
            raise check.error(
                f"random generator state does not load ({_first_line(exc)})"
            ) from None
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            check.apply(
                "CUDA generator state",
                lambda: torch.cuda.set_rng_state(tensors["rng.cuda"], self.device),
            )
        if best_acc is None and evals:  # a state written before the best was recorded
            best = max(evals, key=lambda e: e.accuracy)
            best_acc, best_epoch = best.accuracy, best.epoch
        self.epoch, self.step, self.perm, self.totals = epoch, step, perm, totals
        self.history, self.evals, self.train_seconds = history, evals, seconds
        self.best_accuracy, self.best_epoch = best_acc, best_epoch


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Checker:
    """Validation helpers that raise one-line ``CheckpointError``s naming the file."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.source = str(source).replace("\n", "\\n")

    def error(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.source}: cannot resume: {what}")

    def apply(self, what: str, fn: Any) -> None:
        try:
            fn()
        except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise self.error(f"{what} does not fit this run ({_first_line(exc)})") from None

    def integer(self, js: dict[str, Any], key: str, lo: int, hi: int) -> int:
        v = js.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.error(f"{key} is {v!r}, expected a whole number in [{lo}, {hi}]")
        return v

    def number(self, js: dict[str, Any], key: str, lo: float | None) -> float:
        v = js.get(key, 0.0)
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not math.isfinite(v)
            or (lo is not None and v < lo)
        ):
            raise self.error(f"{key} is {v!r}, expected a finite number")
        return float(v)

    def tensor(
        self, tensors: dict[str, Any], key: str, shape: tuple[int, ...] | None, dtype: torch.dtype
    ) -> torch.Tensor:
        t = tensors.get(key)
        if not isinstance(t, torch.Tensor):
            raise self.error(f"{key} is missing")
        if t.dtype != dtype or (shape is not None and tuple(t.shape) != shape):
            want = f"{dtype} {shape}" if shape is not None else str(dtype)
            raise self.error(f"{key} is {t.dtype} {tuple(t.shape)}, expected {want}")
        return t

    def records(self, js: dict[str, Any], key: str, parse: Any) -> list[Any]:
        rows = js.get(key, [])
        if not isinstance(rows, list):
            raise self.error(f"{key} is not a list")
        try:
            return [parse(r) for r in rows]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self.error(f"{key} holds a malformed record ({_first_line(exc)})") from None

    def optimizer_state(
        self, opt: torch.optim.Optimizer, tensors: dict[str, Any], js: Any
    ) -> dict[str, Any]:
        """The optimizer's ``state_dict`` rebuilt from the checkpoint, with every shape checked."""
        if not isinstance(js, dict) or not isinstance(js.get("param_groups"), list):
            raise self.error("optimizer state has no param_groups")
        groups, scalars = js["param_groups"], js.get("scalars", {})
        if not isinstance(scalars, dict):
            raise self.error("optimizer scalars are not an object")
        ours = opt.state_dict()["param_groups"]
        if len(groups) != len(ours):
            raise self.error(
                f"optimizer has {len(groups)} parameter groups, this run has {len(ours)}"
            )
        params = [p for g in opt.param_groups for p in g["params"]]
        for g, o in zip(groups, ours, strict=True):
            if not isinstance(g, dict) or not isinstance(g.get("params"), list):
                raise self.error("an optimizer parameter group is not an object with params")
            if g["params"] != o["params"]:
                raise self.error(
                    f"optimizer parameter group holds {len(g['params'])} parameters, "
                    f"this run's holds {len(o['params'])}"
                )
            for k, v in o.items():
                if k != "params" and isinstance(v, (int, float)) and not isinstance(v, bool):
                    gv = g.get(k)
                    if (
                        isinstance(gv, bool)
                        or not isinstance(gv, (int, float))
                        or (isinstance(gv, float) and not math.isfinite(gv))
                    ):
                        raise self.error(f"optimizer setting {k} is {gv!r}, expected a number")
        state: dict[int, dict[str, Any]] = {}
        for name, v in tensors.items():
            if name.startswith("optim."):
                parts = name.split(".", 2)
                if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) >= len(params):
                    raise self.error(f"{name} names no parameter of this model")
                pid = int(parts[1])
                if v.ndim > 0 and tuple(v.shape) != tuple(params[pid].shape):
                    raise self.error(
                        f"{name} has shape {tuple(v.shape)}, parameter {pid} has "
                        f"{tuple(params[pid].shape)}"
                    )
                if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                    raise self.error(f"{name} contains NaN or infinite values")
                state.setdefault(pid, {})[parts[2]] = v
        for name, v in scalars.items():
            pid_text, _, k = str(name).partition(".")
            if not pid_text.isdigit() or int(pid_text) >= len(params) or not k:
                raise self.error(f"optimizer scalar {name!r} names no parameter of this model")
            state.setdefault(int(pid_text), {})[k] = v
        return {"state": state, "param_groups": groups}
