"""The typed results the GUI's doorway (``backend.py``) hands to the pages and workers.

Plain frozen dataclasses of numbers, strings and numpy arrays: safe to send between threads
through Qt signals, and free of the library's own types (modules, tensors, configs stay
behind the doorway, except ``ResumePlan.config``, which only goes back into ``backend``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORM_FIELDS",
    "AdaptOutcome",
    "AdaptProgress",
    "EpochReport",
    "FileResult",
    "FolderSummary",
    "ModelInfo",
    "Reading",
    "ResumePlan",
    "TrainOutcome",
    "TrainProgress",
    "TrainStart",
]


# The settings the Train page shows, in order: (TrainConfig field, label). ``augment`` stands
# for ``TrainConfig.augment.enabled``; every other name is a TrainConfig field, and its widget
# kind comes from the field's type (``backend.field_kind``).
FORM_FIELDS: tuple[tuple[str, str], ...] = (
    ("model", "Model"),
    ("epochs", "Epochs"),
    ("batch_size", "Batch size"),
    ("optimizer", "Optimizer"),
    ("lr", "Learning rate"),
    ("schedule", "Schedule"),
    ("augment", "Augmentation"),
    ("device", "Device"),
    ("limit_train", "Training images"),
    ("data_dir", "Data folder"),
)


@dataclass
class Reading:
    """What the network read in one drawing or image.

    ``text`` is the digits left to right ("" when nothing was found, ``message`` then says
    why); ``confidence`` the probability that the whole text is right (product of the
    per-digit top probabilities); ``probs`` ``(n, 10)``; ``inputs`` the ``(n, 28, 28)`` images
    the network saw; ``boxes`` ``(x0, y0, x1, y1)`` in pixels of ``image`` (or of the canvas).
    """

    text: str = ""
    confidence: float = 0.0
    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 10), np.float32))
    inputs: np.ndarray = field(default_factory=lambda: np.zeros((0, 28, 28), np.float32))
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    message: str | None = None
    # The image as analysed (uint8 grey, at most preprocess.WORK_MAX_SIDE pixels on its longer
    # side) for display; the boxes are in its pixels. None for drawings.
    image: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        return not self.text


@dataclass
class ModelInfo:
    """What the model picker shows about a checkpoint."""

    path: str | None  # None: the bundled model
    name: str
    test_accuracy: float | None

    def label(self) -> str:
        acc = (
            ""
            if self.test_accuracy is None
            else f", test accuracy {100 * self.test_accuracy:.2f} %"
        )
        where = "bundled" if self.path is None else Path(self.path).name
        return f"{self.name} ({where}{acc})"


@dataclass(frozen=True)
class FileResult:
    """One file of a folder reading."""

    path: str
    text: str
    confidence: float
    target: str | None  # the digits its name gives, if any
    error: str | None  # why it could not be read

    @property
    def correct(self) -> bool | None:
        return None if self.target is None else self.text == self.target


@dataclass(frozen=True)
class FolderSummary:
    files: int
    read: int
    with_target: int
    right: int
    cancelled: bool


@dataclass(frozen=True)
class ResumePlan:
    """What resuming ``checkpoint`` will use: the run's stored ``config`` (fit's rule, so the
    result is the one the uninterrupted run would have given), except the run-control settings
    the form keeps (``from_form``). ``differs``: (label, checkpoint value, form value) for each
    shown setting the checkpoint overrides."""

    checkpoint: Path
    config: Any
    from_form: tuple[str, ...]
    differs: tuple[tuple[str, Any, Any], ...]

    def message(self) -> str:
        run = self.checkpoint.parent.name
        if not self.differs:
            return f"Resuming {run} with its own settings (the form's match them)."
        changed = "; ".join(
            f"{label} {_show(ck)} (form: {_show(fv)})" for label, ck, fv in self.differs
        )
        return (
            f"Resuming {run}: settings come from the checkpoint, not the form: {changed}. "
            f"From the form: {', '.join(self.from_form)}."
        )


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if v is None:
        return "automatic"
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class TrainStart:
    n_train: int
    device: str
    total_steps: int
    start_step: int
    run_dir: str | None


@dataclass(frozen=True)
class TrainProgress:
    epoch: int  # 0-based
    step: int  # in the epoch, 1-based
    steps_per_epoch: int
    global_step: int
    total_steps: int
    elapsed: float  # training seconds
    loss: float | None  # only at log steps
    eta_s: float  # remaining seconds at the pace so far (nan before the first step)

    @property
    def epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch) if self.steps_per_epoch else 0


@dataclass(frozen=True)
class EpochReport:
    epoch: float
    metrics: dict[str, float]  # "{train,val,test}_{loss,accuracy}" that were measured


@dataclass(frozen=True)
class TrainOutcome:
    """A finished (or interrupted) run, as plain data: the trained module stays behind."""

    checkpoint: str | None  # final weights; None when interrupted
    last_checkpoint: str | None  # resumable state
    run_dir: str | None
    interrupted: bool
    train_seconds: float
    model: str
    metrics: dict[str, float]  # the last epoch's, as in EpochReport

    @property
    def usable_checkpoint(self) -> str | None:
        return self.checkpoint or self.last_checkpoint


@dataclass(frozen=True)
class AdaptProgress:
    done: int  # steps of 1000 (the bar's range)
    total: int
    step: int  # training steps so far
    elapsed: float  # seconds since adapting started
    fit_accuracy: float | None  # share of the examples read right at the last check


@dataclass(frozen=True)
class AdaptOutcome:
    checkpoint: str | None  # None when cancelled (nothing was written)
    examples: int
    seconds: float
    cancelled: bool
    accuracy_before: float  # share of the examples the starting model read right
    accuracy_after: float  # share the adapted model reads right
    skipped: tuple[str, ...]  # "PATH: why it was not used"
