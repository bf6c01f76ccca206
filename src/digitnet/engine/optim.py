"""Optimizer and learning-rate schedule factories for ``fit``."""

from __future__ import annotations

from typing import Any, Literal

import torch

from .config import TrainConfig

__all__ = ["ScheduleUnit", "make_optimizer", "make_schedule"]

ScheduleUnit = Literal["step", "epoch", "none"]


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over two parameter groups: weights (decayed) and biases/norms (not)."""
    # No weight decay on batch-norm parameters and biases (standard practice; decaying them
    # only fights the normalisation).
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.Adadelta(groups, lr=cfg.lr)


def make_schedule(
    cfg: TrainConfig, opt: torch.optim.Optimizer, steps_per_epoch: int
) -> tuple[torch.optim.lr_scheduler.LRScheduler | None, ScheduleUnit]:
    """The scheduler (or None) and when it steps: after each batch or each epoch."""
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle" and total >= 6:
        # OneCycleLR divides by the length of each phase: keep both at >= 2 steps on tiny runs.
        pct = min(max(cfg.warmup_frac, 2.5 / total), 1 - 2.5 / total)
        sgd = cfg.optimizer == "sgd"
        return torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=cfg.lr,
            total_steps=total,
            pct_start=pct,
            anneal_strategy="linear",
            div_factor=10.0,
            final_div_factor=100.0,
            cycle_momentum=sgd and cfg.momentum > 0,
            base_momentum=0.85,
            max_momentum=max(cfg.momentum, 0.85) if sgd else 0.95,
        ), "step"
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total), "step"
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(
            opt, step_size=cfg.step_size, gamma=cfg.gamma
        ), "epoch"
    return None, "none"
