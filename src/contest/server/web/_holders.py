"""Who waits for which targets, and who holds a target: the one place the pages ask.

A job waits for targets while its latest ``TargetsWaiting`` event has no ``TargetsWaitEnded``
after it; the event names the targets and the job that held each (read by
:func:`contest.targetwait.parse_waiting`, as every other view reads it). The
holder of a target now is the DB target locker's unexpired row, or else a job this server runs
with the target in hand (the in-memory locker keeps no table). When the job manager offers live
holders of a waiting job, this module is what switches to them; the pages do not change.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from contest.job.manager import JobService
from contest.server.web import _queries as Q
from contest.storage import Storage
from contest.targetwait import Waiting, parse_waiting

__all__ = ["Holder", "Waiting", "holder", "waiting"]


async def waiting(store: Storage, job_ids: Sequence[int]) -> dict[int, Waiting]:
    """The jobs among ``job_ids`` that wait for targets now."""
    waits = await store.run_read(lambda c: Q.latest_waits(c, job_ids), "reading target waits")
    return {
        job_id: parse_waiting(w.payload, w.emit_time)
        for job_id, (w, ended) in waits.items()
        if ended is None
    }


@dataclass(slots=True)
class Holder:
    job_id: int
    until: float | None  # lease end (None: held by a running job of this server, no lease)


async def holder(store: Storage, jobs: JobService, target_id: str) -> Holder | None:
    """The job holding ``target_id`` now, if any."""
    row = await store.run_read(lambda c: Q.lock_row(c, target_id), "reading a target lock")
    if row is not None and row[1] > time.time():
        return Holder(row[0], row[1])
    for job_id in jobs.holding(target_id):
        return Holder(job_id, None)
    return None
