"""A running job's status, shared between requests when building it is dear
(``contest.job.statusdoc.RunningStatuses``), on a clock of the test's own: no timing is asserted,
only who builds what."""

from __future__ import annotations

import asyncio

from contest.job._gzip import inflate
from contest.job.status import RunText
from contest.job.statusdoc import GZIP_FROM, RunningStatuses


class Clock:
    """The time as the cache sees it: moved by the tests and the builds, nothing else."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Builder:
    """Counts builds; each takes ``cost`` seconds of the clock (and one loop turn) and returns
    b"1", b"2", ..."""

    def __init__(self, clock: Clock, cost: float) -> None:
        self.clock = clock
        self.cost = cost
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> bytes:
        self.calls += 1
        n = self.calls
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
        self.clock.now += self.cost
        return str(n).encode()


async def test_a_quick_build_is_never_kept() -> None:
    clock = Clock()
    shared = RunningStatuses(share=100.0, min_build=10.0, clock=clock)
    build = Builder(clock, 1.0)
    assert await shared.get((1, 1), build) == b"1"
    assert await shared.get((1, 1), build) == b"2"  # built afresh: small statuses stay fresh


async def test_a_dear_build_is_shared_then_refreshed_in_the_background() -> None:
    clock = Clock()
    shared = RunningStatuses(share=2.0, min_build=0.5, min_fresh=0.0, clock=clock)
    build = Builder(clock, 1.0)  # a build "takes" 1 s: kept for 2 s
    # requests arriving together wait for one build
    got = await asyncio.gather(*(shared.get((1, 1), build) for _ in range(5)))
    assert got == [b"1"] * 5 and build.calls == 1
    # within the window: the same build, nothing new
    clock.now += 1.5
    assert await shared.get((1, 1), build) == b"1" and build.calls == 1
    # past it: still answered at once with what there is, while one fresh build starts
    clock.now += 1.0
    build.gate = asyncio.Event()
    assert await asyncio.gather(*(shared.get((1, 1), build) for _ in range(3))) == [b"1"] * 3
    await asyncio.sleep(0)
    assert build.calls == 2
    build.gate.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert await shared.get((1, 1), build) == b"2"
    # another run, or another job, is its own
    assert await shared.get((1, 2), build) == b"3"


async def test_a_job_that_stops_running_is_forgotten() -> None:
    clock = Clock()
    shared = RunningStatuses(share=100.0, min_build=0.0, clock=clock)
    build = Builder(clock, 1.0)
    assert await shared.get((7, 1), build) == b"1"
    assert await shared.get((7, 1), build) == b"1"
    shared.forget(7)
    assert await shared.get((7, 1), build) == b"2"
    shared.close()


async def test_a_failed_build_fails_its_requests_and_the_next_one_builds_again() -> None:
    shared = RunningStatuses(share=100.0, min_build=0.0, clock=Clock())
    calls = 0

    async def flaky() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls == 1:
            raise RuntimeError("database gone")
        return b"ok"

    results = await asyncio.gather(
        shared.get((1, 1), flaky), shared.get((1, 1), flaky), return_exceptions=True
    )
    assert [str(r) for r in results] == ["database gone"] * 2
    assert await shared.get((1, 1), flaky) == b"ok" and calls == 2


async def test_after_a_cheap_build_a_request_waits_for_the_next_and_others_take_the_last() -> None:
    """A small job's status stays fresh for whoever asks alone; a request that comes while a
    build is under way takes the last one rather than waiting."""
    clock = Clock()
    shared = RunningStatuses(share=4.0, min_build=0.5, min_fresh=0.0, clock=clock)
    build = Builder(clock, 0.1)  # cheap: fresh for no time
    assert await shared.get((1, 1), build) == b"1"
    build.gate = asyncio.Event()
    waiting = asyncio.ensure_future(shared.get((1, 1), build))
    for _ in range(3):
        await asyncio.sleep(0)
    assert build.calls == 2
    assert await shared.get((1, 1), build) == b"1"  # meanwhile: the last one, at once
    build.gate.set()
    assert await waiting == b"2"  # the one who started it waited for the fresh one
    assert build.calls == 2


async def test_a_dear_build_stays_fresh_for_min_fresh_at_least() -> None:
    clock = Clock()
    shared = RunningStatuses(share=1.0, min_build=0.05, min_fresh=10.0, clock=clock)
    build = Builder(clock, 0.1)  # dear, but 1 x 0.1 s is less than min_fresh
    assert await shared.get((1, 1), build) == b"1"
    clock.now += 9.0
    assert await shared.get((1, 1), build) == b"1" and build.calls == 1


async def test_fragment_made_with_the_build() -> None:
    """A big run's text comes with its gzip fragment made by the build (the requests of a
    sharing window wait for neither), as long as its requests ask for fragments; the first
    build makes it (most clients accept gzip)."""
    shared = RunningStatuses(share=1.0, min_build=10.0, clock=Clock())  # each request builds
    made = 0

    async def build() -> RunText:
        nonlocal made
        made += 1
        return RunText(str(made).encode() * GZIP_FROM)

    first = await shared.get((1, 1), build)
    assert first.fragment_ready and not first.zipped
    second = await shared.get((1, 1), build)
    assert not second.fragment_ready  # nobody asked for the first one's
    assert inflate(await second.fragment()) == b"2" * GZIP_FROM  # asked for: made then
    assert second.zipped
    third = await shared.get((1, 1), build)
    assert third.fragment_ready
    assert inflate(await third.fragment()) == b"3" * GZIP_FROM


async def test_fragment_not_made_for_a_small_text() -> None:
    shared = RunningStatuses(share=1.0, min_build=10.0, clock=Clock())

    async def build() -> RunText:
        return RunText(b"x" * (GZIP_FROM - 1))

    small = await shared.get((1, 1), build)
    assert not small.fragment_ready
    await small.fragment()
    assert not (await shared.get((1, 1), build)).fragment_ready
