"""The ``Predictor`` protocol and what every predictor shares (metadata, checks, bundled files).

Input convention (docs/architecture.md): float32 ``(N, 28, 28)`` in [0, 1], white ink on black,
MNIST-centred (``digitnet.preprocess`` produces it). A predictor applies the model's own input
scaling (``meta["input"]``) and its calibration temperature (``meta["calibration"]``), so
callers never need to know how a model was trained.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import CheckpointError
from .spec import check_input_spec, known_images, softmax, temperature_of

__all__ = [
    "BUNDLED_NAME",
    "BUNDLED_ONNX_NAME",
    "Predictor",
    "PredictorBase",
    "bundled_model_path",
    "bundled_onnx_path",
]

BUNDLED_NAME = "digitnet.safetensors"
# The same weights exported with ``digitnet export --format onnx`` (tests/test_export.py checks
# that it was exported from BUNDLED_NAME and gives the same probabilities).
BUNDLED_ONNX_NAME = "digitnet.onnx"


def bundled_model_path() -> Path:
    """Where the default weights shipped inside the package live."""
    return Path(str(resources.files("digitnet") / "weights" / BUNDLED_NAME))


def bundled_onnx_path() -> Path:
    """The bundled model as ONNX (run with ONNX Runtime, no torch needed)."""
    return Path(str(resources.files("digitnet") / "weights" / BUNDLED_ONNX_NAME))


@runtime_checkable
class Predictor(Protocol):
    """What the CLI, the GUI, the web service and the benchmarks need from a model."""

    meta: dict[str, Any]  # the checkpoint's (or exported file's) metadata
    path: Path  # the file it was loaded from
    backend: str  # "torch" or "onnx"

    @property
    def name(self) -> str: ...

    @property
    def test_accuracy(self) -> float | None: ...

    @property
    def input(self) -> dict[str, Any]: ...  # the validated input spec

    @property
    def temperature(self) -> float: ...  # calibration: probabilities = softmax(logits / T)

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...  # (N, 28, 28) -> (N, 10)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...  # digits, confidence


def _load_torch(path: str | os.PathLike[str] | None = None, device: str = "cpu") -> Predictor:
    """``load_predictor(path, backend="torch", device=device)``."""
    from . import load_predictor

    return load_predictor(path, backend="torch", device=device)


# ``Predictor.load`` was the torch loader before the protocol existed; kept for its callers
# (set after the class is made, so it is no member of the protocol). New code: load_predictor.
setattr(Predictor, "load", staticmethod(_load_torch))  # noqa: B010


class PredictorBase:
    """Metadata access, input checks and calibration shared by the torch and ONNX predictors.

    Subclasses set ``meta``, ``path`` and ``backend`` and implement ``logits``.
    """

    meta: dict[str, Any]
    path: Path
    backend: str
    _input: dict[str, Any]
    _temperature: float

    def _init_meta(self, meta: dict[str, Any], path: Path) -> None:
        """Validate what the predictor will apply: refused here, never guessed later."""
        self.meta = meta
        self.path = Path(path)
        self._input = check_input_spec(meta.get("input"), str(path))
        self._temperature = temperature_of(meta, str(path))

    @property
    def name(self) -> str:
        return str(self.meta.get("model", "?"))

    @property
    def test_accuracy(self) -> float | None:
        metrics = self.meta.get("metrics")
        v = metrics.get("test_accuracy") if isinstance(metrics, dict) else None
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    @property
    def input(self) -> dict[str, Any]:
        return self._input

    @property
    def temperature(self) -> float:
        return self._temperature

    @staticmethod
    def images(x: np.ndarray) -> np.ndarray:
        """``x`` as float32 ``(N, 28, 28)`` (one ``(28, 28)`` image is N = 1); ValueError else."""
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1:] != (28, 28):
            raise ValueError(f"expected images of shape (N, 28, 28), got {arr.shape}")
        return arr

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits ``(N, 10)`` for already-normalised float32 ``(N, 1, 28, 28)``."""
        raise NotImplementedError

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``(N, 10)`` for images ``(N, 28, 28)`` (or one ``(28, 28)``)."""
        from .spec import normalise

        arr = self.images(x)
        if arr.shape[0] == 0:
            return np.zeros((0, 10), np.float32)
        return softmax(self.logits(normalise(arr, self._input)[:, None]), self._temperature)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(digits, confidences)`` for a batch."""
        p = self.predict_proba(x)
        return p.argmax(1), p.max(1)

    def check_sane(self) -> None:
        """Refuse a model that gives non-finite outputs on a known input (an input std of 0,
        a negative BatchNorm variance, weights scaled to overflow): without this it would read
        every digit as "0" at NaN confidence, and print NaN into JSON."""
        from .spec import normalise

        x = normalise(known_images(), self._input)[:, None]
        z = np.asarray(self.logits(x))
        if z.shape != (2, 10):
            raise CheckpointError(
                f"{self.path}: the model gives outputs of shape {z.shape} for "
                "2 images, expected (2, 10)"
            )
        if not np.isfinite(z).all():
            raise CheckpointError(
                f"{self.path}: the model gives non-finite outputs (NaN or "
                "inf) on a known input; its weights or metadata are broken"
            )
