"""``fit``: the one training loop (CLI, GUI, experiments, benchmarks), and ``evaluate``.

Hot-loop habits (nanoGPT, airbench): data already on the device and normalised, batches by index,
augmentation on whole batches, ``zero_grad(set_to_none=True)``, no ``.item()`` per step: losses
and hit counts accumulate on the device and are read at log steps and epoch ends only.
Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in
DistributedDataParallel, each rank trains on its shard of every epoch's permutation, metrics are
summed across ranks, and only rank 0 writes files.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._io import ensure_dir, write_json, write_text
from ..checkpoint import json_safe, load_training_state, save_checkpoint
from ..data.tensors import DeviceDataset, augment_batch, input_spec
from ..errors import CheckpointError, UsageError
from ..models import create_model
from .callbacks import CallbackList, TensorBoardLogger
from .config import TrainConfig

__all__ = ["FitResult", "fit", "evaluate", "resolve_device", "load_datasets"]


@dataclass
class FitResult:
    config: TrainConfig
    run_dir: Path | None
    checkpoint: Path | None  # final weights (None when interrupted)
    last_checkpoint: Path | None  # resumable state
    history: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    compile_seconds: float = 0.0
    epochs: float = 0.0
    interrupted: bool = False
    reached_target: bool | None = None
    target_seconds: float | None = None  # training seconds when the target was first reached
    device: str = "cpu"
    n_train: int = 0
    model: Any = None

    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}

    @property
    def test_accuracy(self) -> float | None:
        return self.final().get("test_accuracy")

    @property
    def test_loss(self) -> float | None:
        return self.final().get("test_loss")

    def to_json(self) -> dict[str, Any]:
        f = self.final()
        return json_safe({
            "model": self.config.model,
            "recipe": self.config.recipe,
            "epochs": self.epochs,
            "train_images": self.n_train,
            "test_accuracy": f.get("test_accuracy"),
            "test_loss": f.get("test_loss"),
            "val_accuracy": f.get("val_accuracy"),
            "val_loss": f.get("val_loss"),
            "train_accuracy": f.get("train_accuracy"),
            "train_loss": f.get("train_loss"),
            "train_seconds": round(self.train_seconds, 3),
            "compile_seconds": round(self.compile_seconds, 3),
            "target_accuracy": self.config.target_accuracy,
            "reached_target": self.reached_target,
            "target_seconds": None if self.target_seconds is None else round(self.target_seconds, 3),
            "interrupted": self.interrupted,
            "device": self.device,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "last_checkpoint": str(self.last_checkpoint) if self.last_checkpoint else None,
        })


# --------------------------------------------------------------------------- devices, data


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine (torch {torch.__version__})")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise UsageError("--device mps: Apple MPS is not available on this machine")
    return torch.device(name)


@dataclass
class Datasets:
    train: DeviceDataset
    val: DeviceDataset | None
    test: DeviceDataset
    description: dict[str, Any]


def load_datasets(cfg: TrainConfig, device: torch.device) -> Datasets:
    """Read MNIST once, apply ``limit_train`` and ``val_split``, put everything on ``device``."""
    from ..data.mnist import load_mnist, resolve_data_dir

    data_dir = resolve_data_dir(cfg.data_dir)
    xtr, ytr = load_mnist(data_dir, "train")
    xte, yte = load_mnist(data_dir, "test")
    n_total = len(ytr)
    if cfg.limit_train is not None:
        xtr, ytr = xtr[: cfg.limit_train], ytr[: cfg.limit_train]
    xval = yval = None
    if cfg.val_split:
        if cfg.val_split >= len(ytr):
            raise UsageError(f"--val-split {cfg.val_split} leaves no training images (only {len(ytr)})")
        # A fixed split (independent of the run's seed) so every run and model selects on the
        # same held-out images.
        order = np.random.default_rng(20240).permutation(len(ytr))
        vi, ti = np.sort(order[: cfg.val_split]), np.sort(order[cfg.val_split :])
        xval, yval, xtr, ytr = xtr[vi], ytr[vi], xtr[ti], ytr[ti]
    spec = input_spec(cfg.input)
    desc = {
        "data_dir": str(data_dir),
        "train_file_items": int(n_total),
        "train_images": int(len(ytr)),
        "val_images": int(0 if yval is None else len(yval)),
        "test_images": int(len(yte)),
        "limit_train": cfg.limit_train,
        "val_split": cfg.val_split,
    }
    return Datasets(
        train=DeviceDataset.from_numpy(xtr, ytr, spec, device),
        val=None if xval is None else DeviceDataset.from_numpy(xval, yval, spec, device),
        test=DeviceDataset.from_numpy(xte, yte, spec, device),
        description=desc,
    )


# --------------------------------------------------------------------------- distributed


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def _all_reduce_sum(t: torch.Tensor, dist: Dist) -> torch.Tensor:
    if dist.enabled:
        import torch.distributed as tdist

        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(model, data: DeviceDataset, batch_size: int = 1000, *, channels_last: bool = False,
             amp: bool = False, dist: Dist | None = None, details: bool = False) -> dict[str, Any]:
    """Loss and accuracy of ``model`` on ``data`` (summed over ranks when distributed).

    With ``details`` also the predictions and probabilities (single process only).
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
    _all_reduce_sum(loss_sum, dist)
    _all_reduce_sum(correct, dist)
    _all_reduce_sum(count, dist)
    model.train(was_training)
    c = max(int(count), 1)
    res: dict[str, Any] = {"loss": float(loss_sum) / c, "accuracy": int(correct) / c, "correct": int(correct), "n": int(count)}
    if details:
        res["predictions"] = torch.cat(preds).numpy() if preds else np.zeros(0, np.int64)
        res["probabilities"] = torch.cat(probs).numpy() if probs else np.zeros((0, 10), np.float32)
    return res


# --------------------------------------------------------------------------- optimisation


def _make_optimizer(cfg: TrainConfig, model) -> torch.optim.Optimizer:
    # No weight decay on batch-norm parameters and biases (standard practice; decaying them
    # only fights the normalisation).
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.Adadelta(groups, lr=cfg.lr)


def _make_schedule(cfg: TrainConfig, opt, steps_per_epoch: int):
    """Returns (scheduler or None, steps per scheduler step: 'step' or 'epoch')."""
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle" and total >= 6:
        # OneCycleLR divides by the length of each phase: keep both at >= 2 steps on tiny runs.
        pct = min(max(cfg.warmup_frac, 2.5 / total), 1 - 2.5 / total)
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=total, pct_start=pct,
            anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0,
            cycle_momentum=cfg.optimizer == "sgd" and cfg.momentum > 0,
            base_momentum=0.85, max_momentum=max(cfg.momentum, 0.85) if cfg.optimizer == "sgd" else 0.95,
        ), "step"
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total), "step"
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma), "epoch"
    return None, "none"


# --------------------------------------------------------------------------- state for --resume


def _optimizer_state(opt) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _load_optimizer_state(opt, tensors: dict[str, torch.Tensor], js: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, v in tensors.items():
        if name.startswith("optim."):
            _, pid, k = name.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    for name, v in js.get("scalars", {}).items():
        pid, k = name.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": js["param_groups"]})


def _rng_tensors(g_data: torch.Generator, g_aug: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    t = {"rng.torch": torch.get_rng_state(), "rng.data": g_data.get_state(), "rng.aug": g_aug.get_state()}
    if device.type == "cuda":
        t["rng.cuda"] = torch.cuda.get_rng_state(device)
    return t


# --------------------------------------------------------------------------- fit


def _run_dir(cfg: TrainConfig) -> Path:
    if cfg.out:
        return Path(cfg.out)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.model}-{cfg.recipe}-{stamp}"


def _write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    write_json(run_dir / "metrics.json", json_safe(history))
    cols: list[str] = []
    for row in history:
        cols += [k for k in row if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for row in history:
        w.writerow(row)
    write_text(run_dir / "metrics.csv", buf.getvalue())


def fit(config: TrainConfig, callbacks=(), stop=None, resume: str | os.PathLike[str] | None = None,
        datasets: Datasets | None = None, write: bool = True) -> FitResult:
    """Train ``config``; see docs/architecture.md for the callback and stop contracts.

    ``resume``: a resumable checkpoint (``last.safetensors``) to continue from; the config stored
    in it is used (only ``epochs``, ``out`` and run-control fields may differ).
    ``datasets``: pre-loaded data (experiments reuse one copy); ``write=False``: no files at all.
    """
    cfg = config
    dist = Dist.from_env()
    resume_model = resume_state = resume_meta = None
    if resume is not None:
        resume_model, resume_state, resume_meta = load_training_state(resume)
        stored = TrainConfig.from_dict(resume_meta["config"])
        # The run is defined by the checkpoint (changing epochs would change the schedule and
        # break the promise of an identical result); only where it runs and writes may differ.
        stored.out = cfg.out or str(Path(resume).parent)
        stored.device, stored.threads = cfg.device, cfg.threads
        cfg = stored
    if dist.enabled:
        import torch.distributed as tdist

        if not tdist.is_initialized():
            backend = "nccl" if cfg.device in ("auto", "cuda") and torch.cuda.is_available() else "gloo"
            tdist.init_process_group(backend)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and dist.enabled:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=False)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(cfg.seed)
    g_data = torch.Generator().manual_seed(cfg.seed)
    g_aug = torch.Generator().manual_seed(cfg.seed + 1)

    data = datasets or load_datasets(cfg, device)
    n_train = len(data.train)
    model = create_model(cfg.model, **cfg.model_args)
    if resume_model is not None:
        try:
            model.load_state_dict(resume_model)
        except RuntimeError as exc:
            raise CheckpointError(f"{resume}: weights do not fit model {cfg.model!r}: {str(exc).splitlines()[0]}") from None
    model.to(device)
    has_conv = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    channels_last = cfg.channels_last and has_conv
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    amp = cfg.bf16 and device.type == "cuda"
    train_model = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    # Each rank takes every world-th index of one shared permutation; the global batch is split
    # across ranks so that the learning-rate recipe means the same thing at any scale.
    per_rank_batch = max(1, cfg.batch_size // dist.world)
    n_local = n_train // dist.world
    steps_per_epoch = max(1, math.ceil(n_local / per_rank_batch))
    if n_local % per_rank_batch == 1 and steps_per_epoch > 1:
        steps_per_epoch -= 1  # a last batch of one image breaks batch norm; drop it
    total_steps = cfg.epochs * steps_per_epoch

    opt = _make_optimizer(cfg, model)
    sched, sched_unit = _make_schedule(cfg, opt, steps_per_epoch)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    start_epoch, start_step, history, evals = 0, 0, [], []
    train_seconds = 0.0
    perm_resume = None
    acc_resume = None
    if resume_state is not None:
        js = resume_meta["train_state"]
        _load_optimizer_state(opt, resume_state, js["optimizer"])
        if sched is not None and js.get("scheduler") is not None:
            sched.load_state_dict(js["scheduler"])
        torch.set_rng_state(resume_state["rng.torch"])
        g_data.set_state(resume_state["rng.data"])
        g_aug.set_state(resume_state["rng.aug"])
        if device.type == "cuda" and "rng.cuda" in resume_state:
            torch.cuda.set_rng_state(resume_state["rng.cuda"], device)
        start_epoch, start_step = js["epoch"], js["step"]
        history, evals = js.get("history", []), js.get("evals", [])
        train_seconds = js.get("train_seconds", 0.0)
        if start_step > 0:
            perm_resume = resume_state["perm"]
            acc_resume = resume_state["acc"]

    run_dir = _run_dir(cfg) if write else None
    writer = write and dist.main
    if writer:
        ensure_dir(run_dir)
        write_json(run_dir / "config.json", cfg.to_dict())
    cb = CallbackList(list(callbacks) + ([TensorBoardLogger(run_dir / "tensorboard")] if cfg.tensorboard and writer else []))

    meta_base = {
        "model": cfg.model,
        "model_args": dataclasses.asdict(model.config),
        "input": input_spec(cfg.input),
        "recipe": cfg.recipe,
        "config": cfg.to_dict(),
        "data": data.description,
    }
    last_path = run_dir / "last.safetensors" if run_dir else None

    def save_resumable(epoch: int, step: int, perm=None, acc=None) -> None:
        if not writer:
            return
        t_opt, j_opt = _optimizer_state(opt)
        tensors = {**t_opt, **_rng_tensors(g_data, g_aug, device)}
        if perm is not None:
            tensors["perm"] = perm
            tensors["acc"] = acc
        js = {
            "epoch": epoch, "step": step, "optimizer": j_opt,
            "scheduler": sched.state_dict() if sched is not None else None,
            "history": history, "evals": evals, "train_seconds": train_seconds,
        }
        metrics = json_safe(history[-1]) if history else {}
        save_checkpoint(last_path, model, {**meta_base, "metrics": metrics}, train_state={"tensors": tensors, "json": json_safe(js)})

    compile_seconds = 0.0
    if cfg.compile:
        t0 = time.perf_counter()
        snapshot = {k: v.clone() for k, v in model.state_dict().items()}
        train_model = torch.compile(train_model)
        xw = data.train.images[:per_rank_batch]
        if channels_last:
            xw = xw.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            criterion(train_model(xw), data.train.labels[:per_rank_batch]).backward()
        opt.zero_grad(set_to_none=True)
        model.load_state_dict(snapshot)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        compile_seconds = time.perf_counter() - t0

    eval_data = data.val if data.val is not None else data.test
    eval_every_steps = max(1, round(cfg.eval_every * steps_per_epoch)) if cfg.eval_every < 1 else None
    reached = None if cfg.target_accuracy is None else False
    target_seconds = None
    for e in evals:
        if cfg.target_accuracy is not None and e.get("select_accuracy", 0) >= cfg.target_accuracy:
            reached, target_seconds = True, e["train_seconds"]

    cb.on_fit_start({
        "config": cfg, "device": str(device), "n_train": n_train,
        "n_val": 0 if data.val is None else len(data.val), "n_test": len(data.test),
        "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
        "start_step": start_epoch * steps_per_epoch + start_step, "run_dir": run_dir, "rank": dist.rank,
    })

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def do_eval(epoch_pos: float) -> dict[str, Any]:
        nonlocal reached, target_seconds
        r = evaluate(model, eval_data, cfg.eval_batch_size, channels_last=channels_last, amp=amp, dist=dist)
        rec = {"epoch": round(epoch_pos, 4), "train_seconds": round(train_seconds, 4),
               "select_split": "val" if data.val is not None else "test",
               "select_accuracy": r["accuracy"], "select_loss": r["loss"]}
        evals.append(rec)
        cb.on_eval(rec)
        if cfg.target_accuracy is not None and r["accuracy"] >= cfg.target_accuracy and not reached:
            reached, target_seconds = True, train_seconds
        return r

    interrupted = False
    done_early = False
    train_model.train()
    epoch = start_epoch
    for epoch in range(start_epoch, cfg.epochs):
        first = epoch == start_epoch and start_step > 0
        perm = perm_resume if first else torch.randperm(n_train, generator=g_data)
        if first:
            loss_sum, correct, seen = (acc_resume[0].to(device).double(), acc_resume[1].to(device).long(), acc_resume[2].to(device).long())
        else:
            loss_sum = torch.zeros((), device=device, dtype=torch.float64)
            correct = torch.zeros((), device=device, dtype=torch.int64)
            seen = torch.zeros((), device=device, dtype=torch.int64)
        local = perm[dist.rank : dist.world * n_local : dist.world].to(device) if dist.enabled else perm.to(device)
        sync()
        t_epoch = time.perf_counter()
        epoch_seconds_before = train_seconds
        step = start_step if first else 0
        while step < steps_per_epoch:
            idx = local[step * per_rank_batch : (step + 1) * per_rank_batch]
            x, y = data.train.images[idx], data.train.labels[idx]
            if cfg.augment.enabled:
                x = augment_batch(x, cfg.augment, g_aug, data.train.background)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = train_model(x)
                loss = criterion(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched_unit == "step":
                sched.step()
            with torch.no_grad():
                loss_sum += loss.detach().double() * y.numel()
                correct += (out.argmax(1) == y).sum()
                seen += y.numel()
            step += 1
            gstep = epoch * steps_per_epoch + step
            state = {"epoch": epoch, "step": step, "steps_per_epoch": steps_per_epoch, "global_step": gstep,
                     "total_steps": total_steps, "elapsed": train_seconds + (time.perf_counter() - t_epoch)}
            if step % cfg.log_every == 0 or step == steps_per_epoch:
                state["loss"] = float(loss_sum) / max(int(seen), 1)
                state["accuracy"] = int(correct) / max(int(seen), 1)
            cb.on_batch_end(state)
            if eval_every_steps and step % eval_every_steps == 0 and step < steps_per_epoch:
                sync()
                train_seconds = epoch_seconds_before + (time.perf_counter() - t_epoch)
                do_eval(epoch + step / steps_per_epoch)
                train_model.train()
                # Evaluation is not training time: restart the clock after it.
                epoch_seconds_before, t_epoch = train_seconds, time.perf_counter()
                if reached and cfg.target_accuracy is not None:
                    done_early = True
                    break
            if stop is not None and stop.is_set():
                interrupted = True
                break
        sync()
        train_seconds = epoch_seconds_before + (time.perf_counter() - t_epoch)
        if interrupted:
            acc = torch.stack([loss_sum.cpu().double(), correct.cpu().double(), seen.cpu().double()])
            save_resumable(epoch, step, perm, acc)
            break
        if sched_unit == "epoch":
            sched.step()
        # ------- end of an epoch (or of the steps needed to reach the target)
        _all_reduce_sum(loss_sum, dist)
        _all_reduce_sum(correct, dist)
        _all_reduce_sum(seen, dist)
        epoch_pos = epoch + step / steps_per_epoch
        if not done_early:
            do_eval(epoch + 1)  # the selection record (and target check) at the epoch's end
        row: dict[str, Any] = {
            "epoch": round(epoch_pos, 4),
            "train_loss": float(loss_sum) / max(int(seen), 1),
            "train_accuracy": int(correct) / max(int(seen), 1),
        }
        if data.val is not None:
            rv = evaluate(model, data.val, cfg.eval_batch_size, channels_last=channels_last, amp=amp, dist=dist)
            row.update(val_loss=rv["loss"], val_accuracy=rv["accuracy"])
        rt = evaluate(model, data.test, cfg.eval_batch_size, channels_last=channels_last, amp=amp, dist=dist)
        row.update(test_loss=rt["loss"], test_accuracy=rt["accuracy"])
        row.update(
            seconds=round(train_seconds - (history[-1]["cum_seconds"] if history else 0.0), 4),
            cum_seconds=round(train_seconds, 4),
            images_per_s=round(int(seen) / max(train_seconds - (history[-1]["cum_seconds"] if history else 0.0), 1e-9), 1),
            lr=opt.param_groups[0]["lr"],
        )
        history.append(row)
        train_model.train()
        if writer:
            _write_metrics(run_dir, history)
        cb.on_epoch_end(dict(row))
        if done_early:
            break
        if cfg.save_every_epoch and epoch + 1 < cfg.epochs:
            save_resumable(epoch + 1, 0)
        if reached and cfg.target_accuracy is not None:
            break

    epochs_done = history[-1]["epoch"] if history else 0.0
    final_path = None
    if writer and not interrupted:
        metrics = json_safe(history[-1]) if history else {}
        meta = {**meta_base, "metrics": {**metrics, "train_seconds": round(train_seconds, 3)}}
        final_path = save_checkpoint(run_dir / "model.safetensors", model, meta)
        save_resumable(cfg.epochs if not (reached or done_early) else epoch + 1, 0)
    result = FitResult(
        config=cfg, run_dir=run_dir, checkpoint=final_path, last_checkpoint=last_path if writer else None,
        history=history, evals=evals, train_seconds=train_seconds, compile_seconds=compile_seconds,
        epochs=epochs_done, interrupted=interrupted, reached_target=reached, target_seconds=target_seconds,
        device=str(device), n_train=n_train, model=model,
    )
    if writer:
        write_json(run_dir / "result.json", result.to_json())
    cb.on_fit_end(result)
    return result
