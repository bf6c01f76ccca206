"""Long work off the GUI thread: training and reading a folder of images.

Each worker is a ``QObject`` moved to its own ``QThread`` (the Qt for Python pattern): the
thread's ``started`` signal runs ``worker.run`` there, and results come back through signals,
which Qt queues to the main thread because the receivers live there. The signals carry plain
Python data (dicts, lists, strings), never widgets or tensors, so the main thread is the only one
that touches the interface. Cancelling is a ``threading.Event`` the work checks every batch (or
every file); threads are never terminated, only asked to stop and then waited for.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from ..errors import DigitnetError

__all__ = ["FolderWorker", "TrainWorker", "WorkerHandle", "plain", "start_worker"]

# The most often a worker reports progress. A fast model does hundreds of batches a second; a
# signal per batch would flood the main thread's event queue for no visible gain (a screen
# refreshes every ~16 ms, and a progress bar needs far less).
PROGRESS_INTERVAL_S = 0.05


def plain(obj: Any) -> Any:
    """``obj`` as plain data (dicts, lists, numbers, strings) safe to send to another thread."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        try:
            return obj.item()
        except (TypeError, ValueError, RuntimeError):
            pass
    if hasattr(obj, "__dict__"):
        return {k: plain(v) for k, v in vars(obj).items() if not k.startswith("_")}
    return str(obj)


class _Worker(QObject):
    """Base: ``run`` does the work and always ends with exactly one ``done``."""

    failed = Signal(str)  # one line for the user (a DigitnetError's message, or the bug's)
    done = Signal()

    def __init__(self, stop: threading.Event | None = None) -> None:
        super().__init__()
        self.stop = stop or threading.Event()

    @Slot()
    def run(self) -> None:
        try:
            self.work()
        except DigitnetError as exc:
            self.failed.emit(str(exc))
        except MemoryError:
            self.failed.emit("out of memory")
        except Exception as exc:  # noqa: BLE001  a bug: traceback to the terminal, a line for people
            traceback.print_exc()
            self.failed.emit(f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self.done.emit()

    def work(self) -> None:
        """The job itself; every worker class below overrides it (this base only wraps errors)."""
        raise NotImplementedError(f"{type(self).__name__} must override work()")


class TrainWorker(_Worker):
    """Runs ``engine.fit`` with the GUI's settings; reports through signals.

    ``fitStarted(info)``, ``progress(dict)`` (fit's batch state: epoch, step, steps_per_epoch,
    global_step, total_steps, elapsed, loss/accuracy when fit logged them; plus ``eta_s``), ``epochEnded(metrics)``, and once at the
    end ``finished(result)``: the FitResult as a dict plus ``checkpoint`` and ``interrupted``.
    """

    fitStarted = Signal(dict)
    progress = Signal(dict)
    epochEnded = Signal(dict)
    finished = Signal(dict)

    def __init__(self, recipe: str | None, overrides: dict[str, Any],
                 stop: threading.Event | None = None, resume: str | None = None) -> None:
        super().__init__(stop)
        self.recipe = recipe
        self.overrides = dict(overrides)
        self.resume = resume

    def work(self) -> None:
        from ..engine import fit, resolve_config

        config = resolve_config(recipe=self.recipe, **self.overrides)
        result = fit(config, callbacks=(_Callbacks(self),), stop=self.stop, resume=self.resume)
        # to_json(): the result as plain data; the FitResult itself also holds the trained
        # nn.Module, which must not travel to (or be touched by) the GUI thread.
        out = plain(result.to_json())
        out["history"] = plain(result.history)
        out["config"] = plain(result.config)
        self.finished.emit(out)


class _Callbacks:
    """Engine callbacks (``engine.callbacks.Callback``'s hooks) forwarding to the worker's
    signals. They run in the worker thread, so they only build plain data and emit."""

    def __init__(self, worker: TrainWorker) -> None:
        self.w = worker
        self.last_emit = 0.0

    def on_fit_start(self, info: Any) -> None:
        self.w.fitStarted.emit(plain(info) if info is not None else {})

    def on_batch_end(self, state: Any) -> None:
        now = time.perf_counter()
        step = int(state.get("step", 0))
        spe = int(state.get("steps_per_epoch", 0) or 0)
        # Always report the last batch of an epoch and any batch that carries a logged loss, so
        # the bar reaches 100 % and no logged value is dropped; otherwise at most every 50 ms.
        end_of_epoch = spe > 0 and step >= spe
        has_log = state.get("loss") is not None
        if not (end_of_epoch or has_log or now - self.last_emit >= PROGRESS_INTERVAL_S):
            return
        self.last_emit = now
        s = plain(state)
        done, total = int(s.get("global_step", 0)), int(s.get("total_steps", 0) or 0)
        elapsed = float(s.get("elapsed", 0.0) or 0.0)
        # Remaining time at the average pace so far; evaluation pauses are included in neither.
        s["eta_s"] = elapsed / done * (total - done) if done > 0 and total >= done else math.nan
        self.w.progress.emit(s)

    def on_eval(self, metrics: Any) -> None:
        pass  # the per-epoch metrics (on_epoch_end) carry the same test figures for the charts

    def on_epoch_end(self, metrics: Any) -> None:
        self.w.epochEnded.emit(plain(metrics))

    def on_fit_end(self, result: Any) -> None:
        pass  # the worker sends the result once fit has returned (with the config)


class FolderWorker(_Worker):
    """Reads every image in ``paths`` with the model at ``model_path`` (None: bundled).

    Emits ``row(dict)`` per file (path, text, confidence, target, correct, error),
    ``progress(done, total)`` and finally ``finished(summary)``.
    """

    row = Signal(dict)
    progress = Signal(int, int)
    finished = Signal(dict)

    def __init__(self, paths: Sequence[str | Path], model_path: str | None,
                 stop: threading.Event | None = None) -> None:
        super().__init__(stop)
        self.paths = [Path(p) for p in paths]
        self.model_path = model_path

    def work(self) -> None:
        from . import backend

        # Its own Predictor: the main thread keeps using its one for the canvas meanwhile.
        predictor = backend.load_predictor(self.model_path)
        n = len(self.paths)
        n_target = n_right = n_read = 0
        self.progress.emit(0, n)
        for i, p in enumerate(self.paths):
            if self.stop.is_set():
                break
            target = backend.target_from_name(p)
            rec: dict[str, Any] = {"path": str(p), "text": "", "confidence": 0.0,
                                   "target": target, "correct": None, "error": None}
            try:
                r = backend.read_image_file(predictor, p)
                rec["text"], rec["confidence"] = r.text, r.confidence
                n_read += 1
            except DigitnetError as exc:  # one bad file must not end the whole folder
                rec["error"] = str(exc)
            if target is not None:
                n_target += 1
                rec["correct"] = rec["text"] == target
                n_right += bool(rec["correct"])
            self.row.emit(rec)
            self.progress.emit(i + 1, n)
        self.finished.emit({"files": n, "read": n_read, "with_target": n_target,
                            "right": n_right, "cancelled": self.stop.is_set()})


class WorkerHandle:
    """A running worker, its thread and its stop flag, kept together for the window."""

    def __init__(self, worker: _Worker, thread: QThread) -> None:
        self.worker = worker
        self.thread = thread

    @property
    def stop(self) -> threading.Event:
        return self.worker.stop

    def running(self) -> bool:
        return self.thread.isRunning()

    def shutdown(self) -> None:
        """Ask the work to stop, then wait for its thread to end (never terminate it).

        The work notices the flag within one batch (or one file); fit then writes its resumable
        checkpoint before returning, which is why this waits without a time limit.
        """
        self.worker.stop.set()
        self.thread.quit()
        self.thread.wait()


def start_worker(worker: _Worker, parent: QObject) -> WorkerHandle:
    """Move ``worker`` to a new thread owned by ``parent`` and start it."""
    thread = QThread(parent)
    thread.setObjectName(type(worker).__name__)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # The thread's event loop ends once the work is done. Direct connection: quit() is
    # thread-safe and must not wait in the main thread's queue, where the window's own "done"
    # handler (which joins the thread) may be ahead of it and would then wait forever.
    worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    thread.finished.connect(worker.deleteLater)
    thread.start()
    return WorkerHandle(worker, thread)
