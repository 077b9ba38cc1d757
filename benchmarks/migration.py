"""How long migration 0006 (the test events' indexes, rebuilt) holds the first new server.

    python benchmarks/migration.py --jobs 10 [--db sqlite mariadb postgresql]

Per database (each in its own throw-away database, see ``contest.testing.databases``): the
schema of version 0005, then ``--jobs`` jobs' worth of test events (each a 10,000 x 5 job's:
120,000 rows, as the event writer stores them), then the upgrade to the newest version, timed,
beside the floor: a plain ``SELECT COUNT(*)`` of the same rows (reading them once). No bar:
docs/deployment.md quotes the figures for operators planning an upgrade.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from sqlalchemy import text

from contest.events import TestEvent, TestEventHeader
from contest.storage import migrate
from contest.storage.bulk import bulk_insert
from contest.storage.engine import create_engine
from contest.storage.events import TEST_COLUMNS, EventCodec
from contest.storage.limits import Limits
from contest.storage.schema import test_events
from contest.target import Target
from contest.testing.databases import temporary_database
from jobs import reachable

TARGETS, STEPS = 10_000, 5


def job_rows(job_id: int) -> list[tuple[object, ...]]:
    """A 10,000 x 5 job's test event rows, in the order its writer stores them (a step's
    targets together)."""
    codec = EventCodec(Limits())
    now = time.time()
    steps = [TestEventHeader(job_id, 1, "bench", f"step{i}") for i in range(STEPS)]
    test = TestEventHeader(job_id, 1, "bench", "")
    targets = [Target(f"t{t:06d}", fqdn=f"t{t:06d}.lab.example.com") for t in range(TARGETS)]
    rows = [codec.test_item(TestEvent(test, t, "TargetAcquired", None, now)) for t in targets]
    for h in steps:
        rows += [codec.test_item(TestEvent(h, t, "TargetIn", None, now)) for t in targets]
        rows += [codec.test_item(TestEvent(h, t, "TargetOut", None, now)) for t in targets]
    rows += [codec.test_item(TestEvent(test, t, "TargetReleased", None, now)) for t in targets]
    return rows


async def one(url: str, jobs: int) -> tuple[float, float, int]:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine, "0005")
        insert = bulk_insert(engine.dialect, test_events.name, TEST_COLUMNS)
        for job_id in range(1, jobs + 1):
            rows = job_rows(job_id)
            for i in range(0, len(rows), 10_000):
                async with engine.begin() as conn:
                    await insert(conn, rows[i : i + 10_000])
        async with engine.connect() as conn:
            t0 = time.perf_counter()
            count = (await conn.execute(text("SELECT COUNT(*) FROM test_events"))).scalar_one()
            read = time.perf_counter() - t0
        t0 = time.perf_counter()
        await migrate.upgrade(engine)
        took = time.perf_counter() - t0
        assert await migrate.current_revision(engine) == migrate.head_revision()
        return took, read, int(count)
    finally:
        await engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10, help="10,000 x 5 jobs' events (120,000 each)")
    ap.add_argument("--db", nargs="+", default=["sqlite", "mariadb", "postgresql"])
    args = ap.parse_args()
    for kind in reachable(args.db):
        with temporary_database(kind) as url:
            took, read, count = asyncio.run(one(url, args.jobs))
        print(
            f"{kind}: migration 0006 on {count:,} test events: {took:.1f} s "
            f"(floor: counting them {read:.2f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
