"""The GUI's only doorway into the rest of digitnet (no Qt in here).

Everything the pages and workers need from preprocessing, inference, checkpoints, training and
adaptation goes through these functions, so the widgets deal in plain typed results
(``Reading``, ``TrainStart``, ``TrainProgress``, ``EpochReport``, ``TrainOutcome``,
``ResumePlan``) and the library's API lives in one place. The functions are safe to call from a
worker thread: they touch no widget.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# The pages import nothing of the library but this module: the errors they raise and catch
# come from here too.
from .. import preprocess
from .._io import missing_reason
from ..errors import CheckpointError, DigitnetError, ImageError, UsageError
from .results import (
    FORM_FIELDS,
    AdaptOutcome,
    AdaptProgress,
    EpochReport,
    FileResult,
    FolderSummary,
    ModelInfo,
    Reading,
    ResumePlan,
    TrainOutcome,
    TrainProgress,
    TrainStart,
)

if TYPE_CHECKING:
    from ..engine.callbacks import BatchState, EpochMetrics, FitStart

__all__ = [
    "FORM_FIELDS",
    "IMAGE_SUFFIXES",
    "AdaptOutcome",
    "AdaptProgress",
    "CheckpointError",
    "DigitnetError",
    "EpochReport",
    "FileResult",
    "FolderSummary",
    "ImageError",
    "ModelInfo",
    "Reading",
    "ResumePlan",
    "TrainOutcome",
    "TrainProgress",
    "TrainStart",
    "UsageError",
    "adapt",
    "adapt_available",
    "bundled_model_path",
    "describe_model",
    "devices",
    "list_images",
    "load_predictor",
    "make_config",
    "missing_reason",
    "model_names",
    "model_summary",
    "read_files",
    "read_image_file",
    "read_ink",
    "recipe_config",
    "recipe_names",
    "resume_plan",
    "target_from_name",
    "train",
    "warm_up_training",
    "write_file",
]

# What "Open folder" and drag and drop pick up: the reading service's own listing rule.
IMAGE_SUFFIXES: tuple[str, ...] = tuple(sorted(preprocess.IMAGE_EXTENSIONS))


# ------------------------------------------------------------------------------------ reading


def bundled_model_path() -> Path:
    from ..inference import bundled_model_path as where

    return where()


def load_predictor(path: str | Path | None = None) -> Any:
    """A checked ``Predictor`` for ``path`` (None: the bundled model) on the CPU, through the
    library's one loader: ONNX Runtime where it fits (``.onnx`` files, the bundled model when
    onnxruntime is installed), PyTorch otherwise.

    The CPU on purpose: a handful of 28x28 images is faster there than a round trip to a GPU,
    and it leaves the GPU to training.
    """
    from ..inference import load_predictor as load

    return load(None if path is None else str(path), backend="auto", device="cpu")


def describe_model(predictor: Any, path: str | Path | None) -> ModelInfo:
    """Name and test accuracy from the checkpoint's metadata (``meta["metrics"]``)."""
    acc = predictor.test_accuracy
    return ModelInfo(
        None if path is None else str(path),
        str(predictor.name),
        None if acc is None else float(acc),
    )


def _confidence(r: preprocess.Reading) -> float:
    # The probability that the whole text is right: the product of the digits' own.
    return float(np.prod([d.confidence for d in r.digits])) if r.digits else 0.0


def _read(predictor: Any, gray: np.ndarray, label: str, image: np.ndarray | None) -> Reading:
    """Segment ``gray`` (float32 in [0, 1], 0 black) and classify every digit found."""
    (r,) = preprocess.read_digits([gray], predictor, names=[label])
    if r.error is not None:
        raise ImageError(r.error)
    if not r.digits:
        return Reading(message=r.message or "no digit found", image=image)
    boxes = [
        (float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in (d.box for d in r.digits)
    ]
    return Reading(
        r.text,
        _confidence(r),
        np.stack([d.probs for d in r.digits]).astype(np.float32),
        np.stack([d.image for d in r.digits]),
        boxes,
        r.message,
        image,
    )


def read_ink(predictor: Any, ink: np.ndarray) -> Reading:
    """Read the digits in a canvas ink map (uint8, 255 = ink, 0 = paper)."""
    if not np.any(ink > 0):
        return Reading(message="nothing drawn")  # blank: nothing to read, never guess a digit
    # As the drawing looks (dark ink on white paper): the plainest case for the ink detection.
    gray = 1.0 - ink.astype(np.float32) / 255.0
    return _read(predictor, gray, "drawing", None)


def read_image_file(predictor: Any, path: str | Path) -> Reading:
    """Load ``path`` and read its digits (raises ``ImageError`` for unreadable files).

    The file is decoded once, at analysis size; that same grey image is what the window shows,
    so the boxes line up with it exactly.
    """
    gray = preprocess.load_image(path, name=str(path), max_side=preprocess.WORK_MAX_SIDE)
    shown = (np.clip(gray, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return _read(predictor, gray, str(path), shown)


def target_from_name(path: str | Path) -> str | None:
    """The label a file's name gives (``7_anna.png`` -> "7", ``digits/7/x.png`` -> "7"), by
    the rule ``digitnet predict --labels-from-names`` uses; None when it gives none."""
    return preprocess.label_from_name(path)


def list_images(paths: Sequence[str | Path]) -> list[Path]:
    """The images ``paths`` (files and folders, folders searched recursively) stand for, by
    the reading service's listing rule; ``ImageError`` when they stand for none."""
    entries = preprocess.list_images([str(p) for p in paths])
    files = [Path(p) for p, err in entries if err is None]
    if not files:
        raise ImageError(next((err for _, err in entries if err), "no images given"))
    return files


def write_file(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (a crash leaves the old file or the new one)."""
    from .._io import write_bytes

    write_bytes(path, data)
    return Path(path)


def read_files(
    paths: Sequence[str | Path],
    model_path: str | None,
    *,
    stop: threading.Event,
    on_result: Callable[[FileResult, int, int], None],
) -> FolderSummary:
    """Read ``paths`` (files, folders) with the reading service ``digitnet predict`` uses, so
    a folder reads the same in both; call it on a worker thread. Ends early once ``stop`` is
    set. ``on_result(result, done, total)`` after each image.

    The predictor is this call's own, so the main thread keeps using its one for the canvas
    meanwhile; one core is left to the window.
    """
    names = [str(p) for p in paths]
    total = len(preprocess.list_images(names))
    jobs = max(1, (os.cpu_count() or 2) - 1)
    # A generator: closing it stops the reading service's worker processes at once.
    readings = preprocess.read_files(names, lambda: load_predictor(model_path), jobs=jobs)
    n_target = n_right = n_read = done = 0
    try:
        for r in readings:
            if stop.is_set():
                break
            target = preprocess.label_from_name(r.source) if r.ok else None
            res = FileResult(r.source, r.text, _confidence(r), target, r.error)
            n_read += r.ok
            n_target += target is not None
            n_right += bool(res.correct)
            done += 1
            on_result(res, done, total)
    finally:
        readings.close()  # stops any worker processes now
    return FolderSummary(total, n_read, n_target, n_right, stop.is_set())


# ------------------------------------------------------------------------- the training form

# The choices validate() accepts for the string settings that have a fixed set.
_CHOICES = {
    "optimizer": ("sgd", "adam", "adamw", "adadelta"),
    "schedule": ("onecycle", "cosine", "step", "none"),
}


def field_kind(name: str) -> str:
    """``int``, ``float``, ``bool``, ``choice``, ``path`` or ``optional_int`` for a form field,
    from the TrainConfig field's declared type."""
    from ..engine import TrainConfig

    if name == "augment":
        return "bool"
    if name in _CHOICES or name in ("model", "device"):
        return "choice"
    types = {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}
    t = types[name].replace(" ", "")
    return {
        "int": "int",
        "float": "float",
        "bool": "bool",
        "int|None": "optional_int",
        "str|None": "path",
    }.get(t, "text")


def choices(name: str) -> list[str]:
    """The values a choice field accepts."""
    if name == "model":
        return model_names()
    if name == "device":
        return devices()
    return list(_CHOICES[name])


def recipe_names() -> list[str]:
    from ..engine import list_recipes

    return list_recipes()


def recipe_config(recipe: str) -> Any:
    """The ``TrainConfig`` a recipe gives before any change."""
    from ..engine import resolve_config

    return resolve_config(recipe=recipe)


def form_values(cfg: Any) -> dict[str, Any]:
    """The form's fields read from a ``TrainConfig``."""
    out = {name: getattr(cfg, name) for name, _ in FORM_FIELDS if name != "augment"}
    out["augment"] = bool(cfg.augment.enabled)
    return out


def make_config(recipe: str, values: dict[str, Any]) -> Any:
    """The validated ``TrainConfig`` for ``recipe`` with the form's ``values`` on top.

    Raises ``UsageError`` (one line naming the setting) when a value is not accepted.
    """
    from ..engine import resolve_config

    return resolve_config(recipe=recipe, **values)


def model_names() -> list[str]:
    from ..models import list_models

    return list_models()


def model_summary(name: str) -> str:
    from ..models import model_summary as summary

    return summary(name)


def devices() -> list[str]:
    """The training devices this machine has (``auto`` picks the fastest)."""
    import torch

    devs = ["auto", "cpu"]
    if torch.cuda.is_available():
        devs.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devs.append("mps")
    return devs


# fit() takes these from the config it is given even when resuming (engine/fit.py).
_RUN_CONTROL = ("device", "threads", "out")


def resume_plan(checkpoint: str | Path, form: dict[str, Any]) -> ResumePlan:
    """Read the run settings stored in a resumable checkpoint and compare them with ``form``."""
    from ..checkpoint import read_metadata
    from ..engine import TrainConfig

    p = Path(checkpoint)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint")
    meta = read_metadata(p)
    stored = meta.get("config") if isinstance(meta, dict) else None
    if not meta.get("resumable") or not isinstance(stored, dict):
        raise CheckpointError(f"{p}: not a resumable checkpoint (pick a run's last.safetensors)")
    try:
        cfg = TrainConfig.from_dict(stored)
    except (TypeError, UsageError) as exc:
        raise CheckpointError(f"{p}: stored training settings unreadable: {exc}") from None
    ck = form_values(cfg)
    labels = dict(FORM_FIELDS)
    differs = tuple(
        (labels[k], ck[k], form.get(k))
        for k, _ in FORM_FIELDS
        if k not in _RUN_CONTROL and k in form and form[k] != ck[k]
    )
    kept = tuple(labels[k].lower() for k in _RUN_CONTROL if k in labels)
    return ResumePlan(p, cfg, kept, differs)


# ------------------------------------------------------------------------------ training runs


def _metrics(m: EpochMetrics) -> dict[str, float]:
    """An ``engine.EpochMetrics``'s train/val/test loss and accuracy that were measured."""
    out = {}
    for split in ("train", "val", "test"):
        for what in ("loss", "accuracy"):
            v = getattr(m, f"{split}_{what}")
            if v is not None and math.isfinite(v):
                out[f"{split}_{what}"] = float(v)
    return out


class _Forward:
    """An engine callback turning its typed payloads (``engine.callbacks``: ``FitStart``,
    ``BatchState``, ``EpochMetrics``) into the GUI's and handing them to three functions."""

    def __init__(
        self,
        on_start: Callable[[TrainStart], None],
        on_progress: Callable[[TrainProgress], None],
        on_epoch: Callable[[EpochReport], None],
    ) -> None:
        self.start, self.progress, self.epoch = on_start, on_progress, on_epoch

    def on_fit_start(self, info: FitStart) -> None:
        rd = None if info.run_dir is None else str(info.run_dir)
        self.start(TrainStart(info.n_train, info.device, info.total_steps, info.start_step, rd))

    def on_batch_end(self, s: BatchState) -> None:
        done, total = s.global_step, s.total_steps
        # Remaining time at the average pace so far; evaluation pauses are included in neither.
        eta = s.elapsed / done * (total - done) if done > 0 and total >= done else math.nan
        self.progress(
            TrainProgress(s.epoch, s.step, s.steps_per_epoch, done, total, s.elapsed, s.loss, eta)
        )

    def on_eval(self, metrics: Any) -> None:
        pass  # the per-epoch metrics carry the same test figures for the charts

    def on_epoch_end(self, m: EpochMetrics) -> None:
        self.epoch(EpochReport(float(m.epoch), _metrics(m)))

    def on_fit_end(self, result: Any) -> None:
        pass  # train() returns the outcome once fit has


def warm_up_training() -> None:
    """Build one throwaway torch optimizer. The first one built in a process imports
    torch._dynamo (1.7 s on 2 idle cores, ~5 s loaded), holding the GIL in stretches that froze
    the window for up to 0.5 s when it happened at the start of the first training; the app
    calls this on a background thread while it starts up instead."""
    import torch

    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)


def train(
    config: Any,
    *,
    resume: str | Path | None,
    stop: threading.Event,
    on_start: Callable[[TrainStart], None],
    on_progress: Callable[[TrainProgress], None],
    on_epoch: Callable[[EpochReport], None],
) -> TrainOutcome:
    """Run ``engine.fit`` (call it on a worker thread); ``stop`` ends it after the batch."""
    from ..engine import fit

    r = fit(
        config,
        callbacks=(_Forward(on_start, on_progress, on_epoch),),
        stop=stop,
        resume=None if resume is None else str(resume),
    )

    def path(p: Path | None) -> str | None:
        return None if p is None else str(p)

    return TrainOutcome(
        checkpoint=path(r.checkpoint),
        last_checkpoint=path(r.last_checkpoint),
        run_dir=path(r.run_dir),
        interrupted=bool(r.interrupted),
        train_seconds=float(r.train_seconds),
        model=str(r.config.model),
        metrics={} if r.last is None else _metrics(r.last),
    )


# ------------------------------------------------------------------------------- adaptation

# The bar's resolution: AdaptProgress.done counts thousandths of the way.
_ADAPT_STEPS = 1000


def adapt_available() -> bool:
    """Whether this installation can adapt a model (``digitnet.adapt``)."""
    import importlib.util

    return importlib.util.find_spec("digitnet.adapt") is not None


def adapt(
    examples: Sequence[str | Path],
    base: str | None,
    out: str | Path,
    *,
    stop: threading.Event,
    on_progress: Callable[[AdaptProgress], None],
    seconds: float = 60.0,
) -> AdaptOutcome:
    """Fine-tune ``base`` (None: the bundled model) on labelled ``examples`` and write ``out``
    (call it on a worker thread). ``stop`` cancels: nothing is written then."""
    from ..adapt import AdaptProgress as Progress
    from ..adapt import adapt_model

    def forward(p: Progress) -> None:
        on_progress(
            AdaptProgress(
                round(p.fraction * _ADAPT_STEPS), _ADAPT_STEPS, p.step, p.elapsed, p.fit_accuracy
            )
        )

    r = adapt_model(
        [str(e) for e in examples],
        out=out,
        base=base,
        seconds=seconds,
        progress=forward,
        should_stop=stop.is_set,
    )
    return AdaptOutcome(
        None if r.checkpoint is None else str(r.checkpoint),
        r.examples,
        float(r.seconds),
        r.stopped == "cancelled",
        float(r.accuracy_before),
        float(r.accuracy_after),
        tuple(r.skipped),
    )
