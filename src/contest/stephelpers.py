"""The for-each-target helpers: most steps are a per-target function and one of these.

``for_each_target`` runs the function for every target concurrently and reports each outcome; a
function that waits goes on in a task of its own, one that does not costs no task.
``for_each_target_with_resume`` adds pause support: a function that raises ``Paused`` has its
target (and the ``data`` it stored) saved in the step's resume state; on resume
those targets are started again with their data, before any new target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextvars import Context, copy_context
from dataclasses import dataclass
from types import CoroutineType
from typing import Any, TypeVar, cast

from contest.channels import StepChannels, StepResult
from contest.context import StepContext
from contest.errors import Cancelled, ContestError, Paused
from contest.resume import decode_targets_state, encode_targets_state
from contest.signals import pausable
from contest.target import Target

Item = TypeVar("Item")


@dataclass(slots=True)
class TargetWithData:
    """A target and what the step function stored for it before pausing (a JSON-able value)."""

    target: Target
    data: Any = None


class _Workers:
    """The per-target tasks of one helper call (only for functions that wait: see
    :func:`_start`).

    A worker takes itself out of the set as it ends (no done-callback: one event-loop callback
    fewer per target), and the helper waits on one future for the set to drain.
    """

    __slots__ = ("_idle", "tasks")

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self._idle: asyncio.Future[None] | None = None

    def start(self, coro: Coroutine[Any, Any, None], context: Context | None = None) -> None:
        self.tasks.add(asyncio.get_running_loop().create_task(coro, context=context))

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


# --- running a target's function without a task, as long as it does not wait ---------------------


class _Continued:
    """Awaiting it goes on with a coroutine that already ran up to its first wait, which
    yielded ``first``: a task can take over a coroutine that :func:`_run_target` began.

    Its own iterator (``__await__`` returns it), as ``asyncio.Future`` is, rather than a
    generator: a target parked in a step that waits (100,000 in a Sleep) keeps one small object
    here, not a generator and its frame.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first: Any = first

    def __await__(self) -> Generator[Any, Any, Any]:
        return cast("Generator[Any, Any, Any]", self)  # it is one: __next__, send and throw

    def __iter__(self) -> _Continued:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        first = self._first
        if first is not _NOTHING:
            self._first = _NOTHING
            if getattr(first, "_asyncio_future_blocking", None) is False:
                first._asyncio_future_blocking = True  # as it was yielded (see _run_target)
            return first
        return self._coro.send(value)  # its StopIteration ends the await with its value

    def throw(self, exc: Any, value: Any = None, tb: Any = None) -> Any:
        self._first = _NOTHING
        if not isinstance(exc, BaseException):
            exc = exc() if value is None else value
        return self._coro.throw(exc)

    def close(self) -> None:
        self._coro.close()


_NOTHING: Any = object()


def _run_target(
    workers: _Workers,
    item: Item,
    call: Awaitable[None],
    finish: Callable[[Item, BaseException | None], None],
    one: Callable[[Item, Awaitable[None]], Coroutine[Any, Any, None]],
) -> None:
    """Run a target's function ``call`` up to its first wait, in a context of its own (as a
    task of its own would). If it returns or raises there, ``finish(item, error)`` reports it
    at once; if it waits, a worker task ``one(item, ...)`` takes it over from that wait.

    Most steps' per-target functions never wait (Noop, Echo, variables): they then cost no task,
    no event-loop turn and no wake-up. ConTest runs a goroutine per target; an asyncio task is
    dearer, and was most of what such a step cost (``benchmarks/pipeline.py`` measures it).
    """
    context = copy_context()
    if type(call) is not CoroutineType:  # some other awaitable: a task awaits it
        workers.start(one(item, call), context)
        return
    try:
        first = context.run(call.send, None)
    except StopIteration:
        finish(item, None)
        return
    except BaseException as exc:
        finish(item, exc)
        return
    if getattr(first, "_asyncio_future_blocking", None):
        # what a task does with a future its coroutine yields: the mark says "yielded to wait
        # on", and a future's own iterator refuses to be yielded twice while it is set, which
        # the next target's function waiting on the same future (a batch's commit) would do
        first._asyncio_future_blocking = False
    workers.start(one(item, _Continued(call, first)), context)


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

    ``fn`` runs as soon as the target is taken; only if it waits does it get a task of its own
    to go on in (see :func:`_start`), so a function that returns without waiting costs no task.
    A pause does not interrupt ``fn`` (``ctx.sleep`` ends on cancel only): the targets in hand
    are finished, and the runner keeps new ones from coming in. Returns when the input is closed
    and every function has finished; on cancellation, once the functions have returned (their
    results are dropped then).
    """
    workers = _Workers()
    report = ch.output.put_nowait

    def finish(target: Target, exc: BaseException | None) -> None:
        if exc is None or isinstance(exc, Exception):  # Cancelled too: unless cancelled, fails
            if not ctx.is_cancelled():
                report(StepResult(target, exc))
        elif not isinstance(exc, asyncio.CancelledError):
            raise exc
        # CancelledError with nobody cancelling the job: the target ends unreported, as its
        # task would have

    async def one(target: Target, awaitable: Awaitable[None]) -> None:
        try:
            try:
                await awaitable
            except asyncio.CancelledError:
                if ctx.is_cancelled():
                    return
                raise  # our own task is being cancelled: let it end
            except Exception as exc:
                finish(target, exc)
                return
            finish(target, None)
        finally:
            workers.done()

    _stop_reading_on_cancel(ctx, ch)
    # Without resume support a target in hand is finished, not dropped: the functions run in
    # (copies of) this context, so their sleeps end on cancel only.
    token = pausable.set(False)
    try:
        async for target in ch.input:
            _run_target(workers, target, fn(ctx, target), finish, one)
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

    The helper keeps checkpoints of the same state (:meth:`StepContext.keep_checkpoints`): if
    the job's server dies, a target in hand is resumed with the data ``fn`` had stored in
    ``twd.data`` at the last checkpoint. So ``fn`` should store there, as it goes, a point it
    can go on from (Sleep: its deadline), not only just before it pauses; a target whose
    ``twd.data`` is still None enters the step again from its start.
    """
    saved = [TargetWithData(t, data) for t, data in decode_targets_state(resume_state, version)]
    workers = _Workers()
    paused: list[TargetWithData] = []
    report = ch.output.put_nowait
    # the targets in hand, for the checkpoints (contest.checkpoint): their data is what a pause
    # would save for them now. A target with no data yet is left out: after a takeover it
    # enters the step again from its start (TargetInterrupted), rather than being resumed with
    # nothing to go on from (a function that stores its data only as it pauses)
    in_hand: dict[str, TargetWithData] = {}
    ctx.keep_checkpoints(
        version, lambda: [(t.target, t.data) for t in in_hand.values() if t.data is not None]
    )

    def start(twd: TargetWithData) -> None:
        in_hand[twd.target.id] = twd
        _run_target(workers, twd, fn(ctx, twd), finish, one)

    def finish(twd: TargetWithData, exc: BaseException | None) -> None:
        in_hand.pop(twd.target.id, None)
        if isinstance(exc, Paused):
            paused.append(twd)
        elif exc is None or isinstance(exc, Exception):  # Cancelled too: unless cancelled, fails
            if not ctx.is_cancelled():
                report(StepResult(twd.target, exc))
        elif not isinstance(exc, asyncio.CancelledError):
            raise exc

    async def one(twd: TargetWithData, awaitable: Awaitable[None]) -> None:
        try:
            try:
                await awaitable
            except asyncio.CancelledError:
                if ctx.is_cancelled():
                    return
                raise  # our own task is being cancelled: let it end
            except Exception as exc:
                finish(twd, exc)
                return
            finish(twd, None)
        finally:
            workers.done()

    _stop_reading_on_cancel(ctx, ch)
    for twd in saved:
        start(twd)
    async for target in ch.input:
        start(TargetWithData(target))
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
