"""Cancellation is bounded and wins over pause (ConTest's ``pkg/runner/test_runner.go``); nothing is
left running after a run, whatever the steps did (every test here also goes through conftest's task
check)."""

from __future__ import annotations

import asyncio

import pytest
from core_kit import (
    NaiveSleep,
    ResumableSleep,
    TriggerSink,
    assert_no_task_leaks,
    entered,
    target_events,
)

from contest.bundle import Test, TestStepBundle
from contest.errors import Cancelled, StepCancelledWithoutRequest
from contest.events import MemoryEventSink
from contest.runner.test_runner import TestRunner
from contest.signals import Scope
from contest.target import Target
from contest.testing import run_steps
from contest.testing.steps import Hanging, NoReturn
from contest.teststep import (
    EventEmitter,
    StepChannels,
    StepContext,
    StepParameters,
    TargetWithData,
    TestStep,
    for_each_target_with_resume,
)


@pytest.mark.parametrize("step_cls", [Hanging, NoReturn])
async def test_step_ignoring_cancel_is_abandoned_after_shutdown_timeout(step_cls: type) -> None:
    step = step_cls()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    out = await asyncio.wait_for(
        run_steps([(step, "S")], ["T1", "T2"], cancel_after=0.05, shutdown_timeout=0.3), 3
    )
    elapsed = loop.time() - t0
    assert isinstance(out.error, Cancelled)
    assert out.resume_state is None
    assert 0.3 <= elapsed < 1.5
    # abandoned: its task was cancelled, nothing of it keeps running
    await assert_no_task_leaks()


async def test_cancel_drops_results_of_work_in_flight() -> None:
    step = NaiveSleep(5)
    out = await asyncio.wait_for(run_steps([(step, "S")], ["T1", "T2"], cancel_after=0.05), 3)
    assert isinstance(out.error, Cancelled)
    assert step.finished == []
    for tid in ("T1", "T2"):
        assert out.events(target=tid) == target_events("S", tid, "TargetIn")
    assert [e for e in out.events() if e[2] == "TestError"] == []


async def test_cancel_wins_over_pause_naive_step() -> None:
    """Pause first (a naive step keeps working), then cancel: the run is cancelled."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    out = await asyncio.wait_for(
        run_steps([(NaiveSleep(5), "S")], ["T1"], pause_after=0.05, cancel_after=0.1), 3
    )
    assert isinstance(out.error, Cancelled)
    assert out.resume_state is None
    assert loop.time() - t0 < 1


@pytest.mark.parametrize("order", ["pause-then-cancel", "cancel-then-pause"])
async def test_cancel_wins_over_pause_resumable_step(order: str) -> None:
    def both(scope: Scope) -> None:
        def fire() -> None:
            if order == "pause-then-cancel":
                scope.pause.set()
                scope.cancel.set()
            else:
                scope.cancel.set()
                scope.pause.set()

        asyncio.get_running_loop().call_later(0.05, fire)

    out = await asyncio.wait_for(
        run_steps(
            [(ResumableSleep(5), "S1"), (ResumableSleep(5), "S2")], ["T1", "T2"], on_start=both
        ),
        3,
    )
    assert isinstance(out.error, Cancelled)
    assert out.result is None


async def test_cancel_after_pause_took_effect_still_cancels() -> None:
    """Paused, the resumable step returned its state, a naive one is still finishing: a cancel
    now makes the whole run a cancellation, with no state."""

    class Split(TestStep):
        """Resumable: Tfast passes at once, the others sleep 5 s."""

        name = "Split"

        async def run(
            self,
            ctx: StepContext,
            ch: StepChannels,
            params: StepParameters,
            ev: EventEmitter,
            resume_state: bytes | None,
        ) -> None:
            async def fn(ctx: StepContext, twd: TargetWithData) -> None:
                if twd.target.id != "Tfast":
                    await ctx.sleep(5)

            await for_each_target_with_resume(ctx, ch, resume_state, 1, fn)

    naive = NaiveSleep(5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    scope = Scope()
    paused_at: list[float] = []

    def pause_then_cancel() -> None:
        scope.pause.set()
        paused_at.append(loop.time())
        loop.call_later(0.1, scope.cancel.set)

    sink = TriggerSink(entered("N", "Tfast"), pause_then_cancel)
    out = await asyncio.wait_for(
        run_steps([(Split(), "R"), (naive, "N")], ["Tfast", "Tslow"], scope=scope, sink=sink),
        3,
    )
    assert paused_at
    assert isinstance(out.error, Cancelled)
    assert out.resume_state is None
    assert loop.time() - t0 < 1
    assert naive.finished == []
    assert out.events(target="Tfast")[-1] == ("N", "Tfast", "TargetIn", None)


async def test_step_returning_cancelled_unasked_is_a_step_error() -> None:
    class Quitter(TestStep):
        name = "Quitter"

        async def run(
            self,
            ctx: StepContext,
            ch: StepChannels,
            params: StepParameters,
            ev: EventEmitter,
            resume_state: bytes | None,
        ) -> None:
            raise Cancelled()

    out = await asyncio.wait_for(run_steps([(Quitter(), "S")], ["T1"]), 3)
    assert isinstance(out.error, StepCancelledWithoutRequest)
    assert out.events(target=None) == [("S", None, "TestError", str(out.error))]


async def test_runner_task_cancelled_from_outside_leaves_nothing() -> None:
    sink = MemoryEventSink()
    runner = TestRunner(sink, shutdown_timeout=5)
    test = Test(
        "t",
        [
            TestStepBundle(ResumableSleep(5), "A"),
            TestStepBundle(NaiveSleep(5), "B"),
            TestStepBundle(Hanging(), "C"),
        ],
    )
    targets = [Target(f"T{i}") for i in range(50)]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(runner.run(test, targets, scope=Scope()), 0.1)
    await assert_no_task_leaks()


async def test_cancel_with_many_targets_in_many_steps_is_prompt() -> None:
    ids = [f"T{i}" for i in range(2000)]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    out = await asyncio.wait_for(
        run_steps(
            [(NaiveSleep(0.01), "A"), (ResumableSleep(10), "B"), (NaiveSleep(10), "C")],
            ids,
            cancel_after=0.3,
            shutdown_timeout=5,
        ),
        10,
    )
    assert isinstance(out.error, Cancelled)
    assert loop.time() - t0 < 2
    ends = [e for e in out.events(label="B") if e[2] in ("TargetOut", "TargetErr")]
    assert ends == []
