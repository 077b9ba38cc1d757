"""Waiting for busy targets: what the line costs a job, against a floor measured in the same run.

    python benchmarks/target_queue.py [--jobs 50] [--targets 20] [--pool 40] [--sleep 20ms]
                                      [--rounds 3] [--db sqlite] [--locker inmemory db]

``--jobs`` jobs of ``--targets`` targets each (TargetList, one ``Sleep`` step of ``--sleep`` per
target, the targets running concurrently), on one job manager over a throw-away database:

(a) the floor: each job alone on targets of its own (no other job ever holds them), one after
    the other; the sum of their run times (submission to ``JobStateCompleted``);
(b) contended: all the jobs submitted at once, their targets drawn from a pool of ``--pool``
    shared targets, every job holding the pool's first target, so no two jobs ever run at once
    (the line serialises them all, as (a) does); the time from the first submission until the
    last job completed.

The queue's cost per job is ((b) - (a)) / ``--jobs``: what waiting in line adds to a job that
would otherwise have run next at once (a release must wake the next job in line, which then
locks its targets). It may come out below zero: in (b) the later jobs are submitted (checked,
stored, started) while the first ones run, work that (a) does between runs. Every job must
complete with all its targets tested; the TargetAcquired .. TargetReleased intervals of each
target must not overlap. Best of ``--rounds`` interleaved rounds, the worst printed too, as the
machine may be shared. The poll interval is the server's default (``--target-wait-poll``, 1 s):
a job of this process releasing targets wakes the next waiter for them at once
(``contest.job.waiting.released``), whatever the locker; waiters on other servers poll.

Bar (issue 10): the queue adds < 5 ms per job.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from contest.events import TestEventQuery
from contest.golang.time import parse_duration
from contest.job.manager import JobManager
from contest.locking import TargetLocker
from contest.plugins.targetlockers import dblocker
from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.settings import DEFAULT_TARGET_WAIT_POLL
from contest.storage import Storage, open_storage
from contest.testing.databases import KINDS, Kind, server_available, temporary_database

BAR_MS = 5.0


def descriptor(targets: list[str], sleep: str) -> str:
    return json.dumps(
        {
            "JobName": "queue bench",
            "Runs": 1,
            "TestDescriptors": [
                {
                    "TargetManagerName": "TargetList",
                    "TargetManagerAcquireParameters": {"Targets": [{"ID": t} for t in targets]},
                    "TargetManagerReleaseParameters": {},
                    "TestFetcherName": "literal",
                    "TestFetcherFetchParameters": {
                        "TestName": "bench",
                        "Steps": [
                            {"name": "sleep", "label": "s", "parameters": {"duration": [sleep]}}
                        ],
                    },
                }
            ],
            "Reporting": {"RunReporters": [{"name": "noop"}]},
        }
    )


def shared_targets(job: int, targets: int, pool: int) -> list[str]:
    """The pool's first target, then ``targets - 1`` others, a different slice per job."""
    rest = [f"p{(1 + (job * 7 + k) % (pool - 1)):03d}" for k in range(targets - 1)]
    return ["p000", *dict.fromkeys(rest)][:targets]


def own_targets(job: int, targets: int) -> list[str]:
    return [f"j{job:03d}-{k:02d}" for k in range(targets)]


def make_locker(kind: str, storage: Storage) -> TargetLocker:
    return dblocker.new(engine=storage.engine) if kind == "db" else InMemoryLocker()


async def _completed(storage: Storage, job_ids: list[int]) -> None:
    for job_id in job_ids:
        req = await storage.get_job(job_id)
        assert req is not None and req.state.event_name == "JobStateCompleted", (job_id, req)


async def _no_overlap(storage: Storage, job_ids: list[int], targets: int) -> None:
    spans: dict[str, list[tuple[float, float]]] = {}
    for job_id in job_ids:
        events = await storage.test_events(
            TestEventQuery(job_id=job_id, event_names=["TargetAcquired", "TargetReleased"])
        )
        since: dict[str, float] = {}
        for e in events:
            assert e.target is not None
            if e.name == "TargetAcquired":
                since[e.target.id] = e.emit_time
            else:
                spans.setdefault(e.target.id, []).append((since.pop(e.target.id), e.emit_time))
        tested = await storage.test_events(TestEventQuery(job_id=job_id, event_names=["TargetOut"]))
        assert len(tested) == targets, (job_id, len(tested))
    for tid, holds in spans.items():
        holds.sort()
        for (_, released), (acquired, _) in itertools.pairwise(holds):
            assert acquired >= released, f"{tid} held by two jobs at once"


async def one_round(url: str, locker_kind: str, args: argparse.Namespace) -> dict[str, float]:
    storage = await open_storage(url)
    locker = make_locker(locker_kind, storage)
    jm = JobManager(storage, locker, server_id="bench", wait_poll=args.poll)
    try:
        await jm.start(resume_jobs=False)
        # (a) the floor: each job alone, on targets nobody else uses, one after the other
        floor = 0.0
        alone: list[int] = []
        for j in range(args.jobs):
            text = descriptor(own_targets(j, args.targets), args.sleep)
            t0 = time.perf_counter()
            alone.append(await jm.submit(text, "bench"))
            await jm.wait_all()
            floor += time.perf_counter() - t0
        # (b) all at once, every job holding p000: the line runs them one at a time
        texts = [
            descriptor(shared_targets(j, args.targets, args.pool), args.sleep)
            for j in range(args.jobs)
        ]
        t0 = time.perf_counter()
        contended = [await jm.submit(text, "bench") for text in texts]
        await jm.wait_all()
        drain = time.perf_counter() - t0
        await storage.flush()
        await _completed(storage, alone + contended)
        await _no_overlap(storage, contended, args.targets)
        return {"floor_s": floor, "drain_s": drain}
    finally:
        await jm.close()
        await locker.close()
        await storage.close()


async def bench(kind: Kind, locker_kind: str, args: argparse.Namespace) -> dict[str, Any]:
    rounds = []
    for _ in range(args.rounds):
        with temporary_database(kind) as url:
            rounds.append(await one_round(url, locker_kind, args))
    per_job = [(r["drain_s"] - r["floor_s"]) / args.jobs for r in rounds]
    best = min(range(len(rounds)), key=lambda i: per_job[i])
    return {
        "floor_s": rounds[best]["floor_s"],
        "drain_s": rounds[best]["drain_s"],
        "per_job_ms": per_job[best] * 1000,
        "per_job_worst_ms": max(per_job) * 1000,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--pool", type=int, default=40)
    ap.add_argument("--sleep", default="20ms", help="each target's Sleep step (Go duration)")
    ap.add_argument("--poll", type=parse_duration, default=DEFAULT_TARGET_WAIT_POLL)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--db", nargs="*", choices=KINDS, default=["sqlite"])
    ap.add_argument("--locker", nargs="*", choices=["inmemory", "db"], default=["inmemory", "db"])
    args = ap.parse_args()
    if args.targets > args.pool:
        ap.error("--targets must be at most --pool")
    failed = False
    for kind in args.db:
        if not server_available(kind):
            print(f"{kind}: server not reachable, skipped")
            continue
        for locker_kind in args.locker:
            r = asyncio.run(bench(kind, locker_kind, args))
            ok = r["per_job_ms"] < BAR_MS
            failed |= not ok
            print(f"== {kind}, {locker_kind} locker: {args.jobs} jobs x {args.targets} targets")
            print(f"(a) floor, each alone on its own targets: {r['floor_s']:8.2f} s (sum)")
            print(f"(b) all at once over {args.pool} shared   : {r['drain_s']:8.2f} s (drain)")
            print(
                f"    queue per job ((b)-(a))/jobs       : {r['per_job_ms']:8.2f} ms "
                f"(worst round {r['per_job_worst_ms']:.2f}; bar {BAR_MS:.0f} ms) "
                f"{'ok' if ok else 'ABOVE BAR'}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
