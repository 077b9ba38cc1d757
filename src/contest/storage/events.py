"""Test and framework events in SQL: encoding at write time, the batch flush, the queries.

Write path (synchronous, in the emitter's task): check the sizes, encode the payload and the
target as JSON, build the row tuple, hand it to the group-commit writer. Anything wrong with
the event raises right there, so it never reaches a shared batch.

Payloads are stored as JSON text (``None`` -> NULL, "no payload"); targets as their whole JSON
(ID, FQDN, IPs and the target manager's state), so an event read back carries the same target
that was written, unlike ConTest, which keeps only the ID.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import replace
from json.encoder import c_make_encoder  # type: ignore[attr-defined]
from json.encoder import encode_basestring_ascii as _esc
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from contest.events import (
    FrameworkEvent,
    FrameworkEventQuery,
    TestEvent,
    TestEventHeader,
    TestEventQuery,
)
from contest.status import gc_paused
from contest.storage import limits as L
from contest.storage.bulk import Row, bulk_insert
from contest.storage.errors import NotSerializable
from contest.storage.jobs import ENDED_STATES
from contest.storage.models import JobState
from contest.storage.schema import framework_events, jobs, test_events
from contest.target import Target

TEST_COLUMNS = (
    "job_id",
    "run_id",
    "test_name",
    "test_attempt",
    "step_label",
    "target_id",
    "target",
    "event_name",
    "payload",
    "emit_time",
)
#: the leading columns of a test event's row that its step's other events share
TEST_HEADER = 5
#: the test event columns the database fills in when an INSERT leaves them out, with what it
#: puts there (schema.test_events: a first attempt, no payload), as most batches hold
TEST_DEFAULTS: dict[str, object] = {"test_attempt": 0, "payload": None}
FRAMEWORK_COLUMNS = ("job_id", "event_name", "payload", "emit_time")


class FrameworkItem:
    """A queued framework event: its row, and the job state it moves to (None: no state)."""

    __slots__ = ("row", "state")

    def __init__(self, row: Row, state: JobState | None) -> None:
        self.row = row
        self.state = state


# A queued item: a test event's row itself (no wrapper: one object less per event, and a row
# of plain values drops out of the garbage collector's sight at its first pass), or a
# framework event.
Item = Row | FrameworkItem


def _not_json(value: Any) -> Any:
    raise TypeError(f"a {type(value).__name__} is not JSON")


def _make_dumps() -> Callable[[Any], str]:
    """Compact ASCII JSON. The C encoder object is built once and reused: ``json.dumps`` builds
    one per call, which is most of its cost for the small payloads events carry (2.5 us ->
    0.6 us, measured). No circular-reference check: a cycle ends in RecursionError, reported
    as NotSerializable like any other unencodable value."""
    if c_make_encoder is None:  # pragma: no cover - pure-Python json
        return json.JSONEncoder(separators=(",", ":"), default=_not_json).encode
    enc = c_make_encoder(None, _not_json, _esc, None, ":", ",", False, False, True)

    def dumps(value: Any) -> str:
        if isinstance(value, str):
            return _esc(value)
        return "".join(enc(value, 0))

    return dumps


_dumps = _make_dumps()


def encode_json(value: Any, data_name: str, max_len: int) -> str | None:
    """``value`` as compact ASCII JSON text, size-checked; None stays None (no payload)."""
    if value is None:
        return None
    try:
        text = _dumps(value)
    except (TypeError, ValueError, RecursionError) as e:
        raise NotSerializable(f"{data_name} is not a JSON value: {e}") from e
    L.check(data_name, text, max_len)
    return text


def encode_target(target: Target, max_len: int) -> str:
    """The target's JSON, the shape of :meth:`Target.to_json_obj` (a test checks they agree),
    spelled out because it runs once per event and the generic encoder costs 3 times more."""
    parts = ['{"ID":', _esc(target.id)]
    if target.fqdn:
        parts += [',"FQDN":', _esc(target.fqdn)]
    if target.primary_ipv4:
        parts += [',"PrimaryIPv4":', _esc(target.primary_ipv4)]
    if target.primary_ipv6:
        parts += [',"PrimaryIPv6":', _esc(target.primary_ipv6)]
    if target.manager_state is not None:
        tms = encode_json(target.manager_state, "Target", max_len)
        parts += [',"TMS":', tms or "null"]
    parts.append("}")
    text = "".join(parts)
    L.check("Target", text, max_len)
    return text


def decode_json(text: str | None) -> Any:
    """Inverse of :func:`encode_json`; text written by other tools comes back verbatim."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class EventCodec:
    """Turns events into queued items (with all the checks) and rows back into events.

    It runs once per event, in the emitter's task, so it remembers what it has checked: the
    headers (one object per step and attempt, shared by its events, frozen), the event names,
    and each target's JSON (reused while the target's fields are the ones it was made from).
    """

    _MEMORY = 100_000  # entries of each memo before it starts afresh

    def __init__(self, limits: L.Limits) -> None:
        self.limits = limits
        self._headers: dict[int, TestEventHeader] = {}  # id -> the header (kept alive)
        self._names: set[str] = set()
        # target ID -> (FQDN, IPv4, IPv6, JSON) of a target without manager state
        self._targets: dict[str, tuple[str, str | None, str | None, str]] = {}

    def _check_header(self, h: TestEventHeader) -> None:
        L.check(L.TEST_NAME[0], h.test_name, L.TEST_NAME[1])
        L.check(L.STEP_LABEL[0], h.step_label, L.STEP_LABEL[1])
        if len(self._headers) >= self._MEMORY:
            self._headers.clear()
        self._headers[id(h)] = h

    def _target_json(self, target: Target) -> str:
        if target.manager_state is None:
            known = self._targets.get(target.id)
            if (
                known is not None
                and known[0] == target.fqdn
                and known[1] == target.primary_ipv4
                and known[2] == target.primary_ipv6
            ):
                return known[3]
        L.check(L.TARGET_ID[0], target.id, L.TARGET_ID[1])
        text = encode_target(target, self.limits.target)
        if target.manager_state is None:
            if len(self._targets) >= self._MEMORY:
                self._targets.clear()
            self._targets[target.id] = (
                target.fqdn,
                target.primary_ipv4,
                target.primary_ipv6,
                text,
            )
        return text

    def test_item(self, ev: TestEvent) -> Row:
        if not ev.emit_time:
            ev.emit_time = time.time()
        return self.test_row(ev.header, ev.target, ev.name, ev.payload, ev.emit_time)

    def test_row(
        self,
        h: TestEventHeader,
        target: Target | None,
        name: str,
        payload: Any,
        emit_time: float,
    ) -> Row:
        """The row of a test event given by its fields (no :class:`TestEvent` needed)."""
        if self._headers.get(id(h)) is not h:
            self._check_header(h)
        if name not in self._names:
            L.check(L.EVENT_NAME[0], name, L.EVENT_NAME[1])
            if len(self._names) >= self._MEMORY:
                self._names.clear()
            self._names.add(name)
        if target is None:
            target_id = target_json = None
        else:
            target_id = target.id
            target_json = self._target_json(target)
        if payload is not None:
            payload = encode_json(payload, "Event payload", self.limits.event_payload)
        return (
            h.job_id,
            h.run_id,
            h.test_name,
            h.test_attempt,
            h.step_label,
            target_id,
            target_json,
            name,
            payload,
            emit_time,
        )

    def framework_item(self, ev: FrameworkEvent) -> FrameworkItem:
        L.check(L.EVENT_NAME[0], ev.name, L.EVENT_NAME[1])
        payload = encode_json(ev.payload, "Event payload", self.limits.event_payload)
        if not ev.emit_time:
            ev.emit_time = time.time()
        row = (ev.job_id, ev.name, payload, ev.emit_time)
        return FrameworkItem(row, JobState.from_event_name(ev.name))


_ENDED = frozenset(int(s) for s in ENDED_STATES)

_SET_STATE = (
    update(jobs)
    .where(jobs.c.job_id == bindparam("b_job_id"))
    .values(state=bindparam("b_state"), state_time=bindparam("b_time"))
)


#: what the flush calls, in its transaction, with the jobs whose final state the batch stores
EndedJobs = Callable[[AsyncConnection, set[int]], Awaitable[None]]


def make_flush(
    dialect: Dialect, ended: EndedJobs | None = None
) -> Callable[[AsyncConnection, list[Item]], Any]:
    """The writer's flush: insert a batch's events, and move ``jobs.state`` along with them;
    ``ended(conn, job_ids)`` runs in the same transaction for the jobs whose last state in the
    batch is one they end in (``jobs.ENDED_STATES``)."""
    insert_test = bulk_insert(
        dialect, test_events.name, TEST_COLUMNS, header=TEST_HEADER, defaults=TEST_DEFAULTS
    )
    insert_framework = bulk_insert(dialect, framework_events.name, FRAMEWORK_COLUMNS)

    async def flush(conn: AsyncConnection, items: list[Item]) -> None:
        test_rows = [item for item in items if type(item) is tuple]
        if test_rows:
            await insert_test(conn, test_rows)
        if len(test_rows) == len(items):
            return
        fw_rows: list[Row] = []
        states: dict[int, dict[str, Any]] = {}
        for item in items:
            if isinstance(item, FrameworkItem):
                row = item.row
                fw_rows.append(row)
                if item.state is not None:  # the last state event of a job in the batch wins
                    states[row[0]] = {
                        "b_job_id": row[0],
                        "b_state": int(item.state),
                        "b_time": row[3],
                    }
        await insert_framework(conn, fw_rows)
        if states:
            await conn.execute(_SET_STATE, list(states.values()))
            if ended is not None:
                done = {j for j, s in states.items() if s["b_state"] in _ENDED}
                if done:
                    await ended(conn, done)

    return flush


# --- reading ----------------------------------------------------------------------------------


def _in(column: Any, values: Sequence[Any] | None) -> ColumnElement[bool] | None:
    if values is None:
        return None
    return column.in_(list(values))  # type: ignore[no-any-return]


def _test_conds(q: TestEventQuery) -> list[ColumnElement[bool]]:
    t = test_events
    conds = [
        None if q.job_id is None else t.c.job_id == q.job_id,
        None if q.run_id is None else t.c.run_id == q.run_id,
        _in(t.c.test_name, q.test_names),
        _in(t.c.step_label, q.step_labels),
        _in(t.c.target_id, q.target_ids),
        _in(t.c.event_name, q.event_names),
        None if q.test_attempt is None else t.c.test_attempt == q.test_attempt,
        None if q.emitted_after is None else t.c.emit_time >= q.emitted_after,
        None if q.emitted_before is None else t.c.emit_time < q.emitted_before,
        None if q.after_sequence is None else t.c.sequence > q.after_sequence,
    ]
    return [c for c in conds if c is not None]


_TEST_COLUMNS = (
    test_events.c.sequence,
    test_events.c.job_id,
    test_events.c.run_id,
    test_events.c.test_name,
    test_events.c.test_attempt,
    test_events.c.step_label,
    test_events.c.target,
    test_events.c.target_id,
    test_events.c.event_name,
    test_events.c.payload,
    test_events.c.emit_time,
)


def test_events_select(q: TestEventQuery) -> Select[Any]:
    """The SELECT for a test-event query; every filter set narrows, lists are any-of."""
    stmt = select(*_TEST_COLUMNS).where(*_test_conds(q)).order_by(test_events.c.sequence)
    return stmt if q.limit is None else stmt.limit(q.limit)


#: a target query seeks each (run, test, step) of its job; a job with more of them than this
#: is read through the job's part of the index instead
TARGET_SEEKS_MAX = 256

_KEYED_PARAMS_MAX = 10_000
StepKey = tuple[int, str, str]  # (run_id, test_name, step_label)


async def step_keys(conn: AsyncConnection, q: TestEventQuery) -> list[StepKey] | None:
    """The (run, test, step) keys of ``q.job_id``'s events that ``q`` allows, by seeking the
    index ``(job_id, run_id, test_name, step_label, target_id)`` once per key (the least value
    above the last one found: a loose index scan, which none of the three databases does by
    itself), or None past :data:`TARGET_SEEKS_MAX`. Targets are the index's last column because
    a batch holds one row per target of a step (see schema.test_events); this is how a query
    for a target gets to them without reading the job's other rows."""
    t = test_events
    job = t.c.job_id == q.job_id
    seeks = 0

    async def values(column: Any, fixed: list[ColumnElement[bool]]) -> list[Any] | None:
        nonlocal seeks
        found: list[Any] = []
        while True:
            seeks += 1
            if seeks > TARGET_SEEKS_MAX:
                return None
            above = [] if not found else [column > found[-1]]
            # ORDER BY and LIMIT rather than MIN: the planners then take the index whose
            # order this is, even before the table's statistics know its size
            stmt = select(column).where(job, *fixed, *above).order_by(column).limit(1)
            value = (await conn.execute(stmt)).scalar()
            if value is None:
                return found
            found.append(value)

    runs = [q.run_id] if q.run_id is not None else await values(t.c.run_id, [])
    if runs is None:
        return None
    keys: list[StepKey] = []
    for run in runs:
        in_run = [t.c.run_id == run]
        tests = (
            sorted(set(q.test_names)) if q.test_names is not None
            else await values(t.c.test_name, in_run)
        )  # fmt: skip
        if tests is None:
            return None
        for test in tests:
            steps = (
                sorted(set(q.step_labels)) if q.step_labels is not None
                else await values(t.c.step_label, [*in_run, t.c.test_name == test])
            )  # fmt: skip
            if steps is None:
                return None
            keys.extend((run, test, step) for step in steps)
            if len(keys) > TARGET_SEEKS_MAX:
                return None
    if len(keys) * (len(q.target_ids or ()) + 8) > _KEYED_PARAMS_MAX:
        return None  # bound the statement's parameters (SQLite's limit: 32,766)
    return keys


def keyed_test_events_select(
    q: TestEventQuery,
    keys: Sequence[StepKey],
    columns: Sequence[Any] = _TEST_COLUMNS,
    also: Sequence[ColumnElement[bool]] = (),
) -> Any:
    """``q`` (and the conditions ``also``) as one index seek per (run, test, step) key, the
    answers merged by sequence (``columns`` must include ``sequence``)."""
    t = test_events
    conds = [*_test_conds(replace(q, run_id=None, test_names=None, step_labels=None)), *also]
    parts = [
        select(*columns).where(
            t.c.run_id == run, t.c.test_name == test, t.c.step_label == step, *conds
        )
        for run, test, step in keys
    ]
    every = union_all(*parts).subquery()
    stmt = select(*every.c).order_by(every.c.sequence)
    return stmt if q.limit is None else stmt.limit(q.limit)


def framework_events_select(q: FrameworkEventQuery) -> Select[Any]:
    f = framework_events
    conds = [
        None if q.job_id is None else f.c.job_id == q.job_id,
        _in(f.c.event_name, q.event_names),
        None if q.emitted_after is None else f.c.emit_time >= q.emitted_after,
        None if q.emitted_before is None else f.c.emit_time < q.emitted_before,
        None if q.after_sequence is None else f.c.sequence > q.after_sequence,
    ]
    stmt = (
        select(f.c.sequence, f.c.job_id, f.c.event_name, f.c.payload, f.c.emit_time)
        .where(*(c for c in conds if c is not None))
        .order_by(f.c.sequence)
    )
    return stmt if q.limit is None else stmt.limit(q.limit)


async def read_test_events(conn: AsyncConnection, q: TestEventQuery) -> list[TestEvent]:
    """Run a test-event query; events of one step share one header object, as when written."""
    headers: dict[tuple[int, int, str, str, int], TestEventHeader] = {}
    targets: dict[str, Target] = {}
    out: list[TestEvent] = []
    keys = None
    if q.job_id is not None and q.target_ids:
        keys = await step_keys(conn, q)
    if keys == []:
        return out
    result = await conn.execute(
        test_events_select(q) if keys is None else keyed_test_events_select(q, keys)
    )
    for seq, job, run, test, attempt, label, tjson, tid, name, payload, when in result:
        key = (job, run, test, label, attempt)
        header = headers.get(key)
        if header is None:
            header = headers[key] = TestEventHeader(job, run, test, label, attempt)
        target: Target | None = None
        if tjson is not None:
            target = targets.get(tjson)
            if target is None:
                target = targets[tjson] = Target.from_json_obj(json.loads(tjson))
        elif tid is not None:  # rows written by other tools may carry only the ID
            target = Target(tid)
        out.append(TestEvent(header, target, name, decode_json(payload), when, seq))
    return out


async def read_framework_events(
    conn: AsyncConnection, q: FrameworkEventQuery
) -> list[FrameworkEvent]:
    result = await conn.execute(framework_events_select(q))
    return [
        FrameworkEvent(job, name, decode_json(payload), when, seq)
        for seq, job, name, payload, when in result
    ]


async def has_test_events(conn: AsyncConnection, job_id: int, run_id: int) -> bool:
    t = test_events
    found = await conn.execute(
        select(t.c.sequence).where(t.c.job_id == job_id, t.c.run_id == run_id).limit(1)
    )
    return found.first() is not None


async def run_rows_after(
    conn: AsyncConnection, job_id: int, run_id: int, after: int, limit: int
) -> list[tuple[Any, ...]]:
    """The run's test event rows with a ``sequence`` above ``after``, in ``sequence`` order: each
    as the storage queues it (``TEST_COLUMNS``) with its ``sequence`` last; all of them for
    ``after`` 0, else at most ``limit``. One writer at a time writes a job's events, one
    transaction after the other, so its rows are committed in ``sequence`` order: reading on
    from the last one seen misses none (what :class:`contest.job.follow.RunFollower` relies
    on)."""
    t = test_events
    columns = (*(t.c[c] for c in TEST_COLUMNS), t.c.sequence)
    if after:
        # a range of the primary key: the rows since, whatever else the table holds
        found = await conn.execute(
            select(*columns)
            .where(t.c.job_id == job_id, t.c.run_id == run_id, t.c.sequence > after)
            .order_by(t.c.sequence)
            .limit(limit)
        )
        return [tuple(r) for r in found]
    # The whole run, read along its index (as a status build reads it) and put in order here:
    # asked for it in sequence order, MariaDB scanned the whole table by its primary key (and
    # PostgreSQL did too for a LIMIT), 4 s on 1.2 million events for a run of 120,000.
    found = await conn.execute(
        select(*columns)
        .where(t.c.job_id == job_id, t.c.run_id == run_id)
        .order_by(t.c.test_name, t.c.step_label, t.c.target_id)
    )
    rows = [tuple(r) for r in found]
    rows.sort(key=itemgetter(-1))
    return rows


async def event_sequences(
    conn: AsyncConnection,
    job_id: int,
    run_id: int,
    test_name: str,
    attempt: int,
    labels: Sequence[str],
    except_names: Collection[str],
) -> list[tuple[str, int]]:
    t = test_events
    found = await conn.execute(
        select(t.c.step_label, t.c.sequence)
        .where(
            t.c.job_id == job_id,
            t.c.run_id == run_id,
            t.c.test_name == test_name,
            t.c.test_attempt == attempt,
            t.c.step_label.in_(list(labels)),
            t.c.event_name.not_in(sorted(except_names)),
        )
        .order_by(t.c.step_label, t.c.sequence)
    )
    return [(str(label), int(seq)) for label, seq in found]


# --- the status builder's read ----------------------------------------------------------------

#: what :func:`read_status_rows` returns per event: (test name, test attempt, step label,
#: target or None, event name, payload, emit time, sequence)
StatusRow = tuple[str, int, str, Target | None, str, Any, float, int]

_STATUS_COLUMNS = (
    "test_name",
    "test_attempt",
    "step_label",
    "target_id",
    "target",
    "event_name",
    "payload",
    "emit_time",
    "sequence",
)


def _status_sql(dialect: Dialect, tests: int, unlabelled: int | None) -> str:
    q = dialect.identifier_preparer.quote
    ph = _PLACEHOLDERS.get(dialect.paramstyle, "?")
    marks = iter([ph.format(n=i + 1) for i in range(tests + 3 + (unlabelled or 0))])
    sql = (
        f"SELECT {', '.join(q(c) for c in _STATUS_COLUMNS)} FROM {q(test_events.name)} "
        f"WHERE {q('job_id')} = {next(marks)} AND {q('run_id')} = {next(marks)} "
        f"AND {q('test_name')} IN ({', '.join(next(marks) for _ in range(tests))}) "
    )
    if unlabelled is not None:
        empty = next(marks)
        names = ", ".join(next(marks) for _ in range(unlabelled)) or "NULL"
        sql += f"AND ({q('step_label')} <> {empty} OR {q('event_name')} IN ({names})) "
    # the order of ix_test_events_job_id_run_id_test_name_step_label (MySQL and SQLite keep the
    # primary key in every index): no sort on those two
    return sql + f"ORDER BY {q('test_name')}, {q('step_label')}, {q('sequence')}"


_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": ":{n}"}


async def _fetch_raw(conn: AsyncConnection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    """All rows as the driver gives them (tuples): no SQLAlchemy row objects, no result
    processing (the columns need none: integers, floats and text)."""
    dialect = conn.dialect
    raw = await conn.get_raw_connection()
    driver_conn: Any = raw.driver_connection
    if dialect.name == "sqlite" and dialect.driver == "aiosqlite":
        return list(await driver_conn.execute_fetchall(sql, params))
    if (dialect.name == "postgresql" and dialect.driver == "psycopg") or (
        dialect.name in ("mysql", "mariadb") and dialect.driver == "aiomysql"
    ):
        async with driver_conn.cursor() as cur:
            await cur.execute(sql, params)
            return list(await cur.fetchall())
    return list(await conn.exec_driver_sql(sql, params))


async def read_status_rows(
    conn: AsyncConnection,
    job_id: int,
    run_id: int,
    test_names: Sequence[str],
    unlabelled: Sequence[str] | None = None,
) -> list[StatusRow]:
    """Every event of the run's ``test_names`` (all attempts), lean: only the columns a status
    needs, each distinct target decoded once (events of one target share its object), payloads
    decoded; of the events with an empty step label, only those named in ``unlabelled``
    (None: all). Sorted by test name, step label, then sequence: the events of one step are in
    their order, steps are not interleaved."""
    if not test_names:
        return []
    names = list(dict.fromkeys(test_names))
    params: tuple[Any, ...] = (job_id, run_id, *names)
    if unlabelled is not None:
        unlabelled = list(dict.fromkeys(unlabelled))
        params = (*params, "", *unlabelled)
    sql = _status_sql(conn.dialect, len(names), None if unlabelled is None else len(unlabelled))
    rows = await _fetch_raw(conn, sql, params)
    if len(rows) < _CONVERT_IN_THREAD:
        return _status_rows(rows)
    return await asyncio.to_thread(_status_rows, rows)


#: rows; from this many the conversion runs in a worker thread, off the loop that runs the jobs
_CONVERT_IN_THREAD = 20_000


def _status_rows(rows: list[Any]) -> list[StatusRow]:
    targets: dict[str, Target] = {}
    out: list[StatusRow] = []
    append = out.append
    with gc_paused():
        for test, attempt, label, tid, tjson, name, payload, when, seq in rows:
            target: Target | None = None
            if tjson is not None:
                target = targets.get(tjson)
                if target is None:
                    target = targets[tjson] = Target.from_json_obj(json.loads(tjson))
            elif tid is not None:  # rows written by other tools may carry only the ID
                target = Target(tid)
            if payload is not None:
                payload = decode_json(payload)
            append((test, attempt, label, target, name, payload, when, seq))
    return out
