"""Several runs of one network trained at once: stacked parameters, one vectorised step.

K copies of a network (one per seed) have their parameters stacked along a new first axis
(``torch.func.stack_module_state``); ``torch.func.functional_call`` under ``vmap`` runs all K
forward passes as one batched computation, each copy on its own batch (its own data order).
The loss is the sum of the K per-copy mean losses, so the gradient of copy k's slice is exactly
copy k's own gradient, and an element-wise optimiser (SGD with momentum / Nesterov / weight
decay, Adam, AdamW) applied to the stacked tensors performs K independent updates: the same
maths as K separate runs, up to float rounding (tests/test_experiments_stacked.py checks this).

Limits: networks with BatchNorm running statistics (digitnet, resnet) are refused, since
``vmap`` cannot update a buffer in place; dropout draws its masks with ``randomness="different"``
(independent per copy, but not the same random numbers a separate run would draw).
Whether stacking pays depends on the network and the machine:
``benchmarks/bench_stacked.py`` measures runs per hour both ways.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ..errors import UsageError

__all__ = ["StackedModels", "stackable"]


def stackable(model: nn.Module) -> str | None:
    """None when ``model`` can be stacked; else why not (one line)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            return "BatchNorm running statistics cannot be updated under vmap"
    return None


class StackedModels:
    """K networks of the same shape as one set of stacked parameters."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        if not models:
            raise ValueError("no models to stack")
        why = stackable(models[0])
        if why:
            raise UsageError(f"{type(models[0]).__name__}: cannot train stacked: {why}")
        self.k = len(models)
        params, buffers = stack_module_state(list(models))
        self.params: dict[str, torch.Tensor] = params
        self.buffers: dict[str, torch.Tensor] = buffers
        # A skeleton on the meta device: functional_call takes every tensor from the stacks.
        self._base = copy.deepcopy(models[0]).to("meta")
        self._base.train()

        def one(
            p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor
        ) -> torch.Tensor:
            return functional_call(self._base, (p, b), (x,))

        self._forward = vmap(one, randomness="different")

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def train(self, mode: bool = True) -> None:
        self._base.train(mode)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (K, B, C, H, W) -> logits (K, B, classes); copy k sees x[k]."""
        if x.shape[0] != self.k:
            raise ValueError(f"expected {self.k} stacked batches, got {x.shape[0]}")
        return self._forward(self.params, self.buffers, x)

    def loss(self, x: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """Per-copy mean cross-entropy, shape (K,); ``loss(...).sum().backward()`` trains all."""
        logits = self(x)
        k, b = y.shape
        per = F.cross_entropy(
            logits.reshape(k * b, -1),
            y.reshape(-1),
            reduction="none",
            label_smoothing=label_smoothing,
        )
        return per.view(k, b).mean(1)

    def unstack(self, template: nn.Module) -> list[nn.Module]:
        """K ordinary modules (copies of ``template``) holding the trained weights."""
        out = []
        for i in range(self.k):
            m = copy.deepcopy(template)
            state = {n: t[i].detach().clone() for n, t in {**self.params, **self.buffers}.items()}
            m.load_state_dict(state)
            out.append(m)
        return out
