"""Checkpoints: safetensors weights + JSON metadata; loading never executes code.

A checkpoint is one ``.safetensors`` file that holds the weights and, embedded in its header,
the JSON metadata (model name and arguments, input normalisation, recipe, metrics, data
description, library versions). A resumable checkpoint also holds the training state (optimizer,
schedule, RNG, position in the epoch) as tensors prefixed ``_train.``. Beside it, a ``.json``
sidecar repeats the metadata for people and records the sha256 of the weights file.

Crash safety: both files are written to temporary files and renamed into place, weights first.
The weights file alone is self-consistent (its metadata is inside it), so a crash between the two
renames leaves a loadable checkpoint: the sidecar's ``save_id`` then differs from the embedded
one and the stale sidecar is ignored. A sidecar with the same ``save_id`` but another sha256 means
the weights were altered, and loading is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import struct
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._io import atomic_write
from .errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "read_metadata", "load_training_state", "sidecar_path", "FORMAT"]

FORMAT = "digitnet-checkpoint"
FORMAT_VERSION = 1
TRAIN_PREFIX = "_train."
MAX_BYTES = 1 << 30  # no digit model is near 1 GiB; refuse before reading such a file into memory


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    return Path(path).with_suffix(".json")


def _versions() -> dict[str, str]:
    import numpy
    import torch

    from . import __version__

    return {"digitnet": __version__, "torch": torch.__version__, "numpy": numpy.__version__, "python": platform.python_version()}


def save_checkpoint(
    path: str | os.PathLike[str],
    model,
    meta: dict[str, Any],
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights and ``meta`` (plus optional resumable ``train_state``) atomically.

    ``train_state`` may hold tensors (``tensors``: name -> tensor) and JSON (``json``: dict).
    Returns the path of the weights file.
    """
    from safetensors.torch import save as st_save

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    core = model.module if hasattr(model, "module") else model  # DDP / compiled wrappers
    core = getattr(core, "_orig_mod", core)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in core.state_dict().items()}
    full_meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "save_id": uuid.uuid4().hex,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        **meta,
    }
    if train_state is not None:
        for k, v in train_state.get("tensors", {}).items():
            tensors[TRAIN_PREFIX + k] = v.detach().to("cpu").contiguous()
        full_meta["train_state"] = train_state.get("json", {})
        full_meta["resumable"] = True
    else:
        full_meta["resumable"] = False
    # safetensors refuses tensors that share storage (``.to("cpu")`` of a CPU tensor is the same
    # tensor); a clone gives each its own.
    blob = st_save({k: v.clone() for k, v in tensors.items()}, metadata={"digitnet": json.dumps(full_meta)})
    sha = hashlib.sha256(blob).hexdigest()
    with atomic_write(path, "wb") as fh:
        fh.write(blob)
    side = {k: v for k, v in full_meta.items() if k != "train_state"}
    side["sha256"] = sha
    side["weights_file"] = path.name
    with atomic_write(sidecar_path(path), "w") as fh:
        fh.write(json.dumps(side, indent=2) + "\n")
    return path


def _read_header(path: Path, data: bytes) -> dict[str, Any]:
    if len(data) == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes)")
    if len(data) < 8:
        raise CheckpointError(f"{path}: not a safetensors file (only {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise CheckpointError(f"{path}: corrupt safetensors header: it claims {n} bytes but the file has {len(data) - 8} after the length field")
    try:
        header = json.loads(data[8 : 8 + n])
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{path}: corrupt safetensors header (not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    return header


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's metadata (embedded copy), without loading the weights."""
    p = Path(path)
    data = _read_bytes(p)
    header = _read_header(p, data)
    return _embedded_meta(p, header)


def _embedded_meta(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    raw = (header.get("__metadata__") or {}).get("digitnet")
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        raise CheckpointError(f"{path}: corrupt digitnet metadata in the safetensors header") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: corrupt digitnet metadata in the safetensors header")
    return meta


def _read_bytes(p: Path) -> bytes:
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{p}: no such file") from None
    except OSError as exc:
        raise CheckpointError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if p.is_dir():
        raise CheckpointError(f"{p}: is a folder, not a checkpoint file")
    if size > MAX_BYTES:
        raise CheckpointError(f"{p}: {size} bytes is too large for a digit model (limit {MAX_BYTES})")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{p}: cannot read: {exc.strerror or exc}") from None


def _load_safetensors(p: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    data = _read_bytes(p)
    header = _read_header(p, data)
    meta = _embedded_meta(p, header)
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{p}: corrupt safetensors file: {str(exc).splitlines()[0]}") from None
    side = sidecar_path(p)
    if side.exists():
        try:
            side_meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            side_meta = None  # a broken sidecar is only a broken copy; the embedded metadata rules
        if isinstance(side_meta, dict) and side_meta.get("save_id") == meta.get("save_id") and "sha256" in side_meta:
            actual = hashlib.sha256(data).hexdigest()
            if side_meta["sha256"] != actual:
                raise CheckpointError(
                    f"{p}: sha256 {actual[:12]}... does not match {side.name} ({str(side_meta['sha256'])[:12]}...): the weights were altered or corrupted"
                )
    return tensors, meta


def _load_torch_file(p: Path) -> dict[str, Any]:
    """A plain PyTorch state_dict (.pt/.pth), read with ``weights_only=True`` (no code runs)."""
    import pickle

    import torch

    _read_bytes(p)  # existence, size and folder checks with clear messages
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message opens with paragraphs about its weights_only default and advice to
        # re-run with weights_only=False (the unsafe thing); the line worth showing names what
        # the file asked to import ("Trying to load unsupported GLOBAL posix.mkdir ..." in torch
        # 2.13, "Unsupported global: GLOBAL ..." in earlier versions).
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        named = [ln for ln in lines if "GLOBAL" in ln or "WeightsUnpickler error" in ln]
        first = (named or lines or ["unsafe pickle"])[0].removeprefix("WeightsUnpickler error: ")
        raise CheckpointError(
            f"{p}: refused: the file needs more than plain weights to load (it may run code): {first[:160]}"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, ImportError, TypeError, KeyError, IndexError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{p}: not a readable PyTorch weights file: {msg[:160]}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{p}: not a state_dict (expected a mapping of parameter names to tensors)")
    return obj


def _match_model(p: Path, tensors: dict[str, Any], model_name: str | None):
    """Find the registered model whose parameter names (or, failing that, shapes in order) fit."""
    from .models import create_model, list_models

    names = [model_name] if model_name else list_models()
    for name in names:
        model = create_model(name)
        ref = model.state_dict()
        if set(ref) == set(tensors) and all(tuple(ref[k].shape) == tuple(tensors[k].shape) for k in ref):
            return model, tensors
    for name in names:  # same layers under other names (someone else's training script)
        model = create_model(name)
        ref = model.state_dict()
        if len(ref) == len(tensors) and all(tuple(a.shape) == tuple(b.shape) for a, b in zip(ref.values(), tensors.values())):
            return model, dict(zip(ref.keys(), tensors.values()))
    wanted = f"model {model_name!r}" if model_name else "any registered model"
    raise CheckpointError(f"{p}: its {len(tensors)} tensors do not match {wanted} (names and shapes differ)")


def load_checkpoint(path: str | os.PathLike[str], device: str = "cpu", model_name: str | None = None):
    """Load a checkpoint into its model; return ``(model in eval mode, metadata)``.

    ``.safetensors`` files are ours (model rebuilt from the metadata); ``.pt``/``.pth`` files are
    read with ``torch.load(weights_only=True)`` and matched to a registered model.
    """
    from .models import create_model

    p = Path(path)
    if p.suffix.lower() in (".pt", ".pth", ".bin"):
        tensors = _load_torch_file(p)
        model, tensors = _match_model(p, tensors, model_name)
        meta: dict[str, Any] = {
            "model": model.model_name,
            "model_args": _asdict(model.config),
            # A foreign state_dict says nothing of its input scaling; the course report's cnn.pth
            # was trained on raw 0..255 pixels, everything else we know of on standardised input.
            "input": {"kind": "raw255"} if model.model_name == "course" else {"kind": "standardize", "mean": 0.1307, "std": 0.3081},
            "source": "pytorch-state-dict",
        }
    else:
        tensors, meta = _load_safetensors(p)
        if meta.get("format") != FORMAT:
            if not meta:
                # A bare safetensors state_dict from elsewhere: match it like a .pt file.
                model, tensors = _match_model(p, tensors, model_name)
                meta = {"model": model.model_name, "model_args": _asdict(model.config), "input": {"kind": "standardize", "mean": 0.1307, "std": 0.3081}, "source": "safetensors-state-dict"}
            else:
                raise CheckpointError(f"{p}: not a digitnet checkpoint (format {meta.get('format')!r})")
        else:
            name = meta.get("model")
            args = meta.get("model_args") or {}
            if not isinstance(name, str) or not isinstance(args, dict):
                raise CheckpointError(f"{p}: metadata lacks the model name or its arguments")
            try:
                model = create_model(name, **args)
            except Exception as exc:  # unknown model or bad args: the file does not fit this version
                raise CheckpointError(f"{p}: cannot rebuild model {name!r}: {exc}") from None
        tensors = {k: v for k, v in tensors.items() if not k.startswith(TRAIN_PREFIX)}
    _validate_and_load(p, model, tensors)
    model.to(device).eval()
    return model, meta


def _asdict(cfg) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(cfg)


def _validate_and_load(p: Path, model, tensors: dict[str, Any]) -> None:
    import torch

    ref = model.state_dict()
    missing = sorted(set(ref) - set(tensors))
    extra = sorted(set(tensors) - set(ref))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}")
        raise CheckpointError(f"{p}: weights do not fit model {model.model_name!r}: {'; '.join(parts)}")
    for k, r in ref.items():
        t = tensors[k]
        if tuple(t.shape) != tuple(r.shape):
            raise CheckpointError(f"{p}: {k} has shape {tuple(t.shape)}, model {model.model_name!r} needs {tuple(r.shape)}")
        if r.is_floating_point():
            if not t.is_floating_point():
                raise CheckpointError(f"{p}: {k} has dtype {t.dtype}, expected a floating-point tensor")
            if not bool(torch.isfinite(t).all()):
                raise CheckpointError(f"{p}: {k} contains NaN or infinite values")
        elif t.dtype != r.dtype and t.is_floating_point():
            raise CheckpointError(f"{p}: {k} has dtype {t.dtype}, expected {r.dtype}")
    model.load_state_dict({k: tensors[k].to(ref[k].dtype) for k in ref})


def load_training_state(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """For ``--resume``: ``(model tensors, train-state tensors, metadata)`` of a resumable checkpoint."""
    p = Path(path)
    tensors, meta = _load_safetensors(p)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a digitnet checkpoint, cannot resume from it")
    if not meta.get("resumable"):
        raise CheckpointError(f"{p}: holds final weights only, not a resumable training state (use the run's last.safetensors)")
    model_t = {k: v for k, v in tensors.items() if not k.startswith(TRAIN_PREFIX)}
    state_t = {k[len(TRAIN_PREFIX):]: v for k, v in tensors.items() if k.startswith(TRAIN_PREFIX)}
    import torch

    for k, v in model_t.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise CheckpointError(f"{p}: {k} contains NaN or infinite values")
    return model_t, state_t, meta


def json_safe(obj: Any) -> Any:
    """Floats that JSON cannot hold (NaN, inf) become None; used for metrics in metadata."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
