"""The CLI's progress display: a tqdm bar per epoch with live loss and accuracy (stderr)."""

from __future__ import annotations

import sys
from typing import Any

from ..engine.callbacks import Callback


class TqdmProgress(Callback):
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar = None
        self.info: dict[str, Any] = {}

    def on_fit_start(self, info):
        self.info = info
        cfg = info["config"]
        if self.enabled and info.get("rank", 0) == 0:
            print(
                f"training {cfg.model} ({cfg.recipe} recipe) on {info['n_train']:,} images, "
                f"{cfg.epochs} epochs, batch {cfg.batch_size}, device {info['device']}",
                file=sys.stderr,
            )

    def _bar(self, epoch: int, initial: int):
        from tqdm.auto import tqdm

        cfg = self.info["config"]
        return tqdm(total=self.info["steps_per_epoch"], initial=initial, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                    unit="batch", leave=True, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)

    def on_batch_end(self, state):
        if not self.enabled or self.info.get("rank", 0) != 0:
            return
        if self.bar is None:
            self.bar = self._bar(state["epoch"], state["step"] - 1)
        self.bar.update(1)
        if "loss" in state:
            self.bar.set_postfix(loss=f"{state['loss']:.4f}", acc=f"{state['accuracy']:.4f}", refresh=False)

    def on_epoch_end(self, metrics):
        if self.bar is not None:
            post = {"loss": f"{metrics['train_loss']:.4f}", "test_acc": f"{metrics['test_accuracy']:.4f}"}
            self.bar.set_postfix(post, refresh=True)
            self.bar.close()
            self.bar = None

    def on_fit_end(self, result):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
