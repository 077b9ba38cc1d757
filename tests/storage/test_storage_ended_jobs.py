"""A job's final state frees its targets: with the database locker on the storage's engine, the
transaction that stores a job's final state (completed, failed, cancelled, pause or cancellation
failed) deletes the job's rows of ``target_locks`` (``Storage.free_target_locks_at_job_end``;
the end-to-end check after ``kill -9`` is tests/e2e/test_e2e_dead_jobs.py)."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from contest.events import FrameworkEvent
from contest.plugins.targetlockers.dblocker import DBLocker
from contest.storage import JobRequest, JobState, Storage
from contest.storage.schema import target_locks, target_waits


def request(name: str) -> JobRequest:
    return JobRequest(
        name=name,
        requestor="alice",
        server_id="server-1",
        descriptor=json.dumps({"JobName": name}),
    )


async def lock_rows(storage: Storage) -> dict[str, int]:
    async def read(conn: AsyncConnection) -> dict[str, int]:
        rows = await conn.execute(select(target_locks.c.target_id, target_locks.c.job_id))
        return {str(t): int(j) for t, j in rows}

    return await storage.run_read(read, "reading target locks")


async def state(storage: Storage, job_id: int, st: JobState) -> None:
    await storage.write_framework_event(FrameworkEvent(job_id, st.event_name, None, 1.0))


ENDED = [
    JobState.COMPLETED,
    JobState.FAILED,
    JobState.CANCELLED,
    JobState.PAUSE_FAILED,
    JobState.CANCELLATION_FAILED,
]


@pytest.mark.parametrize("final", ENDED, ids=[s.event_name for s in ENDED])
async def test_a_final_state_deletes_the_jobs_locks(storage: Storage, final: JobState) -> None:
    storage.free_target_locks_at_job_end()
    locker = DBLocker(storage.engine)
    a = await storage.store_job(request("a"))
    b = await storage.store_job(request("b"))
    await locker.lock(a, 600, ["dut1", "dut2"])
    await locker.lock(b, 600, ["dut3"])
    for st in (JobState.STARTED, JobState.CANCELLING, JobState.PAUSED):
        await state(storage, a, st)  # not an end: a paused job keeps its targets to resume
        assert await lock_rows(storage) == {"dut1": a, "dut2": a, "dut3": b}
    await state(storage, a, final)
    assert await lock_rows(storage) == {"dut3": b}
    # the targets are free for the next job at once, not when the 600 s lease ends
    await locker.lock(b, 600, ["dut1", "dut2"])
    assert await lock_rows(storage) == {"dut1": b, "dut2": b, "dut3": b}


async def test_several_jobs_ending_in_one_batch(storage: Storage) -> None:
    """The writer stores queued events in one transaction: the last state of each job in it
    decides (a job that ended and is then shown paused again is not freed)."""
    storage.free_target_locks_at_job_end()
    locker = DBLocker(storage.engine)
    ids = [await storage.store_job(request(f"j{i}")) for i in range(4)]
    for i, job_id in enumerate(ids):
        await locker.lock(job_id, 600, [f"t{i}a", f"t{i}b"])
    acks = [
        storage.write_framework_event(FrameworkEvent(ids[0], "JobStateCompleted", None, 2.0)),
        storage.write_framework_event(FrameworkEvent(ids[1], "JobStateFailed", {"Err": "x"}, 2.0)),
        storage.write_framework_event(FrameworkEvent(ids[2], "JobStateCancelled", None, 2.0)),
        storage.write_framework_event(FrameworkEvent(ids[3], "JobStateFailed", None, 2.0)),
        storage.write_framework_event(FrameworkEvent(ids[3], "JobStatePaused", None, 3.0)),
        storage.write_framework_event(FrameworkEvent(ids[0], "RunStarted", None, 3.0)),
    ]
    await asyncio.gather(*(a for a in acks if a is not None))
    assert await lock_rows(storage) == {"t3a": ids[3], "t3b": ids[3]}


async def test_left_alone_unless_the_locker_is_this_database(storage: Storage) -> None:
    """Without ``free_target_locks_at_job_end`` (the in-memory locker, or a locker on another
    database) the table is not this storage's to clean."""
    locker = DBLocker(storage.engine)
    a = await storage.store_job(request("a"))
    await locker.lock(a, 600, ["dut1"])
    await state(storage, a, JobState.COMPLETED)
    assert await lock_rows(storage) == {"dut1": a}


async def test_a_final_state_gives_up_the_jobs_places_in_line(storage: Storage) -> None:
    """A job that ends while waiting for busy targets leaves the line in the same transaction:
    the job behind it is first at once, not when the dead job's place lapses."""
    storage.free_target_locks_at_job_end()
    locker = DBLocker(storage.engine)
    a, b, c = [await storage.store_job(request(n)) for n in ("a", "b", "c")]
    await locker.lock(a, 600, ["dut1"])
    assert not (await locker.lock_queued(b, 600, ["dut1", "dut2"], ttl=600)).granted
    assert not (await locker.lock_queued(c, 600, ["dut2"], ttl=600)).granted

    async def places(conn: AsyncConnection) -> set[tuple[str, int]]:
        rows = await conn.execute(select(target_waits.c.target_id, target_waits.c.job_id))
        return {(str(t), int(j)) for t, j in rows}

    assert await storage.run_read(places, "line") == {("dut1", b), ("dut2", b), ("dut2", c)}
    await state(storage, b, JobState.CANCELLED)
    assert await storage.run_read(places, "line") == {("dut2", c)}
    got = await locker.lock_queued(c, 600, ["dut2"])
    assert got.granted and got.acquired == ["dut2"]
