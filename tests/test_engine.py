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
from digitnet.engine.config import AugmentConfig
from digitnet.errors import UsageError


def small(mnist_dir, tmp_path, **kw):
    base = dict(data_dir=str(mnist_dir), limit_train=1200, epochs=2, batch_size=64, lr=0.1, device="cpu", threads=1, out=str(tmp_path / "run"))
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


def test_fit_learns_and_writes_everything(mnist_dir, tmp_path):
    rec = Recorder()
    res = fit(small(mnist_dir, tmp_path), callbacks=[rec])
    assert res.test_accuracy > 0.85  # 1,200 images, 2 epochs of the fast recipe
    assert res.n_train == 1200 and res.epochs == 2
    assert res.train_seconds > 0
    # callbacks: every batch, every epoch, start and end
    assert len(rec.batches) == rec.started.total_steps == 2 * rec.started.steps_per_epoch
    assert [m.epoch for m in rec.epochs] == [1.0, 2.0]
    assert rec.ended is res
    assert any(b.loss is not None for b in rec.batches)
    run = tmp_path / "run"
    for name in ("config.json", "metrics.csv", "metrics.json", "model.safetensors", "model.json", "last.safetensors", "result.json"):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert len(rows) == 2 and float(rows[-1]["test_accuracy"]) == pytest.approx(res.test_accuracy)
    assert json.loads((run / "config.json").read_text())["limit_train"] == 1200
    model, meta = load_checkpoint(run / "model.safetensors")
    assert meta["model"] == "fast" and meta["metrics"]["test_accuracy"] == pytest.approx(res.test_accuracy)
    assert meta["data"]["train_images"] == 1200


def test_val_split_selects_on_val_not_test(mnist_dir, tmp_path):
    res = fit(small(mnist_dir, tmp_path, val_split=200, epochs=1))
    assert res.n_train == 1000
    assert res.history[-1].val_accuracy is not None
    assert all(e.split == "val" for e in res.evals)


def test_target_accuracy_stops_early(mnist_dir, tmp_path):
    res = fit(small(mnist_dir, tmp_path, epochs=5, target_accuracy=0.5, eval_every=0.25))
    assert res.reached_target is True
    assert res.epochs < 5
    assert res.target_seconds is not None and res.target_seconds <= res.train_seconds + 1e-6


def test_stop_event_saves_a_resumable_checkpoint_and_resume_is_bitwise(mnist_dir, tmp_path):
    cfg = small(mnist_dir, tmp_path, deterministic=True, out=str(tmp_path / "a"))
    full = fit(cfg)

    stop = threading.Event()

    class StopAt(Callback):
        def on_batch_end(self, state):
            if state.global_step == 7:
                stop.set()

    cfg_b = small(mnist_dir, tmp_path, deterministic=True, out=str(tmp_path / "b"))
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
    cfg = resolve_config(recipe="paper")
    assert (cfg.model, cfg.batch_size, cfg.epochs) == ("paper", 32, 20)
    cfg = resolve_config(recipe="course")
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.batch_size, cfg.epochs, cfg.input) == ("sgd", 1e-4, 0.9, 128, 50, "raw255")
    cfg = resolve_config(recipe="fast", epochs=7, model="lenet5")
    assert (cfg.model, cfg.epochs) == ("lenet5", 7)
    assert resolve_config().model == "digitnet"
    with pytest.raises(UsageError, match="unknown recipe"):
        resolve_config(recipe="nope")
    with pytest.raises(UsageError, match="--epochs must be >= 1"):
        resolve_config(epochs=0)


def test_augmentation_is_batchwise_seeded_and_keeps_blank_background():
    x = torch.full((4, 1, 28, 28), -0.4242)
    x[:, :, 10:18, 12:16] = 2.8
    aug = AugmentConfig(enabled=True, rotate=15, scale=0.2, translate=3, shear=10, elastic=1.0, thickness=0.5)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = augment_batch(x, aug, g1, -0.4242), augment_batch(x, aug, g2, -0.4242)
    assert torch.equal(a, b)
    assert not torch.equal(a, x)
    # corners stay blank: padding uses the normalised background, not zero
    assert torch.allclose(a[:, :, 0, 0], torch.full((4, 1), -0.4242), atol=1e-4)
    assert math.isfinite(float(a.sum()))


def test_tensorboard_event_files(mnist_dir, tmp_path):
    pytest.importorskip("tensorboard")
    fit(small(mnist_dir, tmp_path, epochs=1, limit_train=300, tensorboard=True))
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert {"train/loss", "test/accuracy"} <= set(acc.Tags()["scalars"])
