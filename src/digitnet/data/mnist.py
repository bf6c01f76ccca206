"""Finding and loading the MNIST files.

Where the data lives: ``--data-dir`` > ``$DIGITNET_DATA`` > the user's cache folder. Which names
are accepted: the official ``train-images-idx3-ubyte`` and the common ``train-images.idx3-ubyte``,
each with or without ``.gz`` (same for labels and ``t10k-*``). Any valid IDX file is accepted
whatever its item count; checksums are only enforced for downloads.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import DataError, UsageError
from .idx import read_images, read_labels

__all__ = [
    "ENV_VAR",
    "SPLITS",
    "candidate_names",
    "clear_cache",
    "default_data_dir",
    "describe_data",
    "file_md5",
    "find_mnist_files",
    "load_mnist",
    "resolve_data_dir",
]

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")
ENV_VAR = "DIGITNET_DATA"
_PREFIX = {"train": "train", "test": "t10k"}
# Parsed arrays kept per process. Four entries hold e.g. the real data plus a test fixture, and
# bound memory at a few hundred MB even if many folders are loaded in turn.
_CACHE_SIZE = 4


def default_data_dir() -> Path:
    """The per-user cache folder for MNIST on this platform (not created here)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        root = Path(base) if base else Path.home() / "AppData" / "Local"
        return root / "digitnet" / "mnist"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "digitnet" / "mnist"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    root = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return root / "digitnet" / "mnist"


def resolve_data_dir(cli_value: str | os.PathLike[str] | None) -> Path:
    """``--data-dir`` if given, else ``$DIGITNET_DATA`` if set, else the user cache folder."""
    if cli_value:
        return Path(cli_value).expanduser()
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return default_data_dir()


def _check_split(split: str) -> Split:
    if split not in _PREFIX:
        raise UsageError(f"unknown split {split!r}; expected 'train' or 'test'")
    return split  # type: ignore[return-value]


def candidate_names(split: str, kind: Literal["images", "labels"]) -> list[str]:
    """File names accepted for ``split``'s images or labels, in order of preference."""
    prefix = _PREFIX[_check_split(split)]
    ndim = 3 if kind == "images" else 1
    stems = [f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"]
    return [name for stem in stems for name in (f"{stem}.gz", stem)]


def _first_existing(folder: Path, names: list[str]) -> Path | None:
    for name in names:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _download_hint(folder: Path) -> str:
    return f"run `digitnet data download --data-dir {folder}` or copy the MNIST files there"


def find_mnist_files(data_dir: str | os.PathLike[str], split: str) -> tuple[Path, Path]:
    """Return ``(images, labels)`` paths for ``split`` in ``data_dir``; DataError if missing."""
    folder = Path(data_dir)
    image_names = candidate_names(split, "images")
    label_names = candidate_names(split, "labels")
    if not folder.exists():
        raise DataError(
            f"{folder}: MNIST folder does not exist (looked for "
            f"{', '.join(image_names + label_names)}); {_download_hint(folder)}"
        )
    if not folder.is_dir():
        raise DataError(f"{folder}: is a file, not the MNIST folder; {_download_hint(folder)}")
    images = _first_existing(folder, image_names)
    labels = _first_existing(folder, label_names)
    missing = [
        names for names, found in ((image_names, images), (label_names, labels)) if found is None
    ]
    if missing:
        looked = ", ".join(name for names in missing for name in names)
        raise DataError(
            f"{folder}: no MNIST {split} files found (looked for {looked}); "
            f"{_download_hint(folder)}"
        )
    return images, labels  # type: ignore[return-value]


# --- in-process cache ------------------------------------------------------------------------

_FileKey = tuple[str, int, int]
_cache: OrderedDict[tuple[_FileKey, _FileKey], tuple[np.ndarray, np.ndarray]] = OrderedDict()
_md5_cache: dict[_FileKey, str] = {}
_lock = threading.Lock()


def _file_key(path: Path) -> _FileKey:
    """Identity of a file's contents for caching: resolved path, mtime (ns) and size."""
    try:
        st = path.stat()
        return (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None


def clear_cache() -> None:
    """Forget every parsed array and checksum (tests; freeing memory)."""
    with _lock:
        _cache.clear()
        _md5_cache.clear()


def _load_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_images(images_path)
    labels = read_labels(labels_path)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images):,} images but {labels_path} holds "
            f"{len(labels):,} labels; the two files must match"
        )
    return images, labels.astype(np.int64)


def load_mnist(data_dir: str | os.PathLike[str], split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load ``split`` from ``data_dir``: ``(images np.uint8 (N, 28, 28), labels np.int64 (N,))``.

    Parsed arrays are cached in-process by (resolved path, mtime, size), so loading the same
    files again is a memory copy. Each call returns fresh writable arrays: a caller that edits
    them cannot corrupt what the next caller gets.
    """
    images, labels = _load_cached(*find_mnist_files(data_dir, split))
    return images.copy(), labels.copy()


def _load_cached(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The shared cached arrays: callers must not modify them (load_mnist hands out copies)."""
    key = (_file_key(images_path), _file_key(labels_path))
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
    if hit is None:
        hit = _load_pair(images_path, labels_path)
        with _lock:
            _cache[key] = hit
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return hit


def file_md5(path: str | os.PathLike[str]) -> str:
    """md5 of a file in hex (cached by path, mtime and size); DataError if unreadable."""
    p = Path(path)
    key = _file_key(p)
    with _lock:
        known = _md5_cache.get(key)
    if known is not None:
        return known
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from None
    with _lock:
        _md5_cache[key] = digest.hexdigest()
    return digest.hexdigest()


def describe_data(data_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Where the data is and what it holds, for checkpoint metadata and ``digitnet data info``.

    Loads (and so fully validates) both splits. Returns ``{"data_dir": str, "splits": {split:
    {"items": int, "images": {"path", "md5"}, "labels": {"path", "md5"}}}}``.
    """
    folder = Path(data_dir)
    splits: dict[str, Any] = {}
    for split in SPLITS:
        images_path, labels_path = find_mnist_files(folder, split)
        images, _ = _load_cached(images_path, labels_path)
        splits[split] = {
            "items": len(images),
            "images": {"path": str(images_path.resolve()), "md5": file_md5(images_path)},
            "labels": {"path": str(labels_path.resolve()), "md5": file_md5(labels_path)},
        }
    return {"data_dir": str(folder.resolve()), "splits": splits}
