"""An in-memory job store: everything the job manager needs from storage, in lists and dicts.

For tests and for the conformance kit; the SQL ``Storage`` is the real thing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Unpack

from contest.events import FrameworkEvent, MemoryEventSink
from contest.storage.jobs import ENDED_STATES
from contest.storage.models import JobQuery, JobReport, JobRequest, JobState, Report


@dataclass
class MemoryStore(MemoryEventSink):
    jobs: dict[int, JobRequest] = field(default_factory=dict)
    reports: list[Report] = field(default_factory=list)
    checkpoints: dict[int, bytes] = field(default_factory=dict)  # contest.checkpoint's
    _next_job: int = 1

    def write_framework_event(self, event: FrameworkEvent) -> None:
        super().write_framework_event(event)
        state = JobState.from_event_name(event.name)
        job = self.jobs.get(event.job_id)
        if state is not None and job is not None:
            job.state = state
            job.state_time = event.emit_time
        if state in ENDED_STATES:  # as the SQL storage deletes them with the final state
            self.checkpoints.pop(event.job_id, None)

    async def store_checkpoint(self, job_id: int, data: bytes) -> None:
        """Unfenced, as this store's events are (one process: no other server)."""
        self.checkpoints[job_id] = data

    async def job_checkpoint(self, job_id: int) -> bytes | None:
        return self.checkpoints.get(job_id)

    async def store_job(self, request: JobRequest) -> int:
        job_id = self._next_job
        self._next_job += 1
        self.jobs[job_id] = replace(
            request, job_id=job_id, request_time=request.request_time or time.time()
        )
        return job_id

    async def get_job(self, job_id: int) -> JobRequest | None:
        job = self.jobs.get(job_id)
        return replace(job) if job is not None else None

    async def list_jobs(self, **query: Unpack[JobQuery]) -> list[int]:
        states, tags = query.get("states"), query.get("tags")
        server_id, requestor = query.get("server_id"), query.get("requestor")
        limit, order = query.get("limit"), query.get("order", "asc")
        out = []
        for job_id, job in sorted(self.jobs.items(), reverse=order == "desc"):
            if states and job.state not in states:
                continue
            if tags and not set(tags) <= set(job.tags):
                continue
            if server_id is not None and job.server_id != server_id:
                continue
            if requestor is not None and job.requestor != requestor:
                continue
            out.append(job_id)
        return out[:limit] if limit is not None else out

    async def store_report(self, report: Report) -> None:
        self.reports.append(replace(report, report_time=report.report_time or time.time()))

    async def job_report(self, job_id: int) -> JobReport:
        rep = JobReport(job_id)
        mine = [r for r in self.reports if r.job_id == job_id]
        runs = sorted({r.run_id for r in mine if r.run_id})
        rep.run_reports = [[r for r in mine if r.run_id == run] for run in runs]
        rep.final_reports = [r for r in mine if r.run_id == 0]
        return rep

    async def close(self) -> None:
        return None
