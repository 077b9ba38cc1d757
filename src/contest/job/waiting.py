"""Waiting in line for targets other jobs hold, bounded by the test's acquire timeout.

ConTest fails an acquisition at once when a target is locked (``TargetAcquireErr``, then the
job "moves on" and may end ``JobStateCompleted`` having tested nothing). Here a job waits for
busy targets instead (docs/migrating-from-contest.md): the job runner hands the target manager a
:class:`QueueingLocker`, whose ``lock`` and ``lock_queued`` take a place in the locker's line
(:meth:`TargetLocker.lock_queued`) and return once the targets are granted. So a target manager
that locks its own targets (``TargetList``'s ``lock``, ``CSVFileTargetManager``'s
``lock_queued`` with its minimum and maximum), and the job runner's own lock after it, all wait
the same way, within one budget: the descriptor's ``TargetManagerAcquireTimeout``, which in
ConTest's job runner bounds the whole acquisition (``pkg/runner/job_runner.go``).

While waiting, :class:`TargetWait` records ``TargetsWaiting`` (again when the jobs in the way
change, at most once per poll) and, at the end, ``TargetsWaitEnded`` (see
:mod:`contest.targetwait`). A cancel leaves the line at once (``Cancelled``); a pause leaves it
too (``Paused``), and the job runner saves how much of the budget remains, so that a resumed job
waits only that long (tests/jobs/test_target_wait.py pins both).

A release wakes every waiter of the process (the locker cannot tell which one is next), and each
would ask the locker again: with 50 jobs waiting on a database locker, 50 transactions per
release, most of them for nothing. So the waiters of one process keep their own order
(:class:`_LocalLine`, per locker): a waiter for all of its targets that has an earlier one of
this process, also waiting for all of its own, wanting one of the same targets, is behind it in
the locker's line too and cannot be granted first; it asks again only when that one leaves the
line (granted, or gone) or to renew its place (a few times per ttl). And when a job of this
process unlocks targets, the job runner tells the line (:func:`released`), so the next waiter
goes at once even with a locker that does not wake anyone (the base class's fallback polls).
benchmarks/target_queue.py measures what the line costs per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from contest.errors import Cancelled, Paused
from contest.golang.time import format_duration
from contest.locking import (
    LockerError,
    QueuedLock,
    TargetLocker,
    TargetRef,
    check_request,
    target_id_of,
)
from contest.signals import Scope
from contest.targetwait import (
    TARGETS_WAIT_ENDED,
    TARGETS_WAITING,
    describe_holders,
    ended_payload,
    waiting_payload,
)

#: How often a waiting job asks again when the locker does not wake it (``--target-wait-poll``).
DEFAULT_WAIT_POLL = 1.0

#: Emits one wait event (name, payload) as a test event of the run; the job runner's.
Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


class TargetWaitTimeout(LockerError):
    """The targets were not granted within the acquire timeout; the message names each target
    and the job in its way."""


class _LocalLine:
    """The waiters of this process on one locker (and one event loop), in the order they took
    their place in its line. Only a wait for all of its targets holds back the later ones
    wanting one of them (a wait for ``need`` of its targets may be granted others)."""

    def __init__(self, key: tuple[int, int]) -> None:
        self.key = key
        self.waiters: list[TargetWait] = []

    @classmethod
    def of(cls, locker: TargetLocker) -> _LocalLine:
        key = (id(locker), id(asyncio.get_running_loop()))
        line = _LINES.get(key)
        if line is None:
            line = _LINES[key] = cls(key)
        return line

    def join(self, wait: TargetWait) -> None:
        if wait not in self.waiters:
            self.waiters.append(wait)

    def leave(self, wait: TargetWait, *, granted: bool) -> None:
        """``wait`` left the line: those now first for all they want ask again at once; or, if
        it was granted all it wanted, it holds what they want, and they wait for a release."""
        if wait in self.waiters:
            at = self.waiters.index(wait)
            del self.waiters[at]
            for later in self.waiters[at:]:
                if later.wants & wait.wants and not self.ahead(later):
                    # granted all it wanted, it holds what they want: they wait for its release
                    later.behind_holder = granted and wait.all_or_none
                    later.nudge.set()
        if not self.waiters and _LINES.get(self.key) is self:
            del _LINES[self.key]  # a line exists only while somebody waits in it

    def ahead(self, wait: TargetWait) -> bool:
        """Whether an earlier wait for all of its targets wants one of ``wait``'s (a wait for
        ``need`` of them is never held back: it may be granted others)."""
        if not wait.all_or_none:
            return False
        for other in self.waiters:
            if other is wait:
                return False
            if other.all_or_none and other.wants & wait.wants:
                return True
        return False

    def released(self, targets: frozenset[str]) -> None:
        """Targets were unlocked in this process: wake the first waiter for each."""
        for wait in self.waiters:
            if wait.wants & targets and not self.ahead(wait):
                wait.nudge.set()


def released(locker: TargetLocker, targets: Iterable[TargetRef]) -> None:
    """A job of this process unlocked ``targets``: its waiters for them ask the locker again
    at once, whether the locker wakes them or not (the base class's fallback only polls)."""
    line = _LINES.get((id(locker), id(asyncio.get_running_loop())))
    if line is not None:
        line.released(frozenset(target_id_of(t) for t in targets))


#: the lines with somebody in them, by (locker, event loop): a locker object may be shared by
#: loops of several threads, whose waiters cannot wake each other
_LINES: dict[tuple[int, int], _LocalLine] = {}


class TargetWait:
    """One acquisition's wait: its budget, its events, how it ended.

    ``deadline`` is on the monotonic clock; ``total`` is the whole acquire timeout (what the
    messages name, also after a resume with less left). ``outcome`` is set when the wait ends
    without the targets: ``"timeout"`` (``error`` says why), ``"cancelled"`` or ``"paused"``.
    """

    def __init__(
        self,
        locker: TargetLocker,
        *,
        scope: Scope,
        emit: Emit,
        deadline: float,
        total: float,
        poll: float = DEFAULT_WAIT_POLL,
    ) -> None:
        self.locker = locker
        self.scope = scope
        self.emit = emit
        self.deadline = deadline
        self.total = total
        self.poll = max(poll, 0.001)
        # a place in line lapses unless renewed within a few polls (a crashed waiter's place
        # frees itself); the renewals come every poll at most
        self.ttl = max(5 * self.poll, 2.0)
        self.waiting = False  # a TargetsWaiting without its TargetsWaitEnded yet
        self.outcome: str | None = None
        self.error: str | None = None
        self._job_id = 0
        self._started = 0.0
        self._blockers: dict[str, int] = {}
        self._wanted: list[str] = []
        self.wants: frozenset[str] = frozenset()  # the targets asked for (see _LocalLine)
        self.all_or_none = True
        self.nudge = asyncio.Event()  # an earlier waiter of this process left the line
        # or a job of this process released targets we want
        self.behind_holder = False  # the waiter before us was granted: it holds what we want
        self._line: _LocalLine | None = None  # while in this process's line

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    async def acquire(
        self,
        job_id: int,
        duration: float,
        targets: Iterable[TargetRef],
        *,
        need: int | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """Wait in line until the locker grants the targets (all, or ``need`` up to ``limit``);
        the IDs granted. Raises :class:`TargetWaitTimeout`, ``Cancelled`` or ``Paused``."""
        req = check_request("lock_queued", job_id, targets, duration=duration, limit=limit)
        self._job_id = job_id
        granted = False
        try:
            got = await self._acquire(job_id, duration, req.target_ids, need, limit)
            granted = True
            return got
        finally:
            if self._line is not None:
                self._line.leave(self, granted=granted)
                self._line = None

    async def _acquire(
        self,
        job_id: int,
        duration: float,
        ids: list[str],
        need: int | None,
        limit: int | None,
    ) -> list[str]:
        announced: dict[str, int] | None = None
        last_emit = 0.0
        try:
            while True:
                self.nudge.clear()
                self.behind_holder = False
                # behind an earlier waiter of this process, we ask again only to renew our
                # place, a few times per ttl (see _LocalLine)
                renew_at = time.monotonic() + self.ttl / 3
                got = await self.locker.lock_queued(
                    job_id, duration, ids, need=need, limit=limit, ttl=self.ttl
                )
                if got.granted:
                    if self.waiting:
                        await self._end(ended_payload(waited=time.monotonic() - self._started))
                    return got.acquired
                now = time.monotonic()
                self._blockers = dict(got.blockers)
                self._wanted = [t for t in ids if t in got.blockers] or ids
                if not self.waiting:
                    self.waiting, self._started = True, now
                    self.wants, self.all_or_none = frozenset(ids), need is None
                    self._line = _LocalLine.of(self.locker)
                    self._line.join(self)
                if announced != self._blockers and now - last_emit >= self.poll:
                    announced, last_emit = self._blockers, now
                    await self.emit(
                        TARGETS_WAITING, waiting_payload(self._wanted, self._blockers, self.total)
                    )
                left = self.deadline - now
                if left <= 0:
                    await self.timed_out()
                    raise TargetWaitTimeout(self.error or "")
                await self._sleep(min(self.poll, left), min(renew_at, self.deadline))
        except (Cancelled, Paused) as exc:
            await self._interrupted(exc)
            raise
        except asyncio.CancelledError:
            # the acquisition's own timeout cut the call: leave the line all the same
            with contextlib.suppress(Exception):
                await asyncio.shield(self.locker.leave_queue(job_id))
            raise

    async def _sleep(self, seconds: float, renew_at: float) -> None:
        """Until the locker sees a release, ``seconds`` pass, or the job is paused or
        cancelled (raised as ``Paused``/``Cancelled``, cancel first). Behind an earlier waiter
        of this process: until it leaves the line, or ``renew_at``, when our place in the
        locker's line must be renewed."""
        self.scope.check()
        while self._line is not None and self._line.ahead(self) and not self.nudge.is_set():
            left = renew_at - time.monotonic()
            if left <= 0:
                return
            await self._interruptible(self._nudged(left))
        if self.nudge.is_set() and not self.behind_holder:
            return
        if self.behind_holder:
            self.nudge.clear()
            # the one before us now holds what we want: no release before its own can let us
            # in, and asking the locker now would only say it holds them. A locker may wake us
            # at once for what was released while we stood behind it (it keeps what each waiter
            # saw): that wake-up is spent here, and we wait for the next one
            await self.locker.wait_for_release(0)
        await self._interruptible(self.locker.wait_for_release(seconds), self.nudge)

    async def _nudged(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.nudge.wait()

    async def _interruptible(
        self, waiting: Awaitable[None], nudge: asyncio.Event | None = None
    ) -> None:
        """Await ``waiting`` in this task unless the job is paused or cancelled first (then
        ``Paused``/``Cancelled``), or ``nudge`` is set (then return)."""
        # the locker's wait runs in this task, the one that called lock_queued: a locker
        # remembers per task what it has seen of the line, so that a release between our look
        # and our wait is not lost (contest.plugins.targetlockers' ReleaseSignal); pause and
        # cancel interrupt it from watchers
        me = asyncio.current_task()
        assert me is not None
        interrupted = False

        def interrupt() -> None:
            nonlocal interrupted
            if not interrupted:
                interrupted = True
                me.cancel()

        watchers: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self.scope.cancel.wait()),
            asyncio.ensure_future(self.scope.pause.wait()),
        ]
        if nudge is not None:
            watchers.append(asyncio.ensure_future(nudge.wait()))
        for w in watchers:
            w.add_done_callback(lambda f: None if f.cancelled() else interrupt())
        try:
            await waiting
        except asyncio.CancelledError:
            if not interrupted:
                raise
            me.uncancel()
            if me.cancelling():  # cancelled from outside as well
                raise
        finally:
            interrupted = True  # from here on, a watcher firing interrupts nothing
            for w in watchers:
                w.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        self.scope.check()

    def message(self) -> str:
        """``could not acquire targets within 5m0s: dut1 held by job 3, dut2 held by job 3``."""
        held = [(t, self._blockers.get(t)) for t in self._wanted]
        names = ", ".join(t if j is None else f"{t} held by job {j}" for t, j in held)
        return f"could not acquire targets within {format_duration(self.total)}: {names}"

    def text(self) -> str:
        """What the job waits for now: ``dut1, dut2 (held by job 3)``."""
        return describe_holders([(t, self._blockers.get(t)) for t in self._wanted], joiner=", ")

    async def timed_out(self) -> None:
        """The budget is spent: leave the line, record the end (once)."""
        if self.outcome is not None:
            return
        self.outcome, self.error = "timeout", self.message()
        await self._leave()
        if self.waiting:
            await self._end(ended_payload(error=self.error))

    async def _interrupted(self, exc: BaseException) -> None:
        if self.outcome is not None:
            return
        paused = isinstance(exc, Paused)
        self.outcome = "paused" if paused else "cancelled"
        await self._leave()
        if self.waiting:
            what = "paused" if paused else "cancelled"
            await self._end(ended_payload(error=f"{what} while waiting for {self.text()}"))

    async def _leave(self) -> None:
        if self._job_id:
            await self.locker.leave_queue(self._job_id)

    async def _end(self, payload: dict[str, Any]) -> None:
        self.waiting = False
        await self.emit(TARGETS_WAIT_ENDED, payload)


class QueueingLocker(TargetLocker):
    """The locker a target manager is given during acquisition: ``lock`` and ``lock_queued``
    wait in line (through :class:`TargetWait`) instead of failing on a busy target; the other
    calls go straight to the job's locker. Closing it closes nothing (the locker is the
    server's)."""

    def __init__(self, locker: TargetLocker, wait: TargetWait) -> None:
        self.locker = locker
        self.wait = wait

    async def lock(self, job_id: int, duration: float, targets: Iterable[TargetRef]) -> None:
        await self.wait.acquire(job_id, duration, targets)

    async def lock_queued(
        self,
        job_id: int,
        duration: float,
        targets: Iterable[TargetRef],
        *,
        need: int | None = None,
        limit: int | None = None,
        ttl: float = 30.0,
    ) -> QueuedLock:
        got = await self.wait.acquire(job_id, duration, targets, need=need, limit=limit)
        return QueuedLock(True, got, {})

    async def try_lock(
        self, job_id: int, duration: float, targets: Iterable[TargetRef], limit: int
    ) -> list[str]:
        return await self.locker.try_lock(job_id, duration, targets, limit)

    async def unlock(self, job_id: int, targets: Iterable[TargetRef]) -> None:
        await self.locker.unlock(job_id, targets)

    async def refresh_locks(
        self, job_id: int, duration: float, targets: Iterable[TargetRef]
    ) -> None:
        await self.locker.refresh_locks(job_id, duration, targets)

    async def leave_queue(self, job_id: int) -> None:
        await self.locker.leave_queue(job_id)

    async def wait_for_release(self, timeout: float) -> None:
        await self.locker.wait_for_release(timeout)

    async def close(self) -> None:
        return None


__all__ = [
    "DEFAULT_WAIT_POLL",
    "QueueingLocker",
    "TargetWait",
    "TargetWaitTimeout",
    "released",
]
