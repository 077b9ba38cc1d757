"""Pause anywhere in a job, resume from the payload: the stored events are exactly those of an
uninterrupted run (nothing acquired, entered, left or released twice; nothing missing)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from jobkit import Echo, FailFirstCall, ListTM, bundle, job_of

from contest.bundle import TestStepBundle
from contest.context import PluginContext
from contest.job.model import Job
from contest.job.runner import JobRunner
from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.plugins.teststeps.sleep import Sleep
from contest.resume import PausePayload
from contest.signals import Scope
from contest.target import Target
from contest.testing.memstore import MemoryStore

TARGETS = ["T1", "T2", "T3"]


def sleep(label: str, duration: str) -> TestStepBundle:
    step = Sleep()
    b = bundle(step, label, {"duration": [duration]})
    step.seconds = float(duration.rstrip("ms")) / (1000 if duration.endswith("ms") else 1)
    return b


class SlowTM(ListTM):
    async def acquire(
        self, ctx: PluginContext, job_id: int, lock_timeout: float, params: Any, locker: Any
    ) -> list[Target]:
        await asyncio.sleep(0.3)
        return await super().acquire(ctx, job_id, lock_timeout, params, locker)


def history(store: MemoryStore) -> dict[str, list[tuple[int, int, str, str, str]]]:
    out: dict[str, list[tuple[int, int, str, str, str]]] = {}
    for e in store.test:
        if e.target is None:
            continue
        h = e.header
        out.setdefault(e.target.id, []).append(
            (h.run_id, h.test_attempt, h.test_name, h.step_label, e.name)
        )
    return out


def runs_started(store: MemoryStore) -> list[int]:
    return [e.payload["RunID"] for e in store.framework if e.name == "RunStarted"]


JobFactory = Callable[[list[int]], Job]  # gets a counter shared by one job's instances


def jobs() -> dict[str, tuple[JobFactory, float]]:
    """name -> (a fresh job, when to pause it)."""
    return {
        "mid-test": (
            lambda c: job_of(
                [bundle(Echo(), "a"), sleep("nap", "400ms"), bundle(Echo(), "b")], ListTM(TARGETS)
            ),
            0.15,
        ),
        "between-runs": (
            lambda c: job_of([bundle(Echo(), "a")], ListTM(TARGETS), runs=2, run_interval=0.5),
            0.2,
        ),
        "during-acquisition": (lambda c: job_of([bundle(Echo(), "a")], SlowTM(TARGETS)), 0.1),
        "during-cleanup": (
            lambda c: job_of(
                [bundle(Echo(), "a")], ListTM(TARGETS), cleanup=[sleep("tidy", "400ms")]
            ),
            0.15,
        ),
        "waiting-to-retry": (
            lambda c: job_of(
                [bundle(FailFirstCall(c), "flaky")], ListTM(TARGETS), retries=1, retry_interval=0.5
            ),
            0.2,
        ),
        "second-run-mid-test": (
            lambda c: job_of([sleep("nap", "300ms")], ListTM(TARGETS), runs=2, run_interval=0.1),
            0.55,
        ),
    }


def make_runner(store: MemoryStore, locker: InMemoryLocker) -> JobRunner:
    return JobRunner(
        sink=store,
        reader=store,
        reports=store,
        locker=locker,
        lock_duration=5.0,
        shutdown_timeout=3.0,
    )


@pytest.mark.parametrize("case", list(jobs()))
async def test_pause_and_resume_equals_an_uninterrupted_run(case: str) -> None:
    make, pause_at = jobs()[case]

    straight = MemoryStore()
    assert await make_runner(straight, InMemoryLocker()).run(make([0]), Scope()) is None

    store = MemoryStore()
    locker = InMemoryLocker()
    scope = Scope()
    asyncio.get_running_loop().call_later(pause_at, scope.pause.set)
    shared = [0]
    payload = await make_runner(store, locker).run(make(shared), scope)
    assert isinstance(payload, PausePayload), f"{case}: the job was not paused"
    # through JSON, as it is stored
    payload = PausePayload.from_json_obj(json.loads(json.dumps(payload.to_json_obj())))
    assert await make_runner(store, locker).run(make(shared), Scope(), payload) is None

    assert history(store) == history(straight)
    assert runs_started(store) == runs_started(straight)
    await locker.lock(99, 1.0, TARGETS)  # every target was unlocked at the end


async def test_paused_job_keeps_its_targets_locked() -> None:
    store = MemoryStore()
    locker = InMemoryLocker()
    scope = Scope()
    asyncio.get_running_loop().call_later(0.1, scope.pause.set)
    job = job_of([sleep("nap", "1s")], ListTM(TARGETS))
    payload = await make_runner(store, locker).run(job, scope)
    assert payload is not None and payload.targets is not None
    with pytest.raises(Exception, match=r"T1|T2|T3"):
        await locker.lock(99, 1.0, TARGETS)


async def test_cancel_releases_and_unlocks() -> None:
    from contest.errors import Cancelled

    store = MemoryStore()
    locker = InMemoryLocker()
    scope = Scope()
    tm = ListTM(TARGETS)
    asyncio.get_running_loop().call_later(0.1, scope.cancel.set)
    with pytest.raises(Cancelled):
        await make_runner(store, locker).run(job_of([sleep("nap", "5s")], tm), scope)
    assert tm.released == [TARGETS]
    await locker.lock(99, 1.0, TARGETS)
    names = [e.name for e in store.test if e.target is not None and e.target.id == "T1"]
    assert names == ["TargetAcquired", "TargetIn", "TargetReleased"]
