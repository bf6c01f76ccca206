"""What a file is, by its first bytes, and its safetensors header, read without decoding a tensor.

The file is read once with the size limit (``_read_bytes``); ``_container`` says whether it is a
``torch.save`` zip, a legacy pickle or a safetensors file; ``_read_header`` checks the header's
schema (length, JSON, tensor entries and dtypes) and ``_embedded_meta`` the digitnet metadata in
it.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ._schema import _json, check_metadata

MAX_BYTES = 1 << 30  # no digit model is near 1 GiB; refuse before reading such a file into memory
MAX_HEADER_BYTES = 16 << 20  # a safetensors header of our models is a few KB
_ST_DTYPES = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"}


def _read_bytes(p: Path) -> bytes:
    from .._io import read_user_file

    return read_user_file(p, error=CheckpointError, max_bytes=MAX_BYTES, what="checkpoint")


def _container(data: bytes) -> str:
    """What the first bytes say the file is: 'zip' (torch.save), 'pickle' (legacy torch.save),
    'safetensors' or 'unknown'."""
    if data[:4] == b"PK\x03\x04":
        return "zip"
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if len(data) >= 10 and data[8:9] == b"{":
        return "safetensors"
    return "unknown"


def _describe(data: bytes) -> str:
    head = data[:8]
    known = [
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"\x1f\x8b", "a gzip file"),
        (b"%PDF", "a PDF document"),
        (b"\x08\x01\x12", "an ONNX model"),
        (b"ONNX", "an ONNX model"),
    ]
    for magic, what in known:
        if head.startswith(magic):
            return what
    if head.lstrip()[:1] in (b"{", b"[", b"<"):
        return "a text file"
    return "first bytes " + head.hex(" ")


def _read_header(path: Path, data: bytes) -> dict[str, Any]:
    if len(data) == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes)")
    kind = _container(data)
    if kind in ("zip", "pickle"):
        raise CheckpointError(
            f"{path}: is a PyTorch (torch.save) file, not a safetensors checkpoint"
        )
    if len(data) < 8:
        raise CheckpointError(f"{path}: not a safetensors file (only {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise CheckpointError(
            f"{path}: corrupt safetensors header: it claims {n} bytes but the file has {len(data) - 8} after the length field"
        )
    if n > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{path}: corrupt safetensors header: {n:,} bytes (limit {MAX_HEADER_BYTES:,})"
        )
    if kind == "unknown":
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({_describe(data)})")
    header = _json(path, data[8 : 8 + n], "safetensors header")
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    md = header.get("__metadata__", {})
    if md is not None and (
        not isinstance(md, dict) or not all(isinstance(v, str) for v in md.values())
    ):
        raise CheckpointError(
            f"{path}: corrupt safetensors header: __metadata__ must map names to strings"
        )
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("dtype"), str)
            and isinstance(entry.get("shape"), list)
            and all(type(d) is int and 0 <= d < 1 << 40 for d in entry["shape"])
        ):
            raise CheckpointError(
                f"{path}: corrupt safetensors header: bad entry for tensor {name[:60]!r}"
            )
        if entry["dtype"] not in _ST_DTYPES:
            raise CheckpointError(
                f"{path}: tensor {name[:60]!r} has dtype {entry['dtype'][:20]}, which a digit model "
                f"does not use (allowed: {', '.join(sorted(_ST_DTYPES))})"
            )
    return header


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's metadata (embedded copy, schema-checked), without loading the weights."""
    p = Path(path)
    data = _read_bytes(p)
    header = _read_header(p, data)
    return _embedded_meta(p, header)


def _embedded_meta(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    raw = (header.get("__metadata__") or {}).get("digitnet")
    if raw is None:
        return {}
    meta = _json(path, raw, "digitnet metadata in the safetensors header")
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{path}: corrupt digitnet metadata in the safetensors header (not a JSON object)"
        )
    if meta:
        check_metadata(path, meta)
    return meta


def _tensor_bytes(data: bytes) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    return data[8 + n :]
