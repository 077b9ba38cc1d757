"""Every observable difference of our replies from Go ConTest's, as its client ``contestcli``
sees them over the form API: one test per entry of docs/migrating-from-contest.md's "What
ConTest's client sees differently" section, so that the page cannot go stale (a change of
behaviour fails here, pointing at the entry to update). What Go answers is quoted in each test
from Go's code (facebookincubator/contest and linuxboot/contest: plugins/storage/rdbms,
plugins/storage/memory, pkg/jobmanager, pkg/runner, plugins/teststeps/cmd) and from the wire
captures of tests/e2e/data."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from serverkit import SERVER_ID, ApiEnv, descriptor, sleepy

from contest.events import FrameworkEvent, TestEvent, TestEventHeader, TestEventQuery
from contest.golang.time import parse_go_time
from contest.job.manager import JobManager
from contest.storage import JobRequest, JobState
from contest.target import Target

DOC = Path(__file__).parents[2] / "docs" / "migrating-from-contest.md"
SECTION = "## What ConTest's client sees differently"

#: Go's RFC3339Nano as encoding/json writes a UTC time.Time
GO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$")


async def status(api: ApiEnv, job_id: int) -> dict[str, Any]:
    out = await api.form_json("status", requestor="contestcli-http", jobID=str(job_id))
    assert out["Error"] is None, out
    doc: dict[str, Any] = out["Data"]["Status"]
    return doc


def target_statuses(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        ts
        for run in doc["RunStatuses"]
        for test in run["TestStatuses"]
        for step in test["TestStepStatuses"]
        for ts in step["TargetStatuses"] or []
    ]


def doc_entry(title: str) -> str:
    """The text of one entry (a bullet starting with **title**) of the section."""
    text = DOC.read_text()
    assert SECTION in text, f"{DOC.name} lost its section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    for bullet in section.split("\n* ")[1:]:
        if bullet.startswith(f"**{title}.**"):
            return bullet
    raise AssertionError(f"{DOC.name}: no entry **{title}.** in {SECTION!r}")


async def test_retry_works(api: ApiEnv) -> None:
    """Go's pkg/jobmanager/retry.go answers every retry with "Not implemented"."""
    assert "Not implemented" in doc_entry("Retry works")
    job_id = await api.start(descriptor(name="again"))
    await api.wait_state(job_id, JobState.COMPLETED)
    out = await api.form_json("retry", requestor="contestcli-http", jobID=str(job_id))
    assert out["Error"] is None
    assert out["Data"] == {"JobID": job_id, "NewJobID": job_id + 1}
    await api.wait_state(job_id + 1, JobState.COMPLETED)
    out = await api.form_json("retry", requestor="contestcli-http", jobID="999")
    assert out["Data"] == {"JobID": 999, "NewJobID": 0}
    assert out["Error"] == "could not find job request with id 999"


async def test_targets_keep_fqdn_and_addresses(any_api: ApiEnv) -> None:
    """On every database. Go's rdbms storage keeps only the target's ID
    (``target.Target{ID: targetID}`` in plugins/storage/rdbms/events.go): its statuses show
    ``{"ID": "..."}``."""
    assert '{"ID":"t1"}' in doc_entry("Targets keep their FQDN and addresses")
    whole = {"ID": "t1", "FQDN": "t1.example.org", "PrimaryIPv4": "10.0.0.1"}
    whole["PrimaryIPv6"] = "fd00::1"
    desc = descriptor()
    desc["TestDescriptors"][0]["TargetManagerAcquireParameters"]["Targets"] = [whole]
    job_id = await any_api.start(desc)
    await any_api.wait_state(job_id, JobState.COMPLETED)
    (ts,) = target_statuses(await status(any_api, job_id))
    assert ts["Target"] == whole
    assert {json.dumps(e["Data"]["Target"], sort_keys=True) for e in ts["Events"]} == {
        json.dumps(whole, sort_keys=True)
    }


async def test_run_reports_in_code_point_order(any_api: ApiEnv) -> None:
    """Go's rdbms storage: ``order by run_id asc, reporter_name asc`` in MySQL's
    case-insensitive collation (noop first, as its capture shows); its memory storage: the
    order reporters ran (the descriptor's)."""
    assert "noop" in doc_entry("Run reports' order")
    desc = descriptor()
    desc["Reporting"]["RunReporters"] = [
        {"Name": "noop"},
        {"Name": "TargetSuccess", "Parameters": {"SuccessExpression": ">80%"}},
    ]
    job_id = await any_api.start(desc)
    await any_api.wait_state(job_id, JobState.COMPLETED)
    reports = (await status(any_api, job_id))["JobReport"]["RunReports"][0]
    assert [r["ReporterName"] for r in reports] == ["TargetSuccess", "noop"]


async def test_cmd_events_in_the_order_they_happen(api: ApiEnv) -> None:
    """Go's cmd step emits CmdStart, runs the command, then CmdEnd, then one CmdStdout and one
    CmdStderr with the whole output; and its step runner writes TargetIn only after the step
    took the target, so CmdStart may come first (the capture's InTime is after CmdStart's
    EmitTime)."""
    assert "CmdEnd" in doc_entry("Cmd's events in the order they happen")
    step = {
        "name": "cmd",
        "label": "talk",
        "parameters": {
            "executable": ["sh"],
            "args": ["-c", "echo out; echo err >&2"],
            "emit_stdout": ["true"],
            "emit_stderr": ["true"],
        },
    }
    job_id = await api.start(descriptor(steps=[step]))
    await api.wait_state(job_id, JobState.COMPLETED)
    (ts,) = target_statuses(await status(api, job_id))
    names = [e["Data"]["EventName"] for e in ts["Events"]]
    assert names[0] == "CmdStart" and names[-1] == "CmdEnd"
    assert sorted(names[1:-1]) == ["CmdStderr", "CmdStdout"]
    entered = parse_go_time(ts["InTime"])
    first = parse_go_time(ts["Events"][0]["EmitTime"])
    assert entered is not None and first is not None and entered <= first


async def test_times_utc_to_the_sub_microsecond(any_api: ApiEnv) -> None:
    """Go's rdbms storage: ``TIMESTAMP`` columns, whole seconds (``"2026-11-30T23:59:44Z"`` in
    the MySQL capture); its memory storage: nanoseconds, in the server's time zone."""
    assert "whole seconds" in doc_entry("Times")
    job_id = await any_api.start(descriptor())
    await any_api.wait_state(job_id, JobState.COMPLETED)
    doc = await status(any_api, job_id)
    (ts,) = target_statuses(doc)
    times = [doc["StartTime"], doc["EndTime"], ts["InTime"], ts["OutTime"]]
    times += [e["EmitTime"] for e in ts["Events"]]
    times += [r["ReportTime"] for r in doc["JobReport"]["RunReports"][0]]
    for t in times:
        assert GO_TIME.match(t), t
    # not whole seconds: a fraction on (almost surely) every one of them
    assert sum("." in t for t in times) >= len(times) - 1


async def test_error_wording(api: ApiEnv) -> None:
    """Go's messages for an unknown job: its memory storage says ``could not find job request
    with id 999`` (as we do), its rdbms storage ``could not find request with JobID 999``."""
    entry = doc_entry("Error wording")
    assert "could not find request with JobID 999" in entry
    out = await api.form_json("status", requestor="contestcli-http", jobID="999")
    assert out["Error"] == (
        "failed to fetch request for job ID 999: could not find job request with id 999"
    )


async def test_targets_left_inside_a_step_are_closed(api: ApiEnv) -> None:
    """Go's test runner writes nothing for a target inside a step when the job is cancelled:
    its status shows the target in the step (OutTime zero, no Error) for good."""
    assert "OutTime" in doc_entry("Targets left inside a step")
    job_id = await api.start(sleepy("30s"))
    await api.wait_state(job_id, JobState.STARTED)
    for _ in range(200):
        doc = await status(api, job_id)
        if target_statuses(doc):
            break
        await asyncio.sleep(0.02)
    out = await api.form_json("stop", requestor="contestcli-http", jobID=str(job_id))
    assert out["Error"] is None
    await api.wait_state(job_id, JobState.CANCELLED)
    (ts,) = target_statuses(await status(api, job_id))
    assert ts["OutTime"] != "0001-01-01T00:00:00Z"
    assert ts["Error"] == (
        f'job {job_id} was cancelled (stopped by a stop request) while the target was in step "nap"'
    )


async def test_a_dead_jobs_targets_are_free_at_once(api: ApiEnv) -> None:
    """A job left running by a dead server (stored as started, its locks and a target inside a
    step, as ``kill -9`` leaves them; tests/e2e/test_e2e_dead_jobs.py does it for real): the
    next job manager on the database fails it, closes the target and deletes its locks at
    start. Go's keeps the locks until their lease ends."""
    assert "lease" in doc_entry("A dead job's targets are free at once")
    job_id = await api.store.store_job(
        JobRequest(name="zombie", requestor="x", server_id=SERVER_ID, descriptor="{}")
    )
    header = TestEventHeader(job_id, 1, "Literal test", "nap")
    await api.store.write_framework_event(FrameworkEvent(job_id, "JobStateStarted"))
    await api.store.write_test_event(TestEvent(header, Target("dut1"), "TargetIn"))
    await api.jm.locker.lock(job_id, 600, ["dut1"])
    again = JobManager(api.store, api.jm.locker, server_id=SERVER_ID)
    await again.start(resume_jobs=False)
    try:
        assert await api.store.job_state(job_id) is JobState.FAILED
        (closing,) = await api.store.test_events(
            TestEventQuery(job_id=job_id, event_names=["TargetErr"])
        )
        assert closing.payload == {
            "Error": f'the server ({SERVER_ID}) stopped while the target was in step "nap": '
            f"job {job_id} failed as a zombie"
        }
        await api.jm.locker.lock(job_id + 100, 600, ["dut1"])  # free: no conflict
    finally:
        await again.close()
