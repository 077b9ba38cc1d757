"""Shared helpers of the core conformance tests: task-leak checks, event filters, and small
steps written only against the public contract (``contest.teststep``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from contest.events import MemoryEventSink, TestEvent
from contest.teststep import (
    Cancelled,
    EventEmitter,
    Paused,
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

# --- tasks ---------------------------------------------------------------------------------------


async def leftover_tasks(grace: float = 0.2) -> set[asyncio.Task[Any]]:
    """Tasks other than the caller still alive after a short grace (tasks that were cancelled
    need a loop iteration or two to finish; anything still there after ``grace`` leaked)."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    deadline = loop.time() + grace
    while True:
        others = {t for t in asyncio.all_tasks() if t is not me and not t.done()}
        if not others or loop.time() >= deadline:
            return others
        await asyncio.sleep(0.005)


async def assert_no_task_leaks(grace: float = 0.2) -> None:
    left = await leftover_tasks(grace)
    assert not left, f"leaked tasks: {left}"


# --- events --------------------------------------------------------------------------------------

ANY: Any = object()


def tuples(
    sink: MemoryEventSink,
    *,
    label: str | None = None,
    target: Any = ANY,
    run_id: int | None = None,
    names: set[str] | None = None,
) -> list[tuple[str, str | None, str, Any]]:
    """Events as (label, target id, name, payload), filtered."""
    out = []
    for ev in sink.test:
        tid = ev.target.id if ev.target is not None else None
        if label is not None and ev.header.step_label != label:
            continue
        if target is not ANY and tid != target:
            continue
        if run_id is not None and ev.header.run_id != run_id:
            continue
        if names is not None and ev.name not in names:
            continue
        out.append((ev.header.step_label, tid, ev.name, ev.payload))
    return out


def with_run(sink: MemoryEventSink, **kw: Any) -> list[tuple[int, str, str | None, str]]:
    """Events as (run, label, target id, name) for the events ``tuples`` would select."""
    label = kw.get("label")
    target = kw.get("target", ANY)
    out = []
    for ev in sink.test:
        tid = ev.target.id if ev.target is not None else None
        if label is not None and ev.header.step_label != label:
            continue
        if target is not ANY and tid != target:
            continue
        out.append((ev.header.run_id, ev.header.step_label, tid, ev.name))
    return out


def target_events(label: str, tid: str, *names: Any) -> list[tuple[str, str, str, Any]]:
    """[(label, tid, name, payload)...]; a name may be a (name, payload) pair."""
    out = []
    for n in names:
        if isinstance(n, tuple):
            out.append((label, tid, n[0], n[1]))
        else:
            out.append((label, tid, n, None))
    return out


def passed(label: str, tid: str) -> list[tuple[str, str, str, Any]]:
    """The events of a target a Test step passed."""
    return target_events(
        label, tid, "TargetIn", "TestStartedEvent", "TestFinishedEvent", "TargetOut"
    )


def failed(label: str, tid: str, msg: str = "target failed") -> list[tuple[str, str, str, Any]]:
    """The events of a target a Test step failed."""
    return target_events(
        label, tid, "TargetIn", "TestStartedEvent", "TestFailedEvent", ("TargetErr", {"Error": msg})
    )


def step_pair(label: str) -> list[tuple[str, None, str, None]]:
    return [
        (label, None, "TestStepRunningEvent", None),
        (label, None, "TestStepFinishedEvent", None),
    ]


def count_by_target(events: list[TestEvent], label: str, name: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ev in events:
        if ev.header.step_label == label and ev.name == name and ev.target is not None:
            counts[ev.target.id] = counts.get(ev.target.id, 0) + 1
    return counts


def decode_state(state: bytes) -> dict[str, Any]:
    obj = json.loads(state)
    assert isinstance(obj, dict)
    return obj


# --- steps written against the public contract only ---------------------------------------------


class Echo(TestStep):
    """Passes every target at once (reads the input by hand, no helper)."""

    name = "Echo"

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.resume_states: list[bytes | None] = []

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        self.resume_states.append(resume_state)
        async for target in ch.input:
            self.seen.append(target.id)
            await ch.output.put(StepResult(target))


class NilResult(TestStep):
    """Reports a result without a target."""

    name = "NilResult"

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async for _target in ch.input:
            await ch.output.put(StepResult(None))


class EarlyReturn(TestStep):
    """Takes ``take`` targets, reports them, and returns while others still wait to enter."""

    name = "EarlyReturn"

    def __init__(self, take: int = 1) -> None:
        self.take = take
        self.seen: list[str] = []

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        if self.take == 0:
            return
        async for target in ch.input:
            self.seen.append(target.id)
            await ch.output.put(StepResult(target))
            if len(self.seen) >= self.take:
                return


class PausesUnasked(TestStep):
    """Raises ``Paused`` although nobody asked for a pause (after taking ``take`` targets)."""

    name = "PausesUnasked"

    def __init__(self, take: int = 0) -> None:
        self.take = take

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        got = 0
        if self.take:
            async for _target in ch.input:
                got += 1
                if got >= self.take:
                    break
        raise Paused({"unasked": True})


async def until_paused(ctx: StepContext) -> None:
    """Wait for the pause; ``Cancelled`` on cancel."""
    try:
        while True:
            await ctx.sleep(3600)
    except Paused:
        return


class NeverReads(TestStep):
    """Never reads its input. ``until`` says what ends it: "cancel" (returns Cancelled), "pause"
    (returns None on pause), "pause_state" (raises Paused on pause), or None (never)."""

    name = "NeverReads"

    def __init__(self, until: str | None = "cancel") -> None:
        self.until = until
        self.started = False

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        self.started = True
        if self.until == "cancel":
            await ctx.wait_cancelled()
            raise Cancelled()
        if self.until == "pause":
            await until_paused(ctx)
            return
        if self.until == "pause_state":
            await until_paused(ctx)
            raise Paused({"took": 0})
        await asyncio.Event().wait()


class TakeThenRaise(TestStep):
    """Takes ``take`` targets (reporting none), then an exception escapes ``run``."""

    name = "TakeThenRaise"

    def __init__(self, take: int = 1) -> None:
        self.take = take

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        got = 0
        async for _target in ch.input:
            got += 1
            if got >= self.take:
                break
        raise ValueError("boom while targets are being added")


class Holder(TestStep):
    """Keeps every target it takes until pause, then pauses with them in its state. On resume
    it reports the targets of its state (``fail`` ids fail), or, with ``release=False``, holds
    them again. Records the resume states it was given."""

    name = "Holder"

    def __init__(
        self,
        extra: dict[str, Any] | None = None,
        fail: tuple[str, ...] = (),
        release: bool = True,
        on_held: Callable[[], Any] | None = None,
    ) -> None:
        self.on_held = on_held  # called once it holds every target it will get (e.g. to pause)
        self.extra = extra or {}
        self.fail = set(fail)
        self.release = release
        self.resume_states: list[bytes | None] = []
        self.input_closed_at_start: bool | None = None

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        self.resume_states.append(resume_state)
        self.input_closed_at_start = ch.input.closed
        held: list[dict[str, Any]] = []
        if resume_state:
            for obj in json.loads(resume_state).get("held", []):
                if self.release:
                    t = Target.from_json_obj(obj)
                    err = "held target failed" if t.id in self.fail else None
                    await ch.output.put(StepResult(t, err))
                else:
                    held.append(obj)
        async for target in ch.input:
            held.append(target.to_json_obj())
        if not held:
            return
        if self.on_held is not None:
            self.on_held()
        await until_paused(ctx)
        raise Paused({**self.extra, "held": held})


class ResumableSleep(TestStep):
    """``for_each_target_with_resume``: each target sleeps ``seconds`` (Paused on pause)."""

    name = "ResumableSleep"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async def fn(ctx: StepContext, twd: TargetWithData) -> None:
            twd.data = {"slept": True}
            await ctx.sleep(self.seconds)

        await for_each_target_with_resume(ctx, ch, resume_state, 1, fn)


class NaiveSleep(TestStep):
    """``for_each_target``: each target sleeps ``seconds`` (a pause does not interrupt it)."""

    name = "NaiveSleep"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.finished: list[str] = []

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async def fn(ctx: StepContext, target: Target) -> None:
            await ctx.sleep(self.seconds)
            self.finished.append(target.id)

        await for_each_target(ctx, ch, fn)


class Emits(TestStep):
    """Declares ``Declared``; emits the events named in ``to_emit`` for every target."""

    name = "Emits"
    events = ("Declared",)

    def __init__(self, *to_emit: str) -> None:
        self.to_emit = to_emit

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async def fn(ctx: StepContext, target: Target) -> None:
            for name in self.to_emit:
                await ev.emit(name, target, {"n": name})

        await for_each_target(ctx, ch, fn)


class TriggerSink(MemoryEventSink):
    """Calls ``then`` (soon, not from inside the write) the first time ``when(event)`` holds for
    a written event: signals a run at a precise point instead of after a guessed delay."""

    def __init__(self, when: Callable[[TestEvent], bool], then: Callable[[], Any]) -> None:
        super().__init__()
        self.when = when
        self.then = then
        self.fired = False

    def write_test_event(self, event: TestEvent) -> None:
        super().write_test_event(event)
        if not self.fired and self.when(event):
            self.fired = True
            asyncio.get_running_loop().call_soon(self.then)


def entered(label: str, *ids: str) -> Callable[[TestEvent], bool]:
    """A ``when`` for TriggerSink: every one of ``ids`` has entered step ``label``."""
    waiting = set(ids)

    def when(ev: TestEvent) -> bool:
        if ev.name == "TargetIn" and ev.header.step_label == label and ev.target is not None:
            waiting.discard(ev.target.id)
        return not waiting

    return when
