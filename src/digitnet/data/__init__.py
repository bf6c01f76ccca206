"""MNIST data: IDX files (read/write with full validation), finding and loading, downloading.

Everything here raises :class:`digitnet.errors.DataError` (or ``DownloadError``) with one line
naming the file and the problem. Names are imported lazily, so ``digitnet.data.idx`` does not pull
in the downloader's network modules, and only ``datasets`` and ``tensors`` import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "read_idx": "idx",
    "read_idx_header": "idx",
    "read_images": "idx",
    "read_labels": "idx",
    "write_idx": "idx",
    "resolve_data_dir": "mnist",
    "find_mnist_files": "mnist",
    "load_mnist": "mnist",
    "describe_data": "mnist",
    "Datasets": "datasets",
    "load_datasets": "datasets",
    "download_mnist": "download",
    "DownloadResult": "download",
    "OFFICIAL_FILES": "download",
    "DEFAULT_MIRRORS": "download",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
