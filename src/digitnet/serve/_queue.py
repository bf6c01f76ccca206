"""A bounded work queue: reading runs in a thread pool, off the event loop, with a cap on how
many requests may wait and a deadline for each.

Every admitted request holds its slot until its work has really finished (not merely until
its client was answered), so a flood of slow images cannot pile up work behind the answers:
memory stays bounded by ``limit`` requests of at most the upload limit each.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["Busy", "TimedOut", "WorkQueue"]

T = TypeVar("T")


class Busy(Exception):
    """Every slot is taken: the client should retry later (HTTP 503)."""


class TimedOut(Exception):
    """The work did not finish within the per-request deadline (HTTP 503)."""


class WorkQueue:
    def __init__(self, workers: int, limit: int, timeout_s: float) -> None:
        if workers < 1 or limit < 1 or not timeout_s > 0:
            raise ValueError("workers and limit must be >= 1 and timeout_s > 0")
        self.workers = workers
        self.limit = limit
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="digitnet-read")
        self._lock = threading.Lock()
        self._pending = 0
        self.served = 0
        self.refused = 0
        self.timed_out = 0

    @property
    def pending(self) -> int:
        """Requests admitted whose work has not finished (running or waiting)."""
        return self._pending

    def _release(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the pool; ``Busy`` when full, ``TimedOut`` past the deadline."""
        with self._lock:
            if self._pending >= self.limit:
                self.refused += 1
                raise Busy(
                    f"server busy: {self._pending} requests in progress "
                    f"(limit {self.limit}); retry later"
                )
            self._pending += 1
        try:
            fut = self._pool.submit(fn, *args)
        except RuntimeError:  # the pool was shut down: the server is stopping
            with self._lock:
                self._pending -= 1
            raise Busy("server is shutting down") from None
        fut.add_done_callback(self._release)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(fut), self.timeout_s)
        except asyncio.TimeoutError:
            # Still waiting in the pool: cancelled, it never runs. Already running: it
            # finishes in its thread and keeps its slot until then.
            fut.cancel()
            self.timed_out += 1
            raise TimedOut(
                f"reading took longer than {self.timeout_s:g} s; try a smaller image or retry later"
            ) from None
        self.served += 1
        return result

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
