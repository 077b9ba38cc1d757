"""Lease fencing (issue 12, item 4): every event and state write of a fenced job commits only if,
in its own transaction, the job's lease row still names this server at the epoch it claimed
(``Storage.fence_job``); a stale write raises ``LeaseLost`` and stores nothing of that job,
while the other jobs of the same batch commit. The DB locker's writes of a job are fenced the
same way (``DBLocker.fence_with(storage.check_lease)``). On SQLite, MariaDB and PostgreSQL.

And the writer holding a batch through an outage longer than the retry budget
(``Storage.hold_outages``): its writers wait, the batch is written once when the database is
back (a proxy cuts the connection, so the test does not stop the shared server).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contest.events import FrameworkEvent, TestEvent, TestEventHeader
from contest.plugins.targetlockers.dblocker import DBLocker
from contest.storage import JobRequest, JobState, Storage, open_storage
from contest.storage.errors import LeaseLost, StorageUnavailable
from contest.storage.fleet import Instance, SqlFleet
from contest.storage.schema import job_leases, target_locks, test_events
from contest.target import Target
from contest.testing.databases import SessionDatabases, TcpProxy

ME, OTHER = "server-a", "server-b"
LEASE = 30.0


def request(name: str) -> JobRequest:
    return JobRequest(
        name=name, requestor="alice", server_id="s", descriptor=json.dumps({"JobName": name})
    )


def event(job_id: int, name: str = "Step") -> TestEvent:
    return TestEvent(TestEventHeader(job_id, 1, "t", "step", 0), Target("dut1"), name, None, 1.0)


async def count(storage: Storage, job_id: int) -> int:
    async def read(conn: AsyncConnection) -> int:
        stmt = select(func.count()).select_from(test_events).where(test_events.c.job_id == job_id)
        return int((await conn.execute(stmt)).scalar_one())

    return await storage.run_read(read, "counting")


async def fenced_jobs(storage: Storage, n: int = 2) -> tuple[SqlFleet, list[int]]:
    fleet = SqlFleet(storage)
    ids = []
    for i in range(n):
        job_id = await storage.store_job(request(f"j{i}"))
        epoch = await fleet.claim(job_id, ME, LEASE)
        assert epoch == 1
        storage.fence_job(job_id, ME, epoch)
        ids.append(job_id)
    return fleet, ids


async def test_a_write_with_a_stale_epoch_is_refused_and_the_rest_of_the_batch_commits(
    storage: Storage,
) -> None:
    fleet, (a, b) = await fenced_jobs(storage)
    lost: list[tuple[int, int]] = []
    storage.on_lease_lost(lambda job_id, epoch: lost.append((job_id, epoch)))
    await asyncio.gather(storage.write_test_event(event(a)), storage.write_test_event(event(b)))
    assert (await count(storage, a), await count(storage, b)) == (1, 1)

    # another server takes job a (its claim, as a takeover does: the epoch grows)
    await fleet.tx.write(
        lambda c: c.execute(
            update(job_leases)
            .where(job_leases.c.job_id == a)
            .values(owner=OTHER, epoch=job_leases.c.epoch + 1)
        ),
        "taking the lease",
    )
    acks = [storage.write_test_event(event(a)), storage.write_test_event(event(b))]
    fw = storage.write_framework_event(FrameworkEvent(a, JobState.FAILED.event_name, None, 2.0))
    results = await asyncio.gather(*acks, fw, return_exceptions=True)
    assert isinstance(results[0], LeaseLost) and results[0].job_id == a
    assert results[0].epoch == 1 and OTHER in str(results[0])
    assert results[1] is None  # job b's event, in the same batch, committed
    assert isinstance(results[2], LeaseLost)  # a state write is fenced as the events are
    assert (await count(storage, a), await count(storage, b)) == (1, 2)
    assert (await storage.get_job(a)).state is not JobState.FAILED  # type: ignore[union-attr]
    await asyncio.sleep(0)
    assert lost == [(a, 1)]
    # from now on refused at once, without asking the database
    with pytest.raises(LeaseLost):
        storage.write_test_event(event(a))
    assert storage.lease_lost(a)
    # claimed again by this server (a later takeover): fenced by the new epoch, writes pass
    epoch = await fleet.claim(a, ME, LEASE, take_from=OTHER)
    assert epoch == 3
    storage.fence_job(a, ME, epoch)
    await storage.write_test_event(event(a))
    assert await count(storage, a) == 2


async def test_a_lapsed_or_gone_lease_refuses_writes(storage: Storage) -> None:
    fleet, (a, b) = await fenced_jobs(storage)
    await fleet.tx.write(
        lambda c: c.execute(
            update(job_leases).where(job_leases.c.job_id == a).values(expires_at=1.0)
        ),
        "letting the lease lapse",
    )
    with pytest.raises(LeaseLost, match="lapsed"):
        await storage.write_test_event(event(a))
    # a final state stored elsewhere deleted the lease (zombie failed by another server)
    other = await open_storage(storage.url)
    other.forget_job_leases_at_job_end()
    try:
        await other.write_framework_event(FrameworkEvent(b, JobState.FAILED.event_name, None, 2))
    finally:
        await other.close()
    with pytest.raises(LeaseLost, match="no lease"):
        await storage.write_test_event(event(b))
    assert (await count(storage, a), await count(storage, b)) == (0, 0)


async def test_unfenced_jobs_are_not_checked(storage: Storage) -> None:
    job_id = await storage.store_job(request("plain"))  # no lease at all (contest events, tests)
    await storage.write_test_event(event(job_id))
    assert await count(storage, job_id) == 1


async def test_the_share_lock_holds_a_claim_until_the_fenced_write_commits(
    server_db_url: str,
) -> None:
    """Atomic with the write: while a fenced transaction that has checked the lease is open,
    another server's claim of the lease waits for its commit; the next write is refused."""
    storage = await open_storage(server_db_url)
    try:
        await storage.reset()
        _fleet, (a,) = await fenced_jobs(storage, 1)
        checked = asyncio.Event()
        release = asyncio.Event()

        async def slow_write(conn: AsyncConnection) -> None:
            await storage.check_lease(conn, a)
            checked.set()
            await release.wait()

        writing = asyncio.ensure_future(storage.run_write(slow_write, "a fenced write"))
        await asyncio.wait_for(checked.wait(), 10)
        other = SqlFleet(storage)
        claim = asyncio.ensure_future(other.tx.write(
            lambda c: c.execute(
                update(job_leases)
                .where(job_leases.c.job_id == a)
                .values(owner=OTHER, epoch=job_leases.c.epoch + 1)
            ),
            "claiming",
        ))  # fmt: skip
        await asyncio.sleep(0.5)
        assert not claim.done()  # waits on the share lock
        release.set()
        await asyncio.wait_for(writing, 10)
        await asyncio.wait_for(claim, 10)
        with pytest.raises(LeaseLost):
            await storage.write_test_event(event(a))
    finally:
        await storage.close()


async def test_the_db_lockers_writes_of_a_job_are_fenced(storage: Storage) -> None:
    fleet, (a,) = await fenced_jobs(storage, 1)
    locker = DBLocker(storage.engine)
    locker.fence_with(storage.check_lease)
    await locker.lock(a, 60, ["dut1", "dut2"])
    await locker.refresh_locks(a, 60, ["dut1", "dut2"])
    await fleet.tx.write(
        lambda c: c.execute(
            update(job_leases)
            .where(job_leases.c.job_id == a)
            .values(owner=OTHER, epoch=job_leases.c.epoch + 1)
        ),
        "taking the lease",
    )
    with pytest.raises(LeaseLost):
        await locker.refresh_locks(a, 60, ["dut1", "dut2"])
    with pytest.raises(LeaseLost):
        await locker.unlock(a, ["dut1", "dut2"])  # the new owner's locks stay

    async def rows(conn: AsyncConnection) -> list[int]:
        return [int(j) for (j,) in await conn.execute(select(target_locks.c.job_id))]

    assert await storage.run_read(rows, "locks") == [a, a]
    assert storage.lease_lost(a)


async def test_a_held_batch_is_written_once_after_an_outage_longer_than_the_retry(
    server_db_url: str,
) -> None:
    proxy = TcpProxy.for_url(server_db_url)
    await proxy.start()
    storage = await open_storage(proxy.proxied_url(server_db_url), retry_for=0.5)
    try:
        await storage.reset()
        _, (a,) = await fenced_jobs(storage, 1)
        storage.hold_outages(max_items=50, max_backoff=0.5)
        await storage.write_test_event(event(a, "Before"))
        proxy.cut()
        acks = [storage.write_test_event(event(a, f"During{i}")) for i in range(20)]
        waiting = asyncio.ensure_future(asyncio.gather(*acks))
        await asyncio.sleep(2.0)  # four retry budgets
        assert not waiting.done()  # held, not failed
        assert storage.outage_since is not None
        # bounded: past 50 queued items a write is refused at once, nothing queued is dropped
        more = []
        with pytest.raises(StorageUnavailable, match="not taking more"):
            for i in range(100):
                more.append(storage.write_test_event(event(a, f"More{i}")))
        assert len(more) == 30
        proxy.restore()
        await asyncio.wait_for(waiting, 20)
        await asyncio.wait_for(asyncio.gather(*more), 20)
        assert storage.outage_since is None
        assert await count(storage, a) == 1 + 20 + 30  # each exactly once
    finally:
        await storage.close()
        await proxy.close()


async def test_a_dead_servers_sessions_are_ended_so_that_its_locks_do_not_hold_a_claim(
    session_databases: SessionDatabases,
) -> None:
    """PostgreSQL: a server frozen inside a fenced write keeps its share lock on the lease row
    for as long as its session lives; the idle-transaction timeout does not end a session
    frozen halfway through sending a statement (here: a session with no such timeout, idle in
    its transaction). Once its heartbeat has lapsed, the next server's pruning of dead servers
    ends its sessions (named after its instance), and a claim of the lease goes through."""
    url = session_databases.url("postgresql")
    frozen = await open_storage(url, session_name="frozen-a")
    live = await open_storage(url, session_name="live-b", retry_for=0.5)
    try:
        await frozen.reset()
        fleet = SqlFleet(frozen)
        await fleet.register(Instance("frozen-a", "s"), 1.0, wait=0.0)
        job_id = await frozen.store_job(request("j"))
        epoch = await fleet.claim(job_id, "frozen-a", 1.0)
        assert epoch is not None
        frozen.fence_job(job_id, "frozen-a", epoch)
        checked = asyncio.Event()

        async def frozen_write(conn: AsyncConnection) -> None:
            await frozen.check_lease(conn, job_id)  # the share lock, held from here
            checked.set()
            await asyncio.Event().wait()  # frozen: never commits

        writing = asyncio.ensure_future(frozen.run_write(frozen_write, "a frozen write"))
        async with asyncio.timeout(10):
            await checked.wait()
        await asyncio.sleep(1.2)  # its heartbeat (never stamped again) lapses

        async def claim(conn: AsyncConnection) -> int:
            await conn.execute(text("SET LOCAL lock_timeout = '1s'"))
            done = await conn.execute(
                update(job_leases)
                .where(job_leases.c.job_id == job_id)
                .values(owner="live-b", epoch=job_leases.c.epoch + 1)
            )
            return int(done.rowcount)

        other = SqlFleet(live)
        with pytest.raises(StorageUnavailable, match="lock timeout"):  # held: the share lock
            await live.run_write(claim, "claiming")
        assert await other.prune_servers("live-b", single_server=False) == 1
        assert await live.run_write(claim, "claiming") == 1
        writing.cancel()
        await asyncio.gather(writing, return_exceptions=True)
    finally:
        await live.close()
        await frozen.close()
