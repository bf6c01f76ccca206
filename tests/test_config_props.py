"""Property tests for the training-config readers: any file, any values, only UsageError.

``load_config_file`` + ``resolve_config`` either give a ``TrainConfig`` that ``validate`` accepts
or raise a ``DigitnetError`` with one line; never a TypeError from a wrong-typed value, never a
RecursionError, and always quickly. Budgets as in ``test_checkpoint_props.py``
(``HYPOTHESIS_PROFILE=long`` for a longer run).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digitnet.engine.config import TrainConfig, resolve_config
from digitnet.errors import DigitnetError

settings.register_profile(
    "ci", max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=5000, deadline=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FIELDS = [f for f in TrainConfig.__dataclass_fields__] + ["augment.rotate", "nope"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
settings_dicts = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5)


def _check(path: Path) -> None:
    t0 = time.perf_counter()
    try:
        cfg = resolve_config(config_file=path)
        assert isinstance(cfg, TrainConfig)
    except DigitnetError as exc:
        assert "\n" not in str(exc), str(exc)
    assert time.perf_counter() - t0 < 1.5


@given(st.one_of(settings_dicts, json_values))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_json_config_of_any_value(tmp_path: Path, value: object) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps(value))
    _check(p)


@given(st.binary(max_size=200))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_config_of_any_bytes(tmp_path: Path, data: bytes) -> None:
    for name in ("c.json", "c.toml"):
        p = tmp_path / name
        p.write_bytes(data)
        _check(p)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "epochs",
                "batch_size",
                "lr",
                "momentum",
                "seed",
                "threads",
                "weight_decay",
                "label_smoothing",
                "eval_every",
                "limit_train",
                "val_split",
            ]
        ),
        st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True)),
        max_size=4,
    )
)
def test_overrides_of_any_number(overrides: dict) -> None:
    try:
        resolve_config(**overrides)
    except DigitnetError as exc:
        assert "\n" not in str(exc)
