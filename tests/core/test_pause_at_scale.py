"""Pause at scale: 10,000 targets, half inside a resumable step (the built-in ``Sleep``) and half
held back by an earlier step, paused; the resume state, resumed in a fresh runner, finishes every
target exactly once: one TargetIn and one TargetOut per target per step across both runs."""

from __future__ import annotations

import asyncio
import gc
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from core_kit import Echo

from contest.bundle import Test, TestStepBundle, new_step_bundle
from contest.events import MemoryEventSink
from contest.events import TestEvent as _Event
from contest.registry import default_registry
from contest.runner.test_runner import TestRunner
from contest.signals import Scope
from contest.target import Target
from contest.teststep import (
    EventEmitter,
    StepChannels,
    StepContext,
    StepParameters,
    TestStep,
    for_each_target,
)


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    yield
    gc.collect()  # do not leave 10,000 targets' garbage to the timing of the next test


N = 10_000
HALF = N // 2
SLEEP = "3s"


class Gate(TestStep):
    """Passes the first ``HALF`` targets at once and holds the others until a pause (no resume
    support: on pause it finishes what it holds, so those targets stop before the next step)."""

    name = "Gate"

    def __init__(self) -> None:
        self.seen = 0
        self.holding = 0
        self.all_held = asyncio.Event()

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async def fn(ctx: StepContext, target: Target) -> None:
            self.seen += 1
            if self.seen <= HALF:
                return
            self.holding += 1
            if self.holding == N - HALF:
                self.all_held.set()
            await ctx.wait_paused()

        await for_each_target(ctx, ch, fn)


class CountingSink(MemoryEventSink):
    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.half_in_sleep = asyncio.Event()

    def write_test_event(self, event: _Event) -> None:
        super().write_test_event(event)
        key = (event.header.step_label, event.name)
        self.counts[key] += 1
        if key == ("Sleep", "TargetIn") and self.counts[key] == HALF:
            self.half_in_sleep.set()


async def bundles(gate: Gate) -> list[TestStepBundle]:
    sleep = await new_step_bundle(default_registry(), "Sleep", "Sleep", {"duration": [SLEEP]})
    return [TestStepBundle(gate, "Gate"), sleep, TestStepBundle(Echo(), "After")]


async def test_pause_10000_targets_and_resume_exactly_once() -> None:
    targets = [Target(f"T{i:05d}") for i in range(N)]
    sink = CountingSink()
    scope = Scope()
    gate = Gate()
    runner = TestRunner(sink, shutdown_timeout=5)
    run1 = asyncio.ensure_future(
        runner.run(Test("Scale", await bundles(gate)), targets, job_id=7, run_id=1, scope=scope)
    )

    async def half_and_half() -> None:
        await gate.all_held.wait()
        await sink.half_in_sleep.wait()

    await asyncio.wait_for(half_and_half(), 10)
    assert gate.holding == N - HALF and sink.counts[("Sleep", "TargetIn")] == HALF
    scope.pause.set()
    first = await asyncio.wait_for(run1, 10)
    assert first.paused and first.resume_state

    state: dict[str, Any] = json.loads(first.resume_state)
    where = Counter((e.get("S", 0), e["P"]) for e in state["T"].values())
    assert where == {(1, 3): HALF, (1, 1): HALF}  # inside Sleep / waiting to enter it
    sleep_blob = state["SRS"][1]["json"]
    assert len(sleep_blob["TWD"]) == HALF
    assert state["SRS"][0] is None and state["SRS"][2] is None
    assert first.targets == {}  # nobody finished
    assert sink.counts[("Gate", "TargetOut")] == N
    assert sink.counts[("Sleep", "TargetOut")] == 0

    # resume in a fresh runner, with fresh target objects and bundles
    runner2 = TestRunner(sink, shutdown_timeout=5)
    gate2 = Gate()
    second = await asyncio.wait_for(
        runner2.run(
            Test("Scale", await bundles(gate2)),
            [Target(t.id) for t in targets],
            job_id=7,
            run_id=2,
            scope=Scope(),
            resume_state=first.resume_state,
        ),
        15,
    )
    assert not second.paused
    assert second.targets == {t.id: None for t in targets}
    assert gate2.seen == 0  # no target goes back through the gate

    per: dict[tuple[str, str], Counter[str]] = {}
    for ev in sink.test:
        if ev.target is not None:
            per.setdefault((ev.header.step_label, ev.name), Counter())[ev.target.id] += 1
    ids = {t.id for t in targets}
    for label in ("Gate", "Sleep", "After"):
        for name in ("TargetIn", "TargetOut"):
            c = per.get((label, name), Counter())
            assert set(c) == ids, (label, name, len(c))
            assert set(c.values()) == {1}, (label, name)
    assert ("Sleep", "TargetErr") not in per and ("Gate", "TargetErr") not in per
    # the targets that were inside Sleep entered it in run 1 only; the others in run 2
    sleep_in_runs = Counter(
        ev.header.run_id
        for ev in sink.test
        if ev.header.step_label == "Sleep" and ev.name == "TargetIn"
    )
    assert sleep_in_runs == {1: HALF, 2: HALF}
