"""The job runner, ConTest's ``pkg/runner/job_runner_test.go``."""

from __future__ import annotations

import pytest
from jobkit import Echo, FailFirstCall, ListTM, Recorder, bundle, job_of, tuples

from contest.errors import ContestError
from contest.job.runner import JobError, JobRunner, NothingAcquired
from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.resume import PausePayload
from contest.signals import Scope
from contest.testing.memstore import MemoryStore


def runner(store: MemoryStore, locker: InMemoryLocker | None = None) -> JobRunner:
    return JobRunner(
        sink=store,
        reader=store,
        reports=store,
        locker=locker or InMemoryLocker(),
        lock_duration=1.0,
        shutdown_timeout=3.0,
    )


async def test_one_step_one_target() -> None:  # 46
    store = MemoryStore()
    echo = Echo()
    job = job_of([bundle(echo, "Step1")], ListTM(["T1"]))
    assert await runner(store).run(job, Scope()) is None
    assert echo.seen == ["T1"]
    assert tuples(store.test, "T1") == [
        (0, "SimpleTest", "", "TargetAcquired", None),
        (0, "SimpleTest", "Step1", "TargetIn", None),
        (0, "SimpleTest", "Step1", "TargetOut", None),
        (0, "SimpleTest", "", "TargetReleased", None),
    ]


async def test_cleanup_step_runs_before_release() -> None:  # 47
    store = MemoryStore()
    job = job_of([bundle(Echo(), "Step1")], ListTM(["T1"]), cleanup=[bundle(Echo(), "Cleanup1")])
    assert await runner(store).run(job, Scope()) is None
    assert tuples(store.test, "T1") == [
        (0, "SimpleTest", "", "TargetAcquired", None),
        (0, "SimpleTest", "Step1", "TargetIn", None),
        (0, "SimpleTest", "Step1", "TargetOut", None),
        (0, "SimpleTest [CLEANUP]", "Cleanup1", "TargetIn", None),
        (0, "SimpleTest [CLEANUP]", "Cleanup1", "TargetOut", None),
        (0, "SimpleTest", "", "TargetReleased", None),
    ]


async def test_retry_after_a_failed_attempt() -> None:  # 48
    store = MemoryStore()
    rec = Recorder()
    job = job_of(
        [bundle(Echo(), "echo1"), bundle(FailFirstCall(), "flaky"), bundle(Echo(), "echo2")],
        ListTM(["T1"]),
        cleanup=[bundle(Echo(), "cleanup")],
        retries=1,
        retry_interval=0.001,
        reporter=rec,
    )
    assert await runner(store).run(job, Scope()) is None
    cleanup = "SimpleTest [CLEANUP]"
    assert tuples(store.test, "T1") == [
        (0, "SimpleTest", "", "TargetAcquired", None),
        (0, "SimpleTest", "echo1", "TargetIn", None),
        (0, "SimpleTest", "echo1", "TargetOut", None),
        (0, "SimpleTest", "flaky", "TargetIn", None),
        (0, "SimpleTest", "flaky", "TargetErr", {"Error": "some error"}),
        (0, cleanup, "cleanup", "TargetIn", None),
        (0, cleanup, "cleanup", "TargetOut", None),
        (0, "SimpleTest", "", "TargetReleased", None),
        (1, "SimpleTest", "", "TargetAcquired", None),
        (1, "SimpleTest", "echo1", "TargetIn", None),
        (1, "SimpleTest", "echo1", "TargetOut", None),
        (1, "SimpleTest", "flaky", "TargetIn", None),
        (1, "SimpleTest", "flaky", "TargetOut", None),
        (1, "SimpleTest", "echo2", "TargetIn", None),
        (1, "SimpleTest", "echo2", "TargetOut", None),
        (1, cleanup, "cleanup", "TargetIn", None),
        (1, cleanup, "cleanup", "TargetOut", None),
        (1, "SimpleTest", "", "TargetReleased", None),
    ]
    assert len(rec.runs) == 1
    (test_status,) = rec.runs[0].test_statuses
    assert test_status.target_statuses
    for ts in test_status.target_statuses:
        assert ts.error == ""
    for step in test_status.step_statuses:
        for ts in step.target_statuses:
            assert all(e.header.test_attempt == 1 for e in ts.events)
    # the status reflects the last attempt: echo2 saw T1 there
    assert [s.step_label for s in test_status.step_statuses] == ["echo1", "flaky", "echo2"]
    assert [len(s.target_statuses) for s in test_status.step_statuses] == [1, 1, 1]


async def test_acquire_fails_once_then_succeeds() -> None:  # 49
    store = MemoryStore()
    rec = Recorder()
    tm = ListTM(["T1"], fail=1)
    job = job_of(
        [bundle(Echo(), "echo")],
        tm,
        cleanup=[bundle(Echo(), "cleanup_1"), bundle(Echo(), "cleanup_2")],
        retries=2,
        reporter=rec,
    )
    assert await runner(store).run(job, Scope()) is None
    assert tm.acquired == 2
    assert tuples(store.test) == [
        (0, "SimpleTest", "", "TargetAcquireErr", {"Error": "some error"}),
        (1, "SimpleTest", "", "TargetAcquired", None),
        (1, "SimpleTest", "echo", "TargetIn", None),
        (1, "SimpleTest", "echo", "TargetOut", None),
        (1, "SimpleTest [CLEANUP]", "cleanup_1", "TargetIn", None),
        (1, "SimpleTest [CLEANUP]", "cleanup_1", "TargetOut", None),
        (1, "SimpleTest [CLEANUP]", "cleanup_2", "TargetIn", None),
        (1, "SimpleTest [CLEANUP]", "cleanup_2", "TargetOut", None),
        (1, "SimpleTest", "", "TargetReleased", None),
    ]
    (test_status,) = rec.runs[0].test_statuses
    assert [t.error for t in test_status.target_statuses] == [""]


async def test_acquire_always_fails() -> None:  # 50
    store = MemoryStore()
    rec = Recorder()
    job = job_of(
        [bundle(Echo(), "echo")],
        ListTM(["T1"], fail=99),
        cleanup=[bundle(Echo(), "cleanup")],
        retries=1,
        reporter=rec,
    )
    # the run tested nothing: the job fails with the acquisition's error (ConTest's job would
    # complete), after the run's reporters had their say
    with pytest.raises(NothingAcquired, match=r"^some error$"):
        await runner(store).run(job, Scope())
    assert tuples(store.test) == [
        (0, "SimpleTest", "", "TargetAcquireErr", {"Error": "some error"}),
        (1, "SimpleTest", "", "TargetAcquireErr", {"Error": "some error"}),
    ]
    (test_status,) = rec.runs[0].test_statuses
    assert test_status.target_statuses
    assert all(t.error for t in test_status.target_statuses)


async def test_resume_payload_of_another_job() -> None:  # 51
    store = MemoryStore()
    job = job_of([bundle(Echo(), "echo")], ListTM(["T1"]), job_id=7)
    with pytest.raises(JobError, match="wrong resume state"):
        await runner(store).run(job, Scope(), PausePayload(8, 1))


async def test_a_crashed_target_manager_fails_the_job_naming_it() -> None:
    class Broken(ListTM):
        async def acquire(self, *args: object, **kw: object) -> list:  # type: ignore[override]
            raise RuntimeError("boom")

    store = MemoryStore()
    job = job_of([bundle(Echo(), "echo")], Broken(["T1"]))
    with pytest.raises(JobError, match="target manager ListTM crashed in acquire"):
        await runner(store).run(job, Scope())


async def test_targets_locked_past_the_acquire_timeout_are_an_acquisition_failure() -> None:
    # the job waits for T1 (job 99's) for the acquire timeout, then fails its attempt, then the
    # job: its run tested nothing (ConTest's would fail the attempt at once, then complete)
    store = MemoryStore()
    locker = InMemoryLocker()
    await locker.lock(99, 60.0, ["T1"])
    job = job_of([bundle(Echo(), "echo")], ListTM(["T1"]))
    job.tests[0].acquire_timeout = 0.3
    run = JobRunner(
        sink=store, reader=store, reports=store, locker=locker, lock_duration=1.0, wait_poll=0.05
    )
    message = "could not acquire targets within 300ms: T1 held by job 99"
    with pytest.raises(NothingAcquired) as info:
        await run.run(job, Scope())
    assert str(info.value) == message
    assert [(name, payload) for _, _, _, name, payload in tuples(store.test)] == [
        ("TargetsWaiting", {"Targets": ["T1"], "HeldBy": {"T1": 99}, "Timeout": "300ms"}),
        ("TargetsWaitEnded", {"Acquired": False, "Error": message}),
        ("TargetAcquireErr", {"Error": message}),
    ]


async def test_targets_are_unlocked_after_the_test() -> None:
    store = MemoryStore()
    locker = InMemoryLocker()
    job = job_of([bundle(Echo(), "echo")], ListTM(["T1", "T2"]))
    await runner(store, locker).run(job, Scope())
    await locker.lock(2, 60.0, ["T1", "T2"])  # would raise if job 1 still held them


async def test_contest_error_in_reporter_is_a_failed_report() -> None:
    class Grumpy(Recorder):
        async def run_report(self, *a: object, **k: object) -> tuple[bool, object]:  # type: ignore[override]
            raise ContestError("no")

    store = MemoryStore()
    job = job_of([bundle(Echo(), "echo")], ListTM(["T1"]), reporter=Grumpy())
    assert await runner(store).run(job, Scope()) is None
    rep = await store.job_report(1)
    assert [(r.reporter_name, r.success, r.data) for r in rep.run_reports[0]] == [
        ("Recorder", False, None)
    ]
    assert [(r.reporter_name, r.success) for r in rep.final_reports] == [("Recorder", True)]
