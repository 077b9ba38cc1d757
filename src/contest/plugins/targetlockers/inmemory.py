"""The in-memory target locker (``InMemory``): leases kept in a dict of this process.

It protects targets only against jobs of the same server: another server (or a restarted one)
knows nothing of these locks. Use ``DBLocker`` when several servers share targets.

Each call inspects and changes the table in one synchronous stretch (there is no ``await``
inside), under a ``threading.Lock``, so calls are atomic with respect to each other both among
tasks of one event loop and across threads. Time comes from an injectable clock (default
``time.monotonic``, immune to wall-clock jumps), which lets tests expire leases without sleeping.
"""

from __future__ import annotations

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
    TargetLocker,
    TargetRef,
    check_request,
)

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

    async def close(self) -> None:
        """Forget every lease; further calls raise :class:`LockerClosed`."""
        with self._mutex:
            self._closed = True
            self._leases.clear()


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
