"""CUDA paths: training on the device (bf16 autocast, device-side augmentation) and reading there.

Marked ``gpu``: skipped where no CUDA device is present (CI has none); run them on a GPU machine
with ``pytest -m gpu``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitnet.engine import fit, resolve_config
from digitnet.inference import load_predictor

pytestmark = pytest.mark.gpu


def _cfg(data, tmp_path, **kw):
    base = dict(
        data_dir=str(data),
        limit_train=1200,
        epochs=4,
        batch_size=64,
        device="cuda",
        out=str(tmp_path / "run"),
    )
    base.update(kw)
    return resolve_config(recipe="fast", **base)


def test_training_on_cuda_learns(tiny_mnist, tmp_path):
    res = fit(_cfg(tiny_mnist, tmp_path))
    assert res.device.startswith("cuda")
    assert res.test_accuracy > 0.85


def test_amp_and_augmentation_on_cuda(tiny_mnist, tmp_path):
    res = fit(_cfg(tiny_mnist, tmp_path, recipe="default", bf16=True, epochs=2, model="fast"))
    assert np.isfinite(res.history[-1].train_loss)


def test_cuda_and_cpu_predictors_agree(tiny_mnist, tmp_path):
    res = fit(_cfg(tiny_mnist, tmp_path, epochs=1))
    x = np.random.default_rng(0).random((16, 28, 28), dtype=np.float32)
    on_gpu = load_predictor(res.checkpoint, backend="torch", device="cuda").predict_proba(x)
    on_cpu = load_predictor(res.checkpoint, backend="torch", device="cpu").predict_proba(x)
    assert np.abs(on_gpu - on_cpu).max() < 1e-3
    assert torch.cuda.is_available()
