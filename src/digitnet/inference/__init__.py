"""``Predictor``: a checkpoint (or the bundled model) turned into probabilities for 28x28 digits.

Input convention (docs/architecture.md): float32 ``(N, 28, 28)`` in [0, 1], white ink on black,
MNIST-centred (``preprocess.py`` produces it). The predictor applies the model's own input
scaling from its checkpoint metadata, so callers never need to know how a model was trained.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError

__all__ = ["ModelInfo", "Predictor", "bundled_model_path", "bundled_onnx_path"]

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


class ModelInfo:
    """What a predictor says about its model, from checkpoint metadata (``self.meta``)."""

    meta: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.meta.get("model", "?"))

    @staticmethod
    def images(x: np.ndarray) -> np.ndarray:
        """``x`` as float32 ``(N, 28, 28)`` (one ``(28, 28)`` image is N = 1); ValueError else."""
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1:] != (28, 28):
            raise ValueError(f"expected images of shape (N, 28, 28), got {arr.shape}")
        return arr

    @property
    def test_accuracy(self) -> float | None:
        v = (self.meta.get("metrics") or {}).get("test_accuracy")
        return float(v) if isinstance(v, (int, float)) else None


class Predictor(ModelInfo):
    def __init__(self, model, meta: dict[str, Any], path: Path, device: str = "cpu") -> None:
        import torch

        self.model = model
        self.meta = meta
        self.path = path
        self.device = torch.device(device)
        self.input = meta.get("input") or {"kind": "standardize", "mean": 0.1307, "std": 0.3081}

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, device: str = "cpu") -> Predictor:
        """Load ``path`` (any checkpoint ``load_checkpoint`` accepts) or the bundled model."""
        from .checkpoint import load_checkpoint

        p = Path(path) if path is not None else bundled_model_path()
        if path is None and not p.exists():
            raise CheckpointError(f"{p}: the bundled model is missing from this installation; pass --model CHECKPOINT")
        model, meta = load_checkpoint(p, device=device)
        return cls(model, meta, p, device)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, 10)`` for images ``x`` of shape ``(N, 28, 28)`` (or one ``(28, 28)``)."""
        import torch

        from .data.tensors import to_model_input

        arr = self.images(x)
        if arr.shape[0] == 0:
            return np.zeros((0, 10), np.float32)
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device).unsqueeze(1)
            logits = self.model(to_model_input(t, self.input))
            return logits.float().softmax(1).cpu().numpy()

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(digits, confidences)`` for a batch."""
        p = self.predict_proba(x)
        return p.argmax(1), p.max(1)
