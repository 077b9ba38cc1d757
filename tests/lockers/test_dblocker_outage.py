"""DBLocker across dropped connections: the connection running a call of 2,000 targets is killed
from another connection (PostgreSQL ``pg_terminate_backend``, MariaDB ``KILL CONNECTION``) in
the middle of its transaction; the call succeeds on a new connection and the locks are exactly
right."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Connection

from contest.plugins.targetlockers import dblocker
from contest.plugins.targetlockers.dblocker import DBLocker
from contest.storage.schema import target_locks, target_waits
from contest.testing.databases import kill_connection
from contest.testing.lockers import FakeClock

N = 2000
MANY = [f"dut-{i:05}" for i in range(N)]


def _connection_id(conn: Connection) -> int:
    """The server's ID of the connection: backend PID (psycopg) or thread ID (aiomysql)."""
    driver: Any = conn.connection.dbapi_connection.driver_connection  # type: ignore[union-attr]
    if hasattr(driver, "info"):
        return int(driver.info.backend_pid)
    return int(driver.thread_id())


class Killer:
    """Kills the connection running the locker's transaction before its ``at``-th statement on
    the locker's tables (or before its COMMIT, ``at=0``), once."""

    def __init__(self, url: str, locker: DBLocker, at: int) -> None:
        self.url = url
        self.at = at
        self.count = 0
        self.kills = 0
        self.armed = False
        sync_engine = locker.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", self._before_statement)
        event.listen(sync_engine, "commit", self._before_commit)

    def arm(self) -> None:
        self.count = 0
        self.armed = True

    def _kill(self, conn: Connection) -> None:
        self.armed = False
        self.kills += 1
        kill_connection(self.url, _connection_id(conn))

    def _before_statement(self, conn: Connection, *args: Any) -> None:
        statement = str(args[1])
        if not self.armed or self.at == 0 or "target_" not in statement:
            return
        self.count += 1
        if self.count == self.at:
            self._kill(conn)

    def _before_commit(self, conn: Connection) -> None:
        if self.armed and self.at == 0:
            self._kill(conn)


@pytest.fixture(params=["mariadb", "postgresql"])
async def server_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
async def locker(server_url: str) -> AsyncIterator[DBLocker]:
    made = dblocker.new(url=server_url, clock=FakeClock(start=1000.0), retry_for=20)
    await made.create_table()
    await made.reset_all_locks()
    yield made
    await made.close()


async def _locks(locker: DBLocker) -> dict[str, tuple[int, float]]:
    c = target_locks.c
    async with locker.engine.connect() as conn:
        rows = (await conn.execute(select(c.target_id, c.job_id, c.expires_at))).all()
    return {r[0]: (int(r[1]), float(r[2])) for r in rows}


async def _waits(locker: DBLocker) -> dict[tuple[str, int], int]:
    w = target_waits.c
    async with locker.engine.connect() as conn:
        rows = (await conn.execute(select(w.target_id, w.job_id, w.ticket))).all()
    return {(r[0], int(r[1])): int(r[2]) for r in rows}


# 2,000 targets in batches of 200: statements 1-10 read the leases, 11-20 insert them; the
# line's calls first read the ticket row and the job's own places.
@pytest.mark.parametrize("at", [5, 15, 0], ids=["reading", "writing", "commit"])
async def test_lock_survives_a_killed_connection(
    locker: DBLocker, server_url: str, at: int
) -> None:
    killer = Killer(server_url, locker, at)
    killer.arm()
    await asyncio.wait_for(locker.lock(1, 60, MANY), 60)
    assert killer.kills == locker.reconnects == 1
    assert await _locks(locker) == dict.fromkeys(MANY, (1, 1060.0))

    killer.arm()
    await asyncio.wait_for(locker.refresh_locks(1, 120, MANY), 60)
    assert killer.kills == locker.reconnects == 2
    assert await _locks(locker) == dict.fromkeys(MANY, (1, 1120.0))

    killer.arm()
    await asyncio.wait_for(locker.unlock(1, MANY), 60)
    assert killer.kills == locker.reconnects == 3
    assert await _locks(locker) == {}

    killer.arm()
    got = await asyncio.wait_for(locker.try_lock(2, 60, MANY, 1500), 60)
    assert killer.kills == locker.reconnects == 4
    assert got == MANY[:1500]
    assert await _locks(locker) == dict.fromkeys(MANY[:1500], (2, 1060.0))


@pytest.mark.parametrize("at", [3, 16, 28, 0], ids=["leases", "line", "writing", "commit"])
async def test_lock_queued_survives_a_killed_connection(
    locker: DBLocker, server_url: str, at: int
) -> None:
    # a line that is not empty: job 8 holds x1, job 9 waits for it
    await locker.lock(8, 60, ["x1"])
    assert not (await locker.lock_queued(9, 60, ["x1"])).granted
    killer = Killer(server_url, locker, at)

    killer.arm()
    got = await asyncio.wait_for(locker.lock_queued(1, 60, MANY), 60)
    assert killer.kills == locker.reconnects == 1
    assert got.granted and got.acquired == MANY
    locks = await _locks(locker)
    assert locks == {**dict.fromkeys(MANY, (1, 1060.0)), "x1": (8, 1060.0)}

    killer.arm()  # job 2 waits for all 2,000: its places are written whole or not at all
    got = await asyncio.wait_for(locker.lock_queued(2, 60, MANY), 60)
    assert killer.kills == locker.reconnects == 2
    assert not got.granted and got.blockers == dict.fromkeys(MANY, 1)
    waits = await _waits(locker)
    tickets = {ticket for (_, job), ticket in waits.items() if job == 2}
    assert sorted(t for t, job in waits if job == 2) == MANY and len(tickets) == 1
    assert waits[("x1", 9)] < tickets.pop()  # job 9 came first

    await locker.unlock(1, MANY)
    killer.arm()
    got = await asyncio.wait_for(locker.lock_queued(2, 60, MANY), 60)
    assert killer.kills == locker.reconnects == 3
    assert got.granted and got.acquired == MANY
    assert [k for k in await _waits(locker)] == [("x1", 9)]
    assert await _locks(locker) == {**dict.fromkeys(MANY, (2, 1060.0)), "x1": (8, 1060.0)}


async def test_gives_up_after_retry_for(server_url: str) -> None:
    """A connection that keeps dying fails the call with LockerUnavailable, within bounds."""
    from contest.locking import LockerUnavailable

    locker = dblocker.new(url=server_url, retry_for=0.5)
    await locker.create_table()
    killer = Killer(server_url, locker, 2)

    def rearm(*_: Any) -> None:
        killer.count = 0
        killer.armed = True

    event.listen(locker.engine.sync_engine, "engine_connect", rearm)
    try:
        killer.arm()
        with pytest.raises(LockerUnavailable, match="connection kept failing"):
            await asyncio.wait_for(locker.lock(1, 60, MANY[:10]), 30)
        assert killer.kills >= 2
    finally:
        await locker.close()
