"""Property tests for the IDX reader: round trips, and arbitrary bytes only ever raise DataError.

The coverage-guided counterpart is ``fuzz/fuzz_idx.py`` (atheris); inputs it found to crash the
reader belong in ``test_idx.py`` as regression tests.
"""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from digitnet.data.idx import read_idx, write_idx
from digitnet.errors import DataError

# Modest budgets: the whole file runs in a few seconds on a shared 2-core machine.
FAST = settings(max_examples=200, deadline=None)

shapes = st.one_of(
    st.tuples(st.integers(0, 40)),
    st.tuples(st.integers(0, 6), st.integers(0, 30)),
    st.tuples(st.integers(0, 4), st.integers(0, 30), st.integers(0, 30)),
)

# Bytes that look like the start of an IDX file, so the fuzzer gets past the magic check often.
idx_like = st.builds(
    lambda dtype, ndim, dims, body: (
        bytes([0, 0, dtype, ndim]) + struct.pack(f">{len(dims)}I", *dims) + body
    ),
    st.sampled_from([0x08, 0x08, 0x08, 0x09, 0x0A]),
    st.integers(0, 5),
    st.lists(st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1)), max_size=4),
    st.binary(max_size=300),
)
any_bytes = st.one_of(st.binary(max_size=400), idx_like)


def _check_only_data_error(path: Path, data: bytes, **kwargs: object) -> None:
    path.write_bytes(data)
    try:
        out = read_idx(path, **kwargs)  # type: ignore[arg-type]
    except DataError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: ") and "\n" not in message
    else:
        assert out.dtype == np.uint8 and 1 <= out.ndim <= 3


@FAST
@given(arr=shapes.flatmap(lambda s: arrays(np.uint8, s)), gz=st.booleans())
def test_round_trip(arr: np.ndarray, gz: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("x.gz" if gz else "x")
        write_idx(path, arr)
        back = read_idx(path)
    assert back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


@FAST
@given(data=any_bytes, expect=st.sampled_from([None, "images", "labels"]))
def test_arbitrary_bytes_raise_only_data_error(data: bytes, expect: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _check_only_data_error(Path(tmp) / "raw", data, expect=expect)


@FAST
@given(data=any_bytes, cut=st.integers(0, 64), flip=st.integers(0, 2**16))
def test_arbitrary_gzip_wrapped_bytes_raise_only_data_error(
    data: bytes, cut: int, flip: int
) -> None:
    blob = bytearray(gzip.compress(data, mtime=0))
    if flip % 3 == 0:  # damage one byte of the compressed stream
        blob[flip % len(blob)] ^= 0x5A
    if flip % 5 == 0:  # or cut the stream short
        del blob[max(2, len(blob) - cut) :]
    with tempfile.TemporaryDirectory() as tmp:
        _check_only_data_error(Path(tmp) / "x.gz", bytes(blob))
