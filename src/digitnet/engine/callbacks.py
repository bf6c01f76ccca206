"""Progress goes out of ``fit`` through callbacks (minGPT's pattern); the engine imports no UI.

Every hook receives one typed, immutable payload defined here:

- ``on_fit_start(FitStart)`` once, before the first batch;
- ``on_batch_end(BatchState)`` after every optimizer step: it runs every step, so it must be
  cheap; its ``loss`` and ``accuracy`` are filled in only every ``log_every`` steps and at the
  epoch's last step (reading them is a device sync), ``None`` otherwise;
- ``on_eval(EvalResult)`` after each evaluation of the model-selection split (every
  ``eval_every`` epochs and at each epoch end);
- ``on_epoch_end(EpochMetrics)`` after each epoch (or the part of it trained before the target
  accuracy was reached);
- ``on_fit_end(FitResult)`` once, with what ``fit`` returns.

Payloads are dataclasses, so ``dataclasses.asdict`` turns any of them into plain data (the GUI
sends them across threads that way); the field names are the keys of the former dict payloads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checkpoint import json_safe

if TYPE_CHECKING:
    import torch

    from .config import TrainConfig

__all__ = [
    "BatchState",
    "Callback",
    "CallbackList",
    "EpochMetrics",
    "EvalResult",
    "FitResult",
    "FitStart",
    "TensorBoardLogger",
]


@dataclass(frozen=True, slots=True)
class FitStart:
    """What a run is about to do (``on_fit_start``)."""

    config: TrainConfig  # the resolved config (for a resumed run: the checkpoint's)
    device: str  # e.g. "cpu", "cuda:0"
    n_train: int  # training images (after --limit-train and --val-split)
    n_val: int  # held-out model-selection images (0 without --val-split)
    n_test: int  # test images
    steps_per_epoch: int
    total_steps: int  # epochs * steps_per_epoch
    start_step: int  # global step the run starts at: 0, or where a resumed run continues
    run_dir: Path | None  # the run folder (None when fit writes no files)
    rank: int = 0  # this process's rank under torchrun (only rank 0 writes files)


@dataclass(frozen=True, slots=True)
class BatchState:
    """Where training is after one optimizer step (``on_batch_end``)."""

    epoch: int  # 0-based epoch
    step: int  # 1-based step within the epoch
    steps_per_epoch: int
    global_step: int  # 1-based step counted from the start of training
    total_steps: int
    elapsed: float  # training seconds so far (evaluation excluded)
    loss: float | None = None  # mean training loss of the epoch so far, at log steps only
    accuracy: float | None = None  # training accuracy of the epoch so far, at log steps only


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One evaluation of the model-selection split (``on_eval``; ``FitResult.evals``).

    The selection split is the held-out validation set under ``--val-split``, else the test set;
    ``--target-accuracy`` and the best checkpoint are decided on it.
    """

    epoch: float  # epochs trained when evaluated (fractional with eval_every < 1)
    train_seconds: float  # training seconds at that point (evaluation excluded)
    split: str  # "val" or "test"
    accuracy: float
    loss: float
    n: int = 0  # images evaluated

    def to_json(self) -> dict[str, Any]:
        return json_safe(
            {
                "epoch": self.epoch,
                "train_seconds": round(self.train_seconds, 4),
                "split": self.split,
                "accuracy": self.accuracy,
                "loss": self.loss,
                "n": self.n,
            }
        )

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EvalResult:
        """Also reads the older record form (``select_split``, ``select_accuracy``, ...)."""
        return cls(
            epoch=float(d["epoch"]),
            train_seconds=float(d["train_seconds"]),
            split=str(d.get("split", d.get("select_split", "test"))),
            accuracy=_num(d.get("accuracy", d.get("select_accuracy"))),
            loss=_num(d.get("loss", d.get("select_loss"))),
            n=int(d.get("n", 0)),
        )


@dataclass(frozen=True, slots=True)
class EpochMetrics:
    """One row of ``metrics.csv`` (``on_epoch_end``; ``FitResult.history``)."""

    epoch: float  # epochs trained (1-based; fractional when the target stopped an epoch early)
    train_loss: float  # mean over the epoch's batches (summed over ranks)
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float  # training seconds of this epoch
    cum_seconds: float  # training seconds since the start of the run
    images_per_s: float  # training throughput of this epoch
    lr: float  # learning rate at the epoch's end
    val_loss: float | None = None  # with --val-split only
    val_accuracy: float | None = None

    def to_row(self) -> dict[str, Any]:
        """The row as written to ``metrics.csv`` / ``metrics.json`` (val columns when present)."""
        row: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "train_accuracy": self.train_accuracy,
        }
        if self.val_loss is not None:
            row.update(val_loss=self.val_loss, val_accuracy=self.val_accuracy)
        row.update(
            test_loss=self.test_loss,
            test_accuracy=self.test_accuracy,
            seconds=self.seconds,
            cum_seconds=self.cum_seconds,
            images_per_s=self.images_per_s,
            lr=self.lr,
        )
        return row

    @classmethod
    def from_row(cls, d: dict[str, Any]) -> EpochMetrics:
        def opt(k: str) -> float | None:
            return None if d.get(k) is None else float(d[k])

        return cls(
            epoch=float(d["epoch"]),
            train_loss=_num(d["train_loss"]),
            train_accuracy=_num(d["train_accuracy"]),
            test_loss=_num(d["test_loss"]),
            test_accuracy=_num(d["test_accuracy"]),
            seconds=float(d["seconds"]),
            cum_seconds=float(d["cum_seconds"]),
            images_per_s=float(d["images_per_s"]),
            lr=_num(d["lr"]),
            val_loss=opt("val_loss"),
            val_accuracy=opt("val_accuracy"),
        )


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


@dataclass
class FitResult:
    """What ``fit`` returns (and ``on_fit_end`` receives).

    Paths are ``None`` where nothing was written (``write=False``, ranks other than 0, or an
    interrupted run for ``checkpoint``).
    """

    config: TrainConfig
    run_dir: Path | None  # the run folder
    checkpoint: Path | None  # final weights, <run>/model.safetensors (None when interrupted)
    best_checkpoint: Path | None  # weights at the best selection accuracy, <run>/best.safetensors
    last_checkpoint: Path | None  # resumable state, <run>/last.safetensors
    history: list[EpochMetrics] = field(default_factory=list)
    evals: list[EvalResult] = field(default_factory=list)
    train_seconds: float = 0.0  # training only; evaluation and compilation excluded
    compile_seconds: float = 0.0  # torch.compile warm-up (--compile)
    epochs: float = 0.0  # epochs trained (fractional when the target stopped an epoch early)
    interrupted: bool = False  # stopped by the stop event; resume from last_checkpoint
    reached_target: bool | None = None  # None without --target-accuracy
    target_seconds: float | None = None  # training seconds when the target was first reached
    best_accuracy: float | None = None  # best selection-split accuracy over all evaluations
    best_epoch: float | None = None  # when it was reached
    device: str = "cpu"
    n_train: int = 0
    model: torch.nn.Module | None = None  # the trained module (on the training device)

    @property
    def last(self) -> EpochMetrics | None:
        """The last epoch's metrics, or None when no epoch finished."""
        return self.history[-1] if self.history else None

    def final(self) -> dict[str, Any]:
        """The last epoch's metrics as a plain ``metrics.csv`` row ({} when none finished)."""
        return self.history[-1].to_row() if self.history else {}

    @property
    def test_accuracy(self) -> float | None:
        return None if self.last is None else self.last.test_accuracy

    @property
    def test_loss(self) -> float | None:
        return None if self.last is None else self.last.test_loss

    def to_json(self) -> dict[str, Any]:
        """``result.json`` and the ``--json`` line of ``digitnet train``."""
        f = self.last

        def r3(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        def path(p: Path | None) -> str | None:
            return str(p) if p else None

        return json_safe(
            {
                "model": self.config.model,
                "recipe": self.config.recipe,
                "epochs": self.epochs,
                "train_images": self.n_train,
                "test_accuracy": None if f is None else f.test_accuracy,
                "test_loss": None if f is None else f.test_loss,
                "val_accuracy": None if f is None else f.val_accuracy,
                "val_loss": None if f is None else f.val_loss,
                "train_accuracy": None if f is None else f.train_accuracy,
                "train_loss": None if f is None else f.train_loss,
                "train_seconds": round(self.train_seconds, 3),
                "compile_seconds": round(self.compile_seconds, 3),
                "target_accuracy": self.config.target_accuracy,
                "reached_target": self.reached_target,
                "target_seconds": r3(self.target_seconds),
                "best_accuracy": self.best_accuracy,
                "best_epoch": self.best_epoch,
                "interrupted": self.interrupted,
                "device": self.device,
                "run_dir": path(self.run_dir),
                "checkpoint": path(self.checkpoint),
                "best_checkpoint": path(self.best_checkpoint),
                "last_checkpoint": path(self.last_checkpoint),
            }
        )


class Callback:
    """Base class: override any hook; the defaults do nothing."""

    def on_fit_start(self, info: FitStart) -> None:
        """Once, before the first batch."""

    def on_batch_end(self, state: BatchState) -> None:
        """After every optimizer step; keep it cheap."""

    def on_eval(self, result: EvalResult) -> None:
        """After each evaluation of the model-selection split."""

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        """After each epoch, with its ``metrics.csv`` row."""

    def on_fit_end(self, result: FitResult) -> None:
        """Once, with what ``fit`` returns."""


class CallbackList(Callback):
    """Calls each hook on every callback, in order."""

    def __init__(self, callbacks: Iterable[Callback | None]) -> None:
        self.callbacks = [c for c in callbacks if c is not None]

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def on_fit_start(self, info: FitStart) -> None:
        for c in self.callbacks:
            c.on_fit_start(info)

    def on_batch_end(self, state: BatchState) -> None:
        for c in self.callbacks:
            c.on_batch_end(state)

    def on_eval(self, result: EvalResult) -> None:
        for c in self.callbacks:
            c.on_eval(result)

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        for c in self.callbacks:
            c.on_epoch_end(metrics)

    def on_fit_end(self, result: FitResult) -> None:
        for c in self.callbacks:
            c.on_fit_end(result)


class TensorBoardLogger(Callback):
    """Writes loss/accuracy curves as TensorBoard event files into ``<run>/tensorboard``."""

    def __init__(self, log_dir: str | Path) -> None:
        from ..errors import UsageError

        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UsageError(
                "--tensorboard needs the tensorboard package: pip install 'digitnet[tensorboard]'"
            ) from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def on_batch_end(self, state: BatchState) -> None:
        if state.loss is not None:
            self.writer.add_scalar("train/batch_loss", state.loss, state.global_step)

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        e = metrics.epoch
        for key, value in metrics.to_row().items():
            split, _, what = key.partition("_")
            if split in ("train", "val", "test") and what in ("loss", "accuracy"):
                self.writer.add_scalar(f"{split}/{what}", value, e)
        self.writer.add_scalar("lr", metrics.lr, e)
        self.writer.flush()

    def on_fit_end(self, result: FitResult) -> None:
        self.writer.close()
