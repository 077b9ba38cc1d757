"""The job manager, ConTest's integration tests
(``tests/integ/jobmanager/common.go``), on every store and locker (see conftest.py).

The descriptors are ConTest's integration ones (TargetList with id1 and id2, literal fetcher,
TargetSuccess ``>0%``, tag ``integration_testing``), built by ``jm_env.descriptor``.
"""

from __future__ import annotations

import json

import pytest

from contest import events
from contest.events import TestEventQuery
from contest.job import manager as manager_module
from contest.job.descriptor import DescriptorValidationError
from contest.job.manager import JobManager, JobManagerError
from contest.storage import JobRequest, JobState
from contest.target import Target

S = JobState


def noop(env, **kw):
    return env.descriptor([env.step("noop", "noop_label")], test_name="IntegrationTest: noop", **kw)


def slow_echo(env, seconds: str = "0.5", **kw):
    return env.descriptor(
        [env.step("slowecho", "slowecho_label", sleep=seconds, text="Hello world")],
        test_name="IntegrationTest: slow echo",
        **kw,
    )


def crash(env, **kw):
    return env.descriptor(
        [env.step("crash", "crash_label")], test_name="IntegrationTest: crash", **kw
    )


async def finished(env, jm: JobManager, descriptor: str, state: JobState = S.COMPLETED) -> int:
    job_id = await jm.submit(descriptor, "integration-test")
    await env.wait_for(job_id, state)
    await jm.wait_all(5.0)
    return job_id


# --- 87 / 37: a noop job ---------------------------------------------------------------------


async def test_noop_job_starts_and_completes(jm_env, jm: JobManager) -> None:
    descriptor = noop(jm_env)
    job_id = await jm.submit(descriptor, "integration-test")
    assert job_id > 0
    await jm_env.wait_for(job_id, S.STARTED, timeout=1.0)
    await jm_env.wait_for(job_id, S.COMPLETED, timeout=1.0)
    assert await jm_env.states(job_id) == ["JobStateStarted", "JobStateCompleted"]

    req = await jm.request(job_id)
    assert req is not None
    assert req.job_id == job_id
    assert req.requestor == "integration-test"
    assert req.server_id == jm.server_id
    assert req.name == "test job"
    assert json.loads(req.descriptor)["TestDescriptors"][0]["TargetManagerName"] == "TargetList"
    assert req.extended_descriptor
    assert req.state is S.COMPLETED
    assert req.tags == ("integration_testing",)

    # an unknown ID: no request (the API answers an error), and status is an error
    assert await jm.request(job_id + 1) is None
    with pytest.raises(JobManagerError, match=f"could not find job request with id {job_id + 1}"):
        await jm.status(job_id + 1)
    # the targets were given back
    assert await jm_env.locked() == []


async def test_noop_job_status_document(jm_env, jm: JobManager) -> None:
    job_id = await finished(jm_env, jm, noop(jm_env))
    doc = await jm.status(job_id)
    assert doc["Name"] == "test job"
    assert doc["State"] == "JobStateCompleted"
    assert doc["StateErrMsg"] == ""
    assert doc["StartTime"] and doc["EndTime"]
    assert len(doc["RunStatuses"]) == 1
    assert doc["RunStatus"] == doc["RunStatuses"][0]
    (test,) = doc["RunStatus"]["TestStatuses"]
    assert test["TestName"] == "IntegrationTest: noop"
    assert [t["Target"]["ID"] for t in test["TargetStatuses"]] == ["id1", "id2"]
    assert all(t["Error"] in ("", None) for t in test["TargetStatuses"])
    (step,) = test["TestStepStatuses"]
    assert step["TestStepLabel"] == "noop_label"
    reports = doc["JobReport"]["RunReports"]
    assert len(reports) == 1 and len(reports[0]) == 1
    assert reports[0][0]["ReporterName"] == "TargetSuccess"
    assert reports[0][0]["Success"] is True
    assert doc["JobReport"]["FinalReports"] is None
    json.dumps(doc)  # the document is plain JSON


# --- 88 / 39: job report ---------------------------------------------------------------------


async def test_job_report_counts(jm_env, jm: JobManager) -> None:
    job_id = await finished(jm_env, jm, noop(jm_env))
    report = await jm_env.report(job_id)
    assert report.job_id == job_id
    assert len(report.run_reports) == 1
    assert len(report.final_reports) == 0
    (only,) = report.run_reports[0]
    assert (only.run_id, only.reporter_name, only.success) == (1, "TargetSuccess", True)

    unknown = await jm_env.report(job_id + 1)
    assert (unknown.job_id, unknown.run_reports, unknown.final_reports) == (job_id + 1, [], [])


async def test_final_reports_are_counted_once_per_job(jm_env, jm: JobManager) -> None:
    descriptor = noop(
        jm_env,
        runs=2,
        run_interval="10ms",
        final_reporters=[{"Name": "noop"}],
    )
    job_id = await finished(jm_env, jm, descriptor)
    report = await jm_env.report(job_id)
    assert [[r.run_id for r in run] for run in report.run_reports] == [[1], [2]]
    assert [(r.run_id, r.reporter_name) for r in report.final_reports] == [(0, "noop")]


# --- 89 / 40: stop ---------------------------------------------------------------------------


async def test_stop_cancels_the_job(jm_env, jm: JobManager) -> None:
    job_id = await jm.submit(slow_echo(jm_env), "integration-test")
    await jm_env.wait_for(job_id, S.STARTED, timeout=1.0)
    await jm.stop(job_id)
    await jm_env.wait_for(job_id, S.CANCELLED, timeout=1.0)
    assert await jm_env.states(job_id) == [
        "JobStateStarted",
        "JobStateCancelling",
        "JobStateCancelled",
    ]
    assert await jm.wait_all(2.0)
    assert await jm_env.locked() == []
    # a job that is not running cannot be stopped
    with pytest.raises(JobManagerError, match=f"could not stop job: unknown job ID: {job_id}"):
        await jm.stop(job_id)
    with pytest.raises(JobManagerError, match="unknown job ID: 12345"):
        await jm.stop(12345)
    doc = await jm.status(job_id)
    assert doc["State"] == "JobStateCancelled" and doc["EndTime"]


# --- 90 / 41: failing targets still complete the job ----------------------------------------


async def test_fail_step_job_completes_with_a_failed_report(jm_env, jm: JobManager) -> None:
    descriptor = jm_env.descriptor(
        [jm_env.step("fail", "fail_label")], test_name="IntegrationTest: fail"
    )
    job_id = await finished(jm_env, jm, descriptor)
    assert await jm_env.states(job_id) == ["JobStateStarted", "JobStateCompleted"]
    report = await jm_env.report(job_id)
    assert len(report.run_reports) == 1 and len(report.final_reports) == 0
    (only,) = report.run_reports[0]
    assert only.success is False  # TargetSuccess >0%: no target passed
    doc = await jm.status(job_id)
    errors = [t["Error"] for t in doc["RunStatus"]["TestStatuses"][0]["TargetStatuses"]]
    assert errors == [
        'Integration test failure for Target{ID: "id1"}',
        'Integration test failure for Target{ID: "id2"}',
    ]
    assert await jm_env.locked() == []


# --- 91 / 42: a crashing step fails the job --------------------------------------------------


async def test_crash_step_fails_the_job(jm_env, jm: JobManager) -> None:
    job_id = await finished(jm_env, jm, crash(jm_env), S.FAILED)
    assert await jm_env.states(job_id) == ["JobStateStarted", "JobStateFailed"]
    (failed,) = await jm_env.events_named(job_id, "JobStateFailed")
    assert isinstance(failed.payload, dict)
    assert "TestStep crashed" in failed.payload["Err"]
    assert failed.payload["Err"].startswith(f"Job {job_id} failed after ")
    report = await jm_env.report(job_id)
    assert (report.run_reports, report.final_reports) == ([], [])
    doc = await jm.status(job_id)
    assert doc["State"] == "JobStateFailed"
    assert "TestStep crashed" in doc["StateErrMsg"]
    assert doc["JobReport"] == {"JobID": job_id, "RunReports": None, "FinalReports": None}
    # targets are released before the job fails
    assert await jm_env.locked() == []


async def test_a_failed_job_closes_the_targets_it_left_inside_a_step(
    jm_env, jm: JobManager
) -> None:
    """TDrop goes in and never comes out, then TDup comes back twice (a broken step: the job
    fails): the job manager closes TDrop with a TargetErr naming the cause before the job's
    final state, so no status shows it in the step for good (ConTest writes nothing for it)."""
    desc = jm_env.descriptor(
        [jm_env.step("badtargets", "bad")],
        test_name="IntegrationTest: bad",
        targets=["TDrop", "TDup"],
    )
    job_id = await finished(jm_env, jm, desc, S.FAILED)
    log = [e[-1] for e in await jm_env.target_log(job_id, "TDrop")]
    assert log == ["TargetAcquired", "TargetIn", "TargetReleased", "TargetErr"]
    (closing,) = await jm_env.store.test_events(
        TestEventQuery(job_id=job_id, target_ids=["TDrop"], event_names=["TargetErr"])
    )
    assert closing.payload == {"Error": f'job {job_id} failed while the target was in step "bad"'}
    doc = await jm.status(job_id)
    for step in doc["RunStatus"]["TestStatuses"][0]["TestStepStatuses"]:
        for ts in step["TargetStatuses"] or []:
            assert ts["OutTime"] != "0001-01-01T00:00:00Z", ts
    assert await jm_env.locked() == []


async def test_a_zombie_is_closed_page_by_page(jm_env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The routing events of a zombie are read a page at a time (4 here): each target still
    inside a step, in any step, gets one closing TargetErr; those that left get none."""
    monkeypatch.setattr(manager_module, "_ROUTING_PAGE", 4)
    job_id = await jm_env.store.store_job(
        JobRequest(name="zombie", requestor="x", server_id=jm_env.SERVER_ID, descriptor="{}")
    )
    pending = jm_env.store.write_framework_event(events.FrameworkEvent(job_id, "JobStateStarted"))
    if pending is not None:
        await pending
    one = events.TestEventHeader(job_id, 1, "t", "one")
    two = events.TestEventHeader(job_id, 1, "t", "two")
    written = []
    for i in range(10):
        written.append(events.TestEvent(one, Target(f"t{i}"), "TargetIn"))
        if i % 2 == 0:  # the even ones passed step one and are inside step two
            written.append(events.TestEvent(one, Target(f"t{i}"), "TargetOut"))
            written.append(events.TestEvent(two, Target(f"t{i}"), "TargetIn"))
    for ev in written:
        pending = jm_env.store.write_test_event(ev)
        if pending is not None:
            await pending
    await jm_env.started()
    assert await jm_env.states(job_id) == ["JobStateStarted", "JobStateFailed"]
    closing = await jm_env.store.test_events(
        TestEventQuery(job_id=job_id, event_names=["TargetErr"])
    )
    got = sorted((e.header.step_label, e.target.id) for e in closing if e.target)
    assert got == sorted(
        [("one", f"t{i}") for i in range(1, 10, 2)] + [("two", f"t{i}") for i in range(0, 10, 2)]
    )


# --- 92-94 / 43-49: rejected descriptors -----------------------------------------------------


def _bad_descriptors(env):
    noop_step = env.step("noop", "some_label_here")
    return {
        "no label": (
            env.descriptor([env.step("noop", None)], test_name="IntegrationTest: no_label"),
            "step has no label",
        ),
        "duplicate labels": (
            env.descriptor([noop_step, env.step("noreturn", "some_label_here")]),
            "found duplicated labels",
        ),
        "null step": (env.descriptor([noop_step, None]), "test step description is null"),
        "bad tag": (
            slow_echo(env, "2", extra_tags=["a bad one"]),
            '"a bad one" is not a valid tag',
        ),
        "internal tag": (slow_echo(env, "2", extra_tags=["_foo"]), '"_foo" is an internal tag'),
        "duplicate tag": (slow_echo(env, "2", extra_tags=["qwe", "qwe"]), 'duplicate tag "qwe"'),
    }


_NULL_TEST = json.dumps(
    {
        "JobName": "test job",
        "Version": "1.0",
        "Tags": ["integration_testing"],
        "TestDescriptors": [None],
        "Reporting": {
            "RunReporters": [{"Name": "TargetSuccess", "Parameters": {"SuccessExpression": ">0%"}}]
        },
    }
)


@pytest.mark.parametrize(
    "case",
    [
        "no label",
        "duplicate labels",
        "null step",
        "null test",
        "bad tag",
        "internal tag",
        "duplicate tag",
    ],
)
async def test_bad_descriptor_is_rejected_and_nothing_stored(
    jm_env, jm: JobManager, case: str
) -> None:
    if case == "null test":
        descriptor, message = _NULL_TEST, "test description is null"
    else:
        descriptor, message = _bad_descriptors(jm_env)[case]
    with pytest.raises(DescriptorValidationError) as info:
        await jm.submit(descriptor, "integration-test")
    assert message in str(info.value)
    assert any(message in e.message for e in info.value.errors)
    assert await jm.list() == []
    assert jm.jobs == {}


async def test_no_label_error_names_the_step(jm_env, jm: JobManager) -> None:
    with pytest.raises(DescriptorValidationError) as info:
        await jm.submit(jm_env.descriptor([jm_env.step("noop", None)]), "integration-test")
    err = info.value.errors[0]
    assert err.message.startswith("step has no label, but it is mandatory")
    assert "noop" in err.message
    assert err.path == "TestDescriptors[0].TestFetcherFetchParameters.Steps[0].label"
    # every error is about that step (the step builder reports it too, under its own path)
    assert all("step has no label" in e.message for e in info.value.errors)


# --- 100 / 50: instance tags -----------------------------------------------------------------


async def test_instance_tags_separate_jobs(jm_env) -> None:
    jm_a = await jm_env.started(instance_tag="_A")
    job_id = await finished(jm_env, jm_a, noop(jm_env))
    assert await jm_a.list() == [job_id]
    req = await jm_a.request(job_id)
    assert req is not None and set(req.tags) == {"integration_testing", "_A"}
    assert (await jm_a.status(job_id))["State"] == "JobStateCompleted"

    jm_b = await jm_env.started(instance_tag="_B")
    assert await jm_b.list() == []
    assert await jm_b.list(states=[S.COMPLETED], tags=["integration_testing"]) == []
    with pytest.raises(JobManagerError, match="different instance"):
        await jm_b.status(job_id)
    with pytest.raises(JobManagerError, match="different instance"):
        await jm_b.retry(job_id, "someone")
    # a manager without an instance tag sees every job
    plain = await jm_env.started()
    assert await plain.list() == [job_id]


# --- 101 / 51: listing -----------------------------------------------------------------------


async def test_listing(jm_env, jm: JobManager) -> None:
    assert await jm.list() == []
    job1 = await finished(jm_env, jm, noop(jm_env, extra_tags=["foo"]))
    job2 = await finished(jm_env, jm, crash(jm_env), S.FAILED)

    assert await jm.list() == [job1, job2]
    assert await jm.list(states=[S.COMPLETED]) == [job1]
    assert await jm.list(states=[S.FAILED]) == [job2]
    assert await jm.list(states=[S.COMPLETED, S.CANCELLED, S.FAILED]) == [job1, job2]
    assert await jm.list(states=[S.PAUSED, S.STARTED]) == []
    assert await jm.list(tags=["integration_testing"]) == [job1, job2]
    assert await jm.list(tags=["foo", "integration_testing"]) == [job1]
    assert await jm.list(tags=["foo", "no_such_tag"]) == []
    assert await jm.list(states=[S.COMPLETED], tags=["integration_testing"]) == [job1]
    assert await jm.list(states=[S.FAILED], tags=["foo"]) == []
    assert await jm.list(server_id="foo") == []
    assert await jm.list(server_id=jm.server_id) == [job1, job2]
    assert await jm.list(order="desc") == [job2, job1]
    assert await jm.list(limit=1) == [job1]


# --- retry -----------------------------------------------------------------------------------


async def test_retry_makes_a_new_job_from_the_stored_descriptor(jm_env, jm: JobManager) -> None:
    first = await finished(jm_env, jm, crash(jm_env, extra_tags=["again"]), S.FAILED)
    second = await jm.retry(first, "retrier")
    assert second != first
    await jm_env.wait_for(second, S.FAILED)
    old, new = await jm.request(first), await jm.request(second)
    assert old is not None and new is not None
    assert new.descriptor == old.descriptor
    assert new.requestor == "retrier"
    assert set(new.tags) == set(old.tags) == {"integration_testing", "again"}
    assert await jm.list(tags=["again"]) == [first, second]
    with pytest.raises(JobManagerError, match="could not find job request with id 99999"):
        await jm.retry(99999, "retrier")


# --- 102 / 58: cleanup steps -----------------------------------------------------------------


async def test_cleanup_steps_run_before_release(jm_env, jm: JobManager) -> None:
    descriptor = jm_env.descriptor(
        [jm_env.step("slowecho", "hello_world", sleep="0.5", text="Hello world")],
        test_name="IntegrationTest: steps",
        cleanup=[jm_env.step("slowecho", "goodbye_world", sleep="0.5", text="Goodbye World")],
    )
    job_id = await jm.submit(descriptor, "integration-test")
    await jm_env.wait_for(job_id, S.COMPLETED, timeout=2.0)
    assert await jm.wait_all(2.0)
    assert await jm_env.locked() == []
    test, cleanup = "IntegrationTest: steps", "IntegrationTest: steps [CLEANUP]"
    assert await jm_env.target_log(job_id, "id1", [test, cleanup]) == [
        (1, test, 0, "", "TargetAcquired"),
        (1, test, 0, "hello_world", "TargetIn"),
        (1, test, 0, "hello_world", "TargetOut"),
        (1, cleanup, 0, "goodbye_world", "TargetIn"),
        (1, cleanup, 0, "goodbye_world", "TargetOut"),
        (1, test, 0, "", "TargetReleased"),
    ]


# --- 103 / 38: job and run IDs reach the steps -----------------------------------------------


async def test_readmeta_sees_job_and_run_ids(jm_env, jm: JobManager) -> None:
    descriptor = jm_env.descriptor(
        [jm_env.step("readmeta", "readmeta_label")], test_name="IntegrationTest: readmeta"
    )
    job_id = await finished(jm_env, jm, descriptor)
    metadata = await jm_env.store.test_events(
        events.TestEventQuery(job_id=job_id, event_names=["MetadataEvent"])
    )
    assert len(metadata) == 2, "one MetadataEvent per target"
    assert all(e.payload == {"job_id": job_id, "run_id": 1} for e in metadata)
    assert all(e.target is None for e in metadata)
