"""The for-each-target helpers: most steps are a per-target function and one of these.

``for_each_target`` runs the function for every target concurrently, one task each, and reports
each outcome. ``for_each_target_with_resume`` adds pause support: a function that raises
``Paused`` has its target (and the ``data`` it stored) saved in the step's resume state; on resume
those targets are started again with their data, before any new target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from contest.channels import StepChannels, StepResult
from contest.context import StepContext
from contest.errors import Cancelled, ContestError, Paused
from contest.resume import decode_targets_state, encode_targets_state
from contest.signals import pausable
from contest.target import Target


@dataclass(slots=True)
class TargetWithData:
    """A target and what the step function stored for it before pausing (a JSON-able value)."""

    target: Target
    data: Any = None


class _Workers:
    """The per-target tasks of one helper call.

    A worker takes itself out of the set as it ends (no done-callback: one event-loop callback
    fewer per target), and the helper waits on one future for the set to drain.
    """

    __slots__ = ("_idle", "tasks")

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self._idle: asyncio.Future[None] | None = None

    def start(self, coro: Coroutine[Any, Any, None]) -> None:
        self.tasks.add(asyncio.get_running_loop().create_task(coro))

    def done(self) -> None:
        """Called by each worker as it ends."""
        task = asyncio.current_task()
        if task is not None:
            self.tasks.discard(task)
        if not self.tasks and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    async def wait(self) -> None:
        """Wait for every worker; if we are cancelled ourselves, cancel them and wait again."""
        try:
            while self.tasks:
                self._idle = asyncio.get_running_loop().create_future()
                await self._idle
        except asyncio.CancelledError:
            for t in self.tasks:
                t.cancel()
            if self.tasks:
                await asyncio.wait(set(self.tasks), timeout=1.0)
            raise


def _stop_reading_on_cancel(ctx: StepContext, ch: StepChannels) -> None:
    """On cancel, stop reading at once: do not wait for the input to be closed (the runner
    closes it on cancel, but the helpers must not depend on it)."""
    ctx.scope.cancel.add_callback(ch.input.close)


async def for_each_target(
    ctx: StepContext,
    ch: StepChannels,
    fn: Callable[[StepContext, Target], Awaitable[None]],
) -> None:
    """Run ``fn(ctx, target)`` for every target concurrently; raising fails that target.

    A pause does not interrupt ``fn`` (``ctx.sleep`` ends on cancel only): the targets in hand
    are finished, and the runner keeps new ones from coming in. Returns when the input is closed
    and every function has finished; on cancellation, once the functions have returned (their
    results are dropped then).
    """
    workers = _Workers()
    output = ch.output

    async def one(target: Target) -> None:
        try:
            try:
                await fn(ctx, target)
            except asyncio.CancelledError:
                if ctx.is_cancelled():
                    return
                raise  # our own task is being cancelled: let it end
            except Exception as exc:  # Cancelled too: when nobody cancelled, it fails the target
                if not ctx.is_cancelled():
                    await output.put(StepResult(target, exc))
                return
            if not ctx.is_cancelled():
                await output.put(StepResult(target))
        finally:
            workers.done()

    _stop_reading_on_cancel(ctx, ch)
    # Without resume support a target in hand is finished, not dropped: the workers inherit
    # this context, so their sleeps end on cancel only.
    token = pausable.set(False)
    try:
        async for target in ch.input:
            workers.start(one(target))
    finally:
        pausable.reset(token)
    await workers.wait()


async def for_each_target_with_resume(
    ctx: StepContext,
    ch: StepChannels,
    resume_state: bytes | None,
    version: int,
    fn: Callable[[StepContext, TargetWithData], Awaitable[None]],
) -> None:
    """Like :func:`for_each_target`, with pause support.

    ``fn`` may store JSON-able data in ``twd.data`` and raise ``Paused`` (``ctx.sleep`` raises
    it for you on pause); once every function has returned, the helper raises ``Paused`` with
    the versioned state of every paused target. On resume, ``fn`` runs again for those targets,
    with their data, before any new target.
    """
    saved = [TargetWithData(t, data) for t, data in decode_targets_state(resume_state, version)]
    workers = _Workers()
    paused: list[TargetWithData] = []
    output = ch.output

    async def one(twd: TargetWithData) -> None:
        try:
            err: BaseException | None = None
            try:
                await fn(ctx, twd)
            except Paused:
                paused.append(twd)
                return
            except asyncio.CancelledError:
                if ctx.is_cancelled():
                    return
                raise  # our own task is being cancelled: let it end
            except Exception as exc:  # Cancelled too: when nobody cancelled, it fails the target
                err = exc
            if not ctx.is_cancelled():
                await output.put(StepResult(twd.target, err))
        finally:
            workers.done()

    _stop_reading_on_cancel(ctx, ch)
    for twd in saved:
        workers.start(one(twd))
    async for target in ch.input:
        workers.start(one(TargetWithData(target)))
    await workers.wait()

    if ctx.is_cancelled():
        raise Cancelled()
    if paused and not ctx.is_paused():
        ids = ", ".join(t.target.id for t in paused)
        raise ContestError(
            "ForEachTargetWithResume: some target functions paused, but no pause signal "
            f"received: [{ids}]"
        )
    if ctx.is_paused():
        raise Paused(encode_targets_state(((t.target, t.data) for t in paused), version))
