"""``TorchPredictor``: a checkpoint run with PyTorch (imported only when one is loaded)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError
from .base import PredictorBase, bundled_model_path
from .spec import normalise

__all__ = ["TorchPredictor"]


class TorchPredictor(PredictorBase):
    """The ``Predictor`` protocol over an ``nn.Module`` (eval mode) and its metadata."""

    backend = "torch"

    def __init__(
        self, model: Any, meta: dict[str, Any], path: str | os.PathLike[str], device: str = "cpu"
    ) -> None:
        import torch

        self._init_meta(meta, Path(path))
        self.model = model
        self.device = torch.device(device)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        threads: int | None = None,
    ) -> TorchPredictor:
        """Load ``path`` (any checkpoint ``load_checkpoint`` accepts) or the bundled model,
        and check it gives finite outputs on a known input."""
        import torch

        from ..checkpoint import load_checkpoint

        p = Path(path) if path is not None else bundled_model_path()
        if path is None and not p.exists():
            raise CheckpointError(
                f"{p}: the bundled model is missing from this installation; pass --model CHECKPOINT"
            )
        if threads:
            torch.set_num_threads(threads)
        model, meta = load_checkpoint(p, device=device)
        pred = cls(model, meta, p, device)
        pred.check_sane()
        return pred

    def _forward(self, x: Any) -> Any:
        import torch

        with torch.inference_mode():
            return self.model(x.to(self.device)).float()

    def logits(self, x: np.ndarray) -> np.ndarray:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
        return self._forward(t).cpu().numpy()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        import torch

        arr = self.images(x)
        if arr.shape[0] == 0:
            return np.zeros((0, 10), np.float32)
        t = torch.from_numpy(np.ascontiguousarray(arr)).unsqueeze(1)
        z = self._forward(normalise(t, self._input))
        if self._temperature != 1.0:
            z = z / self._temperature
        return z.softmax(1).cpu().numpy()
