"""Numeric flags of ``digitnet bench`` are refused in one line when not finite or out of range
(``--min-time nan`` used to hang the measurement loop)."""

from __future__ import annotations

import pytest

from digitnet.cli import main


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--min-time", "nan"),
        ("--min-time", "inf"),
        ("--min-time", "-1"),
        ("--min-time", "0"),
        ("--time-cap", "nan"),
        ("--time-cap", "-inf"),
        ("--repeats", "0"),
        ("--repeats", "-3"),
        ("--repeats", "1" + "0" * 30),
        ("--threads", "-1"),
        ("--batches", "0"),
        ("--batches", "1,nan"),
        ("--batches", "10000000"),
        ("--batches", ","),
    ],
)
def test_bench_refuses_bad_numbers_in_one_line(flag, value, capsys):
    assert main(["bench", "--what", "infer", flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and "Traceback" not in err
