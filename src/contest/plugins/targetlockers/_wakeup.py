"""Waking the jobs of this process that wait for busy targets, when a locker saw a release.

A locker calls :meth:`ReleaseSignal.fire` after an unlock, after a job left the line (granted,
gave up, or its place was dropped), and :meth:`ReleaseSignal.mark` while it decides a
``lock_queued`` request. :meth:`ReleaseSignal.wait` then returns at once if something was
released since the caller's last ``lock_queued`` (a release between the job's look at the line
and its wait is not lost), as soon as something is released, or after the timeout. Waiters in
other processes are not woken: they poll, with their timeout.

"The caller's last ``lock_queued``" is kept in a context variable, not per task: a task started
for the wait (``asyncio.ensure_future(locker.wait_for_release(t))``, as the job runner does to
race it against pause and cancel) inherits a copy of its parent's context, and so what the
parent saw.

Waiters may sit on different event loops (the InMemory locker is used from several threads):
each future is resolved on its own loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading

#: per signal (by its number), the generation the current context last saw; replaced, never
#: changed in place, so that contexts copied from this one keep their own view
_SEEN: contextvars.ContextVar[dict[int, int]] = contextvars.ContextVar("contest_locker_seen")
_numbers = itertools.count(1)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class ReleaseSignal:
    """A generation counter and the futures of the tasks waiting for it to move."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._generation = 0
        self._waiters: dict[asyncio.Future[None], asyncio.AbstractEventLoop] = {}
        self._number = next(_numbers)

    @property
    def generation(self) -> int:
        return self._generation

    def mark(self, generation: int | None = None) -> None:
        """Remember, in the current context, the state of the line the caller has seen
        (``generation``: the counter read before looking at the line; default: now)."""
        seen = dict(_SEEN.get({}))
        seen[self._number] = self._generation if generation is None else generation
        _SEEN.set(seen)

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
        """Return once fired (or fired since the context's last :meth:`mark`), or after
        ``timeout`` seconds. Afterwards the context counts as having seen the line as it is,
        so that a second wait without a look in between does not return at once."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        seen = _SEEN.get({}).get(self._number)
        try:
            with self._mutex:
                if seen is not None and seen < self._generation:
                    return
                self._waiters[fut] = loop
            try:
                async with asyncio.timeout(max(0.0, timeout)):  # not wait_for: see manager
                    await fut
            except TimeoutError:
                pass
            finally:
                with self._mutex:
                    self._waiters.pop(fut, None)
        finally:
            self.mark()
