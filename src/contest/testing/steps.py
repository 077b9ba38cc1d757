"""ConTest's test-only steps: one well-behaved (``Test``), the rest misbehaving on purpose.

They exist to prove the runner survives every way a step can break the contract; plugin
authors can use ``Test`` and ``Noop`` as neighbours of their own step in tests.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from contest.errors import ContestError
from contest.teststep import (
    Cancelled,
    EventEmitter,
    Kind,
    Parameter,
    ParameterError,
    StepChannels,
    StepContext,
    StepParameters,
    StepResult,
    Target,
    TargetWithData,
    TestStep,
    for_each_target,
    for_each_target_with_resume,
)


class TestStepFixture(TestStep):
    """``Test``: fails targets by list or by chance, delays them, and emits an event at each
    stage (ConTest's runner tests are written against it)."""

    name = "Test"
    parameters = (
        Parameter("FailTargets", doc="a comma-separated list of target IDs to fail"),
        Parameter(
            "FailPct", Kind.INTEGER, minimum=0, maximum=100, doc="the chance to fail a target"
        ),
        Parameter(
            "DelayTargets",
            doc="ID=ms,... : how long each target takes (* for any other)",
        ),
    )
    events = (
        "TestStepRunningEvent",
        "TestStepFinishedEvent",
        "TestStartedEvent",
        "TestFinishedEvent",
        "TestFailedEvent",
    )

    def __init__(self) -> None:
        self.fail_pct = 0
        self.fail_targets: set[str] = set()
        self.delays: dict[str, float] = {}

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        self.fail_pct = params.get_int("FailPct") if not params.get_one("FailPct").is_empty() else 0
        ft = str(params.get_one("FailTargets"))
        self.fail_targets = {t for t in ft.split(",") if t}
        for entry in str(params.get_one("DelayTargets")).split(","):
            if not entry:
                continue
            tid, eq, ms = entry.partition("=")
            if not eq:
                raise ParameterError(f"DelayTargets: bad entry {entry!r} (want ID=ms)")
            try:
                self.delays[tid] = int(ms) / 1000
            except ValueError as exc:
                raise ParameterError(f"DelayTargets: bad delay in {entry!r}") from exc

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        await ev.emit("TestStepRunningEvent")

        async def one(ctx: StepContext, target: Target) -> None:
            await ctx.sleep(0.05)  # so that TargetIn is always before our own events
            await ev.emit("TestStartedEvent", target)
            delay = self.delays.get(target.id, self.delays.get("*", 0.0))
            if delay:
                await ctx.sleep(delay)
            if target.id in self.fail_targets or (
                self.fail_pct and random.randrange(100) < self.fail_pct
            ):
                await ev.emit("TestFailedEvent", target)
                raise ContestError("target failed")
            await ev.emit("TestFinishedEvent", target)

        await for_each_target(ctx, ch, one)
        await ev.emit("TestStepFinishedEvent")


class Noop(TestStep):
    """``Noop``: passes every target."""

    name = "Noop"
    parameters = ()

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async def one(ctx: StepContext, target: Target) -> None:
            return None

        await for_each_target(ctx, ch, one)


class Fail(TestStep):
    """``Fail``: fails every target."""

    name = "Fail"
    parameters = ()

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async def one(ctx: StepContext, target: Target) -> None:
            raise ContestError(f"Integration test failure for {target}")

        await for_each_target(ctx, ch, one)


class Crash(TestStep):
    """``Crash``: ``run`` fails at once with "TestStep crashed"."""

    name = "Crash"
    parameters = ()

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        raise ContestError("TestStep crashed")


class StepPanic(RuntimeError):
    """The unexpected exception the ``Panic`` step lets escape from ``run``."""


class Panic(TestStep):
    """``Panic``: an unexpected exception escapes ``run`` at once."""

    name = "Panic"
    parameters = ()

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        raise StepPanic("panic step")


class Hanging(TestStep):
    """``Hanging``: never reads its input and never returns (not even on cancel)."""

    name = "Hanging"
    parameters = ()

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        await asyncio.Event().wait()


class NoReturn(TestStep):
    """``NoReturn``: echoes every target, then never returns."""

    name = "NoReturn"
    parameters = ()

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async for target in ch.input:
            await ch.output.put(StepResult(target))
        await asyncio.Event().wait()


class Channels(TestStep):
    """``Channels``: echoes every target, then closes its output (an API violation)."""

    name = "Channels"
    parameters = ()

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async for target in ch.input:
            await ch.output.put(StepResult(target))
        ch.output.close()


class BadTargets(TestStep):
    """``BadTargets``: by target id, returns a copy (TGood), twice (TDup), never (TDrop), an
    invented extra (TExtra -> TExtra2), a renamed one (T1 -> T1XXX); fails on any other id."""

    name = "BadTargets"
    parameters = ()

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async for target in ch.input:
            if ctx.is_cancelled():
                raise Cancelled()
            tid = target.id
            if tid == "TDrop":
                continue
            elif tid == "TGood":
                await ch.output.put(StepResult(Target(target.id, target.fqdn)))
            elif tid == "TDup":
                await ch.output.put(StepResult(target))
                await ch.output.put(StepResult(target))
            elif tid == "TExtra":
                await ch.output.put(StepResult(target))
                await ch.output.put(StepResult(Target("TExtra2")))
            elif tid == "T1":
                await ch.output.put(StepResult(Target("T1XXX")))
            else:
                raise ContestError("Unexpected target name")


class SlowEcho(TestStep):
    """``SlowEcho``: waits ``sleep`` seconds per target, logs ``text``, passes the target."""

    name = "SlowEcho"
    parameters = (
        Parameter("text", required=True, templated=True, doc="what to log per target"),
        Parameter("sleep", Kind.NUMBER, required=True, minimum=0, doc="seconds per target"),
    )

    def __init__(self) -> None:
        self.seconds = 0.0

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        self.seconds = float(str(params.get_one("sleep")))

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        text = params.get_one("text")

        async def one(ctx: StepContext, target: Target) -> None:
            await ctx.sleep(self.seconds)
            ctx.log.info("slowecho %s: %s", target.id, text.expand(target))

        await for_each_target(ctx, ch, one)


class ReadMeta(TestStep):
    """``readmeta``: emits ``MetadataEvent`` with the job and run ids it was given."""

    name = "readmeta"
    parameters = ()
    events = ("MetadataEvent",)

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async def one(ctx: StepContext, target: Target) -> None:
            if not ctx.job_id or not ctx.run_id:
                raise ContestError("job id or run id missing from the step context")
            await ev.emit("MetadataEvent", None, {"job_id": ctx.job_id, "run_id": ctx.run_id})

        await for_each_target(ctx, ch, one)


class Ticker(TestStep):
    """``Ticker``: counts ``ticks`` ticks per target, one every ``interval`` seconds, each a
    ``Tick`` event ``{"N": n, "Text": text}`` and the target's step variable ``count`` set to
    n. It supports pause and keeps checkpoints through ``for_each_target_with_resume``: the
    count so far is the target's data, so a resumed target (after a pause, or a takeover from
    the step's checkpoint) goes on from it; a target that starts afresh ticks from 1."""

    name = "Ticker"
    events = ("Tick",)
    supports_pause = True
    parameters = (
        Parameter("ticks", Kind.NUMBER, required=True, minimum=1, doc="ticks per target"),
        Parameter("interval", Kind.NUMBER, required=True, minimum=0, doc="seconds per tick"),
        Parameter("text", required=True, templated=True, doc="said by each Tick (templated)"),
    )

    def __init__(self) -> None:
        self.ticks = 0
        self.interval = 0.0

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        self.ticks = int(str(params.get_one("ticks")))
        self.interval = float(str(params.get_one("interval")))

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        text = params.get_one("text")

        async def one(ctx: StepContext, twd: TargetWithData) -> None:
            said = text.expand(twd.target)  # reads the variables a template names
            n = twd.data = int(twd.data or 0)  # from the start: a point to go on from too
            while n < self.ticks:
                await ctx.sleep(self.interval)  # raises Paused: twd.data is saved as it is
                n += 1
                assert ctx.variables is not None
                ctx.variables.add(twd.target.id, "count", n)
                await ev.emit("Tick", twd.target, {"N": n, "Text": said})
                twd.data = n  # what a checkpoint (or a pause) resumes from

        await for_each_target_with_resume(ctx, ch, resume_state, 1, one)


def _loader(cls: type[TestStep]) -> Callable[[], tuple[str, Any, list[str]]]:
    def load() -> tuple[str, Any, list[str]]:
        return cls.name, cls, list(cls.events)

    load.__name__ = f"load_{cls.name.lower()}"
    return load


load_test = _loader(TestStepFixture)
load_noop = _loader(Noop)
load_fail = _loader(Fail)
load_crash = _loader(Crash)
load_panic = _loader(Panic)
load_hanging = _loader(Hanging)
load_noreturn = _loader(NoReturn)
load_channels = _loader(Channels)
load_badtargets = _loader(BadTargets)
load_slowecho = _loader(SlowEcho)
load_readmeta = _loader(ReadMeta)
load_ticker = _loader(Ticker)
