"""SIGINT/SIGTERM during long work: the first one asks the work to stop cleanly, a second gives up.

Used by ``train`` and ``experiment``: ``fit`` checks the event every batch, finishes the batch and
saves a resumable checkpoint.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

# What signal.signal() returns and takes: a handler, SIG_DFL, SIG_IGN, or None (set outside Python)
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class StopOnSignals:
    """Context manager: ``stop`` is set by the first SIGINT/SIGTERM; a second raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.first: int | None = None  # the signal number that set ``stop``
        self._old: dict[int, _Handler] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        if self.first is not None:
            raise KeyboardInterrupt
        self.first = signum
        self.stop.set()

    def __enter__(self) -> StopOnSignals:
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)

    @property
    def name(self) -> str:
        return signal.Signals(self.first).name if self.first is not None else "stop"

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 130 if self.first in (None, signal.SIGINT) else 128 + int(self.first)
