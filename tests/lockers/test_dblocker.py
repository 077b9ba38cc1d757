"""DBLocker specifics beyond the conformance suite: settings, rows, batches, failures."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from contest.locking import InvalidLockRequest, LockerClosed, LockerUnavailable, TargetLocker
from contest.plugins.targetlockers import dblocker
from contest.plugins.targetlockers.dblocker import DBLocker
from contest.storage.schema import TARGET_ID_MAX, target_locks, target_wait_tickets, target_waits
from contest.storage.urls import to_async_url
from contest.testing.databases import migrate_database
from contest.testing.lockers import CASES, ConformanceCase, FakeClock, SingleLockerBackend


async def _rows(locker: DBLocker) -> dict[str, tuple[int, float, float]]:
    c = target_locks.c
    async with locker.engine.connect() as conn:
        result = await conn.execute(select(c.target_id, c.job_id, c.created_at, c.expires_at))
        return {r[0]: (r[1], r[2], r[3]) for r in result.all()}


async def _fresh(url: str, clock: FakeClock | None = None, **kw: object) -> DBLocker:
    locker = dblocker.new(url=url, clock=clock or FakeClock(), **kw)
    await locker.create_table()
    await locker.reset_all_locks()
    return locker


def test_load_and_settings() -> None:
    name, factory = dblocker.load()
    assert name == "DBLocker"
    with pytest.raises(TypeError, match="exactly one of 'engine' and 'url'"):
        factory()
    engine = create_async_engine("sqlite+aiosqlite://")
    with pytest.raises(TypeError, match="exactly one"):
        factory(engine=engine, url="sqlite:///x.db")
    with pytest.raises(TypeError, match="unknown settings"):
        factory(url="sqlite:///x.db", colour="blue")
    with pytest.raises(TypeError, match="AsyncEngine"):
        factory(engine="sqlite:///x.db")
    assert isinstance(factory(engine=engine), TargetLocker)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_conformance_on_one_shared_connection(case: ConformanceCase) -> None:
    """An in-memory SQLite engine has a single connection; calls must not interleave on it."""

    def make(clock: FakeClock) -> DBLocker:
        engine = create_async_engine("sqlite+aiosqlite://")
        return DBLocker(engine, owns_engine=True, clock=clock, create_table=True)

    await case.run(SingleLockerBackend(make))


async def test_rows_created_kept_and_taken_over(db_url: str) -> None:
    clock = FakeClock(start=1000.0)
    locker = await _fresh(db_url, clock)
    try:
        await locker.lock(1, 60, ["a", "b"])
        assert await _rows(locker) == {"a": (1, 1000.0, 1060.0), "b": (1, 1000.0, 1060.0)}
        clock.advance(30)
        await locker.refresh_locks(1, 60, ["a"])
        await locker.try_lock(1, 10, ["b"], 1)
        rows = await _rows(locker)
        assert rows == {"a": (1, 1000.0, 1090.0), "b": (1, 1000.0, 1040.0)}
        clock.advance(100)  # both expired
        await locker.lock(2, 60, ["b"])
        assert (await _rows(locker))["b"] == (2, 1130.0, 1190.0)
        await locker.unlock(1, ["a"])
        assert list(await _rows(locker)) == ["b"]
    finally:
        await locker.close()


async def test_many_targets_in_batches(db_url: str) -> None:
    """More targets than one statement takes: every call still all-or-nothing."""
    locker = await _fresh(db_url, batch_size=64)
    try:
        many = [f"host-{i:04}" for i in range(300)]
        await locker.lock(1, 60, many[:150])
        got = await locker.try_lock(2, 60, many, 100)
        assert got == many[150:250]
        await locker.refresh_locks(1, 60, many[:150])
        with pytest.raises(Exception, match="host-0150"):
            await locker.refresh_locks(1, 60, many[:151])
        await locker.unlock(1, many[:150])
        rows = await _rows(locker)
        assert sorted(rows) == many[150:250]
        assert {job for job, _, _ in rows.values()} == {2}
    finally:
        await locker.close()


async def test_target_id_length(db_url: str) -> None:
    locker = await _fresh(db_url)
    try:
        longest = "x" * TARGET_ID_MAX
        await locker.lock(1, 60, [longest])
        await locker.unlock(1, [longest])
        with pytest.raises(InvalidLockRequest, match=f"longer than {TARGET_ID_MAX}"):
            await locker.lock(1, 60, [longest + "x"])
    finally:
        await locker.close()


async def test_shared_engine_survives_close(sqlite_url: str) -> None:
    engine = create_async_engine(to_async_url(sqlite_url))
    try:
        locker = dblocker.new(engine=engine, create_table=True)
        await locker.lock(1, 60, ["a"])
        await locker.close()
        with pytest.raises(LockerClosed):
            await locker.lock(1, 60, ["a"])
        other = dblocker.new(engine=engine)
        await other.unlock(1, ["a"])  # same engine, still open
        await other.close()
    finally:
        await engine.dispose()


async def test_create_table_on_first_use(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    locker = dblocker.new(url=url, create_table=True)
    try:
        await locker.lock(1, 60, ["a"])
        assert list(await _rows(locker)) == ["a"]
    finally:
        await locker.close()


async def test_missing_table_is_reported(tmp_path: object) -> None:
    locker = dblocker.new(url=f"sqlite:///{tmp_path}/empty.db")
    try:
        with pytest.raises(LockerUnavailable, match="target_locks"):
            await locker.lock(1, 60, ["a"])
    finally:
        await locker.close()


async def test_unreachable_database() -> None:
    """A refused connection is retried for retry_for seconds, then reported."""
    locker = dblocker.new(url="postgresql://postgres@127.0.0.1:1/nothing", retry_for=0.3)
    try:
        with pytest.raises(LockerUnavailable, match="lock by job 1: the database connection"):
            await locker.lock(1, 60, ["a"])
        assert locker.reconnects >= 2
    finally:
        await locker.close()


async def test_go_mysql_dsn(mariadb_url: str) -> None:
    """ConTest's own DSN form reaches the same database."""
    url = to_async_url(mariadb_url)
    dsn = f"{url.username}@tcp({url.host}:{url.port})/{url.database}?parseTime=true"
    locker = await _fresh(dsn)
    try:
        await locker.lock(1, 60, ["a"])
        assert list(await _rows(locker)) == ["a"]
    finally:
        await locker.close()


async def _line(locker: DBLocker) -> dict[tuple[str, int], tuple[int, float]]:
    w = target_waits.c
    async with locker.engine.connect() as conn:
        result = await conn.execute(select(w.target_id, w.job_id, w.ticket, w.expires_at))
        return {(r[0], int(r[1])): (int(r[2]), float(r[3])) for r in result.all()}


async def test_line_rows_renewed_granted_and_purged(db_url: str) -> None:
    clock = FakeClock(start=1000.0)
    locker = await _fresh(db_url, clock)
    try:
        await locker.lock(1, 60, ["a"])
        assert not (await locker.lock_queued(2, 60, ["a", "b"], ttl=10)).granted
        assert not (await locker.lock_queued(3, 60, ["b"], ttl=5)).granted
        line = await _line(locker)
        t2, t3 = line[("a", 2)][0], line[("b", 3)][0]
        assert t2 < t3
        assert line == {("a", 2): (t2, 1010.0), ("b", 2): (t2, 1010.0), ("b", 3): (t3, 1005.0)}
        clock.advance(3)
        assert not (await locker.lock_queued(2, 60, ["a", "b"], ttl=10)).granted
        assert (await _line(locker))[("b", 2)] == (t2, 1013.0)  # renewed, same ticket
        await locker.unlock(1, ["a"])
        got = await locker.lock_queued(2, 60, ["a", "b"])
        assert got.granted and got.acquired == ["a", "b"]
        assert await _line(locker) == {("b", 3): (t3, 1005.0)}  # job 2 left the line
        clock.advance(20)  # job 3's place lapsed, and the purge is due
        assert (await locker.lock_queued(4, 60, ["c"])).granted
        assert await _line(locker) == {}
    finally:
        await locker.close()


async def test_line_on_a_migrated_database(tmp_path: object) -> None:
    """The storage's migration makes the line's tables and the ticket row."""
    url = f"sqlite:///{tmp_path}/migrated.db"
    await asyncio.to_thread(migrate_database, url)
    locker = dblocker.new(url=url)
    try:
        await locker.lock(1, 60, ["a"])
        assert not (await locker.lock_queued(2, 60, ["a"])).granted
        async with locker.engine.connect() as conn:
            last = (await conn.execute(select(target_wait_tickets.c.last_ticket))).all()
        assert last == [(1,)]
        assert list(await _line(locker)) == [("a", 2)]
    finally:
        await locker.close()


@pytest.mark.parametrize("kind", ["mariadb", "postgresql"])
async def test_only_jobs_joining_the_line_take_the_ticket_row(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """While another transaction holds the ticket row, a job already in line still renews its
    place (waiting jobs' polls do not queue behind each other), and a job joining waits."""
    url: str = request.getfixturevalue(f"{kind}_url")
    locker = await _fresh(url)
    other = dblocker.new(url=url)
    try:
        await locker.lock(1, 60, ["a"])
        assert not (await locker.lock_queued(2, 60, ["a"])).granted
        async with other.engine.connect() as conn:
            if kind == "mariadb":
                await conn.execution_options(isolation_level="READ COMMITTED")
            async with conn.begin():
                c = target_wait_tickets.c
                await conn.execute(select(c.last_ticket).where(c.id == 1).with_for_update())
                got = await asyncio.wait_for(locker.lock_queued(2, 60, ["a"]), 10)
                assert not got.granted and got.blockers == {"a": 1}
                joining = asyncio.ensure_future(locker.lock_queued(3, 60, ["a"]))
                await asyncio.sleep(0.3)
                assert not joining.done()  # waits for the ticket row
        got = await asyncio.wait_for(joining, 10)
        assert not got.granted and got.blockers == {"a": 1}
        await locker.unlock(1, ["a"])
        got = await locker.lock_queued(3, 60, ["a"])
        assert not got.granted and got.blockers == {"a": 2}  # job 3 joined behind job 2
    finally:
        await other.close()
        await locker.close()
