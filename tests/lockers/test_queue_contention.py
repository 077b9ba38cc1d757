"""Ten jobs contend for overlapping targets through lock_queued + wait_for_release, as job
runners do: a target is held by one job at a time, and each target goes to the jobs that want
it in the order they joined the line (their tickets). In one locker (InMemory, DBLocker), across
two DBLockers with their own engines, and across two processes."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field

import pytest

from contest.locking import TargetLocker
from contest.plugins.targetlockers import dblocker
from contest.plugins.targetlockers.inmemory import InMemoryLocker

JOBS = range(1, 11)
POOL = [f"c{i}" for i in range(6)]


def wants(job: int) -> list[str]:
    """Overlapping requests: each job wants 2 or 3 of the 6 targets."""
    picks = [POOL[job % 6], POOL[(job + 1) % 6]]
    if job % 3 == 0:
        picks.append(POOL[(job + 3) % 6])
    return picks


@dataclass
class Log:
    """Grants and releases as (target, job, wall-clock time)."""

    grants: list[tuple[str, int, float]] = field(default_factory=list)
    releases: list[tuple[str, int, float]] = field(default_factory=list)
    holder: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)


async def run_job(
    locker: TargetLocker,
    job: int,
    log: Log,
    joined: asyncio.Event,
    after: asyncio.Event | None,
    poll: float,
) -> None:
    """Join the line once the job before has (so tickets follow job numbers), then wait."""
    if after is not None:
        await after.wait()
    targets = wants(job)
    first = True
    while True:
        got = await locker.lock_queued(job, 30, targets, ttl=10)
        if first:
            first = False
            joined.set()
        if got.granted:
            break
        await locker.wait_for_release(poll)
    now = time.time()
    for t in got.acquired:
        if t in log.holder:
            log.overlaps.append(f"{t} granted to job {job} while job {log.holder[t]} holds it")
        log.holder[t] = job
        log.grants.append((t, job, now))
    await asyncio.sleep(random.uniform(0.005, 0.02))
    now = time.time()
    for t in got.acquired:
        del log.holder[t]
        log.releases.append((t, job, now))
    await locker.unlock(job, got.acquired)


async def contend(lockers: list[TargetLocker], jobs: range, poll: float) -> Log:
    log = Log()
    joined = [asyncio.Event() for _ in jobs]
    tasks = [
        run_job(lockers[i % len(lockers)], job, log, joined[i], joined[i - 1] if i else None, poll)
        for i, job in enumerate(jobs)
    ]
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return log


def check(grants: list[tuple[str, int, float]], releases: list[tuple[str, int, float]]) -> None:
    """One holder at a time per target, and the holders of a target in ticket (job) order."""
    assert sorted((t, j) for t, j, _ in grants) == sorted((t, j) for j in JOBS for t in wants(j))
    for target in POOL:
        got = sorted((when, job) for t, job, when in grants if t == target)
        done = {job: when for t, job, when in releases if t == target}
        order = [job for _, job in got]
        assert order == sorted(order), f"{target} went to jobs in the order {order}"
        for (_, prev), (start, nxt) in itertools.pairwise(got):
            assert done[prev] <= start, f"{target}: job {nxt} got it before job {prev} let go"


async def test_inmemory_ten_jobs() -> None:
    locker = InMemoryLocker()
    log = await contend([locker], JOBS, poll=5.0)  # woken by unlocks, never by the timeout
    assert log.overlaps == []
    check(log.grants, log.releases)


async def test_dblocker_ten_jobs_two_engines(db_url: str) -> None:
    lockers = [dblocker.new(url=db_url), dblocker.new(url=db_url)]
    try:
        await lockers[0].create_table()
        await lockers[0].reset_all_locks()
        log = await contend(list(lockers), JOBS, poll=0.05)
        assert log.overlaps == []
        check(log.grants, log.releases)
    finally:
        for locker in lockers:
            await locker.close()


CHILD = """
import asyncio, json, sys
sys.path[:0] = {paths!r}
import test_queue_contention as t
from contest.plugins.targetlockers import dblocker

async def main():
    locker = dblocker.new(url={url!r})
    sys.stdin.readline()  # the parent's jobs have joined the line
    log = await t.contend([locker], range({first}, {last}), poll=0.05)
    print(json.dumps({{"grants": log.grants, "releases": log.releases}}))
    await locker.close()

asyncio.run(main())
"""


async def test_dblocker_ten_jobs_two_processes(db_url: str) -> None:
    """Jobs 1-5 in this process, 6-10 in another, each process with its own DBLocker."""
    here = os.path.dirname(__file__)
    code = CHILD.format(paths=[here, *sys.path], url=db_url, first=6, last=11)
    locker = dblocker.new(url=db_url)
    await locker.create_table()
    await locker.reset_all_locks()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdin is not None and child.stdout is not None
        log = Log()
        joined = [asyncio.Event() for _ in range(5)]
        tasks = [
            asyncio.create_task(
                run_job(locker, job, log, joined[i], joined[i - 1] if i else None, 0.05)
            )
            for i, job in enumerate(range(1, 6))
        ]
        await asyncio.wait_for(joined[-1].wait(), 30)
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        out, _ = await asyncio.wait_for(child.communicate(), 60)
        assert child.returncode == 0
        theirs = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await locker.close()
    assert log.overlaps == []
    grants = log.grants + [tuple(g) for g in theirs["grants"]]
    releases = log.releases + [tuple(r) for r in theirs["releases"]]
    check(grants, releases)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    random.seed(7)


CRASHING_WAITER = """
import asyncio, signal, sys
from contest.plugins.targetlockers import dblocker

async def main():
    locker = dblocker.new(url={url!r})
    got = await locker.lock_queued(2, 60, ["k1"], ttl={ttl!r})
    print("granted" if got.granted else "queued", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_dblocker_waiter_killed_does_not_block_the_line(db_url: str) -> None:
    """A waiter whose process is killed (SIGKILL: nothing cleans up) holds its place only until
    its ttl runs out; then the job behind it is granted."""
    ttl = 1.0
    locker = dblocker.new(url=db_url)
    await locker.create_table()
    await locker.reset_all_locks()
    await locker.lock(1, 60, ["k1"])
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_WAITER.format(url=db_url, ttl=ttl),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 30)
        queued_at = time.monotonic()
        assert line.strip() == b"queued"
        got = await locker.lock_queued(3, 60, ["k1"])
        assert not got.granted and got.blockers == {"k1": 1}
        await locker.unlock(1, ["k1"])
        got = await locker.lock_queued(3, 60, ["k1"])
        assert not got.granted and got.blockers == {"k1": 2}  # the child came first
        child.kill()
        await asyncio.wait_for(child.wait(), 10)
        while not (got := await locker.lock_queued(3, 60, ["k1"])).granted:
            assert got.blockers == {"k1": 2}
            assert time.monotonic() - queued_at < ttl + 10, "the dead waiter's place never lapsed"
            await locker.wait_for_release(0.1)
        assert time.monotonic() - queued_at >= ttl / 2  # not before the place lapsed
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await locker.close()
