"""Job requests, their tags and their state: storing, fetching, listing."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any, Unpack

from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contest.storage import limits as L
from contest.storage.models import JobQuery, JobRequest, JobState
from contest.storage.schema import job_tags, jobs, target_locks, target_waits

# Above this, the extended descriptor goes in its own statement, so neither statement can
# outgrow a MySQL packet even when both descriptors are near their limit.
_ONE_STATEMENT_MAX = 1024 * 1024


def check_request(req: JobRequest, limits: L.Limits) -> None:
    """Every size check of a request, before any SQL is sent."""
    L.check(L.JOB_NAME[0], req.name, L.JOB_NAME[1])
    L.check(L.REQUESTOR[0], req.requestor, L.REQUESTOR[1])
    L.check(L.SERVER_ID[0], req.server_id, L.SERVER_ID[1])
    for tag in req.tags:
        L.check(L.TAG[0], tag, L.TAG[1])
    L.check("Job descriptor", req.descriptor, limits.descriptor)
    if req.extended_descriptor is not None:
        L.check("Extended descriptor", req.extended_descriptor, limits.descriptor)


async def insert_job(conn: AsyncConnection, req: JobRequest) -> int:
    """Insert the ``jobs`` row and its tags; returns the new job ID."""
    ext = req.extended_descriptor
    split = ext is not None and len(req.descriptor) + len(ext) > _ONE_STATEMENT_MAX
    result = await conn.execute(
        insert(jobs).values(
            name=req.name,
            requestor=req.requestor,
            server_id=req.server_id,
            request_time=req.request_time or time.time(),
            descriptor=req.descriptor,
            extended_descriptor=None if split else ext,
        )
    )
    pk = result.inserted_primary_key
    assert pk is not None
    job_id = int(pk[0])
    if split:
        await conn.execute(
            update(jobs).where(jobs.c.job_id == job_id).values(extended_descriptor=ext)
        )
    tags = sorted(set(req.tags))
    if tags:
        await conn.execute(insert(job_tags), [{"job_id": job_id, "tag": t} for t in tags])
    return job_id


async def fetch_job(conn: AsyncConnection, job_id: int) -> JobRequest | None:
    row = (await conn.execute(select(jobs).where(jobs.c.job_id == job_id))).first()
    if row is None:
        return None
    tags = (
        await conn.execute(
            select(job_tags.c.tag).where(job_tags.c.job_id == job_id).order_by(job_tags.c.tag)
        )
    ).scalars()
    return JobRequest(
        name=row.name,
        requestor=row.requestor,
        server_id=row.server_id,
        descriptor=row.descriptor,
        extended_descriptor=row.extended_descriptor,
        tags=tuple(tags),
        request_time=row.request_time,
        job_id=int(row.job_id),
        state=JobState(row.state),
        state_time=row.state_time,
    )


async def select_job_ids(conn: AsyncConnection, **query: Unpack[JobQuery]) -> list[int]:
    """IDs of the jobs in any of ``states`` that carry all of ``tags`` (and the other filters)."""
    states, tags = query.get("states"), query.get("tags")
    server_id, requestor = query.get("server_id"), query.get("requestor")
    limit, order = query.get("limit"), query.get("order", "asc")
    stmt: Any = select(jobs.c.job_id)
    if states is not None:
        stmt = stmt.where(jobs.c.state.in_(sorted({int(JobState.parse(s)) for s in states})))
    for tag in sorted(set(tags or ())):
        stmt = stmt.where(exists().where(job_tags.c.job_id == jobs.c.job_id, job_tags.c.tag == tag))
    if server_id is not None:
        stmt = stmt.where(jobs.c.server_id == server_id)
    if requestor is not None:
        stmt = stmt.where(jobs.c.requestor == requestor)
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc', not {order!r}")
    stmt = stmt.order_by(jobs.c.job_id.desc() if order == "desc" else jobs.c.job_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [int(i) for i in (await conn.execute(stmt)).scalars()]


async def count_by_state(conn: AsyncConnection) -> dict[str, int]:
    """Job state name (``JobStateStarted``...) -> how many jobs are in it."""
    result = await conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state))
    out: dict[str, int] = {}
    for state, n in result:
        name = JobState(state).event_name if state is not None else "JobStateUnknown"
        out[name] = out.get(name, 0) + int(n)
    return out


#: states after which a job never runs again (a paused job is resumed, and keeps its targets):
#: the states whose event frees the job's targets (:func:`free_targets_of_ended_jobs`)
ENDED_STATES = frozenset(
    {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.PAUSE_FAILED,
        JobState.CANCELLATION_FAILED,
    }
)


async def free_targets_of_ended_jobs(conn: AsyncConnection, job_ids: Collection[int]) -> None:
    """Everything the database locker keeps for jobs that just ended: their lock rows and
    their places in the line for busy targets (``target_waits``). Run by the event flush in the
    transaction that stores the jobs' final states, so an ended job never holds a target, and
    never keeps a later job waiting, whatever killed it:
    a job failed as a zombie after ``kill -9`` frees its targets at the restart instead of
    after its lease (tests/e2e/test_e2e_dead_jobs.py). A job's normal release has deleted its
    rows already; this finds none then."""
    ids = sorted(set(job_ids))
    if ids:
        await conn.execute(delete(target_locks).where(target_locks.c.job_id.in_(ids)))
        await conn.execute(delete(target_waits).where(target_waits.c.job_id.in_(ids)))
