"""Finding, loading and describing the MNIST files; the ``digitnet data info`` command."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from digitnet.cli import main
from digitnet.data import mnist
from digitnet.data.idx import write_idx
from digitnet.data.mnist import (
    candidate_names,
    describe_data,
    find_mnist_files,
    load_mnist,
    resolve_data_dir,
)
from digitnet.errors import DataError, UsageError

TRAIN_CLASS_COUNTS = [2406, 2770, 2381, 2524, 2386, 2181, 2401, 2524, 2328, 2444]


def make_folder(
    folder: Path, n_train: int = 6, n_test: int = 4, *, style: str = "official", gz: bool = True
) -> Path:
    """A small synthetic MNIST folder; ``style="dotted"`` uses the train-images.idx3-ubyte form."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    sep = "." if style == "dotted" else "-"
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            folder / f"{prefix}-images{sep}idx3-ubyte{ext}",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        )
        write_idx(folder / f"{prefix}-labels{sep}idx1-ubyte{ext}", np.arange(n) % 10)
    return folder


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    mnist.clear_cache()


# --- where the data is -----------------------------------------------------------------------


def test_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DIGITNET_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(str(tmp_path / "cli")) == tmp_path / "cli"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.setenv("DIGITNET_DATA", "")
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir(None) == tmp_path / "xdg" / "digitnet" / "mnist"


def test_default_cache_folder_per_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DIGITNET_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert resolve_data_dir(None) == tmp_path / ".cache" / "digitnet" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec says ignore it
    assert resolve_data_dir(None) == tmp_path / ".cache" / "digitnet" / "mnist"
    monkeypatch.setattr("sys.platform", "darwin")
    assert resolve_data_dir(None) == tmp_path / "Library" / "Caches" / "digitnet" / "mnist"
    monkeypatch.setattr("sys.platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert resolve_data_dir(None) == tmp_path / "Local" / "digitnet" / "mnist"


def test_cli_value_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_data_dir("~/m") == tmp_path / "m"


# --- finding files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "gz"), [("official", True), ("official", False), ("dotted", True), ("dotted", False)]
)
def test_accepted_names(tmp_path: Path, style: str, gz: bool) -> None:
    folder = make_folder(tmp_path / "m", style=style, gz=gz)
    images, labels = find_mnist_files(folder, "test")
    sep = "." if style == "dotted" else "-"
    assert images.name == f"t10k-images{sep}idx3-ubyte" + (".gz" if gz else "")
    assert labels.name == f"t10k-labels{sep}idx1-ubyte" + (".gz" if gz else "")
    x, y = load_mnist(folder, "train")
    assert x.shape == (6, 28, 28) and y.tolist() == [0, 1, 2, 3, 4, 5]


def test_missing_folder_lists_names_and_suggests_download(tmp_path: Path) -> None:
    folder = tmp_path / "absent"
    with pytest.raises(DataError) as info:
        find_mnist_files(folder, "train")
    message = str(info.value)
    assert message.startswith(f"{folder}: ") and "does not exist" in message
    for name in candidate_names("train", "images") + candidate_names("train", "labels"):
        assert name in message
    assert f"digitnet data download --data-dir {folder}" in message
    assert "\n" not in message


def test_folder_without_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(
        DataError,
        match=r"no MNIST test files found \(looked for "
        r"t10k-images-idx3-ubyte.gz, .*t10k-labels.idx1-ubyte\)",
    ):
        find_mnist_files(tmp_path, "test")


def test_only_labels_missing_names_only_labels(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m")
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as info:
        find_mnist_files(folder, "train")
    assert "train-labels-idx1-ubyte.gz" in str(info.value)
    assert "train-images-idx3-ubyte" not in str(info.value)


def test_file_given_as_folder(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(DataError, match="is a file, not the MNIST folder"):
        find_mnist_files(tmp_path / "f", "train")


def test_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown split 'val'"):
        find_mnist_files(tmp_path, "val")


# --- loading ---------------------------------------------------------------------------------


def test_count_mismatch_names_both_files(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(3))
    with pytest.raises(DataError) as info:
        load_mnist(folder, "test")
    message = str(info.value)
    assert "t10k-images-idx3-ubyte.gz holds 4 images" in message
    assert "t10k-labels-idx1-ubyte.gz holds 3 labels" in message


def test_load_types_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_folder(tmp_path / "m")
    x1, y1 = load_mnist(folder, "train")
    assert x1.dtype == np.uint8 and y1.dtype == np.int64

    def no_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("second load must come from the cache")

    monkeypatch.setattr(mnist, "read_images", no_reads)
    x1[:] = 0  # callers get copies: editing them must not leak into the cache
    x2, y2 = load_mnist(folder, "train")
    assert x2.any()
    np.testing.assert_array_equal(y1, y2)

    # A changed file (new size and mtime) is parsed again.
    monkeypatch.undo()
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((6, 28, 28), np.uint8))
    os.utime(folder / "train-images-idx3-ubyte.gz", ns=(1, 1))
    x3, _ = load_mnist(folder, "train")
    assert not x3.any()


def test_describe_data(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m")
    info = describe_data(folder)
    assert info["data_dir"] == str(folder.resolve())
    assert info["splits"]["train"]["items"] == 6 and info["splits"]["test"]["items"] == 4
    md5 = info["splits"]["test"]["labels"]["md5"]
    assert md5 == hashlib.md5((folder / "t10k-labels-idx1-ubyte.gz").read_bytes()).hexdigest()


# --- the real shared data --------------------------------------------------------------------


def test_real_mnist(mnist_dir: Path) -> None:
    x, y = load_mnist(mnist_dir, "train")
    assert x.shape == (24_345, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y, minlength=10).tolist() == TRAIN_CLASS_COUNTS
    xt, yt = load_mnist(mnist_dir, "test")
    assert xt.shape == (10_000, 28, 28) and yt.shape == (10_000,)
    assert yt.min() == 0 and yt.max() == 9
    # Genuine MNIST: white strokes on black, mean pixel ~33/255.
    assert 30 < float(x.mean()) < 36


def test_real_mnist_md5(mnist_dir: Path) -> None:
    info = describe_data(mnist_dir)
    assert info["splits"]["test"]["images"]["md5"] == "9fb629c4189551a2d022fa330f9573f3"
    assert info["splits"]["train"]["labels"]["md5"] == "b32b8897caf4497f62bdff59470f648c"


# --- digitnet data info ----------------------------------------------------------------------


def test_cli_info_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_folder(tmp_path / "m")
    assert main(["data", "info", "--data-dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"MNIST folder: {folder.resolve()} (from --data-dir)" in out
    assert "train: 6 items (the official train set has 60,000)" in out
    assert "t10k-labels-idx1-ubyte.gz" in out and "md5 " in out


def test_cli_info_json_from_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_folder(tmp_path / "m")
    monkeypatch.setenv("DIGITNET_DATA", str(folder))
    assert main(["data", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["source"] == "$DIGITNET_DATA"
    assert info["splits"]["test"]["items"] == 4


def test_cli_info_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "--data-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "digitnet data download --data-dir" in err
