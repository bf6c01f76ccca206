"""Temperature scaling, ECE and accuracy at coverage (digitnet.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from digitnet.calibration import (
    accuracy_at_coverage,
    calibrate_checkpoint_meta,
    expected_calibration_error,
    fit_temperature,
    nll,
    softmax,
)


def _overconfident(n: int, true_t: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose labels are drawn from softmax(logits / true_t): the right T is true_t."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4.0, (n, 10))
    p = softmax(logits, true_t)
    labels = np.array([rng.choice(10, p=row) for row in p])
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_fit_temperature_recovers_the_generating_temperature(true_t):
    logits, labels = _overconfident(6000, true_t, seed=1)
    t = fit_temperature(logits, labels)
    assert abs(t - true_t) / true_t < 0.08
    # It is the NLL minimum: both neighbours are worse.
    assert nll(logits, labels, t) <= min(nll(logits, labels, 0.9 * t), nll(logits, labels, 1.1 * t))


def test_temperature_lowers_ece_and_keeps_the_argmax():
    logits, labels = _overconfident(5000, 3.0, seed=2)
    cal = calibrate_checkpoint_meta(logits, labels)
    assert cal["split"] == "validation" and cal["images"] == 5000
    assert cal["ece_after"] < 0.5 * cal["ece_before"]
    assert (softmax(logits, cal["temperature"]).argmax(1) == logits.argmax(1)).all()


def test_ece_known_values():
    # All answers at 0.9 and 90% right: perfectly calibrated.
    conf = np.full(100, 0.9)
    ok = np.arange(100) < 90
    assert expected_calibration_error(conf, ok) == pytest.approx(0.0)
    # All at 0.9 and all wrong: off by 0.9.
    assert expected_calibration_error(conf, np.zeros(100, bool)) == pytest.approx(0.9)
    # Two bins of 50: (0.95 conf, 100% right) and (0.55 conf, 50% right): |0.05| and |0.05|.
    conf2 = np.r_[np.full(50, 0.95), np.full(50, 0.55)]
    ok2 = np.r_[np.ones(50, bool), np.arange(50) < 25]
    assert expected_calibration_error(conf2, ok2) == pytest.approx(0.05)


def test_accuracy_at_coverage_drops_the_least_confident():
    conf = np.linspace(0.0, 1.0, 100)
    ok = np.arange(100) >= 5  # the 5 least confident answers are the wrong ones
    acc, threshold = accuracy_at_coverage(conf, ok, 0.95)
    assert acc == pytest.approx(1.0)
    assert threshold == pytest.approx(conf[5])
    acc_all, _ = accuracy_at_coverage(conf, ok, 1.0)
    assert acc_all == pytest.approx(0.95)
    with pytest.raises(ValueError):
        accuracy_at_coverage(conf, ok, 0.0)


def test_fit_temperature_rejects_mismatched_input():
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((3, 10)), np.zeros(4, np.int64))


def test_bundled_model_is_calibrated_on_a_validation_split():
    from digitnet.checkpoint import read_metadata
    from digitnet.inference import bundled_model_path

    cal = read_metadata(bundled_model_path()).get("calibration")
    assert cal is not None, "the bundled model carries no calibration"
    assert cal["split"] == "validation" and cal["images"] > 0
    assert 0.05 < cal["temperature"] < 20
    assert cal["ece_after"] <= cal["ece_before"]


def test_train_fits_the_temperature_on_its_validation_split(tiny_mnist, tmp_path):
    """``digitnet train --val-split N`` stores meta["calibration"] in the final checkpoint."""
    from digitnet.checkpoint import read_metadata
    from digitnet.cli import main

    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--recipe",
            "fast",
            "--epochs",
            "1",
            "--data-dir",
            str(tiny_mnist),
            "--val-split",
            "200",
            "--out",
            str(out),
            "--quiet",
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    cal = read_metadata(out / "model.safetensors")["calibration"]
    assert cal["split"] == "validation" and cal["images"] == 200
    assert (
        cal["temperature"] > 0
        and 0 <= cal["ece_after"] <= 1
        and cal["nll_after"] <= cal["nll_before"]
    )


def test_train_without_validation_split_is_not_calibrated(tiny_mnist, tmp_path):
    from digitnet.checkpoint import read_metadata
    from digitnet.cli import main

    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--recipe",
                "fast",
                "--epochs",
                "1",
                "--data-dir",
                str(tiny_mnist),
                "--out",
                str(out),
                "--quiet",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert "calibration" not in read_metadata(out / "model.safetensors")
