"""Foreign weights: ``torch.save`` files and bare state_dicts, matched to a registered model.

A ``.pt``/``.pth`` file is read with ``torch.load(weights_only=True)`` (no code runs), after its
zip members' uncompressed sizes are checked; every tensor must be dense, on the CPU and of a
dtype a digit model uses. ``_match_model`` finds the registered model the tensors fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ._header import _container, _describe, _read_bytes

MAX_PT_UNCOMPRESSED = 256 << 20  # a .pt archive's members, uncompressed (MAX_PARAMS float32 fits)
_TORCH_FLOATS = ("float32", "float16", "bfloat16", "float64")

_TORCH_INTS = ("int64", "int32", "int16", "int8", "uint8", "bool")


def _check_pt_archive(p: Path, data: bytes) -> None:
    """A torch.save zip: refuse by the members' uncompressed sizes, before torch inflates them
    (a 1 MB deflated member can hold a 1 GB tensor of zeros)."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CheckpointError(
            f"{p}: not a PyTorch checkpoint: broken zip archive ({str(exc)[:80]})"
        ) from None
    total = sum(i.file_size for i in infos)
    if len(infos) > 100_000 or total > MAX_PT_UNCOMPRESSED:
        raise CheckpointError(
            f"{p}: its archive unpacks to {total:,} bytes in {len(infos):,} members, too large "
            f"for a digit model (limit {MAX_PT_UNCOMPRESSED:,} bytes); refused before unpacking"
        )


def _check_plain_tensor(p: Path, k: str, t: Any) -> None:
    import torch

    if t.layout != torch.strided:
        raise CheckpointError(
            f"{p}: tensor {k[:60]!r} is stored as {str(t.layout).removeprefix('torch.')}; "
            "only dense tensors are accepted"
        )
    if t.device.type != "cpu":
        raise CheckpointError(
            f"{p}: tensor {k[:60]!r} is on device {t.device.type!r} and holds no data"
        )
    dt = str(t.dtype).removeprefix("torch.")
    if dt not in _TORCH_FLOATS + _TORCH_INTS:
        raise CheckpointError(
            f"{p}: tensor {k[:60]!r} has dtype {dt}, which a digit model does not use"
        )


def _load_torch_file(p: Path, data: bytes | None = None) -> dict[str, Any]:
    """A plain PyTorch state_dict (.pt/.pth), read with ``weights_only=True`` (no code runs)."""
    import io
    import pickle

    import torch

    if data is None:
        data = _read_bytes(p)  # regular file, size checks with clear messages
    kind = _container(data)
    if kind == "unknown":
        raise CheckpointError(
            f"{p}: not a PyTorch checkpoint: neither a torch.save zip archive nor a pickle "
            f"({_describe(data)})"
        )
    if kind == "zip":
        _check_pt_archive(p, data)
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
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
    except MemoryError:
        raise CheckpointError(f"{p}: not enough memory to unpack this PyTorch file") from None
    except Exception as exc:
        # Only torch's unpickler runs in this block: any exception (RuntimeError, EOFError,
        # struct.error, ...) means the file is broken, not a bug of ours.
        msg = (str(exc).splitlines() or [""])[0] or type(exc).__name__
        raise CheckpointError(f"{p}: not a PyTorch checkpoint: {msg[:160]}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(v, torch.Tensor) for v in obj.values())
    ):
        raise CheckpointError(
            f"{p}: not a state_dict (expected a mapping of parameter names to tensors)"
        )
    for k, v in obj.items():
        _check_plain_tensor(p, str(k), v)
    return obj


def _match_model(p: Path, tensors: dict[str, Any], model_name: str | None):
    """Find the registered model whose parameter names (or, failing that, shapes in order) fit."""
    from ..models import create_model, list_models

    names = [model_name] if model_name else list_models()
    for name in names:
        model = create_model(name)
        ref = model.state_dict()
        if set(ref) == set(tensors) and all(
            tuple(ref[k].shape) == tuple(tensors[k].shape) for k in ref
        ):
            return model, tensors
    for name in names:  # same layers under other names (someone else's training script)
        model = create_model(name)
        ref = model.state_dict()
        if len(ref) == len(tensors) and all(
            tuple(a.shape) == tuple(b.shape)
            for a, b in zip(ref.values(), tensors.values(), strict=True)
        ):
            return model, dict(zip(ref.keys(), tensors.values(), strict=True))
    wanted = f"model {model_name!r}" if model_name else "any registered model"
    raise CheckpointError(
        f"{p}: its {len(tensors)} tensors do not match {wanted} (names and shapes differ)"
    )
