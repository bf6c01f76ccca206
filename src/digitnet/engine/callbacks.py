"""Progress goes out of ``fit`` through callbacks (minGPT's pattern); the engine imports no UI.

A callback overrides any of the hooks below. ``on_batch_end`` runs every step, so it must be
cheap; the loss and accuracy it sees are filled in only every ``log_every`` steps (reading them is
a device sync).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Callback", "CallbackList", "TensorBoardLogger"]


class Callback:
    def on_fit_start(self, info: dict[str, Any]) -> None:
        """``info``: config, device, n_train, n_val, n_test, steps_per_epoch, total_steps, start_step, run_dir."""

    def on_batch_end(self, state: dict[str, Any]) -> None:
        """``state``: epoch (0-based), step (in epoch, 1-based), steps_per_epoch, global_step,
        total_steps, elapsed (training seconds), and at log steps ``loss`` and ``accuracy``."""

    def on_eval(self, metrics: dict[str, Any]) -> None:
        """After each evaluation (every ``eval_every`` epochs): epoch (fractional), test/val metrics."""

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        """``metrics``: epoch (1-based), train/val/test loss and accuracy, seconds, images_per_s, lr."""

    def on_fit_end(self, result: Any) -> None:
        """``result``: the ``FitResult``."""


class CallbackList(Callback):
    def __init__(self, callbacks) -> None:
        self.callbacks = [c for c in callbacks if c is not None]

    def on_fit_start(self, info):
        for c in self.callbacks:
            c.on_fit_start(info)

    def on_batch_end(self, state):
        for c in self.callbacks:
            c.on_batch_end(state)

    def on_eval(self, metrics):
        for c in self.callbacks:
            c.on_eval(metrics)

    def on_epoch_end(self, metrics):
        for c in self.callbacks:
            c.on_epoch_end(metrics)

    def on_fit_end(self, result):
        for c in self.callbacks:
            c.on_fit_end(result)


class TensorBoardLogger(Callback):
    """Writes loss/accuracy curves as TensorBoard event files into ``<run>/tensorboard``."""

    def __init__(self, log_dir) -> None:
        from ..errors import UsageError

        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UsageError("--tensorboard needs the tensorboard package: pip install 'digitnet[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def on_batch_end(self, state):
        if "loss" in state:
            self.writer.add_scalar("train/batch_loss", state["loss"], state["global_step"])

    def on_epoch_end(self, metrics):
        e = metrics["epoch"]
        for split in ("train", "val", "test"):
            for what in ("loss", "accuracy"):
                v = metrics.get(f"{split}_{what}")
                if v is not None:
                    self.writer.add_scalar(f"{split}/{what}", v, e)
        self.writer.add_scalar("lr", metrics.get("lr", 0.0), e)
        self.writer.flush()

    def on_fit_end(self, result):
        self.writer.close()
