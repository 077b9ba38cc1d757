"""The step conformance suite catches what it is for: each misbehaving step below fails the case
about its mistake, with a message that says what happened; well-behaved steps pass them all."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from contest.errors import EventNotAllowed
from contest.testing import steps as kit
from contest.testing.conformance import (
    CASES,
    ConformanceFailure,
    StepCase,
    StepUnderTest,
    run_conformance,
)
from contest.teststep import (
    Kind,
    Parameter,
    StepContext,
    Target,
    TargetWithData,
    TestStep,
    for_each_target,
    for_each_target_with_resume,
)

CASE = {c.name: c for c in CASES}


class Swallower(TestStep):
    """Tries an event it did not declare, and swallows the refusal."""

    name = "Swallower"
    events = ("Fine",)
    parameters = ()

    async def run(self, ctx: Any, ch: Any, params: Any, ev: Any, resume_state: Any) -> None:
        async def one(ctx: StepContext, target: Target) -> None:
            await ev.emit("Fine", target)
            with contextlib.suppress(EventNotAllowed):
                await ev.emit("Sneaky", target)

        await for_each_target(ctx, ch, one)


class Leaver(TestStep):
    """Leaves a task behind that emits once the step has returned."""

    name = "Leaver"
    events = ("Late",)
    parameters = ()
    left: set[asyncio.Task[None]] = set()

    async def run(self, ctx: Any, ch: Any, params: Any, ev: Any, resume_state: Any) -> None:
        async def later() -> None:
            await asyncio.sleep(0.05)
            await ev.emit("Late")

        task = asyncio.ensure_future(later())
        Leaver.left.add(task)
        task.add_done_callback(Leaver.left.discard)

        async def one(ctx: StepContext, target: Target) -> None:
            return None

        await for_each_target(ctx, ch, one)


class Slow(TestStep):
    """Takes its time per target; ``supports_pause`` says it pauses, which it does not."""

    name = "Slow"
    supports_pause = True
    parameters = (Parameter("seconds", Kind.NUMBER, default=0.5),)

    async def run(self, ctx: Any, ch: Any, params: Any, ev: Any, resume_state: Any) -> None:
        async def one(ctx: StepContext, target: Target) -> None:
            await ctx.sleep(0.5)  # for_each_target: a pause does not interrupt it

        await for_each_target(ctx, ch, one)


class Pauser(TestStep):
    """Pauses with its targets, but does not declare supports_pause."""

    name = "Pauser"
    parameters = ()

    async def run(self, ctx: Any, ch: Any, params: Any, ev: Any, resume_state: Any) -> None:
        async def one(ctx: StepContext, twd: TargetWithData) -> None:
            twd.data = twd.data or "waiting"
            await ctx.sleep(0.5)

        await for_each_target_with_resume(ctx, ch, resume_state, 1, one)


class Deaf(TestStep):
    """Hears a cancel only after 3 seconds."""

    name = "Deaf"
    parameters = ()

    async def run(self, ctx: Any, ch: Any, params: Any, ev: Any, resume_state: Any) -> None:
        async def one(ctx: StepContext, target: Target) -> None:
            await asyncio.sleep(3)

        await for_each_target(ctx, ch, one)


def subject(factory: Any, **kw: Any) -> StepUnderTest:
    return StepUnderTest(factory, cancel_within=1.0, pause_within=5.0, quiet=0.2, **kw)


@pytest.mark.parametrize(
    ("factory", "case", "message"),
    [
        (Swallower, "declared_events_only", "the step emitted events it does not declare: Sneaky"),
        (Leaver, "no_output_after_returning", "after run returned, the step still gave event Late"),
        (Slow, "pause_with_targets_in_flight", "declares supports_pause, but finished them all"),
        (Pauser, "pause_with_targets_in_flight", "does not declare supports_pause = True"),
        (Deaf, "cancel_with_targets_in_flight", "did not return within 1s"),
        (kit.Crash, "targets_in_and_out_once", "StepCrashed: test step subject paniced"),
        (kit.BadTargets, "targets_in_and_out_once", "returned unexpected result for T1XXX"),
        (kit.NoReturn, "targets_in_and_out_once", "StepsNeverReturned: test step [subject] did"),
        (kit.NoReturn, "cancel_with_targets_in_flight", "did not return within 1s"),
        (kit.Channels, "targets_in_and_out_once", "closed output channels"),
    ],
)  # fmt: skip
async def test_a_misbehaving_step_fails_its_case(factory: Any, case: str, message: str) -> None:
    targets = ["T1", "T2", "T3"] if factory is not kit.BadTargets else ["TGood", "T1", "T3"]
    with pytest.raises(ConformanceFailure) as info:
        await CASE[case].run(subject(factory, targets=targets))
    assert message in str(info.value)
    await asyncio.sleep(0.1)  # let a Leaver's task end


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize(
    ("factory", "params"),
    [
        (kit.TestStepFixture, {"DelayTargets": ["*=300"]}),
        (kit.Noop, {}),
        (kit.SlowEcho, {"text": ["hi {{ .ID }}"], "sleep": ["0.3"]}),
    ],
    ids=["Test", "Noop", "SlowEcho"],
)
async def test_well_behaved_fixtures_pass(factory: Any, params: Any, case: StepCase) -> None:
    await case.run(subject(factory, parameters=params))


async def test_run_conformance_collects_the_failures() -> None:
    failures = await run_conformance(subject(Swallower))
    # every case that runs the step looks at what it emitted
    assert sorted(failures) == sorted(c.name for c in CASES if c.name != "parameters_are_accepted")
    assert all(isinstance(f, ConformanceFailure) for f in failures.values())
    assert [c.name for c in CASES] == [
        "parameters_are_accepted",
        "targets_in_and_out_once",
        "declared_events_only",
        "no_output_after_returning",
        "pause_without_targets_in_flight",
        "pause_with_targets_in_flight",
        "cancel_with_targets_in_flight",
    ]
    assert all(c.doc for c in CASES)
