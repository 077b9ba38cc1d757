"""Waking the jobs of this process that wait for busy targets, when a locker saw a release.

A locker calls :meth:`ReleaseSignal.fire` after an unlock, after a job left the line (granted,
gave up, or its place was dropped), and :meth:`ReleaseSignal.mark` while it decides a
``lock_queued`` request. :meth:`ReleaseSignal.wait` then returns at once if something was
released since the calling task's last ``lock_queued`` (a release between the job's look at the
line and its wait is not lost), as soon as something is released, or after the timeout. Waiters
in other processes are not woken: they poll, with their timeout.

Waiters may sit on different event loops (the InMemory locker is used from several threads):
each future is resolved on its own loop.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class ReleaseSignal:
    """A generation counter and the futures of the tasks waiting for it to move."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._generation = 0
        self._waiters: dict[asyncio.Future[None], asyncio.AbstractEventLoop] = {}
        self._seen: weakref.WeakKeyDictionary[asyncio.Task[Any], int] = weakref.WeakKeyDictionary()

    @property
    def generation(self) -> int:
        return self._generation

    def mark(self, generation: int | None = None) -> None:
        """Remember, for the current task, the state of the line it has seen (``generation``:
        the counter read before looking at the line; default: now)."""
        task = asyncio.current_task()
        if task is None:
            return
        with self._mutex:
            self._seen[task] = self._generation if generation is None else generation

    def fire(self) -> None:
        """Something may have become free: wake every waiter."""
        with self._mutex:
            self._generation += 1
            waiters, self._waiters = self._waiters, {}
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for fut, loop in waiters.items():
            if loop is running:
                _resolve(fut)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, fut)

    async def wait(self, timeout: float) -> None:
        """Return once fired (or fired since this task's last :meth:`mark`), or after
        ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        fut: asyncio.Future[None] = loop.create_future()
        with self._mutex:
            seen = self._seen.pop(task, None) if task is not None else None
            if seen is not None and seen < self._generation:
                return
            self._waiters[fut] = loop
        try:
            await asyncio.wait_for(fut, max(0.0, timeout))
        except TimeoutError:
            pass
        finally:
            with self._mutex:
                self._waiters.pop(fut, None)
