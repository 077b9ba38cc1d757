"""ConTest's job status document: state, times, every run's status, and the reports."""

from __future__ import annotations

from typing import Any

from contest.events import RUN_STARTED, EventReader, FrameworkEventQuery
from contest.golang.time import go_time
from contest.job.model import Job
from contest.job.status import build_run_statuses, saved_run_jsons
from contest.status import gc_paused
from contest.storage.models import JobReport, JobRequest, JobState, Report

COMPLETION_STATES = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.CANCELLATION_FAILED}
)
_STATE_NAMES = {s.event_name for s in JobState if s is not JobState.UNKNOWN}


def report_json(r: Report) -> dict[str, Any]:
    out: dict[str, Any] = {"JobID": r.job_id}
    if r.run_id:
        out["RunID"] = r.run_id
    out.update(
        ReporterName=r.reporter_name,
        ReportTime=go_time(r.report_time),
        Success=bool(r.success),
        Data=r.data,
    )
    return out


def job_report_json(rep: JobReport) -> dict[str, Any]:
    return {
        "JobID": rep.job_id,
        "RunReports": [[report_json(r) for r in run] for run in rep.run_reports]
        if rep.run_reports
        else None,
        "FinalReports": [report_json(r) for r in rep.final_reports] if rep.final_reports else None,
    }


async def job_status_document(job: Job, req: JobRequest, store: Any) -> dict[str, Any]:
    reader: EventReader = store
    states = await reader.framework_events(
        FrameworkEventQuery(job_id=job.id, event_names=sorted(_STATE_NAMES))
    )
    start = next((e.emit_time for e in states if e.name == JobState.STARTED.event_name), None)
    completions = [
        e
        for e in states
        if (JobState.from_event_name(e.name) or JobState.UNKNOWN) in COMPLETION_STATES
    ]
    state = "Unknown"
    err = ""
    if states:
        last = max(states, key=lambda e: e.sequence)
        state = last.name
        if last.name == JobState.FAILED.event_name:
            payload = last.payload
            if isinstance(payload, dict) and isinstance(payload.get("Err"), str):
                err = payload["Err"]
            else:
                err = "internal error: the failure event has no error message"
    runs = await reader.framework_events(
        FrameworkEventQuery(job_id=job.id, event_names=[RUN_STARTED])
    )
    last_run = max(
        (int(e.payload.get("RunID", 0)) for e in runs if isinstance(e.payload, dict)), default=0
    )
    run_ids = list(range(1, last_run + 1))
    # finished runs were saved by the job runner; the others are built from their events
    saved = await saved_run_jsons(store, job.id, run_ids)
    missing = [r for r in run_ids if r not in saved]
    built = dict(zip(missing, await build_run_statuses(job, reader, missing), strict=True))
    with gc_paused():
        run_jsons = [saved[r] if r in saved else built[r].to_json_obj() for r in run_ids]
    report = await store.job_report(job.id)
    return {
        "Name": req.name,
        "State": state,
        "StateErrMsg": err,
        "StartTime": go_time(start),
        "EndTime": go_time(max(e.emit_time for e in completions)) if completions else None,
        "RunStatus": run_jsons[-1] if run_jsons else None,
        "RunStatuses": run_jsons or None,
        "JobReport": job_report_json(report),
    }
