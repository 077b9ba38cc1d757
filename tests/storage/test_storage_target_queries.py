"""A query for targets seeks each (run, test, step) of the job (storage.events.step_keys): the
same events as a plain filter would give, in the same order, paged the same, on the three
databases; and read through the job's index instead when the job has too many keys."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from sqlalchemy import event

from contest.events import TestEvent, TestEventHeader, TestEventQuery
from contest.server.web import _queries as Q
from contest.storage import Storage
from contest.storage import events as storage_events
from contest.storage.engine import create_sync_engine
from contest.storage.reader import run_whole
from contest.target import Target

TARGETS = [Target(f"dut-{i}") for i in range(4)]


@pytest.fixture
async def written(storage: Storage) -> list[TestEvent]:
    """Two jobs; job 1 with two runs, two tests (one of them a second attempt), three steps,
    acquire/release (empty step label) and target-less events, interleaved."""
    events = []
    when = 1_700_000_000.0
    for job, run, test, attempt in itertools.product((1, 2), (1, 2), ("A", "B [CLEANUP]"), (0, 1)):
        for target in TARGETS:
            when += 1
            events.append(
                TestEvent(TestEventHeader(job, run, test, "", attempt), target, "TargetAcquired",
                          None, when)
            )  # fmt: skip
        for step, target in itertools.product(("s1", "s2", "zz"), TARGETS):
            header = TestEventHeader(job, run, test, step, attempt)
            when += 1
            events.append(TestEvent(header, target, "TargetIn", None, when))
            events.append(TestEvent(header, target, "TargetOut", {"t": target.id}, when + 0.5))
        events.append(TestEvent(TestEventHeader(job, run, test, "s1", attempt), None, "Note",
                                "no target", when))  # fmt: skip
    await asyncio.gather(*(storage.write_test_event(e) for e in events))
    return events


def _seen(events: list[TestEvent]) -> list[tuple[object, ...]]:
    return [
        (e.header.job_id, e.header.run_id, e.header.test_name, e.header.test_attempt,
         e.header.step_label, e.target.id if e.target else None, e.name, e.payload)
        for e in events
    ]  # fmt: skip


QUERIES = [
    TestEventQuery(job_id=1, target_ids=["dut-2"]),
    TestEventQuery(job_id=1, target_ids=["dut-0", "dut-3"], event_names=["TargetOut"]),
    TestEventQuery(job_id=1, run_id=2, target_ids=["dut-1"]),
    TestEventQuery(job_id=1, test_names=["B [CLEANUP]"], target_ids=["dut-1"], test_attempt=1),
    TestEventQuery(job_id=1, step_labels=["s2", ""], target_ids=["dut-1", "dut-2"]),
    TestEventQuery(job_id=1, step_labels=["nope"], target_ids=["dut-1"]),
    TestEventQuery(job_id=1, run_id=1, test_names=["A"], step_labels=["s2"], target_ids=["dut-3"]),
    TestEventQuery(job_id=1, target_ids=["dut-1"], limit=7),
    TestEventQuery(job_id=1, target_ids=["absent"]),
    TestEventQuery(job_id=3, target_ids=["dut-1"]),
    TestEventQuery(job_id=2, target_ids=["dut-0"], emitted_after=1_700_000_100.0, limit=5),
]


@pytest.mark.parametrize("query", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
async def test_a_target_query_gives_what_a_filter_gives(
    storage: Storage, written: list[TestEvent], query: TestEventQuery
) -> None:
    want = [e for e in written if query.matches(e)]  # written in order: sequence order
    if query.limit is not None:
        want = want[: query.limit]
    got = await storage.test_events(query)
    assert _seen(got) == _seen(want)
    assert [e.sequence for e in got] == sorted(e.sequence for e in got)


async def test_paging_a_target_through_its_events(
    storage: Storage, written: list[TestEvent]
) -> None:
    want = [e for e in written if e.header.job_id == 1 and e.target == TARGETS[3]]
    got: list[TestEvent] = []
    after = 0
    while True:
        page = await storage.test_events(
            TestEventQuery(job_id=1, target_ids=["dut-3"], after_sequence=after, limit=10)
        )
        if not page:
            break
        got += page
        after = page[-1].sequence
    assert _seen(got) == _seen(want) and len(got) == 2 * 2 * 2 * (1 + 3 * 2)


async def test_the_seeks_find_each_key_once(storage: Storage, written: list[TestEvent]) -> None:
    async def keys(query: TestEventQuery) -> object:
        return await storage.transactor.read(lambda c: storage_events.step_keys(c, query), "keys")

    want = sorted({(e.header.run_id, e.header.test_name, e.header.step_label)
                   for e in written if e.header.job_id == 1})  # fmt: skip
    assert await keys(TestEventQuery(job_id=1, target_ids=["x"])) == want
    assert await keys(TestEventQuery(job_id=1, run_id=2, test_names=["A"], target_ids=["x"])) == [
        (2, "A", ""), (2, "A", "s1"), (2, "A", "s2"), (2, "A", "zz")
    ]  # fmt: skip
    assert await keys(TestEventQuery(job_id=9, target_ids=["x"])) == []


async def test_a_job_with_too_many_keys_is_read_whole(
    storage: Storage, written: list[TestEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage_events, "TARGET_SEEKS_MAX", 5)
    query = TestEventQuery(job_id=1, target_ids=["dut-2"], event_names=["TargetIn"])
    assert await storage.transactor.read(
        lambda c: storage_events.step_keys(c, query), "keys"
    ) is None  # fmt: skip
    got = await storage.test_events(query)
    assert _seen(got) == _seen([e for e in written if query.matches(e)])


async def _plans(storage: Storage, work: Any) -> list[str]:
    """The plan of each query ``work(conn)`` runs, as one line of text each."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    sync_engine = storage.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", capture)
    try:
        async with storage.engine.connect() as conn:
            await work(conn)
    finally:
        event.remove(sync_engine, "before_cursor_execute", capture)
    plans = []
    async with storage.engine.connect() as conn:
        name = storage.engine.dialect.name
        if name == "postgresql":  # a table this small is read whole unless that is ruled out
            await conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in seen:
            explain = "EXPLAIN QUERY PLAN " if name == "sqlite" else "EXPLAIN "
            rows = (await conn.exec_driver_sql(explain + statement, parameters)).all()
            if name in ("mysql", "mariadb"):  # the index used, not the ones it could use
                lines = [f"{r.table} {r.type} key={r.key} {r.Extra}" for r in rows]
            else:
                lines = [" ".join(str(v) for v in r) for r in rows]
            plans.append(" | ".join(lines))
    return plans


async def test_a_target_is_looked_up_through_the_indexes(
    storage: Storage, written: list[TestEvent]
) -> None:
    """What the web view asks of one target (the jobs that acquired it, its last failure, its
    outcomes in those jobs) reads indexes: the partial indexes of its acquisitions and
    failures (MariaDB: the index of every row by target and event), and a seek of each
    step."""
    partial = storage.engine.dialect.name in ("sqlite", "postgresql")
    whole = "key=ix_test_events_target_id_event_name"
    acquired = "ix_test_events_target_id_acquired" if partial else whole
    failed = "ix_test_events_target_id_failed" if partial else whole
    plans = await _plans(storage, lambda c: Q.target_jobs(c, "dut-1", None, 10))
    assert len(plans) == 1 and acquired in plans[0], plans
    plans = await _plans(storage, lambda c: Q.last_failure(c, "dut-1"))
    assert len(plans) == 1 and failed in plans[0], plans
    plans = await _plans(storage, lambda c: Q.target_outcomes(c, "dut-1", [1]))
    scans = ("SCAN test_events", "Seq Scan", "test_events ALL", "test_events index")
    assert len(plans) > 1 and not any(w in p for p in plans for w in scans), "\n".join(plans)
    if storage.engine.dialect.name != "postgresql":  # which index: by cost, on a table this small
        assert "ix_test_events_job_id_run_id_test_name_step_label_target_id" in plans[-1], plans


@pytest.mark.parametrize("seeks_max", [256, 2])  # a seek per step; the attempt's rows read
async def test_a_page_of_the_grid_reads_its_targets_rows(
    storage: Storage,
    written: list[TestEvent],
    seeks_max: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The web view's grid cells of a page of targets (``cell_rows``): the routing events of
    those targets in one attempt, in order, up to a sequence."""
    monkeypatch.setattr(storage_events, "TARGET_SEEKS_MAX", seeks_max)
    key = Q.AttemptKey(job_id=1, run_id=2, test_name="B [CLEANUP]", attempt=1)

    def cells(events: list[TestEvent]) -> list[TestEvent]:
        return [
            e for e in events
            if (e.header.job_id, e.header.run_id, e.header.test_name, e.header.test_attempt)
            == (1, 2, "B [CLEANUP]", 1)
            and e.target is not None and e.target.id in ("dut-0", "dut-3")
            and e.name in Q.ROUTING
        ]  # fmt: skip

    mine = cells(written)
    upto = cells(await storage.test_events(TestEventQuery(job_id=1)))[5].sequence
    async with storage.engine.connect() as conn:
        every = await Q.cell_rows(conn, key, ["dut-0", "dut-3"])
        some = await Q.cell_rows(conn, key, ["dut-0", "dut-3"], upto)
        none = await Q.cell_rows(conn, key, ["absent"])
    want = [(e.target.id, e.header.step_label, e.name, e.emit_time) for e in mine if e.target]
    assert [row[:4] for row in every] == want
    assert [row[:4] for row in some] == want[:6]
    assert none == []


async def test_a_targets_page_reads_whole_in_a_thread(
    storage: Storage, written: list[TestEvent], db_url: str
) -> None:
    """The web view's page of a target reads in the reader's thread (``run_read_whole``): its
    queries await nothing but their connection, and answer there as on the loop."""

    async def page(conn: Any) -> tuple[Any, ...]:
        ids = await Q.target_jobs(conn, "dut-1", None, 20)
        return (
            ids,
            await Q.target_outcomes(conn, "dut-1", ids),
            await Q.last_failure(conn, "dut-1"),
            await Q.cell_rows(conn, Q.AttemptKey(1, 1, "A", 0), ["dut-1", "dut-2"]),
        )

    async with storage.engine.connect() as conn:
        on_loop = await page(conn)
    engine = create_sync_engine(db_url)
    try:
        with engine.connect() as sync_conn:
            whole = run_whole(page, sync_conn)
    finally:
        engine.dispose()
    assert whole == on_loop and on_loop[0] == [2, 1] and len(on_loop[1]) == 2 * 2 * 2 * 3 * 2
