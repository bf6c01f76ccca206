"""Reading and writing IDX files (the MNIST format), raw or gzip-compressed.

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then ``prod(dims)`` values in C order. Only the unsigned-byte type (0x08), which is
all MNIST uses, is supported.

Every problem with a file's contents raises :class:`digitnet.errors.DataError` with one line that
names the file and the problem; no other exception type escapes for bad input. Reading is bounded
by the header: the reader never decompresses more than the header's size plus one byte (to detect
trailing data), and a header that promises more data than the file can possibly hold is refused
before anything is allocated.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .._io import atomic_write
from ..errors import DataError

__all__ = [
    "IMAGES_MAGIC",
    "LABELS_MAGIC",
    "IdxHeader",
    "read_idx",
    "read_idx_header",
    "read_images",
    "read_labels",
    "write_idx",
]

Expect = Literal["images", "labels"]

UBYTE = 0x08
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, 28, 28)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)
IMAGE_SIDE = 28
MAX_DIMS = 3
GZIP_MAGIC = b"\x1f\x8b"
# The IDX data types the format defines; anything else is not an IDX file at all.
IDX_TYPES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
# DEFLATE cannot expand data by more than ~1032:1 (258-byte matches coded in ~2 bits). A gzip
# file whose header promises more than this ratio allows is truncated or hostile, and is refused
# without decompressing anything. The slack covers tiny files where headers dominate.
MAX_DEFLATE_RATIO = 1032
GZIP_SLACK_BYTES = 64 * 1024
# Read in 1 MiB pieces so temporary buffers stay small whatever the file size.
CHUNK = 1 << 20


@dataclass(frozen=True)
class IdxHeader:
    """The validated header of an IDX file; ``dims[0]`` is the item count."""

    dims: tuple[int, ...]
    header_bytes: int

    @property
    def items(self) -> int:
        return self.dims[0]

    @property
    def item_bytes(self) -> int:
        # Python ints: a hostile header's product must not overflow into a small number.
        return math.prod(self.dims[1:])

    @property
    def payload_bytes(self) -> int:
        return self.items * self.item_bytes


def _fail(path: str | os.PathLike[str], problem: str) -> DataError:
    return DataError(f"{path}: {problem}")


def _human_bytes(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000:
            return f"{size:.1f} {unit}"
    return f"{size / 1000:.1f} PB"


# --- opening ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _open(path: Path) -> Iterator[tuple[io.BufferedIOBase, bool, int]]:
    """Open ``path`` for reading; yield (stream, is_gzip, size on disk in bytes)."""
    from .._io import _not_regular

    try:
        kind = _not_regular(os.stat(path).st_mode)
    except OSError:
        kind = None  # open() below names the problem
    if kind is not None and not kind.startswith("is a folder"):
        raise _fail(path, kind)  # a FIFO would block open() and read() forever
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise _fail(path, "file not found") from None
    except IsADirectoryError:
        raise _fail(path, "is a folder, not an IDX file") from None
    except PermissionError:
        raise _fail(path, "cannot read: permission denied") from None
    except OSError as exc:
        raise _fail(path, f"cannot open: {exc.strerror or exc}") from None
    try:
        size = os.fstat(fh.fileno()).st_size
        start = fh.read(2)
        fh.seek(0)
    except OSError as exc:
        fh.close()
        raise _fail(path, f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        fh.close()
        raise _fail(path, "file is empty (0 bytes)")
    with fh:
        if start != GZIP_MAGIC:
            yield fh, False, size
            return
        # Decided by content, not name: a raw file named .gz reads fine, and vice versa.
        # GzipFile does not close a file object it was handed, hence the outer ``with fh``.
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            yield gz, True, size


def _read_exact(stream: io.BufferedIOBase, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads; fewer only at end of stream."""
    parts = []
    while n > 0:
        part = stream.read(n)
        if not part:
            break
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


# --- header ----------------------------------------------------------------------------------


def _describe_magic(magic: bytes) -> str:
    value = int.from_bytes(magic, "big")
    text = f"bad magic 0x{value:08X}"
    if len(magic) == 4 and magic[2:] == b"\x00\x00" and magic[1] == UBYTE and 1 <= magic[0] <= 3:
        # 0x00000803 written little-endian reads 03 08 00 00.
        return f"{text}: looks byte-swapped (written little-endian); IDX is big-endian"
    return f"{text}: not an IDX file (an IDX magic starts with two zero bytes)"


def _expected_magic(expect: Expect | None) -> str:
    if expect == "images":
        return f", expected 0x{IMAGES_MAGIC:08X} (images)"
    if expect == "labels":
        return f", expected 0x{LABELS_MAGIC:08X} (labels)"
    return ""


def _parse_magic(path: Path, magic: bytes, expect: Expect | None, gz: bool) -> int:
    """Check the 4-byte magic; return the number of dimensions."""
    if len(magic) < 4:
        raise _fail(
            path, f"file ends inside the header ({len(magic)} bytes, the magic alone needs 4)"
        )
    if magic[:2] != b"\x00\x00":
        problem = _describe_magic(magic) + _expected_magic(expect)
        if path.name.endswith(".gz") and not gz:
            problem += "; the name ends in .gz but the file is not gzip-compressed either"
        raise _fail(path, problem)
    dtype, ndim = magic[2], magic[3]
    if dtype != UBYTE:
        kind = IDX_TYPES.get(dtype)
        what = (
            f"IDX data type 0x{dtype:02X} ({kind})" if kind else f"unknown data type 0x{dtype:02X}"
        )
        raise _fail(path, f"{what}; only unsigned byte (0x08) is supported")
    if ndim == 0 or ndim > MAX_DIMS:
        raise _fail(path, f"header has {ndim} dimensions; expected 1 to {MAX_DIMS}")
    want = {"images": 3, "labels": 1}.get(expect or "")
    if want is not None and ndim != want:
        value = int.from_bytes(magic, "big")
        raise _fail(path, f"bad magic 0x{value:08X} ({ndim}-D data){_expected_magic(expect)}")
    return ndim


def _check_dims(
    path: Path, dims: tuple[int, ...], expect: Expect | None, max_items: int | None
) -> None:
    if expect == "images" and dims[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        shape = "x".join(str(d) for d in dims[1:])
        raise _fail(path, f"images are {shape} pixels; expected {IMAGE_SIDE}x{IMAGE_SIDE}")
    if max_items is not None and dims[0] > max_items:
        raise _fail(path, f"header says {dims[0]:,} items, more than the limit of {max_items:,}")


def _read_header(
    stream: io.BufferedIOBase, path: Path, expect: Expect | None, gz: bool, max_items: int | None
) -> IdxHeader:
    ndim = _parse_magic(path, _read_exact(stream, 4), expect, gz)
    raw = _read_exact(stream, 4 * ndim)
    if len(raw) < 4 * ndim:
        raise _fail(
            path,
            f"file ends inside the header ({4 + len(raw)} bytes; a {ndim}-D "
            f"header needs {4 + 4 * ndim})",
        )
    dims = struct.unpack(f">{ndim}I", raw)
    _check_dims(path, dims, expect, max_items)
    return IdxHeader(dims, 4 + 4 * ndim)


# --- payload ---------------------------------------------------------------------------------


def _items_held(header: IdxHeader, payload_bytes_held: int) -> str:
    whole, part = divmod(payload_bytes_held, header.item_bytes)
    return f"{whole:,}" + (" and part of another" if part else "")


def _check_raw_size(path: Path, header: IdxHeader, size: int) -> None:
    """For an uncompressed file the size on disk tells everything before reading any data."""
    held = size - header.header_bytes
    if held < header.payload_bytes:
        raise _fail(
            path,
            f"header says {header.items:,} items, file holds "
            f"{_items_held(header, held)} (truncated or wrong header)",
        )
    if held > header.payload_bytes:
        raise _fail(
            path,
            f"{held - header.payload_bytes:,} trailing bytes after the "
            f"{header.items:,} items the header declares",
        )


def _check_gzip_bound(path: Path, header: IdxHeader, size: int) -> None:
    limit = size * MAX_DEFLATE_RATIO + GZIP_SLACK_BYTES
    if header.header_bytes + header.payload_bytes > limit:
        raise _fail(
            path,
            f"header says {header.items:,} items "
            f"({_human_bytes(header.payload_bytes)}), more than a gzip file of "
            f"{_human_bytes(size)} can hold (corrupt or truncated)",
        )


def _read_payload(stream: io.BufferedIOBase, path: Path, header: IdxHeader) -> np.ndarray:
    """Read exactly the payload into a fresh array, then check nothing follows it."""
    try:
        out = np.empty(header.payload_bytes, dtype=np.uint8)
    except (MemoryError, ValueError):
        raise _fail(
            path,
            f"header says {header.items:,} items "
            f"({_human_bytes(header.payload_bytes)}): not enough memory",
        ) from None
    view = out.data  # a memoryview of the array's bytes
    done = 0
    while done < header.payload_bytes:
        n = stream.readinto(view[done : done + CHUNK])
        if not n:
            raise _fail(
                path,
                f"header says {header.items:,} items, file holds "
                f"{_items_held(header, done)} (truncated or wrong header)",
            )
        done += n
    if stream.read(1):
        raise _fail(path, f"trailing data after the {header.items:,} items the header declares")
    return out.reshape(header.dims)


def _check_labels(path: Path, labels: np.ndarray) -> None:
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        i = int(bad[0])
        raise _fail(
            path,
            f"label {int(labels[i])} at index {i} is outside 0..9 ({bad.size:,} bad labels in all)",
        )


def _translate(path: Path, exc: BaseException) -> DataError:
    """Turn a low-level decoding failure into a one-line DataError naming the file."""
    if isinstance(exc, EOFError):
        return _fail(path, "truncated gzip stream (compressed data ends early)")
    if isinstance(exc, (gzip.BadGzipFile, zlib.error)):
        return _fail(path, f"corrupt gzip data ({exc})")
    if isinstance(exc, MemoryError):
        return _fail(path, "not enough memory to read the file")
    if isinstance(exc, OSError):
        return _fail(path, f"cannot read: {exc.strerror or exc}")
    return _fail(path, f"unreadable IDX data ({type(exc).__name__}: {exc})")


# Everything a corrupt stream can make the standard library raise while decoding.
_DECODE_ERRORS = (EOFError, zlib.error, OSError, struct.error, ValueError, MemoryError)


def read_idx_header(path: str | os.PathLike[str], *, expect: Expect | None = None) -> IdxHeader:
    """Read and validate only the header of ``path`` (cheap: for counts and descriptions)."""
    p = Path(path)
    with _open(p) as (stream, gz, _):
        try:
            return _read_header(stream, p, expect, gz, None)
        except DataError:
            raise
        except _DECODE_ERRORS as exc:
            raise _translate(p, exc) from None


def read_idx(
    path: str | os.PathLike[str],
    *,
    expect: Expect | None = None,
    max_items: int | None = None,
) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a writable ``np.uint8`` array of the header's shape.

    ``expect="images"`` requires 3-D data of 28x28 images; ``expect="labels"`` requires 1-D data
    with values 0..9. ``max_items`` refuses files whose header declares more items (a guard for
    untrusted files). Raises :class:`DataError` naming the file and the problem for anything
    wrong with the file: missing, unreadable, empty, bad magic, unsupported type, bad shape,
    truncated, trailing data, corrupt or truncated gzip.
    """
    if expect not in (None, "images", "labels"):
        raise ValueError(f"expect must be 'images', 'labels' or None, not {expect!r}")
    p = Path(path)
    with _open(p) as (stream, gz, size):
        try:
            header = _read_header(stream, p, expect, gz, max_items)
            if gz:
                _check_gzip_bound(p, header, size)
            else:
                _check_raw_size(p, header, size)
            data = _read_payload(stream, p, header)
        except DataError:
            raise
        except _DECODE_ERRORS as exc:
            raise _translate(p, exc) from None
    if expect == "labels":
        _check_labels(p, data)
    return data


def read_images(path: str | os.PathLike[str], *, max_items: int | None = None) -> np.ndarray:
    """Read an MNIST image file: ``np.uint8 (N, 28, 28)``."""
    return read_idx(path, expect="images", max_items=max_items)


def read_labels(path: str | os.PathLike[str], *, max_items: int | None = None) -> np.ndarray:
    """Read an MNIST label file: ``np.uint8 (N,)`` with values 0..9."""
    return read_idx(path, expect="labels", max_items=max_items)


# --- writing ---------------------------------------------------------------------------------


def _as_ubyte(array: np.ndarray | Sequence[int]) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim == 0 or arr.ndim > MAX_DIMS:
        raise ValueError(f"write_idx needs a 1-D to {MAX_DIMS}-D array, got {arr.ndim}-D")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"write_idx writes unsigned bytes; got dtype {arr.dtype}")
    # Labels are usually int64 in memory; accept any integers that fit in a byte.
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError("write_idx writes unsigned bytes; values must be in 0..255")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def idx_bytes(array: np.ndarray | Sequence[int]) -> bytes:
    """The uncompressed IDX encoding of ``array`` (uint8, or integers in 0..255)."""
    arr = _as_ubyte(array)
    header = struct.pack(f">BBBB{arr.ndim}I", 0, 0, UBYTE, arr.ndim, *arr.shape)
    return header + arr.tobytes()


def write_idx(path: str | os.PathLike[str], array: np.ndarray | Sequence[int]) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The file is written atomically (temporary sibling, fsync, rename): an interrupted write never
    leaves a half file under ``path``.
    """
    data = idx_bytes(array)
    with atomic_write(path, "wb") as fh:
        if str(path).endswith(".gz"):
            # mtime=0 makes the output reproducible (same array -> same bytes -> same md5).
            with gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
                gz.write(data)
        else:
            fh.write(data)
