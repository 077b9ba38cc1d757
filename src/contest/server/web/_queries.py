"""The SQL reads behind the pages: aggregates and pages of rows, never a job's whole event log.

A 10,000-target job of five steps stores about 120,000 events; a page shows a hundred targets and
a count per step. So the counts are ``GROUP BY`` queries the database answers, the grid reads
only the events of the targets on screen, and the live streams read only what is newer than
what they have seen. Every function takes a connection of the storage's (``Storage.run_read``)
and returns plain rows; the pages and streams give them meaning.

``upto`` arguments bound a read to the events numbered up to a snapshot (see
:func:`max_sequence`), so a page and the live stream it opens agree on where one ends and the
other begins.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from contest.events import (
    RUN_STARTED,
    TARGET_ACQUIRE_ERR,
    TARGET_ACQUIRED,
    TARGET_ERR,
    TARGET_IN,
    TARGET_INTERRUPTED,
    TARGET_OUT,
    TARGETS_WAIT_ENDED,
    TARGETS_WAITING,
    TestEventQuery,
)
from contest.storage.events import keyed_test_events_select, step_keys
from contest.storage.models import JobState
from contest.storage.schema import framework_events, job_tags, jobs, target_locks, test_events

#: the runner's events that move a target through a step
ROUTING = (TARGET_IN, TARGET_OUT, TARGET_ERR)
#: what a live job page follows: routing, acquisition and waiting
LIVE_EVENTS = (
    *ROUTING,
    TARGET_INTERRUPTED,
    TARGET_ACQUIRED,
    TARGET_ACQUIRE_ERR,
    TARGETS_WAITING,
    TARGETS_WAIT_ENDED,
)
_FAILED_STATES = (
    JobState.FAILED.event_name,
    JobState.PAUSE_FAILED.event_name,
    JobState.CANCELLATION_FAILED.event_name,
)

te = test_events
fe = framework_events


def _by_target(stmt: Select[Any]) -> Select[Any]:
    """``stmt`` reading test events through their index by target on MariaDB and MySQL, which
    otherwise may walk a whole index (or the table) for the order the query asks for, with a
    LIMIT, rather than seek the few rows of one target."""
    for mysql in ("mysql", "mariadb"):
        stmt = stmt.with_hint(te, "FORCE INDEX (ix_test_events_target_id_event_name)", mysql)
    return stmt


def _event_is(name: str) -> ColumnElement[bool]:
    """``event_name = '<name>'`` with the name written in the statement, not bound: the
    indexes of a target's acquisitions and failures are partial (schema.test_events), and a
    database uses one only where it sees that the query asks for its event."""
    return te.c.event_name == literal_column("'" + name.replace("'", "''") + "'")


def decode(payload: str | None) -> Any:
    """A stored payload as a value (a payload that is not JSON is shown as its text)."""
    if payload is None:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def error_text(payload: Any) -> str:
    """The message of a ``TargetErr``-like payload (``{"Error": "..."}``), or the payload."""
    if isinstance(payload, dict) and isinstance(payload.get("Error"), str):
        return str(payload["Error"])
    if payload is None:
        return ""
    return payload if isinstance(payload, str) else json.dumps(payload)


# --- jobs -------------------------------------------------------------------------------------


@dataclass(slots=True)
class JobRow:
    """A job as the pages list it: its request without the (possibly huge) descriptors."""

    job_id: int
    name: str
    requestor: str
    server_id: str
    state: JobState
    state_time: float | None
    request_time: float
    tags: tuple[str, ...] = ()


_JOB_COLUMNS = (
    jobs.c.job_id,
    jobs.c.name,
    jobs.c.requestor,
    jobs.c.server_id,
    jobs.c.state,
    jobs.c.state_time,
    jobs.c.request_time,
)


def _job_row(row: Any) -> JobRow:
    try:
        state = JobState(row.state)
    except ValueError:
        state = JobState.UNKNOWN
    return JobRow(
        int(row.job_id),
        row.name,
        row.requestor,
        row.server_id,
        state,
        row.state_time,
        row.request_time,
    )


async def job_rows(
    conn: AsyncConnection,
    *,
    states: Collection[JobState] = (),
    tags: Collection[str] = (),
    requestor: str = "",
    name: str = "",
    before: int | None = None,
    limit: int = 25,
) -> list[JobRow]:
    """Jobs newest first: in any of ``states``, having every tag, of ``requestor``, whose name
    holds ``name`` (any case), with an ID below ``before``; at most ``limit``."""
    conds: list[ColumnElement[bool]] = []
    if states:
        conds.append(jobs.c.state.in_([int(s) for s in states]))
    for tag in dict.fromkeys(tags):
        conds.append(
            exists().where(and_(job_tags.c.job_id == jobs.c.job_id, job_tags.c.tag == tag))
        )
    if requestor:
        conds.append(jobs.c.requestor == requestor)
    if name:
        conds.append(func.lower(jobs.c.name).contains(name.lower(), autoescape=True))
    if before is not None:
        conds.append(jobs.c.job_id < before)
    stmt = select(*_JOB_COLUMNS).where(*conds).order_by(jobs.c.job_id.desc()).limit(limit)
    rows = [_job_row(r) for r in (await conn.execute(stmt)).all()]
    await _add_tags(conn, rows)
    return rows


async def job_row(conn: AsyncConnection, job_id: int) -> JobRow | None:
    row = (await conn.execute(select(*_JOB_COLUMNS).where(jobs.c.job_id == job_id))).first()
    if row is None:
        return None
    out = _job_row(row)
    await _add_tags(conn, [out])
    return out


async def _add_tags(conn: AsyncConnection, rows: list[JobRow]) -> None:
    if not rows:
        return
    by_id = {r.job_id: r for r in rows}
    stmt = (
        select(job_tags.c.job_id, job_tags.c.tag)
        .where(job_tags.c.job_id.in_(list(by_id)))
        .order_by(job_tags.c.job_id, job_tags.c.tag)
    )
    found: dict[int, list[str]] = {}
    for job_id, tag in (await conn.execute(stmt)).all():
        found.setdefault(int(job_id), []).append(tag)
    for job_id, row in by_id.items():
        row.tags = tuple(found.get(job_id, ()))


async def extended_descriptor(conn: AsyncConnection, job_id: int) -> str | None:
    stmt = select(jobs.c.extended_descriptor).where(jobs.c.job_id == job_id)
    value = (await conn.execute(stmt)).scalar_one_or_none()
    return value if isinstance(value, str) else None


@dataclass(slots=True)
class JobTimes:
    """What a job's framework events say beyond its state: when it started, its latest run, and
    why it failed."""

    started: float | None = None
    run: int = 0
    error: str = ""


async def job_times(conn: AsyncConnection, job_ids: Sequence[int]) -> dict[int, JobTimes]:
    """Per job: the first ``JobStateStarted``, the highest ``RunStarted`` run and the message of
    the last failure state (a few rows per job: one per run and state change)."""
    out = {j: JobTimes() for j in job_ids}
    if not job_ids:
        return out
    names = (RUN_STARTED, JobState.STARTED.event_name, *_FAILED_STATES)
    stmt = (
        select(fe.c.job_id, fe.c.event_name, fe.c.payload, fe.c.emit_time)
        .where(fe.c.job_id.in_(list(job_ids)), fe.c.event_name.in_(names))
        .order_by(fe.c.sequence)
    )
    for job_id, name, payload, emit_time in (await conn.execute(stmt)).all():
        t = out[int(job_id)]
        if name == RUN_STARTED:
            value = decode(payload)
            if isinstance(value, dict) and isinstance(value.get("RunID"), int):
                t.run = max(t.run, value["RunID"])
        elif name == JobState.STARTED.event_name:
            if t.started is None:
                t.started = emit_time
        else:
            value = decode(payload)
            err = value.get("Err") if isinstance(value, dict) else value
            t.error = err if isinstance(err, str) else json.dumps(err)
    return out


# --- one run of a job: counts, targets, cells ---------------------------------------------------


async def max_sequence(conn: AsyncConnection) -> tuple[int, int]:
    """The newest test and framework event numbers (the snapshot a page is drawn at)."""
    test_max = (await conn.execute(select(func.max(te.c.sequence)))).scalar_one_or_none()
    fw_max = (await conn.execute(select(func.max(fe.c.sequence)))).scalar_one_or_none()
    return int(test_max or 0), int(fw_max or 0)


async def run_counts(
    conn: AsyncConnection,
    job_ids_runs: Sequence[tuple[int, int]],
    upto: int | None = None,
    after: int | None = None,
) -> list[tuple[int, str, int, str, str, int]]:
    """``(job, test, attempt, step, event, count)`` of the routing and acquisition events of
    each given ``(job, run)`` numbered above ``after`` and up to ``upto``, counted by the
    database."""
    if not job_ids_runs:
        return []
    which = or_(*(and_(te.c.job_id == j, te.c.run_id == r) for j, r in job_ids_runs))
    conds: list[ColumnElement[bool]] = [
        which,
        te.c.event_name.in_((*ROUTING, TARGET_ACQUIRED, TARGET_INTERRUPTED)),
    ]
    if upto is not None:
        conds.append(te.c.sequence <= upto)
    if after is not None:
        conds.append(te.c.sequence > after)
    stmt = (
        select(
            te.c.job_id,
            te.c.test_name,
            te.c.test_attempt,
            te.c.step_label,
            te.c.event_name,
            func.count(),
        )
        .where(*conds)
        .group_by(te.c.job_id, te.c.test_name, te.c.test_attempt, te.c.step_label, te.c.event_name)
    )
    return [
        (int(j), t, int(a), s, e, int(n)) for j, t, a, s, e, n in (await conn.execute(stmt)).all()
    ]


async def acquisitions(
    conn: AsyncConnection, job_id: int, run_id: int, upto: int | None = None
) -> list[tuple[str, int, int]]:
    """``(test, attempt, targets acquired)`` of one run: its tests and attempts, for much less
    than counting all its events."""
    conds = [
        te.c.job_id == job_id,
        te.c.run_id == run_id,
        te.c.step_label == "",
        te.c.event_name == TARGET_ACQUIRED,
    ]
    if upto is not None:
        conds.append(te.c.sequence <= upto)
    stmt = (
        select(te.c.test_name, te.c.test_attempt, func.count())
        .where(*conds)
        .group_by(te.c.test_name, te.c.test_attempt)
    )
    return [(t, int(a), int(n)) for t, a, n in (await conn.execute(stmt)).all()]


@dataclass(frozen=True, slots=True)
class AttemptKey:
    """One attempt of one test in one run of a job: the grid's rows are its targets."""

    job_id: int
    run_id: int
    test_name: str
    attempt: int

    def where(self) -> list[ColumnElement[bool]]:
        return [
            te.c.job_id == self.job_id,
            te.c.run_id == self.run_id,
            te.c.test_name == self.test_name,
            te.c.test_attempt == self.attempt,
        ]


async def grid_targets(
    conn: AsyncConnection,
    key: AttemptKey,
    *,
    failed_only: bool = False,
    search: str = "",
    offset: int = 0,
    limit: int = 100,
    upto: int | None = None,
    acquired_by: str | None = None,
) -> tuple[list[str], int]:
    """The attempt's targets in the order they were acquired (one page), and how many match.
    Cleanup steps' targets are those their test acquired (``acquired_by``)."""
    conds = [
        te.c.job_id == key.job_id,
        te.c.run_id == key.run_id,
        te.c.test_name == (acquired_by or key.test_name),
        te.c.test_attempt == key.attempt,
        te.c.step_label == "",
        te.c.event_name == TARGET_ACQUIRED,
    ]
    if upto is not None:
        conds.append(te.c.sequence <= upto)
    if search:
        conds.append(te.c.target_id.contains(search, autoescape=True))
    if failed_only:
        # the attempt's failed targets, read once (a subquery per target would look each
        # one up by its target, which no index of test events leads with: see schema.py)
        err = te.alias("err")
        err_conds = [
            err.c.job_id == key.job_id,
            err.c.run_id == key.run_id,
            err.c.test_name == key.test_name,
            err.c.test_attempt == key.attempt,
            err.c.event_name == TARGET_ERR,
        ]
        if upto is not None:
            err_conds.append(err.c.sequence <= upto)
        conds.append(te.c.target_id.in_(select(err.c.target_id).where(*err_conds)))
    total = (await conn.execute(select(func.count()).where(*conds))).scalar_one()
    stmt = select(te.c.target_id).where(*conds).order_by(te.c.sequence).offset(offset).limit(limit)
    ids = [r[0] for r in (await conn.execute(stmt)).all()]
    return ids, int(total)


async def cell_rows(
    conn: AsyncConnection, key: AttemptKey, target_ids: Sequence[str], upto: int | None = None
) -> list[tuple[str, str, str, float, Any]]:
    """``(target, step, event, time, payload)`` of the routing events of the given targets in
    the attempt, in order."""
    if not target_ids:
        return []
    # a seek per step of the attempt's test (a page of targets reads its own rows, however
    # many targets the job has), or the attempt's rows where the test has too many steps
    q = TestEventQuery(
        job_id=key.job_id,
        run_id=key.run_id,
        test_names=[key.test_name],
        target_ids=list(target_ids),
        event_names=list(ROUTING),
        test_attempt=key.attempt,
    )
    keys = await step_keys(conn, q)
    if keys == []:
        return []
    upto_cond = [] if upto is None else [te.c.sequence <= upto]
    columns = (te.c.target_id, te.c.step_label, te.c.event_name, te.c.emit_time, te.c.payload)
    if keys is None:
        conds = [*key.where(), te.c.target_id.in_(list(target_ids)), te.c.event_name.in_(ROUTING)]
        stmt: Any = select(*columns).where(*conds, *upto_cond).order_by(te.c.sequence)
    else:
        stmt = keyed_test_events_select(q, keys, (*columns, te.c.sequence), upto_cond)
    return [
        (t, s, e, float(when), decode(p) if e == TARGET_ERR else None)
        for t, s, e, when, p, *_ in (await conn.execute(stmt)).all()
    ]


@dataclass(slots=True)
class EventRow:
    sequence: int
    run_id: int
    test_name: str
    attempt: int
    step_label: str
    target_id: str | None
    name: str
    payload: Any
    emit_time: float


def _event_row(r: Any) -> EventRow:
    return EventRow(
        int(r.sequence),
        int(r.run_id),
        r.test_name,
        int(r.test_attempt),
        r.step_label,
        r.target_id,
        r.event_name,
        decode(r.payload),
        float(r.emit_time),
    )


_EVENT_COLUMNS = (
    te.c.sequence,
    te.c.run_id,
    te.c.test_name,
    te.c.test_attempt,
    te.c.step_label,
    te.c.target_id,
    te.c.event_name,
    te.c.payload,
    te.c.emit_time,
)


async def cell_events(
    conn: AsyncConnection, key: AttemptKey, step_label: str, target_id: str, limit: int
) -> list[EventRow]:
    """Every event of one target in one step of the attempt (the first ``limit``)."""
    stmt = (
        select(*_EVENT_COLUMNS)
        .where(*key.where(), te.c.step_label == step_label, te.c.target_id == target_id)
        .order_by(te.c.sequence)
        .limit(limit)
    )
    return [_event_row(r) for r in (await conn.execute(stmt)).all()]


async def events_after(
    conn: AsyncConnection, job_id: int, after: int, limit: int
) -> list[EventRow]:
    """The job's routing, acquisition and waiting events numbered above ``after``."""
    stmt = (
        select(*_EVENT_COLUMNS)
        .where(te.c.job_id == job_id, te.c.sequence > after, te.c.event_name.in_(LIVE_EVENTS))
        .order_by(te.c.sequence)
        .limit(limit)
    )
    return [_event_row(r) for r in (await conn.execute(stmt)).all()]


async def framework_after(conn: AsyncConnection, job_id: int, after: int) -> list[str]:
    """Names of the job's framework events numbered above ``after``."""
    stmt = (
        select(fe.c.event_name)
        .where(fe.c.job_id == job_id, fe.c.sequence > after)
        .order_by(fe.c.sequence)
    )
    return [r[0] for r in (await conn.execute(stmt)).all()]


# --- waiting for targets ------------------------------------------------------------------------


async def latest_waits(
    conn: AsyncConnection, job_ids: Sequence[int]
) -> dict[int, tuple[EventRow, EventRow | None]]:
    """Per job, its latest ``TargetsWaiting`` and the ``TargetsWaitEnded`` after it, if any."""
    if not job_ids:
        return {}
    newest = (
        select(te.c.job_id, te.c.event_name, func.max(te.c.sequence).label("seq"))
        .where(
            te.c.job_id.in_(list(job_ids)),
            te.c.event_name.in_((TARGETS_WAITING, TARGETS_WAIT_ENDED)),
        )
        .group_by(te.c.job_id, te.c.event_name)
    )
    seqs = [int(r.seq) for r in (await conn.execute(newest)).all()]
    if not seqs:
        return {}
    stmt = select(te.c.job_id, *_EVENT_COLUMNS).where(te.c.sequence.in_(seqs))
    waiting: dict[int, EventRow] = {}
    ended: dict[int, EventRow] = {}
    for r in (await conn.execute(stmt)).all():
        (waiting if r.event_name == TARGETS_WAITING else ended)[int(r.job_id)] = _event_row(r)
    out: dict[int, tuple[EventRow, EventRow | None]] = {}
    for job_id, w in waiting.items():
        e = ended.get(job_id)
        out[job_id] = (w, e if e is not None and e.sequence > w.sequence else None)
    return out


# --- one target across jobs -----------------------------------------------------------------------


async def target_jobs(
    conn: AsyncConnection, target_id: str, before: int | None, limit: int
) -> list[int]:
    """The jobs that acquired ``target_id``, newest first."""
    conds = [te.c.target_id == target_id, _event_is(TARGET_ACQUIRED)]
    if before is not None:
        conds.append(te.c.job_id < before)
    stmt = (
        select(te.c.job_id)
        .where(*conds)
        .group_by(te.c.job_id)
        .order_by(te.c.job_id.desc())
        .limit(limit)
    )
    return [int(r[0]) for r in (await conn.execute(_by_target(stmt))).all()]


async def target_outcomes(
    conn: AsyncConnection, target_id: str, job_ids: Sequence[int]
) -> list[tuple[int, EventRow]]:
    """How ``target_id`` left each step in the given jobs (``TargetOut``/``TargetErr``), with
    their job: in each job, a seek per step (``step_keys``), as a target query does."""
    out: list[tuple[int, EventRow]] = []
    for job_id in job_ids:
        q = TestEventQuery(
            job_id=job_id, target_ids=[target_id], event_names=[TARGET_OUT, TARGET_ERR]
        )
        keys = await step_keys(conn, q)
        if keys == []:
            continue
        stmt = (
            select(te.c.job_id, *_EVENT_COLUMNS).where(
                te.c.job_id == job_id,
                te.c.target_id == target_id,
                te.c.event_name.in_((TARGET_OUT, TARGET_ERR)),
            )
            if keys is None
            else keyed_test_events_select(q, keys, (te.c.job_id, *_EVENT_COLUMNS))
        )
        out += [(int(r.job_id), _event_row(r)) for r in (await conn.execute(stmt)).all()]
    out.sort(key=lambda pair: pair[1].sequence)
    return out


async def last_failure(conn: AsyncConnection, target_id: str) -> tuple[int, EventRow] | None:
    """The target's newest ``TargetErr``, with its job."""
    stmt = (
        select(te.c.job_id, *_EVENT_COLUMNS)
        .where(te.c.target_id == target_id, _event_is(TARGET_ERR))
        .order_by(te.c.sequence.desc())
        .limit(1)
    )
    stmt = _by_target(stmt)
    row = (await conn.execute(stmt)).first()
    return None if row is None else (int(row.job_id), _event_row(row))


async def lock_row(conn: AsyncConnection, target_id: str) -> tuple[int, float] | None:
    """The DB target locker's row for ``target_id``: ``(job, lease end)``, expired or not."""
    stmt = select(target_locks.c.job_id, target_locks.c.expires_at).where(
        target_locks.c.target_id == target_id
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else (int(row[0]), float(row[1]))


async def jobs_by_id(conn: AsyncConnection, job_ids: Sequence[int]) -> dict[int, JobRow]:
    if not job_ids:
        return {}
    stmt = select(*_JOB_COLUMNS).where(jobs.c.job_id.in_(list(job_ids)))
    rows = [_job_row(r) for r in (await conn.execute(stmt)).all()]
    await _add_tags(conn, rows)
    return {r.job_id: r for r in rows}
