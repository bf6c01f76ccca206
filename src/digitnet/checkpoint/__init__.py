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

Where things live: ``_schema`` (the format's names, the metadata schema, JSON limits),
``_header`` (what a file is by its first bytes, the safetensors header), ``_weights`` (tensor
table and values against the model), ``_torchfile`` (``torch.save`` files and foreign
state_dicts), ``_save`` (writing) and ``_load`` (the loaders, sidecar and tamper checks).
"""

from __future__ import annotations

# The public API is ``__all__``; the schema and header checks are also importable from here (the
# tests and the engine use them), hence the explicit ``X as X`` re-exports.
from ._header import _embedded_meta as _embedded_meta
from ._header import _read_header as _read_header
from ._header import read_metadata
from ._load import load_checkpoint, load_training_state
from ._save import WRITTEN_KEYS, save_checkpoint
from ._schema import FORMAT, sidecar_path
from ._schema import FORMAT_VERSION as FORMAT_VERSION
from ._schema import INPUT_KINDS as INPUT_KINDS
from ._schema import MAX_JSON_DEPTH as MAX_JSON_DEPTH
from ._schema import TRAIN_PREFIX as TRAIN_PREFIX
from ._schema import check_input_spec as check_input_spec
from ._schema import check_metadata as check_metadata
from ._schema import json_safe as json_safe
from ._weights import MAX_ABS_WEIGHT as MAX_ABS_WEIGHT
from ._weights import check_weights as check_weights

__all__ = [
    "FORMAT",
    "WRITTEN_KEYS",
    "load_checkpoint",
    "load_training_state",
    "read_metadata",
    "save_checkpoint",
    "sidecar_path",
]
