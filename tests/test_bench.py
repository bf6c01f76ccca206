"""``digitnet bench``: the report's structure (JSON keys, table rows); no timing is asserted."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from digitnet.bench import format_report
from digitnet.bench.train import summarise
from digitnet.cli import main


def test_bench_infer_json_has_every_model_backend_and_batch(capsys):
    # Tiny: one repeat, a few calls per measurement; the ONNX backend's export is covered by
    # tests/test_export.py (it takes ~10 s on 2 cores, too slow for this quick check).
    argv = [
        "bench",
        "--what",
        "infer",
        "--repeats",
        "1",
        "--min-time",
        "0.01",
        "--threads",
        "1",
        "--batches",
        "1,4",
        "--models",
        "fast",
        "--backends",
        "eager,torchscript",
        "--json",
    ]
    assert main(argv) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(rep) == {"machine", "infer"}
    assert rep["machine"]["cpu_count"] >= 1 and rep["infer"]["threads"] == 1
    res = rep["infer"]["results"]["fast"]
    assert set(res) == {"eager", "torchscript"}
    for r in res.values():
        assert set(r["images_per_s"]) == {"1", "4"} and all(
            v > 0 for v in r["images_per_s"].values()
        )
        assert r["latency_ms"] > 0 and len(r["runs"]["4"]) == 1


def test_bench_infer_table(capsys):
    assert (
        main(
            [
                "bench",
                "--what",
                "infer",
                "--repeats",
                "1",
                "--min-time",
                "0.01",
                "--threads",
                "1",
                "--batches",
                "2",
                "--models",
                "fast",
                "--backends",
                "eager",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "inference: images/s" in out
    row = next(ln for ln in out.splitlines() if ln.startswith("fast"))
    assert row.split()[:2] == ["fast", "eager"]


def test_bench_train_capped_run_reports_not_reached(mnist_dir, capsys):
    # A 0.3 s cap stops before the first quarter-epoch evaluation: every level "not reached".
    assert (
        main(
            [
                "bench",
                "--what",
                "train",
                "--recipes",
                "fast",
                "--repeats",
                "1",
                "--time-cap",
                "0.3",
                "--threads",
                "1",
                "--data-dir",
                str(mnist_dir),
                "--json",
            ]
        )
        == 0
    )
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    tr = rep["train"]
    assert tr["levels"] == ["0.990", "0.993", "0.995"] and tr["eval_every"] == 0.25
    assert tr["train_images"] > 0 and tr["peak_rss_mb"] >= tr["peak_rss_mb_before_training"] > 0
    fast = tr["results"]["fast"]
    assert fast["runs"][0]["capped"] is True
    assert all(
        m["median_s"] is None and m["not_reached_in_s"] >= 0.3 for m in fast["levels"].values()
    )


def _run(recipe, seconds, acc, reached):
    return {
        "recipe": recipe,
        "train_seconds": seconds,
        "best_accuracy": acc,
        "capped": False,
        "reached": {
            k: (None if v is None else {"seconds": v, "epoch": 1.0}) for k, v in reached.items()
        },
    }


def test_summarise_medians_ratios_and_unreached_levels():
    runs = {
        "fast": [
            _run("fast", 20, 0.994, {"0.990": 10, "0.993": 14}),
            _run("fast", 22, 0.995, {"0.990": 12, "0.993": 18}),
            _run("fast", 21, 0.994, {"0.990": 11, "0.993": 16}),
        ],
        "paper": [
            _run("paper", 90, 0.991, {"0.990": 33, "0.993": None}),
            _run("paper", 90, 0.992, {"0.990": 44, "0.993": None}),
            _run("paper", 90, 0.993, {"0.990": 22, "0.993": 80}),
        ],
    }
    for rs in runs.values():
        for r in rs:
            r["reached"].setdefault("0.995", None)
    s = summarise(runs, (0.990, 0.993, 0.995))
    assert (
        s["fast"]["levels"]["0.990"]["median_s"] == 11
        and s["fast"]["levels"]["0.990"]["x_fast"] == 1.0
    )
    assert (
        s["paper"]["levels"]["0.990"]["median_s"] == 33
        and s["paper"]["levels"]["0.990"]["x_fast"] == 3.0
    )
    # Reached by one run of three: not reported as a median (that would hide the slow runs).
    p93 = s["paper"]["levels"]["0.993"]
    assert p93["median_s"] is None and p93["reached_in"] == "1/3" and p93["not_reached_in_s"] == 90
    report = {
        "train": {
            "levels": ["0.990", "0.993", "0.995"],
            "repeats": 3,
            "train_images": 24345,
            "eval_every": 0.25,
            "time_cap_s": 90,
            "results": s,
            "peak_rss_mb": 700,
            "peak_rss_mb_before_training": 200,
        }
    }
    text = format_report(report)
    paper = next(ln for ln in text.splitlines() if ln.startswith("paper"))
    assert "33.0 s (3.00x)" in paper and "not reached in 90 s (1/3)" in paper
    assert "peak resident memory of the training process: 700 MB" in text


def test_bench_rejects_unknown_names(capsys):
    assert main(["bench", "--what", "train", "--recipes", "fast,nope"]) == 2
    assert "unknown recipe(s) nope" in capsys.readouterr().err
    assert main(["bench", "--what", "infer", "--backends", "tensorrt"]) == 2
    assert "unknown backend(s) tensorrt" in capsys.readouterr().err
