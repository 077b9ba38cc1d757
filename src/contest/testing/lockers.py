"""The target-locker conformance suite: every behaviour a :class:`TargetLocker` must show.

The cases are ConTest's own locker tests
(``tests/plugins/targetlocker/targetlocker_common_test.go``, numbered 1-35) plus the rules it leaves
implicit (error types, lease boundary, take-over, ordering, duplicates) and races between concurrent
callers. They are plain coroutines, so a third-party locker runs them with any test framework; with
pytest::

    import pytest
    from contest.testing.lockers import CASES, SingleLockerBackend

    backend = SingleLockerBackend(lambda clock: MyLocker(clock=clock))

    @pytest.mark.parametrize("case", CASES, ids=str)
    async def test_my_locker(case):
        await case.run(backend)

The line for busy targets (``lock_queued``, ``leave_queue``, ``wait_for_release``) has its own
cases: :data:`QUEUE_CASES` for a locker with a line (first come first served across 3+ jobs,
all-or-none, need/limit, places lapsing after ttl, leave_queue, blockers, no starvation of a job
needing two targets, re-locking, waking waiters, racing lockers), :data:`QUEUE_BASIC_CASES` for
the part that the base class's fallback (no line, polling) honours too.

A locker that keeps its state outside the process (a database, a lock service) should implement
:class:`LockerBackend` so that :meth:`LockerBackend.open` hands out *separate* lockers on the
same store: the race cases then pit separate clients against each other, as separate servers
would be.

Time is a :class:`FakeClock` the backend passes to its lockers: it starts at 01:00 on
1970-01-01 (ConTest's mock clock), and cases move it forward, so expiry is tested without
sleeping. Leases are ConTest's: 2 minutes ("short") and 5 minutes ("default").
"""

from __future__ import annotations

import abc
import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from contest.locking import InvalidLockRequest, LockConflict, TargetLocker
from contest.target import Target

T = TypeVar("T")

J1, J2, J3 = 1, 2, 3
SHORT = 120.0
DEFAULT = 300.0
T1, T2, T3, T4 = "001", "002", "003", "004"
ONE = [T1]
SECOND = [T2]
TWO = [T1, T2]
ALL = [T1, T2, T3, T4]


class FakeClock:
    """A clock that moves only when told: call it for the time, :meth:`advance` to move it."""

    def __init__(self, start: float = 3600.0) -> None:
        self._now = start

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += seconds


class ConformanceFailure(AssertionError):
    """A locker broke the contract; the message says which call and what was expected."""


class LockerBackend(abc.ABC):
    """How the suite gets lockers. Per case it calls :meth:`start`, then :meth:`open` one or
    more times, closes every locker it got, then calls :meth:`stop`."""

    @abc.abstractmethod
    async def start(self, clock: FakeClock) -> None:
        """Prepare an empty lock store whose lockers will read time from ``clock``."""

    @abc.abstractmethod
    async def open(self) -> TargetLocker:
        """A locker on the store prepared by :meth:`start`.

        Every locker returned during one case must see the same locks. Returning the same
        instance each time is allowed (the suite closes each distinct instance once).
        """

    async def stop(self) -> None:
        """Release what :meth:`start` prepared (default: nothing)."""


class SingleLockerBackend(LockerBackend):
    """For lockers whose state lives in the locker object: one new instance per case."""

    def __init__(self, make: Callable[[FakeClock], TargetLocker | Awaitable[TargetLocker]]) -> None:
        self._make = make
        self._locker: TargetLocker | None = None
        self._clock: FakeClock | None = None

    async def start(self, clock: FakeClock) -> None:
        self._clock = clock
        self._locker = None

    async def open(self) -> TargetLocker:
        if self._locker is None:
            if self._clock is None:
                raise RuntimeError("start() was not called")
            made = self._make(self._clock)
            self._locker = await made if inspect.isawaitable(made) else made
        return self._locker


@dataclass
class CaseContext:
    """What a case body gets: the first locker, the clock, and more lockers on demand."""

    locker: TargetLocker
    clock: FakeClock
    backend: LockerBackend
    opened: list[TargetLocker] = field(default_factory=list)

    async def peer(self) -> TargetLocker:
        """Another locker on the same store (a second server, for a DB-backed locker)."""
        locker = await self.backend.open()
        if all(locker is not o for o in self.opened):
            self.opened.append(locker)
        return locker


CaseBody = Callable[[CaseContext], Awaitable[None]]


@dataclass(frozen=True)
class ConformanceCase:
    """One scenario: ``catalog`` lists the numbers of ConTest's cases it covers (empty: ours)."""

    name: str
    body: CaseBody
    catalog: tuple[int, ...] = ()
    doc: str = ""

    def __str__(self) -> str:
        return self.name

    async def run(self, backend: LockerBackend, clock: FakeClock | None = None) -> None:
        """Run on a fresh store; raise :class:`ConformanceFailure` if the locker misbehaves."""
        clock = clock or FakeClock()
        await backend.start(clock)
        try:
            first = await backend.open()
            ctx = CaseContext(first, clock, backend, [first])
            try:
                await self.body(ctx)
            finally:
                for locker in ctx.opened:
                    await locker.close()
        finally:
            await backend.stop()


# --- checks ------------------------------------------------------------------------------------


async def ok(call: Awaitable[T], what: str) -> T:
    """``call`` must succeed."""
    try:
        return await call
    except Exception as e:
        raise ConformanceFailure(f"{what}: expected success, got {type(e).__name__}: {e}") from e


E = TypeVar("E", bound=BaseException)


async def raises(call: Awaitable[Any], what: str, kind: type[E]) -> E:
    """``call`` must raise ``kind``."""
    try:
        result = await call
    except kind as e:
        return e
    except Exception as e:
        raise ConformanceFailure(
            f"{what}: expected {kind.__name__}, got {type(e).__name__}: {e}"
        ) from e
    raise ConformanceFailure(f"{what}: expected {kind.__name__}, but it succeeded ({result!r})")


async def conflict(call: Awaitable[Any], what: str) -> LockConflict:
    """``call`` must be refused with :class:`LockConflict`."""
    return await raises(call, what, LockConflict)


async def rejected(call: Awaitable[Any], what: str) -> InvalidLockRequest:
    """``call`` must be refused with :class:`InvalidLockRequest`."""
    return await raises(call, what, InvalidLockRequest)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceFailure(message)


def same_set(got: Sequence[str], want: Iterable[str], what: str) -> None:
    want = list(want)
    if sorted(got) != sorted(want) or len(set(got)) != len(got):
        raise ConformanceFailure(f"{what}: expected {sorted(want)} (any order), got {list(got)}")


async def free(locker: TargetLocker, targets: Sequence[str], what: str) -> None:
    """Every target is free: a bystander job can lock them (and then lets them go again)."""
    await ok(locker.lock(99, DEFAULT, targets), f"{what}: {targets} should be free")
    await ok(locker.unlock(99, targets), f"{what}: bystander unlock")


async def taken(locker: TargetLocker, targets: Sequence[str], what: str) -> None:
    """Every target is held: a bystander job can lock none of them."""
    for t in targets:
        await conflict(locker.lock(99, DEFAULT, [t]), f"{what}: {t} should be locked")


# --- the cases ---------------------------------------------------------------------------------

CASES_LIST: list[ConformanceCase] = []


def case(*catalog: int) -> Callable[[CaseBody], CaseBody]:
    """Register a case body under its function name, with its catalog numbers."""

    def register(body: CaseBody) -> CaseBody:
        doc = (body.__doc__ or "").strip()
        CASES_LIST.append(ConformanceCase(body.__name__, body, tuple(catalog), doc))
        return body

    return register


# Lock: arguments


@case(1)
async def lock_job_zero_no_targets(c: CaseContext) -> None:
    """Job 0 is rejected even when there is nothing to lock."""
    await rejected(c.locker.lock(0, DEFAULT, []), "lock(job 0, [])")
    await rejected(c.locker.lock(0, DEFAULT, ()), "lock(job 0, ())")


@case(2)
async def lock_no_targets(c: CaseContext) -> None:
    """An empty list with a valid job is a successful no-op."""
    await ok(c.locker.lock(J1, DEFAULT, []), "lock(job 1, [])")
    await ok(c.locker.lock(J1, DEFAULT, ()), "lock(job 1, ())")


@case(3)
async def lock_job_zero_one_target(c: CaseContext) -> None:
    await rejected(c.locker.lock(0, DEFAULT, ONE), "lock(job 0, [001])")
    await free(c.locker, ONE, "after the rejected lock")


@case(4)
async def lock_empty_target_id(c: CaseContext) -> None:
    await rejected(c.locker.lock(J1, DEFAULT, [""]), "lock(job 1, [''])")
    await rejected(c.locker.lock(J1, DEFAULT, [T1, ""]), "lock(job 1, [001, ''])")
    await free(c.locker, ONE, "after the rejected lock")


@case()
async def bad_arguments_rejected(c: CaseContext) -> None:
    """Negative job IDs, durations and limits are rejected by every call, before any change."""
    lk = c.locker
    await rejected(lk.lock(-1, DEFAULT, ONE), "lock(job -1)")
    await rejected(lk.lock(J1, -1.0, ONE), "lock(duration -1)")
    await rejected(lk.try_lock(0, DEFAULT, ONE, 1), "try_lock(job 0)")
    await rejected(lk.try_lock(0, DEFAULT, [], 1), "try_lock(job 0, [])")
    await rejected(lk.try_lock(J1, DEFAULT, [""], 1), "try_lock([''])")
    await rejected(lk.try_lock(J1, DEFAULT, ONE, -1), "try_lock(limit -1)")
    await rejected(lk.unlock(J1, [""]), "unlock([''])")
    await rejected(lk.refresh_locks(0, DEFAULT, []), "refresh_locks(job 0, [])")
    await rejected(lk.refresh_locks(0, DEFAULT, ONE), "refresh_locks(job 0)")
    await rejected(lk.refresh_locks(J1, DEFAULT, [""]), "refresh_locks([''])")
    await free(lk, ALL, "after rejected calls")


# Lock: behaviour


@case(5)
async def lock_one_and_two(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001])")
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock(job 1, [001, 002])")
    await taken(c.locker, TWO, "after job 1 locked them")


@case(6)
async def lock_reentrant(c: CaseContext) -> None:
    """Locking what the job already holds succeeds (and extends it)."""
    await ok(c.locker.lock(J1, DEFAULT, ALL), "lock(job 1, all)")
    await ok(c.locker.lock(J1, DEFAULT, ONE), "re-lock(job 1, [001])")
    await ok(c.locker.lock(J1, DEFAULT, ALL), "re-lock(job 1, all)")


@case(7)
async def lock_held_by_other_job(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, ALL), "lock(job 1, all)")
    for subset in (ONE, TWO, ALL, [T4]):
        err = await conflict(c.locker.lock(J2, DEFAULT, subset), f"lock(job 2, {subset})")
        expect(
            err.conflicts == dict.fromkeys(subset, J1),
            f"lock(job 2, {subset}): conflicts should name every target and owner job 1, "
            f"got {err.conflicts}",
        )
        for t in subset:
            expect(t in str(err), f"the error message should name target {t}: {err}")
        expect(str(J1) in str(err), f"the error message should name owner job 1: {err}")


@case(35)
async def lock_all_or_nothing(c: CaseContext) -> None:
    """A failed lock changes nothing: the free targets of the request stay free."""
    await ok(c.locker.lock(J1, DEFAULT, SECOND), "lock(job 1, [002])")
    await conflict(c.locker.lock(J2, DEFAULT, TWO), "lock(job 2, [001, 002])")
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001]) after job 2's failed lock")
    await conflict(c.locker.lock(J2, DEFAULT, [T3, T2, T4]), "lock(job 2, [003, 002, 004])")
    await free(c.locker, [T3, T4], "after job 2's failed lock")


@case()
async def lock_extends_lease(c: CaseContext) -> None:
    """Re-locking restarts the lease from now."""
    await ok(c.locker.lock(J1, SHORT, ONE), "lock(job 1, 2m)")
    c.clock.advance(100)
    await ok(c.locker.lock(J1, SHORT, ONE), "re-lock(job 1, 2m) at +100s")
    c.clock.advance(100)  # past the first lease, within the second
    await taken(c.locker, ONE, "at +200s, the re-lock's lease runs to +220s")


@case()
async def lease_boundary(c: CaseContext) -> None:
    """A lease holds up to and including its end; another job may take it just after."""
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock(job 1, 5m)")
    c.clock.advance(DEFAULT)
    await taken(c.locker, TWO, "exactly at the end of the lease")
    c.clock.advance(0.001)
    await ok(c.locker.lock(J2, DEFAULT, TWO), "lock(job 2) 1ms after job 1's lease ended")


@case()
async def expired_lease_taken_over(c: CaseContext) -> None:
    """Once another job took over an expired lease, the old owner has lost it for good."""
    await ok(c.locker.lock(J1, SHORT, TWO), "lock(job 1, 2m)")
    c.clock.advance(DEFAULT)
    await ok(c.locker.lock(J2, DEFAULT, ONE), "lock(job 2, [001]) over an expired lease")
    err = await conflict(c.locker.refresh_locks(J1, DEFAULT, TWO), "refresh(job 1) after take-over")
    expect(err.conflicts == {T1: J2}, f"conflicts should be {{001: 2}}, got {err.conflicts}")
    await conflict(c.locker.unlock(J1, TWO), "unlock(job 1) after take-over")
    await conflict(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001]) now held by job 2")
    await ok(c.locker.unlock(J1, SECOND), "unlock(job 1, [002]): its own expired lease")
    await ok(c.locker.unlock(J2, ONE), "unlock(job 2, [001])")


@case()
async def targets_given_as_objects_and_duplicates(c: CaseContext) -> None:
    """Targets may be Target objects; a target named twice counts once."""
    await ok(c.locker.lock(J1, DEFAULT, [Target(T1), Target(T2)]), "lock(Target objects)")
    await ok(c.locker.lock(J1, DEFAULT, [T1, T1, T2]), "lock([001, 001, 002])")
    got = await ok(c.locker.try_lock(J1, DEFAULT, [T1, T1, T3, T3], 2), "try_lock(duplicates, 2)")
    expect(got == [T1, T3], f"try_lock([001, 001, 003, 003], limit 2) should be [001, 003]: {got}")
    await ok(c.locker.refresh_locks(J1, DEFAULT, [Target(T3), T3, T1]), "refresh(duplicates)")
    await ok(c.locker.unlock(J1, [T1, T1, Target(T2), T3]), "unlock(duplicates)")
    await free(c.locker, [T1, T2, T3], "after unlocking")


# TryLock


@case(8)
async def try_lock_one(c: CaseContext) -> None:
    got = await ok(c.locker.try_lock(J1, DEFAULT, ONE, 1), "try_lock([001], 1)")
    expect(got == [T1], f"try_lock([001], 1) should return [001], got {got}")
    await taken(c.locker, ONE, "after try_lock")


@case(9)
async def try_lock_two(c: CaseContext) -> None:
    got = await ok(c.locker.try_lock(J1, DEFAULT, TWO, 2), "try_lock([001, 002], 2)")
    same_set(got, TWO, "try_lock([001, 002], 2)")


@case(10)
async def try_lock_some(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock(job 1, [001, 002])")
    got = await ok(c.locker.try_lock(J2, DEFAULT, ALL, 4), "try_lock(job 2, all, 4)")
    same_set(got, [T3, T4], "try_lock(job 2, all, 4) with 001, 002 held by job 1")


@case(11)
async def try_lock_same_job(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock(job 1, [001, 002])")
    got = await ok(c.locker.try_lock(J1, DEFAULT, ALL, 4), "try_lock(job 1, all, 4)")
    same_set(got, ALL, "try_lock(job 1, all, 4) when job 1 holds 001, 002")


@case(12)
async def try_lock_limit_zero(c: CaseContext) -> None:
    got = await ok(c.locker.try_lock(J1, DEFAULT, TWO, 0), "try_lock(limit 0)")
    expect(list(got) == [], f"try_lock with limit 0 should return [], got {got}")
    await free(c.locker, TWO, "after try_lock(limit 0)")


@case(13)
async def try_lock_limit_above_count(c: CaseContext) -> None:
    got = await ok(c.locker.try_lock(J1, DEFAULT, TWO, 100), "try_lock([001, 002], 100)")
    same_set(got, TWO, "try_lock([001, 002], 100)")


@case(14)
async def try_lock_limit_in_input_order(c: CaseContext) -> None:
    got = await ok(c.locker.try_lock(J1, DEFAULT, TWO, 1), "try_lock([001, 002], 1)")
    expect(got == [T1], f"try_lock([001, 002], 1) should lock the first, 001: got {got}")
    await free(c.locker, SECOND, "002, beyond the limit")


@case(15)
async def try_lock_one_of_two(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001])")
    got = await ok(c.locker.try_lock(J2, DEFAULT, TWO, 2), "try_lock(job 2, [001, 002], 2)")
    expect(list(got) == [T2], f"job 2 should get only 002, got {got}")


@case(16)
async def try_lock_none_of_two(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock(job 1, [001, 002])")
    got = await ok(c.locker.try_lock(J2, DEFAULT, TWO, 2), "try_lock(job 2, [001, 002], 2)")
    expect(list(got) == [], f"job 2 should get nothing, got {got}")
    await ok(c.locker.unlock(J1, TWO), "job 1 still owns both")


@case()
async def try_lock_result_in_input_order(c: CaseContext) -> None:
    order = [T4, T2, T3, T1]
    got = await ok(c.locker.try_lock(J1, DEFAULT, order, 4), "try_lock([004, 002, 003, 001])")
    expect(got == order, f"try_lock should return the targets in input order {order}: {got}")


@case()
async def try_lock_limit_counts_own_and_skips_conflicts(c: CaseContext) -> None:
    """Own locks count toward the limit; conflicts do not, the walk goes on past them."""
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001])")
    got = await ok(c.locker.try_lock(J1, DEFAULT, ALL, 2), "try_lock(job 1, all, 2)")
    expect(got == [T1, T2], f"job 1 holding 001, try_lock(all, 2) should be [001, 002]: {got}")
    await free(c.locker, [T3, T4], "targets beyond the limit")
    got = await ok(c.locker.try_lock(J2, DEFAULT, ALL, 1), "try_lock(job 2, all, 1)")
    expect(got == [T3], f"job 2 should skip 001, 002 (job 1's) and take 003: {got}")


@case()
async def try_lock_takes_over_expired_and_extends_own(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, SHORT, TWO), "lock(job 1, [001, 002], 2m)")
    await ok(c.locker.lock(J2, SHORT, [T3]), "lock(job 2, [003], 2m)")
    c.clock.advance(100)
    got = await ok(c.locker.try_lock(J2, SHORT, [T3], 1), "try_lock(job 2, [003]) at +100s")
    expect(got == [T3], f"job 2 should keep its own 003: {got}")
    c.clock.advance(100)  # job 1's leases have run out; job 2's was extended to +220s
    got = await ok(c.locker.try_lock(J3, DEFAULT, ALL, 4), "try_lock(job 3, all) at +200s")
    expect(got == [T1, T2, T4], f"job 3 should take over 001, 002 and take 004: {got}")
    await conflict(c.locker.unlock(J1, ONE), "unlock(job 1) after job 3 took over")


@case()
async def try_lock_leaves_conflicts_untouched(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, SHORT, TWO), "lock(job 1, 2m)")
    await ok(c.locker.try_lock(J2, DEFAULT, ALL, 4), "try_lock(job 2, all)")
    c.clock.advance(SHORT + 1)
    await ok(c.locker.lock(J3, DEFAULT, TWO), "job 1's leases expire on time (job 2 got none)")


# Unlock


@case(17)
async def unlock_job_zero_no_targets(c: CaseContext) -> None:
    await rejected(c.locker.unlock(0, []), "unlock(job 0, [])")
    await rejected(c.locker.unlock(0, ()), "unlock(job 0, ())")


@case(18)
async def unlock_no_targets(c: CaseContext) -> None:
    await ok(c.locker.unlock(J1, []), "unlock(job 1, [])")
    await ok(c.locker.unlock(J1, ()), "unlock(job 1, ())")


@case(19)
async def unlock_job_zero_one_target(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001])")
    await rejected(c.locker.unlock(0, ONE), "unlock(job 0, [001])")
    await taken(c.locker, ONE, "after the rejected unlock")


@case(20)
async def unlock_never_locked(c: CaseContext) -> None:
    err = await conflict(c.locker.unlock(J1, ONE), "unlock(job 1, [001]) never locked")
    expect(err.missing == [T1], f"missing should be [001], got {err.missing}")
    await conflict(c.locker.unlock(J1, TWO), "unlock(job 1, [001, 002]) never locked")


@case(21)
async def unlock_twice(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock")
    await ok(c.locker.unlock(J1, ONE), "first unlock")
    await conflict(c.locker.unlock(J1, ONE), "second unlock")


@case(22)
async def unlock_unlocked_any_job(c: CaseContext) -> None:
    await conflict(c.locker.unlock(J1, TWO), "unlock(job 1) of free targets")
    await conflict(c.locker.unlock(J2, TWO), "unlock(job 2) of free targets")


@case(23)
async def unlock_then_other_job_locks(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock(job 1)")
    await conflict(c.locker.lock(J2, DEFAULT, TWO), "lock(job 2) while job 1 holds them")
    await ok(c.locker.unlock(J1, TWO), "unlock(job 1)")
    await ok(c.locker.lock(J2, DEFAULT, TWO), "lock(job 2) after job 1 unlocked")


@case(24)
async def unlock_all_or_nothing(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock(job 1, [001, 002])")
    await ok(c.locker.unlock(J1, SECOND), "unlock(job 1, [002])")
    await conflict(c.locker.lock(J2, DEFAULT, ONE), "lock(job 2, [001]) still job 1's")
    await ok(c.locker.lock(J2, DEFAULT, SECOND), "lock(job 2, [002]) now free")
    err = await conflict(c.locker.unlock(J1, TWO), "unlock(job 1, [001, 002]) with 002 job 2's")
    expect(err.conflicts == {T2: J2}, f"conflicts should be {{002: 2}}, got {err.conflicts}")
    await conflict(c.locker.lock(J2, DEFAULT, ONE), "001 must still be job 1's")


@case(25)
async def unlock_by_other_job(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock(job 1)")
    await conflict(c.locker.unlock(J2, TWO), "unlock(job 2) of job 1's targets")
    await conflict(c.locker.lock(J2, DEFAULT, TWO), "targets remain job 1's")
    await ok(c.locker.lock(J1, DEFAULT, TWO), "job 1 re-locks")


@case()
async def unlock_own_expired(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, SHORT, TWO), "lock(job 1, 2m)")
    c.clock.advance(DEFAULT)
    await ok(c.locker.unlock(J1, TWO), "unlock(job 1) of its expired leases")
    await conflict(c.locker.unlock(J1, TWO), "unlock again")


# RefreshLocks


@case(26)
async def refresh_no_targets(c: CaseContext) -> None:
    await ok(c.locker.refresh_locks(J1, DEFAULT, []), "refresh_locks(job 1, [])")
    await ok(c.locker.refresh_locks(J1, DEFAULT, ()), "refresh_locks(job 1, ())")


@case(27)
async def refresh_never_locked(c: CaseContext) -> None:
    err = await conflict(c.locker.refresh_locks(J1, DEFAULT, TWO), "refresh of unlocked targets")
    expect(err.missing == TWO, f"missing should be [001, 002], got {err.missing}")
    await ok(c.locker.lock(J2, DEFAULT, TWO), "they stay free: lock(job 2)")


@case(28)
async def refresh_own_expired(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, SHORT, TWO), "lock(job 1, 2m)")
    c.clock.advance(DEFAULT)
    await ok(c.locker.refresh_locks(J1, DEFAULT, TWO), "refresh(job 1) of its expired leases")
    await conflict(c.locker.lock(J2, DEFAULT, ONE), "lock(job 2, [001]) after refresh")
    await conflict(c.locker.lock(J2, DEFAULT, SECOND), "lock(job 2, [002]) after refresh")


@case(29)
async def refresh_other_expired(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, SHORT, TWO), "lock(job 1, 2m)")
    c.clock.advance(DEFAULT)
    err = await conflict(c.locker.refresh_locks(J2, DEFAULT, TWO), "refresh(job 2) of job 1's")
    expect(err.conflicts == dict.fromkeys(TWO, J1), f"conflicts should name job 1: {err}")
    await ok(c.locker.lock(J2, DEFAULT, TWO), "lock(job 2) takes over the expired leases")


@case(30)
async def refresh_twice(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock")
    await ok(c.locker.refresh_locks(J1, DEFAULT, TWO), "first refresh")
    await ok(c.locker.refresh_locks(J1, DEFAULT, TWO), "second refresh")
    await taken(c.locker, TWO, "after two refreshes")


@case(31)
async def refresh_subsets(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock")
    await ok(c.locker.refresh_locks(J1, DEFAULT, ONE), "refresh one")
    await ok(c.locker.refresh_locks(J1, DEFAULT, TWO), "then both")
    await ok(c.locker.refresh_locks(J1, DEFAULT, TWO), "both")
    await ok(c.locker.refresh_locks(J1, DEFAULT, ONE), "then one")
    await taken(c.locker, TWO, "after the refreshes")


@case(32)
async def refresh_after_partial_unlock(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock")
    await ok(c.locker.unlock(J1, ONE), "unlock [001]")
    err = await conflict(c.locker.refresh_locks(J1, DEFAULT, TWO), "refresh both")
    expect(err.missing == [T1], f"missing should be [001], got {err.missing}")
    await ok(c.locker.lock(J2, DEFAULT, ONE), "001 is free")
    await conflict(c.locker.lock(J2, DEFAULT, SECOND), "002 still job 1's")


@case(33)
async def refresh_mixed_owners(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001])")
    await ok(c.locker.lock(J2, SHORT, SECOND), "lock(job 2, [002])")
    err = await conflict(c.locker.refresh_locks(J1, DEFAULT, TWO), "refresh(job 1, both)")
    expect(err.conflicts == {T2: J2}, f"conflicts should be {{002: 2}}, got {err.conflicts}")


@case(34)
async def refresh_extends(c: CaseContext) -> None:
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock(5m)")
    c.clock.advance(SHORT)
    await ok(c.locker.refresh_locks(J1, DEFAULT, TWO), "refresh(5m) at +2m")
    c.clock.advance(DEFAULT - 1e-6)
    await taken(c.locker, TWO, "just before the refreshed lease ends")


@case()
async def refresh_failure_changes_nothing(c: CaseContext) -> None:
    """A failed refresh extends none of the targets, not even the job's own."""
    await ok(c.locker.lock(J1, SHORT, ONE), "lock(job 1, [001], 2m)")
    await conflict(c.locker.refresh_locks(J1, DEFAULT, [T1, T2]), "refresh with 002 unlocked")
    c.clock.advance(SHORT + 1)
    await ok(c.locker.lock(J2, DEFAULT, ONE), "001's lease was not extended")


# Races


async def _outcome(call: Awaitable[Any]) -> BaseException | None:
    try:
        await call
    except Exception as e:
        return e
    return None


@case()
async def race_overlapping_lock(c: CaseContext) -> None:
    """Two jobs lock overlapping sets at once, through separate lockers: never both win."""
    a, b, third = c.locker, await c.peer(), await c.peer()
    for r in range(8):
        shared = f"r{r}-shared"
        set1 = [f"r{r}-a1", shared, f"r{r}-a2"]
        set2 = [f"r{r}-b1", f"r{r}-b2", shared]
        e1, e2 = await asyncio.gather(
            _outcome(a.lock(J1, DEFAULT, set1)), _outcome(b.lock(J2, DEFAULT, set2))
        )
        for e in (e1, e2):
            if e is not None and not isinstance(e, LockConflict):
                raise ConformanceFailure(f"round {r}: a racing lock raised {e!r}")
        expect(not (e1 is None and e2 is None), f"round {r}: both jobs locked {shared}")
        expect(e1 is None or e2 is None, f"round {r}: neither job got its targets")
        loser = set2 if e1 is None else set1
        got = await ok(third.try_lock(J3, DEFAULT, set1 + set2, 10), "bystander try_lock")
        same_set(got, [t for t in loser if t != shared], f"round {r}: free after the race")


@case()
async def race_same_target_many_jobs(c: CaseContext) -> None:
    """Six jobs lock one target at once: exactly one gets it."""
    lockers = [c.locker, await c.peer(), await c.peer()]
    for r in range(4):
        target = [f"hot-{r}"]
        outcomes = await asyncio.gather(
            *(_outcome(lockers[j % 3].lock(j, DEFAULT, target)) for j in range(1, 7))
        )
        winners = [j for j, e in zip(range(1, 7), outcomes, strict=True) if e is None]
        expect(len(winners) == 1, f"round {r}: exactly one job should win, got {winners}")
        bad = [e for e in outcomes if e is not None and not isinstance(e, LockConflict)]
        expect(not bad, f"round {r}: losers should get LockConflict, got {bad}")


@case()
async def race_try_lock(c: CaseContext) -> None:
    """Jobs try-lock the same targets at once: each target goes to exactly one job."""
    lockers = [c.locker, await c.peer(), await c.peer()]
    pool = [f"p{i:02}" for i in range(12)]
    results = await asyncio.gather(
        *(ok(lockers[j % 3].try_lock(j, DEFAULT, pool, 12), f"try_lock({j})") for j in (1, 2, 3, 4))
    )
    seen: dict[str, int] = {}
    for j, got in zip((1, 2, 3, 4), results, strict=True):
        for t in got:
            expect(t not in seen, f"{t} was granted to both job {seen.get(t)} and job {j}")
            seen[t] = j
    same_set(list(seen), pool, "every target granted to some job")
    for j, got in zip((1, 2, 3, 4), results, strict=True):
        await ok(lockers[0].unlock(j, got), f"job {j} unlocks what it was granted")


@case()
async def race_take_over_expired(c: CaseContext) -> None:
    """Several jobs race for an expired lease: exactly one takes it over."""
    lockers = [c.locker, await c.peer(), await c.peer()]
    await ok(c.locker.lock(J1, SHORT, TWO), "lock(job 1, 2m)")
    c.clock.advance(DEFAULT)
    outcomes = await asyncio.gather(
        *(_outcome(lockers[j % 3].lock(j, DEFAULT, TWO)) for j in range(2, 7))
    )
    winners = [j for j, e in zip(range(2, 7), outcomes, strict=True) if e is None]
    expect(len(winners) == 1, f"exactly one job should take over, got {winners}")
    await conflict(c.locker.refresh_locks(J1, DEFAULT, TWO), "job 1 lost its leases")


@case()
async def race_same_job_refreshes(c: CaseContext) -> None:
    """Concurrent calls of one job on its own targets all succeed."""
    lockers = [c.locker, await c.peer()]
    await ok(c.locker.lock(J1, DEFAULT, ALL), "lock(job 1, all)")
    calls: list[Awaitable[Any]] = []
    for i in range(6):
        lk = lockers[i % 2]
        calls.append(lk.refresh_locks(J1, DEFAULT, ALL))
        calls.append(lk.lock(J1, DEFAULT, list(reversed(ALL))))
    outcomes = await asyncio.gather(*(_outcome(x) for x in calls))
    bad = [e for e in outcomes if e is not None]
    expect(not bad, f"own refresh/re-lock calls should all succeed, got {bad}")
    await ok(c.locker.unlock(J1, ALL), "unlock(job 1, all)")


@case()
async def race_unlock_and_lock(c: CaseContext) -> None:
    """A lock racing the owner's unlock either fails or gets all targets, never a mix."""
    b = await c.peer()
    for r in range(6):
        ts = [f"u{r}-1", f"u{r}-2", f"u{r}-3"]
        await ok(c.locker.lock(J1, DEFAULT, ts), "lock(job 1)")
        e_unlock, e_lock = await asyncio.gather(
            _outcome(c.locker.unlock(J1, ts)), _outcome(b.lock(J2, DEFAULT, ts))
        )
        expect(e_unlock is None, f"round {r}: job 1's unlock failed: {e_unlock!r}")
        if e_lock is None:
            await ok(b.unlock(J2, ts), f"round {r}: job 2 owns all of them")
        else:
            expect(isinstance(e_lock, LockConflict), f"round {r}: lock raised {e_lock!r}")
            await free(b, ts, f"round {r}: after unlock won")


#: Every conformance case, in catalog order.
CASES: tuple[ConformanceCase, ...] = tuple(CASES_LIST)


# --- the line: lock_queued, leave_queue, wait_for_release ----------------------------------------
#
# Two lists: QUEUE_CASES, the whole contract of a locker with a line (first come first served per
# target across jobs, places that lapse, waking waiters), and QUEUE_BASIC_CASES, the part that
# the base class's fallback (no line, polling) honours too, so that any locker can be checked
# against what it claims. Waiting jobs renew their place by calling lock_queued again, as the job
# runner does while it waits.

QUEUE_CASES_LIST: list[ConformanceCase] = []
QUEUE_BASIC_LIST: list[ConformanceCase] = []


def queue_case(*, basic: bool = False) -> Callable[[CaseBody], CaseBody]:
    """Register a line case; ``basic``: the fallback without a line passes it too."""

    def register(body: CaseBody) -> CaseBody:
        doc = (body.__doc__ or "").strip()
        made = ConformanceCase(body.__name__, body, (), doc)
        QUEUE_CASES_LIST.append(made)
        if basic:
            QUEUE_BASIC_LIST.append(made)
        return body

    return register


J4, J5 = 4, 5


async def granted(
    locker: TargetLocker,
    job: int,
    targets: Sequence[str],
    what: str,
    *,
    need: int | None = None,
    limit: int | None = None,
    ttl: float = 30.0,
    duration: float = DEFAULT,
) -> list[str]:
    """``lock_queued`` must grant; returns what was acquired."""
    got = await ok(
        locker.lock_queued(job, duration, targets, need=need, limit=limit, ttl=ttl), what
    )
    expect(got.granted, f"{what}: expected a grant, got {got}")
    expect(got.blockers == {}, f"{what}: a grant names no blockers, got {got.blockers}")
    return list(got.acquired)


async def waits(
    locker: TargetLocker,
    job: int,
    targets: Sequence[str],
    what: str,
    blockers: dict[str, int] | None = None,
    *,
    need: int | None = None,
    limit: int | None = None,
    ttl: float = 30.0,
) -> None:
    """``lock_queued`` must not grant (and acquire nothing); ``blockers``, if given, exactly."""
    got = await ok(locker.lock_queued(job, DEFAULT, targets, need=need, limit=limit, ttl=ttl), what)
    expect(not got.granted, f"{what}: expected the job to wait, got {got}")
    expect(list(got.acquired) == [], f"{what}: a waiting job acquires nothing, got {got}")
    if blockers is not None:
        expect(got.blockers == blockers, f"{what}: blockers should be {blockers}, got {got}")


async def holds_none(locker: TargetLocker, job: int, targets: Sequence[str], what: str) -> None:
    """The job holds none of the targets: refreshing any one of them is refused."""
    for t in targets:
        err = await conflict(locker.refresh_locks(job, DEFAULT, [t]), f"{what}: job {job} on {t}")
        expect(err.target_ids == [t], f"{what}: the refusal should name {t} only: {err}")


async def holds(locker: TargetLocker, job: int, targets: Sequence[str], what: str) -> None:
    """The job holds every target (its refresh succeeds)."""
    await ok(locker.refresh_locks(job, DEFAULT, targets), f"{what}: job {job} holds {targets}")


@queue_case(basic=True)
async def queued_free_targets_granted(c: CaseContext) -> None:
    """Free targets are granted at once, in input order, with no blockers."""
    order = [T3, T1, T2]
    got = await granted(c.locker, J1, order, "lock_queued(job 1, free targets)")
    expect(got == order, f"acquired should be the targets in input order {order}: {got}")
    await holds(c.locker, J1, order, "after the grant")
    await taken(c.locker, order, "after the grant")
    got = await granted(c.locker, J1, [], "lock_queued(job 1, [])")
    expect(got == [], f"an empty request acquires nothing: {got}")


@queue_case(basic=True)
async def queued_bad_arguments_rejected(c: CaseContext) -> None:
    """Bad job, targets, duration, need or limit are rejected before anything changes."""
    lk = c.locker
    await rejected(lk.lock_queued(0, DEFAULT, ONE), "lock_queued(job 0)")
    await rejected(lk.lock_queued(0, DEFAULT, []), "lock_queued(job 0, [])")
    await rejected(lk.lock_queued(J1, DEFAULT, [""]), "lock_queued([''])")
    await rejected(lk.lock_queued(J1, -1.0, ONE), "lock_queued(duration -1)")
    await rejected(lk.lock_queued(J1, DEFAULT, TWO, need=1, limit=-1), "lock_queued(limit -1)")
    await free(lk, ALL, "after rejected calls")


@queue_case()
async def queued_bad_line_arguments_rejected(c: CaseContext) -> None:
    """A need that cannot be met, a limit below need, a bad ttl: rejected up front."""
    lk = c.locker
    await rejected(lk.lock_queued(J1, DEFAULT, TWO, need=-1), "need -1")
    await rejected(lk.lock_queued(J1, DEFAULT, TWO, need=3), "need 3 of 2 targets")
    await rejected(lk.lock_queued(J1, DEFAULT, ALL, need=3, limit=2), "limit 2 below need 3")
    await rejected(lk.lock_queued(J1, DEFAULT, TWO, ttl=-1.0), "ttl -1")
    await rejected(lk.lock_queued(J1, DEFAULT, TWO, ttl=float("nan")), "ttl NaN")
    await rejected(lk.leave_queue(0), "leave_queue(job 0)")
    await free(lk, ALL, "after rejected calls")


@queue_case(basic=True)
async def queued_all_or_none(c: CaseContext) -> None:
    """Without need, a job that cannot have every target takes none of them."""
    await ok(c.locker.lock(J1, DEFAULT, SECOND), "lock(job 1, [002])")
    await waits(c.locker, J2, [T1, T2, T3], "lock_queued(job 2, [001, 002, 003])", {T2: J1})
    await holds_none(c.locker, J2, [T1, T2, T3], "while job 2 waits")
    await ok(c.locker.unlock(J1, SECOND), "unlock(job 1, [002])")
    got = await granted(c.locker, J2, [T1, T2, T3], "lock_queued(job 2) after the unlock")
    expect(got == [T1, T2, T3], f"job 2 should hold all three: {got}")


@queue_case(basic=True)
async def queued_need_and_limit(c: CaseContext) -> None:
    """With need, the job is granted once `need` targets are available, taking up to `limit`."""
    await ok(c.locker.lock(J1, DEFAULT, TWO), "lock(job 1, [001, 002])")
    got = await granted(c.locker, J2, ALL, "lock_queued(job 2, all, need 2)", need=2, limit=3)
    expect(got == [T3, T4], f"job 2 should take 003, 004: {got}")
    await waits(c.locker, J3, ALL, "lock_queued(job 3, all, need 1)", need=1)
    await ok(c.locker.unlock(J1, ONE), "unlock(job 1, [001])")
    got = await granted(c.locker, J3, ALL, "lock_queued(job 3, need 1, limit 1)", need=1, limit=1)
    expect(got == [T1], f"job 3 should take the freed 001 only: {got}")
    await holds(c.locker, J1, SECOND, "002 is still job 1's")
    pool = ["p1", "p2", "p3", "p4", "p5"]
    got = await granted(
        c.locker, J4, pool, "lock_queued(job 4, 5 free, need 2, limit 3)", need=2, limit=3
    )
    expect(got == pool[:3], f"job 4 should take the first three in input order: {got}")
    got = await granted(c.locker, J5, pool, "lock_queued(job 5, need 0)", need=0)
    expect(got == pool[3:], f"job 5 with need 0 takes what is free: {got}")


@queue_case(basic=True)
async def queued_relock_own(c: CaseContext) -> None:
    """Targets the job holds are re-locked as `lock` does: the lease restarts, even when
    other jobs wait for them."""
    got = await granted(c.locker, J1, TWO, "lock_queued(job 1, 2m)", duration=SHORT)
    expect(got == TWO, f"job 1 should hold both: {got}")
    await waits(c.locker, J2, ONE, "lock_queued(job 2, [001])")
    c.clock.advance(100)
    got = await granted(
        c.locker, J1, [*TWO, T3], "re-lock(job 1, +003, 2m) at +100s", duration=SHORT
    )
    expect(got == [*TWO, T3], f"job 1 re-locks its own and takes the free 003: {got}")
    c.clock.advance(100)  # past the first lease, within the second
    await taken(c.locker, [T1, T2, T3], "at +200s, the re-lock's lease runs to +220s")
    await holds(c.locker, J1, [T1, T2, T3], "job 1 after the re-lock")


@queue_case()
async def queued_first_come_first_served(c: CaseContext) -> None:
    """Three jobs waiting for one target are granted it in the order they came, whatever the
    order of their later calls."""
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001])")
    await waits(c.locker, J2, ONE, "job 2 joins", {T1: J1})
    await waits(c.locker, J3, ONE, "job 3 joins", {T1: J1})
    await waits(c.locker, J4, ONE, "job 4 joins", {T1: J1})
    await ok(c.locker.unlock(J1, ONE), "unlock(job 1)")
    await waits(c.locker, J4, ONE, "job 4 asks first after the unlock", {T1: J2})
    await waits(c.locker, J3, ONE, "then job 3", {T1: J2})
    await granted(c.locker, J2, ONE, "job 2, first in line")
    await waits(c.locker, J4, ONE, "job 4 while job 2 holds it", {T1: J2})
    await ok(c.locker.unlock(J2, ONE), "unlock(job 2)")
    await waits(c.locker, J4, ONE, "job 4, behind job 3", {T1: J3})
    await granted(c.locker, J3, ONE, "job 3")
    await ok(c.locker.unlock(J3, ONE), "unlock(job 3)")
    await granted(c.locker, J4, ONE, "job 4, last")


@queue_case()
async def queued_blockers(c: CaseContext) -> None:
    """Blockers name the holder of a held target, and the first job in line for a free one;
    a target free and first in line for the job blocks nothing."""
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001])")
    await waits(c.locker, J2, [T1, T2], "job 2 on [001, 002]", {T1: J1})
    await waits(c.locker, J3, [T1, T2, T3], "job 3 on [001, 002, 003]", {T1: J1, T2: J2})
    await waits(c.locker, J4, [T2, T3], "job 4 on [002, 003]", {T2: J2, T3: J3})
    await ok(c.locker.lock(J5, 1.0, [T4]), "lock(job 5, [004], 1s)")
    c.clock.advance(2)
    await waits(c.locker, J4, [T2, T4], "job 4 on [002, 004]: 004's lease ran out", {T2: J2})


@queue_case()
async def queued_need_keeps_its_place(c: CaseContext) -> None:
    """A job waiting for `need` targets takes none meanwhile, and no later job jumps ahead of
    it on a target it waits for; a later job may take targets nobody earlier waits for."""
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001])")
    await waits(c.locker, J2, TWO, "job 2, need 2 of [001, 002]", {T1: J1}, need=2)
    await holds_none(c.locker, J2, TWO, "while job 2 waits")
    await waits(c.locker, J3, SECOND, "job 3 on [002]: job 2 came first", {T2: J2})
    got = await granted(c.locker, J3, [T2, T3], "job 3, need 1 of [002, 003]", need=1)
    expect(got == [T3], f"job 3 should take 003, which nobody before it waits for: {got}")
    await ok(c.locker.unlock(J1, ONE), "unlock(job 1)")
    got = await granted(c.locker, J2, TWO, "job 2 once both are free", need=2)
    expect(got == TWO, f"job 2 should hold both: {got}")


@queue_case()
async def queued_two_target_job_not_starved(c: CaseContext) -> None:
    """A job needing two targets held in turn by others is not overtaken on either."""
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001])")
    await ok(c.locker.lock(J2, DEFAULT, SECOND), "lock(job 2, [002])")
    await waits(c.locker, J3, TWO, "job 3 on [001, 002]", {T1: J1, T2: J2})
    await ok(c.locker.unlock(J1, ONE), "job 1 lets 001 go")
    await waits(c.locker, J4, ONE, "job 4 on [001]: job 3 came first", {T1: J3})
    await waits(c.locker, J1, ONE, "job 1 wants 001 back", {T1: J3})
    await waits(c.locker, J3, TWO, "job 3: 002 still held", {T2: J2})
    await holds_none(c.locker, J3, TWO, "job 3 holds nothing while waiting")
    await ok(c.locker.unlock(J2, SECOND), "job 2 lets 002 go")
    await waits(c.locker, J4, ONE, "job 4, still behind job 3", {T1: J3})
    got = await granted(c.locker, J3, TWO, "job 3")
    expect(got == TWO, f"job 3 should hold both: {got}")
    await ok(c.locker.unlock(J3, TWO), "unlock(job 3)")
    await waits(c.locker, J1, ONE, "job 1: job 4 came before it", {T1: J4})
    await granted(c.locker, J4, ONE, "job 4")


@queue_case()
async def queued_place_lapses(c: CaseContext) -> None:
    """A place not renewed within ttl lapses (held up to and including its end); the job
    then starts again at the back of the line."""
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1)")
    await waits(c.locker, J2, ONE, "job 2 joins, ttl 10s", {T1: J1}, ttl=10)
    await waits(c.locker, J3, ONE, "job 3 joins, ttl 10s", {T1: J1}, ttl=10)
    c.clock.advance(5)
    await ok(c.locker.unlock(J1, ONE), "unlock(job 1) at +5s")
    await waits(c.locker, J3, ONE, "job 3 renews at +5s", {T1: J2}, ttl=10)
    c.clock.advance(5)
    await waits(c.locker, J3, ONE, "job 3 at +10s: job 2's place ends now", {T1: J2}, ttl=10)
    c.clock.advance(0.001)
    await granted(c.locker, J3, ONE, "job 3 just after job 2's place lapsed")
    await waits(c.locker, J2, ONE, "job 2 comes back", {T1: J3})
    await waits(c.locker, J4, ONE, "job 4 joins", {T1: J3})
    await ok(c.locker.unlock(J3, ONE), "unlock(job 3)")
    await waits(c.locker, J4, ONE, "job 4: job 2 rejoined before it", {T1: J2})
    await granted(c.locker, J2, ONE, "job 2, from its new place")


@queue_case()
async def queued_leave_queue(c: CaseContext) -> None:
    """leave_queue gives up the job's places (idempotent); coming back means the back."""
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1)")
    await waits(c.locker, J2, ONE, "job 2 joins")
    await waits(c.locker, J3, ONE, "job 3 joins")
    await ok(c.locker.unlock(J1, ONE), "unlock(job 1)")
    await waits(c.locker, J3, ONE, "job 3 behind job 2", {T1: J2})
    await ok(c.locker.leave_queue(J2), "leave_queue(job 2)")
    await ok(c.locker.leave_queue(J2), "leave_queue(job 2) again")
    await ok(c.locker.leave_queue(J5), "leave_queue(job 5), never in line")
    await waits(c.locker, J2, ONE, "job 2 comes back: now behind job 3", {T1: J3})
    await granted(c.locker, J3, ONE, "job 3")


@queue_case()
async def queued_grant_leaves_the_line(c: CaseContext) -> None:
    """A granted job is out of the line: targets it waited for and did not take are free."""
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001])")
    await waits(c.locker, J2, ALL, "job 2, need 4 of all", {T1: J1}, need=4)
    await waits(c.locker, J3, [T4], "job 3 on [004]", {T4: J2})
    got = await granted(c.locker, J2, ALL, "job 2, need 2 of all, limit 2", need=2, limit=2)
    expect(got == [T2, T3], f"job 2 should take 002, 003: {got}")
    await granted(c.locker, J3, [T4], "job 3: job 2 no longer waits for 004")


@queue_case()
async def queued_latest_request_replaces_place(c: CaseContext) -> None:
    """A job's place covers the targets of its latest request only."""
    await ok(c.locker.lock(J1, DEFAULT, ONE), "lock(job 1, [001])")
    await waits(c.locker, J2, TWO, "job 2 on [001, 002]", {T1: J1})
    await waits(c.locker, J3, SECOND, "job 3 on [002]", {T2: J2})
    await waits(c.locker, J2, ONE, "job 2 now asks for [001] only", {T1: J1})
    await granted(c.locker, J3, SECOND, "job 3: job 2 no longer waits for 002")
    await ok(c.locker.unlock(J1, ONE), "unlock(job 1)")
    await waits(c.locker, J4, ONE, "job 4: job 2 kept its ticket", {T1: J2})


async def _elapsed(call: Awaitable[Any]) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    await call
    return loop.time() - start


@queue_case()
async def queued_wait_for_release_wakes(c: CaseContext) -> None:
    """wait_for_release returns as soon as this locker sees an unlock or a place given up,
    at once if it saw one since the task's last lock_queued, else after its timeout."""
    lk = c.locker
    await ok(lk.lock(J1, DEFAULT, ONE), "lock(job 1)")
    await waits(lk, J2, ONE, "job 2 joins")
    took = await _elapsed(lk.wait_for_release(0.05))
    expect(took >= 0.04, f"with nothing released, the wait should last its timeout: {took:.3f}s")

    async def job2_waits() -> float:
        await waits(lk, J2, ONE, "job 2 renews")
        return await _elapsed(lk.wait_for_release(30))

    waiter = asyncio.create_task(job2_waits())
    await asyncio.sleep(0.05)
    await ok(lk.unlock(J1, ONE), "unlock(job 1)")
    took = await asyncio.wait_for(waiter, 10)
    expect(took < 5, f"an unlock should wake the waiter at once, it slept {took:.3f}s")

    await ok(lk.lock(J1, DEFAULT, ONE), "lock(job 1) again")
    await waits(lk, J2, ONE, "job 2 renews")
    await ok(lk.unlock(J1, ONE), "unlock between job 2's look and its wait")
    took = await _elapsed(lk.wait_for_release(30))
    expect(took < 5, f"a release since the last lock_queued should not be lost: {took:.3f}s")
    took = await _elapsed(lk.wait_for_release(0.05))
    expect(took >= 0.04, f"that release was seen: a second wait should last: {took:.3f}s")

    await ok(lk.lock(J1, DEFAULT, ONE), "lock(job 1) again")
    await waits(lk, J2, ONE, "job 2 renews")
    await ok(lk.unlock(J1, ONE), "unlock before job 2 waits, in a task of its own")
    took = await asyncio.wait_for(asyncio.ensure_future(_elapsed(lk.wait_for_release(30))), 10)
    expect(took < 5, f"a wait in a task started after the look should not lose it: {took:.3f}s")

    await ok(lk.lock(J1, DEFAULT, ONE), "lock(job 1) again")
    await waits(lk, J3, ONE, "job 3 joins")

    async def job3_waits() -> float:
        await waits(lk, J3, ONE, "job 3 renews")
        return await _elapsed(lk.wait_for_release(30))

    waiter = asyncio.create_task(job3_waits())
    await asyncio.sleep(0.05)
    await ok(lk.leave_queue(J2), "leave_queue(job 2)")
    took = await asyncio.wait_for(waiter, 10)
    expect(took < 5, f"a place given up should wake the waiter at once: {took:.3f}s")


@queue_case()
async def queued_race_one_target_one_job(c: CaseContext) -> None:
    """Jobs ask for overlapping targets at once through separate lockers: a target is never
    granted to two jobs, and every job gets its turn."""
    lockers = [c.locker, await c.peer(), await c.peer()]
    jobs = {j: [f"q{j % 3}", f"q{(j + 1) % 3}"] for j in range(1, 7)}
    holder: dict[str, int] = {}
    done: list[int] = []
    for _ in range(40):
        pending = [j for j in jobs if j not in done]
        if not pending:
            break
        results = await asyncio.gather(
            *(
                ok(lockers[j % 3].lock_queued(j, DEFAULT, jobs[j]), f"lock_queued(job {j})")
                for j in pending
            )
        )
        for j, got in zip(pending, results, strict=True):
            if not got.granted:
                continue
            for t in got.acquired:
                expect(t not in holder, f"{t} granted to job {j} while job {holder.get(t)} has it")
                holder[t] = j
        for j, got in zip(pending, results, strict=True):
            if got.granted:
                await ok(lockers[0].unlock(j, got.acquired), f"unlock(job {j})")
                for t in got.acquired:
                    del holder[t]
                done.append(j)
    expect(sorted(done) == sorted(jobs), f"every job should have had its turn, got {done}")


#: The line's cases, for lockers with a line (InMemory, DBLocker).
QUEUE_CASES: tuple[ConformanceCase, ...] = tuple(QUEUE_CASES_LIST)
#: The part of the line's contract the base class's fallback (no line) honours too.
QUEUE_BASIC_CASES: tuple[ConformanceCase, ...] = tuple(QUEUE_BASIC_LIST)


async def run_conformance(
    backend: LockerBackend, cases: Iterable[ConformanceCase] = CASES
) -> dict[str, BaseException]:
    """Run the cases one after the other; return the failures by case name (empty: all pass)."""
    failures: dict[str, BaseException] = {}
    for c in cases:
        try:
            await c.run(backend)
        except Exception as e:
            failures[c.name] = e
    return failures


__all__ = [
    "ALL",
    "CASES",
    "DEFAULT",
    "QUEUE_BASIC_CASES",
    "QUEUE_CASES",
    "SHORT",
    "CaseContext",
    "ConformanceCase",
    "ConformanceFailure",
    "FakeClock",
    "LockerBackend",
    "SingleLockerBackend",
    "run_conformance",
]
