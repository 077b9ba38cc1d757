"""A job manager that lost a job's lease stops its copy of the job and writes nothing more for
it (issue 12, item 4), on SQLite, MariaDB and PostgreSQL with the DB locker fenced as the
server fences it: the lease taken by another server (the epoch raised in the lease row, as a
claim does) or lapsed. The end-to-end check with a frozen ``contest serve`` is
tests/e2e/test_e2e_fence.py."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update

from contest.events import TestEventQuery
from contest.job.manager import JobManager
from contest.plugins.targetlockers import dblocker
from contest.storage import JobState, Storage, open_storage
from contest.storage.schema import job_leases, target_locks

LEASE = 1.0
OTHER = "another-server"


def stepping_job(steps: int = 40, seconds: float = 0.1) -> str:
    """A job that writes events all the time: ``steps`` short sleeps on two targets."""
    return json.dumps(
        {
            "JobName": "fenced",
            "Runs": 1,
            "Tags": ["integration_testing"],
            "TestDescriptors": [
                {
                    "TargetManagerName": "TargetList",
                    "TargetManagerAcquireParameters": {"Targets": [{"ID": "f1"}, {"ID": "f2"}]},
                    "TargetManagerReleaseParameters": {},
                    "TestFetcherName": "literal",
                    "TestFetcherFetchParameters": {
                        "TestName": "fenced",
                        "Steps": [
                            {
                                "name": "sleep",
                                "label": f"s{i}",
                                "parameters": {"duration": [f"{seconds}s"]},
                            }
                            for i in range(steps)
                        ],
                    },
                }
            ],
            "Reporting": {"RunReporters": [{"Name": "noop"}]},
        }
    )


@pytest.fixture
async def env(db_url: str) -> AsyncIterator[tuple[Storage, dblocker.DBLocker, JobManager]]:
    store = await open_storage(db_url)
    await store.reset()
    locker = dblocker.new(engine=store.engine)
    await locker.reset_all_locks()
    store.free_target_locks_at_job_end()
    locker.fence_with(store.check_lease)  # as contest serve's make_locker does
    jm = JobManager(store, locker, job_lease=LEASE, shutdown_timeout=3.0)
    try:
        yield store, locker, jm
    finally:
        jm.cancel_all()
        await jm.wait_all(10.0)
        await jm.close()
        await locker.close()
        await store.close()


async def events_of(store: Storage, job_id: int) -> int:
    return len(await store.test_events(TestEventQuery(job_id=job_id)))


async def wait_events(store: Storage, job_id: int, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while await events_of(store, job_id) < n:
        assert time.monotonic() < deadline, f"job {job_id}: fewer than {n} events"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("how", ["taken", "lapsed"])
async def test_a_lost_lease_stops_the_copy_and_nothing_more_is_written(
    env: tuple[Storage, dblocker.DBLocker, JobManager], how: str
) -> None:
    store, _locker, jm = env
    # no sweep: a lapsed lease stays as it is (a sweep fails, or a claim loop resumes, the job)
    await jm.start(resume_jobs=False, sweep_zombies=False)
    job_id = await jm.submit(stepping_job(), "integration-test")
    await wait_events(store, job_id, 8)
    epoch = jm.jobs[job_id].epoch
    assert epoch == 1

    async def lose(conn) -> None:  # type: ignore[no-untyped-def]
        if how == "taken":  # another server's claim: owner and epoch change
            values = {"owner": OTHER, "epoch": job_leases.c.epoch + 1, "expires_at": 4e9}
        else:  # no heartbeat in time (the server was frozen): the lease is past its expiry;
            values = {"expires_at": 1.0}  # the heartbeat does not renew a lapsed lease
        await conn.execute(update(job_leases).where(job_leases.c.job_id == job_id).values(values))

    await store.run_write(lose, "losing the lease")
    lost_at = time.monotonic()
    while jm.running(job_id) or job_id in jm.jobs:
        assert time.monotonic() - lost_at < LEASE, "the copy did not stop within a lease"
        await asyncio.sleep(0.02)
    await store.flush()
    n = await events_of(store, job_id)
    # a lease: ten of its 0.1 s steps (a copy still running writes every step) and three
    # heartbeats (every lease/3)
    await asyncio.sleep(LEASE)
    assert await events_of(store, job_id) == n  # nothing more written for it
    assert store.lease_lost(job_id)
    # no final state, no closing TargetErr: the lease's new owner writes those
    assert (await store.get_job(job_id)).state is JobState.STARTED  # type: ignore[union-attr]

    async def rows(conn):  # type: ignore[no-untyped-def]
        locks = (await conn.execute(select(target_locks.c.target_id))).scalars().all()
        lease = (await conn.execute(select(job_leases).where(job_leases.c.job_id == job_id))).one()
        return sorted(locks), lease

    locks, lease = await store.run_read(rows, "reading")
    assert locks == ["f1", "f2"]  # the targets stay locked for the job (its new owner's)
    if how == "taken":
        assert (lease.owner, lease.epoch) == (OTHER, 2)
    else:
        assert (lease.owner, lease.epoch) == (jm.instance_id, 1)  # lapsed, never renewed


@pytest.mark.parametrize("single_server", [False, True])
async def test_draining_hands_the_jobs_over_unless_the_server_is_alone(
    env: tuple[Storage, dblocker.DBLocker, JobManager], single_server: bool
) -> None:
    """SIGUSR1 (``mark_draining``): on a database other servers may share, each running job
    pauses at its next checkpoint and lets its lease go (a paused job nobody owns, for another
    server's claim loop); on a single-server database (SQLite's file lock) it runs on."""
    store, _, jm = env
    jm.single_server = single_server
    await jm.start(resume_jobs=False, sweep_zombies=False)
    job_id = await jm.submit(stepping_job(steps=20, seconds=0.1), "integration-test")
    await wait_events(store, job_id, 6)
    jm.mark_draining()
    assert jm.draining
    assert await jm.wait_all(10.0)
    state = (await store.get_job(job_id)).state  # type: ignore[union-attr]
    if single_server:
        assert state is JobState.COMPLETED
        return
    assert state is JobState.PAUSED

    async def lease(conn):  # type: ignore[no-untyped-def]
        return (
            await conn.execute(
                select(job_leases.c.owner, job_leases.c.epoch, job_leases.c.expires_at).where(
                    job_leases.c.job_id == job_id
                )
            )
        ).one()

    row = await store.run_read(lease, "reading the lease")
    assert (row.owner, row.epoch) == (jm.instance_id, 1)
    assert row.expires_at <= time.time() + 0.5  # let go: claimable at once
    assert not store.lease_lost(job_id)
