"""digitnet: handwritten digit recognition with PyTorch.

The public API is imported lazily so that ``import digitnet`` (and the CLI) stays fast; torch is
loaded the first time a name that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "DigitnetError": "digitnet.errors",
    "DataError": "digitnet.errors",
    "ImageError": "digitnet.errors",
    "CheckpointError": "digitnet.errors",
    "read_idx": "digitnet.data.idx",
    "write_idx": "digitnet.data.idx",
    "load_mnist": "digitnet.data.mnist",
    "create_model": "digitnet.models",
    "list_models": "digitnet.models",
    "register_model": "digitnet.models",
    "TrainConfig": "digitnet.engine.config",
    "fit": "digitnet.engine.fit",
    "evaluate": "digitnet.engine.fit",
    "save_checkpoint": "digitnet.checkpoint",
    "load_checkpoint": "digitnet.checkpoint",
    "Predictor": "digitnet.inference",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'digitnet' has no attribute {name!r}")
