"""Named training recipes: each names its model and the settings that differ from the defaults."""

from __future__ import annotations

import dataclasses
from typing import Any

from .settings import AugmentConfig

__all__ = ["RECIPES", "list_recipes"]


# Our default (see the "default" entry below); the writers recipe is this plus writer variation.
_DEFAULT: dict[str, Any] = dict(
    model="digitnet",
    epochs=15,
    batch_size=128,
    optimizer="sgd",
    lr=0.1,
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
    schedule="onecycle",
    label_smoothing=0.1,
    augment=AugmentConfig(
        enabled=True,
        rotate=12.0,
        scale=0.15,
        translate=2.5,
        shear=8.0,
        elastic=1.0,
        thickness=0.3,
    ),
)

# Recipes: each names its model and the settings that differ from the dataclass defaults.
RECIPES: dict[str, dict[str, Any]] = {
    # Our default: reaches >= 99.5% test accuracy trained on 24,345 images on 2 CPU cores in
    # a few minutes (docs/performance.md). The augmentation (small affine + elastic + stroke
    # thickness) is what lets the bundled model read real handwriting, not only MNIST.
    "default": _DEFAULT,
    # Writer variation (issue 12): the default recipe plus width stretched up to exp(0.2) =
    # 1.22x on its own, pen lifts in a quarter of the batch, a side shaved off in a fifth, and
    # synthetic allographs (flagged 1s, crossed 7s, open 4s ...) as 10% more training images.
    # Not the bundled model's recipe: 10 epochs with --val-split 2000 (22,345 MNIST images +
    # 2,235 allographs, 2 shared CPU cores) reached 99.51% MNIST test accuracy, the full 15
    # epochs 99.59%: under the 99.6% bar the bundled model must keep (docs/reading.md).
    "writers": {
        **_DEFAULT,
        "augment": dataclasses.replace(
            _DEFAULT["augment"],
            shear=10.0,
            thickness=0.4,
            aspect=0.2,
            pen_lift=0.25,
            clip=0.2,
            allographs=0.1,
        ),
    },
    # Time-to-99%: the small model, one-cycle, no augmentation, three epochs. Batch 128 / lr 0.1
    # beat batch 256 / lr 0.2 at the same cost (seeds 0-2: 99.03-99.24% vs 98.90-98.94%, 2 cores).
    "fast": dict(
        model="fast",
        epochs=3,
        batch_size=128,
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        schedule="onecycle",
        label_smoothing=0.0,
        augment=AugmentConfig(enabled=False),
    ),
    # The seed paper: batch 32, 20 epochs, normalised tensors, shuffled data. The paper does not
    # name its optimizer; Adam lr 1e-3 is the common PyTorch choice and our assumption.
    "paper": dict(
        model="paper",
        epochs=20,
        batch_size=32,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        schedule="none",
        label_smoothing=0.0,
        augment=AugmentConfig(enabled=False),
    ),
    # The course report: SGD lr 1e-4 momentum 0.9, batch 128, 50 epochs, raw 0..255 pixels.
    "course": dict(
        model="course",
        epochs=50,
        batch_size=128,
        optimizer="sgd",
        lr=1e-4,
        momentum=0.9,
        nesterov=False,
        weight_decay=0.0,
        schedule="none",
        label_smoothing=0.0,
        input="raw255",
        augment=AugmentConfig(enabled=False),
    ),
    # The official PyTorch MNIST example (pytorch/examples mnist/main.py): Adadelta lr 1.0,
    # StepLR gamma 0.7 each epoch, batch 64, 14 epochs.
    "pytorch_example": dict(
        model="pytorch_example",
        epochs=14,
        batch_size=64,
        optimizer="adadelta",
        lr=1.0,
        weight_decay=0.0,
        schedule="step",
        step_size=1,
        gamma=0.7,
        label_smoothing=0.0,
        augment=AugmentConfig(enabled=False),
        channels_last=False,
    ),
    # The Keras "simple MNIST convnet": Adam (lr 1e-3), batch 128, 15 epochs, inputs in [0, 1].
    "keras_example": dict(
        model="keras_example",
        epochs=15,
        batch_size=128,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        schedule="none",
        label_smoothing=0.0,
        input="unit",
        augment=AugmentConfig(enabled=False),
        channels_last=False,
    ),
}


def list_recipes() -> list[str]:
    return list(RECIPES)
