"""Is this crop one digit or two touching digits? A small network that answers only that.

The digit network has no "not a digit" answer: two touching digits squeezed into its 20x20 box
often read as one confident digit ("16" as a 6 at 0.99, "56" as an 8), so its confidence cannot
tell a merge from a digit. This detector is trained for that question alone, on the reader's
own 28x28 crops (``to_mnist``) of single MNIST digits and allographs (stretched up to 1.8x as
wide, so wide 0s and 2s are singles) against two MNIST digits drawn overlapping by 0-4
columns (``python -m digitnet.engine.pair_detector``). The reader uses it to decide whether a
piece is worth splitting; the digits themselves are still read by the digit network.

The mark detector (``mark_probability``, weights ``marks.npz``, ``python -m
digitnet.engine.mark_detector``) is the same network trained for another question: is this crop
a digit at all, or the blob that uneven light on an empty page leaves when the reader looks at
an image it found blank a second time, in a frame (``_ink.framed_layer``)?

Both run in NumPy (two 3x3/5x5 convolutions as matrix products and one hidden layer), so
reading keeps needing no torch; about 0.1 ms a crop.
"""

from __future__ import annotations

import functools
import io
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import CheckpointError, one_line

__all__ = [
    "MARK_WEIGHTS",
    "PAIR_WEIGHTS",
    "mark_probability",
    "pair_probability",
    "upright_bar",
]

PAIR_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "pairs.npz"
MARK_WEIGHTS = PAIR_WEIGHTS.with_name("marks.npz")
# The layers, in order, and the shapes their weights must have.
_SHAPES = {
    "conv1.weight": (16, 1, 5, 5),
    "conv1.bias": (16,),
    "conv2.weight": (32, 16, 3, 3),
    "conv2.bias": (32,),
    "fc1.weight": (64, 32 * 7 * 7),
    "fc1.bias": (64,),
    "fc2.weight": (1, 64),
    "fc2.bias": (1,),
}


@functools.cache
def _weights(path: Path = PAIR_WEIGHTS) -> dict[str, np.ndarray]:
    """The detector's arrays, checked; a missing or damaged file (a broken install) is one
    ``CheckpointError`` line, never a traceback from the middle of a reading."""
    try:
        # (Read first: np.load leaves its file open when a damaged archive makes it raise.)
        with np.load(io.BytesIO(Path(path).read_bytes()), allow_pickle=False) as f:
            w = {k: np.asarray(f[k], np.float32) for k in _SHAPES}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{path}: the reader's detector weights cannot be read ({one_line(exc)}); "
            "reinstall digitnet"
        ) from None
    for k, shape in _SHAPES.items():
        if w[k].shape != shape:
            raise CheckpointError(f"{path}: {k} has shape {w[k].shape}, expected {shape}")
    return w


def _conv_relu_pool(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int) -> np.ndarray:
    """(N, H, W, C) -> convolution ('same'), ReLU, 2x2 max-pool -> (N, H/2, W/2, O)."""
    n, h, ww, c = x.shape
    o, _, k, _ = w.shape
    xp = np.zeros((n, h + 2 * pad, ww + 2 * pad, c), np.float32)
    xp[:, pad : pad + h, pad : pad + ww] = x
    cols = np.ascontiguousarray(sliding_window_view(xp, (k, k), axis=(1, 2)))
    y = cols.reshape(n * h * ww, c * k * k) @ w.reshape(o, c * k * k).T
    y += b
    np.maximum(y, 0.0, out=y)
    return y.reshape(n, h // 2, 2, ww // 2, 2, o).max(axis=(2, 4))


def pair_probability(images: np.ndarray, path: Path = PAIR_WEIGHTS) -> np.ndarray:
    """P(two touching digits) for each 28x28 crop (float, 1 = ink), shape (N,) float32."""
    return _probability(images, path)


def mark_probability(images: np.ndarray, path: Path = MARK_WEIGHTS) -> np.ndarray:
    """P(not a digit: light and shadow on empty paper) for each 28x28 crop, shape (N,)."""
    return _probability(images, path)


def upright_bar(crop: np.ndarray) -> bool:
    """Is the crop's ink an upright bar (under half as wide as tall)? A sliver of shadow and a
    1 are drawn alike there, so the mark detector is neither trained on nor asked about it."""
    rows, cols = np.flatnonzero(crop.max(1) > 0.1), np.flatnonzero(crop.max(0) > 0.1)
    return rows.size > 0 and (cols[-1] - cols[0] + 1) < 0.5 * (rows[-1] - rows[0] + 1)


def _probability(images: np.ndarray, path: Path) -> np.ndarray:
    x = np.asarray(images, np.float32)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"expected (N, 28, 28) crops, got shape {x.shape}")
    if len(x) == 0:
        return np.zeros(0, np.float32)
    w = _weights(path)
    z = np.empty(len(x), np.float32)
    with _blas().limit(limits=1, user_api="blas"):
        # In chunks: the unfolded inputs of the convolutions take 170 KB a crop, and one block
        # of images can bring a thousand crops (64 pieces an image at most, and their joins).
        for i in range(0, len(x), _CHUNK):
            z[i : i + _CHUNK] = _logits(x[i : i + _CHUNK], w)
    return (1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))).astype(np.float32)


_CHUNK = 128


def _logits(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    h = _conv_relu_pool(x[..., None], w["conv1.weight"], w["conv1.bias"], 2)
    h = _conv_relu_pool(h, w["conv2.weight"], w["conv2.bias"], 1)
    h = h.transpose(0, 3, 1, 2).reshape(len(x), -1)  # torch's flatten order (C, H, W)
    h = np.maximum(h @ w["fc1.weight"].T + w["fc1.bias"], 0.0)
    return (h @ w["fc2.weight"].T + w["fc2.bias"])[:, 0]


@functools.cache
def _blas():
    """The BLAS thread pools of this process. The products above are small, and reading
    already runs one process per core (``read_files``) beside the network's own threads:
    BLAS threads on top fought them for the cores (2 cores: a folder read at 207 images/s
    instead of 289, one image in 8.0 ms instead of 5.9)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
