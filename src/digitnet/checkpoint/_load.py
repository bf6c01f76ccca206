"""The loaders: ``load_checkpoint``, ``load_training_state`` and the sidecar / tamper checks.

Order of the checks, for any file: the file (regular, size) -> the container (what the first
bytes say it is) -> the header (schema) -> the metadata (schema, model arguments, parameter
count counted on the meta device) -> the tensor table (names, shapes, dtypes against the model
built on the meta device) -> only then the tensor bytes are decoded, checked (finite, sane
magnitudes, BatchNorm variances >= 0) and copied into a model of the right size.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..inference.spec import DEFAULT_INPUT as _DEFAULT_INPUT  # the one default input spec
from ._header import _container, _embedded_meta, _read_bytes, _read_header, _tensor_bytes
from ._schema import TRAIN_PREFIX, _json, sidecar_path
from ._torchfile import _load_torch_file, _match_model
from ._weights import _check_classes, _check_table, _meta_model, _validate_and_load, check_weights

MAX_SIDECAR_BYTES = 16 << 20


def _check_sidecar(p: Path, data: bytes, meta: dict[str, Any]) -> None:
    """Tampering checks. The sidecar's sha256 covers the whole file when its save_id is the
    embedded one (a sidecar with another save_id is a stale copy left by a crash between the two
    renames). The embedded ``tensors_sha256`` (and the sidecar's copy of it) covers the tensor
    bytes themselves, so editing the embedded save_id no longer hides altered weights."""
    from .._io import read_user_file
    from ..errors import DigitnetError

    side = sidecar_path(p)
    side_meta: Any = None
    if side.exists():
        try:
            side_meta = _json(
                p,
                read_user_file(side, error=CheckpointError, max_bytes=MAX_SIDECAR_BYTES),
                "sidecar",
            )
        except DigitnetError:
            side_meta = None  # a broken sidecar is only a broken copy; the embedded metadata rules
    if (
        isinstance(side_meta, dict)
        and side_meta.get("save_id") == meta.get("save_id")
        and "sha256" in side_meta
    ):
        actual = hashlib.sha256(data).hexdigest()
        if side_meta["sha256"] != actual:
            raise CheckpointError(
                f"{p}: sha256 {actual[:12]}... does not match {side.name} ({str(side_meta['sha256'])[:12]}...): the weights were altered or corrupted"
            )
    wanted = meta.get("tensors_sha256")
    if isinstance(wanted, str):
        actual = hashlib.sha256(_tensor_bytes(data)).hexdigest()
        if actual != wanted:
            raise CheckpointError(
                f"{p}: the tensor data's sha256 {actual[:12]}... does not match the one recorded "
                f"at save time ({wanted[:12]}...): the weights were altered or corrupted"
            )


def _load_safetensors(
    p: Path, data: bytes | None = None, *, model=None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decode a safetensors file. With ``model`` (a meta-device model) the tensor table is checked
    against it before any tensor is decoded."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    if data is None:
        data = _read_bytes(p)
    header = _read_header(p, data)
    meta = _embedded_meta(p, header)
    if meta:
        if model is None:
            model = _meta_model(meta["model"], meta.get("model_args") or {})
        _check_table(p, header, model)
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError, MemoryError) as exc:
        raise CheckpointError(
            f"{p}: corrupt safetensors file: {(str(exc).splitlines() or [type(exc).__name__])[0]}"
        ) from None
    _check_sidecar(p, data, meta)
    return tensors, meta


def load_checkpoint(
    path: str | os.PathLike[str],
    device: str = "cpu",
    model_name: str | None = None,
    num_classes: int | None = 10,
):
    """Load a checkpoint into its model; return ``(model in eval mode, metadata)``.

    What the file is comes from its first bytes, not its name: our ``.safetensors`` files (model
    rebuilt from the schema-checked metadata), bare safetensors state_dicts, and ``torch.save``
    files (read with ``torch.load(weights_only=True)`` and matched to a registered model).
    ``num_classes`` (10 for digits; ``None`` accepts any) is checked before the weights are read.
    """
    from ..models import create_model

    p = Path(path)
    data = _read_bytes(p)
    if _container(data) in ("zip", "pickle") or (
        p.suffix.lower() in (".pt", ".pth", ".bin") and _container(data) == "unknown"
    ):
        tensors = _load_torch_file(p, data)
        model, tensors = _match_model(p, tensors, model_name)
        meta: dict[str, Any] = {
            "model": model.model_name,
            "model_args": _asdict(model.config),
            # A foreign state_dict says nothing of its input scaling; the course report's cnn.pth
            # was trained on raw 0..255 pixels, everything else we know of on standardised input.
            "input": {"kind": "raw255"} if model.model_name == "course" else dict(_DEFAULT_INPUT),
            "source": "pytorch-state-dict",
        }
    else:
        header = _read_header(p, data)
        meta = _embedded_meta(p, header)
        if not meta:
            # A bare safetensors state_dict from elsewhere: match it like a .pt file.
            tensors, _ = _load_safetensors(p, data)
            model, tensors = _match_model(p, tensors, model_name)
            meta = {
                "model": model.model_name,
                "model_args": _asdict(model.config),
                "input": dict(_DEFAULT_INPUT),
                "source": "safetensors-state-dict",
            }
        else:
            ghost = _meta_model(meta["model"], meta.get("model_args") or {})
            _check_classes(p, ghost, num_classes)
            tensors, meta = _load_safetensors(p, data, model=ghost)
            try:
                model = create_model(meta["model"], **(meta.get("model_args") or {}))
            except Exception as exc:  # the schema passed; anything left is the file's
                raise CheckpointError(
                    f"{p}: cannot rebuild model {meta['model']!r}: {exc}"
                ) from None
        tensors = {k: v for k, v in tensors.items() if not k.startswith(TRAIN_PREFIX)}
    _check_classes(p, model, num_classes)
    _validate_and_load(p, model, tensors)
    model.to(device).eval()
    return model, meta


def _asdict(cfg) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(cfg)


def load_training_state(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """For ``--resume``: ``(model tensors, train-state tensors, metadata)`` of a resumable checkpoint."""
    p = Path(path)
    data = _read_bytes(p)
    if _container(data) in ("zip", "pickle"):
        raise CheckpointError(
            f"{p}: is a PyTorch (torch.save) file, not a digitnet training checkpoint; "
            "resume from a run's last.safetensors"
        )
    header = _read_header(p, data)
    meta = _embedded_meta(p, header)
    if not meta:
        raise CheckpointError(f"{p}: not a digitnet checkpoint, cannot resume from it")
    if not meta.get("resumable"):
        raise CheckpointError(
            f"{p}: holds final weights only, not a resumable training state (use the run's last.safetensors)"
        )
    tensors, meta = _load_safetensors(p, data)
    model_t = {k: v for k, v in tensors.items() if not k.startswith(TRAIN_PREFIX)}
    state_t = {k[len(TRAIN_PREFIX) :]: v for k, v in tensors.items() if k.startswith(TRAIN_PREFIX)}
    check_weights(p, model_t)
    return model_t, state_t, meta
