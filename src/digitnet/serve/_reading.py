"""The server's doorway to the library: load the model once, read one uploaded image.

Everything the server answers about an image comes from here, and everything here is the
project's own reading code: the predictor comes from the same loader ``digitnet predict`` uses,
the image goes through the same ``prepare`` / ``classify`` and the answer is the same
``Reading.to_json()`` object ``digitnet predict --json`` prints (plus, only when asked for,
each digit's 28x28 input as a PNG data URL for the browser page).
"""

from __future__ import annotations

import base64
import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ReadOptions", "Reader", "load_reader"]


@dataclass(frozen=True)
class ReadOptions:
    """``digitnet predict``'s reading options, with its defaults."""

    single: bool = False
    top_k: int = 3
    min_confidence: float = 0.5
    inputs: bool = False  # add each digit's 28x28 input as ``"input"`` (a PNG data URL)


def _png_data_url(img28: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.round(np.clip(img28, 0, 1) * 255).astype(np.uint8), "L").save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class Reader:
    """One loaded model and the reading service around it; safe to call from many threads."""

    def __init__(self, predictor: Any, model_path: str | None) -> None:
        self.predictor = predictor
        self.model_path = model_path
        # ONNX Runtime sessions and torch modules in inference mode may run concurrently, but
        # a predictor written by someone else may not say so: the network call (about 1 ms per
        # image) is serialised, the decoding and preprocessing around it (most of the time)
        # runs in parallel.
        self._lock = threading.Lock()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self.predictor.predict_proba(x), np.float32)

    def read(self, data: bytes, name: str, options: ReadOptions) -> dict[str, Any]:
        """The ``predict --json`` object for one image; ``ImageError`` for an unreadable one."""
        from ..preprocess import classify, prepare

        prepared = prepare(data, single=options.single, name=name)
        (reading,) = classify(
            [prepared], [name], self, top_k=options.top_k, min_confidence=options.min_confidence
        )
        obj = reading.to_json()
        if options.inputs:
            for d_obj, d in zip(obj["digits"], reading.digits, strict=True):
                d_obj["input"] = _png_data_url(d.image)
        return obj

    def error_object(self, name: str, message: str) -> dict[str, Any]:
        """What ``predict --json`` prints for an input that could not be read."""
        from ..preprocess import Reading

        return Reading(name, error=message).to_json()

    def model_info(self) -> dict[str, Any]:
        meta: dict[str, Any] = dict(getattr(self.predictor, "meta", {}) or {})
        metrics = meta.get("metrics") or {}
        acc = metrics.get("test_accuracy") if isinstance(metrics, dict) else None
        data = meta.get("data") or {}
        path = getattr(self.predictor, "path", None)
        return {
            "name": str(meta.get("model", "?")),
            "file": Path(path).name if path is not None else None,
            "bundled": self.model_path is None,
            "backend": "onnx" if type(self.predictor).__name__.startswith("Onnx") else "torch",
            "test_accuracy": float(acc) if isinstance(acc, (int, float)) else None,
            "train_images": data.get("train_images") if isinstance(data, dict) else None,
            "calibration": meta.get("calibration"),
            "input": {
                "shape": [28, 28],
                "convention": "white ink (1.0) on black (0.0), digit fitted in the central "
                "20x20 box, centred on its centre of mass",
                "normalisation": meta.get("input")
                or {"kind": "standardize", "mean": 0.1307, "std": 0.3081},
            },
            "classes": list(range(10)),
        }


def load_reader(model: str | None = None) -> Reader:
    """The model ``digitnet predict`` would use for ``--model`` (None: the bundled model).

    The same backend rule as predict's: ONNX Runtime for a ``.onnx`` file, and for the bundled
    model when onnxruntime is installed; PyTorch otherwise. Raises ``CheckpointError`` /
    ``UsageError`` with one line for a model that cannot be loaded.
    """
    from ..inference import load_predictor

    # One intra-op thread, as predict: requests are small and come from a bounded queue.
    predictor = load_predictor(model, threads=1)
    return Reader(predictor, model)
