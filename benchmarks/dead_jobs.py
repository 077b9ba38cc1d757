"""How long a restarted server takes to fail a zombie job and free its targets.

A zombie as ``kill -9`` leaves it: a job in ``JobStateStarted`` with ``--targets`` targets
inside a step (``TargetIn`` and no ``TargetOut``; half of them passed a step before) and the DB
locker's rows for all of them. Measured: ``JobManager.start`` on that database, which reads the
job's routing events, writes one closing ``TargetErr`` per target inside, and stores
``JobStateFailed``, whose transaction deletes the lock rows. Floor, in the same run on the same
database: writing the same ``TargetErr`` events and the state event straight to the storage
(the writes the start cannot avoid). Printed per database and size: the median of the rounds,
their spread (the noise of a shared machine), the floor's median, and the difference.

    python benchmarks/dead_jobs.py [--kinds sqlite,postgresql,mariadb] [--targets 2000,10000]
                                   [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time

from contest.events import FrameworkEvent, TestEvent, TestEventHeader
from contest.job.manager import JobManager
from contest.server.lifecycle import make_locker
from contest.storage import JobRequest, JobState, Storage, open_storage
from contest.target import Target
from contest.testing.databases import KINDS, Kind, temporary_database

SERVER_ID = "bench"


async def _write(store: Storage, events: list[TestEvent]) -> None:
    acks = [store.write_test_event(e) for e in events]
    await asyncio.gather(*(a for a in acks if a is not None))


async def zombie(store: Storage, n: int) -> tuple[int, list[Target]]:
    job_id = await store.store_job(
        JobRequest(name="zombie", requestor="bench", server_id=SERVER_ID, descriptor="{}")
    )
    await store.write_framework_event(FrameworkEvent(job_id, "JobStateStarted"))
    first = TestEventHeader(job_id, 1, "test", "first")
    second = TestEventHeader(job_id, 1, "test", "second")
    targets = [Target(f"z{job_id}-{i:06d}", fqdn=f"h{i}.example.org") for i in range(n)]
    events = []
    for i, t in enumerate(targets):
        if i % 2:
            events += [TestEvent(first, t, "TargetIn"), TestEvent(first, t, "TargetOut")]
            events.append(TestEvent(second, t, "TargetIn"))
        else:
            events.append(TestEvent(first, t, "TargetIn"))
    await _write(store, events)
    return job_id, targets


async def one_round(url: str, n: int) -> tuple[float, float]:
    store = await open_storage(url)
    locker = make_locker("auto", store)
    try:
        # the floor: the closing events and the failed state, written straight
        floor_job, floor_targets = await zombie(store, n)
        header = TestEventHeader(floor_job, 1, "test", "first")
        began = time.perf_counter()
        await _write(
            store, [TestEvent(header, t, "TargetErr", {"Error": "x"}) for t in floor_targets]
        )
        await store.write_framework_event(FrameworkEvent(floor_job, "JobStateFailed"))
        floor = time.perf_counter() - began
        # the zombie, failed by a manager's start
        job_id, targets = await zombie(store, n)
        await locker.lock(job_id, 600, targets)
        jm = JobManager(store, locker, server_id=SERVER_ID)
        began = time.perf_counter()
        await jm.start(resume_jobs=False)
        took = time.perf_counter() - began
        await jm.close()
        assert await store.job_state(job_id) is JobState.FAILED
        await locker.lock(job_id + 1_000_000, 600, targets[:1])  # free again
        return took, floor
    finally:
        await locker.close()
        await store.close()


def _kind(name: str) -> Kind:
    if name not in KINDS:
        raise SystemExit(f"--kinds: {name!r} is not one of {', '.join(KINDS)}")
    return name  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kinds", default="sqlite,postgresql,mariadb")
    ap.add_argument("--targets", default="2000,10000")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    logging.getLogger("contest").setLevel(logging.ERROR)  # the zombie warnings, once a round
    for kind in args.kinds.split(","):
        for n in (int(x) for x in args.targets.split(",")):
            took: list[float] = []
            floor: list[float] = []
            for _ in range(args.rounds):
                with temporary_database(_kind(kind), tempfile.mkdtemp()) as url:
                    t, f = asyncio.run(one_round(url, n))
                took.append(t)
                floor.append(f)
            print(
                f"{kind:10} {n:6} targets inside: zombie failed and freed in "
                f"{statistics.median(took):.3f}s (rounds {min(took):.3f}-{max(took):.3f}); "
                f"floor {statistics.median(floor):.3f}s; "
                f"+{statistics.median(took) - statistics.median(floor):.3f}s"
            )


if __name__ == "__main__":
    main()
