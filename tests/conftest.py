"""Shared test fixtures.

Tests read the real MNIST files from ``$DIGITNET_DATA`` (CI points it at the shared copy beside
the project). Qt runs off-screen, and torch uses few threads so the suite behaves on 2 cores.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"


def _data_dir() -> Path | None:
    env = os.environ.get("DIGITNET_DATA")
    p = Path(env) if env else DEFAULT_DATA
    return (
        p
        if (p / "t10k-images-idx3-ubyte.gz").exists() or (p / "t10k-images-idx3-ubyte").exists()
        else None
    )


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder with the real MNIST IDX files; tests that need it skip when it is absent."""
    d = _data_dir()
    if d is None:
        pytest.skip("MNIST files not found: set DIGITNET_DATA")
    return d


def _glyph_font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except (TypeError, OSError):  # pragma: no cover - very old Pillow or no FreeType
        return ImageFont.load_default()


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` MNIST-like 28x28 uint8 digits (white on black) with labels, drawn from a font.

    Each digit gets its own size, stroke width, shift and rotation, plus pixel noise, so a small
    network learns them in an epoch or two but not perfectly at once: enough for tests of the
    engine, checkpoints and reading that must run where the real MNIST files are absent.
    """
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = np.zeros((n, 28, 28), np.uint8)
    fonts = {s: _glyph_font(s) for s in (18, 20, 22)}
    for i, d in enumerate(labels):
        im = Image.new("L", (28, 28), 0)
        draw = ImageDraw.Draw(im)
        size = int(rng.choice(list(fonts)))
        xy = (14 + rng.uniform(-1.5, 1.5), 14 + rng.uniform(-1.5, 1.5))
        draw.text(
            xy,
            str(int(d)),
            fill=255,
            font=fonts[size],
            anchor="mm",
            stroke_width=int(rng.integers(0, 2)),
            stroke_fill=255,
        )
        im = im.rotate(float(rng.uniform(-8, 8)), resample=Image.BILINEAR)
        a = np.asarray(im, np.float32) + rng.normal(0, 6, (28, 28))
        images[i] = np.clip(a, 0, 255).astype(np.uint8)
    return images, labels


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of small synthetic MNIST IDX files (1,200 training, 500 test digits), gzipped like
    the official ones.

    Always available, so tests of mechanics (training loop, resume, checkpoints, reading) never
    skip for want of the real data; accuracy claims are tested on the real files (``mnist_dir``).
    """
    from digitnet.data.idx import write_idx

    folder = tmp_path_factory.mktemp("tiny-mnist")
    for split, n, seed in (("train", 1200, 0), ("t10k", 500, 1)):
        x, y = synthetic_digits(n, seed)
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", x)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", y)
    return folder


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run only where CUDA is there; elsewhere they are skipped, not lost."""
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none here)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
