"""The test runner against ConTest's own runner tests (``pkg/runner/test_runner_test.go``,
FB's and LB's): same fixtures, events compared as
(label, target, event, payload) tuples.

Every case runs with FB's label style ("Step 1") and LB's ("Step1"); LB's extra checks on the
per-target results are made in both.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from core_kit import (
    TriggerSink,
    entered,
    failed,
    passed,
    step_pair,
    target_events,
    tuples,
    with_run,
)

from contest.errors import (
    ResumeStateError,
    StepClosedChannels,
    StepCrashed,
    StepLostTargets,
    StepReturnedDuplicateResult,
    StepReturnedUnexpectedResult,
    StepsNeverReturned,
)
from contest.signals import Scope
from contest.testing import run_steps
from contest.testing.steps import BadTargets, Channels, NoReturn, Panic, TestStepFixture

LABEL_STYLES = pytest.mark.parametrize("fb", [True, False], ids=["FB-labels", "LB-labels"])


def lab(fb: bool, n: int) -> str:
    return f"Step {n}" if fb else f"Step{n}"


def spec(n: int, fb: bool, **params: str) -> tuple[TestStepFixture, str, dict[str, list[str]]]:
    return (TestStepFixture(), lab(fb, n), {k: [v] for k, v in params.items()})


async def within(coro, seconds: float):  # type: ignore[no-untyped-def]
    """The 2 s watchdog of ConTest's runner tests."""
    return await asyncio.wait_for(coro, seconds)


# --- 1-5 / 21-25: well-behaved steps --------------------------------------------------------------


@LABEL_STYLES
async def test_01_one_target_one_step(fb: bool) -> None:
    s1 = lab(fb, 1)
    out = await within(run_steps([spec(1, fb)], ["T1"]), 2)
    assert out.error is None
    assert out.events(target=None) == step_pair(s1)
    assert out.events(target="T1") == passed(s1, "T1")
    # 21: the per-target results and the (empty) variable store
    assert out.result is not None
    assert out.result.targets == {"T1": None}
    assert out.result.variables is not None
    assert not out.result.variables.has_target("T1")
    assert out.result.resume_state is None


@LABEL_STYLES
async def test_02_shutdown_timeout_does_not_limit_work(fb: bool) -> None:
    s1 = lab(fb, 1)
    t0 = time.monotonic()
    out = await within(
        run_steps([spec(1, fb, DelayTargets="T1=500")], ["T1"], shutdown_timeout=0.1), 2
    )
    assert time.monotonic() - t0 >= 0.5
    assert out.error is None
    assert out.events(target=None) == step_pair(s1)
    assert out.events(target="T1") == passed(s1, "T1")
    assert out.result is not None and out.result.targets == {"T1": None}


@LABEL_STYLES
async def test_03_failing_target(fb: bool) -> None:
    s1 = lab(fb, 1)
    out = await within(run_steps([spec(1, fb, FailPct="100")], ["T1"]), 2)
    assert out.error is None
    assert out.events(target=None) == step_pair(s1)
    assert out.events(target="T1") == failed(s1, "T1")
    assert out.result is not None
    assert list(out.result.targets) == ["T1"]
    assert out.result.targets["T1"] == "target failed"


@LABEL_STYLES
async def test_04_one_fails_one_passes(fb: bool) -> None:
    s1 = lab(fb, 1)
    out = await within(
        run_steps([spec(1, fb, FailTargets="T1", DelayTargets="T2=100")], ["T1", "T2"]), 2
    )
    assert out.error is None
    assert out.events(target=None) == step_pair(s1)
    assert out.events(target="T1") == failed(s1, "T1")
    assert out.events(target="T2") == passed(s1, "T2")
    assert out.result is not None
    assert out.result.targets == {"T1": "target failed", "T2": None}


@LABEL_STYLES
async def test_05_three_steps_unreached_step_never_started(fb: bool) -> None:
    s1, s2, s3 = lab(fb, 1), lab(fb, 2), lab(fb, 3)
    out = await within(
        run_steps(
            [spec(1, fb, FailTargets="T1"), spec(2, fb, FailTargets="T2"), spec(3, fb)],
            ["T1", "T2"],
        ),
        2,
    )
    assert out.error is None
    assert out.events(label=s1, target=None) == step_pair(s1)
    assert out.events(label=s2, target=None) == step_pair(s2)
    assert out.events(label=s3) == []  # FB semantics: no target reaches it, never started
    assert out.events(target="T1") == failed(s1, "T1")
    assert out.events(target="T2") == passed(s1, "T2") + failed(s2, "T2")
    assert out.result is not None
    assert out.result.targets == {"T1": "target failed", "T2": "target failed"}


# --- 6-12 / 26-32: misbehaving steps --------------------------------------------------------------


@LABEL_STYLES
async def test_06_step_never_returns(fb: bool) -> None:
    s1 = lab(fb, 1)
    t0 = time.monotonic()
    out = await within(run_steps([(NoReturn(), s1)], ["T1"], shutdown_timeout=0.2), 2)
    elapsed = time.monotonic() - t0
    assert isinstance(out.error, StepsNeverReturned)
    assert 0.2 <= elapsed < 1.5
    errors = [p for (_l, _t, n, p) in out.events(label=s1, target=None) if n == "TestError"]
    assert len(errors) == 1
    assert f"step [{s1}] did not return" in errors[0]
    assert out.events(target="T1") == target_events(s1, "T1", "TargetIn", "TargetOut")


@LABEL_STYLES
async def test_07_step_panics(fb: bool) -> None:
    s1 = lab(fb, 1)
    out = await within(run_steps([(Panic(), s1)], ["T1"]), 2)
    assert isinstance(out.error, StepCrashed)
    assert f"step {s1} paniced" in str(out.error)
    assert out.events(target="T1") == []
    step_events = out.events(label=s1, target=None)
    assert [n for (_l, _t, n, _p) in step_events] == ["TestError"]
    assert f"step {s1} paniced" in step_events[0][3]


@LABEL_STYLES
async def test_08_step_closes_output(fb: bool) -> None:
    s1 = lab(fb, 1)
    out = await within(run_steps([(Channels(), s1)], ["T1"]), 2)
    assert isinstance(out.error, StepClosedChannels)
    assert out.events(target="T1") == target_events(s1, "T1", "TargetIn", "TargetOut")
    assert out.events(target=None) == [
        (s1, None, "TestError", f"test step {s1} closed output channels (api violation)")
    ]


@LABEL_STYLES
async def test_09_result_for_invented_target(fb: bool) -> None:
    s1 = lab(fb, 1)
    out = await within(run_steps([(BadTargets(), s1)], ["TExtra"]), 2)
    assert isinstance(out.error, StepReturnedUnexpectedResult)
    assert out.events(target="TExtra2") == []
    assert out.events(target=None) == [
        (s1, None, "TestError", f"test step {s1} returned unexpected result for TExtra2")
    ]


@LABEL_STYLES
async def test_10_duplicate_result(fb: bool) -> None:
    s1 = lab(fb, 1)
    out = await within(
        run_steps([(BadTargets(), s1), spec(2, fb, DelayTargets="TGood=100")], ["TGood", "TDup"]),
        2,
    )
    assert isinstance(out.error, StepReturnedDuplicateResult)
    assert str(out.error) == f"test step {s1} returned duplicate result for TDup"
    assert (s1, None, "TestError", str(out.error)) in out.events(target=None)


@LABEL_STYLES
async def test_10b_copy_of_target_is_accepted(fb: bool) -> None:
    """TGood comes back as a copy (a different object, same id): that is a proper result."""
    s1 = lab(fb, 1)
    out = await within(run_steps([(BadTargets(), s1)], ["TGood"]), 2)
    assert out.error is None
    assert out.events(target="TGood") == target_events(s1, "TGood", "TargetIn", "TargetOut")


@LABEL_STYLES
async def test_11_lost_target(fb: bool) -> None:
    s1 = lab(fb, 1)
    out = await within(run_steps([(BadTargets(), s1)], ["TGood", "TDrop"]), 2)
    assert isinstance(out.error, StepLostTargets)
    assert "TDrop" in str(out.error)
    assert str(out.error) == f"test step {s1} lost targets [TDrop]"
    assert out.events(target=None) == [(s1, None, "TestError", str(out.error))]


@LABEL_STYLES
async def test_12_result_for_known_target_not_in_this_step(fb: bool) -> None:
    s1, s2 = lab(fb, 1), lab(fb, 2)
    out = await within(
        run_steps([spec(1, fb, FailTargets="TExtra2"), (BadTargets(), s2)], ["TExtra", "TExtra2"]),
        2,
    )
    assert isinstance(out.error, StepReturnedUnexpectedResult)
    assert str(out.error) == f"test step {s2} returned unexpected result for TExtra2"
    # TExtra2 failed in step 1 and has nothing in step 2
    assert out.events(target="TExtra2") == failed(s1, "TExtra2")


# --- 13 / 33: a hundred targets through three steps ----------------------------------------------


@LABEL_STYLES
async def test_13_hundred_targets_three_steps(fb: bool) -> None:
    s1, s3 = lab(fb, 1), lab(fb, 3)
    ids = [f"T{i:03d}" for i in range(100)]
    out = await within(
        run_steps(
            [
                spec(1, fb, DelayTargets="*=10"),
                spec(2, fb, FailPct="25"),
                spec(3, fb, FailPct="25", DelayTargets="*=10"),
            ],
            ids,
        ),
        2,
    )
    assert out.error is None
    for tid in ids:
        assert out.events(label=s1, target=tid) == passed(s1, tid)
    finished_s3 = [t for (_l, t, n, _p) in out.events(label=s3) if n == "TestFinishedEvent"]
    assert finished_s3
    assert out.result is not None and set(out.result.targets) == set(ids)


# --- 14-19: pause and resume ----------------------------------------------------------------------


def pause_steps(fb: bool) -> list[tuple[TestStepFixture, str, dict[str, list[str]]]]:
    return [
        spec(1, fb, FailTargets="T1"),
        spec(2, fb, DelayTargets="T2=200,T3=200"),
        spec(3, fb),
    ]


def pause_at_100ms(fb: bool, scope: Scope) -> TriggerSink:
    """ConTest pauses after 100 ms, when T2 and T3 are inside step 2 (200 ms of work left).
    We pause at 100 ms too, but never before they are in there: a slow start of the loop must
    not turn the test into another one."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    def then() -> None:
        loop.call_at(max(loop.time(), t0 + 0.1), scope.pause.set)

    return TriggerSink(entered(lab(fb, 2), "T2", "T3"), then)


@LABEL_STYLES
async def test_14_to_19_pause_and_resume(fb: bool) -> None:
    s1, s2, s3 = lab(fb, 1), lab(fb, 2), lab(fb, 3)
    scope = Scope()
    sink = pause_at_100ms(fb, scope)
    targets = ["T1", "T2", "T3"]

    # 14: pause after 100 ms -> paused, with a resume state
    first = await within(run_steps(pause_steps(fb), targets, scope=scope, sink=sink), 2)
    assert first.error is None
    assert first.result is not None and first.result.paused
    state = first.resume_state
    assert state

    # 15: garbage state
    bad = await within(run_steps(pause_steps(fb), targets, resume_state=b"FOO", run_id=5), 2)
    assert isinstance(bad.error, ResumeStateError)
    assert "invalid resume state" in str(bad.error)
    assert bad.resume_state is None
    assert bad.events() == []

    # 16: the version key renamed
    obj = json.loads(state)
    obj["X"] = obj.pop("V")
    bad = await within(
        run_steps(pause_steps(fb), targets, resume_state=json.dumps(obj).encode(), run_id=5), 2
    )
    assert isinstance(bad.error, ResumeStateError)
    assert "incompatible resume state" in str(bad.error)
    assert bad.resume_state is None

    # 17: another job's state
    assert b'"J":1' in state
    bad = await within(
        run_steps(
            pause_steps(fb), targets, resume_state=state.replace(b'"J":1', b'"J":2'), run_id=5
        ),
        2,
    )
    assert isinstance(bad.error, ResumeStateError)
    assert "wrong resume state" in str(bad.error)
    assert bad.resume_state is None

    # 18: the genuine state, as run 5, new target objects and new bundles
    second = await within(
        run_steps(pause_steps(fb), list(targets), resume_state=state, run_id=5, sink=sink), 2
    )
    assert second.error is None
    assert second.result is not None and not second.result.paused
    assert second.result.targets == {"T1": "target failed", "T2": None, "T3": None}

    # 19: step events: steps 1 and 2 in run 1 only, step 3 in run 5 only
    step_level = [(r, lb, n) for (r, lb, _t, n) in with_run(sink, target=None)]
    assert sorted(step_level) == sorted(
        [
            (1, s1, "TestStepRunningEvent"),
            (1, s1, "TestStepFinishedEvent"),
            (1, s2, "TestStepRunningEvent"),
            (1, s2, "TestStepFinishedEvent"),
            (5, s3, "TestStepRunningEvent"),
            (5, s3, "TestStepFinishedEvent"),
        ]
    )
    assert tuples(sink, label=s1, target=None) == step_pair(s1)
    assert tuples(sink, label=s2, target=None) == step_pair(s2)
    assert tuples(sink, label=s3, target=None, run_id=1) == []
    assert tuples(sink, label=s3, target=None, run_id=5) == step_pair(s3)
    # T1: only its failing step-1 events, all in run 1
    assert tuples(sink, target="T1") == failed(s1, "T1")
    assert tuples(sink, target="T1", run_id=1) == failed(s1, "T1")
    # T2, T3: steps 1-2 in run 1, step 3 in run 5; nothing repeated
    for tid in ("T2", "T3"):
        assert tuples(sink, target=tid, run_id=1) == passed(s1, tid) + passed(s2, tid)
        assert tuples(sink, target=tid, run_id=5) == passed(s3, tid)


@LABEL_STYLES
async def test_14b_resume_state_shape(fb: bool) -> None:
    """The saved state: version 2, job and run, each target's step and phase, the failed
    target's error, one (null) blob per step."""
    scope = Scope()
    out = await within(
        run_steps(pause_steps(fb), ["T1", "T2", "T3"], scope=scope, sink=pause_at_100ms(fb, scope)),
        2,
    )
    assert out.resume_state
    obj = json.loads(out.resume_state)
    assert obj["V"] == 2 and obj["J"] == 1 and obj["R"] == 1
    assert obj["T"]["T1"] == {"P": 5, "R": "target failed"}  # failed at step 0: S omitted
    assert obj["T"]["T2"] == {"S": 2, "P": 1}
    assert obj["T"]["T3"] == {"S": 2, "P": 1}
    assert obj["SRS"] == [None, None, None]


# --- 20: leaks ------------------------------------------------------------------------------------
# Every async test of this folder ends with a check that no task is left (conftest.py); the
# misbehaving steps above (NoReturn) included: the runner cancels what it abandons.
