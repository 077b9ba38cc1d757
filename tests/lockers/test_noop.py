"""The noop locker (ConTest's ``plugins/targetlocker/noop/noop_test.go``): it never fails, and
try_lock honours the limit."""

from __future__ import annotations

import pytest

from contest.locking import TargetLocker
from contest.plugins.targetlockers import noop
from contest.target import Target

TARGET_LISTS: list[list[str | Target]] = [[], ["001"], ["001", "002"], [Target("001"), "002"]]


@pytest.mark.parametrize("targets", TARGET_LISTS)
async def test_never_fails(targets: list[str | Target]) -> None:
    locker = noop.NoopLocker()
    for job in (1, 2, 0):
        await locker.lock(job, 300, targets)
        await locker.lock(job, 300, targets)  # twice, or by another job: still fine
        for limit in (0, 1, 2):
            got = await locker.try_lock(job, 300, targets, limit)
            assert got == [t if isinstance(t, str) else t.id for t in targets][:limit]
        await locker.refresh_locks(job, 300, targets)
        await locker.unlock(job, targets)
        await locker.unlock(job, targets)
    await locker.close()


async def test_try_lock_dedupes() -> None:
    assert await noop.NoopLocker().try_lock(1, 1, ["a", "a", "b"], 5) == ["a", "b"]


async def test_load_and_factory() -> None:
    name, factory = noop.load()
    assert name == "noop"
    locker = factory(clock=lambda: 0.0)  # settings meant for other lockers are ignored
    assert isinstance(locker, TargetLocker)
    async with locker:
        await locker.lock(1, 1, ["x"])
