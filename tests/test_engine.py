"""The training engine on a small real slice: it learns, reports, writes, stops and resumes."""

from __future__ import annotations

import csv
import json
import math
import threading

import pytest
import torch

from digitnet.checkpoint import load_checkpoint
from digitnet.data.tensors import augment_batch
from digitnet.engine import Callback, fit, resolve_config
from digitnet.engine.config import RECIPES, AugmentConfig
from digitnet.errors import UsageError


def small(tiny_mnist, tmp_path, **kw):
    base = dict(
        data_dir=str(tiny_mnist),
        limit_train=1200,
        epochs=2,
        batch_size=64,
        lr=0.1,
        device="cpu",
        threads=1,
        out=str(tmp_path / "run"),
    )
    base.update(kw)
    recipe = base.pop("recipe", "fast")
    return resolve_config(recipe=recipe, **base)


class Recorder(Callback):
    def __init__(self):
        self.batches, self.epochs, self.started, self.ended = [], [], None, None

    def on_fit_start(self, info):
        self.started = info

    def on_batch_end(self, state):
        self.batches.append(state)

    def on_epoch_end(self, metrics):
        self.epochs.append(metrics)

    def on_fit_end(self, result):
        self.ended = result


def test_fit_learns_and_writes_everything(tiny_mnist, tmp_path):
    rec = Recorder()
    res = fit(small(tiny_mnist, tmp_path, epochs=4), callbacks=[rec])
    assert res.test_accuracy > 0.85  # 1,200 synthetic digits, 4 epochs of the fast recipe
    assert res.n_train == 1200 and res.epochs == 4
    assert res.train_seconds > 0
    # callbacks: every batch, every epoch, start and end
    assert len(rec.batches) == rec.started.total_steps == 4 * rec.started.steps_per_epoch
    assert [m.epoch for m in rec.epochs] == [1.0, 2.0, 3.0, 4.0]
    assert rec.ended is res
    assert any(b.loss is not None for b in rec.batches)
    run = tmp_path / "run"
    for name in (
        "config.json",
        "metrics.csv",
        "metrics.json",
        "model.safetensors",
        "model.json",
        "last.safetensors",
        "result.json",
    ):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert len(rows) == 4 and float(rows[-1]["test_accuracy"]) == pytest.approx(res.test_accuracy)
    assert json.loads((run / "config.json").read_text())["limit_train"] == 1200
    _model, meta = load_checkpoint(run / "model.safetensors")
    assert meta["model"] == "fast" and meta["metrics"]["test_accuracy"] == pytest.approx(
        res.test_accuracy
    )
    assert meta["data"]["train_images"] == 1200


def test_val_split_selects_on_val_not_test(tiny_mnist, tmp_path):
    res = fit(small(tiny_mnist, tmp_path, val_split=200, epochs=1))
    assert res.n_train == 1000
    assert res.history[-1].val_accuracy is not None
    assert all(e.split == "val" for e in res.evals)


def test_target_accuracy_stops_early(tiny_mnist, tmp_path):
    res = fit(small(tiny_mnist, tmp_path, epochs=5, target_accuracy=0.5, eval_every=0.25))
    assert res.reached_target is True
    assert res.epochs < 5
    assert res.target_seconds is not None and res.target_seconds <= res.train_seconds + 1e-6


def test_stop_event_saves_a_resumable_checkpoint_and_resume_is_bitwise(tiny_mnist, tmp_path):
    cfg = small(tiny_mnist, tmp_path, deterministic=True, out=str(tmp_path / "a"))
    full = fit(cfg)

    stop = threading.Event()

    class StopAt(Callback):
        def on_batch_end(self, state):
            if state.global_step == 7:
                stop.set()

    cfg_b = small(tiny_mnist, tmp_path, deterministic=True, out=str(tmp_path / "b"))
    part = fit(cfg_b, callbacks=[StopAt()], stop=stop)
    assert part.interrupted and part.checkpoint is None
    resumed = fit(cfg_b, resume=tmp_path / "b" / "last.safetensors")
    assert not resumed.interrupted
    a = full.model.state_dict()
    b = resumed.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.test_accuracy == full.test_accuracy


def test_recipes_resolve_and_overrides_win():
    # Every recipe's own settings come through resolve_config, and explicit overrides beat them.
    for name, recipe in RECIPES.items():
        cfg = resolve_config(recipe=name)
        assert cfg.recipe == name
        for key, value in recipe.items():
            if key != "augment":
                assert getattr(cfg, key) == value, (name, key)
    cfg = resolve_config(recipe="fast", epochs=7, model="lenet5", lr=None)
    assert (cfg.model, cfg.epochs, cfg.lr) == ("lenet5", 7, RECIPES["fast"]["lr"])
    with pytest.raises(UsageError, match="unknown recipe"):
        resolve_config(recipe="nope")
    with pytest.raises(UsageError, match="--epochs must be >= 1"):
        resolve_config(epochs=0)


def test_augmentation_is_batchwise_seeded_and_keeps_blank_background():
    x = torch.full((4, 1, 28, 28), -0.4242)
    x[:, :, 10:18, 12:16] = 2.8
    aug = AugmentConfig(
        enabled=True, rotate=15, scale=0.2, translate=3, shear=10, elastic=1.0, thickness=0.5
    )
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = augment_batch(x, aug, g1, -0.4242), augment_batch(x, aug, g2, -0.4242)
    assert torch.equal(a, b)
    assert not torch.equal(a, x)
    # corners stay blank: padding uses the normalised background, not zero
    assert torch.allclose(a[:, :, 0, 0], torch.full((4, 1), -0.4242), atol=1e-4)
    assert math.isfinite(float(a.sum()))


def test_tensorboard_event_files(tiny_mnist, tmp_path):
    pytest.importorskip("tensorboard")
    fit(small(tiny_mnist, tmp_path, epochs=1, limit_train=300, tensorboard=True))
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert {"train/loss", "test/accuracy"} <= set(acc.Tags()["scalars"])


# --------------------------------------------------------------------------- the named parts


@pytest.fixture
def small_data(tiny_mnist):
    """600 training images (200 held out) and 500 test images, read once per test."""
    from digitnet.data.datasets import load_datasets

    cfg = resolve_config(recipe="fast", data_dir=str(tiny_mnist), limit_train=800, val_split=200)
    data = load_datasets(cfg, torch.device("cpu"))
    data.test.images, data.test.labels = data.test.images[:500], data.test.labels[:500]
    return data


def tiny(tiny_mnist, tmp_path, **kw):
    base = dict(limit_train=800, val_split=200, epochs=2, batch_size=64)
    base.update(kw)
    return small(tiny_mnist, tmp_path, **base)


def test_each_split_is_evaluated_once_per_evaluation_point(
    tiny_mnist, tmp_path, small_data, monkeypatch
):
    import digitnet.engine.loop as loop

    calls: list[int] = []
    real = loop.evaluate

    def counting(model, data, *a, **k):
        calls.append(len(data))
        return real(model, data, *a, **k)

    monkeypatch.setattr(loop, "evaluate", counting)
    res = fit(tiny(tiny_mnist, tmp_path, eval_every=0.5), datasets=small_data, write=False)
    # Points at epochs 0.5, 1, 1.5, 2: the selection split (val, 200) at each, the test set
    # (500) only at epoch ends, each exactly once.
    assert calls == [200, 200, 500, 200, 200, 500]
    assert [e.epoch for e in res.evals] == [0.5, 1.0, 1.5, 2.0]
    # Without a held-out split the test set is the selection split: once per epoch end.
    calls.clear()
    small_data.val = None
    res = fit(tiny(tiny_mnist, tmp_path, val_split=0), datasets=small_data, write=False)
    assert calls == [500, 500]
    assert res.history[-1].test_accuracy == res.evals[-1].accuracy


def test_best_checkpoint_is_the_best_selection_point(tiny_mnist, tmp_path, small_data):
    res = fit(tiny(tiny_mnist, tmp_path, eval_every=0.5), datasets=small_data)
    best = max(res.evals, key=lambda e: e.accuracy)
    assert res.best_accuracy == best.accuracy and res.best_epoch == best.epoch
    assert res.best_checkpoint == tmp_path / "run" / "best.safetensors"
    _, meta = load_checkpoint(res.best_checkpoint)
    assert meta["metrics"]["select_accuracy"] == best.accuracy
    out = json.loads((tmp_path / "run" / "result.json").read_text())
    assert out["best_checkpoint"] == str(res.best_checkpoint)
    assert out["checkpoint"] == str(tmp_path / "run" / "model.safetensors")


def _state_after_steps(tiny_mnist, tmp_path, small_data, steps: int):
    """A TrainingState stopped mid-epoch after ``steps`` steps (through fit's stop event)."""
    stop = threading.Event()

    class StopAt(Callback):
        def on_batch_end(self, state):
            if state.global_step == steps:
                stop.set()

    cfg = tiny(tiny_mnist, tmp_path, deterministic=True)
    res = fit(cfg, callbacks=[StopAt()], stop=stop, datasets=small_data)
    assert res.interrupted
    return cfg, res.last_checkpoint


def _fresh_state(cfg, n_train):
    from digitnet.engine.devices import Dist
    from digitnet.engine.fit import build_model, new_training_state
    from digitnet.engine.loop import LoopSettings

    torch.manual_seed(cfg.seed)
    model, cl = build_model(cfg, torch.device("cpu"), None, None)
    settings = LoopSettings.for_run(cfg, n_train, cl, torch.device("cpu"), Dist())
    return new_training_state(cfg, model, n_train, settings.steps_per_epoch, torch.device("cpu"))


def test_training_state_round_trip(tiny_mnist, tmp_path, small_data, torch_globals):
    from digitnet.checkpoint import load_training_state

    cfg, last = _state_after_steps(tiny_mnist, tmp_path, small_data, 3)
    _, tensors, meta = load_training_state(last)
    st = _fresh_state(cfg, len(small_data.train))
    st.load_state_dict({"tensors": tensors, "json": meta["train_state"]}, last)
    assert (st.epoch, st.step) == (0, 3) and st.perm is not None
    again = st.state_dict()
    assert again["json"]["epoch"] == 0 and again["json"]["step"] == 3
    assert again["json"]["optimizer"] == meta["train_state"]["optimizer"]
    assert again["tensors"].keys() == tensors.keys()
    for k, v in tensors.items():
        assert torch.equal(again["tensors"][k], v), k


@pytest.fixture
def torch_globals():
    det, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    yield
    torch.use_deterministic_algorithms(det)
    torch.set_num_threads(threads)


def _tamper_cases():
    def rng(t, j):
        t["rng.torch"] = torch.zeros(7, dtype=torch.uint8)

    def rng_dtype(t, j):
        t["rng.data"] = t["rng.data"].float()

    def no_groups(t, j):
        j["optimizer"]["param_groups"] = []

    def empty_group(t, j):
        j["optimizer"]["param_groups"][0]["params"] = []

    def no_perm(t, j):
        del t["perm"]

    def bad_perm(t, j):
        t["perm"] = torch.zeros_like(t["perm"])

    def short_perm(t, j):
        t["perm"] = t["perm"][:10]

    def momentum_shape(t, j):
        k = next(k for k in t if k.startswith("optim."))
        t[k] = torch.zeros(3, 3)

    def unknown_param(t, j):
        t["optim.999.momentum_buffer"] = torch.zeros(1)

    def step_text(t, j):
        j["step"] = "3"

    def epoch_range(t, j):
        j["epoch"] = 10**9

    def lr_text(t, j):
        j["optimizer"]["param_groups"][0]["lr"] = "fast"

    def history(t, j):
        j["history"] = [{"epoch": 1}]

    def nan_acc(t, j):
        t["acc"] = torch.tensor([float("nan"), 0.0, 0.0], dtype=torch.float64)

    return {
        f.__name__: f
        for f in (
            rng,
            rng_dtype,
            no_groups,
            empty_group,
            no_perm,
            bad_perm,
            short_perm,
            momentum_shape,
            unknown_param,
            step_text,
            epoch_range,
            lr_text,
            history,
            nan_acc,
        )
    }


TAMPER = _tamper_cases()


def test_tampered_resume_state_is_refused_in_one_line(
    tiny_mnist, tmp_path, small_data, torch_globals
):
    import copy

    from digitnet.checkpoint import load_training_state
    from digitnet.errors import CheckpointError

    cfg, last = _state_after_steps(tiny_mnist, tmp_path, small_data, 3)
    _, tensors, meta = load_training_state(last)
    for name, tamper in TAMPER.items():
        t, j = dict(tensors), copy.deepcopy(meta["train_state"])
        tamper(t, j)
        st = _fresh_state(cfg, len(small_data.train))
        with pytest.raises(CheckpointError) as info:
            st.load_state_dict({"tensors": t, "json": j}, last)
        msg = str(info.value)
        assert msg.startswith(f"{last}: cannot resume: ") and "\n" not in msg, (name, msg)
        assert (st.epoch, st.step) == (0, 0), name  # nothing applied


def test_tampered_resume_file_via_the_cli(tiny_mnist, tmp_path, small_data, capsys, torch_globals):
    from digitnet.checkpoint import load_training_state, save_checkpoint
    from digitnet.cli import main
    from digitnet.models import create_model

    _cfg, last = _state_after_steps(tiny_mnist, tmp_path, small_data, 3)
    weights, tensors, meta = load_training_state(last)
    del tensors["perm"]
    model = create_model(meta["model"], **meta["model_args"])
    model.load_state_dict(weights)
    js = meta.pop("train_state")
    keep = {
        k: v
        for k, v in meta.items()
        if k not in ("format", "format_version", "save_id", "created", "versions", "resumable")
    }
    save_checkpoint(last, model, keep, train_state={"tensors": tensors, "json": js})
    code = main(["train", "--resume", str(last), "--device", "cpu", "--threads", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0] == f"digitnet train: error: {last}: cannot resume: perm is missing"


def test_final_model_that_cannot_be_written_keeps_last_and_says_where(
    tiny_mnist, tmp_path, small_data
):
    from digitnet.errors import OutputError

    run = tmp_path / "run"
    (run / "model.safetensors").mkdir(parents=True)  # the final file's name is taken
    with pytest.raises(OutputError) as info:
        fit(tiny(tiny_mnist, tmp_path, epochs=1), datasets=small_data)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{run / 'model.safetensors'}: ")
    assert f"the trained weights are kept in {run / 'last.safetensors'}" in msg
    _model, meta = load_checkpoint(run / "last.safetensors")  # complete, loadable
    assert meta["train_state"]["epoch"] == 1
    # As the message says: once the name is free, resuming writes the final file (no training).
    (run / "model.safetensors").rmdir()
    res = fit(
        tiny(tiny_mnist, tmp_path, epochs=1), datasets=small_data, resume=run / "last.safetensors"
    )
    assert res.checkpoint == run / "model.safetensors" and res.epochs == 1.0
    final, _ = load_checkpoint(res.checkpoint)
    kept, _ = load_checkpoint(run / "last.safetensors")
    assert all(
        torch.equal(a, b)
        for a, b in zip(final.state_dict().values(), kept.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("lr", [math.inf, 1e30])
def test_diverging_loss_stops_with_one_line_and_no_nan_model(tiny_mnist, tmp_path, small_data, lr):
    import dataclasses

    cfg = dataclasses.replace(tiny(tiny_mnist, tmp_path, epochs=1), lr=lr)  # past validation
    with pytest.raises(UsageError, match=r"^training (loss became nan|diverged).*smaller --lr$"):
        fit(cfg, datasets=small_data)
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert not (tmp_path / "run" / "last.safetensors").exists()


def test_cli_lr_inf_is_one_line(tiny_mnist, tmp_path, capsys):
    from digitnet.cli import main

    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--recipe",
            "fast",
            "--lr",
            "inf",
            "--epochs",
            "1",
            "--limit-train",
            "300",
            "--data-dir",
            str(tiny_mnist),
            "--device",
            "cpu",
            "--threads",
            "1",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--lr" in err[0], err
    assert not (out / "model.safetensors").exists()


@pytest.mark.parametrize("empty", ["train", "test"])
def test_zero_image_sets_are_refused(tiny_mnist, tmp_path, capsys, empty):
    import numpy as np

    from digitnet.cli import main
    from digitnet.data.idx import write_idx

    data = tmp_path / "data"
    data.mkdir()
    for name in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            src = tiny_mnist / f"{name}-{kind}-ubyte.gz"
            (data / src.name).write_bytes(src.read_bytes())
    prefix = "train" if empty == "train" else "t10k"
    for f in data.glob(f"{prefix}-*"):
        f.unlink()
    write_idx(data / f"{prefix}-images-idx3-ubyte", np.zeros((0, 28, 28), np.uint8))
    write_idx(data / f"{prefix}-labels-idx1-ubyte", np.zeros(0, np.uint8))
    code = main(
        [
            "train",
            "--recipe",
            "fast",
            "--epochs",
            "1",
            "--data-dir",
            str(data),
            "--device",
            "cpu",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(
        f"digitnet train: error: {data / (prefix + '-images-idx3-ubyte')}: holds no images"
    )
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_one_cycle_history_never_records_a_step_past_the_schedule(tiny_mnist, tmp_path):
    # 2 epochs of 3 batches: one-cycle stepped after the very last batch would extrapolate past
    # its final rate (negative on runs this short); history must show the rate actually used.
    cfg = resolve_config(
        recipe="fast",
        epochs=2,
        limit_train=300,
        data_dir=str(tiny_mnist),
        out=str(tmp_path / "run"),
    )
    lrs = [m.lr for m in fit(cfg).history]
    assert all(lr > 0 for lr in lrs)
    assert lrs[-1] == pytest.approx(cfg.lr / 10 / 100)  # div_factor 10, final_div_factor 100


def test_default_recipe_holds_out_its_calibration_split(tiny_mnist):
    from digitnet.data.datasets import DEFAULT_VAL_SPLIT, load_datasets

    cpu = torch.device("cpu")
    cfg = resolve_config(data_dir=str(tiny_mnist))
    assert cfg.val_split == DEFAULT_VAL_SPLIT and cfg.augment.allographs > 0
    # On a training set under ten times the split, the recipe's own hold-out is a tenth of it.
    data = load_datasets(cfg, cpu)
    assert data.val is not None and len(data.val) == 120
    assert data.description["train_images"] == 1080
    small = load_datasets(resolve_config(data_dir=str(tiny_mnist), limit_train=500), cpu)
    assert small.val is not None and len(small.val) == 50
    # Another recipe, or an explicit split, is taken as given.
    fast = load_datasets(
        resolve_config(recipe="fast", data_dir=str(tiny_mnist), val_split=300), cpu
    )
    assert fast.val is not None and len(fast.val) == 300
    none = load_datasets(resolve_config(data_dir=str(tiny_mnist), val_split=0), cpu)
    assert none.val is None
    with pytest.raises(UsageError, match="leaves no training images"):
        load_datasets(resolve_config(recipe="fast", data_dir=str(tiny_mnist), val_split=1200), cpu)
