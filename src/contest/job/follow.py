"""A run's status kept by a process that does not write the run's events: read on from the
database, a few new events at a time, instead of built again from all of them.

The server running a job keeps each run's status as its events are written
(:class:`~contest.job.status.LiveRunStatus`, fed by the storage's tap). Any other reader (another
server on the same database, asked by a poller behind a load balancer; the server itself for a
run resumed halfway, whose earlier events it never saw) used to build the status from every
event of the run at each ask: 0.6-0.8 s at 10,000 x 5, however few events had come since, and
twenty pollers would take all of such a server's time. A :class:`RunFollower` feeds the same
kept status from the database instead: the rows committed after the last one it read, in
their order (:meth:`contest.storage.Storage.run_rows_after`), so an ask costs what happened
since the last one; the first ask reads the whole run once. The document is the same, to the
byte, as the build from the events (``tests/jobs/test_status_fastpath.py``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from contest.job.model import Job
from contest.job.status import LiveRunStatus, RunText, job_shape

#: rows read per statement when catching up after the first read (which reads the whole run,
#: as a status build does: 120,000 rows for a 10,000 x 5 run)
PAGE = 20_000
#: a follower nobody asked for in this long is dropped (its run's status is kept in memory)
IDLE = 600.0


class FollowBroken(RuntimeError):
    """An event could not be taken into the kept status: build the status from the events."""


class RunFollower:
    """One run's status, caught up from the database at each ask."""

    def __init__(self, job: Job, run_id: int) -> None:
        self.live = LiveRunStatus(job.id, run_id, job_shape(job))
        self._seen = 0  # the sequence of the last row taken
        self._lock = asyncio.Lock()  # one catch-up at a time: rows are taken in order
        self.used = time.monotonic()

    async def text(self, reader: Any) -> RunText:
        """The run's status text now: the rows committed since the last ask taken first."""
        self.used = time.monotonic()
        live = self.live
        async with self._lock:
            while True:
                rows: list[tuple[Any, ...]] = await reader.run_rows_after(
                    live.job_id, live.run_id, self._seen, PAGE
                )
                for row in rows:
                    live.add(row[:-1])
                if rows:
                    self._seen = rows[-1][-1]
                    await live.take_queued()
                if len(rows) < PAGE:
                    break
        if live.broken:
            raise FollowBroken(f"job {live.job_id} run {live.run_id}: the kept status is given up")
        return await live.text()


class Followers:
    """The followers of the runs this process is asked about and does not run, by (job ID,
    run ID); each dropped when its job is no longer running or nobody asked for it in
    :data:`IDLE` seconds."""

    def __init__(self, *, idle: float = IDLE) -> None:
        self.idle = idle
        self._runs: dict[tuple[int, int], RunFollower] = {}

    def of(self, job: Job, run_id: int) -> RunFollower:
        """The follower of run ``run_id`` of ``job`` (a new one the first time)."""
        key = (job.id, run_id)
        follower = self._runs.get(key)
        if follower is None:
            follower = self._runs[key] = RunFollower(job, run_id)
        return follower

    def forget(self, job_id: int) -> None:
        """The job is not running (any more): its runs' followers go."""
        for key in [k for k in self._runs if k[0] == job_id]:
            del self._runs[key]

    def drop_idle(self) -> set[int]:
        """Let go of the followers nobody asked for in :attr:`idle` seconds; the IDs of their
        jobs (whose other kept statuses can go too)."""
        now = time.monotonic()
        idle = [k for k, f in self._runs.items() if now - f.used > self.idle]
        for key in idle:
            del self._runs[key]
        return {job_id for job_id, _ in idle}

    def __len__(self) -> int:
        return len(self._runs)
