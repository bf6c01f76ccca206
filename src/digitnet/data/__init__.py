"""MNIST data: IDX files (read/write with full validation), finding and loading, downloading.

Everything here raises :class:`digitnet.errors.DataError` (or ``DownloadError``) with one line
naming the file and the problem. Importing this package does not import torch.
"""

from __future__ import annotations

from .download import DEFAULT_MIRRORS, OFFICIAL_FILES, DownloadResult, download_mnist
from .idx import read_idx, read_idx_header, read_images, read_labels, write_idx
from .mnist import describe_data, find_mnist_files, load_mnist, resolve_data_dir

__all__ = [
    "read_idx",
    "read_idx_header",
    "read_images",
    "read_labels",
    "write_idx",
    "resolve_data_dir",
    "find_mnist_files",
    "load_mnist",
    "describe_data",
    "download_mnist",
    "DownloadResult",
    "OFFICIAL_FILES",
    "DEFAULT_MIRRORS",
]
