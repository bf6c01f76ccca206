"""Devices, process-wide torch settings and the DistributedDataParallel plumbing for ``fit``.

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) each process trains on its shard of every
epoch's permutation, metrics are summed across ranks, and only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import UsageError
from .config import TrainConfig

__all__ = ["Dist", "all_reduce_sum", "resolve_device", "setup_device", "sync", "wrap_ddp"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA, else Apple MPS, else CPU; a named device must exist here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"--device {name}: CUDA is not available on this machine (torch {torch.__version__})"
        )
    if name == "mps" and not _mps_available():
        raise UsageError("--device mps: Apple MPS is not available on this machine")
    return torch.device(name)


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun job (rank 0 of 1 when not distributed)."""

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


def all_reduce_sum(t: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Sum ``t`` over the ranks in place (a no-op in a single process)."""
    if dist.enabled:
        import torch.distributed as tdist

        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t


def sync(device: torch.device) -> None:
    """Wait for queued device work (so that wall-clock times measure it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def setup_device(cfg: TrainConfig, dist: Dist) -> torch.device:
    """Join the process group, pick the device and set threads, determinism and seeds."""
    if dist.enabled:
        import torch.distributed as tdist

        if not tdist.is_initialized():
            cuda = cfg.device in ("auto", "cuda") and torch.cuda.is_available()
            tdist.init_process_group("nccl" if cuda else "gloo")
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
    return device


def wrap_ddp(model: torch.nn.Module, device: torch.device, dist: Dist) -> torch.nn.Module:
    """The module the training steps call: ``model`` itself, or its DDP wrapper."""
    if not dist.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )
