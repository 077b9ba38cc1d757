"""The job manager across a shutdown: cancel, pause, resume by a new manager, failed resume,
zombies, lock refresh (ConTest's ``tests/integ/jobmanager/common.go`` and
``pkg/jobmanager/resume.go``), on every store and locker (see conftest.py).

A "restart" is a new ``JobManager`` on the same store with the same server ID (and, for the DB
locker, a new locker on the same database). Pauses are requested when the stored events show
the job at the wanted point (ConTest sleeps 250/750/1250 ms instead), so the tests do not depend
on the machine's speed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from contest import events
from contest.job.build import load_job
from contest.job.manager import JobManager
from contest.storage import JobRequest, JobState

S = JobState
RESUME_TEST = "IntegrationTest: resume"


def slow_echo(env, seconds: str = "0.5"):
    return env.descriptor(
        [env.step("slowecho", "slowecho_label", sleep=seconds, text="Hello world")],
        test_name="IntegrationTest: slow echo",
    )


def two_runs(env):
    """ConTest's ``jobDescriptorSlowEcho2``: 2 runs 0.5 s apart, steps of 0.5 s and 0 s."""
    return env.descriptor(
        [
            env.step("slowecho", "Step1", sleep="0.5", text="Hello step1"),
            env.step("slowecho", "Step2", sleep="0", text="Hello step 2"),
        ],
        test_name=RESUME_TEST,
        runs=2,
        run_interval="0.5s",
    )


def clean_log(run_ids: tuple[int, ...] = (1, 2)) -> list[tuple[int, str, int, str, str]]:
    """id1's events in an uninterrupted run of ``two_runs``."""
    out = []
    for run in run_ids:
        out += [
            (run, RESUME_TEST, 0, "", "TargetAcquired"),
            (run, RESUME_TEST, 0, "Step1", "TargetIn"),
            (run, RESUME_TEST, 0, "Step1", "TargetOut"),
            (run, RESUME_TEST, 0, "Step2", "TargetIn"),
            (run, RESUME_TEST, 0, "Step2", "TargetOut"),
            (run, RESUME_TEST, 0, "", "TargetReleased"),
        ]
    return out


async def entered(env, job_id: int, run_id: int, label: str) -> None:
    """Wait until every target has entered step ``label`` of run ``run_id``."""

    async def check() -> bool:
        found = await env.store.test_events(
            events.TestEventQuery(
                job_id=job_id, run_id=run_id, step_labels=[label], event_names=["TargetIn"]
            )
        )
        return {e.target.id for e in found if e.target} == set(env.TARGETS)

    await env.wait_until(f"job {job_id}: targets in {label} of run {run_id}", check)


async def write_event(env, job_id: int, name: str, payload: Any = None) -> None:
    pending = env.store.write_framework_event(
        events.FrameworkEvent(job_id, name, payload, time.time())
    )
    if pending is not None:
        await pending


# --- 95 / 52: cancel the manager -------------------------------------------------------------


async def test_cancel_manager_cancels_the_job_and_unlocks(jm_env, jm: JobManager) -> None:
    job_id = await jm.submit(slow_echo(jm_env), "integration-test")
    await jm_env.wait_for(job_id, S.STARTED, timeout=1.0)
    await entered(jm_env, job_id, 1, "slowecho_label")
    assert sorted(await jm_env.locked()) == ["id1", "id2"]
    started = time.monotonic()
    await jm_env.cancel_and_exit(jm, timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert len(await jm_env.events_named(job_id, "JobStateCancelled")) == 1
    assert await jm_env.states(job_id) == ["JobStateStarted", "JobStateCancelled"]
    assert await jm_env.locked() == []
    log = await jm_env.target_log(job_id, "id1")
    # ConTest stops at TargetReleased, the target "in" its step for good; we close it with a
    # TargetErr naming the cancel (docs/migrating-from-contest.md, "Targets left inside a step")
    assert [e[-1] for e in log] == ["TargetAcquired", "TargetIn", "TargetReleased", "TargetErr"]


# --- 96 / 53: pause the manager --------------------------------------------------------------


async def test_pause_manager_pauses_the_job_and_keeps_locks(jm_env, jm: JobManager) -> None:
    job_id = await jm.submit(slow_echo(jm_env), "integration-test")
    await jm_env.wait_for(job_id, S.STARTED, timeout=1.0)
    await entered(jm_env, job_id, 1, "slowecho_label")
    await jm_env.pause_and_exit(jm, timeout=3.0)
    (paused,) = await jm_env.events_named(job_id, "JobStatePaused")
    assert await jm_env.states(job_id) == ["JobStateStarted", "JobStatePaused"]
    assert sorted(await jm_env.locked()) == ["id1", "id2"]
    payload = paused.payload
    assert (payload["V"], payload["J"], payload["R"], payload["T"]) == (1, job_id, 1, 1)
    assert [t["ID"] for t in payload["TT"]] == ["id1", "id2"]
    assert await jm.list(states=[S.PAUSED]) == [job_id]
    # nothing was released
    log = await jm_env.target_log(job_id, "id1")
    assert "TargetReleased" not in [e[-1] for e in log]


# --- 97, 98 / 54-56: pause anywhere, resume in a new manager ---------------------------------


@pytest.mark.parametrize("moment", ["run 1", "between runs", "run 2"])
async def test_pause_and_resume_in_a_new_manager(jm_env, moment: str) -> None:
    jm = await jm_env.started(resume_jobs=True)
    job_id = await jm.submit(two_runs(jm_env), "integration-test")
    await jm_env.wait_for(job_id, S.STARTED, timeout=1.0)
    if moment == "run 1":
        await entered(jm_env, job_id, 1, "Step1")
    elif moment == "between runs":

        async def run1_reported() -> bool:
            return len((await jm_env.report(job_id)).run_reports) == 1

        await jm_env.wait_until("the report of run 1", run1_reported)
    else:
        await entered(jm_env, job_id, 2, "Step1")
    await jm_env.pause_and_exit(jm, timeout=3.0)
    assert len(await jm_env.events_named(job_id, "JobStatePaused")) == 1

    # paused in a run: the targets stay locked; between runs: nobody holds them
    locked = await jm_env.locked()
    if moment == "between runs":
        assert locked == []
        report = await jm_env.report(job_id)
        assert (len(report.run_reports), len(report.final_reports)) == (1, 0)
        assert await jm_env.target_log(job_id, "id1", [RESUME_TEST]) == clean_log((1,))
    else:
        assert sorted(locked) == ["id1", "id2"]

    # a new manager (a restarted server) resumes the job and runs it to completion
    jm2 = await jm_env.started(resume_jobs=True, locker=jm_env.restarted_locker())
    await jm_env.wait_for(job_id, S.COMPLETED, timeout=5.0)
    await jm_env.cancel_and_exit(jm2, timeout=3.0)
    assert len(await jm_env.events_named(job_id, "JobStateCompleted")) == 1
    assert await jm_env.states(job_id) == [
        "JobStateStarted",
        "JobStatePaused",
        "JobStateStarted",
        "JobStateCompleted",
    ]
    assert await jm_env.locked() == []
    # the pause left no trace: one acquisition and one release per run, nothing twice
    assert await jm_env.target_log(job_id, "id1", [RESUME_TEST]) == clean_log()
    assert await jm_env.target_log(job_id, "id2", [RESUME_TEST]) == clean_log()
    runs = await jm_env.events_named(job_id, "RunStarted")
    assert [e.payload["RunID"] for e in runs] == [1, 2]
    report = await jm_env.report(job_id)
    assert [[r.run_id for r in run] for run in report.run_reports] == [[1], [2]]
    assert all(r.success for run in report.run_reports for r in run)
    doc = await jm2.status(job_id)
    assert doc["State"] == "JobStateCompleted" and len(doc["RunStatuses"]) == 2


# --- 99 / 57: the pause payload's version does not match -------------------------------------


@pytest.mark.parametrize("bump", ["server", "payload"])
async def test_resume_with_another_payload_version_fails_and_keeps_locks(
    jm_env, monkeypatch: pytest.MonkeyPatch, bump: str
) -> None:
    jm = await jm_env.started(resume_jobs=True)
    job_id = await jm.submit(two_runs(jm_env), "integration-test")
    # ConTest pauses in run 2; any pause that holds the targets will do (run 1 is quicker)
    await entered(jm_env, job_id, 1, "Step1")
    await jm_env.pause_and_exit(jm, timeout=3.0)
    assert sorted(await jm_env.locked()) == ["id1", "id2"]

    if bump == "server":  # ConTest's test: the restarted server speaks another version
        monkeypatch.setattr("contest.resume.PAUSE_PAYLOAD_VERSION", 2)
        want, got = 2, 1
    else:  # the stored payload is from a newer server
        (paused,) = await jm_env.events_named(job_id, "JobStatePaused")
        await write_event(jm_env, job_id, "JobStatePaused", {**paused.payload, "V": 2})
        want, got = 1, 2

    jm2 = await jm_env.started(resume_jobs=True, locker=jm_env.restarted_locker())
    await jm_env.wait_for(job_id, S.FAILED, timeout=5.0)
    await jm_env.cancel_and_exit(jm2)
    (failed,) = await jm_env.events_named(job_id, "JobStateFailed")
    assert failed.payload == {
        "Err": f"failed to resume job {job_id}: incompatible resume state version "
        f"(want {want}, got {got})"
    }
    assert "JobStateCompleted" not in await jm_env.states(job_id)
    # nobody can release the targets without the state: they stay locked until the lease ends
    assert sorted(await jm_env.locked()) == ["id1", "id2"]
    monkeypatch.undo()
    doc = await jm2.status(job_id)
    assert doc["State"] == "JobStateFailed"
    assert doc["StateErrMsg"].startswith(f"failed to resume job {job_id}:")


async def test_resume_only_with_resume_jobs_and_on_one_server_only_this_server(jm_env) -> None:
    jm = await jm_env.started()
    job_id = await jm.submit(slow_echo(jm_env, "0.3"), "integration-test")
    await entered(jm_env, job_id, 1, "slowecho_label")
    await jm_env.pause_and_exit(jm)

    no_resume = await jm_env.started(resume_jobs=False, locker=jm_env.restarted_locker())
    # one server per database (SQLite): ConTest's rule, only this ServerID's paused jobs
    other = await jm_env.started(resume_jobs=True, server_id="another-server", single_server=True)
    await asyncio.sleep(0.3)
    assert other.jobs == {} and no_resume.jobs == {}
    assert await jm_env.states(job_id) == ["JobStateStarted", "JobStatePaused"]
    assert sorted(await jm_env.locked()) == ["id1", "id2"]
    await other.close()

    # servers sharing a database: a paused job nobody owns is any server's (a drain hands
    # jobs over), taken by one pass of the claim loop
    shared = await jm_env.started(
        resume_jobs=True, server_id="another-server", locker=jm_env.restarted_locker()
    )
    assert list(shared.jobs) == [job_id]
    assert await shared.claim_jobs() == []  # nothing left to take
    await jm_env.wait_for(job_id, JobState.COMPLETED, timeout=10.0)


# --- zombies ---------------------------------------------------------------------------------


async def left_behind(
    env: Any, state: JobState, *, server_id: str, tags: tuple[str, ...] = ("integration_testing",)
) -> int:
    """A job as a manager that died while running it leaves it: stored, in ``state``."""
    descriptor = env.descriptor([env.step("noop", "noop_label")])
    _, _, ext = await load_job(descriptor, env.registry)
    job_id: int = await env.store.store_job(
        JobRequest(
            name="test job",
            requestor="integration-test",
            server_id=server_id,
            descriptor=descriptor,
            extended_descriptor=ext.to_json(),
            tags=tuple(tags),
        )
    )
    await write_event(env, job_id, "JobStateStarted")
    if state is S.CANCELLING:
        await write_event(env, job_id, "JobStateCancelling")
    return job_id


async def test_zombies_are_failed_at_start_up(jm_env) -> None:
    server = jm_env.SERVER_ID
    zombie = await left_behind(jm_env, S.STARTED, server_id=server)
    cancelling = await left_behind(jm_env, S.CANCELLING, server_id=server)
    elsewhere = await left_behind(jm_env, S.STARTED, server_id="another-server")

    jm = await jm_env.started()
    for job_id in (zombie, cancelling):
        (failed,) = await jm_env.events_named(job_id, "JobStateFailed")
        err = failed.payload["Err"]
        assert err.startswith(f"Job {job_id} was zombieed")
        assert server in err
        doc = await jm.status(job_id)
        assert doc["State"] == "JobStateFailed" and doc["StateErrMsg"] == err
    assert await jm_env.states(elsewhere) == ["JobStateStarted"]
    assert await jm.list(states=[S.FAILED]) == [zombie, cancelling]
    assert await jm.list(states=[S.STARTED]) == [elsewhere]
    # a second start-up finds nothing more to do
    await jm.close()
    await jm_env.started()
    assert len(await jm_env.events_named(zombie, "JobStateFailed")) == 1


async def test_zombies_of_another_instance_are_left_alone(jm_env) -> None:
    server = jm_env.SERVER_ID
    mine = await left_behind(jm_env, S.STARTED, server_id=server, tags=("t", "_A"))
    theirs = await left_behind(jm_env, S.STARTED, server_id=server, tags=("t", "_B"))
    await jm_env.started(instance_tag="_A")
    assert (await jm_env.states(mine))[-1] == "JobStateFailed"
    assert await jm_env.states(theirs) == ["JobStateStarted"]


async def test_start_up_without_resume_fails_zombies_and_leaves_paused_jobs(jm_env) -> None:
    """--no-resume-jobs: ConTest's start-up."""
    jm = await jm_env.started()
    paused = await jm.submit(slow_echo(jm_env, "0.3"), "integration-test")
    await entered(jm_env, paused, 1, "slowecho_label")
    await jm_env.pause_and_exit(jm)
    zombie = await left_behind(jm_env, S.STARTED, server_id=jm_env.SERVER_ID)

    again = await jm_env.started(resume_jobs=False, locker=jm_env.restarted_locker())
    assert (await jm_env.states(zombie))[-1] == "JobStateFailed"
    assert again.jobs == {}
    assert await jm_env.states(paused) == ["JobStateStarted", "JobStatePaused"]


async def test_start_up_resumes_zombies_and_paused_jobs(jm_env) -> None:
    """The default (--resume-jobs): a job nobody runs is resumed, crashed or paused."""
    jm = await jm_env.started()
    paused = await jm.submit(slow_echo(jm_env, "0.3"), "integration-test")
    await entered(jm_env, paused, 1, "slowecho_label")
    await jm_env.pause_and_exit(jm)
    zombie = await left_behind(jm_env, S.STARTED, server_id=jm_env.SERVER_ID)

    await jm_env.started(resume_jobs=True, locker=jm_env.restarted_locker())
    await jm_env.wait_for(zombie, S.COMPLETED, timeout=5.0)
    assert await jm_env.states(zombie) == [
        "JobStateStarted",
        "JobStateStarted",
        "JobStateCompleted",
    ]
    await jm_env.wait_for(paused, S.COMPLETED, timeout=5.0)
    assert await jm_env.states(paused) == [
        "JobStateStarted",
        "JobStatePaused",
        "JobStateStarted",
        "JobStateCompleted",
    ]
    log = await jm_env.target_log(paused, "id1")
    assert [e[-1] for e in log] == ["TargetAcquired", "TargetIn", "TargetOut", "TargetReleased"]
    assert await jm_env.locked() == []


# --- lock refresh (pkg/runner/job_runner.go) ------------------------------------------------------


async def test_locks_outlive_their_lease_while_the_job_runs_and_pauses(jm_env) -> None:
    lease = 0.6  # refreshed every 0.54 s
    wait = 0.8  # longer than a lease: without refreshes the locks would have run out
    jm = await jm_env.started(lock_duration=lease)
    job_id = await jm.submit(slow_echo(jm_env, "1.0"), "integration-test")
    await entered(jm_env, job_id, 1, "slowecho_label")
    await asyncio.sleep(wait)
    assert sorted(await jm_env.locked()) == ["id1", "id2"]
    jm.pause_all()
    assert await jm.wait_all(3.0)
    assert await jm_env.states(job_id) == ["JobStateStarted", "JobStatePaused"]
    await asyncio.sleep(wait)  # a paused job's locks are refreshed while the manager lives
    assert sorted(await jm_env.locked()) == ["id1", "id2"]
    await jm.close()
    # after exit nobody refreshes them: they run out one lease after the last refresh
    await asyncio.sleep(wait)
    assert await jm_env.locked() == []


async def test_a_job_of_a_manager_that_died_is_failed_by_the_next_one(jm_env) -> None:
    """--no-resume-jobs: the manager's process dies mid-job: its tasks stop where they are,
    nothing more is written; once the job's lease has lapsed, the next manager fails the job
    as a zombie (at start-up, or at its next sweep: at most a lease later)."""
    dead = await jm_env.started(job_lease=1.0)
    job_id = await dead.submit(slow_echo(jm_env, "5"), "integration-test")
    await entered(jm_env, job_id, 1, "slowecho_label")
    for entry in dead.jobs.values():  # the process is gone: no pause, no cancel, no release
        assert entry.task is not None
        entry.task.cancel()
    await asyncio.gather(*(e.task for e in dead.jobs.values() if e.task), return_exceptions=True)
    dead.jobs.clear()
    await dead.close()
    await jm_env.flush()
    assert await jm_env.states(job_id) == ["JobStateStarted"]

    jm = await jm_env.started(resume_jobs=False, locker=jm_env.restarted_locker(), job_lease=1.0)
    await jm_env.wait_for(job_id, S.FAILED, timeout=5.0)
    (failed,) = await jm_env.events_named(job_id, "JobStateFailed")
    assert failed.payload["Err"].startswith(f"Job {job_id} was zombieed")
    assert (await jm.status(job_id))["State"] == "JobStateFailed"
    assert jm.jobs == {}
    # nobody released the targets: their leases run out in their own time
    assert sorted(await jm_env.locked()) == ["id1", "id2"]


def two_steps(env, seconds: str) -> str:
    return env.descriptor(
        [
            env.step("slowecho", "first", sleep="0", text="one"),
            env.step("slowecho", "second", sleep=seconds, text="two"),
        ],
        test_name="IntegrationTest: takeover",
    )


async def die(env, dead: JobManager) -> None:
    """What kill -9 leaves: the job's tasks stop where they are, nothing more is written."""
    for entry in dead.jobs.values():
        assert entry.task is not None
        entry.task.cancel()
    await asyncio.gather(*(e.task for e in dead.jobs.values() if e.task), return_exceptions=True)
    dead.jobs.clear()
    await dead.close()
    await env.flush()


async def test_reports_made_before_a_server_died_are_not_made_again(jm_env) -> None:
    """The server dies between run 1's reports and run 2's start (in the run interval): the
    job resumed elsewhere goes on with run 2, and each run's report and the final report are
    made, and stored, once (``JobRunner._reported``)."""
    desc = jm_env.descriptor(
        [jm_env.step("slowecho", "nap", sleep="0", text="zz")],
        test_name="IntegrationTest: reports",
        runs=2,
        run_interval="1s",
        final_reporters=[{"Name": "noop"}],
    )
    dead = await jm_env.started(job_lease=1.0)
    job_id = await dead.submit(desc, "integration-test")

    async def run_one_reported() -> bool:
        return bool((await jm_env.report(job_id)).run_reports)

    await jm_env.wait_until(f"job {job_id}: run 1 reported", run_one_reported)
    await die(jm_env, dead)

    jm = await jm_env.started(resume_jobs=True, locker=jm_env.restarted_locker(), job_lease=1.0)
    await jm_env.wait_for(job_id, S.COMPLETED, timeout=10.0)
    report = await jm_env.report(job_id)
    assert [[(r.run_id, r.reporter_name) for r in run] for run in report.run_reports] == [
        [(1, "TargetSuccess")],
        [(2, "TargetSuccess")],
    ]
    assert [(r.run_id, r.reporter_name) for r in report.final_reports] == [(0, "noop")]
    runs = await jm_env.events_named(job_id, "RunStarted")
    assert [e.payload["RunID"] for e in runs] == [1, 2]
    assert (await jm.status(job_id))["State"] == "JobStateCompleted"


async def test_a_job_of_a_manager_that_died_is_resumed_from_its_events(jm_env) -> None:
    """The default: the next manager claims the job once its lease lapsed and resumes it where
    its events leave it: targets that finished step "first" do not enter it again, targets
    inside "second" re-enter it, the lost attempt marked TargetInterrupted (naming the dead
    instance); the locks moved with the job (same job ID), and are freed at its end."""
    dead = await jm_env.started(job_lease=1.0)
    job_id = await dead.submit(two_steps(jm_env, "0.8"), "integration-test")
    await entered(jm_env, job_id, 1, "second")
    lost = dead.instance_id
    await die(jm_env, dead)
    assert await jm_env.states(job_id) == ["JobStateStarted"]

    jm = await jm_env.started(resume_jobs=True, locker=jm_env.restarted_locker(), job_lease=1.0)
    await jm_env.wait_for(job_id, S.COMPLETED, timeout=10.0)
    assert await jm_env.states(job_id) == [
        "JobStateStarted",
        "JobStateStarted",
        "JobStateCompleted",
    ]
    for target in jm_env.TARGETS:
        log = [e[-2:] for e in await jm_env.target_log(job_id, target)]
        assert log == [
            ("", "TargetAcquired"),
            ("first", "TargetIn"),
            ("first", "TargetOut"),
            ("second", "TargetIn"),
            ("second", "TargetInterrupted"),
            ("second", "TargetIn"),
            ("second", "TargetOut"),
            ("", "TargetReleased"),
        ], (target, log)
    marks = await jm_env.store.test_events(
        events.TestEventQuery(job_id=job_id, event_names=["TargetInterrupted"])
    )
    assert {e.payload["Server"] for e in marks} == {lost}
    assert {e.payload["By"] for e in marks} == {jm.instance_id}
    doc = await jm.status(job_id)
    assert doc["State"] == "JobStateCompleted"
    assert await jm_env.locked() == []
