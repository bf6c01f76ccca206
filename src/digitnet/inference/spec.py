"""What a model expects and how its outputs are read: input spec, normaliser, temperature.

Torch-free (numpy only), so that the ONNX Runtime path never imports torch. The normaliser is
plain arithmetic and works unchanged on numpy arrays and on torch tensors: the torch
predictor, the ONNX predictor, training data and the exporter's parity check all use it.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import numpy as np

from ..errors import CheckpointError

__all__ = [
    "DEFAULT_INPUT",
    "INPUT_KINDS",
    "MNIST_MEAN",
    "MNIST_STD",
    "check_input_spec",
    "known_images",
    "normalise",
    "softmax",
    "temperature_of",
]

# Mean and standard deviation of the official 60,000 MNIST training pixels scaled to [0, 1]
# (the values every PyTorch MNIST example uses); kept fixed so checkpoints agree on them.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

# How a model wants its [0, 1] input: "standardize" = (x - mean) / std, "raw255" = x * 255
# (the course report's network), "unit" = x as it is.
INPUT_KINDS = ("standardize", "raw255", "unit")

# The spec a checkpoint without one gets (every digitnet recipe trains on it). Copy before
# changing: ``dict(DEFAULT_INPUT)``.
DEFAULT_INPUT: dict[str, Any] = {"kind": "standardize", "mean": MNIST_MEAN, "std": MNIST_STD}

T = TypeVar("T")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_input_spec(spec: Any, where: str) -> dict[str, Any]:
    """``spec`` (from a model's metadata; None or missing = ``DEFAULT_INPUT``) validated.

    Raises ``CheckpointError`` naming ``where`` (the file) when the kind is unknown (never
    guessed: another kind reads every digit wrong with high confidence) or the numbers cannot
    normalise (a std of 0 or below, a mean or std that is not a finite number).
    """
    if spec is None:
        return dict(DEFAULT_INPUT)
    if not isinstance(spec, dict):
        raise CheckpointError(f"{where}: input spec in the metadata is not an object")
    kind = spec.get("kind", "standardize")
    if kind not in INPUT_KINDS:
        raise CheckpointError(
            f"{where}: unknown input kind {kind!r} in the metadata "
            f"(known: {', '.join(INPUT_KINDS)})"
        )
    if kind == "standardize":
        mean, std = spec.get("mean"), spec.get("std")
        if (
            not isinstance(mean, (int, float))
            or not isinstance(std, (int, float))
            or not _number(mean)
            or not _number(std)
        ):
            raise CheckpointError(
                f"{where}: input spec needs a finite mean and std, got mean={mean!r} std={std!r}"
            )
        if std <= 0:
            raise CheckpointError(f"{where}: input std must be > 0, got {std!r}")
        return {"kind": kind, "mean": float(mean), "std": float(std)}
    return {"kind": kind}


def normalise(x01: T, spec: dict[str, Any]) -> T:
    """Images in [0, 1] (white ink on black) -> what the model was trained on.

    ``x01`` is a numpy array or a torch tensor (any shape); ``spec`` one that
    ``check_input_spec`` accepted. numpy float32 stays float32.
    """
    kind = spec.get("kind", "standardize")
    if kind == "standardize":
        if isinstance(x01, np.ndarray):
            return ((x01 - np.float32(spec["mean"])) / np.float32(spec["std"])).astype(
                np.float32, copy=False
            )
        return (x01 - spec["mean"]) / spec["std"]
    if kind == "raw255":
        if isinstance(x01, np.ndarray):
            return (x01 * np.float32(255.0)).astype(np.float32, copy=False)
        return x01 * 255.0  # type: ignore[operator,return-value]
    if kind == "unit":
        return x01
    raise ValueError(f"unknown input kind {kind!r}")


def temperature_of(meta: dict[str, Any], where: str) -> float:
    """``meta["calibration"]["temperature"]`` (1.0 when absent), validated: finite and > 0.

    Probabilities are ``softmax(logits / T)``: T is fitted on a validation split (never the
    test set) so that a digit shown at 90% is right about 90% of the time.
    """
    cal = meta.get("calibration")
    if cal is None:
        return 1.0
    if not isinstance(cal, dict):
        raise CheckpointError(f"{where}: calibration in the metadata is not an object")
    t = cal.get("temperature", 1.0)
    if not _number(t) or t <= 0:
        raise CheckpointError(
            f"{where}: calibration temperature must be a finite number > 0, got {t!r}"
        )
    return float(t)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``softmax(logits / temperature)`` in float64, returned as float32."""
    z = np.asarray(logits, dtype=np.float64)
    if temperature != 1.0:
        z = z / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def known_images() -> np.ndarray:
    """Two fixed float32 (28, 28) inputs for the load-time sanity check: a blank image and a
    drawn ring (a 0 as MNIST centres it). Any healthy model gives finite outputs for both."""
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    r = np.sqrt((yy - 14.0) ** 2 + ((xx - 14.0) * 1.35) ** 2)
    ring = np.clip(2.0 - np.abs(r - 7.5), 0.0, 1.0).astype(np.float32)
    return np.stack([np.zeros((28, 28), np.float32), ring])
