"""The wait itself (``contest.job.waiting``), against a locker that wakes every waiter on each
release, as lockers do (they cannot tell who is next): the waiters of one process ask the locker
again in their order, not all at each release, and each is granted in turn."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Iterable
from typing import Any

import pytest

from contest.errors import Cancelled
from contest.job.waiting import QueueingLocker, TargetWait, TargetWaitTimeout
from contest.locking import QueuedLock, TargetRef
from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.signals import Scope


class WakingLocker(InMemoryLocker):
    """The in-memory locker, counting ``lock_queued`` per job, whose ``wait_for_release``
    returns at every unlock (every waiter woken)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: collections.Counter[int] = collections.Counter()
        self._released = asyncio.Event()

    async def lock_queued(self, job_id: int, *a: Any, **kw: Any) -> QueuedLock:
        self.calls[job_id] += 1
        return await super().lock_queued(job_id, *a, **kw)

    async def unlock(self, job_id: int, targets: Iterable[TargetRef]) -> None:
        await super().unlock(job_id, targets)
        self._released.set()
        self._released = asyncio.Event()

    async def wait_for_release(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._released.wait()


def wait_of(locker: Any, scope: Scope, events: list[tuple[int, str, Any]], job: int, budget: float):
    async def emit(name: str, payload: dict[str, Any]) -> None:
        events.append((job, name, payload))

    return TargetWait(
        locker,
        scope=scope,
        emit=emit,
        deadline=time.monotonic() + budget,
        total=budget,
        poll=30.0,  # no renewal within the test: every call is a wake's
    )


async def test_waiters_ask_again_in_their_order_not_at_every_release() -> None:
    locker = WakingLocker()
    await locker.lock(1, 60.0, ["a"])
    events: list[tuple[int, str, Any]] = []
    order: list[int] = []

    async def job(job_id: int) -> None:
        wait = wait_of(locker, Scope(), events, job_id, 20.0)
        await QueueingLocker(locker, wait).lock(job_id, 60.0, ["a"])
        order.append(job_id)
        await asyncio.sleep(0.01)
        await locker.unlock(job_id, ["a"])

    tasks = []
    for job_id in range(2, 9):
        tasks.append(asyncio.ensure_future(job(job_id)))
        await asyncio.sleep(0.01)  # they take their places in this order
    await locker.unlock(1, ["a"])
    await asyncio.wait_for(asyncio.gather(*tasks), 10.0)
    assert sorted(order) == list(range(2, 9))
    # 7 releases; each waiter asked once to join, and at most twice more (when the one before
    # it in this process left the line, and at the release that freed "a" for it)
    assert max(locker.calls[j] for j in range(2, 9)) <= 3, locker.calls
    for job_id in range(2, 9):
        names = [n for j, n, _ in events if j == job_id]
        assert names == ["TargetsWaiting", "TargetsWaitEnded"]


async def test_a_cancel_interrupts_the_wait_and_leaves_the_line() -> None:
    locker = WakingLocker()
    await locker.lock(1, 60.0, ["a", "b"])
    events: list[tuple[int, str, Any]] = []
    scope = Scope()
    wait = wait_of(locker, scope, events, 2, 20.0)
    task = asyncio.ensure_future(wait.acquire(2, 60.0, ["a", "b"]))
    await asyncio.sleep(0.05)
    scope.cancel.set()
    with pytest.raises(Cancelled):  # the wait ends at once, cancelled
        async with asyncio.timeout(1.0):
            await task
    assert wait.outcome == "cancelled"
    assert events[-1][1:] == (
        "TargetsWaitEnded",
        {"Acquired": False, "Error": "cancelled while waiting for a, b (held by job 1)"},
    )


async def test_the_budget_ends_the_wait_with_the_holders_named() -> None:
    locker = WakingLocker()
    await locker.lock(3, 60.0, ["dut1", "dut2"])
    events: list[tuple[int, str, Any]] = []
    wait = wait_of(locker, Scope(), events, 4, 0.2)
    wait.poll = 0.05
    try:
        await wait.acquire(4, 60.0, ["dut1", "dut2"])
    except TargetWaitTimeout as exc:
        assert str(exc) == (
            "could not acquire targets within 200ms: dut1 held by job 3, dut2 held by job 3"
        )
    else:
        raise AssertionError("no timeout")
    assert [n for _, n, _ in events] == ["TargetsWaiting", "TargetsWaitEnded"]


def test_contest_runs_live_view_shows_the_wait_from_the_events_it_writes() -> None:
    from contest.events import FrameworkEvent, TestEvent, TestEventHeader
    from contest.progress import ProgressStore
    from contest.targetwait import ended_payload, waiting_payload
    from contest.testing.memstore import MemoryStore

    tracked = ProgressStore(MemoryStore())
    header = TestEventHeader(7, 1, "t", "", 0)
    tracked.write_framework_event(FrameworkEvent(7, "JobStateStarted", None, time.time()))
    payload = waiting_payload(["dut1", "dut2"], {"dut1": 3, "dut2": 3}, 300.0)
    tracked.write_test_event(TestEvent(header, None, "TargetsWaiting", payload, time.time()))
    shown = tracked.progress.to_json_obj()
    assert shown["State"] == "JobStateStarted"
    assert shown["Waiting"]["Text"] == "waiting for dut1, dut2 (held by job 3)"
    assert shown["Waiting"]["Timeout"] == "5m0s"
    ended = ended_payload(waited=1.5)
    tracked.write_test_event(TestEvent(header, None, "TargetsWaitEnded", ended, time.time()))
    assert "Waiting" not in tracked.progress.to_json_obj()


def test_the_text_names_each_holder_once_per_run_of_targets() -> None:
    from contest.targetwait import Waiting

    w = Waiting([("a", 3), ("b", 3), ("c", None), ("d", 4)], 0.0, "5m0s")
    assert w.text() == "waiting for a, b (held by job 3), c, d (held by job 4)"


async def test_a_new_holder_is_announced_again() -> None:
    locker = WakingLocker()
    await locker.lock(1, 60.0, ["a"])
    events: list[tuple[int, str, Any]] = []
    wait = wait_of(locker, Scope(), events, 9, 5.0)
    wait.poll = 0.05
    task = asyncio.ensure_future(wait.acquire(9, 60.0, ["a"]))
    await asyncio.sleep(0.1)
    await InMemoryLocker.unlock(locker, 1, ["a"])  # quietly: the waiter is not woken
    await locker.lock(2, 60.0, ["a"])  # job 2 took it meanwhile
    await asyncio.sleep(0.2)
    await locker.unlock(2, ["a"])
    assert await asyncio.wait_for(task, 2.0) == ["a"]
    assert [(n, p.get("HeldBy")) for _, n, p in events] == [
        ("TargetsWaiting", {"a": 1}),
        ("TargetsWaiting", {"a": 2}),
        ("TargetsWaitEnded", None),
    ]
