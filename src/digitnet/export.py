"""Export a checkpoint to ONNX or TorchScript, with a parity check; run ONNX models without torch.

The exported graph is the network alone: float32 ``(N, 1, 28, 28)`` already normalised ->
logits ``(N, 10)``, with a dynamic batch axis. The input normalisation (the checkpoint's
``meta["input"]``) travels with the file: in the ONNX model's ``metadata_props`` and, for
TorchScript, in the archive's extra files; a ``<file>.json`` sidecar repeats it for people. So an
ONNX model is enough for ``digitnet.inference.OnnxPredictor``, which needs numpy and onnxruntime
but never torch. Exporting needs the ``onnx`` extra (``onnx``, ``onnxscript``).

The sidecar is named ``model.onnx.json`` (not ``model.json``) so that exporting next to a
checkpoint ``model.safetensors`` can never overwrite that checkpoint's own sidecar.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._io import write_bytes, write_json
from .errors import UsageError
from .inference import DEFAULT_INPUT, OnnxPredictor
from .inference.onnx_predictor import META_KEY

__all__ = [
    "FORMATS",
    "META_KEY",
    "check_export_paths",
    "check_onnx_exporter",
    "export_checkpoint",
    "export_model",
    "jit_quiet",
    "max_abs_diff",
    "run_exported",
    "sidecar_for",
]

FORMATS = ("onnx", "torchscript")
DEFAULT_OPSET = 18  # the lowest opset the torch.export-based exporter emits without conversion
# META_KEY: the ONNX metadata_props key / TorchScript extra file holding the JSON metadata.


def sidecar_for(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".json")


def _export_meta(meta: dict[str, Any], fmt: str, opset: int | None) -> dict[str, Any]:
    """What an exported file needs to be used alone: the model, its input scaling, its scores."""
    metrics = meta.get("metrics") or {}
    return {
        "format": f"digitnet-{fmt}",
        "model": meta.get("model"),
        "model_args": meta.get("model_args"),
        "input": meta.get("input") or dict(DEFAULT_INPUT),
        # The calibration temperature travels too: every predictor applies it.
        "calibration": meta.get("calibration"),
        "recipe": meta.get("recipe"),
        # The checkpoint this file was exported from (its save_id), so a copy can be traced.
        "source_save_id": meta.get("save_id"),
        "metrics": {k: metrics[k] for k in ("test_accuracy", "test_loss", "epoch") if k in metrics},
        "opset": opset,
        "inputs": {"name": "input", "shape": ["batch", 1, 28, 28], "dtype": "float32"},
        "outputs": {"name": "logits", "shape": ["batch", 10], "dtype": "float32"},
    }


@contextlib.contextmanager
def _quiet_exporter():
    # The torch.export-based ONNX exporter logs progress lines and optional-dependency notes
    # ("torchvision is not installed") and its internals raise Deprecation/FutureWarnings about
    # torch's own APIs (torch 2.13). None of it is actionable for a user exporting a digit model.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            with contextlib.redirect_stdout(io.StringIO()):
                yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def jit_quiet():
    """TorchScript without torch 2.13's "``torch.jit.*`` is deprecated" DeprecationWarnings.

    TorchScript still works and is asked for by name (``--format torchscript``); the warning
    tells users to move to torch.export, which is what the ONNX path already uses.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit.* (is )?deprecated", category=DeprecationWarning
        )
        yield


def _onnx_proto(model, opset: int):
    import torch

    example = torch.zeros(2, 1, 28, 28)
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporter():
        prog = torch.onnx.export(
            model,
            (example,),
            None,
            dynamo=True,
            input_names=["input"],
            output_names=["logits"],
            opset_version=opset,
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
    if prog is None:  # only when exporting to a file, which this never asks for
        raise RuntimeError("torch.onnx.export returned no program")
    proto = prog.model_proto
    _strip_debug_metadata(proto)
    return proto


def _strip_debug_metadata(proto) -> None:
    """Drop the exporter's per-node metadata (Python stack traces with the exporting machine's
    file paths, module names): the model does not need it and should not carry it."""
    graphs = [proto.graph] + [f for f in proto.functions]
    for g in graphs:
        for node in g.node:
            del node.metadata_props[:]
    g = proto.graph
    for coll in (g.input, g.output, g.value_info, g.initializer):
        for item in coll:
            if hasattr(item, "metadata_props"):
                del item.metadata_props[:]
    del g.metadata_props[:]


def export_model(
    model, meta: dict[str, Any], fmt: str, out: str | os.PathLike[str], opset: int | None = None
) -> Path:
    """Write ``model`` (an eval-mode ``nn.Module``) as ``fmt`` to ``out`` atomically, with its
    sidecar."""
    import torch

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose from: {', '.join(FORMATS)}")
    out = Path(out)
    model = model.eval().to("cpu", memory_format=torch.contiguous_format)
    if fmt == "onnx":
        opset = opset or DEFAULT_OPSET
        info = _export_meta(meta, fmt, opset)
        proto = _onnx_proto(model, opset)
        for k, v in (
            (META_KEY, json.dumps(info)),
            ("model", str(info["model"])),
            ("input", json.dumps(info["input"])),
        ):
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        proto.producer_name = "digitnet"
        data = proto.SerializeToString()
    else:
        if opset is not None:
            raise UsageError("--opset applies to ONNX export only")
        info = _export_meta(meta, fmt, None)
        with torch.no_grad(), jit_quiet():
            # Tracing (not scripting): every digitnet model is a plain feed-forward graph, and a
            # trace of an eval-mode model has no data-dependent branches to lose.
            scripted = torch.jit.trace(model, torch.zeros(2, 1, 28, 28))
            buf = io.BytesIO()
            torch.jit.save(scripted, buf, _extra_files={f"{META_KEY}.json": json.dumps(info)})
        data = buf.getvalue()
    write_bytes(out, data)
    write_json(sidecar_for(out), info)
    return out


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return (
        float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
        if np.size(a)
        else 0.0
    )


def run_exported(path: str | os.PathLike[str], fmt: str, x: np.ndarray) -> np.ndarray:
    """Logits of an exported file for normalised input ``x`` float32 ``(N, 1, 28, 28)``."""
    if fmt == "onnx":
        from .inference import load_predictor

        pred = load_predictor(path, backend="onnx")
        assert isinstance(pred, OnnxPredictor)
        return pred.logits(x)
    import torch

    with jit_quiet():
        m = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode(), jit_quiet():
        return m(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()


def check_onnx_exporter() -> None:
    """Raise a one-line ``UsageError`` naming the extra when the ONNX exporter's pieces
    (``onnx``, ``onnxscript``) are not installed; ONNX Runtime alone runs models, not exports."""
    missing = []
    for mod in ("onnx", "onnxscript"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise UsageError(f"ONNX export needs {' and '.join(missing)}: pip install 'digitnet[onnx]'")


def check_export_paths(
    checkpoint: str | os.PathLike[str] | None, out: str | os.PathLike[str]
) -> None:
    """Refuse an output that would overwrite the source checkpoint or its sidecar (``out``
    itself, or the ``out.json`` sidecar written beside it)."""
    from .checkpoint import sidecar_path
    from .inference import bundled_model_path

    src = Path(checkpoint) if checkpoint is not None else bundled_model_path()
    protected = {src.resolve(), sidecar_path(src).resolve()}
    for target in (Path(out), sidecar_for(out)):
        if target.resolve() in protected:
            raise UsageError(
                f"--out {out}: would overwrite the checkpoint being exported "
                f"({target}); choose another file"
            )


def export_checkpoint(
    checkpoint: str | os.PathLike[str] | None,
    fmt: str,
    out: str | os.PathLike[str],
    opset: int | None = None,
    check_images: np.ndarray | None = None,
) -> dict[str, Any]:
    """Export a checkpoint (None: the bundled model); check the file against the eager model.

    ``check_images``: float32 ``(N, 28, 28)`` in [0, 1] used for the parity check (default:
    64 seeded random images, which exercise every weight but are not digits). The parity check
    compares the logits of the predictor ``load_predictor`` gives for the checkpoint with the
    exported file's. Returns a report:
    ``{"out", "format", "model", "bytes", "max_abs_diff", "n_checked"}``.
    """
    from .inference import TorchPredictor, load_predictor, normalise

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose from: {', '.join(FORMATS)}")
    check_export_paths(checkpoint, out)
    if fmt == "onnx":
        check_onnx_exporter()
    pred = load_predictor(checkpoint, backend="torch")
    assert isinstance(pred, TorchPredictor)
    path = export_model(pred.model, pred.meta, fmt, out, opset)
    if check_images is None:
        check_images = np.random.default_rng(0).random((64, 28, 28), dtype=np.float32)
    x = normalise(pred.images(check_images), pred.input)[:, None]
    ref = pred.logits(x)
    got = run_exported(path, fmt, x)
    return {
        "out": str(path),
        "format": fmt,
        "model": pred.name,
        "bytes": path.stat().st_size,
        "max_abs_diff": max_abs_diff(ref, got),
        "n_checked": len(x),
    }
