"""ConTest's job status document: state, times, every run's status, and the reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from contest.events import RUN_STARTED, EventReader, FrameworkEventQuery
from contest.golang.json import compact, to_bytes
from contest.golang.time import go_time
from contest.job.model import Job
from contest.job.status import build_run_statuses, encode_run_status_off_loop, saved_run_texts
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


@dataclass
class StatusDocument:
    """ConTest's status document of one job, as the JSON bytes the server sends, in parts.

    The runs' statuses are the big part (a 10,000-target run's is some 15 MB) and are kept as
    they were encoded: a finished run's once, when it ended (its saved snapshot), a running
    one's when asked. Writing the document is joining parts, never encoding it whole; the
    server sends the parts one after the other (:meth:`chunks`).
    """

    head: dict[str, Any]  # Name, State, StateErrMsg, StartTime, EndTime
    runs: list[bytes]  # each run's status JSON, in run order
    report: dict[str, Any]  # the JobReport

    def chunks(self) -> list[bytes]:
        """The document's JSON (Go's compact encoding, key order included) as pieces to send
        in order; the big ones are the runs' own bytes, not copies."""
        head = to_bytes(compact(self.head))[:-1]  # without its "}": more keys follow
        tail = b',"JobReport":' + to_bytes(compact(self.report)) + b"}"
        if not self.runs:
            return [head, b',"RunStatus":null,"RunStatuses":null', tail]
        out = [head, b',"RunStatus":', self.runs[-1], b',"RunStatuses":[']
        for i, run in enumerate(self.runs):
            if i:
                out.append(b",")
            out.append(run)
        out.append(b"]")
        out.append(tail)
        return out

    def size(self) -> int:
        return sum(len(c) for c in self.chunks())

    def to_json_obj(self) -> dict[str, Any]:
        """The document as a JSON value (for callers that read it, not send it)."""
        with gc_paused():
            value: dict[str, Any] = json.loads(b"".join(self.chunks()))
        return value


async def job_status_document(job: Job, req: JobRequest, store: Any) -> dict[str, Any]:
    """ConTest's status document as a JSON value (:func:`encoded_status_document`, read)."""
    return (await encoded_status_document(job, req, store)).to_json_obj()


async def encoded_status_document(job: Job, req: JobRequest, store: Any) -> StatusDocument:
    """ConTest's status document: finished runs from their saved snapshots (read, not built),
    the others built from their events and encoded now."""
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
    saved = await saved_run_texts(store, job.id, run_ids)
    missing = [r for r in run_ids if r not in saved]
    built: dict[int, bytes] = {}
    for run_id, rs in zip(missing, await build_run_statuses(job, reader, missing), strict=True):
        built[run_id] = await encode_run_status_off_loop(rs)
    report = await store.job_report(job.id)
    return StatusDocument(
        head={
            "Name": req.name,
            "State": state,
            "StateErrMsg": err,
            "StartTime": go_time(start),
            "EndTime": go_time(max(e.emit_time for e in completions)) if completions else None,
        },
        runs=[saved[r] if r in saved else built[r] for r in run_ids],
        report=job_report_json(report),
    )
