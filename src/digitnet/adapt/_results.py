"""What ``adapt_model`` reports: progress while it learns, the result when it is done."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

AdaptMode = Literal["replay", "l2sp"]
StopReason = Literal["fit", "time", "cancelled"]


@dataclass(frozen=True)
class AdaptProgress:
    """Sent to ``progress`` a few times a second while the model learns."""

    step: int  # training steps done
    elapsed: float  # seconds since adapt_model started
    seconds: float  # the time budget
    fraction: float  # 0..1, how far along (time or fit, whichever is further)
    loss: float | None  # loss on the last batch (None before the first)
    fit_accuracy: float | None  # share of the examples read right at the last check
    mode: AdaptMode


@dataclass(frozen=True)
class AdaptResult:
    """What ``adapt_model`` did. ``checkpoint`` is None when it was cancelled."""

    checkpoint: Path | None
    base: Path
    mode: AdaptMode
    examples: int
    per_digit: dict[int, int]
    skipped: tuple[str, ...]
    steps: int
    seconds: float  # wall time of the whole call
    stopped: StopReason  # "fit": the examples were learnt; "time": the budget ran out
    accuracy_before: float  # share of the examples the base read right
    accuracy_after: float  # share the adapted model reads right
    replay_images: int  # MNIST training images available for replay (0 in l2sp mode)
    trained_layers: str  # which layers were trained ("features[9:] and head", "head", ...)
    # synthetic allographs replayed beside them (0 in l2sp mode or for a base trained on none)
    replay_allographs: int = 0
    meta: dict[str, Any] = field(default_factory=dict)  # the checkpoint's metadata

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
            "base": str(self.base),
            "mode": self.mode,
            "examples": self.examples,
            "per_digit": {str(k): v for k, v in self.per_digit.items()},
            "skipped": list(self.skipped),
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
            "stopped": self.stopped,
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
            "replay_images": self.replay_images,
            "replay_allographs": self.replay_allographs,
            "trained_layers": self.trained_layers,
        }
