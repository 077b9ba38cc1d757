"""Runner-level versions of LB's step-runner tests (``pkg/runner/step_runner_test.go``), LB's
variables test (``pkg/runner/test_runner_test.go``), and the misbehaviours where we deliberately
differ from ConTest (``contest.teststep``'s contract): a result without a target, an early return, a
pause nobody asked for, a failing event store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any

import pytest
from core_kit import (
    EarlyReturn,
    Echo,
    Holder,
    NeverReads,
    NilResult,
    PausesUnasked,
    TakeThenRaise,
    decode_state,
    target_events,
    tuples,
)

from contest.bundle import Test, TestStepBundle
from contest.errors import (
    Cancelled,
    EventWriteError,
    StepCrashed,
    StepPausedWithoutRequest,
    StepReturnedEarly,
    StepReturnedNoTarget,
    StepsNeverReturned,
)
from contest.events import MemoryEventSink
from contest.events import TestEvent as _Event
from contest.params import StepParameters
from contest.runner.test_runner import TestRunner
from contest.signals import Scope
from contest.storage.writer import Ack, _Batch
from contest.testing import run_steps
from contest.testing.steps import Crash, Panic
from contest.teststep import (
    EventEmitter,
    Paused,
    StepChannels,
    StepContext,
    StepResult,
    Target,
    TargetWithData,
    TestStep,
    for_each_target_with_resume,
)

# --- 35: step variables ------------------------------------------------------------------------


class VarStep(TestStep):
    """LB's variables test step: adds ``target_id``, reads step1's, pauses if told to."""

    name = "VarStep"

    def __init__(self, pause: Any = None) -> None:
        self.pause = pause

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        assert ctx.variables is not None

        async def fn(ctx: StepContext, twd: TargetWithData) -> None:
            tid = twd.target.id
            assert ctx.variables is not None
            ctx.variables.add(tid, "target_id", tid)
            got = ctx.variables.get(tid, "step1", "target_id")
            if got != tid:
                raise AssertionError(f"step1.target_id is {got!r}")
            if self.pause is not None:
                self.pause()
                raise Paused()

        await for_each_target_with_resume(ctx, ch, resume_state, 1, fn)


async def test_35_variables_across_pause() -> None:
    sink = MemoryEventSink()
    scope = Scope()
    first = await run_steps(
        [(VarStep(scope.pause.set), "step1"), (VarStep(scope.pause.set), "step2")],
        ["T1"],
        scope=scope,
        sink=sink,
    )
    assert first.error is None
    assert first.resume_state
    second = await run_steps(
        [(VarStep(), "step1"), (VarStep(), "step2")],
        ["T1"],
        resume_state=first.resume_state,
        run_id=2,
        sink=sink,
    )
    assert second.error is None
    assert second.result is not None
    assert second.result.resume_state is None
    assert second.result.targets == {"T1": None}
    payload = {"Name": "target_id", "Value": '"T1"'}
    var_events = tuples(sink, target="T1", names={"VariableEmitted"})
    assert ("step1", "T1", "VariableEmitted", payload) in var_events
    assert ("step2", "T1", "VariableEmitted", payload) in var_events
    # run 2's store holds both steps' variables for T1
    assert second.result.variables is not None
    assert second.result.variables.for_target("T1") == {
        "step1": {"target_id": "T1"},
        "step2": {"target_id": "T1"},
    }


class SetsVar(TestStep):
    name = "SetsVar"

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        assert ctx.variables is not None
        async for target in ch.input:
            ctx.variables.add(target.id, "answer", {"n": 42})
            await ch.output.put(StepResult(target))


class ReadsVar(TestStep):
    name = "ReadsVar"

    def __init__(self) -> None:
        self.read: dict[str, Any] = {}

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        assert ctx.variables is not None
        async for target in ch.input:
            self.read[target.id] = ctx.variables.get(target.id, "setter", "answer")
            await ch.output.put(StepResult(target))


async def test_35b_variables_persist_in_the_resume_state() -> None:
    """A variable set in run 1 is read in run 2 by a later step, from the resume state only."""
    scope = Scope()
    first = await run_steps(
        [
            (SetsVar(), "setter"),
            (Holder(on_held=scope.pause.set), "holder"),
            (ReadsVar(), "reader"),
        ],
        ["T1"],
        scope=scope,
    )
    assert first.error is None and first.resume_state
    saved = decode_state(first.resume_state)
    assert saved["T"]["T1"]["V"] == {"setter": {"answer": {"n": 42}}}
    reader = ReadsVar()
    second = await run_steps(
        [(SetsVar(), "setter"), (Holder(), "holder"), (reader, "reader")],
        ["T1"],
        resume_state=first.resume_state,
        run_id=2,
    )
    assert second.error is None
    assert reader.read == {"T1": {"n": 42}}
    assert second.result is not None and second.result.targets == {"T1": None}


# --- 36/37/45: a step gets its resume state; what it returns on pause is kept ---------------------


async def test_36_step_gets_its_resume_state_and_reports_from_it() -> None:
    sink = MemoryEventSink()
    scope = Scope()
    h1 = Holder(extra={"some_input": 42}, on_held=scope.pause.set)
    first = await run_steps([(h1, "Step1")], ["TSucc", "TFail"], scope=scope, sink=sink)
    assert first.error is None and first.resume_state
    obj = decode_state(first.resume_state)
    assert obj["T"] == {"TSucc": {"P": 3}, "TFail": {"P": 3}}  # both inside the step
    assert obj["SRS"][0]["json"]["some_input"] == 42

    h2 = Holder(fail=("TFail",))
    second = await run_steps(
        [(h2, "Step1")], ["TSucc", "TFail"], resume_state=first.resume_state, run_id=2, sink=sink
    )
    assert second.error is None
    # the step got exactly what it returned on pause
    assert len(h2.resume_states) == 1 and h2.resume_states[0] is not None
    got = json.loads(h2.resume_states[0])
    assert got["some_input"] == 42
    assert sorted(t["ID"] for t in got["held"]) == ["TFail", "TSucc"]
    # 45: nothing new to enter, so its input is closed when it starts
    assert h2.input_closed_at_start is True
    assert second.result is not None
    assert second.result.targets == {"TSucc": None, "TFail": "held target failed"}
    # TargetIn once (run 1), the result in run 2
    assert tuples(sink, target="TSucc", run_id=1) == target_events("Step1", "TSucc", "TargetIn")
    assert tuples(sink, target="TSucc", run_id=2) == target_events("Step1", "TSucc", "TargetOut")
    assert tuples(sink, target="TFail", run_id=2) == target_events(
        "Step1", "TFail", ("TargetErr", {"Error": "held target failed"})
    )


async def test_36b_binary_step_state_round_trips_exactly() -> None:
    class Binary(TestStep):
        name = "Binary"
        got: list[bytes | None] = []

        async def run(
            self,
            ctx: StepContext,
            ch: StepChannels,
            params: StepParameters,
            ev: EventEmitter,
            resume_state: bytes | None,
        ) -> None:
            self.got.append(resume_state)
            if resume_state is None:
                async for _t in ch.input:
                    scope.pause.set()
                    raise Paused(b"\x00\xffnot json")
                raise AssertionError("no target")
            async for _t in ch.input:
                continue  # drain the input; T1 is passed on below
            await ch.output.put(StepResult(Target("T1")))

    scope = Scope()
    first = await run_steps([(Binary(), "B")], ["T1"], scope=scope)
    assert first.resume_state
    second = await run_steps([(Binary(), "B")], ["T1"], resume_state=first.resume_state)
    assert second.error is None
    assert Binary.got == [None, b"\x00\xffnot json"]


async def test_37_never_started_steps_keep_their_state_across_pauses() -> None:
    state = {
        "V": 2,
        "J": 1,
        "R": 1,
        "T": {"T1": {"P": 3}},
        "SRS": [{"json": {"held": [{"ID": "T1"}], "gen": 1}}, None, {"json": {"keep": True}}],
    }
    scope = Scope()
    h = Holder(extra={"gen": 2}, release=False, on_held=scope.pause.set)
    out = await run_steps(
        [(h, "Step1"), (Echo(), "Step2"), (Echo(), "Step3")],
        ["T1"],
        resume_state=json.dumps(state).encode(),
        run_id=2,
        scope=scope,
    )
    assert out.error is None and out.resume_state
    new = decode_state(out.resume_state)
    assert json.loads(h.resume_states[0] or b"")["gen"] == 1
    assert new["SRS"][0]["json"]["gen"] == 2  # what the step returned this time
    assert new["SRS"][1] is None
    assert new["SRS"][2] == {"json": {"keep": True}}  # never started: kept as given
    assert new["T"]["T1"] == {"P": 3}
    assert new["R"] == 2


# --- 38: the same target id, again and again ------------------------------------------------------


async def test_38_same_target_id_through_ten_steps() -> None:
    steps = [Echo() for _ in range(10)]
    out = await run_steps([(s, f"S{i}") for i, s in enumerate(steps)], ["T1"])
    assert out.error is None
    for s in steps:
        assert s.seen == ["T1"]
    assert out.events(target="T1") == [
        ev for i in range(10) for ev in target_events(f"S{i}", "T1", "TargetIn", "TargetOut")
    ]


async def test_38b_same_step_instance_and_target_id_in_ten_runs() -> None:
    step = Echo()
    for run in range(1, 11):
        out = await run_steps([(step, "S")], [Target("T1")], run_id=run)
        assert out.error is None
        assert out.result is not None and out.result.targets == {"T1": None}
    assert step.seen == ["T1"] * 10


async def test_38c_duplicate_target_ids_in_one_run_are_refused() -> None:
    out = await run_steps([(Echo(), "S")], ["T1", "T1"])
    assert isinstance(out.error, ValueError)
    assert "duplicate target id" in str(out.error)
    assert out.events() == []


async def test_43_a_runner_runs_once() -> None:
    runner = TestRunner(MemoryEventSink())
    test = Test("t", [TestStepBundle(Echo(), "S")])
    await runner.run(test, [Target("T1")])
    with pytest.raises(RuntimeError, match="runs once"):
        await runner.run(test, [Target("T1")])


# --- 39/40: a step that never reads its input -----------------------------------------------------


async def test_39_never_reads_then_cancel() -> None:
    sink = MemoryEventSink()
    step = NeverReads("cancel")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    out = await run_steps([(step, "S")], ["T1"], cancel_after=0.05, sink=sink, shutdown_timeout=2)
    assert isinstance(out.error, Cancelled)
    assert loop.time() - t0 < 1.0  # the step returned on cancel: no shutdown wait
    assert step.started
    assert sink.test == []  # no TargetIn, no TestError


async def test_40_never_reads_then_pause_target_resumes_fresh() -> None:
    sink = MemoryEventSink()
    first = await run_steps([(NeverReads("pause"), "S")], ["T1"], pause_after=0.05, sink=sink)
    assert first.error is None and first.resume_state
    assert sink.test == []  # the plugin received no target
    assert decode_state(first.resume_state)["T"]["T1"]["P"] in (1, 2)  # waiting to enter
    echo = Echo()
    second = await run_steps(
        [(echo, "S")], ["T1"], resume_state=first.resume_state, run_id=2, sink=sink
    )
    assert second.error is None
    assert echo.seen == ["T1"]
    assert tuples(sink, target="T1") == target_events("S", "T1", "TargetIn", "TargetOut")


async def test_40b_never_reads_and_never_returns_then_pause_fails() -> None:
    out = await run_steps([(NeverReads(None), "S")], ["T1"], pause_after=0.05, shutdown_timeout=0.2)
    assert isinstance(out.error, StepsNeverReturned)
    assert str(out.error) == "test step [S] did not return"
    assert out.resume_state is None


# --- 41: exceptions while targets are being added -------------------------------------------------


async def test_41_exception_while_targets_are_added() -> None:
    ids = [f"T{i}" for i in range(20)]
    out = await run_steps([(TakeThenRaise(take=3), "S"), (Echo(), "Next")], ids)
    assert isinstance(out.error, StepCrashed)
    assert "test step S paniced, trace: " in str(out.error)
    assert "boom while targets are being added" in str(out.error)
    ins = [t for (_l, t, n, _p) in out.events() if n == "TargetIn"]
    assert len(ins) == 3  # the three it took, nobody else
    assert out.events(label="Next") == []
    assert [n for (_l, _t, n, _p) in out.events(target=None)] == ["TestError"]


@pytest.mark.parametrize("step", [Panic(), Crash()], ids=["Panic", "Crash"])
async def test_41b_panic_and_crash_are_step_crashes(step: TestStep) -> None:
    out = await run_steps([(step, "S")], [f"T{i}" for i in range(10)])
    assert isinstance(out.error, StepCrashed)
    assert str(out.error).startswith("test step S paniced, trace: ")
    assert [e for e in out.events() if e[1] is not None] == []  # no target ever entered
    if isinstance(step, Crash):
        assert "TestStep crashed" in str(out.error)


# --- early return, no target, unasked pause -------------------------------------------------------


async def test_42_early_return_strands_targets() -> None:
    step = EarlyReturn(take=1)
    out = await asyncio.wait_for(run_steps([(step, "S")], ["T1", "T2", "T3"]), 2)
    assert isinstance(out.error, StepReturnedEarly)
    assert str(out.error).startswith("test step S returned before taking all its targets [")
    stranded = set(str(out.error).split("[", 1)[1].rstrip("]").split())
    assert stranded == {"T1", "T2", "T3"} - set(step.seen)
    assert len(step.seen) == 1
    for tid in stranded:
        assert out.events(target=tid) == []
    assert out.events(target=step.seen[0]) == target_events(
        "S", step.seen[0], "TargetIn", "TargetOut"
    )
    assert out.events(target=None) == [("S", None, "TestError", str(out.error))]


async def test_42b_return_without_reading_anything() -> None:
    out = await asyncio.wait_for(run_steps([(EarlyReturn(take=0), "S")], ["T1", "T2"]), 2)
    assert isinstance(out.error, StepReturnedEarly)
    assert out.events(target="T1") == [] and out.events(target="T2") == []


async def test_null_target_in_result() -> None:
    out = await asyncio.wait_for(run_steps([(NilResult(), "Step1")], ["T1"]), 2)
    assert isinstance(out.error, StepReturnedNoTarget)
    assert str(out.error) == "test step Step1 returned nil result"
    assert out.events(target=None) == [("Step1", None, "TestError", str(out.error))]


@pytest.mark.parametrize("take", [0, 1])
async def test_paused_without_request(take: int) -> None:
    out = await asyncio.wait_for(run_steps([(PausesUnasked(take), "Step1")], ["T1"]), 2)
    assert isinstance(out.error, StepPausedWithoutRequest)
    assert str(out.error) == "test step Step1 paused, but no pause was requested"
    assert out.resume_state is None
    assert out.events(target=None) == [("Step1", None, "TestError", str(out.error))]


async def test_helper_paused_without_request_is_a_step_error() -> None:
    class Sneaky(TestStep):
        name = "Sneaky"

        async def run(
            self,
            ctx: StepContext,
            ch: StepChannels,
            params: StepParameters,
            ev: EventEmitter,
            resume_state: bytes | None,
        ) -> None:
            async def fn(ctx: StepContext, twd: TargetWithData) -> None:
                raise Paused()

            await for_each_target_with_resume(ctx, ch, resume_state, 1, fn)

    out = await asyncio.wait_for(run_steps([(Sneaky(), "Step1")], ["T1", "T2"]), 2)
    assert isinstance(out.error, StepCrashed)
    assert "some target functions paused, but no pause signal received" in str(out.error)
    assert out.resume_state is None


# --- 44: signals are idempotent -------------------------------------------------------------------


async def test_44_pausing_twice_is_pausing_once() -> None:
    scope = Scope()

    def twice() -> None:
        scope.pause.set()
        scope.pause.set()

    out = await run_steps([(Holder(on_held=twice), "S")], ["T1"], scope=scope)
    assert out.error is None and out.resume_state
    assert decode_state(out.resume_state)["T"]["T1"] == {"P": 3}


# --- 45: a step stopped before any target ---------------------------------------------------------


async def test_45_paused_before_any_target_entered() -> None:
    scope = Scope()
    scope.pause.set()
    echo = Echo()
    first = await run_steps([(echo, "S")], ["T1", "T2"], scope=scope)
    assert first.error is None and first.resume_state
    assert echo.resume_states == []  # never started
    assert first.events() == []
    obj = decode_state(first.resume_state)
    assert obj["T"] == {"T1": {"P": 1}, "T2": {"P": 1}}
    echo2 = Echo()
    second = await run_steps([(echo2, "S")], ["T1", "T2"], resume_state=first.resume_state)
    assert second.error is None
    assert sorted(echo2.seen) == ["T1", "T2"]


async def test_45b_cancelled_before_start() -> None:
    scope = Scope()
    scope.cancel.set()
    echo = Echo()
    out = await run_steps([(echo, "S")], ["T1"], scope=scope)
    assert isinstance(out.error, Cancelled)
    assert out.events() == []
    assert echo.seen == []


async def test_no_targets_no_step_started() -> None:
    echo = Echo()
    out = await run_steps([(echo, "S")], [])
    assert out.error is None
    assert out.result is not None and out.result.targets == {}
    assert echo.resume_states == []
    assert out.events() == []


# --- the event store fails under the runner -------------------------------------------------------


class FailingSink(MemoryEventSink):
    """Fails the writes of one event name: synchronously (``mode="raise"``) or through the
    awaitable it returns (``mode="await"``)."""

    def __init__(self, fail: str, mode: str) -> None:
        super().__init__()
        self.fail = fail
        self.mode = mode

    def write_test_event(self, event: _Event) -> Awaitable[None] | None:  # type: ignore[override]
        if event.name != self.fail:
            super().write_test_event(event)
            return None
        if self.mode == "raise":
            raise OSError("disk full")

        async def later() -> None:
            await asyncio.sleep(0)
            raise OSError("disk full")

        return later()


@pytest.mark.parametrize("mode", ["raise", "await"])
@pytest.mark.parametrize("reader", ["waiting", "late"], ids=["step-waits", "runner-waits"])
async def test_target_in_cannot_be_stored(mode: str, reader: str) -> None:
    """TargetIn fails to store -> a step error naming the injection, never a hang."""

    class SlowReader(TestStep):
        """Starts reading only after the runner has offered the target (hand-off on the step's
        side), or reads at once (hand-off on the runner's side)."""

        name = "SlowReader"

        async def run(
            self,
            ctx: StepContext,
            ch: StepChannels,
            params: StepParameters,
            ev: EventEmitter,
            resume_state: bytes | None,
        ) -> None:
            if reader == "late":
                await asyncio.sleep(0.02)
            async for target in ch.input:
                await ch.output.put(StepResult(target))

    sink = FailingSink("TargetIn", mode)
    out = await asyncio.wait_for(run_steps([(SlowReader(), "S")], ["T1"], sink=sink), 5)
    assert isinstance(out.error, EventWriteError)
    assert str(out.error) == "failed to report target injection: disk full"
    assert ("S", None, "TestError", str(out.error)) in tuples(sink, target=None)


@pytest.mark.parametrize("mode", ["raise", "await"])
@pytest.mark.parametrize("event", ["TargetOut", "TargetErr"])
async def test_target_result_cannot_be_stored(mode: str, event: str) -> None:
    class Verdict(TestStep):
        name = "Verdict"

        async def run(
            self,
            ctx: StepContext,
            ch: StepChannels,
            params: StepParameters,
            ev: EventEmitter,
            resume_state: bytes | None,
        ) -> None:
            async for target in ch.input:
                await ch.output.put(StepResult(target, "bad" if event == "TargetErr" else None))

    sink = FailingSink(event, mode)
    out = await asyncio.wait_for(
        run_steps([(Verdict(), "S"), (Echo(), "Next")], ["T1"], sink=sink), 5
    )
    assert isinstance(out.error, EventWriteError)
    assert str(out.error).startswith("failed to report target")
    assert "disk full" in str(out.error)
    assert tuples(sink, label="Next") == []  # the target went no further


@pytest.mark.parametrize("mode", ["raise", "await"])
async def test_test_error_cannot_be_stored_still_fails_cleanly(mode: str) -> None:
    sink = FailingSink("TestError", mode)
    out = await asyncio.wait_for(run_steps([(NilResult(), "S")], ["T1"], sink=sink), 5)
    assert isinstance(out.error, StepReturnedNoTarget)


# --- the storage writer's acknowledgements: one callback per group commit ------------------------


class GroupCommitSink(MemoryEventSink):
    """Answers each write with the storage writer's own ``Ack`` over batches the test commits
    (``commit``), the items named ``fail`` refused (an item error, as the lease fencing's)."""

    def __init__(self, fail: str | None = None) -> None:
        super().__init__()
        self.fail = fail
        self.batches: list[_Batch[_Event]] = []
        self.callbacks: list[int] = []  # per commit, the callbacks its future had to call
        self._open: _Batch[_Event] | None = None

    def write_test_event(self, event: _Event) -> Awaitable[None]:  # type: ignore[override]
        super().write_test_event(event)
        batch = self._open
        if batch is None:
            batch = self._open = _Batch(asyncio.get_running_loop())
            self.batches.append(batch)
        batch.items.append(event)
        return Ack(batch, len(batch.items) - 1)

    def commit(self) -> None:
        batch, self._open = self._open, None
        if batch is None:
            return
        refused = {
            i: OSError("disk full") for i, e in enumerate(batch.items) if e.name == self.fail
        }
        batch.item_errors = refused or None
        self.callbacks.append(len(batch.done._callbacks or ()))  # type: ignore[attr-defined]
        batch.done.set_result(None)


async def commit_until_done(sink: GroupCommitSink, run: Awaitable[Any]) -> Any:
    """Run ``run``, committing what was written every few turns of the loop (a commit takes
    a while: the writers are waiting by then)."""
    task = asyncio.ensure_future(run)
    while not task.done():
        for _ in range(5):
            await asyncio.sleep(0)
        sink.commit()
    return task.result()


async def test_targets_waiting_for_one_commit_are_moved_on_by_one_callback() -> None:
    """The targets whose events share a group commit wait for it together: the runner asks its
    future for one callback (not one wake-up per target), and every target still moves on only
    once its events are stored, in order."""
    ids = [f"T{i:03d}" for i in range(200)]
    sink = GroupCommitSink()
    out = await commit_until_done(sink, run_steps([(Echo(), "S1"), (Echo(), "S2")], ids, sink=sink))
    assert out.error is None
    assert out.result is not None and out.result.targets == dict.fromkeys(ids)
    assert max(len(b.items) for b in sink.batches) >= len(ids)  # many targets per commit
    assert max(sink.callbacks) == 1
    for tid in ids:
        assert tuples(sink, target=tid) == target_events(
            "S1", tid, "TargetIn", "TargetOut"
        ) + target_events("S2", tid, "TargetIn", "TargetOut")


@pytest.mark.parametrize(
    ("event", "what"), [("TargetIn", "target injection"), ("TargetOut", "target result")]
)
async def test_an_event_its_commit_refuses_is_a_step_error(event: str, what: str) -> None:
    sink = GroupCommitSink(fail=event)
    out = await commit_until_done(
        sink, run_steps([(Echo(), "S"), (Echo(), "Next")], ["T1", "T2"], sink=sink)
    )
    assert isinstance(out.error, EventWriteError)
    assert str(out.error) == f"failed to report {what}: disk full"
    assert tuples(sink, label="Next") == []  # no target went further


# --- resume: a target inside a step is never handed over again ----------------------------------


async def test_resumed_target_reported_at_once_is_not_offered_again() -> None:
    """Regression: the step reports a resumed target before the target's own task first runs;
    the target must move on, not be offered to the same step a second time."""
    state = {
        "V": 2,
        "J": 1,
        "R": 1,
        "T": {"T1": {"P": 3}, "T2": {"P": 3}},
        "SRS": [{"json": {"held": [{"ID": "T1"}, {"ID": "T2"}]}}, None],
    }
    sink = MemoryEventSink()
    echo = Echo()
    out = await asyncio.wait_for(
        run_steps(
            [(Holder(), "Hold"), (echo, "Next")],
            ["T1", "T2"],
            resume_state=json.dumps(state).encode(),
            sink=sink,
        ),
        2,
    )
    assert out.error is None
    assert sorted(echo.seen) == ["T1", "T2"]
    for tid in ("T1", "T2"):
        assert tuples(sink, target=tid) == target_events("Hold", tid, "TargetOut") + (
            target_events("Next", tid, "TargetIn", "TargetOut")
        )


async def test_resume_with_a_target_missing_is_refused() -> None:
    state = {"V": 2, "J": 1, "R": 1, "T": {"T1": {"P": 1}, "T2": {"P": 1}}, "SRS": [None]}
    out = await run_steps([(Echo(), "S")], ["T1"], resume_state=json.dumps(state).encode())
    assert out.error is not None
    assert "invalid resume state" in str(out.error) and "T2" in str(out.error)
    assert out.events() == []
