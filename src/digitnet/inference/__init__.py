"""One inference layer: ``load_predictor`` gives a ``Predictor`` for any model file.

- ``Predictor`` (protocol): ``meta``, ``path``, ``backend``, ``name``, ``test_accuracy``,
  ``input`` (the validated input spec), ``temperature`` (calibration), ``predict_proba(x)``
  -> ``(N, 10)``, ``predict(x)`` -> ``(digits, confidences)``; ``x`` float32 ``(N, 28, 28)``
  in [0, 1], white ink on black (what ``digitnet.preprocess`` makes).
- ``TorchPredictor`` (PyTorch) and ``OnnxPredictor`` (ONNX Runtime, never imports torch).
- ``load_predictor(path=None, backend="auto", device="cpu", threads=None)``: the only way the
  CLI, the GUI, the benchmarks, ``evaluate``, experiments and the exporter load a model.

Every predictor validates at load what it will apply (input kind and numbers, calibration
temperature) and runs the model once on a known input: a model that gives NaN or inf is
refused there, in one line naming the file, instead of reading every digit as "0 NaN".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, overload

from ..errors import CheckpointError, UsageError
from .base import (
    BUNDLED_NAME,
    BUNDLED_ONNX_NAME,
    Predictor,
    PredictorBase,
    bundled_model_path,
    bundled_onnx_path,
)
from .onnx_predictor import OnnxPredictor, onnxruntime_available
from .spec import (
    DEFAULT_INPUT,
    INPUT_KINDS,
    MNIST_MEAN,
    MNIST_STD,
    check_input_spec,
    normalise,
    softmax,
    temperature_of,
)
from .torch_predictor import TorchPredictor

__all__ = [
    "BACKENDS",
    "BUNDLED_NAME",
    "BUNDLED_ONNX_NAME",
    "DEFAULT_INPUT",
    "INPUT_KINDS",
    "MNIST_MEAN",
    "MNIST_STD",
    "OnnxPredictor",
    "Predictor",
    "PredictorBase",
    "TorchPredictor",
    "bundled_model_path",
    "bundled_onnx_path",
    "check_input_spec",
    "choose_backend",
    "load_predictor",
    "normalise",
    "onnxruntime_available",
    "softmax",
    "temperature_of",
]

BACKENDS = ("auto", "torch", "onnx")


def _is_onnx(path: str | os.PathLike[str] | None) -> bool:
    return path is not None and Path(path).suffix.lower() == ".onnx"


def choose_backend(
    path: str | os.PathLike[str] | None = None, backend: str = "auto", device: str = "cpu"
) -> str:
    """The backend ``load_predictor`` will use: "torch" or "onnx" (no model is loaded).

    "auto": ONNX Runtime for an ``.onnx`` file, and for the bundled model (its shipped ONNX
    twin) on the CPU when onnxruntime imports; PyTorch otherwise (any other checkpoint, or a
    GPU ``device``). An explicit backend that does not fit the file is a ``UsageError``.
    """
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose from: {', '.join(BACKENDS)}")
    onnx_file = _is_onnx(path)
    if backend == "auto":
        if onnx_file:
            return "onnx"
        if (
            path is None
            and device == "cpu"
            and bundled_onnx_path().is_file()
            and onnxruntime_available()
        ):
            return "onnx"
        return "torch"
    if backend == "onnx":
        if path is not None and not onnx_file:
            raise UsageError(
                "--backend onnx needs --model FILE.onnx (make one with: digitnet "
                "export --format onnx --out FILE.onnx)"
            )
        if device != "cpu":
            raise UsageError(f"the onnx backend runs on the CPU, not {device!r}")
    elif onnx_file:
        raise UsageError(f"{path}: an ONNX model runs with --backend onnx, not torch")
    return backend


def _bundled_save_id() -> str | None:
    """The bundled checkpoint's ``save_id``, read from its safetensors header alone (a few
    KB; no torch, no schema check: the file is ours and only compared, never used here)."""
    import json
    import struct

    try:
        with open(bundled_model_path(), "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > 1 << 24:
                return None
            header = json.loads(fh.read(n))
        meta = json.loads(header["__metadata__"]["digitnet"])
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None
    sid = meta.get("save_id") if isinstance(meta, dict) else None
    return sid if isinstance(sid, str) else None


def _current_twin(pred: OnnxPredictor) -> bool:
    """Whether the bundled ONNX file was exported from the bundled checkpoint (its save_id):
    after the bundled weights are replaced, a stale twin must not answer for them."""
    source = _bundled_save_id()
    return source is None or pred.meta.get("source_save_id") == source


# backend="torch" always gives a TorchPredictor (its ``model`` is the torch module).
@overload
def load_predictor(
    path: str | os.PathLike[str] | None,
    backend: Literal["torch"],
    device: str = ...,
    threads: int | None = ...,
) -> TorchPredictor: ...
@overload
def load_predictor(
    path: str | os.PathLike[str] | None = ...,
    *,
    backend: Literal["torch"],
    device: str = ...,
    threads: int | None = ...,
) -> TorchPredictor: ...
@overload
def load_predictor(
    path: str | os.PathLike[str] | None = ...,
    backend: str = ...,
    device: str = ...,
    threads: int | None = ...,
) -> Predictor: ...
def load_predictor(
    path: str | os.PathLike[str] | None = None,
    backend: str = "auto",
    device: str = "cpu",
    threads: int | None = None,
) -> Predictor:
    """A ``Predictor`` for ``path`` (None: the bundled model), checked and ready.

    ``backend``: "auto" (see ``choose_backend``), "torch" or "onnx". ``device``: the torch
    device ("cpu", "cuda", ...); ONNX runs on the CPU. ``threads``: intra-op threads (torch's
    setting is process-wide); None leaves the library's default. Raises ``CheckpointError``
    (bad or broken file) or ``UsageError`` (backend and file do not fit), one line each.
    """
    chosen = choose_backend(path, backend, device)
    if chosen == "onnx":
        p = Path(path) if path is not None else bundled_onnx_path()
        if path is None and not p.is_file():
            raise CheckpointError(
                f"{p}: the bundled ONNX model is missing from this "
                "installation; use --backend torch"
            )
        pred = OnnxPredictor.load(p, threads=threads)
        if path is None and backend == "auto" and not _current_twin(pred):
            return TorchPredictor.load(None, device=device, threads=threads)
        return pred
    return TorchPredictor.load(path, device=device, threads=threads)
