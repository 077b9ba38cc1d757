"""Saved run statuses (``run_statuses``), the status builder's lean read, and migration 0002,
on every database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, inspect, text
from sqlalchemy.engine import Connection

from contest.events import TestEvent as TEvent
from contest.events import TestEventHeader as Header
from contest.events import TestEventQuery as TQuery
from contest.job.status import rows_of
from contest.storage import JobRequest, Storage, open_storage
from contest.storage import migrate as mig
from contest.storage.engine import create_engine
from contest.storage.schema import run_statuses, test_events
from contest.target import Target
from contest.testing.databases import Kind, create_database, drop_database

# --- saved statuses ----------------------------------------------------------------------------


async def test_save_and_load_round_trip(storage: Storage) -> None:
    assert await storage.stored_run_statuses(1) == {}
    one, two = os.urandom(3000), b""
    await storage.store_run_status(1, 1, one)
    await storage.store_run_status(1, 2, two)
    await storage.store_run_status(2, 1, b"other job")
    assert await storage.stored_run_statuses(1) == {1: one, 2: two}
    assert await storage.stored_run_statuses(2) == {1: b"other job"}
    assert await storage.stored_run_statuses(3) == {}


async def test_big_status_is_chunked_and_replaced_whole(storage: Storage) -> None:
    storage._status_chunk = 1000  # many chunks
    big = os.urandom(10_000)  # 13,336 base64 characters: 14 chunks
    await storage.store_run_status(5, 1, big)
    assert await storage.stored_run_statuses(5) == {1: big}

    async def chunks() -> int:
        async with storage.engine.connect() as conn:
            n = await conn.execute(text("SELECT COUNT(*) FROM run_statuses WHERE job_id = 5"))
            return int(n.scalar_one())

    assert await chunks() == 14
    await storage.store_run_status(5, 1, b"small")  # replaces every chunk
    assert await storage.stored_run_statuses(5) == {1: b"small"}
    assert await chunks() == 1


async def test_gaps_and_bad_text_are_ignored(storage: Storage) -> None:
    await storage.store_run_status(1, 1, b"good")

    async def put(conn: object) -> None:
        t = run_statuses
        await conn.execute(  # type: ignore[attr-defined]
            insert(t),
            [
                {"job_id": 1, "run_id": 2, "chunk": 1, "data": "Z29vZA=="},  # chunk 0 missing
                {"job_id": 1, "run_id": 3, "chunk": 0, "data": "not base64!"},
            ],
        )

    await storage.run_write(put, "test rows")
    assert await storage.stored_run_statuses(1) == {1: b"good"}


async def test_reset_forgets_saved_statuses(storage: Storage) -> None:
    await storage.store_run_status(1, 1, b"x")
    await storage.reset()
    assert await storage.stored_run_statuses(1) == {}


# --- the lean read -----------------------------------------------------------------------------

T1 = Target("t1", fqdn="t1.example.com", primary_ipv4="10.0.0.1", manager_state={"k": [1, "x"]})
T2 = Target("T2", primary_ipv6="::1")
T3 = Target("ünï")


async def test_status_rows_equal_the_events(storage: Storage) -> None:
    """The lean read gives what the events give, for one run and the asked tests, each step's
    events in their order."""
    base = 1_700_000_000.0
    events: list[TEvent] = []
    for run in (1, 2):
        for test, attempt in (("A", 0), ("A", 1), ("B", 0), ("C", 0)):
            for label in ("", "s1", "s2"):
                h = Header(1, run, test, label, attempt)
                for i, (target, name, payload) in enumerate(
                    [
                        (T1, "TargetAcquired", None),
                        (T2, "TargetIn", None),
                        (T1, "TargetIn", None),
                        (None, "Note", "text"),
                        (T2, "TargetErr", {"Error": "boom"}),
                        (T1, "Out", [1, 2.5, True, None, {"a": "b"}]),
                        (T3, "TargetOut", 0.1),
                    ]
                ):
                    events.append(TEvent(h, target, name, payload, base + len(events) + i / 7))
    events.append(TEvent(Header(2, 1, "A", "s1"), T1, "TargetIn", None, base))  # other job
    await asyncio.gather(*(storage.write_test_event(e) for e in events))

    # rows other tools may write: a target ID without its JSON, a payload that is not JSON
    async def put(conn: object) -> None:
        await conn.execute(  # type: ignore[attr-defined]
            insert(test_events),
            [
                {
                    "job_id": 1,
                    "run_id": 1,
                    "test_name": "A",
                    "test_attempt": 1,
                    "step_label": "s1",
                    "target_id": "bare",
                    "target": None,
                    "event_name": "TargetIn",
                    "payload": "{not json",
                    "emit_time": base + 1000,
                }
            ],
        )

    await storage.run_write(put, "foreign rows")

    got = await storage.status_rows(1, 1, ["A", "B", "missing"])
    want = rows_of(await storage.test_events(TQuery(job_id=1, run_id=1, test_names=["A", "B"])))

    def by_step(rows: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, Any], list[Any]]:
        out: dict[tuple[Any, Any], list[Any]] = {}
        for r in rows:
            out.setdefault((r[0], r[2]), []).append(r)
        return out

    assert by_step(got) == by_step(want)
    assert len(got) == len(want) == 3 * 3 * 7 + 1  # (A 0, A 1, B 0) x 3 labels x 7, + 1
    assert sorted(got, key=lambda r: r[7]) == want  # same rows, same sequence numbers
    # one Target object per distinct target
    assert len({id(r[3]) for r in got if r[3] is not None}) == 4
    # of the events without a step label, only the asked ones
    some = await storage.status_rows(1, 1, ["A", "B"], ["TargetAcquired", "Nothing"])
    assert by_step(some) == by_step([r for r in want if r[2] != "" or r[4] == "TargetAcquired"])
    assert all(r[2] for r in await storage.status_rows(1, 1, ["A"], []))
    assert await storage.status_rows(1, 1, []) == []
    assert await storage.status_rows(1, 3, ["A"]) == []


# --- migration 0002 ----------------------------------------------------------------------------


@pytest.fixture
async def fresh_url(db_url: str, tmp_path: object) -> AsyncIterator[str]:
    kind: Kind = (
        "postgresql"
        if db_url.startswith("postgresql")
        else ("mariadb" if db_url.startswith("mysql") else "sqlite")
    )
    url = await asyncio.to_thread(create_database, kind, str(tmp_path))
    yield url
    await asyncio.to_thread(drop_database, url)


async def test_0002_upgrades_a_0001_database_and_downgrades(fresh_url: str) -> None:
    engine = create_engine(fresh_url)
    try:
        await mig.upgrade(engine, "0001")
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert "run_statuses" not in tables and "jobs" in tables
    finally:
        await engine.dispose()

    storage = await open_storage(fresh_url, migrate_schema=False)  # as an old server left it
    try:
        job_id = await storage.store_job(JobRequest("j", "r", "s", "{}"))
    finally:
        await storage.close()

    storage = await open_storage(fresh_url)  # a new server: 0001 -> 0002, data kept
    try:
        assert await storage.version() == int(mig.head_revision())  # 0002 and later
        assert await storage.get_job(job_id) is not None
        await storage.store_run_status(job_id, 1, b"status")
        assert await storage.stored_run_statuses(job_id) == {1: b"status"}
    finally:
        await storage.close()

    engine = create_engine(fresh_url)
    try:

        def down(conn: Connection) -> None:
            cfg = mig.alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
            conn.commit()

        async with engine.connect() as conn:
            await conn.run_sync(down)
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert "run_statuses" not in tables and "jobs" in tables
        assert await mig.current_revision(engine) == "0001"
    finally:
        await engine.dispose()


async def test_status_from_a_database_without_the_table(fresh_url: str) -> None:
    """A storage on a database not migrated to 0002 (``migrate_schema=False``): reading saved
    statuses fails, and the status code then builds every run from events."""
    from contest.job.status import saved_run_texts

    engine = create_engine(fresh_url)
    try:
        await mig.upgrade(engine, "0001")
    finally:
        await engine.dispose()
    storage = await open_storage(fresh_url, migrate_schema=False)
    try:
        assert await saved_run_texts(storage, 1, [1]) == {}
    finally:
        await storage.close()
