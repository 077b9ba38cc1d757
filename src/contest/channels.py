"""The two channels between the runner and a step.

``StepInput`` is unbuffered, as ConTest's channels are: a hand-off completes only when the step
takes the target. The runner learns of the hand-off synchronously (``on_handoff``), at the very
instant the step takes the target, and records ``TargetIn`` there, before the step can emit
anything for that target.

``StepOutput.put`` routes a result straight to the runner (no reader task per step): the runner
checks it, records ``TargetOut``/``TargetErr`` and moves the target on once that is stored; it
never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from contest.target import Target

T = TypeVar("T")

_CLOSED: Any = object()
#: targets a step takes in a row, without waiting, before it lets the loop run other work
TAKES_PER_TURN = 256


@dataclass(slots=True)
class StepResult:
    """A step's verdict on one target: ``error`` None is a pass; an exception or text fails it."""

    target: Target | None
    error: BaseException | str | None = None


class StepInput(Generic[T]):
    """What a step reads targets from: ``async for target in ch.input``.

    Runner side: ``offer(item)`` hands an item over; the step gets ``unwrap(item)``. The item is
    the runner's per-target record, so the hand-off callback needs no lookup. ``put(item)`` is
    the same hand-off without a future: the caller learns of the take from the hand-off
    callback alone (the test runner, which drives targets by callbacks).
    """

    __slots__ = ("_closed", "_getters", "_on_handoff", "_putters", "_taken", "_unwrap")

    def __init__(
        self,
        on_handoff: Callable[[T], None],
        unwrap: Callable[[T], Target],
    ) -> None:
        self._on_handoff = on_handoff
        self._unwrap = unwrap
        self._getters: deque[asyncio.Future[Any]] = deque()
        # a hand-off waiting to be taken, with its future (None: made by ``put``)
        self._putters: deque[tuple[asyncio.Future[bool] | None, T]] = deque()
        self._closed = False
        self._taken = 0  # targets taken since the step last let the loop run

    # --- the step's side ----------------------------------------------------------------------

    def __aiter__(self) -> StepInput[T]:
        return self

    async def __anext__(self) -> Target:
        if self._putters:
            # Targets waiting to be taken are taken without a wait; a step taking thousands in
            # a row (a function that does not wait: Noop, Echo) would hold the loop that
            # also answers the API for the whole batch (issue 17's responsive server,
            # benchmarks/perf.py's server section): let it run every so many targets.
            self._taken += 1
            if self._taken >= TAKES_PER_TURN:
                self._taken = 0
                await asyncio.sleep(0)
        while self._putters:
            fut, item = self._putters.popleft()
            if fut is not None and fut.done():  # the runner gave up on this hand-off
                continue
            self._on_handoff(item)
            if fut is not None:
                fut.set_result(True)
            return self._unwrap(item)
        if self._closed:
            raise StopAsyncIteration
        self._taken = 0
        getter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._getters.append(getter)
        try:
            item = await getter
        except asyncio.CancelledError:
            if not getter.done() or getter.cancelled():
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
            raise
        if item is _CLOSED:
            raise StopAsyncIteration
        return self._unwrap(item)

    async def get(self) -> Target | None:
        """The next target, or None once the input is closed."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            return None

    @property
    def closed(self) -> bool:
        return self._closed

    # --- the runner's side --------------------------------------------------------------------

    def offer(self, item: T) -> asyncio.Future[bool] | None:
        """Hand ``item`` over. None: a waiting step took it now. Else a future that resolves
        True when the step takes it, or False if the runner aborts the hand-off."""
        if self._to_waiting_step(item):
            return None
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._putters.append((fut, item))
        return fut

    def put(self, item: T) -> bool:
        """Hand ``item`` over without a future. True: a waiting step took it now. False: it
        waits in line; ``on_handoff(item)`` says when the step takes it, and
        :meth:`abort_pending` gives it back if the hand-off is withdrawn first."""
        if self._to_waiting_step(item):
            return True
        self._putters.append((None, item))
        return False

    def _to_waiting_step(self, item: T) -> bool:
        """Give ``item`` to a step waiting in ``__anext__``, if there is one (True)."""
        while self._getters:
            getter = self._getters.popleft()
            if getter.done():
                continue
            self._on_handoff(item)
            getter.set_result(item)
            return True
        return False

    def abort_pending(self) -> list[T]:
        """Withdraw every hand-off still waiting (returned, in order); their futures resolve
        False."""
        aborted = []
        while self._putters:
            fut, item = self._putters.popleft()
            if fut is None:
                aborted.append(item)
            elif not fut.done():
                fut.set_result(False)
                aborted.append(item)
        return aborted

    def close(self) -> None:
        """No more targets: the step's iteration ends once it has taken what was handed over."""
        if self._closed:
            return
        self._closed = True
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(_CLOSED)


class StepOutput:
    """Where a step reports: ``await ch.output.put(StepResult(target, error))``.

    A report is taken at once: the runner checks it, records ``TargetOut``/``TargetErr`` and
    moves the target on once that event is stored. So ``put`` never waits, and
    :meth:`put_nowait` is the same report for code that is not a coroutine (the
    for-each-target helpers report this way without a task).
    """

    __slots__ = ("_on_close", "_route")

    def __init__(self, route: Callable[[StepResult], None], on_close: Callable[[], None]) -> None:
        self._route = route
        self._on_close = on_close

    async def put(self, result: StepResult) -> None:
        self._route(result)

    def put_nowait(self, result: StepResult) -> None:
        """Report ``result`` (the synchronous form of :meth:`put`)."""
        self._route(result)

    def close(self) -> None:
        """Steps must not close their output (ConTest's "api violation"); the runner records a
        step error if one does."""
        self._on_close()


@dataclass(slots=True)
class StepChannels:
    input: StepInput[Any]
    output: StepOutput
