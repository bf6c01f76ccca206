"""``OnnxPredictor``: a file from ``digitnet export --format onnx`` run with ONNX Runtime.

Imports numpy and onnxruntime, never torch: this is the default path of ``digitnet predict``
(tests/test_export.py checks ``sys.modules``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError, UsageError
from .base import PredictorBase

__all__ = ["META_KEY", "OnnxPredictor", "onnxruntime_available"]

META_KEY = "digitnet"  # ONNX metadata_props key holding the JSON metadata
# A digit model's ONNX file is well under 100 MB; larger is not ours (and is not read).
_MAX_BYTES = 1 << 30
_MAX_META_CHARS = 1 << 20


def onnxruntime_available() -> bool:
    """Whether ``import onnxruntime`` works here (an installed wheel built for another CPU or
    Python does not)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _parse_meta(raw: str | None, p: Path) -> dict[str, Any]:
    if raw is None:
        raise CheckpointError(
            f"{p}: ONNX model has no digitnet metadata (export it with 'digitnet export')"
        )
    if len(raw) > _MAX_META_CHARS:
        raise CheckpointError(f"{p}: ONNX digitnet metadata is too large ({len(raw)} characters)")
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        raise CheckpointError(f"{p}: ONNX digitnet metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{p}: ONNX digitnet metadata is not a JSON object")
    metrics = meta.get("metrics")
    if metrics is not None and not isinstance(metrics, dict):
        raise CheckpointError(f"{p}: ONNX digitnet metadata: 'metrics' is not an object")
    return meta


class OnnxPredictor(PredictorBase):
    """The ``Predictor`` protocol over an exported ONNX model (CPU)."""

    backend = "onnx"

    def __init__(self, session: Any, meta: dict[str, Any], path: str | os.PathLike[str]) -> None:
        self._init_meta(meta, Path(path))
        self.session = session
        self._in = session.get_inputs()[0].name

    @classmethod
    def load(cls, path: str | os.PathLike[str], threads: int | None = None) -> OnnxPredictor:
        """Open ``path`` with ONNX Runtime (``threads``: intra-op threads; None = its default),
        check its metadata and input shape, and that it gives finite outputs."""
        p = Path(path)
        try:
            import onnxruntime as ort
        except ImportError:
            raise UsageError("ONNX inference needs onnxruntime: pip install onnxruntime") from None
        if not p.is_file():
            raise CheckpointError(f"{p}: no such ONNX model file")
        if p.stat().st_size > _MAX_BYTES:
            raise CheckpointError(f"{p}: {p.stat().st_size} bytes is too large for a digit model")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            sess = ort.InferenceSession(
                str(p), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{p}: not a loadable ONNX model: {first}") from None
        meta = _parse_meta(sess.get_modelmeta().custom_metadata_map.get(META_KEY), p)
        inputs, outputs = sess.get_inputs(), sess.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise CheckpointError(
                f"{p}: ONNX model has {len(inputs)} inputs and {len(outputs)} "
                "outputs, expected 1 and 1"
            )
        shape = inputs[0].shape
        if len(shape) != 4 or list(shape[1:]) != [1, 28, 28]:
            raise CheckpointError(f"{p}: ONNX input shape {shape} is not (batch, 1, 28, 28)")
        pred = cls(sess, meta, p)
        try:
            pred.check_sane()
        except CheckpointError:
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise CheckpointError(f"{p}: ONNX model cannot run: {first}") from None
        return pred

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits for already-normalised ``x`` float32 ``(N, 1, 28, 28)``."""
        return self.session.run(None, {self._in: np.ascontiguousarray(x, np.float32)})[0]
