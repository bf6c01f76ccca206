"""The training settings: ``TrainConfig`` and its ``AugmentConfig``, with their defaults.

Every field is commented where it is declared. A recipe (``recipes.py``) changes some of these
defaults; ``config.resolve_config`` layers a recipe, a config file and overrides on top of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError

__all__ = ["AugmentConfig", "TrainConfig"]


@dataclass
class AugmentConfig:
    """Random transforms applied to whole batches on the training device (data/tensors.py)."""

    enabled: bool = False
    rotate: float = 10.0  # max rotation, degrees
    scale: float = 0.1  # scale drawn from [1 - scale, 1 + scale]
    translate: float = 2.0  # max shift, pixels of the 28x28 image
    shear: float = 0.0  # max shear, degrees
    elastic: float = 0.0  # elastic displacement amplitude, pixels (0 = off)
    thickness: float = 0.0  # probability of thickening or thinning the strokes
    # Writer variation (issue 12): how people differ from MNIST's writers.
    aspect: float = 0.0  # width scaled by exp(U(-aspect, aspect)) on its own (0 = off)
    pen_lift: float = 0.0  # probability of one or two small gaps in the strokes
    clip: float = 0.0  # probability of shaving 1-2.5 px off one side (a crop cut too tight)
    lowres: float = 0.0  # probability of seeing the digit 7-11 px tall, then enlarged
    # Synthetic allographs (data/allographs.py: flagged 1s, crossed 7s, open 4s ...) added to
    # the training set, as a fraction of its size; drawn once per run from the run's seed.
    allographs: float = 0.0


@dataclass
class TrainConfig:
    # What to train
    model: str = "digitnet"
    model_args: dict[str, Any] = field(default_factory=dict)
    recipe: str = "default"
    # Optimisation
    epochs: int = 15
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adam | adamw | adadelta
    lr: float = 0.05  # peak learning rate (one-cycle) or the constant/initial one
    momentum: float = 0.9  # sgd only
    nesterov: bool = True  # sgd only
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # onecycle | cosine | step | none
    step_size: int = 1  # step schedule: epochs between decays
    gamma: float = 0.7  # step schedule: decay factor
    warmup_frac: float = 0.2  # onecycle: fraction of steps spent warming up
    label_smoothing: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # Input scaling: "standardize" (MNIST mean/std) or "raw255" (0..255 pixels, the course report)
    input: str = "standardize"
    # Data
    data_dir: str | None = None
    limit_train: int | None = None
    val_split: int = 0  # images held out of training for model selection
    # Run control
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"  # auto | cpu | cuda | mps
    threads: int | None = None  # torch intra-op threads on CPU; None = torch's default
    channels_last: bool = True
    bf16: bool = True  # autocast to bfloat16 on CUDA (ignored elsewhere)
    compile: bool = False  # torch.compile the model (warm-up reported separately)
    eval_every: float = 1.0  # evaluate every this many epochs (0.25 = each quarter epoch)
    eval_batch_size: int = 1000
    target_accuracy: float | None = None  # stop once test (or val) accuracy reaches this
    out: str | None = None  # run folder; None = runs/<model>-<recipe>-<timestamp>
    save_every_epoch: bool = True  # resumable checkpoint after each epoch
    tensorboard: bool = False
    log_every: int = 50  # steps between live loss/accuracy reads (each read is a device sync)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        aug = d.pop("augment", None)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UsageError(f"unknown training setting(s): {', '.join(unknown)}")
        cfg = cls(**d)
        if aug is not None:
            cfg.augment = aug if isinstance(aug, AugmentConfig) else _augment_from(aug)
        return cfg


def _augment_from(d: dict[str, Any] | bool) -> AugmentConfig:
    if isinstance(d, bool):
        from .recipes import RECIPES  # recipes are built from these dataclasses

        return dataclasses.replace(RECIPES["default"]["augment"]) if d else AugmentConfig()
    names = {f.name for f in dataclasses.fields(AugmentConfig)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise UsageError(f"unknown augmentation setting(s): {', '.join(unknown)}")
    return AugmentConfig(**d)
