"""The API's reads in worker threads (``open_storage(read_threads=...)``, a server's storage):
the same answers as the AsyncEngine's, every committed write seen, outages ridden out or
reported as the other reads are."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from contest.events import FrameworkEvent, FrameworkEventQuery, TestEvent, TestEventHeader
from contest.storage import (
    JobRequest,
    JobState,
    Report,
    Storage,
    StorageUnavailable,
    open_storage,
)
from contest.storage.reader import ReadWaited, run_whole
from contest.target import Target
from contest.testing.databases import TcpProxy, open_empty_storage


def request(name: str, tags: tuple[str, ...] = ()) -> JobRequest:
    return JobRequest(name, "alice", "server-1", json.dumps({"JobName": name}), "{}", tags)


@pytest.fixture
async def threaded(db_url: str) -> AsyncIterator[Storage]:
    s = await open_empty_storage(db_url, read_threads=2)
    yield s
    await s.close()


async def test_the_same_answers_as_the_engine(threaded: Storage, db_url: str) -> None:
    ids = [
        await threaded.store_job(request(f"j{i}", ("even",) if i % 2 == 0 else ("odd",)))
        for i in range(4)
    ]
    await threaded.write_framework_event(
        FrameworkEvent(ids[1], JobState.STARTED.event_name, {"x": 1}, 5.0)
    )
    await threaded.write_framework_event(
        FrameworkEvent(ids[1], JobState.COMPLETED.event_name, None, 6.5)
    )
    await threaded.store_report(Report(ids[1], 1, "noop", True, {"a": [1, 2]}, 7.0))
    await threaded.store_report(Report(ids[1], 0, "final", False, "text", 8.0))
    await threaded.store_run_status(ids[1], 1, b"\x00saved status\xff" * 1000)
    for i, name in enumerate(("TargetIn", "TargetOut", "TargetIn")):
        await threaded.write_test_event(
            TestEvent(
                TestEventHeader(ids[1], 1, "t", "s1"), Target(f"T{i}"), name, {"n": i}, 9.0 + i
            )
        )
    engine = await open_storage(db_url, migrate_schema=False)  # reads on the AsyncEngine
    query = FrameworkEventQuery(job_id=ids[1])
    for read in (
        lambda s: s.get_job(ids[1]),
        lambda s: s.get_job(ids[-1] + 100),
        lambda s: s.list_jobs(),
        lambda s: s.list_jobs(states=[JobState.COMPLETED]),
        lambda s: s.list_jobs(tags=["even"], order="desc", limit=1),
        lambda s: s.framework_events(query),
        lambda s: s.job_report(ids[1]),
        lambda s: s.stored_run_statuses(ids[1]),
        lambda s: s.run_rows_after(ids[1], 1, 0, 100),
        lambda s: s.run_rows_after(ids[1], 1, 0, 2),
    ):
        assert await read(threaded) == await read(engine)
    await engine.close()
    rows = await threaded.run_rows_after(ids[1], 1, 0, 100)
    assert [(r[5], r[7], r[-1] > 0) for r in rows] == [
        ("T0", "TargetIn", True),
        ("T1", "TargetOut", True),
        ("T2", "TargetIn", True),
    ]
    assert await threaded.run_rows_after(ids[1], 1, rows[0][-1], 100) == rows[1:]
    got = await threaded.get_job(ids[1])
    assert got is not None and got.state is JobState.COMPLETED and got.state_time == 6.5
    assert await threaded.list_jobs(states=[JobState.COMPLETED]) == [ids[1]]


async def test_the_threads_connect_before_the_first_read(threaded: Storage) -> None:
    """A server's first status answers do not wait for new connections: the reader's threads
    each make theirs as the storage opens (ThreadReader.warm)."""
    reader = threaded._reader
    assert reader is not None
    pool = reader.engine.pool
    for _ in range(500):
        if pool.checkedin() == 2:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.01)
    assert pool.checkedin() == 2  # type: ignore[attr-defined]


async def test_a_state_written_is_listed_at_once(threaded: Storage) -> None:
    """A list after a state change sees it (the reader's own connection reads the committed
    database, after this process's queued state events, as the engine's reads do)."""
    job_id = await threaded.store_job(request("j"))
    threaded.write_framework_event(FrameworkEvent(job_id, JobState.STARTED.event_name, None, 1.0))
    assert await threaded.list_jobs(states=[JobState.STARTED]) == [job_id]
    reads = [threaded.get_job(job_id) for _ in range(8)]  # more at once than threads
    assert all(r is not None and r.state is JobState.STARTED for r in await asyncio.gather(*reads))


def test_a_read_that_waits_is_refused() -> None:
    """A read function must only await its connection: run whole in a thread it cannot wait
    for the loop (it would run there half done)."""

    async def waits(conn: AsyncConnection) -> int:
        await asyncio.sleep(0)
        return 1

    with pytest.raises(ReadWaited):
        run_whole(waits, None)  # type: ignore[arg-type]


async def test_a_short_outage_is_ridden_out(server_db_url: str, proxy: TcpProxy) -> None:
    storage = await open_empty_storage(
        proxy.proxied_url(server_db_url), retry_for=10.0, read_threads=2
    )
    try:
        job_id = await storage.store_job(request("j"))
        proxy.cut()
        read = asyncio.create_task(storage.get_job(job_id))
        await asyncio.sleep(0.5)
        assert not read.done()  # waiting, not failing
        proxy.restore()
        got = await read
        assert got is not None and got.name == "j"
    finally:
        await storage.close()


async def test_a_long_outage_fails_with_a_clear_error(server_db_url: str, proxy: TcpProxy) -> None:
    storage = await open_empty_storage(
        proxy.proxied_url(server_db_url), retry_for=0.6, read_threads=2
    )
    try:
        await storage.store_job(request("j"))
        proxy.cut()
        with pytest.raises(StorageUnavailable, match=r"^listing jobs failed: database unre"):
            await storage.list_jobs()
        proxy.restore()
        assert len(await storage.list_jobs()) == 1
    finally:
        await storage.close()
