"""Shared test fixtures.

Tests read the real MNIST files from ``$DIGITNET_DATA`` (CI points it at the shared copy beside
the project). Qt runs off-screen, and torch uses few threads so the suite behaves on 2 cores.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"


def _data_dir() -> Path | None:
    env = os.environ.get("DIGITNET_DATA")
    p = Path(env) if env else DEFAULT_DATA
    return p if (p / "t10k-images-idx3-ubyte.gz").exists() or (p / "t10k-images-idx3-ubyte").exists() else None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder with the real MNIST IDX files; tests that need it skip when it is absent."""
    d = _data_dir()
    if d is None:
        pytest.skip("MNIST files not found: set DIGITNET_DATA")
    return d
