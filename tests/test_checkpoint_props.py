"""Property tests for the checkpoint readers: any header, any metadata, only CheckpointError.

For arbitrary safetensors headers and arbitrary (or nearly valid) digitnet metadata, the readers
either return or raise ``CheckpointError`` with one line naming the file, within a bounded time
and without building a model larger than the limit. The coverage-guided counterpart is
``fuzz/fuzz_checkpoint.py`` (atheris).

Budgets: the ``ci`` profile (default) runs a few seconds; ``HYPOTHESIS_PROFILE=long`` runs
thousands of examples per property (docs/reliability.md has the figures).
"""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digitnet.checkpoint import _embedded_meta, _read_header, check_metadata, read_metadata
from digitnet.errors import CheckpointError
from digitnet.models import list_models

settings.register_profile(
    "ci", max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=5000, deadline=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PATH = Path("x.safetensors")
# Each example must answer quickly: a schema check that built a model, or parsed JSON with
# recursion, would show up here first.
MAX_SECONDS = 1.5

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
sizes = st.one_of(
    st.integers(-3, 70),
    st.sampled_from([0, 1, 8000, 10**7, 2**40]),
    st.floats(),
    st.text(max_size=3),
    st.booleans(),
)
model_args = st.dictionaries(
    st.sampled_from(
        [
            "widths",
            "depths",
            "blocks",
            "hidden",
            "c1",
            "c3",
            "c4",
            "c5",
            "f6",
            "channels",
            "dropout",
            "num_classes",
            "activation",
            "nope",
        ]
    ),
    st.one_of(sizes, st.lists(sizes, max_size=5), st.sampled_from(["relu", "none", "tanh"])),
    max_size=4,
)
input_specs = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["standardize", "raw255", "unit", "x"])},
        optional={"mean": scalars, "std": scalars},
    ),
)
near_valid_meta = st.fixed_dictionaries(
    {
        "format": st.sampled_from(["digitnet-checkpoint", "digitnet-checkpoint", "other"]),
        "model": st.one_of(st.sampled_from(list_models()), scalars),
    },
    optional={
        "model_args": st.one_of(model_args, json_values),
        "input": input_specs,
        "save_id": scalars,
        "resumable": scalars,
        "data": json_values,
        "train_state": json_values,
        "tensors_sha256": scalars,
    },
)


def _one_line_naming_the_file(exc: CheckpointError) -> None:
    msg = str(exc)
    assert msg.startswith(str(PATH)), msg
    assert "\n" not in msg, msg


@given(near_valid_meta)
def test_metadata_schema_returns_or_raises_checkpoint_error(meta: dict) -> None:
    t0 = time.perf_counter()
    try:
        check_metadata(PATH, meta)
    except CheckpointError as exc:
        _one_line_naming_the_file(exc)
    assert time.perf_counter() - t0 < MAX_SECONDS


@given(st.one_of(json_values, near_valid_meta))
def test_embedded_metadata_of_any_json(value: object) -> None:
    header = {"__metadata__": {"digitnet": json.dumps(value)}}
    try:
        meta = _embedded_meta(PATH, header)
        assert isinstance(meta, dict)
    except CheckpointError as exc:
        _one_line_naming_the_file(exc)


@given(json_values, st.integers(0, 3))
def test_header_of_any_json(value: object, pad: int) -> None:
    raw = json.dumps(value).encode() + b" " * pad
    data = struct.pack("<Q", len(raw)) + raw
    try:
        header = _read_header(PATH, data)
        assert isinstance(header, dict)
    except CheckpointError as exc:
        _one_line_naming_the_file(exc)


@given(st.binary(max_size=300))
def test_header_of_any_bytes(data: bytes) -> None:
    try:
        _read_header(PATH, data)
    except CheckpointError as exc:
        _one_line_naming_the_file(exc)


@given(st.integers(1, 200_000), st.sampled_from(["[", '{"a":']))
@settings(max_examples=20)
def test_deep_nesting_is_refused_without_recursion(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    raw = (opener * depth + "0" + closer * depth).encode()
    header = {"__metadata__": {"digitnet": raw.decode()}}
    try:
        _embedded_meta(PATH, header)
    except CheckpointError as exc:
        _one_line_naming_the_file(exc)


@pytest.fixture
def ckpt_file(tmp_path: Path) -> Path:
    return tmp_path / "x.safetensors"


@given(st.binary(max_size=200))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_read_metadata_of_any_file(ckpt_file: Path, data: bytes) -> None:
    ckpt_file.write_bytes(data)
    try:
        read_metadata(ckpt_file)
    except CheckpointError as exc:
        assert str(exc).startswith(str(ckpt_file)) and "\n" not in str(exc)
