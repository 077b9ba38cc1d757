"""The in-memory target locker (``InMemory``): leases kept in a dict of this process.

It protects targets only against jobs of the same server: another server (or a restarted one)
knows nothing of these locks. Use ``DBLocker`` when several servers share targets.

Each call inspects and changes the table in one synchronous stretch (there is no ``await``
inside), under a ``threading.Lock``, so calls are atomic with respect to each other both among
tasks of one event loop and across threads. Time comes from an injectable clock (default
``time.monotonic``, immune to wall-clock jumps), which lets tests expire leases without sleeping.

**The line** (:meth:`InMemoryLocker.lock_queued`): a job whose targets are busy waits in a line
per target, first come first served across jobs (see :mod:`contest.plugins.targetlockers._line`
for why one ticket per job, and why all-or-none cannot deadlock). Here the line is three dicts
(target -> waiting jobs and their tickets, job -> its targets, job -> when its place lapses),
changed under the same mutex as the leases, so a grant and the line move together. A job's place
covers the targets of its latest request; it lapses ``ttl`` seconds after that request (same
clock as the leases), and a lapsed job starts again at the back. ``lock`` and ``try_lock`` do not
look at the line (ConTest's behaviour, for callers that never wait). An unlock, a grant that
gives up places, ``leave_queue`` and a lapse wake this locker's waiters
(:meth:`InMemoryLocker.wait_for_release`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contest.locking import (
    Clock,
    LockConflict,
    LockerClosed,
    LockerFactory,
    QueuedLock,
    TargetLocker,
    TargetRef,
    check_request,
)
from contest.plugins.targetlockers._line import check_queued, decide
from contest.plugins.targetlockers._wakeup import ReleaseSignal

NAME = "InMemory"

log = logging.getLogger("contest.targetlockers.inmemory")


@dataclass(slots=True)
class _Lease:
    owner: int
    created_at: float
    expires_at: float


class InMemoryLocker(TargetLocker):
    """Leases in a dict; see :mod:`contest.locking` for the contract."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or time.monotonic
        self._leases: dict[str, _Lease] = {}
        self._mutex = threading.Lock()
        self._closed = False
        # the line: target -> {job: ticket}; job -> (its targets, when its place lapses)
        self._line: dict[str, dict[int, int]] = {}
        self._places: dict[int, tuple[list[str], float]] = {}
        self._tickets: dict[int, int] = {}
        self._next_ticket = itertools.count(1)
        self._release_signal = ReleaseSignal()

    def _check_open(self) -> None:
        if self._closed:
            raise LockerClosed("the InMemory target locker is closed")

    def _take(
        self,
        operation: str,
        job_id: int,
        duration: float,
        ids: list[str],
        limit: int,
        *,
        require_owned: bool,
        skip_conflicts: bool,
    ) -> list[str]:
        """Plan then apply: nothing is written unless the whole plan stands.

        ``require_owned`` gives refresh semantics (every target must be the job's already);
        ``skip_conflicts`` gives try-lock semantics (conflicts are passed over, not errors).
        """
        with self._mutex:
            self._check_open()
            now = self._clock()
            expires_at = now + duration
            planned: dict[str, _Lease] = {}
            conflicts: dict[str, int] = {}
            expired: list[str] = []
            missing: list[str] = []
            for tid in ids:
                if len(planned) >= limit:
                    break
                lease = self._leases.get(tid)
                if lease is None:
                    if require_owned:
                        missing.append(tid)
                    else:
                        planned[tid] = _Lease(job_id, now, expires_at)
                elif lease.owner == job_id:
                    planned[tid] = _Lease(job_id, lease.created_at, expires_at)
                elif now > lease.expires_at and not require_owned:
                    planned[tid] = _Lease(job_id, now, expires_at)
                elif not skip_conflicts:
                    conflicts[tid] = lease.owner
                    if now > lease.expires_at:
                        expired.append(tid)
            if conflicts or missing:
                raise LockConflict(operation, job_id, conflicts, missing, expired)
            self._leases.update(planned)
            return list(planned)

    async def lock(self, job_id: int, duration: float, targets: Iterable[TargetRef]) -> None:
        req = check_request("lock", job_id, targets, duration=duration)
        self._check_open()
        if req.target_ids:
            self._take(
                "lock",
                req.job_id,
                duration,
                req.target_ids,
                len(req.target_ids),
                require_owned=False,
                skip_conflicts=False,
            )
        log.debug("job %d locked %d targets for %ss", req.job_id, len(req.target_ids), duration)

    async def try_lock(
        self, job_id: int, duration: float, targets: Iterable[TargetRef], limit: int
    ) -> list[str]:
        req = check_request("try_lock", job_id, targets, duration=duration, limit=limit)
        self._check_open()
        if not req.target_ids or limit == 0:
            return []
        got = self._take(
            "try_lock",
            req.job_id,
            duration,
            req.target_ids,
            limit,
            require_owned=False,
            skip_conflicts=True,
        )
        log.debug("job %d try-locked %d/%d targets", req.job_id, len(got), len(req.target_ids))
        return got

    async def unlock(self, job_id: int, targets: Iterable[TargetRef]) -> None:
        req = check_request("unlock", job_id, targets)
        with self._mutex:
            self._check_open()
            conflicts: dict[str, int] = {}
            missing: list[str] = []
            for tid in req.target_ids:
                lease = self._leases.get(tid)
                if lease is None:
                    missing.append(tid)
                elif lease.owner != req.job_id:
                    conflicts[tid] = lease.owner
            if conflicts or missing:
                raise LockConflict("unlock", req.job_id, conflicts, missing)
            for tid in req.target_ids:
                del self._leases[tid]
        if req.target_ids:
            self._release_signal.fire()
        log.debug("job %d unlocked %d targets", req.job_id, len(req.target_ids))

    async def refresh_locks(
        self, job_id: int, duration: float, targets: Iterable[TargetRef]
    ) -> None:
        req = check_request("refresh_locks", job_id, targets, duration=duration)
        self._check_open()
        if req.target_ids:
            self._take(
                "refresh_locks",
                req.job_id,
                duration,
                req.target_ids,
                len(req.target_ids),
                require_owned=True,
                skip_conflicts=False,
            )
        log.debug("job %d refreshed %d targets for %ss", req.job_id, len(req.target_ids), duration)

    # --- the line -----------------------------------------------------------------------------

    def _leave(self, job_id: int) -> bool:
        """Drop the job's places and ticket (mutex held); True if it had any."""
        self._tickets.pop(job_id, None)
        place = self._places.pop(job_id, None)
        if place is None:
            return False
        for tid in place[0]:
            line = self._line.get(tid)
            if line is not None:
                line.pop(job_id, None)
                if not line:
                    del self._line[tid]
        return True

    def _drop_lapsed(self, now: float) -> bool:
        """Forget the places not renewed in time (mutex held); True if any was dropped."""
        lapsed = [job for job, (_, until) in self._places.items() if now > until]
        for job in lapsed:
            self._leave(job)
        return bool(lapsed)

    async def lock_queued(
        self,
        job_id: int,
        duration: float,
        targets: Iterable[TargetRef],
        *,
        need: int | None = None,
        limit: int | None = None,
        ttl: float = 30.0,
    ) -> QueuedLock:
        """Lock the targets if the job is first in line for each, else keep its place; see
        :mod:`contest.locking` and this module's docstring."""
        req = check_request("lock_queued", job_id, targets, duration=duration, limit=limit)
        ids = req.target_ids
        check_queued("lock_queued", len(ids), need, limit, ttl)
        with self._mutex:
            self._check_open()
            now = self._clock()
            released = self._drop_lapsed(now)
            own: set[str] = set()
            holders: dict[str, int] = {}
            for tid in ids:
                lease = self._leases.get(tid)
                if lease is None:
                    continue
                if lease.owner == job_id:
                    own.add(tid)
                elif now <= lease.expires_at:
                    holders[tid] = lease.owner
            mine = self._tickets.get(job_id)
            ahead: dict[str, int] = {}
            for tid in ids:
                head: tuple[int, int] | None = None
                for other, ticket in self._line.get(tid, {}).items():
                    if other == job_id or (mine is not None and ticket > mine):
                        continue
                    if head is None or ticket < head[0]:
                        head = (ticket, other)
                if head is not None:
                    ahead[tid] = head[1]
            decision = decide(ids, own, holders, ahead, need, limit)
            if decision.granted:
                expires_at = now + duration
                for tid in decision.take:
                    lease = self._leases.get(tid)
                    created = lease.created_at if lease and lease.owner == job_id else now
                    self._leases[tid] = _Lease(job_id, created, expires_at)
                released = self._leave(job_id) or released
            else:
                if mine is None:
                    mine = next(self._next_ticket)
                    self._tickets[job_id] = mine
                old = self._places.get(job_id)
                if old is not None:
                    keep = set(ids)
                    for tid in old[0]:
                        if tid not in keep:
                            released = True
                            line = self._line.get(tid)
                            if line is not None:
                                line.pop(job_id, None)
                                if not line:
                                    del self._line[tid]
                for tid in ids:
                    self._line.setdefault(tid, {})[job_id] = mine
                self._places[job_id] = (list(ids), now + ttl)
            if released:
                self._release_signal.fire()
            self._release_signal.mark()
        log.debug(
            "job %d lock_queued %d targets: %s",
            job_id,
            len(ids),
            f"granted {len(decision.take)}"
            if decision.granted
            else f"waits on {decision.blockers}",
        )
        return QueuedLock(decision.granted, decision.take, decision.blockers)

    async def leave_queue(self, job_id: int) -> None:
        req = check_request("leave_queue", job_id, ())
        with self._mutex:
            self._check_open()
            left = self._leave(req.job_id)
        if left:
            self._release_signal.fire()
            log.debug("job %d left the line", req.job_id)

    async def wait_for_release(self, timeout: float) -> None:
        """Return at once if this locker saw an unlock or a place given up since this task's
        last ``lock_queued``, as soon as it sees one, or after ``timeout`` seconds."""
        self._check_open()
        await self._release_signal.wait(timeout)

    async def close(self) -> None:
        """Forget every lease and place in line; further calls raise :class:`LockerClosed`."""
        with self._mutex:
            self._closed = True
            self._leases.clear()
            self._line.clear()
            self._places.clear()
            self._tickets.clear()
        self._release_signal.fire()


def new(**settings: Any) -> InMemoryLocker:
    """In-memory target locker: leases kept in this server process only.

    Settings: ``clock``, a zero-argument callable returning seconds (default ``time.monotonic``).
    """
    unknown = set(settings) - {"clock"}
    if unknown:
        raise TypeError(f"{NAME} target locker: unknown settings {sorted(unknown)}")
    return InMemoryLocker(clock=settings.get("clock"))


def load() -> tuple[str, LockerFactory]:
    """Entry point of the ``contest.targetlockers`` group."""
    return NAME, new
