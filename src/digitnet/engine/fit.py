"""``fit``: the one training loop (CLI, GUI, experiments, benchmarks), read top to bottom.

Its parts live beside it: devices and DDP (``devices``), optimizer and schedule (``optim``), the
epoch loop and evaluation (``loop``), what a resume restores (``state``), the run folder
(``writer``), typed callback payloads and the result (``callbacks``); the data is built in
``digitnet.data.datasets``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_training_state
from ..data.datasets import Datasets, load_datasets
from ..data.tensors import DeviceDataset, input_spec
from ..errors import CheckpointError, UsageError
from ..models import create_model
from .callbacks import Callback, CallbackList, EpochMetrics, FitResult, FitStart
from .config import TrainConfig, validate
from .devices import Dist, all_reduce_sum, resolve_device, setup_device, wrap_ddp
from .loop import (
    EpochEnd,
    LoopSettings,
    check_finite_loss,
    compile_warm_up,
    evaluate,
    evaluate_split,
    train_one_epoch,
)
from .optim import make_optimizer, make_schedule
from .state import TrainingState
from .writer import RunWriter, default_run_dir

__all__ = ["Datasets", "FitResult", "evaluate", "fit", "load_datasets", "resolve_device"]


def fit(
    config: TrainConfig,
    callbacks: Any = (),
    stop: Any = None,
    resume: str | os.PathLike[str] | None = None,
    datasets: Datasets | None = None,
    write: bool = True,
) -> FitResult:
    """Train ``config``; see docs/architecture.md for the callback and stop contracts.

    ``resume``: a resumable checkpoint (``last.safetensors``) to continue from; the config stored
    in it is used (only ``out``, ``device`` and ``threads`` may differ). ``stop``: anything with
    ``is_set()``, checked after every batch. ``datasets``: pre-loaded data (experiments reuse one
    copy); ``write=False``: no files at all.
    """
    dist = Dist.from_env()
    saved = load_training_state(resume) if resume is not None else None
    cfg = config if saved is None or resume is None else resumed_config(config, saved[2], resume)
    device = setup_device(cfg, dist)
    data = datasets or load_datasets(cfg, device)
    check_sizes(data, dist)
    model, channels_last = build_model(cfg, device, None if saved is None else saved[0], resume)
    settings = LoopSettings.for_run(cfg, len(data.train), channels_last, device, dist)
    state = new_training_state(cfg, model, len(data.train), settings.steps_per_epoch, device)
    if saved is not None and resume is not None:
        state.load_state_dict({"tensors": saved[1], "json": saved[2].get("train_state")}, resume)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    run_dir = default_run_dir(cfg) if write else None
    writer = RunWriter(run_dir, write and dist.main, checkpoint_meta(cfg, model, data))
    writer.start(cfg)
    cb = CallbackList([*callbacks, writer.tensorboard() if cfg.tensorboard else None])
    train_model = wrap_ddp(model, device, dist)
    compile_seconds = 0.0
    if cfg.compile:
        train_model, compile_seconds = compile_warm_up(
            train_model, model, data, criterion, state.optimizer, settings, device
        )
    split, select = ("val", data.val) if data.val is not None else ("test", data.test)
    selection = functools.partial(
        selection_point, state, model, select, split, settings, cfg, writer, cb
    )
    cb.on_fit_start(fit_start(cfg, data, settings, state, writer, device, dist))

    interrupted = False
    train_model.train()
    while not state.finished(cfg.target_accuracy):
        mid_epoch = selection if settings.eval_every_steps else None
        end = train_one_epoch(state, train_model, data, criterion, settings, cb, stop, mid_epoch)
        if end == "interrupted":
            writer.save_last(model, state.state_dict(), state.history)
            interrupted = True
            break
        if state.schedule_unit == "epoch" and state.scheduler is not None:
            state.scheduler.step()
        metrics = close_epoch(state, model, data, settings, cfg.eval_batch_size, end, selection)
        train_model.train()
        writer.write_metrics(state.history)
        cb.on_epoch_end(metrics)
        state.next_epoch()
        if cfg.save_every_epoch and not state.finished(cfg.target_accuracy):
            writer.save_last(model, state.state_dict(), state.history)

    final = None
    if not interrupted:
        check_finite_weights(model, cfg)
        writer.save_last(model, state.state_dict(), state.history)
        final = writer.save_final(model, state.history, state.train_seconds)
    result = fit_result(cfg, state, writer, final, interrupted, compile_seconds, device)
    writer.write_result(result)
    cb.on_fit_end(result)
    return result


# --------------------------------------------------------------------------- fit's named steps


def resumed_config(
    requested: TrainConfig, meta: dict[str, Any], source: str | os.PathLike[str]
) -> TrainConfig:
    """The run is defined by the checkpoint (changing epochs would change the schedule and break
    the promise of an identical result); only where it runs and writes may differ."""
    stored = meta.get("config")
    if not isinstance(stored, dict):
        raise CheckpointError(f"{source}: holds no training settings, cannot resume from it")
    try:
        cfg = TrainConfig.from_dict(stored)
        validate(cfg)
    except (UsageError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: its training settings are invalid: {exc}") from None
    cfg.out = requested.out or str(Path(source).parent)
    cfg.device, cfg.threads = requested.device, requested.threads
    return cfg


def check_sizes(data: Datasets, dist: Dist) -> None:
    """Refuse sets no run can learn from or be measured on (one line, before any training)."""
    if len(data.train) < dist.world:
        per = f" for {dist.world} processes" if dist.enabled else ""
        raise UsageError(f"cannot train on {len(data.train)} training images{per}")
    for name, ds in (("test", data.test), ("validation", data.val)):
        if ds is not None and len(ds) == 0:
            raise UsageError(f"the {name} set holds no images; it cannot measure accuracy")


def build_model(
    cfg: TrainConfig,
    device: torch.device,
    weights: dict[str, torch.Tensor] | None,
    source: str | os.PathLike[str] | None,
) -> tuple[torch.nn.Module, bool]:
    """The model on ``device`` (with resumed ``weights``); also whether it runs channels-last."""
    model = create_model(cfg.model, **cfg.model_args)
    if weights is not None:
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(
                f"{source}: weights do not fit model {cfg.model!r}: {first}"
            ) from None
    model = model.to(device)
    # channels_last only helps convolutions.
    channels_last = cfg.channels_last and any(
        isinstance(m, torch.nn.Conv2d) for m in model.modules()
    )
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, channels_last


def new_training_state(
    cfg: TrainConfig,
    model: torch.nn.Module,
    n_train: int,
    steps_per_epoch: int,
    device: torch.device,
) -> TrainingState:
    """Optimizer, schedule and the two seeded generators of a run at its start."""
    opt = make_optimizer(cfg, model)
    sched, unit = make_schedule(cfg, opt, steps_per_epoch)
    return TrainingState(
        model,
        opt,
        sched,
        data_rng=torch.Generator().manual_seed(cfg.seed),
        aug_rng=torch.Generator().manual_seed(cfg.seed + 1),
        device=device,
        n_train=n_train,
        steps_per_epoch=steps_per_epoch,
        epochs=cfg.epochs,
        schedule_unit=unit,
    )


def fit_start(
    cfg: TrainConfig,
    data: Datasets,
    settings: LoopSettings,
    state: TrainingState,
    writer: RunWriter,
    device: torch.device,
    dist: Dist,
) -> FitStart:
    return FitStart(
        config=cfg,
        device=str(device),
        n_train=len(data.train),
        n_val=0 if data.val is None else len(data.val),
        n_test=len(data.test),
        steps_per_epoch=settings.steps_per_epoch,
        total_steps=cfg.epochs * settings.steps_per_epoch,
        start_step=state.global_step,
        run_dir=writer.run_dir,
        rank=dist.rank,
    )


def fit_result(
    cfg: TrainConfig,
    state: TrainingState,
    writer: RunWriter,
    final: Path | None,
    interrupted: bool,
    compile_seconds: float,
    device: torch.device,
) -> FitResult:
    hit = state.target_reached(cfg.target_accuracy)
    return FitResult(
        config=cfg,
        run_dir=writer.run_dir,
        checkpoint=final,
        best_checkpoint=writer.best,
        last_checkpoint=writer.last,
        history=state.history,
        evals=state.evals,
        train_seconds=state.train_seconds,
        compile_seconds=compile_seconds,
        epochs=state.history[-1].epoch if state.history else 0.0,
        interrupted=interrupted,
        reached_target=None if cfg.target_accuracy is None else hit is not None,
        target_seconds=None if hit is None else hit.train_seconds,
        best_accuracy=state.best_accuracy,
        best_epoch=state.best_epoch,
        device=str(device),
        n_train=state.n_train,
        model=state.model,
    )


def checkpoint_meta(cfg: TrainConfig, model: torch.nn.Module, data: Datasets) -> dict[str, Any]:
    """The metadata every checkpoint of the run carries (enough to rebuild and use the model)."""
    return {
        "model": cfg.model,
        "model_args": dataclasses.asdict(model.config),  # type: ignore[call-overload]
        "input": input_spec(cfg.input),
        "recipe": cfg.recipe,
        "config": cfg.to_dict(),
        "data": data.description,
    }


def selection_point(
    state: TrainingState,
    model: torch.nn.Module,
    select: DeviceDataset,
    split: str,
    settings: LoopSettings,
    cfg: TrainConfig,
    writer: RunWriter,
    callbacks: Callback,
    epoch: float,
) -> bool:
    """Evaluate the model-selection split once; keep the best weights; True at the target."""
    result = evaluate_split(model, select, split, state, epoch, settings, cfg.eval_batch_size)
    if state.record_eval(result):
        writer.save_best(model, state.history, split, result.accuracy, result.epoch)
    callbacks.on_eval(result)
    return cfg.target_accuracy is not None and result.accuracy >= cfg.target_accuracy


def close_epoch(
    state: TrainingState,
    model: torch.nn.Module,
    data: Datasets,
    settings: LoopSettings,
    batch_size: int,
    end: EpochEnd,
    selection: functools.partial[bool],
) -> EpochMetrics:
    """Sum the epoch over ranks, evaluate each split once, append the ``metrics.csv`` row."""
    totals, dist, spe = state.totals, settings.dist, settings.steps_per_epoch
    assert totals is not None
    for t in (totals.loss_sum, totals.correct, totals.seen):
        all_reduce_sum(t, dist)
    train_loss, train_acc = totals.means()
    check_finite_loss(train_loss, state.epoch, state.step, state.optimizer.param_groups[0]["lr"])
    if end != "target":  # at the target the selection split was just evaluated at this point
        selection(state.epoch + 1)
    sel = state.evals[-1]
    test = (
        sel
        if data.val is None
        else evaluate_split(model, data.test, "test", state, sel.epoch, settings, batch_size)
    )
    seconds = state.train_seconds - (state.history[-1].cum_seconds if state.history else 0.0)
    metrics = EpochMetrics(
        epoch=round(state.epoch + state.step / spe, 4),
        train_loss=train_loss,
        train_accuracy=train_acc,
        test_loss=test.loss,
        test_accuracy=test.accuracy,
        seconds=round(seconds, 4),
        cum_seconds=round(state.train_seconds, 4),
        images_per_s=round(int(totals.seen) / max(seconds, 1e-9), 1),
        lr=state.optimizer.param_groups[0]["lr"],
        val_loss=None if data.val is None else sel.loss,
        val_accuracy=None if data.val is None else sel.accuracy,
    )
    state.history.append(metrics)
    return metrics


def check_finite_weights(model: torch.nn.Module, cfg: TrainConfig) -> None:
    """Never write a NaN model as the final one."""
    for name, p in model.state_dict().items():
        if p.is_floating_point() and not bool(torch.isfinite(p).all()):
            raise UsageError(
                f"training diverged: {name} holds NaN or infinite values "
                f"(learning rate {cfg.lr:g}); try a smaller --lr"
            )
