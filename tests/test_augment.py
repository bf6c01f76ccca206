"""Whole-batch writer-variation augmentation (data/tensors.py augment_batch)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from digitnet.data.allographs import training_pool
from digitnet.data.tensors import DeviceDataset, augment_batch, input_spec
from digitnet.engine.config import RECIPES, AugmentConfig

OFF = AugmentConfig(enabled=True, rotate=0.0, scale=0.0, translate=0.0, shear=0.0)


@pytest.fixture(scope="module")
def batch():
    x, y = training_pool(64, seed=0)  # MNIST-style 28x28 digits, no data files needed
    return DeviceDataset.from_numpy(x, y, input_spec("standardize"), torch.device("cpu"))


def _ink(t, bg):
    return (t - bg).clamp_min(0)


def test_identity_settings_change_nothing(batch):
    out = augment_batch(batch.images, OFF, torch.Generator().manual_seed(0), batch.background)
    assert torch.allclose(out, batch.images, atol=1e-5)


def test_aspect_changes_width_not_height(batch):
    aug = dataclasses.replace(OFF, aspect=0.4)
    out = augment_batch(batch.images, aug, torch.Generator().manual_seed(1), batch.background)
    ink_in, ink_out = _ink(batch.images, batch.background), _ink(out, batch.background)

    def extent(t, dim):
        prof = t.squeeze(1).amax(dim) > 0.5
        idx = torch.arange(28).expand_as(prof)
        return (torch.where(prof, idx, -1).amax(1) - torch.where(prof, idx, 99).amin(1)).float()

    dw = (extent(ink_out, 1) - extent(ink_in, 1)).abs().mean()
    dh = (extent(ink_out, 2) - extent(ink_in, 2)).abs().mean()
    assert dw > 0.5 and dw > 3 * dh


def test_pen_lifts_remove_ink_only(batch):
    aug = dataclasses.replace(OFF, pen_lift=1.0)
    out = augment_batch(batch.images, aug, torch.Generator().manual_seed(2), batch.background)
    before = _ink(batch.images, batch.background).sum((1, 2, 3))
    after = _ink(out, batch.background).sum((1, 2, 3))
    assert (after <= before + 1e-4).all()
    lost = 1 - after / before
    assert float(lost.median()) > 0.02 and float(lost.max()) < 0.5


def test_clip_shaves_one_side(batch):
    aug = dataclasses.replace(OFF, clip=1.0)
    out = augment_batch(batch.images, aug, torch.Generator().manual_seed(3), batch.background)
    same = (out - batch.images).abs() < 1e-4
    assert bool((~same).flatten(1).any(1).all())  # every image lost something
    # What is gone lies in a band along one edge of the ink, not in the middle of the digit.
    assert same[:, :, 12:16, 12:16].float().mean() > 0.95


def test_default_recipe_models_writer_variation(batch):
    aug = RECIPES["default"]["augment"]
    assert aug.aspect > 0 and aug.pen_lift > 0 and aug.clip > 0 and aug.allographs > 0
    assert aug.lowres > 0
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a = augment_batch(batch.images, aug, g1, batch.background)
    b = augment_batch(batch.images, aug, g2, batch.background)
    assert torch.equal(a, b)  # the same generator state draws the same transforms
    assert np.isfinite(a.numpy()).all()


def test_low_resolution_blurs_in_place_at_full_contrast(batch):
    aug = dataclasses.replace(OFF, lowres=1.0)
    out = augment_batch(batch.images, aug, torch.Generator().manual_seed(4), batch.background)
    ink_in, ink_out = _ink(batch.images, batch.background), _ink(out, batch.background)
    assert bool(((out - batch.images).abs().flatten(1).amax(1) > 0.1).all())  # every image
    # Full contrast, as the reader makes every crop, and nothing brighter than the ink was.
    peak_in, peak_out = ink_in.flatten(1).amax(1), ink_out.flatten(1).amax(1)
    assert torch.allclose(peak_out, peak_in, rtol=1e-3)
    # The digit stays where it was (centre of mass within half a pixel for most; a thin
    # stroke lost to the crisp threshold may move it more) ...
    idx = torch.arange(28, dtype=torch.float32)

    def centre(t):
        w = t.squeeze(1)
        s = w.sum((1, 2))
        return (w.sum(2) * idx).sum(1) / s, (w.sum(1) * idx).sum(1) / s

    for a, b in zip(centre(ink_in), centre(ink_out), strict=True):
        assert float((a - b).abs().median()) < 0.5

    # ... and loses its fine detail: what a 2x2 average cannot hold shrinks.
    def detail(t):
        coarse = F.interpolate(F.avg_pool2d(t, 2), scale_factor=2, mode="nearest")
        return (t - coarse).abs().sum((1, 2, 3)) / t.sum((1, 2, 3))

    assert float(detail(ink_out).median()) < 0.8 * float(detail(ink_in).median())


def test_low_resolution_touches_only_its_share(batch):
    aug = dataclasses.replace(OFF, lowres=0.25)
    out = augment_batch(batch.images, aug, torch.Generator().manual_seed(5), batch.background)
    changed = ((out - batch.images).abs().flatten(1).amax(1) > 1e-4).float().mean()
    assert 0.05 < float(changed) < 0.5
