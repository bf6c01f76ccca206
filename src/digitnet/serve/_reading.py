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
    # predict's --min-confidence: digits read below it are rejected ("?" in the text) and
    # marked low_confidence; None marks digits below predict's default threshold only.
    min_confidence: float | None = None
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

    def read(self, data: bytes, name: str, options: ReadOptions) -> tuple[bool, dict[str, Any]]:
        """``(ok, the predict --json object)`` for one image held in memory; not ok: the
        image could not be read, and the object's ``error`` says why in one line."""
        from ..commands.predict import _LOW
        from ..preprocess import read_bytes, reading_to_json

        reject = options.min_confidence
        reading = read_bytes(
            data,
            self,
            name=name,
            single=options.single,
            top_k=options.top_k,
            min_confidence=_LOW if reject is None else reject,
            reject_below=reject,
        )
        obj = reading_to_json(reading)
        if options.inputs:
            for d_obj, d in zip(obj["digits"], reading.digits, strict=True):
                d_obj["input"] = _png_data_url(d.image)
        return reading.ok, obj

    def warm_up(self) -> None:
        """Read one small drawn digit, so the first request does not pay for the imports
        and first-call set-up of the reading code (about a second on a busy machine)."""
        from PIL import Image, ImageDraw

        img = Image.new("L", (64, 64), 255)
        ImageDraw.Draw(img).line([(16, 12), (48, 12), (28, 54)], fill=0, width=6)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        self.read(buf.getvalue(), "<warm-up>", ReadOptions(inputs=True))

    def error_object(self, name: str, message: str) -> dict[str, Any]:
        """What ``predict --json`` prints for an input that could not be read."""
        from ..preprocess import Reading, reading_to_json

        return reading_to_json(Reading(name, error=message))

    def model_info(self) -> dict[str, Any]:
        p = self.predictor
        meta: dict[str, Any] = p.meta
        data = meta.get("data")
        cal = meta.get("calibration")
        return {
            "name": p.name,
            "file": Path(p.path).name,
            "bundled": self.model_path is None,
            "backend": p.backend,
            "test_accuracy": p.test_accuracy,
            "train_images": data.get("train_images") if isinstance(data, dict) else None,
            # probabilities = softmax(logits / temperature); 1.0 for an uncalibrated model
            "calibration": {**(cal if isinstance(cal, dict) else {}), "temperature": p.temperature},
            "input": {
                "shape": [28, 28],
                "convention": "white ink (1.0) on black (0.0), digit fitted in the central "
                "20x20 box, centred on its centre of mass",
                "normalisation": p.input,
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
