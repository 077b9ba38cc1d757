"""``for_each_target`` and ``for_each_target_with_resume`` on bare channels (ConTest's
``plugins/teststeps/teststeps_test.go``). Every test also checks, through conftest.py, that no task
is left."""

from __future__ import annotations

import asyncio
import contextvars
import json
from typing import Any

import pytest

from contest.channels import StepChannels, StepInput, StepOutput, StepResult
from contest.context import StepContext
from contest.errors import Cancelled, ContestError, Paused, ResumeStateError
from contest.resume import decode_targets_state, state_to_bytes
from contest.signals import Scope
from contest.stephelpers import TargetWithData, for_each_target, for_each_target_with_resume
from contest.target import Target


class Pipe:
    """A step's channels and context without a runner: we feed the input and collect the
    output."""

    def __init__(self) -> None:
        self.scope = Scope()
        self.ctx = StepContext(scope=self.scope, step_label="S")
        self.results: list[StepResult] = []
        self.input: StepInput[Target] = StepInput(lambda t: None, lambda t: t)
        self.ch = StepChannels(self.input, StepOutput(self._route, self._closed))
        self.output_closed = False

    def _route(self, r: StepResult) -> None:
        self.results.append(r)

    def _closed(self) -> None:
        self.output_closed = True

    async def feed(self, ids: list[str], close: bool = True) -> None:
        for tid in ids:
            taken = self.input.offer(Target(tid))
            if taken is not None:
                assert await taken
        if close:
            self.input.close()

    def by_id(self) -> dict[str, Any]:
        return {r.target.id: r.error for r in self.results if r.target is not None}


def ids(n: int) -> list[str]:
    return [f"target{i:03d}" for i in range(n)]


async def run_fet(pipe: Pipe, fn: Any, targets: list[str], close: bool = True) -> None:
    helper = asyncio.ensure_future(for_each_target(pipe.ctx, pipe.ch, fn))
    await pipe.feed(targets, close)
    await asyncio.wait_for(helper, 5)


# --- 52-56 ----------------------------------------------------------------------------------------


async def ok(ctx: StepContext, target: Target) -> None:
    return None


async def bad(ctx: StepContext, target: Target) -> None:
    raise ContestError(f"failed {target.id}")


async def test_52_one_target_succeeds() -> None:
    pipe = Pipe()
    assert await asyncio.wait_for(_ret(run_fet(pipe, ok, ["T1"])), 5) is None
    assert len(pipe.results) == 1
    assert pipe.results[0].target == Target("T1") and pipe.results[0].error is None


async def _ret(coro: Any) -> Any:
    return await coro


async def test_53_one_target_fails() -> None:
    pipe = Pipe()
    await run_fet(pipe, bad, ["T1"])
    assert len(pipe.results) == 1
    err = pipe.results[0].error
    assert isinstance(err, ContestError) and str(err) == "failed T1"


async def test_54_ten_succeed() -> None:
    pipe = Pipe()
    await run_fet(pipe, ok, ids(10))
    assert pipe.by_id() == dict.fromkeys(ids(10))


async def test_55_ten_fail() -> None:
    pipe = Pipe()
    await run_fet(pipe, bad, ids(10))
    got = pipe.by_id()
    assert set(got) == set(ids(10))
    assert all(isinstance(e, ContestError) for e in got.values())


async def test_56_only_one_fails() -> None:
    async def fn(ctx: StepContext, target: Target) -> None:
        if target.id == "target004":
            raise ContestError("no")

    pipe = Pipe()
    await run_fet(pipe, fn, ids(10))
    got = pipe.by_id()
    assert len(got) == 10
    assert [t for t, e in got.items() if e is not None] == ["target004"]


# --- 57-59: parallelism and cancellation ----------------------------------------------------------


async def test_57_targets_run_in_parallel() -> None:
    async def slow(ctx: StepContext, target: Target) -> None:
        await ctx.sleep(0.3)

    pipe = Pipe()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await run_fet(pipe, slow, ids(10))
    elapsed = loop.time() - t0
    assert 0.3 <= elapsed < 0.9
    assert pipe.by_id() == dict.fromkeys(ids(10))


@pytest.mark.parametrize("close", [True, False], ids=["input-closed", "input-never-closed"])
async def test_58_59_cancel_is_seen_by_every_function(close: bool) -> None:
    saw_cancel: set[str] = set()

    async def slow(ctx: StepContext, target: Target) -> None:
        try:
            await ctx.sleep(0.3)
        except Cancelled:
            saw_cancel.add(target.id)
            raise

    pipe = Pipe()
    loop = asyncio.get_running_loop()
    loop.call_later(0.1, pipe.scope.cancel.set)
    t0 = loop.time()
    helper = asyncio.ensure_future(for_each_target(pipe.ctx, pipe.ch, slow))
    await pipe.feed(ids(10), close=close)
    assert await asyncio.wait_for(helper, 2) is None  # returns normally, even when cancelled
    assert loop.time() - t0 < 0.3  # did not wait for the work, nor for the input to close
    assert saw_cancel == set(ids(10))
    assert pipe.results == []  # results of cancelled work are dropped


async def test_for_each_target_finishes_targets_on_pause() -> None:
    """No resume support: a pause does not interrupt the work (ctx.sleep ends on cancel only)."""

    async def slow(ctx: StepContext, target: Target) -> None:
        await ctx.sleep(0.15)

    pipe = Pipe()
    asyncio.get_running_loop().call_later(0.05, pipe.scope.pause.set)
    await run_fet(pipe, slow, ids(5))
    assert pipe.by_id() == dict.fromkeys(ids(5))


# --- 60-61: with resume --------------------------------------------------------------------------


async def run_fetwr(
    pipe: Pipe, fn: Any, targets: list[str], state: bytes | None = None, version: int = 1
) -> Any:
    helper = asyncio.ensure_future(
        for_each_target_with_resume(pipe.ctx, pipe.ch, state, version, fn)
    )
    await pipe.feed(targets)
    return await asyncio.wait_for(helper, 5)


async def test_60_with_resume_all_succeed() -> None:
    async def fn(ctx: StepContext, twd: TargetWithData) -> None:
        assert twd.data is None

    pipe = Pipe()
    assert await run_fetwr(pipe, fn, ids(10)) is None
    assert len(pipe.results) == 10
    assert pipe.by_id() == dict.fromkeys(ids(10))


async def test_61_with_resume_pause() -> None:
    async def fn(ctx: StepContext, twd: TargetWithData) -> None:
        twd.data = {"Foo": twd.target.id}
        await ctx.wait_paused()
        raise Paused()

    pipe = Pipe()
    helper = asyncio.ensure_future(for_each_target_with_resume(pipe.ctx, pipe.ch, None, 1, fn))
    await pipe.feed(ids(10))
    await asyncio.sleep(0.02)
    pipe.scope.pause.set()
    with pytest.raises(Paused) as info:
        await asyncio.wait_for(helper, 2)
    raw = info.value.state
    assert isinstance(raw, bytes)
    state = json.loads(raw)
    assert state["V"] == 1
    entries = state["TWD"]
    assert len(entries) == 10
    assert sorted(e["Target"]["ID"] for e in entries) == ids(10)
    for e in entries:
        assert e["Data"] == {"Foo": e["Target"]["ID"]}
    assert pipe.results == []


async def test_with_resume_sleep_raises_paused_and_resume_restarts_first() -> None:
    """ctx.sleep raises Paused in a resumable worker; on resume the saved targets run again,
    with their data, before any new target."""
    calls: list[tuple[str, Any]] = []
    work = [0.5]

    async def fn(ctx: StepContext, twd: TargetWithData) -> None:
        calls.append((twd.target.id, twd.data))
        if twd.data is None:
            twd.data = {"n": twd.target.id}
        await ctx.sleep(work[0])

    pipe = Pipe()
    helper = asyncio.ensure_future(for_each_target_with_resume(pipe.ctx, pipe.ch, None, 7, fn))
    await pipe.feed(["A", "B", "C"])
    asyncio.get_running_loop().call_later(0.05, pipe.scope.pause.set)
    with pytest.raises(Paused) as info:
        await asyncio.wait_for(helper, 2)
    assert pipe.results == []
    state = info.value.state

    calls.clear()
    work[0] = 0.0
    pipe2 = Pipe()
    assert await run_fetwr(pipe2, fn, ["D"], state, 7) is None
    assert sorted(calls[:3]) == [("A", {"n": "A"}), ("B", {"n": "B"}), ("C", {"n": "C"})]
    assert calls[3] == ("D", None)
    assert pipe2.by_id() == {"A": None, "B": None, "C": None, "D": None}


async def test_with_resume_pause_with_nothing_in_flight_gives_empty_state() -> None:
    async def fn(ctx: StepContext, twd: TargetWithData) -> None:
        return None

    pipe = Pipe()
    pipe.scope.pause.set()
    with pytest.raises(Paused) as info:
        await run_fetwr(pipe, fn, ["A"])
    assert json.loads(info.value.state) == {"V": 1, "TWD": []}
    assert pipe.by_id() == {"A": None}


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (b"FOO", "invalid resume state"),
        (b'{"V": 2, "TWD": []}', "incompatible resume state: want 1, got 2"),
    ],
)
async def test_with_resume_bad_state(state: bytes, message: str) -> None:
    async def fn(ctx: StepContext, twd: TargetWithData) -> None:
        return None

    pipe = Pipe()
    with pytest.raises(ResumeStateError, match=message):
        await for_each_target_with_resume(pipe.ctx, pipe.ch, state, 1, fn)


async def test_with_resume_paused_functions_without_pause_signal() -> None:
    async def fn(ctx: StepContext, twd: TargetWithData) -> None:
        raise Paused()

    pipe = Pipe()
    with pytest.raises(
        ContestError, match="some target functions paused, but no pause signal received"
    ):
        await run_fetwr(pipe, fn, ["A", "B"])


async def test_with_resume_cancel_wins_over_pause() -> None:
    async def fn(ctx: StepContext, twd: TargetWithData) -> None:
        await ctx.sleep(5)

    pipe = Pipe()
    helper = asyncio.ensure_future(for_each_target_with_resume(pipe.ctx, pipe.ch, None, 1, fn))
    await pipe.feed(ids(3), close=False)
    await asyncio.sleep(0.01)
    pipe.scope.cancel.set()
    pipe.scope.pause.set()
    with pytest.raises(Cancelled):
        await asyncio.wait_for(helper, 2)
    assert pipe.results == []


# --- functions that do not wait cost no task ------------------------------------------------------


async def test_a_function_that_does_not_wait_runs_in_the_helpers_own_task() -> None:
    """No task per target for a function that returns without waiting (Noop, Echo); one that
    waits goes on in a task of its own after its first wait."""
    seen: dict[str, tuple[Any, Any]] = {}

    async def fn(ctx: StepContext, target: Target) -> None:
        before = asyncio.current_task()
        if target.id.startswith("wait"):
            await asyncio.sleep(0)
        seen[target.id] = (before, asyncio.current_task())

    pipe = Pipe()
    helper = asyncio.ensure_future(for_each_target(pipe.ctx, pipe.ch, fn))
    await pipe.feed(["quick1", "quick2", "wait1", "wait2"])
    await asyncio.wait_for(helper, 5)
    assert pipe.by_id() == {"quick1": None, "quick2": None, "wait1": None, "wait2": None}
    assert seen["quick1"] == (helper, helper) and seen["quick2"] == (helper, helper)
    for tid in ("wait1", "wait2"):
        first, later = seen[tid]
        assert first is helper and later is not helper  # taken over by a task of its own
    assert seen["wait1"][1] is not seen["wait2"][1]


async def test_each_function_has_its_own_context_as_in_a_task() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: dict[str, str] = {}

    async def fn(ctx: StepContext, target: Target) -> None:
        seen[target.id + ":before"] = var.get()
        var.set(target.id)
        if target.id == "B":
            await asyncio.sleep(0)
        seen[target.id] = var.get()

    pipe = Pipe()
    await run_fet(pipe, fn, ["A", "B", "C"])
    assert seen == {
        "A:before": "unset", "A": "A", "B:before": "unset", "B": "B", "C:before": "unset",
        "C": "C",
    }  # fmt: skip
    assert var.get() == "unset"


async def test_functions_first_waiting_on_one_shared_future_all_go_on() -> None:
    """Regression: several functions wait on the same future at their first wait (a batch's
    commit); each task that takes one over must still wait on it, not fail."""
    loop = asyncio.get_running_loop()
    shared: asyncio.Future[None] = loop.create_future()

    async def fn(ctx: StepContext, target: Target) -> None:
        await shared

    pipe = Pipe()
    helper = asyncio.ensure_future(for_each_target(pipe.ctx, pipe.ch, fn))
    await pipe.feed(ids(5))
    await asyncio.sleep(0.01)
    shared.set_result(None)
    await asyncio.wait_for(helper, 5)
    assert pipe.by_id() == dict.fromkeys(ids(5))


@pytest.mark.parametrize("wait", [False, True], ids=["at-once", "after-a-wait"])
async def test_a_raise_fails_the_target_with_or_without_a_wait(wait: bool) -> None:
    async def fn(ctx: StepContext, target: Target) -> None:
        if wait:
            await asyncio.sleep(0)
        raise ContestError(f"no {target.id}")

    pipe = Pipe()
    await run_fet(pipe, fn, ["A"])
    assert [str(e) for e in pipe.by_id().values()] == ["no A"]


async def test_with_resume_a_function_that_does_not_wait_pauses_or_passes_without_a_task() -> None:
    async def fn(ctx: StepContext, twd: TargetWithData) -> None:
        if twd.target.id == "P":
            twd.data = {"at": 1}
            raise Paused()

    pipe = Pipe()
    pipe.scope.pause.set()
    helper = asyncio.ensure_future(for_each_target_with_resume(pipe.ctx, pipe.ch, None, 1, fn))
    await pipe.feed(["A", "P"])
    with pytest.raises(Paused) as info:
        await asyncio.wait_for(helper, 5)
    assert pipe.by_id() == {"A": None}
    saved = decode_targets_state(state_to_bytes(info.value.state), 1)
    assert [(t.id, data) for t, data in saved] == [("P", {"at": 1})]


async def test_a_step_taking_many_waiting_targets_lets_the_loop_run() -> None:
    """Targets already waiting are taken without a wait; a step that takes thousands in a row
    lets the loop run every ``TAKES_PER_TURN`` of them, so the API the same loop serves is
    answered meanwhile (issue 17's responsive server). Every target is still taken, in order."""
    from contest.channels import TAKES_PER_TURN

    n = 3 * TAKES_PER_TURN + 5
    pipe = Pipe()
    offers = [pipe.input.offer(Target(t)) for t in ids(n)]  # all waiting before the step reads
    pipe.input.close()
    taken_when_other_ran: list[int] = []

    async def other() -> None:  # what another request's callbacks would be
        for _ in range(3):
            taken_when_other_ran.append(len(pipe.results))
            await asyncio.sleep(0)

    async def noop(ctx: StepContext, t: Target) -> None:
        return None

    helper = asyncio.ensure_future(for_each_target(pipe.ctx, pipe.ch, noop))
    side = asyncio.ensure_future(other())
    await asyncio.wait_for(asyncio.gather(helper, side), 5)
    assert all(o is not None and o.result() for o in offers)
    assert [r.target.id for r in pipe.results if r.target is not None] == ids(n)
    # the other task ran between slices, not only once the step had taken everything
    _, second, third = taken_when_other_ran
    assert 0 < second < third < n
    assert third - second <= TAKES_PER_TURN


async def test_a_hand_off_without_a_future() -> None:
    """``StepInput.put`` (what the test runner offers with): taken at once by a waiting step,
    else it waits in line, is taken in order (the hand-off callback says when), or comes back
    from ``abort_pending``; the offers with futures keep theirs, in the same line."""
    handed: list[str] = []
    inp: StepInput[Target] = StepInput(lambda t: handed.append(t.id), lambda t: t)
    reader = asyncio.ensure_future(inp.get())
    await asyncio.sleep(0)  # the step waits
    assert inp.put(Target("A")) is True and handed == ["A"]
    assert (await reader) == Target("A")
    assert inp.put(Target("B")) is False
    fut = inp.offer(Target("C"))
    assert inp.put(Target("D")) is False and handed == ["A"]
    assert (await inp.get()) == Target("B") and handed == ["A", "B"]
    assert [t.id for t in inp.abort_pending()] == ["C", "D"]
    assert fut is not None and fut.result() is False
    inp.close()
    assert (await inp.get()) is None and handed == ["A", "B"]
