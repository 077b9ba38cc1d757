"""Connection loss: retried transparently within the budget, a clear error past it, and a
retried write never lost or doubled (not even when the answer to COMMIT is what got lost)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from contest.events import FrameworkEvent, FrameworkEventQuery
from contest.events import TestEvent as TEvent
from contest.events import TestEventHeader as Header
from contest.events import TestEventQuery as TQuery
from contest.storage import JobRequest, JobState, Storage, StorageUnavailable, open_storage, retry
from contest.storage.retry import is_contention, is_transient
from contest.testing.databases import TcpProxy, kill_connections, open_empty_storage

H = Header(job_id=1, run_id=1, test_name="Test", step_label="step")


async def emit_many(storage: Storage, tasks: int, per_task: int, prefix: str) -> None:
    async def emitter(t: int) -> None:
        for k in range(per_task):
            name = f"{prefix}T{t:03d}K{k:03d}".replace("0", "A").replace("1", "B")
            name = "".join(c if c.isalpha() else chr(ord("C") + int(c)) for c in name)
            await storage.write_test_event(TEvent(H, None, name[:32]))

    await asyncio.gather(*(emitter(t) for t in range(tasks)))


async def assert_exactly_once(storage: Storage, expected: int) -> None:
    got = await storage.test_events(TQuery())
    assert len(got) == expected
    assert len({e.name for e in got}) == expected  # nothing doubled


async def test_killed_connections_are_replaced(server_db_url: str) -> None:
    storage = await open_empty_storage(server_db_url)
    try:
        job_id = await storage.store_job(JobRequest("j", "r", "s", "{}"))
        await emit_many(storage, 10, 10, "P")
        assert await asyncio.to_thread(kill_connections, server_db_url) >= 1
        # the writer's and the pool's connections are all dead now
        await emit_many(storage, 10, 10, "Q")
        await storage.write_framework_event(FrameworkEvent(job_id, "JobStateStarted"))
        assert await storage.list_jobs(states=[JobState.STARTED]) == [job_id]
        await assert_exactly_once(storage, 200)
    finally:
        await storage.close()


async def test_kills_during_a_busy_stream(server_db_url: str) -> None:
    storage = await open_empty_storage(server_db_url)
    stop = asyncio.Event()

    async def killer() -> int:
        kills = 0
        for _ in range(5):  # up to five cuts, 0.05 s apart, while the stream runs
            await asyncio.sleep(0.05)
            if stop.is_set():
                break
            kills += await asyncio.to_thread(kill_connections, server_db_url)
        return kills

    try:
        await emit_many(storage, 100, 10, "P")
        # a cut between two batches for sure, then more while the stream runs
        assert await asyncio.to_thread(kill_connections, server_db_url) >= 1
        killing = asyncio.create_task(killer())
        await emit_many(storage, 100, 40, "R")
        stop.set()
        await killing
        assert storage.transactor.retries >= 1
        await assert_exactly_once(storage, 5000)
    finally:
        stop.set()
        await storage.close()


async def test_short_outage_is_ridden_out(server_db_url: str, proxy: TcpProxy) -> None:
    storage = await open_empty_storage(proxy.proxied_url(server_db_url), retry_for=10.0)
    try:
        await emit_many(storage, 5, 5, "S")
        proxy.cut()
        writing = asyncio.create_task(emit_many(storage, 5, 5, "U"))
        job = asyncio.create_task(storage.store_job(JobRequest("j", "r", "s", "{}")))
        await asyncio.sleep(0.5)
        assert not writing.done() and not job.done()  # waiting, not failing
        proxy.restore()
        await writing
        assert await storage.get_job(await job) is not None
        await assert_exactly_once(storage, 50)
    finally:
        await storage.close()


async def test_long_outage_fails_with_a_clear_error(server_db_url: str, proxy: TcpProxy) -> None:
    storage = await open_empty_storage(proxy.proxied_url(server_db_url), retry_for=0.6)
    try:
        await emit_many(storage, 3, 3, "V")
        proxy.cut()
        start = time.monotonic()
        acks = [storage.write_test_event(TEvent(H, None, f"Lost{chr(65 + i)}")) for i in range(5)]
        results = await asyncio.gather(*acks, return_exceptions=True)
        assert 0.5 <= time.monotonic() - start < 5
        assert all(isinstance(r, StorageUnavailable) for r in results), results
        msg = str(results[0])
        assert msg.startswith("writing 5 events failed: database unreachable for ")
        assert "(retry limit 0.6 s)" in msg
        # the outage has outlasted the budget: the next call fails at its first error
        start = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await storage.store_job(JobRequest("j", "r", "s", "{}"))
        assert time.monotonic() - start < 0.5
        proxy.restore()
        await emit_many(storage, 3, 3, "W")  # back to normal
        await assert_exactly_once(storage, 18)
    finally:
        await storage.close()


def _lost_answer(op: str) -> sa_exc.OperationalError:
    return sa_exc.OperationalError(op, {}, ConnectionError("lost"), connection_invalidated=True)


async def test_commit_whose_answer_is_lost_is_not_repeated(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = await open_empty_storage(db_url)
    real_commit = AsyncConnection.commit
    failures = {"n": 0}

    async def commit_then_lose_answer(self: AsyncConnection) -> None:
        await real_commit(self)
        if failures["n"] < 3:
            failures["n"] += 1
            await self.invalidate()
            raise _lost_answer("COMMIT")

    real_trip = retry._one_trip

    def trip_then_lose_answer(db: Any, *args: Any) -> Any:
        # SQLite's event batches commit inside one trip to the driver's thread
        out = real_trip(db, *args)
        if failures["n"] < 3:
            failures["n"] += 1
            raise _lost_answer("COMMIT")
        return out

    try:
        monkeypatch.setattr(AsyncConnection, "commit", commit_then_lose_answer)
        monkeypatch.setattr(retry, "_one_trip", trip_then_lose_answer)
        await emit_many(storage, 10, 3, "X")
        job_id = await storage.store_job(JobRequest("j", "r", "s", "{}"))
        await storage.write_framework_event(FrameworkEvent(job_id, "JobStateStarted"))
        monkeypatch.undo()
        assert failures["n"] == 3
        await assert_exactly_once(storage, 30)
        assert await storage.list_jobs() == [job_id]
        assert len(await storage.framework_events(FrameworkEventQuery())) == 1
    finally:
        monkeypatch.undo()
        await storage.close()


async def test_failure_before_commit_is_retried(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = await open_empty_storage(db_url)
    failures = {"n": 0}
    try:
        # every backend's event writer talks to its driver directly (COPY, aiomysql's and
        # aiosqlite's own calls: SQLite's BEGIN IMMEDIATE, inserts and commit marker)
        monkeypatch.setattr(AsyncConnection, "get_raw_connection", _fail_raw_once(failures))
        await emit_many(storage, 4, 4, "Y")
        monkeypatch.undo()
        assert failures["n"] == 1
        await assert_exactly_once(storage, 16)
    finally:
        monkeypatch.undo()
        await storage.close()


def _fail_raw_once(failures: dict[str, int]) -> Any:
    real = AsyncConnection.get_raw_connection

    async def get_raw(self: AsyncConnection) -> Any:
        if failures["n"] == 0:
            failures["n"] += 1
            await self.invalidate()
            raise _lost_answer("INSERT")
        return await real(self)

    return get_raw


async def test_unreachable_at_start(tmp_path: object) -> None:
    with pytest.raises(StorageUnavailable, match="database unreachable"):
        await open_storage("mysql://nobody@127.0.0.1:1/nothing", retry_for=0.3)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_lost_answer("x"), True),
        (sa_exc.OperationalError("x", {}, Exception(2013, "Lost connection")), True),
        (sa_exc.OperationalError("x", {}, Exception(1213, "Deadlock found")), True),
        (sa_exc.OperationalError("x", {}, Exception(1054, "Unknown column")), False),
        (sa_exc.IntegrityError("x", {}, Exception(1062, "Duplicate entry")), False),
        (sa_exc.OperationalError("x", {}, Exception("database is locked")), True),
        (ConnectionResetError(), True),
        (ValueError("no"), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "contention"),
    [
        (sa_exc.OperationalError("x", {}, Exception(1213, "Deadlock found")), True),
        (sa_exc.OperationalError("x", {}, Exception(1205, "Lock wait timeout")), True),
        (sa_exc.OperationalError("x", {}, Exception(2013, "Lost connection")), False),
        (sa_exc.OperationalError("x", {}, Exception(2006, "MySQL server has gone away")), False),
        (sa_exc.OperationalError("x", {}, _PgError("40P01")), True),
        (sa_exc.OperationalError("x", {}, _PgError("40001")), True),
        (sa_exc.OperationalError("x", {}, _PgError("57P01")), False),
        (sa_exc.OperationalError("x", {}, _PgError("08006")), False),
        (sa_exc.OperationalError("x", {}, Exception("database is locked")), True),
        (_lost_answer("x"), False),
        (ConnectionResetError(), False),
        (ValueError("no"), False),
    ],
)
def test_is_contention(error: BaseException, contention: bool) -> None:
    """Contention (retry at once, counted as a race) apart from a lost connection (an outage)."""
    assert is_contention(error) is contention
    if contention:
        assert is_transient(error)
