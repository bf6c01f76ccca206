"""Coverage-guided fuzzing of the IDX reader with atheris (libFuzzer for Python).

The property: whatever bytes are on disk, ``read_idx`` returns a uint8 array or raises
``DataError`` with a one-line message naming the file. Any other exception, an over-long or
multi-line message, or libFuzzer's memory/time limits being hit is a finding. Not run in CI; see
README.md in this folder for how to run it for a bounded time.
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile

import atheris

# Instrument only our code: numpy and the standard library would just slow the fuzzer down.
with atheris.instrument_imports(include=["digitnet"]):
    from digitnet.data.idx import read_idx
    from digitnet.errors import DataError

_EXPECT = (None, "images", "labels")
# One file rewritten per input: read_idx works on paths, and a tmpfs-backed folder (if TMPDIR
# points at one) keeps this cheap.
_PATH = os.path.join(tempfile.mkdtemp(prefix="fuzz_idx."), "input")


def _materialise(data: bytes) -> tuple[str | None, bytes]:
    """Map the fuzzer's bytes to (expect, file contents): byte 0 picks expect and gzip wrapping."""
    if not data:
        return None, b""
    mode, body = data[0], data[1:]
    expect = _EXPECT[mode % 3]
    if mode & 0x80:
        # Wrapping valid-looking IDX bytes in gzip lets the fuzzer reach the decompression path
        # with meaningful content; raw inputs that start with 1f 8b exercise damaged gzip.
        body = gzip.compress(body, compresslevel=1, mtime=0)
    return expect, body


def test_one_input(data: bytes) -> None:
    expect, body = _materialise(data)
    with open(_PATH, "wb") as fh:
        fh.write(body)
    try:
        out = read_idx(_PATH, expect=expect)  # type: ignore[arg-type]
    except DataError as exc:
        message = str(exc)
        if "\n" in message or not message.startswith(f"{_PATH}: "):
            raise RuntimeError(f"badly formed error message: {message!r}") from None
        return
    if out.dtype.name != "uint8" or not 1 <= out.ndim <= 3:
        raise RuntimeError(f"unexpected result {out.dtype} {out.shape}")


def write_seeds(folder: str) -> None:
    """Write a few valid inputs (mode byte + IDX bytes) so the fuzzer starts past the header."""
    import numpy as np

    from digitnet.data.idx import idx_bytes

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    seeds = {
        "images": bytes([1]) + idx_bytes(rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)),
        "labels": bytes([2]) + idx_bytes(np.arange(10)),
        "labels_gz": bytes([0x82]) + idx_bytes(np.arange(10)),
        "generic_2d": bytes([0]) + idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4)),
        "images_gz": bytes([0x81]) + idx_bytes(np.zeros((1, 28, 28), np.uint8)),
    }
    for name, data in seeds.items():
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(data)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        write_seeds(sys.argv[2])
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
