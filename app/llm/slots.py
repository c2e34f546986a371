"""A bound on concurrent holders with a FIFO wait line, usable from any event loop (the
remote engine's requests in flight, llm.parallel)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque


class Slots:
    """At most `size` holders, the others wait in FIFO order.

    Unlike asyncio.Semaphore it is not bound to one event loop: the server has one, but
    tests and one-shot commands may use the engine from several in turn.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.held = 0
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Wait for a slot (cancellable: a cancelled waiter leaves the line)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.held < self.size and not self._waiters:
                self.held += 1
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        except BaseException:
            with self._lock:
                if (loop, waiter) in self._waiters:
                    self._waiters.remove((loop, waiter))
                    raise
            self.release()  # the slot was handed over as the wait was cancelled
            raise

    def release(self) -> None:
        """Hand the slot to the first waiter, or free it."""
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                with contextlib.suppress(RuntimeError):  # its loop is closed: skip it
                    loop.call_soon_threadsafe(_wake, waiter)
                    return
            self.held -= 1


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
