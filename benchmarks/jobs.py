"""Jobs end to end, per database: the event writer, its floor, a whole job, and its status.

    python benchmarks/jobs.py [--targets 10000] [--steps 5] [--events 100000] [--tasks 10000]
                              [--db sqlite mariadb postgresql]

Per database, each in its own throw-away database (``contest.testing.databases``):

(a) the event writer alone: ``--events`` emits from ``--tasks`` concurrent tasks through the
    group-commit path (each emit returns once committed), in events per second;
(b) the floor: the same rows inserted 1,000 a statement, in rows per second;
(c) one job of ``--targets`` targets (TargetList) through ``--steps`` no-op steps, run by the job
    manager on that database with the in-memory locker: wall time from submission to
    JobStateCompleted, and stored events per second;
(d) the time to build that job's status document (ConTest's ``status``), best of 3.

Bars (the issue's): (a) >= 50% of (b) on MariaDB and PostgreSQL, >= 25% on SQLite; (d) <= 300 ms
on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import storage_writer
from contest.events import TestEventQuery
from contest.job.manager import JobManager
from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.storage import open_storage
from contest.testing.databases import KINDS, server_available, temporary_database


def descriptor(targets: int, steps: int) -> str:
    return json.dumps(
        {
            "JobName": "bench",
            "Runs": 1,
            "TestDescriptors": [
                {
                    "TargetManagerName": "TargetList",
                    "TargetManagerAcquireParameters": {
                        "Targets": [{"ID": f"t{i:06d}"} for i in range(targets)]
                    },
                    "TargetManagerReleaseParameters": {},
                    "TestFetcherName": "literal",
                    "TestFetcherFetchParameters": {
                        "TestName": "bench",
                        "Steps": [
                            {"name": "Noop", "label": f"step{i}", "parameters": {}}
                            for i in range(steps)
                        ],
                    },
                }
            ],
            "Reporting": {"RunReporters": [{"name": "noop"}]},
        }
    )


async def bench_job(url: str, targets: int, steps: int) -> dict[str, Any]:
    storage = await open_storage(url)
    jm = JobManager(storage, InMemoryLocker(), server_id="bench")
    try:
        await jm.start(resume_jobs=False)
        text = descriptor(targets, steps)
        gc.collect()
        t0 = time.perf_counter()
        job_id = await jm.submit(text, "bench")
        await jm.wait_all()
        await storage.flush()
        wall = time.perf_counter() - t0
        req = await storage.get_job(job_id)
        assert req is not None and req.state.event_name == "JobStateCompleted", req
        events = len(await storage.test_events(TestEventQuery(job_id=job_id)))
        expected = targets * (2 * steps + 2)
        assert events == expected, (events, expected)
        status_times = []
        for _ in range(3):
            t1 = time.perf_counter()
            doc = await jm.status(job_id)
            status_times.append(time.perf_counter() - t1)
        assert doc["State"] == "JobStateCompleted"
        return {
            "job_wall_s": wall,
            "job_events": events,
            "job_events_per_s": events / wall,
            "status_s": min(status_times),
        }
    finally:
        await jm.close()
        await storage.close()


async def one_database(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"db": kind}
    ab = await storage_writer.run_one(kind, args.events, args.tasks)
    out.update(ab)
    with temporary_database(kind) as url:  # type: ignore[arg-type]
        out.update(await bench_job(url, args.targets, args.steps))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--db", nargs="*", default=list(KINDS))
    args = ap.parse_args()
    for kind in args.db:
        if not server_available(kind):  # type: ignore[arg-type]
            print(f"{kind}: server not reachable, skipped")
            continue
        r = asyncio.run(one_database(kind, args))
        bar = storage_writer.BARS[kind]
        print(f"== {kind}")
        print(f"(a) event writer      : {r['writer']:>10,.0f} events/s ({r['commits']} commits)")
        print(f"(b) batched insert    : {r['floor']:>10,.0f} rows/s")
        print(f"    (a)/(b)           : {r['ratio']:>10.0%}  (bar {bar:.0%})")
        print(
            f"(c) job {args.targets} targets x {args.steps} steps: {r['job_wall_s']:.2f} s, "
            f"{r['job_events']} events, {r['job_events_per_s']:,.0f} events/s"
        )
        print(f"(d) status document   : {r['status_s'] * 1000:>10.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
