"""Long work off the GUI thread: training, reading a folder of images, adapting a model.

Each worker is a ``QObject`` moved to its own ``QThread`` (the Qt for Python pattern): the
thread's ``started`` signal runs ``worker.run`` there, and results come back through signals,
which Qt queues to the main thread because the receivers live there. The signals carry the
doorway's plain typed results (``backend.TrainProgress``, ``backend.TrainOutcome``, ...), never
widgets, tensors or modules, so the main thread is the only one that touches the interface.
Cancelling is a ``threading.Event`` the work checks every batch (or every file); threads are
never terminated, only asked to stop and then waited for. Workers reach the library only
through ``backend``.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from . import backend

__all__ = ["AdaptWorker", "FolderWorker", "TrainWorker", "WorkerHandle", "start_worker"]

# The most often a worker reports progress. A fast model does hundreds of batches a second; a
# signal per batch would flood the main thread's event queue for no visible gain (a screen
# refreshes every ~16 ms, and a progress bar needs far less).
PROGRESS_INTERVAL_S = 0.05


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
        except backend.DigitnetError as exc:
            self.failed.emit(str(exc))
        except MemoryError:
            self.failed.emit("out of memory")
        except Exception as exc:
            traceback.print_exc()
            self.failed.emit(f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self.done.emit()

    def work(self) -> None:
        """The job itself; every worker class below overrides it (this base only wraps errors)."""
        raise NotImplementedError(f"{type(self).__name__} must override work()")


class TrainWorker(_Worker):
    """Trains ``config`` (a validated ``TrainConfig``), or resumes from ``resume``.

    Signals: ``fitStarted(TrainStart)``, ``progress(TrainProgress)`` (at most every
    ``PROGRESS_INTERVAL_S``, always at the end of an epoch and at log steps),
    ``epochEnded(EpochReport)``, and once at the end ``finished(TrainOutcome)``.
    """

    fitStarted = Signal(object)
    progress = Signal(object)
    epochEnded = Signal(object)
    finished = Signal(object)

    def __init__(
        self, config: Any, stop: threading.Event | None = None, resume: str | None = None
    ) -> None:
        super().__init__(stop)
        self.config = config
        self.resume = resume
        self._last_emit = 0.0

    def _progress(self, p: backend.TrainProgress) -> None:
        now = time.perf_counter()
        end_of_epoch = p.steps_per_epoch > 0 and p.step >= p.steps_per_epoch
        if end_of_epoch or p.loss is not None or now - self._last_emit >= PROGRESS_INTERVAL_S:
            self._last_emit = now
            self.progress.emit(p)

    def work(self) -> None:
        out = backend.train(
            self.config,
            resume=self.resume,
            stop=self.stop,
            on_start=self.fitStarted.emit,
            on_progress=self._progress,
            on_epoch=self.epochEnded.emit,
        )
        self.finished.emit(out)


class FolderWorker(_Worker):
    """Reads every image in ``paths`` with the model at ``model_path`` (None: bundled).

    Emits ``row(FileResult)`` per file, ``progress(done, total)`` and finally
    ``finished(FolderSummary)``.
    """

    row = Signal(object)
    progress = Signal(int, int)
    finished = Signal(object)

    def __init__(
        self,
        paths: Sequence[str | Path],
        model_path: str | None,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__(stop)
        self.paths = [Path(p) for p in paths]
        self.model_path = model_path

    def _row(self, r: backend.FileResult, done: int, total: int) -> None:
        self.row.emit(r)
        self.progress.emit(done, total)

    def work(self) -> None:
        self.progress.emit(0, len(self.paths))
        summary = backend.read_files(
            self.paths, self.model_path, stop=self.stop, on_result=self._row
        )
        self.finished.emit(summary)


class AdaptWorker(_Worker):
    """Adapts the model at ``base`` (None: bundled) to the labelled ``examples``, writing
    ``out``. Emits ``progress(AdaptProgress)`` and finally ``finished(AdaptOutcome)``."""

    progress = Signal(object)
    finished = Signal(object)

    def __init__(
        self,
        examples: Sequence[str | Path],
        base: str | None,
        out: Path,
        seconds: float,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__(stop)
        self.examples = [Path(p) for p in examples]
        self.base = base
        self.out = out
        self.seconds = seconds

    def work(self) -> None:
        r = backend.adapt(
            self.examples,
            self.base,
            self.out,
            stop=self.stop,
            on_progress=self.progress.emit,
            seconds=self.seconds,
        )
        self.finished.emit(r)


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
