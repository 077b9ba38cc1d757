"""The group-commit writer: shared commits, synchronous size checks, one bad event fails alone."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from contest.events import FrameworkEvent, FrameworkEventQuery
from contest.events import TestEvent as TEvent
from contest.events import TestEventHeader as Header
from contest.events import TestEventQuery as TQuery
from contest.storage import (
    Limits,
    NotSerializable,
    ParameterTooLong,
    Storage,
    StorageClosed,
    open_storage,
)
from contest.storage.retry import RetryPolicy, Transactor
from contest.storage.writer import GroupCommitWriter
from contest.target import Target
from contest.testing.databases import open_empty_storage

H = Header(job_id=1, run_id=1, test_name="Test", step_label="step")


async def test_concurrent_emitters_share_commits(storage: Storage) -> None:
    n_tasks, per_task = 500, 4
    commits0 = storage.transactor.commits

    async def emitter(i: int) -> None:
        target = Target(f"host{i}")
        for k in range(per_task):
            await storage.write_test_event(TEvent(H, target, "TargetIn", {"k": k}))

    await asyncio.gather(*(emitter(i) for i in range(n_tasks)))
    commits = storage.transactor.commits - commits0
    events = n_tasks * per_task
    assert len(await storage.test_events(TQuery(job_id=1))) == events
    # every emitter waits for its commit before its next emit: ~per_task commits in all
    assert commits <= 4 * per_task < events / 20


async def test_emit_returns_only_after_commit(storage: Storage) -> None:
    ack = storage.write_test_event(TEvent(H, None, "One"))
    assert not ack.done()
    await ack
    assert ack.done()
    async with storage.engine.connect() as conn:  # another connection sees it
        from sqlalchemy import func, select

        from contest.storage.schema import test_events

        n = (await conn.execute(select(func.count()).select_from(test_events))).scalar_one()
    assert n == 1


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (TEvent(Header(1, 1, "T" * 65, "s"), None, "E"), "Test name is too long: 65 > 64"),
        (TEvent(Header(1, 1, "T", "s" * 33), None, "E"), "Test step label is too long: 33 > 32"),
        (TEvent(H, None, "E" * 33), "Event name is too long: 33 > 32"),
        (TEvent(H, Target("t" * 513), "E"), "Target ID is too long: 513 > 512"),
        (TEvent(H, None, "E", "\u00e9" * 20), None),  # fine: 20 chars, 41 bytes of JSON
        (TEvent(H, None, "E", "x" * 1000), "Event payload is too long: 1002 > 1000"),
        (TEvent(H, Target("t", manager_state="y" * 1000), "E"), "Target is too long: "),
    ],
)
async def test_size_limits_raise_at_write_time(
    db_url: str, event: TEvent, message: str | None
) -> None:
    storage = await open_empty_storage(db_url)
    storage.limits = Limits(event_payload=1000, target=500)
    storage._codec.limits = storage.limits
    try:
        good = [storage.write_test_event(TEvent(H, None, "Good")) for _ in range(3)]
        if message is None:
            await storage.write_test_event(event)
        else:
            with pytest.raises(ParameterTooLong) as exc:
                storage.write_test_event(event)  # synchronously: nothing was queued
            assert str(exc.value).startswith(message)
            assert exc.value.max_len in (64, 32, 512, 1000, 500)
        await asyncio.gather(*good)  # the batch the bad event would have joined is fine
        got = await storage.test_events(TQuery())
        assert len(got) == 3 + (message is None)
    finally:
        await storage.close()


async def test_framework_event_limits(storage: Storage) -> None:
    with pytest.raises(ParameterTooLong, match="Event name is too long: 40 > 32"):
        storage.write_framework_event(FrameworkEvent(1, "J" * 40))
    with pytest.raises(NotSerializable, match="Event payload is not a JSON value"):
        storage.write_framework_event(FrameworkEvent(1, "Bad", {"x": object()}))
    with pytest.raises(NotSerializable):
        storage.write_test_event(TEvent(H, None, "Bad", {1, 2}))
    assert await storage.framework_events(FrameworkEventQuery()) == []


async def test_close_writes_what_is_queued_then_refuses(db_url: str) -> None:
    storage = await open_empty_storage(db_url)
    acks = [storage.write_test_event(TEvent(H, None, "Queued")) for _ in range(50)]
    await storage.close()
    assert all(a.done() for a in acks)
    await asyncio.gather(*acks)
    with pytest.raises(StorageClosed):
        storage.write_test_event(TEvent(H, None, "Late"))
    again = await open_storage(db_url, migrate_schema=False)
    try:
        assert len(await again.test_events(TQuery(event_names=["Queued"]))) == 50
    finally:
        await again.close()


async def test_a_batch_the_database_refuses_fails_only_the_culprit(db_url: str) -> None:
    """Rows that pass the checks but fail in the database are retried one per transaction."""
    storage = await open_empty_storage(db_url)
    tx = Transactor(storage.engine, RetryPolicy(retry_for=1), write_lock=asyncio.Lock())
    written: list[int] = []

    async def flush(conn: AsyncConnection, items: list[int]) -> None:
        if 13 in items:
            raise ValueError(f"refused row {13}")
        written.extend(items)

    writer: GroupCommitWriter[int] = GroupCommitWriter(flush, tx)
    try:
        acks = [writer.submit(i) for i in range(20)]
        results = await asyncio.gather(*acks, return_exceptions=True)
        assert [i for i, r in enumerate(results) if r is not None] == [13]
        assert isinstance(results[13], ValueError)
        assert written == [i for i in range(20) if i != 13]
        ok = writer.submit(99)
        await ok
        assert written[-1] == 99
    finally:
        await writer.close()
        await storage.close()


async def test_batches_are_capped(db_url: str) -> None:
    storage = await open_empty_storage(db_url, max_batch=100)
    try:
        commits0 = storage.transactor.commits
        await asyncio.gather(*(storage.write_test_event(TEvent(H, None, "E")) for _ in range(450)))
        assert storage.transactor.commits - commits0 == 5
        got = await storage.test_events(TQuery())
        assert len(got) == 450
    finally:
        await storage.close()


async def test_cancelled_writer_fails_its_waiters_and_restarts(db_url: str) -> None:
    storage = await open_empty_storage(db_url)
    tx = Transactor(storage.engine, RetryPolicy(retry_for=1), write_lock=asyncio.Lock())
    gate = asyncio.Event()
    written: list[int] = []

    async def flush(conn: AsyncConnection, items: list[int]) -> None:
        await gate.wait()
        written.extend(items)

    writer: GroupCommitWriter[int] = GroupCommitWriter(flush, tx)
    try:
        first = writer.submit(1)
        await asyncio.sleep(0.05)  # the batch is in flight, blocked on the gate
        second = writer.submit(2)
        assert writer._task is not None
        writer._task.cancel()
        for ack in (first, second):
            with pytest.raises(StorageClosed, match="storage writer stopped"):
                await ack
        gate.set()
        await writer.submit(3)  # a new task picks up
        assert written == [3]
    finally:
        gate.set()
        await writer.close()
        await storage.close()


async def test_cancelled_emitter_fails_alone(storage: Storage) -> None:
    """A task cancelled while awaiting its emit gets CancelledError; the other emitters of the
    batch get their commits, and the writer goes on (the batch's commit is shared: it must not
    be cancelled through one of its waiters)."""

    async def emit(i: int) -> int:
        await storage.write_test_event(TEvent(H, Target(f"t{i}"), "E", {"i": i}))
        return i

    tasks = [asyncio.ensure_future(emit(i)) for i in range(20)]
    await asyncio.sleep(0)  # every emit is queued, in one batch
    tasks[3].cancel()
    tasks[11].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r) for r in results if isinstance(r, BaseException)] == [
        asyncio.CancelledError,
        asyncio.CancelledError,
    ]
    assert [r for r in results if not isinstance(r, BaseException)] == [
        i for i in range(20) if i not in (3, 11)
    ]
    await storage.write_test_event(TEvent(H, None, "After"))  # the writer still works
    got = await storage.test_events(TQuery(job_id=1))
    assert len(got) == 21  # the cancelled emitters' events were committed with the batch


async def test_ack_awaited_late_or_twice(storage: Storage) -> None:
    ack = storage.write_test_event(TEvent(H, None, "One"))
    await storage.flush()
    assert ack.done()
    await ack
    await ack
