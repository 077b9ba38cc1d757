"""The line (lock_queued, leave_queue, wait_for_release) against every built-in locker, and the
base class's fallback against the part of the contract it honours."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from contest.locking import QueuedLock, TargetLocker, TargetRef
from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.testing.lockers import (
    QUEUE_BASIC_CASES,
    QUEUE_CASES,
    ConformanceCase,
    FakeClock,
    LockerBackend,
    SingleLockerBackend,
)


class FallbackLocker(InMemoryLocker):
    """The InMemory leases with the base class's line-less lock_queued (a third-party locker
    that implements only the four lock calls)."""

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
        return await TargetLocker.lock_queued(
            self, job_id, duration, targets, need=need, limit=limit, ttl=ttl
        )

    async def leave_queue(self, job_id: int) -> None:
        await TargetLocker.leave_queue(self, job_id)

    async def wait_for_release(self, timeout: float) -> None:
        await TargetLocker.wait_for_release(self, timeout)


@pytest.mark.parametrize("case", QUEUE_CASES, ids=str)
async def test_inmemory(case: ConformanceCase) -> None:
    await case.run(SingleLockerBackend(lambda clock: InMemoryLocker(clock=clock)))


@pytest.mark.parametrize("case", QUEUE_CASES, ids=str)
async def test_dblocker(case: ConformanceCase, db_backend: LockerBackend) -> None:
    await case.run(db_backend)


@pytest.mark.parametrize("case", QUEUE_BASIC_CASES, ids=str)
async def test_fallback_without_a_line(case: ConformanceCase) -> None:
    def make(clock: FakeClock) -> TargetLocker:
        return FallbackLocker(clock=clock)

    await case.run(SingleLockerBackend(make))
