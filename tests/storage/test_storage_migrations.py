"""Migrations: from empty to head, re-running is a no-op, the result equals schema.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from contest.events import TestEvent, TestEventHeader
from contest.events import TestEventQuery as TQuery
from contest.storage import JobRequest, open_storage
from contest.storage import migrate as mig
from contest.storage.engine import create_engine
from contest.storage.migrations import VERSION_TABLE
from contest.storage.schema import metadata, target_wait_tickets
from contest.target import Target
from contest.testing.databases import Kind, create_database, drop_database

TABLES = {
    "jobs",
    "job_tags",
    "test_events",
    "framework_events",
    "reports",
    "target_locks",
    "target_waits",
    "target_wait_tickets",
    "run_statuses",
    "commit_markers",
    "servers",
    "job_leases",
    "job_commands",
    "job_checkpoints",
    VERSION_TABLE,
}


@pytest.fixture
async def fresh_url(db_url: str, tmp_path: object) -> AsyncIterator[str]:
    """A new, empty database of the same kind as ``db_url`` (dropped afterwards)."""
    kind: Kind = (
        "postgresql"
        if db_url.startswith("postgresql")
        else ("mariadb" if db_url.startswith("mysql") else "sqlite")
    )
    url = await asyncio.to_thread(create_database, kind, str(tmp_path))
    yield url
    await asyncio.to_thread(drop_database, url)


def test_history_is_linear() -> None:
    scripts = ScriptDirectory.from_config(mig.alembic_config())
    revs = list(scripts.walk_revisions())
    assert len(scripts.get_heads()) == 1 and len(scripts.get_bases()) == 1
    for rev in revs:
        assert rev.down_revision is None or isinstance(rev.down_revision, str)
        assert rev.revision.isdigit() and len(rev.revision) == 4
    numbers = sorted(int(r.revision) for r in revs)
    assert numbers == list(range(1, len(revs) + 1))
    assert mig.head_revision() == f"{len(revs):04d}"


async def test_upgrade_from_empty_then_no_op(fresh_url: str) -> None:
    engine = create_engine(fresh_url)
    try:
        assert await mig.current_revision(engine) is None
        await mig.upgrade(engine)
        assert await mig.current_revision(engine) == mig.head_revision()
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert tables == TABLES
    finally:
        await engine.dispose()

    storage = await open_storage(fresh_url)  # migrates again: nothing to do, data kept
    try:
        assert await storage.version() == int(mig.head_revision())
        job_id = await storage.store_job(JobRequest("j", "r", "s", "{}"))
    finally:
        await storage.close()
    storage = await open_storage(fresh_url)
    try:
        assert await storage.version() == int(mig.head_revision())
        assert await storage.get_job(job_id) is not None
    finally:
        await storage.close()


async def test_concurrent_starts_migrate_once(fresh_url: str) -> None:
    storages = await asyncio.gather(*(open_storage(fresh_url) for _ in range(3)))
    try:
        assert [await s.version() for s in storages] == [int(mig.head_revision())] * 3
    finally:
        for s in storages:
            await s.close()


async def _upgrade_to(url: str, revision: str) -> None:
    """The database at ``url`` brought to ``revision``, as a server of that version left it."""
    engine = create_engine(url)
    try:
        await mig.upgrade(engine, revision)
    finally:
        await engine.dispose()


def _downgrade_to(revision: str) -> Callable[[Connection], None]:
    """What ``conn.run_sync`` runs to take the database down to ``revision``."""

    def down(conn: Connection) -> None:
        cfg = mig.alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        conn.commit()

    return down


def _diff(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return [
        d
        for d in compare_metadata(ctx, metadata)
        if not _is_version_table(d) and not _not_for(conn.dialect.name, d)
    ]


def _not_for(dialect: str, diff: object) -> bool:
    """An index schema.py declares for other databases only (``ddl_if``), which alembic's
    comparison does not know of."""
    if not (isinstance(diff, tuple) and diff[0] == "add_index"):
        return False
    declared = {ix.name: ix for table in metadata.tables.values() for ix in table.indexes}
    index = declared.get(getattr(diff[1], "name", None))
    only = getattr(index, "_ddl_if", None)
    if only is None or only.dialect is None:
        return False
    names = (only.dialect,) if isinstance(only.dialect, str) else tuple(only.dialect)
    return dialect not in names


def _is_version_table(diff: object) -> bool:
    return isinstance(diff, tuple) and getattr(diff[1], "name", None) == VERSION_TABLE


async def test_migrated_schema_equals_schema_py(fresh_url: str) -> None:
    engine = create_engine(fresh_url)
    try:
        async with engine.connect() as conn:
            assert len(await conn.run_sync(_diff)) >= len(metadata.tables)  # the check bites
        await mig.upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_downgrade_to_base_and_up_again(fresh_url: str) -> None:
    engine = create_engine(fresh_url)
    try:
        await mig.upgrade(engine)

        async with engine.connect() as conn:
            await conn.run_sync(_downgrade_to("base"))
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert tables <= {VERSION_TABLE}
        await mig.upgrade(engine)
        assert await mig.current_revision(engine) == mig.head_revision()
    finally:
        await engine.dispose()


async def test_0003_adds_the_target_line_to_a_0002_database(fresh_url: str) -> None:
    """0003 brings the line's tables (and the ticket row) to a database an older server left;
    downgrading to 0002 removes them and keeps the rest."""
    engine = create_engine(fresh_url)
    try:
        await mig.upgrade(engine, "0002")
        await mig.upgrade(engine, "0003")
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(target_wait_tickets.c.id, target_wait_tickets.c.last_ticket)
                )
            ).all()
        assert [tuple(r) for r in rows] == [(1, 0)]

        async with engine.connect() as conn:
            await conn.run_sync(_downgrade_to("0002"))
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert tables == (
            TABLES - {"target_waits", "target_wait_tickets"} - FLEET_TABLES - CHECKPOINT_TABLES
        )
    finally:
        await engine.dispose()


FLEET_TABLES = {"servers", "job_leases", "job_commands"}
CHECKPOINT_TABLES = {"job_checkpoints"}


async def test_0004_adds_the_fleet_tables_to_a_0003_database(fresh_url: str) -> None:
    """0004 brings the tables of several servers on one database (contest.storage.fleet) to a
    database an older server left, its jobs kept; downgrading to 0003 removes them only."""
    await _upgrade_to(fresh_url, "0003")
    storage = await open_storage(fresh_url, migrate_schema=False)  # as an old server left it
    try:
        job_id = await storage.store_job(JobRequest("j", "r", "s", "{}"))
    finally:
        await storage.close()
    storage = await open_storage(fresh_url)  # a new server: 0003 -> head
    try:
        assert await storage.version() == int(mig.head_revision())
        assert await storage.get_job(job_id) is not None
    finally:
        await storage.close()
    engine = create_engine(fresh_url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_downgrade_to("0003"))
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert tables == TABLES - FLEET_TABLES - CHECKPOINT_TABLES
    finally:
        await engine.dispose()


async def test_0005_adds_the_checkpoints_table_to_a_0004_database(fresh_url: str) -> None:
    """0005 brings the step checkpoints' table (contest.checkpoint) to a database a server of
    0004 left, its jobs kept; downgrading to 0004 removes it only."""
    await _upgrade_to(fresh_url, "0004")
    storage = await open_storage(fresh_url, migrate_schema=False)  # as an old server left it
    try:
        job_id = await storage.store_job(JobRequest("j", "r", "s", "{}"))
    finally:
        await storage.close()
    storage = await open_storage(fresh_url)  # a new server: 0004 -> head
    try:
        assert await storage.version() == int(mig.head_revision())
        assert await storage.get_job(job_id) is not None
        await storage.store_checkpoint(job_id, b'{"V":1}')  # an unfenced job: stored
        assert await storage.job_checkpoint(job_id) == b'{"V":1}'
    finally:
        await storage.close()
    engine = create_engine(fresh_url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_downgrade_to("0004"))
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert tables == TABLES - CHECKPOINT_TABLES
    finally:
        await engine.dispose()


def _test_event_indexes(conn: Connection) -> dict[str, list[str]]:
    return {
        str(ix["name"]): [str(c) for c in ix["column_names"]]
        for ix in inspect(conn).get_indexes("test_events")
    }


async def test_0006_moves_the_target_into_the_step_index(fresh_url: str) -> None:
    """0006 extends the run/test/step index of test events by the target, drops the one on
    the emit time and, where the database has partial indexes, keeps the target's own index
    for two events only; a 0005 database keeps its events, a target's events are still
    found, and 0005 comes back on downgrade."""
    await _upgrade_to(fresh_url, "0005")
    storage = await open_storage(fresh_url, migrate_schema=False)  # as an old server left it
    header = TestEventHeader(1, 1, "T", "s1")
    try:
        for t in ("a", "b"):
            await storage.write_test_event(TestEvent(header, Target(t), "TargetIn", None, 1.0))
    finally:
        await storage.close()
    storage = await open_storage(fresh_url)  # a new server: 0005 -> 0006
    try:
        found = await storage.test_events(TQuery(job_id=1, target_ids=["b"]))
        assert [(e.target.id if e.target else None, e.name) for e in found] == [("b", "TargetIn")]
    finally:
        await storage.close()
    engine = create_engine(fresh_url)
    try:
        async with engine.connect() as conn:
            by_target = (
                {"ix_test_events_target_id_event_name": ["target_id", "event_name"]}
                if engine.dialect.name in ("mysql", "mariadb")
                else {
                    "ix_test_events_target_id_acquired": ["target_id"],
                    "ix_test_events_target_id_failed": ["target_id"],
                }
            )
            assert await conn.run_sync(_test_event_indexes) == {
                "ix_test_events_job_id_event_name": ["job_id", "event_name"],
                "ix_test_events_job_id_run_id_test_name_step_label_target_id": [
                    "job_id", "run_id", "test_name", "step_label", "target_id"
                ],
                **by_target,
            }  # fmt: skip

        async with engine.connect() as conn:
            await conn.run_sync(_downgrade_to("0005"))
            assert set(await conn.run_sync(_test_event_indexes)) == {
                "ix_test_events_job_id_run_id_test_name_step_label",
                "ix_test_events_job_id_event_name",
                "ix_test_events_target_id",
                "ix_test_events_emit_time",
            }
    finally:
        await engine.dispose()
