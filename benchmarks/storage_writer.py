"""Event writer throughput against a plain batched insert, on SQLite, MariaDB and PostgreSQL.

    python benchmarks/storage_writer.py --events 100000 --tasks 10000 [--db sqlite mariadb ...]

Per database (each in its own throw-away database, see ``contest.testing.databases``):

(a) the event writer alone: ``--events`` emits from ``--tasks`` concurrent tasks, each task
    awaiting each of its emits (``await storage.write_test_event(...)``), so every emit returns
    only once its event is committed, through the group-commit path;
(b) the floor: the same rows, already encoded, inserted 1,000 rows a statement, one
    transaction per statement, with the same engine and driver. Two ways are timed, a
    driver-level multi-row ``INSERT ... VALUES (...) x 1000`` and SQLAlchemy Core's
    ``execute(insert(table), rows)`` with 1,000 rows, and the faster one is the floor.

(c) the writer again with the 8 jobs' writes fenced by their leases (``Storage.fence_job``,
    issue 12): each batch reads the batch's jobs' lease rows with a share lock in its
    transaction. Printed as (c)/(a), the cost of fencing; no bar of its own (it must keep
    (c)/(b) above (a)'s bar too).

Each is run ``--rounds`` times, interleaved, and the best of each counts (the figures swing
with other load on a shared machine). Prints rows/s for both and (a)/(b); exits 1 if a bar is
missed. Bars: 50% on MariaDB and PostgreSQL, 25% on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contest.events import TestEvent, TestEventHeader
from contest.storage import JobRequest, Storage, open_storage
from contest.storage.events import TEST_COLUMNS, EventCodec
from contest.storage.fleet import SqlFleet
from contest.storage.schema import test_events
from contest.target import Target
from contest.testing.databases import (
    KINDS,
    Kind,
    server_available,
    temporary_database,
)

BARS = {"sqlite": 0.25, "mariadb": 0.50, "postgresql": 0.50}
CHUNK = 1000
EVENT_NAMES = ("TargetIn", "CmdStdout", "TargetOut")


def make_events(n: int, tasks: int) -> list[list[TestEvent]]:
    """Each task's events: a step header and a target per task, ConTest-like names/payloads."""
    per_task: list[list[TestEvent]] = []
    for t in range(tasks):
        header = TestEventHeader(
            job_id=1 + t % 8, run_id=1, test_name="Test 1", step_label=f"step{t % 16}"
        )
        target = Target(
            f"host{t:05d}",
            fqdn=f"host{t:05d}.example.com",
            primary_ipv4=f"10.{t // 65536 % 256}.{t // 256 % 256}.{t % 256}",
        )
        count = n // tasks + (1 if t < n % tasks else 0)
        per_task.append(
            [
                TestEvent(
                    header,
                    target,
                    EVENT_NAMES[k % 3],
                    None if k % 3 == 0 else {"Msg": f"line {k} of the step output", "N": k},
                )
                for k in range(count)
            ]
        )
    return per_task


async def count_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(test_events))).scalar_one())


async def clear(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(test_events))


async def bench_writer(storage: Storage, per_task: list[list[TestEvent]]) -> tuple[float, int]:
    """(a): events/s through write_test_event with one awaiting task per emitter."""

    async def emitter(evs: list[TestEvent]) -> None:
        for e in evs:
            e.emit_time = time.time()
            await storage.write_test_event(e)

    commits0 = storage.transactor.commits
    gc.collect()
    start = time.perf_counter()
    await asyncio.gather(*(emitter(evs) for evs in per_task))
    elapsed = time.perf_counter() - start
    return sum(map(len, per_task)) / elapsed, storage.transactor.commits - commits0


async def bench_floor_driver(engine: AsyncEngine, rows: list[tuple[Any, ...]]) -> float:
    """(b) variant 1: driver-level multi-row INSERT, 1,000 rows a statement."""
    dialect = engine.dialect
    q = dialect.identifier_preparer.quote
    ph = "?" if dialect.paramstyle == "qmark" else "%s"
    one = "(" + ", ".join([ph] * len(TEST_COLUMNS)) + ")"
    head = f"INSERT INTO {q('test_events')} ({', '.join(q(c) for c in TEST_COLUMNS)}) VALUES "
    full = head + ", ".join([one] * CHUNK)
    gc.collect()
    start = time.perf_counter()
    async with engine.connect() as conn:
        for i in range(0, len(rows), CHUNK):
            chunk = rows[i : i + CHUNK]
            sql = full if len(chunk) == CHUNK else head + ", ".join([one] * len(chunk))
            await conn.exec_driver_sql(sql, tuple(v for r in chunk for v in r))
            await conn.commit()
    return len(rows) / (time.perf_counter() - start)


async def bench_floor_core(engine: AsyncEngine, rows: list[dict[str, Any]]) -> float:
    """(b) variant 2: SQLAlchemy Core executemany of 1,000 rows a statement."""
    stmt = insert(test_events)
    gc.collect()
    start = time.perf_counter()
    async with engine.connect() as conn:
        for i in range(0, len(rows), CHUNK):
            await conn.execute(stmt, rows[i : i + CHUNK])
            await conn.commit()
    return len(rows) / (time.perf_counter() - start)


async def fence_jobs(storage: Storage) -> list[int]:
    """The benchmark's 8 jobs stored and claimed by one instance (their lease rows)."""
    fleet = SqlFleet(storage)
    ids = []
    for i in range(8):
        job_id = await storage.store_job(
            JobRequest(name=f"bench{i}", requestor="bench", server_id="bench", descriptor="{}")
        )
        epoch = await fleet.claim(job_id, "bench-instance", 3600.0)
        assert epoch is not None
        ids.append(job_id)
    assert ids == list(range(1, 9)), ids  # the jobs make_events writes for
    return ids


async def run_one(kind: Kind, n: int, tasks: int, rounds: int) -> dict[str, Any]:
    """Best of ``rounds`` interleaved runs of each measurement (the machine may be shared)."""
    best = {"writer": 0.0, "fenced": 0.0, "floor_driver": 0.0, "floor_core": 0.0}
    commits = 0
    with temporary_database(kind) as url:
        storage = await open_storage(url)
        try:
            jobs = await fence_jobs(storage)
            per_task = make_events(n, tasks)
            codec = EventCodec(storage.limits)
            now = time.time()
            rows = []
            for evs in per_task:
                for e in evs:
                    e.emit_time = now
                    rows.append(codec.test_item(e))
            dict_rows = [dict(zip(TEST_COLUMNS, r, strict=True)) for r in rows]
            for _ in range(rounds):
                rate = await bench_floor_driver(storage.engine, rows)
                best["floor_driver"] = max(best["floor_driver"], rate)
                assert await count_rows(storage.engine) == n
                await clear(storage.engine)
                rate = await bench_floor_core(storage.engine, dict_rows)
                best["floor_core"] = max(best["floor_core"], rate)
                assert await count_rows(storage.engine) == n
                await clear(storage.engine)
                rate, commits = await bench_writer(storage, per_task)
                best["writer"] = max(best["writer"], rate)
                assert await count_rows(storage.engine) == n, "writer lost or duplicated rows"
                await clear(storage.engine)
                for job_id in jobs:
                    storage.fence_job(job_id, "bench-instance", 1)
                rate, _ = await bench_writer(storage, per_task)
                for job_id in jobs:
                    storage.unfence_job(job_id)
                best["fenced"] = max(best["fenced"], rate)
                assert await count_rows(storage.engine) == n, "fenced writer lost rows"
                await clear(storage.engine)
        finally:
            await storage.close()
    floor = max(best["floor_driver"], best["floor_core"])
    return {
        "kind": kind,
        "commits": commits,
        "floor": floor,
        "ratio": best["writer"] / floor,
        "fence_ratio": best["fenced"] / best["writer"],
        **best,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--db", nargs="*", choices=KINDS, default=list(KINDS))
    ap.add_argument("--rounds", type=int, default=3, help="best of this many runs of each")
    args = ap.parse_args()
    failed = False
    print(
        f"{args.events} events from {args.tasks} tasks, best of {args.rounds} rounds; "
        "floor = the faster 1,000-row insert"
    )
    print(
        f"{'database':<11} {'(a) writer':>12} {'commits':>8} {'(b) floor':>12} "
        f"{'(driver':>9} {'/ core)':>8} {'(a)/(b)':>8} {'bar':>5} {'(c) fenced':>12} "
        f"{'(c)/(a)':>8}"
    )
    for kind in args.db:
        if not server_available(kind):
            print(f"{kind:<11} server not reachable, skipped")
            continue
        r = asyncio.run(run_one(kind, args.events, args.tasks, args.rounds))
        ok = r["ratio"] >= BARS[kind] and r["fenced"] / r["floor"] >= BARS[kind]
        failed |= not ok
        print(
            f"{kind:<11} {r['writer']:>10.0f}/s {r['commits']:>8} {r['floor']:>10.0f}/s "
            f"{r['floor_driver']:>9.0f} {r['floor_core']:>8.0f} {r['ratio']:>7.0%} "
            f"{BARS[kind]:>4.0%} {r['fenced']:>10.0f}/s {r['fence_ratio']:>7.0%} "
            f"{'ok' if ok else 'BELOW BAR'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
