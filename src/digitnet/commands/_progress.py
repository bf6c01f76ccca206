"""The CLI's progress display: a tqdm bar per epoch with live loss and accuracy (stderr)."""

from __future__ import annotations

import sys
from typing import Any

from ..engine.callbacks import BatchState, Callback, EpochMetrics, FitResult, FitStart


class TqdmProgress(Callback):
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.info: FitStart | None = None

    def on_fit_start(self, info: FitStart) -> None:
        self.info = info
        self.enabled = self.enabled and info.rank == 0
        cfg = info.config
        if self.enabled:
            print(
                f"training {cfg.model} ({cfg.recipe} recipe) on {info.n_train:,} images, "
                f"{cfg.epochs} epochs, batch {cfg.batch_size}, device {info.device}",
                file=sys.stderr,
            )

    def _bar(self, epoch: int, initial: int) -> Any:
        from tqdm.auto import tqdm

        assert self.info is not None
        return tqdm(
            total=self.info.steps_per_epoch,
            initial=initial,
            desc=f"epoch {epoch + 1}/{self.info.config.epochs}",
            unit="batch",
            leave=True,
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.5,
        )

    def on_batch_end(self, state: BatchState) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = self._bar(state.epoch, state.step - 1)
        self.bar.update(1)
        if state.loss is not None:
            self.bar.set_postfix(
                loss=f"{state.loss:.4f}", acc=f"{state.accuracy:.4f}", refresh=False
            )

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        if self.bar is not None:
            post = {"loss": f"{metrics.train_loss:.4f}", "test_acc": f"{metrics.test_accuracy:.4f}"}
            self.bar.set_postfix(post, refresh=True)
            self.bar.close()
            self.bar = None

    def on_fit_end(self, result: FitResult) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
