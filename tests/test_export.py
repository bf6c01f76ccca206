"""Export (ONNX, TorchScript) parity on real MNIST digits, metadata, and ``predict --backend onnx``.

Parity is checked on the network's logits for normalised real test digits, for the bundled model
and for freshly created ``fast`` and ``paper`` models (untrained weights exercise the same graph).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")  # the torch.export-based ONNX exporter needs it

from digitnet.checkpoint import save_checkpoint
from digitnet.cli import main
from digitnet.errors import CheckpointError, UsageError
from digitnet.export import export_checkpoint, export_model, sidecar_for
from digitnet.inference import OnnxPredictor, load_predictor

# Exported graphs use other kernels (and ONNX Runtime fuses conv + bias + relu), so logits
# differ by float rounding only: measured max |diff| ~2e-6 on the bundled model.
ATOL = 1e-4


@pytest.fixture(scope="module")
def digits(mnist_dir):
    from digitnet.data.mnist import load_mnist

    x, y = load_mnist(mnist_dir, "test")
    return x[:200].astype(np.float32) / 255.0, y[:200]


def _fresh_checkpoint(folder: Path, name: str) -> Path:
    import dataclasses

    from digitnet.data.tensors import input_spec
    from digitnet.models import create_model

    torch.manual_seed(0)
    m = create_model(name).eval()
    meta = {
        "model": name,
        "model_args": dataclasses.asdict(m.config),
        "input": input_spec("standardize"),
        "recipe": name,
    }
    return save_checkpoint(folder / f"{name}.safetensors", m, meta)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("which", ["bundled", "fast", "paper"])
def test_export_matches_eager_on_real_digits(which, fmt, digits, tmp_path, capsys):
    ckpt = None if which == "bundled" else _fresh_checkpoint(tmp_path, which)
    out = tmp_path / f"{which}.{'onnx' if fmt == 'onnx' else 'pt'}"
    rep = export_checkpoint(ckpt, fmt, out, check_images=digits[0])
    with capsys.disabled():
        print(
            f"\n{which} {fmt}: max |exported - eager| = {rep['max_abs_diff']:.2e} "
            f"on {rep['n_checked']} MNIST test digits"
        )
    assert rep["n_checked"] == 200
    assert rep["max_abs_diff"] < ATOL
    assert out.is_file() and sidecar_for(out).is_file()
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temporary file behind


@pytest.fixture(scope="module")
def bundled_onnx(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "digitnet.onnx"
    assert main(["export", "--format", "onnx", "--out", str(out)]) == 0
    return out


def test_onnx_metadata_and_dynamic_batch(bundled_onnx, digits):

    ref = load_predictor(None, backend="torch")
    side = json.loads(sidecar_for(bundled_onnx).read_text())
    pred = OnnxPredictor.load(bundled_onnx)
    # The normalisation travels inside the ONNX file (metadata_props), identical to the sidecar
    # and to the checkpoint's own.
    assert pred.meta["input"] == side["input"] == ref.meta["input"]
    assert pred.name == side["model"] == "digitnet"
    assert pred.test_accuracy == ref.test_accuracy
    x, y = digits
    for n in (1, 3, 200):  # the batch axis is dynamic
        p = pred.predict_proba(x[:n])
        assert p.shape == (n, 10)
        np.testing.assert_allclose(p, ref.predict_proba(x[:n]), atol=1e-5)
    assert (pred.predict(x)[0] == y).mean() > 0.97  # it still reads digits


def test_export_cli_reports_and_errors(tmp_path, capsys):
    ckpt = _fresh_checkpoint(tmp_path, "fast")
    out = tmp_path / "fast.pt"
    assert main(["export", str(ckpt), "--format", "torchscript", "--out", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["format"] == "torchscript" and rep["model"] == "fast" and rep["max_abs_diff"] < ATOL
    assert (
        main(["export", str(ckpt), "--format", "torchscript", "--out", str(out), "--opset", "17"])
        == 2
    )
    assert "--opset applies to ONNX export only" in capsys.readouterr().err
    assert (
        main(["export", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "x.onnx")])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitnet export: error:") and len(err.splitlines()) == 1
    with pytest.raises(UsageError):
        export_model(torch.nn.Linear(1, 1), {}, "tflite", tmp_path / "x")


def test_onnx_predictor_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a loadable ONNX model"):
        OnnxPredictor.load(bad)
    with pytest.raises(CheckpointError, match="no such ONNX model file"):
        OnnxPredictor.load(tmp_path / "missing.onnx")


def _png(path: Path, img01: np.ndarray) -> Path:
    from PIL import Image

    # Dark ink on white paper, as a person's scan would be; predict's preprocessing inverts it.
    Image.fromarray(255 - np.round(img01 * 255).astype(np.uint8), "L").resize((112, 112)).save(path)
    return path


def _predict_in_fresh_process(args: list[str]) -> list[dict]:
    """``digitnet predict ARGS --json --jobs 1`` in a new interpreter; its JSON rows, after
    checking that it succeeded without importing torch."""
    code = (
        "import json, sys\n"
        "from digitnet.cli import main\n"
        f"rc = main(['predict', *{args!r}, '--json', '--jobs', '1'])\n"
        "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules}))\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    lines = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert lines[-1] == {"rc": 0, "torch": False}
    return lines[:-1]


def test_predict_backend_onnx_never_imports_torch(bundled_onnx, digits, tmp_path, capsys):
    x, y = digits
    imgs = [str(_png(tmp_path / f"{i}_{int(y[i])}.png", x[i])) for i in range(8)]
    rows = _predict_in_fresh_process([*imgs, "--model", str(bundled_onnx), "--single"])
    onnx_texts = [r["text"] for r in rows]
    # Same images through the PyTorch backend: the same readings.
    assert main(["predict", *imgs, "--single", "--json", "--jobs", "1", "--backend", "torch"]) == 0
    torch_texts = [
        json.loads(ln)["text"] for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")
    ]
    assert onnx_texts == torch_texts
    assert sum(t == str(int(v)) for t, v in zip(onnx_texts, y[:8], strict=True)) >= 7


def test_predict_backend_mismatch_is_a_usage_error(tmp_path, capsys):
    img = tmp_path / "7.png"
    _png(img, np.zeros((28, 28), np.float32))
    assert (
        main(["predict", str(img), "--backend", "onnx", "--model", str(tmp_path / "m.safetensors")])
        == 2
    )
    assert "--backend onnx needs --model FILE.onnx" in capsys.readouterr().err
    assert (
        main(["predict", str(img), "--backend", "torch", "--model", str(tmp_path / "m.onnx")]) == 2
    )
    assert "runs with --backend onnx" in capsys.readouterr().err


def test_bundled_onnx_is_the_bundled_weights(digits):
    """The shipped digitnet.onnx was exported from the shipped safetensors and reads the same."""
    from digitnet.checkpoint import read_metadata
    from digitnet.inference import bundled_model_path, bundled_onnx_path

    onnx_pred = OnnxPredictor.load(bundled_onnx_path())
    assert onnx_pred.meta["source_save_id"] == read_metadata(bundled_model_path())["save_id"]
    x, _ = digits
    np.testing.assert_allclose(
        onnx_pred.predict_proba(x),
        load_predictor(None, backend="torch").predict_proba(x),
        atol=1e-5,
    )


def test_exported_onnx_carries_no_debug_metadata(bundled_onnx):
    # The exporter annotates every node with a Python stack trace (file paths of the machine
    # that exported it); neither a fresh export nor the shipped file keeps any of it.
    import onnx

    from digitnet.inference import bundled_onnx_path

    for path in (bundled_onnx, bundled_onnx_path()):
        proto = onnx.load(str(path))
        assert not any(len(n.metadata_props) for n in proto.graph.node), path
        assert b"stack_trace" not in Path(path).read_bytes()


def test_load_predictor_default_backend(monkeypatch):
    from digitnet import inference
    from digitnet.inference import choose_backend

    # No model: the bundled ONNX twin when ONNX Runtime is there, PyTorch when it is not.
    assert choose_backend(None) == "onnx"
    assert choose_backend("m.safetensors") == "torch" and choose_backend("m.onnx") == "onnx"
    assert choose_backend(None, "torch") == "torch" and choose_backend(None, "onnx") == "onnx"
    assert choose_backend(None, "auto", device="cuda") == "torch"  # ONNX here runs on the CPU
    with pytest.raises(UsageError, match="unknown backend"):
        choose_backend(None, "tensorrt")
    monkeypatch.setattr(inference, "onnxruntime_available", lambda: False)
    assert choose_backend(None) == "torch"
    assert load_predictor().backend == "torch"


def test_auto_never_serves_a_stale_onnx_twin(monkeypatch):
    """If the bundled weights change and the ONNX twin is not re-exported, "auto" must answer
    with the new weights (torch), not the old twin."""
    from digitnet import inference

    assert inference._bundled_save_id() and load_predictor().backend == "onnx"
    monkeypatch.setattr(inference, "_bundled_save_id", lambda: "another-save")
    assert load_predictor().backend == "torch"
    assert load_predictor(backend="onnx").backend == "onnx"  # asked for by name: as asked


def test_predict_default_never_imports_torch(digits, tmp_path):
    x, y = digits
    imgs = [str(_png(tmp_path / f"{i}_{int(y[i])}.png", x[i])) for i in range(4)]
    rows = _predict_in_fresh_process(imgs)  # no --model, no --backend: the bundled ONNX twin
    assert [r["text"] for r in rows] == [str(int(v)) for v in y[:4]]


def test_export_never_overwrites_its_source(tmp_path, capsys):
    ckpt = _fresh_checkpoint(tmp_path, "fast")
    from digitnet.checkpoint import sidecar_path

    before = ckpt.read_bytes()
    side_before = sidecar_path(ckpt).read_bytes()
    for out in (ckpt, sidecar_path(ckpt), tmp_path / "." / ckpt.name):
        for fmt in ("onnx", "torchscript"):
            assert main(["export", str(ckpt), "--format", fmt, "--out", str(out)]) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and "would overwrite" in err
    assert ckpt.read_bytes() == before and sidecar_path(ckpt).read_bytes() == side_before


def test_export_without_the_onnx_extra_names_it(tmp_path, monkeypatch, capsys):
    ckpt = _fresh_checkpoint(tmp_path, "fast")
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    assert main(["export", str(ckpt), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'digitnet[onnx]'" in err
    assert "onnxscript" in err and not (tmp_path / "m.onnx").exists()
