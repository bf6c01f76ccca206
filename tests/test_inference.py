"""The inference layer: ``load_predictor``, calibration, the normaliser, and broken models refused.

Broken models are built for real (a fresh ``fast`` network saved as a checkpoint, then spoiled
the way the reliability review spoiled them) and must be refused at load with one line naming
the file, never read every digit as "0" at NaN confidence.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from digitnet.checkpoint import save_checkpoint
from digitnet.cli import main
from digitnet.errors import CheckpointError, DigitnetError, UsageError
from digitnet.inference import (
    DEFAULT_INPUT,
    OnnxPredictor,
    Predictor,
    TorchPredictor,
    check_input_spec,
    load_predictor,
    normalise,
    softmax,
)
from digitnet.inference.spec import known_images


def _model(seed: int = 0):
    from digitnet.models import create_model

    torch.manual_seed(seed)
    return create_model("fast").eval()


def _save(folder: Path, name: str, model=None, **meta_extra) -> Path:
    m = model if model is not None else _model()
    meta = {
        "model": "fast",
        "model_args": dataclasses.asdict(m.config),
        "input": dict(DEFAULT_INPUT),
        "recipe": "fast",
        **meta_extra,
    }
    return save_checkpoint(folder / f"{name}.safetensors", m, meta)


def test_normalise_is_one_rule_for_numpy_and_torch():
    x = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    for spec in (DEFAULT_INPUT, {"kind": "raw255"}, {"kind": "unit"}):
        a = normalise(x, spec)
        b = normalise(torch.from_numpy(x), spec).numpy()
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(normalise(x, DEFAULT_INPUT), (x - 0.1307) / 0.3081, rtol=1e-5)


@pytest.mark.parametrize(
    "spec, problem",
    [
        ({"kind": "sqrt"}, "unknown input kind"),
        ({"kind": "standardize", "mean": 0.1, "std": 0.0}, "std must be > 0"),
        ({"kind": "standardize", "mean": 0.1, "std": -1.0}, "std must be > 0"),
        ({"kind": "standardize", "mean": 0.1}, "finite mean and std"),
        ({"kind": "standardize", "mean": "a", "std": 0.3}, "finite mean and std"),
        ({"kind": "standardize", "mean": math.nan, "std": 0.3}, "finite mean and std"),
        ("standardize", "not an object"),
    ],
)
def test_input_spec_is_validated_never_guessed(spec, problem):
    with pytest.raises(CheckpointError, match=problem) as info:
        check_input_spec(spec, "m.safetensors")
    assert str(info.value).startswith("m.safetensors: ") and "\n" not in str(info.value)
    assert check_input_spec(None, "m") == DEFAULT_INPUT


def test_calibration_temperature_is_applied_by_torch_predictor(tmp_path):
    plain = load_predictor(_save(tmp_path, "plain"))
    hot = load_predictor(_save(tmp_path, "hot", calibration={"temperature": 2.5}))
    assert isinstance(hot, TorchPredictor) and isinstance(hot, Predictor)
    assert plain.temperature == 1.0 and hot.temperature == 2.5
    x = np.random.default_rng(1).random((5, 28, 28), dtype=np.float32)
    z = plain.logits(normalise(x, plain.input)[:, None])
    np.testing.assert_allclose(plain.predict_proba(x), softmax(z), atol=1e-6)
    np.testing.assert_allclose(hot.predict_proba(x), softmax(z, 2.5), atol=1e-6)
    digits, conf = hot.predict(x)
    np.testing.assert_array_equal(digits, z.argmax(1))  # a temperature never changes the answer
    assert np.all(conf <= plain.predict_proba(x).max(1) + 1e-6)  # T > 1 only softens


@pytest.mark.parametrize(
    "cal",
    [
        {"temperature": 0},
        {"temperature": -1.0},
        {"temperature": "2"},
        {"temperature": math.inf},
        {"temperature": math.nan},
        [2.0],
    ],
)
def test_bad_calibration_is_refused_at_load(tmp_path, cal):
    p = _save(tmp_path, "badcal", calibration=cal)
    with pytest.raises(CheckpointError) as info:
        load_predictor(p)
    msg = str(info.value)
    assert "badcal.safetensors" in msg and "\n" not in msg and "calibration" in msg


def _spoiled(tmp_path: Path, how: str) -> Path:
    m = _model()
    sd = m.state_dict()
    if how == "negative_bn_variance":
        key = next(k for k in sd if k.endswith("running_var"))
        sd[key].fill_(-1.0)
    elif how == "weights_x1e38":
        for k, v in sd.items():
            if v.is_floating_point() and not k.endswith(("running_var", "running_mean")):
                v.mul_(1e38)
    m.load_state_dict(sd)
    return _save(tmp_path, how, model=m)


@pytest.mark.parametrize("how", ["negative_bn_variance", "weights_x1e38"])
def test_broken_model_is_refused_at_load_in_one_line(tmp_path, how, capsys):
    p = _spoiled(tmp_path, how)
    with pytest.raises(CheckpointError) as info:
        load_predictor(p)
    assert p.name in str(info.value) and "\n" not in str(info.value)
    # Through the CLI: one line, exit 2, and nothing (no NaN) on stdout.
    from PIL import Image

    img = tmp_path / "7.png"
    Image.fromarray(np.pad(np.full((20, 6), 255, np.uint8), 20)).save(img)
    assert main(["predict", str(img), "--model", str(p), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and p.name in err


def test_input_std_zero_is_refused(tmp_path):
    # (The checkpoint reader may refuse it first; either way: a CheckpointError naming the file.)
    p = _save(tmp_path, "std0")
    meta = load_predictor(p).meta
    meta["input"] = {"kind": "standardize", "mean": 0.13, "std": 0.0}
    p0 = save_checkpoint(tmp_path / "std0b.safetensors", _model(), meta)
    with pytest.raises(CheckpointError, match=r"std0b\.safetensors"):
        load_predictor(p0)


def test_unknown_input_kind_is_refused(tmp_path):
    p = _save(tmp_path, "kind")
    meta = load_predictor(p).meta
    meta["input"] = {"kind": "raw65535"}
    p2 = save_checkpoint(tmp_path / "kind2.safetensors", _model(), meta)
    with pytest.raises(CheckpointError, match=r"kind2\.safetensors"):
        load_predictor(p2)


def test_sanity_check_input_is_fixed_and_plausible():
    x = known_images()
    assert x.shape == (2, 28, 28) and x.dtype == np.float32
    assert x[0].max() == 0.0 and 0.05 < x[1].mean() < 0.4  # blank, and a ring of ink


def test_load_predictor_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown backend"):
        load_predictor(None, backend="tpu")
    with pytest.raises(UsageError, match="--backend onnx needs"):
        load_predictor(tmp_path / "m.safetensors", backend="onnx")
    with pytest.raises(UsageError, match="runs with --backend onnx"):
        load_predictor(tmp_path / "m.onnx", backend="torch")
    with pytest.raises(DigitnetError, match="no such"):
        load_predictor(tmp_path / "missing.onnx")


def test_predictor_protocol_members():
    p = load_predictor()
    assert isinstance(p, Predictor)
    assert p.name == "digitnet" and p.backend in ("onnx", "torch")
    assert p.test_accuracy is None or 0.9 < p.test_accuracy <= 1.0
    probs = p.predict_proba(known_images())
    assert probs.shape == (2, 10) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert p.predict_proba(np.zeros((0, 28, 28), np.float32)).shape == (0, 10)
    with pytest.raises(ValueError):
        p.predict_proba(np.zeros((2, 27, 28), np.float32))


# ----------------------------------------------------------------- ONNX (needs the onnx extra)


@pytest.fixture(scope="module")
def fast_onnx(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from digitnet.export import export_checkpoint

    d = tmp_path_factory.mktemp("onnx")
    ckpt = _save(d, "cal", calibration={"temperature": 1.7})
    export_checkpoint(ckpt, "onnx", d / "cal.onnx")
    return ckpt, d / "cal.onnx"


def test_onnx_predictor_applies_the_same_calibration(fast_onnx):
    ckpt, onnx_path = fast_onnx
    t, o = load_predictor(ckpt), load_predictor(onnx_path)
    assert isinstance(o, OnnxPredictor) and o.temperature == 1.7 == t.temperature
    x = np.random.default_rng(2).random((16, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(o.predict_proba(x), t.predict_proba(x), atol=1e-5)


@pytest.mark.parametrize(
    "raw, problem",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"input": "standardize"}', "not an object"),
        ('{"input": {"kind": "sqrt"}}', "unknown input kind"),
        ('{"calibration": {"temperature": -2}}', "temperature"),
        ('{"metrics": 3}', "'metrics' is not an object"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
    ],
)
def test_malformed_onnx_metadata_is_one_line(fast_onnx, tmp_path, raw, problem):
    import onnx

    _, onnx_path = fast_onnx
    proto = onnx.load(str(onnx_path))
    for entry in proto.metadata_props:
        if entry.key == "digitnet":
            entry.value = raw
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(CheckpointError, match=problem) as info:
        load_predictor(bad)
    assert str(info.value).startswith(f"{bad}: ") and "\n" not in str(info.value)


def test_onnx_without_metadata_is_one_line(fast_onnx, tmp_path):
    import onnx

    _, onnx_path = fast_onnx
    proto = onnx.load(str(onnx_path))
    del proto.metadata_props[:]
    bad = tmp_path / "nometa.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(CheckpointError, match="no digitnet metadata"):
        load_predictor(bad)


def test_export_carries_calibration_in_its_sidecar(fast_onnx):
    _, onnx_path = fast_onnx
    side = json.loads(Path(str(onnx_path) + ".json").read_text())
    assert side["calibration"] == {"temperature": 1.7}
