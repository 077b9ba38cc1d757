"""The step conformance suite: the cases every step must handle, run against your step.

The runner already turns a broken contract into a step error (a lost target, a result given
twice, a step that never returns); these cases put a step in the situations where such breaks
happen, and check what the runner cannot: that a pause is handled the way the step declares
(``supports_pause``), that a cancelled step returns within a bound, that nothing is reported or
emitted once ``run`` has returned, and that only declared events are emitted (even ones the step
tried and swallowed the refusal of). They are plain coroutines, as the locker suite's
(:mod:`contest.testing.lockers`); with pytest and pytest-asyncio (``asyncio_mode = "auto"``)::

    import pytest
    from contest.testing.conformance import CASES, StepUnderTest

    SUBJECT = StepUnderTest(MyStep, {"duration": ["1s"]})

    @pytest.mark.parametrize("case", CASES, ids=str)
    async def test_my_step(case):
        await case.run(SUBJECT)

Give parameters with which a target takes a moment (a second is plenty): the pause cases pause
while targets are inside the step, and a step that declares ``supports_pause`` must then save
them rather than finish them. A failure raises :class:`ConformanceFailure` saying what happened.

How the cases steer a step: a *gate* step (part of this module, not a plugin) stands before it and
holds back the targets a case wants kept out, so the step can be caught with targets in flight and
its input still open, or with none in flight; the gate pauses and resumes like any step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from contest.bundle import TestStepBundle, validate_step
from contest.context import StepContext
from contest.errors import Cancelled, Paused
from contest.events import (
    FRAMEWORK_TEST_EVENTS,
    TARGET_ERR,
    TARGET_IN,
    TARGET_OUT,
    EventEmitter,
    MemoryEventSink,
)
from contest.params import StepParameters
from contest.resume import TestRunState
from contest.signals import Scope
from contest.target import Target
from contest.testing.harness import RunOutcome, run_steps
from contest.testing.lockers import ConformanceFailure
from contest.teststep import StepChannels, StepOutput, StepResult, TestStep

__all__ = [
    "CASES",
    "ConformanceFailure",
    "StepCase",
    "StepUnderTest",
    "run_conformance",
]

GATE = "gate"


@dataclass
class StepUnderTest:
    """The step to check, and how to run it.

    ``factory`` makes a new instance (the class itself, usually): every run gets its own, as a
    job's runs and a resumed job do. ``parameters`` are the step's, as decoded JSON
    (``{"duration": ["1s"]}``); ``targets`` at least two. ``events`` are the names the step may
    emit (default: its class's ``events``). ``cancel_within`` bounds how long a cancelled step may
    take to return; ``pause_within``, how long a pause may take (a step that does not support
    pausing finishes its targets in flight meanwhile). ``quiet`` is how long the suite watches
    for output after the step returned.
    """

    factory: Callable[[], TestStep]
    parameters: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    targets: Sequence[Target | str] = ("T1", "T2", "T3")
    events: Sequence[str] | None = None
    label: str = "subject"
    cancel_within: float = 5.0
    pause_within: float = 30.0
    quiet: float = 0.3

    def make(self) -> TestStep:
        return self.factory()

    @property
    def target_list(self) -> list[Target]:
        return [t if isinstance(t, Target) else Target(t) for t in self.targets]

    @property
    def declared_events(self) -> frozenset[str]:
        if self.events is not None:
            return frozenset(self.events)
        return frozenset(getattr(self.make(), "events", ()))


# --- watching a step ---------------------------------------------------------------------------


@dataclass
class _Watch:
    """What one instance of the step did, seen from around its ``run``."""

    emitted: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)  # output or events after run returned
    returned: float | None = None  # loop time
    outcome: BaseException | None = None

    def after_return(self, what: str) -> None:
        if self.returned is not None:
            self.late.append(what)


class _Emitter:
    """The step's emitter, recording every name it is asked to emit (allowed or not)."""

    def __init__(self, inner: EventEmitter, watch: _Watch) -> None:
        self._inner = inner
        self._watch = watch

    @property
    def header(self) -> Any:
        return self._inner.header

    async def emit(self, name: str, target: Target | None = None, payload: Any = None) -> None:
        self._watch.emitted.append(name)
        self._watch.after_return(f"event {name}")
        await self._inner.emit(name, target, payload)


class _Watched(TestStep):
    """The step under test, with its channels and emitter watched."""

    name = "watched"

    def __init__(self, inner: TestStep, watch: _Watch) -> None:
        self.inner = inner
        self.watch = watch

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        watch = self.watch
        inner_output = ch.output

        def route(result: StepResult) -> None:
            tid = result.target.id if result.target is not None else None
            watch.after_return(f"a result for {tid}")
            inner_output.put_nowait(result)

        channels = StepChannels(ch.input, StepOutput(route, inner_output.close))
        emitter = cast(EventEmitter, _Emitter(ev, watch))
        try:
            await self.inner.run(ctx, channels, params, emitter, resume_state)
        except BaseException as exc:
            watch.outcome = exc
            raise
        finally:
            watch.returned = asyncio.get_running_loop().time()


class _Gate(TestStep):
    """Passes targets on at once, except the ones it was told to hold; holds those until a
    pause (then saves them) or a cancel. Resumed, it lets the saved ones through first."""

    name = "gate"

    def __init__(self, hold: Iterable[str] = ()) -> None:
        self.hold = set(hold)

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        if resume_state:
            for obj in json.loads(resume_state):
                await ch.output.put(StepResult(Target.from_json_obj(obj)))
        held: list[Target] = []
        async for target in ch.input:
            if target.id in self.hold:
                held.append(target)
            else:
                await ch.output.put(StepResult(target))
        if not held:
            return
        waiting = [
            asyncio.ensure_future(ctx.wait_paused()),
            asyncio.ensure_future(ctx.wait_cancelled()),
        ]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiting:
                w.cancel()
        if ctx.is_cancelled():
            raise Cancelled()
        raise Paused([t.to_json_obj() for t in held])


# --- running ----------------------------------------------------------------------------------


@dataclass
class _Run:
    """One run of the step (behind the gate), its watch, and a way to steer it."""

    subject: StepUnderTest
    hold: Sequence[str] = ()
    resume_state: bytes | None = None
    sink: MemoryEventSink = field(default_factory=MemoryEventSink)
    scope: Scope = field(default_factory=Scope)
    shutdown_timeout: float | None = None
    watch: _Watch = field(default_factory=_Watch)
    task: asyncio.Task[RunOutcome] | None = None

    async def start(self) -> None:
        s = self.subject
        step = s.make()
        params = StepParameters.from_values(s.parameters)
        await validate_step(step, StepContext(scope=Scope(), step_label=s.label), params)
        steps = [
            TestStepBundle(_Gate(self.hold), GATE, StepParameters(), frozenset()),
            TestStepBundle(_Watched(step, self.watch), s.label, params, s.declared_events),
        ]
        self.task = asyncio.ensure_future(
            run_steps(
                steps,
                s.target_list,
                validate=False,
                scope=self.scope,
                sink=self.sink,
                resume_state=self.resume_state,
                shutdown_timeout=self.shutdown_timeout
                if self.shutdown_timeout is not None
                else s.cancel_within,
            )
        )

    async def outcome(self, within: float, what: str) -> RunOutcome:
        """The run's outcome, which must come within ``within`` seconds."""
        assert self.task is not None
        done, _ = await asyncio.wait({self.task}, timeout=within)
        if not done:
            self.scope.cancel.set()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.task, self.subject.cancel_within + 5)
            raise ConformanceFailure(f"{what}: the run did not end within {within:g}s")
        return self.task.result()

    # --- what the step did, from the events ----------------------------------------------------

    def names(self, target: str) -> list[str]:
        label = self.subject.label
        return [
            e.name
            for e in self.sink.test
            if e.header.step_label == label and e.target is not None and e.target.id == target
        ]

    def count(self, name: str, targets: Iterable[str]) -> int:
        return sum(self.names(t).count(name) for t in targets)

    def finished(self, target: str) -> bool:
        names = self.names(target)
        return TARGET_OUT in names or TARGET_ERR in names

    async def until(self, condition: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if self.task is not None and self.task.done():
                error = self.task.result().error
                how = "without an error" if error is None else f"with {_text(error)}"
                raise ConformanceFailure(f"{what}: the run ended first, {how}")
            if time.monotonic() > deadline:
                raise ConformanceFailure(f"{what}: not within {within:g}s")
            await asyncio.sleep(0.01)


def _ids(subject: StepUnderTest) -> list[str]:
    ids = [t.id for t in subject.target_list]
    if len(ids) < 2:
        raise ConformanceFailure("the suite needs at least two targets")
    return ids


def _no_error(outcome: RunOutcome, what: str) -> None:
    if outcome.error is not None:
        raise ConformanceFailure(f"{what}: the run failed: {_text(outcome.error)}")


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _in_and_out_once(runs: Sequence[_Run], ids: Sequence[str], what: str) -> None:
    """Across ``runs`` (a run and its resumption), every target entered the step once and was
    reported once."""
    for tid in ids:
        names = [n for r in runs for n in r.names(tid)]
        ins = names.count(TARGET_IN)
        outs = names.count(TARGET_OUT) + names.count(TARGET_ERR)
        if ins != 1 or outs != 1:
            raise ConformanceFailure(
                f"{what}: target {tid} entered the step {ins} time(s) and was reported {outs} "
                f"time(s); want once each (its events: {names})"
            )


async def _quiet(runs: Sequence[_Run], what: str) -> None:
    """Nothing reported or emitted after ``run`` returned, and only declared events."""
    await asyncio.sleep(max(r.subject.quiet for r in runs))
    for r in runs:
        if r.watch.late:
            raise ConformanceFailure(
                f"{what}: after run returned, the step still gave {', '.join(r.watch.late)}"
            )
        allowed = r.subject.declared_events | FRAMEWORK_TEST_EVENTS
        undeclared = sorted({n for n in r.watch.emitted if n not in allowed})
        if undeclared:
            raise ConformanceFailure(
                f"{what}: the step emitted events it does not declare: {', '.join(undeclared)} "
                f"(declared: {', '.join(sorted(r.subject.declared_events)) or 'none'})"
            )


def _saved_in_flight(outcome: RunOutcome, label_index: int) -> bool:
    """Whether the paused run's state holds a blob from the step (it raised ``Paused``)."""
    state = outcome.resume_state
    if state is None:
        return False
    decoded = TestRunState.decode(state, 1, 2)
    return decoded.step_states[label_index] is not None


# --- the cases -------------------------------------------------------------------------------

CaseBody = Callable[[StepUnderTest], Awaitable[None]]


@dataclass(frozen=True)
class StepCase:
    """One situation every step must handle."""

    name: str
    body: CaseBody
    doc: str = ""

    def __str__(self) -> str:
        return self.name

    async def run(self, subject: StepUnderTest) -> None:
        """Raise :class:`ConformanceFailure` if the step mishandles the case."""
        await self.body(subject)


_CASES: list[StepCase] = []


def _case(body: CaseBody) -> CaseBody:
    _CASES.append(StepCase(body.__name__, body, (body.__doc__ or "").strip()))
    return body


@_case
async def parameters_are_accepted(s: StepUnderTest) -> None:
    """The parameters given pass the step's declaration and its ``validate_parameters``."""
    try:
        await validate_step(
            s.make(), StepContext(scope=Scope(), step_label=s.label),
            StepParameters.from_values(s.parameters),
        )  # fmt: skip
    except Exception as exc:
        raise ConformanceFailure(f"the parameters are refused: {_text(exc)}") from exc


@_case
async def targets_in_and_out_once(s: StepUnderTest) -> None:
    """Every target is taken once and reported once; the run ends without a step error."""
    ids = _ids(s)
    run = _Run(s)
    await run.start()
    outcome = await run.outcome(s.pause_within + s.cancel_within, "a plain run")
    _no_error(outcome, "a plain run")
    _in_and_out_once([run], ids, "a plain run")
    await _quiet([run], "a plain run")


@_case
async def declared_events_only(s: StepUnderTest) -> None:
    """Only the events the step declares are emitted (a refused one counts, even if the step
    swallowed ``EventNotAllowed``)."""
    run = _Run(s)
    await run.start()
    outcome = await run.outcome(s.pause_within + s.cancel_within, "a plain run")
    _no_error(outcome, "a plain run")
    await _quiet([run], "a plain run")


@_case
async def no_output_after_returning(s: StepUnderTest) -> None:
    """Once ``run`` has returned (or raised), the step reports and emits nothing more, even
    from tasks it left behind; checked after a plain run and after a cancelled one."""
    run = _Run(s)
    await run.start()
    _no_error(await run.outcome(s.pause_within + s.cancel_within, "a plain run"), "a plain run")
    await _quiet([run], "a plain run")
    ids = _ids(s)
    run = _Run(s, hold=ids[-1:])
    await run.start()
    await run.until(
        lambda: run.count(TARGET_IN, ids[:-1]) == len(ids) - 1, s.pause_within, "targets in"
    )
    run.scope.cancel.set()
    await run.outcome(s.cancel_within + 5, "a cancelled run")
    await _quiet([run], "a cancelled run")


async def _resume(s: StepUnderTest, first: _Run, outcome: RunOutcome, what: str) -> _Run:
    """Resume from ``outcome``'s state with a new instance; it must finish every target."""
    again = _Run(s, resume_state=outcome.resume_state, sink=first.sink)
    await again.start()
    resumed = await again.outcome(s.pause_within + s.cancel_within, f"{what}, resumed")
    _no_error(resumed, f"{what}, resumed")
    if resumed.resume_state is not None:
        raise ConformanceFailure(f"{what}, resumed: the run paused again, unasked")
    return again


@_case
async def pause_without_targets_in_flight(s: StepUnderTest) -> None:
    """Paused while it waits for more targets, with none in hand (the first has been
    reported; a step that holds its targets until its input ends still has it): the step
    returns within ``pause_within``, and resumed from the job's state, it takes the others."""
    ids = _ids(s)
    run = _Run(s, hold=ids[1:])
    await run.start()
    await run.until(lambda: run.count(TARGET_IN, ids[:1]) == 1, s.pause_within, "first in")
    # the first target out, unless the step keeps it until its input ends (a gather step)
    with contextlib.suppress(ConformanceFailure):
        await run.until(lambda: run.finished(ids[0]), min(s.pause_within, 5.0), "first out")
    run.scope.pause.set()
    outcome = await run.outcome(s.pause_within, "paused")
    _no_error(outcome, "paused")
    if outcome.resume_state is None:
        raise ConformanceFailure("paused: the run did not pause (targets were held before it)")
    again = await _resume(s, run, outcome, "paused")
    _in_and_out_once([run], ids, "paused and resumed")
    await _quiet([run, again], "paused and resumed")


@_case
async def pause_with_targets_in_flight(s: StepUnderTest) -> None:
    """Paused while targets are inside it and its input is still open: a step that declares
    ``supports_pause`` raises ``Paused`` with their state, and a new instance resumed from it
    finishes them (they are not handed over again); a step that does not finishes them before
    returning. Either way each target is taken and reported once, over both runs."""
    ids = _ids(s)
    inside = ids[:-1]
    run = _Run(s, hold=ids[-1:])
    await run.start()
    await run.until(
        lambda: run.count(TARGET_IN, inside) == len(inside), s.pause_within, "targets in"
    )
    run.scope.pause.set()
    outcome = await run.outcome(s.pause_within, "paused with targets in flight")
    _no_error(outcome, "paused with targets in flight")
    if outcome.resume_state is None:
        raise ConformanceFailure("paused with targets in flight: the run did not pause")
    saved = _saved_in_flight(outcome, 1)
    unfinished = [t for t in inside if not run.finished(t)]
    pausable = bool(getattr(s.make(), "supports_pause", False))
    if pausable and not unfinished:
        raise ConformanceFailure(
            "paused with targets in flight: the step declares supports_pause, but finished "
            f"them all ({', '.join(inside)}) instead of pausing; give parameters that keep a "
            "target busy longer"
        )
    if not pausable and unfinished:
        raise ConformanceFailure(
            f"paused with targets in flight: the step kept {', '.join(unfinished)} in its "
            "state, but does not declare supports_pause = True"
        )
    if unfinished and not saved:
        raise ConformanceFailure("paused with targets in flight: the step saved no state")
    again = await _resume(s, run, outcome, "paused with targets in flight")
    _in_and_out_once([run], ids, "paused with targets in flight and resumed")
    await _quiet([run, again], "paused with targets in flight and resumed")


@_case
async def cancel_with_targets_in_flight(s: StepUnderTest) -> None:
    """Cancelled with targets inside and its input still open: the step returns within
    ``cancel_within`` (the run ends ``Cancelled``, not with "did not return"), and reports
    nothing afterwards."""
    ids = _ids(s)
    run = _Run(s, hold=ids[-1:])
    await run.start()
    await run.until(
        lambda: run.count(TARGET_IN, ids[:-1]) == len(ids) - 1, s.pause_within, "targets in"
    )
    cancelled_at = time.monotonic()
    run.scope.cancel.set()
    outcome = await run.outcome(s.cancel_within + 5, "cancelled")
    took = time.monotonic() - cancelled_at
    if not isinstance(outcome.error, Cancelled):
        got = "no error" if outcome.error is None else _text(outcome.error)
        raise ConformanceFailure(f"cancelled: the run should end Cancelled, it ended with {got}")
    if isinstance(run.watch.outcome, asyncio.CancelledError) or took > s.cancel_within + 0.25:
        raise ConformanceFailure(
            f"cancelled: the step did not return within {s.cancel_within:g}s; the runner "
            "abandoned it"
        )
    await _quiet([run], "cancelled")


#: Every case, in order.
CASES: tuple[StepCase, ...] = tuple(_CASES)


async def run_conformance(
    subject: StepUnderTest, cases: Iterable[StepCase] = CASES
) -> dict[str, BaseException]:
    """Run the cases one after the other; the failures by case name (empty: all pass)."""
    failures: dict[str, BaseException] = {}
    for c in cases:
        try:
            await c.run(subject)
        except Exception as e:
            failures[c.name] = e
    return failures
