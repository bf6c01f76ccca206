"""Writing a checkpoint: weights file first, then its sidecar, each atomically."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._io import atomic_write
from ._header import _tensor_bytes
from ._schema import FORMAT, FORMAT_VERSION, TRAIN_PREFIX, sidecar_path


def _versions() -> dict[str, str]:
    import numpy
    import torch

    from .. import __version__

    return {
        "digitnet": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


# Metadata keys save_checkpoint writes itself: a re-save of a loaded checkpoint drops them from
# the metadata it passes on (the new file gets its own save_id, time, hashes and name).
WRITTEN_KEYS = frozenset(
    {
        "format",
        "format_version",
        "save_id",
        "created",
        "versions",
        "resumable",
        "train_state",
        "tensors_sha256",
        "sha256",
        "weights_file",
    }
)


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
    tensors = {k: v.clone() for k, v in tensors.items()}
    # The tensor bytes' sha256, embedded: binds the metadata (and the sidecar's copy of it) to
    # these weights, so editing the weights and the save_id together is still detected. The tensor
    # section does not depend on the metadata, so a first serialisation gives its bytes.
    full_meta["tensors_sha256"] = hashlib.sha256(_tensor_bytes(st_save(tensors))).hexdigest()
    blob = st_save(tensors, metadata={"digitnet": json.dumps(full_meta)})
    sha = hashlib.sha256(blob).hexdigest()
    with atomic_write(path, "wb") as fh:
        fh.write(blob)
    side = {k: v for k, v in full_meta.items() if k != "train_state"}
    side["sha256"] = sha
    side["weights_file"] = path.name
    with atomic_write(sidecar_path(path), "w") as fh:
        fh.write(json.dumps(side, indent=2) + "\n")
    return path
