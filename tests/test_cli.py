"""The command-line contract scripts rely on: train/evaluate --json keys, models, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from digitnet.cli import main
from digitnet.inference import bundled_model_path, load_predictor


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_models_json_lists_every_model(capsys):
    assert main(["models", "--json"]) == 0
    infos = json.loads(capsys.readouterr().out)
    names = [i["name"] for i in infos]
    assert names[0] == "digitnet"
    assert {"paper", "course", "lenet5", "resnet", "mlp", "fast"} <= set(names)
    assert all(i["params"] > 0 and i["mflops"] > 0 and i["summary"] for i in infos)


def test_train_then_evaluate_json_contract(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--recipe",
            "fast",
            "--limit-train",
            "1000",
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--lr",
            "0.1",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--data-dir",
            str(mnist_dir),
            "--out",
            str(out),
            "--quiet",
            "--json",
        ]
    )
    assert code == 0
    res = last_json(capsys.readouterr().out)
    for key in ("test_accuracy", "test_loss", "train_seconds", "epochs", "checkpoint"):
        assert key in res, key
    assert res["epochs"] == 2 and 0.7 < res["test_accuracy"] <= 1
    assert (
        main(
            [
                "evaluate",
                res["checkpoint"],
                "--data-dir",
                str(mnist_dir),
                "--json",
                "--report",
                str(tmp_path / "rep"),
            ]
        )
        == 0
    )
    ev = last_json(capsys.readouterr().out)
    assert ev["accuracy"] == pytest.approx(res["test_accuracy"])
    assert len(ev["per_class"]) == 10 and len(ev["confusion"]) == 10
    assert sum(map(sum, ev["confusion"])) == 10000
    assert sum(r[i] for i, r in enumerate(ev["confusion"])) == round(ev["accuracy"] * 10000)
    for name in ("confusion.png", "errors.png", "report.md"):
        assert (tmp_path / "rep" / name).stat().st_size > 0


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["train", "--data-dir", str(tmp_path / "missing"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing" in err and "Traceback" not in err
    assert main(["train", "--recipe", "nope"]) == 2
    assert "unknown recipe 'nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    assert main(["evaluate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.safetensors" in err


def test_python_dash_m_works():
    r = subprocess.run(
        [sys.executable, "-m", "digitnet", "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stdout.startswith("digitnet ")


def test_bundled_model_reaches_99_4_percent_on_mnist_test(mnist_dir):
    """The shipped weights: >= 99.4% on the official 10,000 test images (trained on 24,345)."""
    from digitnet.data.mnist import load_mnist

    p = load_predictor(None, backend="torch")
    assert p.path == bundled_model_path()
    data = p.meta["data"]
    assert data["train_file_items"] == 24345
    assert data["train_images"] + data["val_images"] == 24345  # 1,000 held out to calibrate
    assert p.meta["calibration"]["split"] == "validation"
    x, y = load_mnist(mnist_dir, "test")
    probs = p.predict_proba(x.astype("float32") / 255.0)
    acc = float((probs.argmax(1) == y).mean())
    assert acc >= 0.994, acc
    assert bundled_model_path().stat().st_size <= 5 * 1024 * 1024
