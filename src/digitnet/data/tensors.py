"""Device-resident MNIST tensors, index batching and whole-batch augmentation.

MNIST is 47 MB as uint8; it lives on the training device as one normalised float tensor, and a
batch is an index into it (airbench's loader). Augmentation transforms a whole batch at once with
``affine_grid`` + ``grid_sample`` on the same device; there is no per-sample Python in the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..inference.spec import DEFAULT_INPUT, MNIST_MEAN, MNIST_STD, normalise

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "DeviceDataset",
    "augment_batch",
    "input_spec",
    "to_model_input",
]

# MNIST_MEAN, MNIST_STD and the default spec: one definition, in digitnet.inference.spec.


def input_spec(kind: str) -> dict:
    """The normalisation a model expects, as stored in checkpoint metadata."""
    if kind == "standardize":
        return dict(DEFAULT_INPUT)
    if kind == "raw255":
        return {"kind": "raw255"}
    if kind == "unit":
        return {"kind": "unit"}
    raise ValueError(f"unknown input kind {kind!r}")


def to_model_input(x01: torch.Tensor, spec: dict) -> torch.Tensor:
    """Map images in [0, 1] (white ink on black) to what the model was trained on: the one
    normaliser (``digitnet.inference.normalise``) that the predictors use too."""
    return normalise(x01, spec)


@dataclass
class DeviceDataset:
    """Normalised images ``(N, 1, 28, 28)`` float32 and labels ``(N,)`` int64 on one device."""

    images: torch.Tensor
    labels: torch.Tensor
    background: float  # the normalised value of a blank pixel (what augmentation pads with)

    @classmethod
    def from_numpy(
        cls, images: np.ndarray, labels: np.ndarray, spec: dict, device: torch.device
    ) -> DeviceDataset:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
        x = to_model_input(x.unsqueeze(1).float().div_(255.0), spec)
        y = torch.from_numpy(np.ascontiguousarray(labels)).to(device=device, dtype=torch.int64)
        bg = float(to_model_input(torch.zeros(()), spec))
        return cls(x.contiguous(), y, bg)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _rand(n: int, g: torch.Generator, device: torch.device) -> torch.Tensor:
    """Uniform [-1, 1) values drawn with ``g`` (kept on the CPU so runs repeat on any device)."""
    return (torch.rand(n, generator=g) * 2 - 1).to(device)


def augment_batch(x: torch.Tensor, aug, g: torch.Generator, background: float) -> torch.Tensor:
    """Randomly rotate, scale, stretch, shear, shift, warp, thicken/thin, gap and clip a batch.

    ``x`` is ``(B, 1, 28, 28)`` normalised; ``g`` is a CPU generator (its state is saved in
    resumable checkpoints, so a resumed run draws the same transforms). Pixels moved in from
    outside the image take the blank value ``background``.
    """
    b, dev = x.shape[0], x.device
    angle = _rand(b, g, dev) * math.radians(aug.rotate)
    scale = 1.0 + _rand(b, g, dev) * aug.scale
    aspect_on = getattr(aug, "aspect", 0.0) > 0
    # Writers differ in how wide they write: the width is scaled by exp(U(-a, a)) on its own.
    # (Drawn only when enabled, so older configs keep their exact random streams.)
    xscale = torch.exp(_rand(b, g, dev) * aug.aspect) if aspect_on else torch.ones(b, device=dev)
    shear = _rand(b, g, dev) * math.radians(aug.shear)
    # affine_grid works in [-1, 1] coordinates: 2 pixels of 28 is 2 * 2 / 28.
    tx = _rand(b, g, dev) * (2.0 * aug.translate / 28.0)
    ty = _rand(b, g, dev) * (2.0 * aug.translate / 28.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Output->input mapping: inverse scale, rotation, then shear along x.
    inv = 1.0 / scale
    theta = torch.empty(b, 2, 3, device=dev)
    theta[:, 0, 0] = inv * cos / xscale
    theta[:, 0, 1] = inv * (-sin + torch.tan(shear) * cos) / xscale
    theta[:, 1, 0] = inv * sin
    theta[:, 1, 1] = inv * (cos + torch.tan(shear) * sin)
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if aug.elastic > 0:
        # A smooth random displacement field: 4x4 noise upsampled bicubically to 28x28
        # (cheaper than Simard et al.'s Gaussian-filtered full-resolution noise, similar look).
        noise = torch.rand(b, 2, 4, 4, generator=g).to(dev) * 2 - 1
        field = F.interpolate(noise, size=(28, 28), mode="bicubic", align_corners=False)
        grid = grid + field.permute(0, 2, 3, 1) * (2.0 * aug.elastic / 28.0)
    out = (
        F.grid_sample(
            x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        + background
    )
    if aug.thickness > 0:
        # Stroke thickness: blend towards a 3x3 dilation (thicker) or erosion (thinner) of the
        # strokes, by a random amount, for a random ``thickness`` share of the batch.
        r = torch.rand(b, 2, generator=g).to(dev)
        which = r[:, 0] < aug.thickness
        amount = (r[:, 1] * which).view(b, 1, 1, 1)
        thicker = (torch.rand(b, generator=g) < 0.6).to(dev).view(b, 1, 1, 1)
        dil = F.max_pool2d(out, 3, stride=1, padding=1)
        ero = -F.max_pool2d(-out, 3, stride=1, padding=1)
        morph = torch.where(thicker, dil, ero)
        out = out + amount * (morph - out)
    if getattr(aug, "pen_lift", 0.0) > 0:
        out = _pen_lifts(out, aug.pen_lift, g, background)
    if getattr(aug, "clip", 0.0) > 0:
        out = _clip_edges(out, aug.clip, g, background)
    if getattr(aug, "lowres", 0.0) > 0:
        out = _low_resolution(out, aug.lowres, g, background)
    return out


def _low_resolution(
    out: torch.Tensor, p: float, g: torch.Generator, background: float
) -> torch.Tensor:
    """A share ``p`` of the batch as a digit seen at a low resolution, then enlarged.

    A digit in a small form cell, a thumbnail or a low-dpi scan may be only 7-11 pixels tall:
    its strokes merge, a 9's or 6's loop fills in, a 4's closes. The image is averaged down
    to 10-16 px square (the 20 px digit to 7-11 px), enlarged back bicubically as the reader's
    resize does, and most (7 in 10) made crisp again at a random level (a scan binarised
    after it was enlarged), so both the soft and the blocky look are seen.
    """
    b, dev = out.shape[0], out.device
    h, w = out.shape[-2:]
    chosen = (torch.rand(b, generator=g) < p).to(dev)
    side = int(torch.randint(10, 17, (1,), generator=g))  # one size per batch: one resize
    crisp = (torch.rand(b, generator=g) < 0.7).to(dev).view(b, 1, 1, 1)
    level = (0.3 + 0.3 * torch.rand(b, generator=g)).to(dev).view(b, 1, 1, 1)
    ink = out - background
    top = ink.amax((2, 3), keepdim=True).clamp_min(1e-6)
    small = F.interpolate(ink, size=(side, side), mode="area")
    big = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    # The reader scales every crop to full contrast (preprocess/_mnist.py): so does this.
    big = big.clamp(min=0)
    big = big * (top / big.amax((2, 3), keepdim=True).clamp_min(1e-6))
    sharp = ((big / top - level) * 4.0 + 0.5).clamp(0, 1) * top
    low = torch.where(crisp, sharp, big) + background
    return torch.where(chosen.view(b, 1, 1, 1), low, out)


def _pen_lifts(out: torch.Tensor, p: float, g: torch.Generator, background: float) -> torch.Tensor:
    """Small gaps in the strokes (a pen lifted or skipping) for a share ``p`` of the batch.

    Up to two discs of radius 0.8-1.6 px are blanked, centred on ink pixels chosen with
    probability proportional to the ink, so each gap falls on a stroke.
    """
    b, dev = out.shape[0], out.device
    h, w = out.shape[-2:]
    ink = (out - background).clamp_min(0).view(b, -1)
    weights = ink + 1e-6  # an image without ink still gives a valid distribution
    k = 2
    centre = torch.multinomial(weights.cpu(), k, replacement=True, generator=g).to(dev)
    cy, cx = (centre // w).float(), (centre % w).float()
    r = (0.8 + 0.8 * torch.rand(b, k, generator=g)).to(dev)
    on = (torch.rand(b, k, generator=g) < torch.tensor([1.0, 0.5])).to(dev)
    chosen = (torch.rand(b, generator=g) < p).to(dev)
    yy = torch.arange(h, device=dev, dtype=torch.float32).view(1, 1, h, 1)
    xx = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, 1, w)
    d2 = (yy - cy.view(b, k, 1, 1)) ** 2 + (xx - cx.view(b, k, 1, 1)) ** 2
    # Soft-edged discs (1 inside, 0 one pixel beyond the radius), like an anti-aliased gap.
    gap = (r.view(b, k, 1, 1) + 0.5 - d2.sqrt()).clamp(0, 1) * on.view(b, k, 1, 1)
    keep = 1.0 - (gap.amax(1, keepdim=True) * chosen.view(b, 1, 1, 1))
    return (out - background) * keep + background


def _clip_edges(out: torch.Tensor, p: float, g: torch.Generator, background: float) -> torch.Tensor:
    """Cut 1-2.5 px off one side of the ink for a share ``p`` of the batch.

    A cell cut from a form or a clip from a photo is often cropped a little into the digit;
    the reader then sees a digit whose outermost stroke is shaved off flat.
    """
    b, dev = out.shape[0], out.device
    h, w = out.shape[-2:]
    present = (out - background) > 0.25 * (out.amax((2, 3), keepdim=True) - background)
    rows = present.any(3).view(b, h)
    cols = present.any(2).view(b, w)
    idx_h = torch.arange(h, device=dev)
    idx_w = torch.arange(w, device=dev)
    top = torch.where(rows, idx_h, h).amin(1).float()
    bottom = torch.where(rows, idx_h, -1).amax(1).float()
    left = torch.where(cols, idx_w, w).amin(1).float()
    right = torch.where(cols, idx_w, -1).amax(1).float()
    side = torch.randint(0, 4, (b,), generator=g).to(dev)
    depth = (1.0 + 1.5 * torch.rand(b, generator=g)).to(dev)
    chosen = (torch.rand(b, generator=g) < p).to(dev)
    yy = idx_h.float().view(1, h, 1)
    xx = idx_w.float().view(1, 1, w)
    s = side.view(b, 1, 1)
    cut = torch.where(
        s == 0,
        yy < (top + depth).view(b, 1, 1),
        torch.where(
            s == 1,
            yy > (bottom - depth).view(b, 1, 1),
            torch.where(
                s == 2, xx < (left + depth).view(b, 1, 1), xx > (right - depth).view(b, 1, 1)
            ),
        ),
    )
    cut = cut & chosen.view(b, 1, 1)
    return torch.where(cut.unsqueeze(1), torch.full_like(out, background), out)
