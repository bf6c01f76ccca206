"""The loop's named parts: ``train_one_epoch`` and ``evaluate`` (timm's and pytorch/examples').

Hot-loop habits (nanoGPT, airbench): data already on the device and normalised, batches by index,
augmentation on whole batches, ``zero_grad(set_to_none=True)``, no ``.item()`` per step: losses
and hit counts accumulate on the device and are read at log steps and epoch ends only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..data.datasets import Datasets
from ..data.tensors import DeviceDataset, augment_batch
from ..errors import DataError, UsageError
from .callbacks import BatchState, Callback, EvalResult
from .config import AugmentConfig, TrainConfig
from .devices import Dist, all_reduce_sum, sync
from .state import RunningTotals, TrainingState

__all__ = [
    "EpochEnd",
    "LoopSettings",
    "check_finite_loss",
    "compile_warm_up",
    "evaluate",
    "train_one_epoch",
]

EpochEnd = Literal["complete", "interrupted", "target"]


@dataclass(frozen=True)
class LoopSettings:
    """How batches are cut and run: the same for every epoch of a run."""

    per_rank_batch: int  # images per step on this rank (the global batch split over ranks)
    n_local: int  # training images per rank per epoch
    steps_per_epoch: int
    channels_last: bool
    amp: bool  # bfloat16 autocast (CUDA only)
    log_every: int  # steps between live loss/accuracy reads (each is a device sync)
    eval_every_steps: int | None  # mid-epoch evaluation interval; None: at epoch ends only
    augment: AugmentConfig
    dist: Dist

    @classmethod
    def for_run(
        cls,
        cfg: TrainConfig,
        n_train: int,
        channels_last: bool,
        device: torch.device,
        dist: Dist,
    ) -> LoopSettings:
        # Each rank takes every world-th index of one shared permutation; the global batch is
        # split across ranks so that the learning-rate recipe means the same thing at any scale.
        per_rank = max(1, cfg.batch_size // dist.world)
        n_local = n_train // dist.world
        steps = max(1, math.ceil(n_local / per_rank))
        if n_local % per_rank == 1 and steps > 1:
            steps -= 1  # a last batch of one image breaks batch norm; drop it
        every = max(1, round(cfg.eval_every * steps)) if cfg.eval_every < 1 else None
        return cls(
            per_rank_batch=per_rank,
            n_local=n_local,
            steps_per_epoch=steps,
            channels_last=channels_last,
            amp=cfg.bf16 and device.type == "cuda",
            log_every=max(1, cfg.log_every),
            eval_every_steps=every,
            augment=cfg.augment,
            dist=dist,
        )


def check_finite_loss(loss: float, epoch: int, step: int, lr: float) -> None:
    """Stop a diverged run before it writes NaN weights anywhere."""
    if not math.isfinite(loss):
        raise UsageError(
            f"training loss became {loss} at epoch {epoch + 1}, step {step}: the run "
            f"diverged (learning rate {lr:g}); try a smaller --lr"
        )


def train_one_epoch(
    state: TrainingState,
    train_model: torch.nn.Module,
    data: Datasets,
    criterion: torch.nn.Module,
    settings: LoopSettings,
    callbacks: Callback,
    stop: Any = None,
    evaluate_now: Callable[[float], bool] | None = None,
) -> EpochEnd:
    """Train ``state.epoch`` from ``state.step`` to its end, the stop event or the target.

    ``evaluate_now(epoch_position)`` runs at the mid-epoch evaluation points (``eval_every`` < 1)
    and returns True when the target accuracy is reached. Training seconds are counted into
    ``state.train_seconds``; evaluation time is not.
    """
    s, dev, dist = settings, state.device, settings.dist
    if state.step == 0 or state.perm is None or state.totals is None:
        state.perm, state.totals, state.step = (
            torch.randperm(state.n_train, generator=state.data_rng),
            None,
            0,
        )
    totals = state.totals or RunningTotals.zeros(dev)
    state.totals = totals
    local = (
        state.perm[dist.rank : dist.world * s.n_local : dist.world] if dist.enabled else state.perm
    )
    local = local.to(dev)
    images, labels, bg = data.train.images, data.train.labels, data.train.background
    opt = state.optimizer
    sched = state.scheduler if state.schedule_unit == "step" else None
    spe, total_steps, epoch = s.steps_per_epoch, state.epochs * s.steps_per_epoch, state.epoch
    sync(dev)
    t0 = time.perf_counter()
    while state.step < spe:
        idx = local[state.step * s.per_rank_batch : (state.step + 1) * s.per_rank_batch]
        x, y = images[idx], labels[idx]
        if s.augment.enabled:
            x = augment_batch(x, s.augment, state.aug_rng, bg)
        if s.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=s.amp):
            out = train_model(x)
            loss = criterion(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        # The last batch of the run needs no next learning rate: one-cycle stepped past its end
        # extrapolates (a negative lr on tiny runs), and history records the lr after the step.
        if sched is not None and epoch * spe + state.step + 1 < total_steps:
            sched.step()
        with torch.no_grad():
            totals.loss_sum += loss.detach().double() * y.numel()
            totals.correct += (out.argmax(1) == y).sum()
            totals.seen += y.numel()
        state.step += 1
        step = state.step
        mean_loss = acc = None
        if step % s.log_every == 0 or step == spe:
            mean_loss, acc = totals.means()
            if not dist.enabled:  # ranks see different losses; they check at the epoch end
                check_finite_loss(mean_loss, epoch, step, opt.param_groups[0]["lr"])
        if callbacks:
            callbacks.on_batch_end(
                BatchState(
                    epoch,
                    step,
                    spe,
                    epoch * spe + step,
                    total_steps,
                    state.train_seconds + (time.perf_counter() - t0),
                    mean_loss,
                    acc,
                )
            )
        end: EpochEnd | None = None
        if (
            evaluate_now is not None
            and s.eval_every_steps
            and step % s.eval_every_steps == 0
            and step < spe
        ):
            sync(dev)
            state.train_seconds += time.perf_counter() - t0
            reached = evaluate_now(epoch + step / spe)
            train_model.train()
            t0 = time.perf_counter()  # evaluation is not training time: restart the clock
            end = "target" if reached else None
        if end is None and stop is not None and stop.is_set():
            end = "interrupted"
        if end is not None:
            sync(dev)
            state.train_seconds += time.perf_counter() - t0
            return end
    sync(dev)
    state.train_seconds += time.perf_counter() - t0
    return "complete"


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    data: DeviceDataset,
    batch_size: int = 1000,
    *,
    channels_last: bool = False,
    amp: bool = False,
    dist: Dist | None = None,
    details: bool = False,
) -> dict[str, Any]:
    """Loss and accuracy of ``model`` on ``data`` (summed over ranks when distributed).

    Returns ``{"loss", "accuracy", "correct", "n"}``, with ``details`` also ``predictions`` and
    ``probabilities`` (single process only). Refuses an empty set (``DataError``).
    """
    dist = dist or Dist()
    was_training = model.training
    model.eval()
    dev = data.images.device
    n = len(data)
    idx_all = torch.arange(dist.rank, n, dist.world, device=dev) if dist.enabled else None
    loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
    correct = torch.zeros((), device=dev, dtype=torch.int64)
    count = torch.zeros((), device=dev, dtype=torch.int64)
    preds, probs = [], []
    m = idx_all.numel() if idx_all is not None else n
    for s in range(0, m, batch_size):
        if idx_all is not None:
            ix = idx_all[s : s + batch_size]
            x, y = data.images[ix], data.labels[ix]
        else:
            x, y = data.images[s : s + batch_size], data.labels[s : s + batch_size]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        out = out.float()
        loss_sum += F.cross_entropy(out, y, reduction="sum").double()
        p = out.argmax(1)
        correct += (p == y).sum()
        count += y.numel()
        if details:
            preds.append(p.cpu())
            probs.append(out.softmax(1).cpu())
    all_reduce_sum(loss_sum, dist)
    all_reduce_sum(correct, dist)
    all_reduce_sum(count, dist)
    model.train(was_training)
    c = int(count)
    if c == 0:
        raise DataError("no images to evaluate on: the evaluation set is empty")
    res: dict[str, Any] = {
        "loss": float(loss_sum) / c,
        "accuracy": int(correct) / c,
        "correct": int(correct),
        "n": c,
    }
    if details:
        res["predictions"] = torch.cat(preds).numpy() if preds else np.zeros(0, np.int64)
        res["probabilities"] = torch.cat(probs).numpy() if probs else np.zeros((0, 10), np.float32)
    return res


def evaluate_split(
    model: torch.nn.Module,
    data: DeviceDataset,
    split: str,
    state: TrainingState,
    epoch: float,
    settings: LoopSettings,
    batch_size: int,
) -> EvalResult:
    """``evaluate`` as a typed record of the point in training it was taken at."""
    r = evaluate(
        model,
        data,
        batch_size,
        channels_last=settings.channels_last,
        amp=settings.amp,
        dist=settings.dist,
    )
    return EvalResult(
        epoch=round(float(epoch), 4),
        train_seconds=state.train_seconds,
        split=split,
        accuracy=r["accuracy"],
        loss=r["loss"],
        n=r["n"],
    )


def compile_warm_up(
    train_model: torch.nn.Module,
    model: torch.nn.Module,
    data: Datasets,
    criterion: torch.nn.Module,
    opt: torch.optim.Optimizer,
    settings: LoopSettings,
    device: torch.device,
) -> tuple[torch.nn.Module, float]:
    """``torch.compile`` the training module and run one step to compile it, leaving the
    weights as they were; returns (compiled module, seconds spent)."""
    t0 = time.perf_counter()
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    compiled = torch.compile(train_model)
    xw = data.train.images[: settings.per_rank_batch]
    if settings.channels_last:
        xw = xw.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.amp):
        criterion(compiled(xw), data.train.labels[: settings.per_rank_batch]).backward()
    opt.zero_grad(set_to_none=True)
    model.load_state_dict(snapshot)
    sync(device)
    return compiled, time.perf_counter() - t0  # type: ignore[return-value]
