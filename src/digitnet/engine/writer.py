"""The run folder: ``config.json``, metrics, checkpoints and ``result.json``.

Layout: ``config.json`` (the resolved settings), ``metrics.csv`` / ``metrics.json`` (one row per
epoch), ``last.safetensors`` (resumable: after each epoch, on interruption and at the end),
``best.safetensors`` (the weights at the best model-selection accuracy), ``model.safetensors``
(the final weights) and ``result.json`` (``FitResult.to_json``). Every file is written
atomically. A writer that is not enabled (``write=False``, or a rank other than 0) writes nothing.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from .._io import ensure_dir, write_json, write_text
from ..checkpoint import json_safe, save_checkpoint
from ..errors import OutputError
from .callbacks import EpochMetrics, FitResult, TensorBoardLogger
from .config import TrainConfig

__all__ = ["RunWriter", "default_run_dir"]

LAST, BEST, FINAL = "last.safetensors", "best.safetensors", "model.safetensors"


def default_run_dir(cfg: TrainConfig) -> Path:
    """``cfg.out``, else ``runs/<model>-<recipe>-<local time>``."""
    if cfg.out:
        return Path(cfg.out)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.model}-{cfg.recipe}-{stamp}"


class RunWriter:
    """Writes one run's folder; ``meta`` is the checkpoint metadata shared by all checkpoints."""

    def __init__(self, run_dir: Path | None, enabled: bool, meta: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.enabled = enabled and run_dir is not None
        self.meta = meta
        self.best: Path | None = None

    def path(self, name: str) -> Path | None:
        return self.run_dir / name if self.enabled and self.run_dir is not None else None

    @property
    def last(self) -> Path | None:
        return self.path(LAST)

    def start(self, cfg: TrainConfig) -> None:
        """Create the folder and write ``config.json``; remember a best checkpoint already there."""
        if self.enabled and self.run_dir is not None:
            ensure_dir(self.run_dir)
            write_json(self.run_dir / "config.json", cfg.to_dict())
            if (self.run_dir / BEST).is_file():  # a resumed run keeps its best so far
                self.best = self.run_dir / BEST

    def tensorboard(self) -> TensorBoardLogger | None:
        """A TensorBoard callback writing into ``<run>/tensorboard`` (None when not writing)."""
        if not self.enabled or self.run_dir is None:
            return None
        return TensorBoardLogger(self.run_dir / "tensorboard")

    def write_metrics(self, history: list[EpochMetrics]) -> None:
        if not self.enabled or self.run_dir is None:
            return
        rows = [m.to_row() for m in history]
        write_json(self.run_dir / "metrics.json", json_safe(rows))
        cols: list[str] = []
        for row in rows:
            cols += [k for k in row if k not in cols]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
        write_text(self.run_dir / "metrics.csv", buf.getvalue())

    def _metrics(self, history: list[EpochMetrics], **extra: Any) -> dict[str, Any]:
        return {**(json_safe(history[-1].to_row()) if history else {}), **extra}

    def save_last(
        self, model: torch.nn.Module, train_state: dict[str, Any], history: list[EpochMetrics]
    ) -> Path | None:
        """The resumable checkpoint (weights + ``TrainingState.state_dict()``)."""
        path = self.last
        if path is None:
            return None
        ts = {"tensors": train_state["tensors"], "json": json_safe(train_state["json"])}
        return save_checkpoint(
            path, model, {**self.meta, "metrics": self._metrics(history)}, train_state=ts
        )

    def save_best(
        self,
        model: torch.nn.Module,
        history: list[EpochMetrics],
        split: str,
        accuracy: float,
        epoch: float,
    ) -> None:
        path = self.path(BEST)
        if path is None:
            return
        sel = {"select_split": split, "select_accuracy": accuracy, "select_epoch": epoch}
        self.best = save_checkpoint(
            path, model, {**self.meta, "metrics": self._metrics(history, **sel)}
        )

    def save_final(
        self, model: torch.nn.Module, history: list[EpochMetrics], train_seconds: float
    ) -> Path | None:
        """``model.safetensors``; if it cannot be written, say where the weights are kept.

        Call after ``save_last`` at the end of training: on failure the error names the kept
        ``last.safetensors`` (the same weights) and how to write the final file again.
        """
        path = self.path(FINAL)
        if path is None:
            return None
        meta = {
            **self.meta,
            "metrics": self._metrics(history, train_seconds=round(train_seconds, 3)),
        }
        try:
            return save_checkpoint(path, model, meta)
        except OutputError as exc:
            last = self.last
            kept = (
                (
                    f"; the trained weights are kept in {last} (digitnet train --resume {last} "
                    f"writes {FINAL} again)"
                )
                if last is not None and last.is_file()
                else ""
            )
            raise OutputError(f"{exc}{kept}") from None

    def write_result(self, result: FitResult) -> None:
        if self.enabled and self.run_dir is not None:
            write_json(self.run_dir / "result.json", result.to_json())
