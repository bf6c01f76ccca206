"""The GUI's only doorway into the rest of digitnet (no Qt in here).

Everything the windows need from preprocessing, inference and checkpoints goes through these
few functions, so the widgets deal in plain results (``Reading``) and the library's API lives in
one place. The functions are safe to call from a worker thread: they touch no widget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageError

__all__ = [
    "IMAGE_SUFFIXES",
    "ModelInfo",
    "Reading",
    "bundled_model_path",
    "describe_model",
    "list_images",
    "load_predictor",
    "read_image_file",
    "read_ink",
    "target_from_name",
]

# What "Open folder" and drag and drop pick up; the rest of a folder is ignored.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm",
                  ".ppm")


@dataclass
class Reading:
    """What the network read in one drawing or image.

    ``text`` is the digits left to right ("" when nothing was found, ``message`` then says
    why); ``confidence`` the probability that the whole text is right (product of the
    per-digit top probabilities); ``probs`` ``(n, 10)``; ``inputs`` the ``(n, 28, 28)`` images
    the network saw; ``boxes`` ``(x0, y0, x1, y1)`` in pixels of ``image`` (or of the canvas).
    """

    text: str = ""
    confidence: float = 0.0
    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 10), np.float32))
    inputs: np.ndarray = field(default_factory=lambda: np.zeros((0, 28, 28), np.float32))
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    message: str | None = None
    # The image as analysed (uint8 grey, at most preprocess.WORK_MAX_SIDE pixels on its longer
    # side) for display; the boxes are in its pixels. None for drawings.
    image: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        return not self.text


@dataclass
class ModelInfo:
    """What the model picker shows about a checkpoint."""

    path: str | None  # None: the bundled model
    name: str
    test_accuracy: float | None

    def label(self) -> str:
        acc = "" if self.test_accuracy is None else f", test accuracy {100 * self.test_accuracy:.2f} %"
        where = "bundled" if self.path is None else Path(self.path).name
        return f"{self.name} ({where}{acc})"


def bundled_model_path() -> Path:
    from ..inference import bundled_model_path as where

    return where()


def load_predictor(path: str | Path | None = None) -> Any:
    """A ``Predictor`` for ``path`` (None: the bundled model) on the CPU.

    The CPU on purpose: a handful of 28x28 images is faster there than a round trip to a GPU,
    and it leaves the GPU to training.
    """
    from ..inference import Predictor

    return Predictor.load(None if path is None else str(path), device="cpu")


def describe_model(predictor: Any, path: str | Path | None) -> ModelInfo:
    """Name and test accuracy from the checkpoint's metadata (``meta["metrics"]``)."""
    acc = getattr(predictor, "test_accuracy", None)
    return ModelInfo(None if path is None else str(path), str(predictor.name),
                     None if acc is None else float(acc))


def _read(predictor: Any, gray: np.ndarray, label: str, image: np.ndarray | None) -> Reading:
    """Segment ``gray`` (float32 in [0, 1], 0 black) and classify every digit found."""
    from .. import preprocess

    # top_k=10: every digit's full distribution, for the probability bars.
    (r,) = preprocess.read_digits([gray], predictor, top_k=10, names=[label])
    if r.error is not None:
        raise ImageError(r.error)
    if not r.digits:
        return Reading(message=r.message or "no digit found", image=image)
    probs = np.zeros((len(r.digits), 10), np.float32)
    for i, d in enumerate(r.digits):
        for digit, p in d.top:
            probs[i, digit] = p
    boxes = [(float(x), float(y), float(x + w), float(y + h))
             for x, y, w, h in (d.box for d in r.digits)]
    conf = float(np.prod([d.confidence for d in r.digits]))
    return Reading(r.text, conf, probs, np.stack([d.image for d in r.digits]), boxes,
                   r.message, image)


def read_ink(predictor: Any, ink: np.ndarray) -> Reading:
    """Read the digits in a canvas ink map (uint8, 255 = ink, 0 = paper)."""
    if not np.any(ink > 0):
        return Reading(message="nothing drawn")  # blank: nothing to read, never guess a digit
    # As the drawing looks (dark ink on white paper): the plainest case for the ink detection.
    gray = 1.0 - ink.astype(np.float32) / 255.0
    return _read(predictor, gray, "drawing", None)


def read_image_file(predictor: Any, path: str | Path) -> Reading:
    """Load ``path`` and read its digits (raises ``ImageError`` for unreadable files).

    The file is decoded once, at analysis size; that same grey image is what the window shows,
    so the boxes line up with it exactly.
    """
    from .. import preprocess

    gray = preprocess.load_image(path, name=str(path), max_side=preprocess.WORK_MAX_SIDE)
    shown = (np.clip(gray, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return _read(predictor, gray, str(path), shown)


_LEADING_DIGITS = re.compile(r"^(\d+)")


def target_from_name(path: str | Path) -> str | None:
    """The digits a file name starts with (``7_anna.png`` -> "7"), as the course report names
    its test images; None when the name carries no target."""
    m = _LEADING_DIGITS.match(Path(path).stem)
    return m.group(1) if m else None


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, in natural order (``2.png`` before ``10.png``)."""
    p = Path(folder)
    try:
        files = [f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    except OSError as exc:
        raise ImageError(f"{p}: cannot read folder: {exc.strerror or exc}") from None

    def key(f: Path) -> list:
        return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", f.name)]

    return sorted(files, key=key)
