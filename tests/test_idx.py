"""IDX reading and writing: round trips, and one test per way a file can be wrong."""

from __future__ import annotations

import gzip
import os
import pathlib
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from digitnet.cli import main
from digitnet.data.idx import (
    idx_bytes,
    read_idx,
    read_idx_header,
    read_images,
    read_labels,
    write_idx,
)
from digitnet.errors import DataError


def header(*dims: int, dtype: int = 0x08) -> bytes:
    return struct.pack(f">BBBB{len(dims)}I", 0, 0, dtype, len(dims), *dims)


def put(path: Path, data: bytes, *, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def images(n: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def expect_error(path: Path, *fragments: str, **kwargs: object) -> str:
    """read_idx(path) must raise DataError whose one-line message names the file + fragments."""
    with pytest.raises(DataError) as info:
        read_idx(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_images_round_trip(tmp_path: Path, name: str) -> None:
    arr = images(7)
    write_idx(tmp_path / name, arr)
    back = read_images(tmp_path / name)
    assert back.dtype == np.uint8 and back.shape == (7, 28, 28)
    np.testing.assert_array_equal(back, arr)
    assert back.flags.writeable  # callers may augment in place


@pytest.mark.parametrize("name", ["y-idx1-ubyte", "y-idx1-ubyte.gz"])
def test_labels_round_trip_accepts_int64(tmp_path: Path, name: str) -> None:
    labels = np.array([0, 9, 3, 3, 7], dtype=np.int64)
    write_idx(tmp_path / name, labels)
    back = read_labels(tmp_path / name)
    np.testing.assert_array_equal(back, labels)
    assert back.dtype == np.uint8


def test_gz_name_means_gzip_bytes_and_output_is_reproducible(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.gz", images(2))
    write_idx(tmp_path / "b.gz", images(2))
    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    write_idx(tmp_path / "c", images(2))
    assert (tmp_path / "c").read_bytes() == idx_bytes(images(2))


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    arr = images(3)
    gz_named_raw = put(tmp_path / "raw-but-named.gz", idx_bytes(arr))
    raw_named_gz = put(tmp_path / "gz-but-named-raw", idx_bytes(arr), gz=True)
    np.testing.assert_array_equal(read_images(gz_named_raw), arr)
    np.testing.assert_array_equal(read_images(raw_named_gz), arr)


def test_zero_items_is_a_valid_file(tmp_path: Path) -> None:
    path = put(tmp_path / "empty-labels", header(0))
    assert read_labels(path).shape == (0,)


def test_write_is_atomic_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "keep.gz"
    write_idx(target, images(1))
    before = target.read_bytes()
    with pytest.raises(ValueError, match="dtype"):
        write_idx(target, np.zeros((2, 28, 28), dtype=np.float32))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.gz"]


@pytest.mark.parametrize(
    "bad", [np.zeros(()), np.zeros((1, 1, 1, 1), np.uint8), np.array([256]), np.array([-1])]
)
def test_write_rejects_what_idx_ubyte_cannot_hold(tmp_path: Path, bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        write_idx(tmp_path / "x", bad)
    assert not (tmp_path / "x").exists()


def test_header_only_read(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    write_idx(path, images(4))
    h = read_idx_header(path, expect="images")
    assert h.dims == (4, 28, 28) and h.items == 4 and h.header_bytes == 16


# --- missing and unreadable ------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope", "file not found")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    expect_error(tmp_path, "is a folder")


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="needs a non-root POSIX user for file permissions to apply",
)
def test_unreadable_file_chmod(tmp_path: Path) -> None:
    path = put(tmp_path / "locked", header(1) + b"\x01")
    path.chmod(0)
    try:
        expect_error(path, "permission denied")
    finally:
        path.chmod(0o600)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs everywhere (root ignores chmod): simulate the OS refusing to open the file.
    path = put(tmp_path / "locked", header(1) + b"\x01")

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "open", refuse)
    expect_error(path, "permission denied")


# --- bad headers -----------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    expect_error(put(tmp_path / "zero", b""), "empty", "0 bytes")


def test_empty_gzip_stream(tmp_path: Path) -> None:
    expect_error(put(tmp_path / "zero.gz", b"", gz=True), "ends inside the header")


@pytest.mark.parametrize("gz", [False, True])
def test_wrong_magic(tmp_path: Path, gz: bool) -> None:
    path = put(tmp_path / "junk", b"PK\x03\x04" + bytes(100), gz=gz)
    expect_error(path, "bad magic 0x504B0304", "not an IDX file")


def test_byte_swapped_magic_is_named(tmp_path: Path) -> None:
    data = struct.pack("<I", 0x803) + struct.pack("<3I", 1, 28, 28) + bytes(784)
    expect_error(put(tmp_path / "le", data), "0x03080000", "byte-swapped", "little-endian")


def test_gz_name_that_is_neither_gzip_nor_idx(tmp_path: Path) -> None:
    expect_error(
        put(tmp_path / "x.gz", b"<html>not found</html>"), "bad magic", "not gzip-compressed either"
    )


def test_magic_of_wrong_kind_for_expect(tmp_path: Path) -> None:
    path = put(tmp_path / "labels-not-images", header(3) + bytes([1, 2, 3]))
    expect_error(path, "bad magic 0x00000801", "expected 0x00000803 (images)", expect="images")
    path = put(tmp_path / "images-not-labels", header(1, 28, 28) + bytes(784))
    expect_error(path, "bad magic 0x00000803", "expected 0x00000801 (labels)", expect="labels")


@pytest.mark.parametrize(
    ("code", "what"), [(0x0A, "unknown data type 0x0A"), (0x0D, "IDX data type 0x0D (float32)")]
)
def test_unsupported_data_type(tmp_path: Path, code: int, what: str) -> None:
    path = put(tmp_path / "typed", header(2, dtype=code) + bytes(8))
    expect_error(path, what, "only unsigned byte (0x08)")


@pytest.mark.parametrize("ndim", [0, 4, 255])
def test_bad_number_of_dimensions(tmp_path: Path, ndim: int) -> None:
    path = put(tmp_path / "dims", bytes([0, 0, 8, ndim]) + struct.pack(f">{ndim}I", *[1] * ndim))
    expect_error(path, f"header has {ndim} dimensions", "expected 1 to 3")


def test_images_not_28x28(tmp_path: Path) -> None:
    path = put(tmp_path / "small", header(2, 16, 16) + bytes(2 * 256))
    expect_error(path, "images are 16x16 pixels", "expected 28x28", expect="images")
    assert read_idx(path).shape == (2, 16, 16)  # fine as a generic IDX file


def test_file_ends_inside_header(tmp_path: Path) -> None:
    expect_error(
        put(tmp_path / "short", header(5, 28, 28)[:10]), "ends inside the header", "needs 16"
    )
    expect_error(put(tmp_path / "tiny", b"\x00\x00"), "ends inside the header")


def test_max_items_limit(tmp_path: Path) -> None:
    path = tmp_path / "five"
    write_idx(path, images(5))
    expect_error(path, "header says 5 items", "limit of 4", max_items=4)
    assert read_idx(path, max_items=5).shape == (5, 28, 28)


# --- sizes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_header_count_larger_than_data(tmp_path: Path, gz: bool) -> None:
    path = put(tmp_path / "trunc", header(10, 28, 28) + bytes(3 * 784 + 5), gz=gz)
    expect_error(path, "header says 10 items, file holds 3 and part of another")


@pytest.mark.parametrize("gz", [False, True])
def test_trailing_bytes(tmp_path: Path, gz: bool) -> None:
    path = put(tmp_path / "long", header(2) + bytes([1, 2, 3, 4]), gz=gz)
    expect_error(path, "trailing", "after the 2 items the header declares")


def test_trailing_byte_count_for_raw_files(tmp_path: Path) -> None:
    expect_error(put(tmp_path / "long", header(2) + bytes(7)), "5 trailing bytes")


@pytest.mark.parametrize("gz", [False, True])
def test_huge_header_in_tiny_file_fails_fast_without_allocating(tmp_path: Path, gz: bool) -> None:
    path = put(tmp_path / "liar", header(2**31 - 1, 28, 28) + bytes(100), gz=gz)
    tracemalloc.start()
    try:
        expect_error(path, "header says 2,147,483,647 items")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20


def test_gzip_bomb_is_not_decompressed_past_the_header(tmp_path: Path) -> None:
    # 64 MiB of zeros compress to ~64 KB; the header claims 10 labels. The reader must stop
    # after 10 + 1 bytes instead of inflating everything.
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    blob = (
        comp.compress(header(10) + bytes(10))
        + b"".join(comp.compress(bytes(2**20)) for _ in range(64))
        + comp.flush()
    )
    path = put(tmp_path / "bomb.gz", blob)
    tracemalloc.start()
    try:
        expect_error(path, "trailing data after the 10 items")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


# --- gzip damage -----------------------------------------------------------------------------


def test_truncated_gzip(tmp_path: Path) -> None:
    blob = gzip.compress(header(500, 28, 28) + images(500).tobytes(), mtime=0)
    expect_error(put(tmp_path / "cut.gz", blob[: len(blob) // 2]), "truncated gzip")


def test_gzip_missing_only_its_trailer(tmp_path: Path) -> None:
    blob = gzip.compress(header(3) + bytes([1, 2, 3]), mtime=0)
    expect_error(put(tmp_path / "notrailer.gz", blob[:-8]), "truncated gzip")


def test_gzip_crc_mismatch(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(header(3) + bytes([1, 2, 3]), mtime=0))
    blob[-8] ^= 0xFF  # first byte of the CRC32 trailer
    expect_error(put(tmp_path / "crc.gz", bytes(blob)), "corrupt gzip")


def test_corrupt_deflate_data(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(header(100) + bytes(range(100)), mtime=0))
    blob[10:14] = b"\xff\xff\xff\xff"  # garbage where the deflate blocks start
    expect_error(put(tmp_path / "bad.gz", bytes(blob)), "corrupt gzip")


def test_garbage_after_gzip_member(tmp_path: Path) -> None:
    blob = gzip.compress(header(3) + bytes([1, 2, 3]), mtime=0) + b"garbage!"
    expect_error(put(tmp_path / "tail.gz", blob), "corrupt gzip")


def test_bad_gzip_header_flags(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(header(1) + b"\x01", mtime=0))
    blob[2] = 0x07  # compression method other than deflate
    expect_error(put(tmp_path / "method.gz", bytes(blob)), "corrupt gzip")


# --- labels ----------------------------------------------------------------------------------


def test_label_out_of_range_names_value_and_index(tmp_path: Path) -> None:
    path = put(tmp_path / "labels", header(6) + bytes([0, 9, 4, 12, 200, 1]))
    expect_error(path, "label 12 at index 3 is outside 0..9", "2 bad labels", expect="labels")
    assert read_idx(path).tolist() == [0, 9, 4, 12, 200, 1]  # no label rule without expect


# --- CLI -------------------------------------------------------------------------------------


def _mnist_folder(folder: Path, n: int = 4) -> Path:
    folder.mkdir(exist_ok=True)
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images(n))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return folder


def test_cli_reports_corrupt_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _mnist_folder(tmp_path / "mnist")
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(header(4) + bytes([1, 2, 3, 77]), mtime=0))
    assert main(["data", "info", "--data-dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("digitnet data: error: ")
    assert str(bad) in err and "label 77 at index 3" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_named_not_opened(tmp_path):
    # open() on a FIFO blocks until a writer appears: the reader must refuse it from its stat.
    p = tmp_path / "x.idx"
    os.mkfifo(p)
    with pytest.raises(DataError, match=r"x\.idx: is a FIFO \(named pipe\), not a file"):
        read_idx(p)
