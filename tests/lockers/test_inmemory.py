"""InMemory specifics beyond the conformance suite: plugin entry, clock, close."""

from __future__ import annotations

import asyncio
import threading

import pytest

from contest.locking import LockConflict, LockerClosed, TargetLocker
from contest.plugins.targetlockers import inmemory
from contest.testing.lockers import FakeClock


def test_load() -> None:
    name, factory = inmemory.load()
    assert name == "InMemory"
    assert isinstance(factory(), TargetLocker)
    with pytest.raises(TypeError, match="unknown settings"):
        factory(url="sqlite:///x.db")


async def test_default_clock_is_monotonic_and_real() -> None:
    locker = inmemory.new()
    await locker.lock(1, 0.05, ["a"])
    with pytest.raises(LockConflict):
        await locker.lock(2, 1, ["a"])
    await asyncio.sleep(0.06)
    await locker.lock(2, 1, ["a"])


async def test_injected_clock() -> None:
    clock = FakeClock(start=10.0)
    locker = inmemory.new(clock=clock)
    await locker.lock(1, 5, ["a"])
    clock.advance(5.0001)
    await locker.lock(2, 5, ["a"])


async def test_closed_locker_refuses_calls() -> None:
    locker = inmemory.new()
    await locker.lock(1, 10, ["a"])
    await locker.close()
    with pytest.raises(LockerClosed):
        await locker.lock(1, 10, ["a"])
    with pytest.raises(LockerClosed):
        await locker.unlock(1, ["a"])
    with pytest.raises(LockerClosed):
        await locker.try_lock(1, 10, ["a"], 1)


def test_threads_never_share_a_target() -> None:
    """Calls are atomic across threads and event loops, not only among tasks of one loop."""
    locker = inmemory.new()
    won: list[int] = []
    barrier = threading.Barrier(8)

    def worker(job: int) -> None:
        barrier.wait()
        got = asyncio.run(locker.try_lock(job, 60, [f"t{i}" for i in range(50)], 50))
        won.extend([job] * len(got))

    threads = [threading.Thread(target=worker, args=(j,)) for j in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 50
