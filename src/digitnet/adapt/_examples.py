"""The person's labelled examples: image files and folders in, 28x28 network inputs out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ImageError, UsageError


class NoExamplesError(ImageError):
    """No usable labelled example; ``skipped`` lists each image and why it was not used."""

    def __init__(self, message: str, skipped: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.skipped = tuple(skipped)


@dataclass(frozen=True)
class ExampleSet:
    """The person's examples as network inputs, and what could not be used (one line each)."""

    images: np.ndarray  # float32 (N, 28, 28) in [0, 1], white ink on black (input convention)
    labels: np.ndarray  # int64 (N,), 0..9
    sources: tuple[str, ...] = ()  # where each example came from (file path), when known
    skipped: tuple[str, ...] = ()  # "PATH: why it was not used"

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1:] != (28, 28):
            raise ValueError(f"examples must be (N, 28, 28) images, got {self.images.shape}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError("one label per example image is needed")

    @classmethod
    def from_arrays(
        cls, images: Any, labels: Sequence[int] | np.ndarray, sources: Sequence[str] = ()
    ) -> ExampleSet:
        """Examples already made into 28x28 inputs (``preprocess.prepare_single(...).image``)."""
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        y = np.asarray(labels, dtype=np.int64).reshape(-1)
        if y.size and (y.min() < 0 or y.max() > 9):
            raise UsageError("example labels must be digits 0..9")
        return cls(np.clip(x, 0.0, 1.0), y, tuple(str(s) for s in sources))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def per_digit(self) -> dict[int, int]:
        """How many examples of each digit (all ten listed, zeros included)."""
        counts = np.bincount(self.labels, minlength=10) if len(self) else np.zeros(10, int)
        return {d: int(counts[d]) for d in range(10)}


def _listing(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, str | None]]:
    # The one listing and label rule of ``predict --labels-from-names`` (never a copy of it).
    from ..preprocess import list_images

    return list_images(paths)


def _label_of(path: str) -> str | None:
    from ..preprocess import label_from_name

    return label_from_name(path)


def read_examples(paths: Sequence[str | os.PathLike[str]]) -> ExampleSet:
    """Image files and folders -> examples, labelled by name as ``predict --labels-from-names``
    reads them (``7_anna.png``, ``digits/7/anna.png``); each image is one digit, prepared as
    ``predict --single`` prepares it.

    Files with no one-digit label, unreadable images and images with no ink are skipped and
    listed in ``skipped``. Raises ``ImageError`` when nothing usable remains.
    """
    from ..preprocess import prepare

    images: list[np.ndarray] = []
    labels: list[int] = []
    sources: list[str] = []
    skipped: list[str] = []
    for path, err in _listing(paths):
        if err is not None:
            skipped.append(err)
            continue
        label = _label_of(path)
        if label is None:
            skipped.append(
                f"{path}: no label in its name or folder (name it like 7_anna.png "
                "or put it in a folder named 7)"
            )
            continue
        if len(label) != 1:
            skipped.append(f"{path}: label {label!r} from its name is not one digit")
            continue
        try:
            prepared = prepare(path, single=True, name=path)
        except ImageError as exc:
            skipped.append(str(exc))
            continue
        if prepared.image is None:
            skipped.append(f"{path}: {prepared.message or 'no digit found'}")
            continue
        images.append(prepared.image.astype(np.float32))
        labels.append(int(label))
        sources.append(path)
    if not images:
        given = ", ".join(str(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
        if len(skipped) == 1:
            raise NoExamplesError(f"no usable labelled example: {skipped[0]}", skipped)
        why = f": {len(skipped)} images skipped, the first {skipped[0]}" if skipped else ""
        raise NoExamplesError(f"{given}: no usable labelled example{why}", skipped)
    return ExampleSet(
        np.stack(images), np.asarray(labels, np.int64), tuple(sources), tuple(skipped)
    )
