"""``digitnet adapt`` / ``digitnet.adapt``: labelled examples in, an adapted checkpoint out.

Mechanics only (seconds-long budgets on a few synthetic digits, MNIST replay from the tiny
synthetic IDX files); what adapting gains is measured by benchmarks/bench_adapt.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_digits
from PIL import Image

from digitnet.adapt import (
    AdaptProgress,
    ExampleSet,
    adapt_model,
    check_out,
    output_path,
    read_examples,
)
from digitnet.checkpoint import load_checkpoint, read_metadata
from digitnet.cli import main
from digitnet.errors import ImageError, UsageError
from digitnet.inference import bundled_model_path

SECONDS = "4"  # a few steps: enough to check the mechanics, not to learn much


def _save_digit(img28: np.ndarray, path: Path) -> None:
    """An MNIST-like digit as a user's file: dark ink on white paper, 3x larger, a margin."""
    up = Image.fromarray(255 - img28).resize((84, 84), Image.BICUBIC)
    page = Image.new("L", (120, 120), 255)
    page.paste(up, (18, 18))
    page.save(path)


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two labelled digits of each class: half named ``<d>_<who>.png``, half in folders
    named by the digit; plus files that must be skipped."""
    root = tmp_path_factory.mktemp("examples")
    x, y = synthetic_digits(200, seed=5)
    seen: dict[int, int] = {}
    for img, lab in zip(x, y, strict=True):
        d = int(lab)
        if seen.get(d, 0) >= 2:
            continue
        if seen.get(d, 0) == 0:
            _save_digit(img, root / f"{d}_anna.png")
        else:
            (root / str(d)).mkdir(exist_ok=True)
            _save_digit(img, root / str(d) / "anna.png")
        seen[d] = seen.get(d, 0) + 1
    assert all(seen.get(d) == 2 for d in range(10))
    return root


@pytest.fixture()
def junk(tmp_path: Path) -> Path:
    """Files adapt must skip, one line each: no label, a number label, blank, not an image."""
    folder = tmp_path / "junk"
    folder.mkdir()
    x, _ = synthetic_digits(3, seed=9)
    _save_digit(x[0], folder / "anna.png")
    _save_digit(x[1], folder / "2026-form.png")
    Image.new("L", (60, 60), 255).save(folder / "5_blank.png")
    (folder / "4_broken.png").write_bytes(b"this is not a PNG file")
    return folder


def test_read_examples_labels_from_names_and_folders(examples: Path, junk: Path) -> None:
    ex = read_examples([examples, junk])
    assert len(ex) == 20
    assert ex.per_digit == {d: 2 for d in range(10)}
    assert ex.images.shape == (20, 28, 28) and ex.images.dtype == np.float32
    for src, lab in zip(ex.sources, ex.labels, strict=True):
        p = Path(src)
        assert (p.parent.name if p.parent.name.isdigit() else p.name[0]) == str(lab)
    # Each skipped file has its line, naming the file and why.
    assert len(ex.skipped) == 4
    why = {Path(line.split(":")[0]).name: line for line in ex.skipped}
    assert "no label" in why["anna.png"]
    assert "'2026'" in why["2026-form.png"] and "not one digit" in why["2026-form.png"]
    assert "no ink" in why["5_blank.png"]
    assert "4_broken.png" in why


def test_nothing_usable_is_one_line_error(junk: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(ImageError, match="no usable labelled example"):
        read_examples([junk])
    rc = main(["adapt", str(junk), "--out", str(tmp_path / "me.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("digitnet adapt: error:") and "no usable" in err[-1]
    assert sum(line.startswith("digitnet adapt: skipped") for line in err) == 4  # each once
    assert not (tmp_path / "me.safetensors").exists()


def test_refusals(examples: Path, tmp_path: Path, capsys) -> None:
    base = bundled_model_path()
    with pytest.raises(UsageError, match="base model"):
        check_out(base, base, [examples])
    with pytest.raises(UsageError, match="base model"):
        check_out(base.with_suffix(""), base, [examples])  # the suffix is added: same file
    target = tmp_path / "7_mine.safetensors"
    target.write_bytes(b"x")
    with pytest.raises(UsageError, match="example files"):
        check_out(target, base, [target])
    with pytest.raises(UsageError, match=r"\.safetensors"):
        output_path(tmp_path / "me.png")
    assert output_path(tmp_path / "me") == tmp_path / "me.safetensors"
    # Through the CLI: one line, exit 2, nothing written, the base untouched.
    before = base.read_bytes()
    rc = main(["adapt", str(examples), "--out", str(base), "--seconds", SECONDS])
    assert rc == 2
    assert "is the base model itself" in capsys.readouterr().err
    assert base.read_bytes() == before
    rc = main(["adapt", str(examples), "--out", str(tmp_path), "--seconds", SECONDS])
    assert rc == 2 and "folder" in capsys.readouterr().err


def test_cli_end_to_end_with_replay(
    examples: Path, tiny_mnist: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "me.safetensors"
    rc = main(
        [
            "adapt",
            str(examples),
            "--out",
            str(out),
            "--data-dir",
            str(tiny_mnist),
            "--seconds",
            SECONDS,
            "--json",
        ]
    )
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["mode"] == "replay"
    assert res["trained_layers"].startswith("features[") and res["trained_layers"].endswith("head")
    assert res["replay_images"] == 1200 and res["examples"] == 20 and res["steps"] >= 1
    # the bundled recipe trained on allographs at a tenth of its MNIST images: so are they replayed
    assert res["replay_allographs"] == 120
    assert res["checkpoint"] == str(out) and out.exists()
    meta = read_metadata(out)
    base_meta = read_metadata(bundled_model_path())
    assert meta["adapted_from"]["save_id"] == base_meta["save_id"]
    assert meta["adapt"]["mode"] == "replay" and meta["adapt"]["replay_allographs"] == 120
    assert meta["adapt"]["examples_per_digit"] == {str(d): 2 for d in range(10)}
    assert meta["adapt"]["seconds"] > 0
    assert meta["input"] == base_meta["input"]  # the base's input spec is kept
    assert meta.get("calibration") == base_meta.get("calibration")
    assert meta["metrics"] == {}  # the base's test accuracy is not claimed for this model
    # The weights moved, and the result is read by predict and evaluate.
    model, _ = load_checkpoint(out)
    base_model, _ = load_checkpoint(bundled_model_path())
    moved = [
        not bool((a == b).all())
        for a, b in zip(model.state_dict().values(), base_model.state_dict().values(), strict=True)
    ]
    assert any(moved)
    rc = main(
        ["predict", "--model", str(out), "--single", "--labels-from-names", "--json", str(examples)]
    )
    lines = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    assert rc == 0 and len(lines) == 20
    rc = main(["evaluate", str(out), "--data-dir", str(tiny_mnist), "--json"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["n"] == 500  # the fixture's test digits


def test_l2sp_without_mnist_trains_only_the_top(
    examples: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DIGITNET_DATA", str(tmp_path / "no-data-here"))
    out = tmp_path / "me.safetensors"
    r = adapt_model([examples], out=out, seconds=float(SECONDS))
    assert r.mode == "l2sp" and r.replay_images == 0 and r.trained_layers != "all"
    assert r.replay_allographs == 0
    assert read_metadata(out)["adapt"]["mode"] == "l2sp"
    model, _ = load_checkpoint(out)
    base, _ = load_checkpoint(bundled_model_path())
    new, old = model.state_dict(), base.state_dict()
    for k in new:  # only the classifier moved
        same = bool((new[k] == old[k]).all())
        assert same != k.startswith("head."), k


def test_allograph_replay_follows_the_base_recipe(monkeypatch) -> None:
    import digitnet.adapt._train as adapt

    def meta(share: float, enabled: bool = True) -> dict:
        return {"config": {"augment": {"enabled": enabled, "allographs": share}}}

    # A base trained on none (no share, augmentation off, no recipe at all) replays none.
    assert adapt._allograph_replay(meta(0.0), 24345) is None
    assert adapt._allograph_replay(meta(0.1, enabled=False), 24345) is None
    assert adapt._allograph_replay({}, 24345) is None
    # The recipe's share of the MNIST images, from a bounded pool repeated to that share.
    monkeypatch.setattr(adapt, "_ALLOGRAPH_POOL", 50)
    got = adapt._allograph_replay(meta(0.1), 2000)
    assert got is not None
    x, y = got
    assert x.shape == (200, 28, 28) and x.dtype == np.uint8 and len(y) == 200
    assert (x[:50] == x[50:100]).all() and len(np.unique(x.reshape(200, -1), axis=0)) <= 50
    assert set(np.bincount(y, minlength=10)) == {20}  # every digit, equally
    assert all(img.max() > 128 for img in x)  # each drawn: ink, MNIST style (white on black)
    x2, _ = adapt._allograph_replay(meta(0.02), 2000)  # 40 wanted: a pool of 40, once
    assert x2.shape == (40, 28, 28)


def test_explicit_data_dir_without_mnist_is_an_error(
    examples: Path, tmp_path: Path, capsys
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = main(
        [
            "adapt",
            str(examples),
            "--out",
            str(tmp_path / "me"),
            "--data-dir",
            str(empty),
            "--seconds",
            SECONDS,
        ]
    )
    assert rc == 2
    assert str(empty) in capsys.readouterr().err


def test_progress_and_cancel(examples: Path, tiny_mnist: Path, tmp_path: Path) -> None:
    ex = read_examples([examples])
    seen: list[AdaptProgress] = []
    out = tmp_path / "cancelled.safetensors"
    # Cancel as soon as one progress report came: training stops, nothing is written.
    r = adapt_model(
        ex,
        out=out,
        data_dir=tiny_mnist,
        seconds=60,
        progress=seen.append,
        should_stop=lambda: bool(seen),
    )
    assert r.stopped == "cancelled" and r.checkpoint is None and not out.exists()
    assert r.seconds < 30  # it did not run to the 60 s budget
    assert len(seen) == 1
    p = seen[0]
    assert p.step >= 1 and 0 < p.elapsed < 60 and p.seconds == 60 and 0 <= p.fraction <= 1
    assert p.mode == "replay" and p.loss is not None and p.loss > 0
    assert p.fit_accuracy is not None and 0 <= p.fit_accuracy <= 1


def test_stops_early_once_the_examples_are_fit(
    tiny_mnist: Path, tmp_path: Path, monkeypatch
) -> None:
    import digitnet.adapt._train as adapt  # the training loop and its settings
    from digitnet.data.mnist import load_mnist
    from digitnet.inference import load_predictor

    # Examples the base reads right already: with the minimum number of steps lowered and
    # no demand on augmented copies, the first check (step 10) finds them fit.
    x, y = load_mnist(tiny_mnist, "test")
    x = x[:60].astype(np.float32) / 255.0
    right = load_predictor(bundled_model_path(), backend="torch").predict(x)[0] == y[:60]
    assert right.sum() >= 10
    ex = ExampleSet.from_arrays(x[right][:20], y[:60][right][:20])
    monkeypatch.setattr(adapt, "_MIN_STEPS", 10)
    monkeypatch.setattr(adapt, "_FIT_AUG_ACCURACY", 0.0)
    r = adapt_model(ex, out=tmp_path / "fit", data_dir=tiny_mnist, seconds=300)
    assert r.accuracy_before == 1.0
    assert r.stopped == "fit" and r.steps == 10 and r.seconds < 300
    # With the real demand (augmented copies read right too) it does not stop at once.
    monkeypatch.setattr(adapt, "_FIT_AUG_ACCURACY", 1.01)
    r = adapt_model(ex, out=tmp_path / "time", data_dir=tiny_mnist, seconds=float(SECONDS))
    assert r.stopped == "time"
