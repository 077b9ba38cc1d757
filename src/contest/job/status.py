"""Building run statuses from stored events (for reporters and for the status API).

For each run and each test, only the last attempt counts (ConTest LB): its steps' events become
per-step and per-target statuses; routing events become in/out times and errors.
"""

from __future__ import annotations

from collections.abc import Sequence

from contest.events import (
    ROUTING_EVENTS,
    TARGET_ACQUIRE_ERR,
    TARGET_ACQUIRED,
    TARGET_ERR,
    TARGET_IN,
    TARGET_OUT,
    EventReader,
    TestEvent,
    TestEventQuery,
)
from contest.job.model import Job
from contest.status import RunStatus, TargetStatus, TestStatus, TestStepStatus
from contest.target import Target

ACQUIRE_FAILED = "Failed to acquire targets"


def _test_status(
    job_id: int, run_id: int, name: str, steps: Sequence[tuple[str, str]], events: list[TestEvent]
) -> TestStatus:
    """``steps`` are (step name, label) pairs, in order."""
    last = max((e.header.test_attempt for e in events), default=0)
    events = [e for e in events if e.header.test_attempt == last]
    by_label: dict[str, list[TestEvent]] = {}
    for e in events:
        by_label.setdefault(e.header.step_label, []).append(e)
    ts = TestStatus(job_id, run_id, name)
    latest: dict[str, TargetStatus] = {}
    for step_name, label in steps:
        ss = TestStepStatus(job_id, run_id, name, step_name, label)
        per_target: dict[str, TargetStatus] = {}
        for e in by_label.get(label, ()):
            if e.target is None:
                if e.name not in ROUTING_EVENTS:
                    ss.events.append(e)
                continue
            st = per_target.get(e.target.id)
            if st is None:
                st = TargetStatus(job_id, run_id, name, step_name, label, e.target)
                per_target[e.target.id] = st
            if e.name == TARGET_IN:
                st.in_time = e.emit_time
            elif e.name == TARGET_OUT:
                st.out_time = e.emit_time
            elif e.name == TARGET_ERR:
                st.out_time = e.emit_time
                payload = e.payload
                st.error = str(payload.get("Error", "")) if isinstance(payload, dict) else ""
            elif e.name not in ROUTING_EVENTS:
                st.events.append(e)
        ss.target_statuses = list(per_target.values())
        latest.update(per_target)
        ts.step_statuses.append(ss)
    for e in by_label.get("", ()):
        if e.name == TARGET_ACQUIRED and e.target is not None:
            st = latest.get(e.target.id) or TargetStatus(job_id, run_id, name, "", "", e.target)
            ts.target_statuses.append(st)
        elif e.name == TARGET_ACQUIRE_ERR:
            err = e.payload.get("Error") if isinstance(e.payload, dict) else None
            ts.target_statuses.append(
                TargetStatus(
                    job_id,
                    run_id,
                    name,
                    "",
                    "",
                    e.target or Target(""),
                    in_time=e.emit_time,
                    out_time=e.emit_time,
                    error=err or ACQUIRE_FAILED,
                )
            )
    return ts


async def build_run_statuses(
    job: Job, reader: EventReader, run_ids: Sequence[int]
) -> list[RunStatus]:
    """One ``RunStatus`` per run id, tests in the job's order."""
    out = []
    for run_id in run_ids:
        rs = RunStatus(job.id, run_id)
        for jt in job.tests:
            events = await reader.test_events(
                TestEventQuery(job_id=job.id, run_id=run_id, test_names=[jt.name])
            )
            steps = [(b.name, b.label) for b in jt.test.steps]
            rs.test_statuses.append(_test_status(job.id, run_id, jt.name, steps, events))
        out.append(rs)
    return out
