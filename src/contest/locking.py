"""Target locking: who may use which device under test, and until when.

A *lock* on a target is a lease owned by a job: it lasts ``duration`` seconds from the moment it is
taken or refreshed. The framework keeps its leases alive with :meth:`TargetLocker.refresh_locks`
(every 0.9 x the lease) so that a crashed server's targets become free on their own once the
lease runs out, without anyone having to clean up after it.

The contract every locker follows (ConTest's ``target.Locker``, checked case by case by
:mod:`contest.testing.lockers`):

* ``lock`` is all-or-nothing. Targets already owned by the job are re-locked (the lease restarts
  from now, even when it had expired); a target held by another job with a lease still running is
  a conflict and nothing changes; another job's *expired* lease may be taken over.
* ``try_lock`` walks the targets in input order and locks as many as it can, stopping once
  ``limit`` targets are held (targets the job already owns count, and are extended). Conflicts are
  skipped, never an error. The result lists the targets it holds, in input order.
* ``unlock`` is all-or-nothing: every target must have a lock owned by the job (an expired one is
  fine). A target that is not locked, or is locked by another job, fails the whole call.
* ``refresh_locks`` is all-or-nothing: every target must still be locked by the job (an expired
  lease of the job is extended, as long as nobody took it over). A target with no lock, or locked
  by another job even with an expired lease, fails the whole call. A failed refresh means the job
  lost ownership, and the framework cancels the job.
* A job ID must be a positive integer: ``0`` is rejected even with an empty target list. An empty
  target list with a valid job is a successful no-op. An empty target ID is rejected. A target
  named twice in one call counts once.
* A lease is held up to and including its expiry instant: another job may take it over only once
  the clock is strictly past ``expires_at``.

Targets may be given as IDs or as :class:`~contest.target.Target` objects; only the ID matters.

Waiting for busy targets (:meth:`TargetLocker.lock_queued`): a job whose targets are held by other
jobs takes a place in a line per target, first come first served across jobs, and is granted all
of its targets at once (or, with ``need``, at least ``need`` of them) only when it is first in line
for each target it takes. Since nobody holds part of a request while waiting, two jobs can never
deadlock holding one target each. A place in line lapses unless renewed (by calling
``lock_queued`` again) within ``ttl`` seconds, so a crashed waiter never blocks the line.
The base class gives a locker without a line a fallback that polls ``lock``/``try_lock``.
The details lockers with a line keep (checked by :data:`contest.testing.lockers.QUEUE_CASES`):
a job's place is one ticket for all its targets, taken at its first call and kept until it is
granted, leaves, or lets its place lapse (then it starts again at the back); the place covers the
targets of the job's latest request; ``blockers`` names, for a free target, the first job in
line; targets the job holds already are re-locked as ``lock`` does; ``lock`` and ``try_lock``
themselves do not look at the line.
"""

from __future__ import annotations

import abc
import asyncio
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from contest.errors import ContestError
from contest.target import Target

#: A clock as lockers use it: seconds, as a float. Lockers only compare its values with each
#: other, so any steady origin works (``time.time`` when several processes share the locks).
Clock = Callable[[], float]

#: What a locker accepts as a target: its ID, or the target itself.
TargetRef = str | Target


class LockerError(ContestError):
    """Base of every error a target locker raises."""


class InvalidLockRequest(LockerError, ValueError):
    """The arguments are unusable (job ID 0, an empty target ID, a negative duration or limit).

    Raised before any lock is looked at, so nothing changed.
    """


class LockConflict(LockerError):
    """A request could not be granted as a whole; nothing changed.

    ``conflicts`` maps each target held by another job to that job's ID; ``missing`` lists the
    targets that ``unlock``/``refresh_locks`` expected to be locked by the job but that have no lock
    at all. Either may be empty, never both.
    """

    def __init__(
        self,
        operation: str,
        job_id: int,
        conflicts: Mapping[str, int] | None = None,
        missing: Sequence[str] = (),
        expired: Iterable[str] = (),
    ) -> None:
        self.operation = operation
        self.job_id = job_id
        self.conflicts: dict[str, int] = dict(conflicts or {})
        self.missing: list[str] = list(missing)
        self.expired: frozenset[str] = frozenset(expired)
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts: list[str] = []
        for tid, owner in self.conflicts.items():
            lease = " (lease expired)" if tid in self.expired else ""
            parts.append(f"target {tid!r} is locked by job {owner}{lease}")
        for tid in self.missing:
            parts.append(f"target {tid!r} is not locked")
        return f"{self.operation} by job {self.job_id} failed: " + "; ".join(parts)

    @property
    def target_ids(self) -> list[str]:
        """Every target that made the request fail."""
        return [*self.conflicts, *self.missing]


class LockerClosed(LockerError):
    """The locker was used after :meth:`TargetLocker.close`."""


class LockerUnavailable(LockerError):
    """The lock store could not answer (database down, too much contention); state unknown."""


@dataclass(frozen=True, slots=True)
class LockRequest:
    """A validated request: positive job ID, distinct non-empty target IDs in input order."""

    job_id: int
    target_ids: list[str]


@dataclass(frozen=True, slots=True)
class QueuedLock:
    """What :meth:`TargetLocker.lock_queued` did.

    ``granted``: the job now holds ``acquired`` (input order) and has left the line. Otherwise the
    job holds nothing new and keeps its place in line; ``blockers`` maps each target it waits for
    to the job holding it, or to the job ahead of it in line when the target is free (a
    third-party locker may not know, and leave it empty).
    """

    granted: bool
    acquired: list[str]
    blockers: dict[str, int]


def target_id_of(target: TargetRef) -> str:
    """The ID of a target given either way."""
    if isinstance(target, Target):
        return target.id
    if isinstance(target, str):
        return target
    raise InvalidLockRequest(f"a target must be a str ID or a Target, got {type(target).__name__}")


def check_request(
    operation: str,
    job_id: int,
    targets: Iterable[TargetRef] | None,
    *,
    duration: float | None = None,
    limit: int | None = None,
) -> LockRequest:
    """Validate the arguments common to every locker call, the same way for every locker.

    Lockers call this first so that bad requests fail identically everywhere, before any state
    is read. Duplicated target IDs are dropped (first occurrence wins) so that a limit and an
    all-or-nothing check count each target once.
    """
    if isinstance(job_id, bool) or not isinstance(job_id, int):
        raise InvalidLockRequest(
            f"invalid {operation} request: job ID must be an int, got {type(job_id).__name__}"
        )
    ids = [target_id_of(t) for t in (targets or ())]
    if job_id <= 0:
        raise InvalidLockRequest(
            f"invalid {operation} request: job ID must be positive, got {job_id} (targets: {ids})"
        )
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise InvalidLockRequest(
                f"invalid {operation} request: duration must be seconds as a number, "
                f"got {type(duration).__name__}"
            )
        if not math.isfinite(duration) or duration < 0:
            raise InvalidLockRequest(
                f"invalid {operation} request: duration must be finite and >= 0, got {duration}"
            )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidLockRequest(
            f"invalid {operation} request: limit must be an int >= 0, got {limit!r}"
        )
    if any(tid == "" for tid in ids):
        raise InvalidLockRequest(
            f"invalid {operation} request: target list cannot contain an empty target ID "
            f"(targets: {ids})"
        )
    return LockRequest(job_id, list(dict.fromkeys(ids)))


class TargetLocker(abc.ABC):
    """Leases on targets, owned by jobs. See the module docstring for the full contract.

    Every method is a coroutine and safe to call concurrently from tasks of one event loop.
    Job IDs are positive ints; durations are seconds (float); targets are IDs or ``Target``s.
    Validate arguments with :func:`check_request` so that all lockers reject the same requests.
    """

    @abc.abstractmethod
    async def lock(self, job_id: int, duration: float, targets: Iterable[TargetRef]) -> None:
        """Lock every target for ``duration`` seconds, or none (raises :class:`LockConflict`)."""

    @abc.abstractmethod
    async def try_lock(
        self, job_id: int, duration: float, targets: Iterable[TargetRef], limit: int
    ) -> list[str]:
        """Lock up to ``limit`` of the targets, in input order, skipping conflicts.

        Returns the IDs now held by the job (input order); never raises for a conflict.
        """

    @abc.abstractmethod
    async def unlock(self, job_id: int, targets: Iterable[TargetRef]) -> None:
        """Release every target (all must be locked by the job), or none."""

    @abc.abstractmethod
    async def refresh_locks(
        self, job_id: int, duration: float, targets: Iterable[TargetRef]
    ) -> None:
        """Restart the lease of every target (all must still be the job's), or none."""

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
        """Lock the targets if the job is first in line for them, else join (or keep) its place.

        ``need=None``: all of the targets or none, as :meth:`lock`. ``need=k``: as
        :meth:`try_lock`, granted once at least ``k`` of the targets can be taken, taking up to
        ``limit`` (default: all). Leases last ``duration``; the place in line lapses unless this
        is called again within ``ttl`` seconds. Lockers with a line override this; the fallback
        has no line (no first-come order) but never grants a target another job holds.
        """
        req = check_request("lock_queued", job_id, targets, duration=duration, limit=limit)
        if need is None:
            try:
                await self.lock(job_id, duration, req.target_ids)
            except LockConflict as exc:
                return QueuedLock(False, [], dict(exc.conflicts))
            return QueuedLock(True, list(req.target_ids), {})
        cap = len(req.target_ids) if limit is None else limit
        held = await self.try_lock(job_id, duration, req.target_ids, cap)
        if len(held) >= need:
            return QueuedLock(True, held, {})
        if held:
            await self.unlock(job_id, held)
        return QueuedLock(False, [], {})

    async def leave_queue(self, job_id: int) -> None:
        """Give up the job's places in line (wait timed out, cancelled, paused). Idempotent."""

    async def wait_for_release(self, timeout: float) -> None:
        """Return once a lock may have been released or a place in line freed, or after
        ``timeout`` seconds. Lockers that see releases (in this process) wake waiters at once;
        the fallback just sleeps, so waiters poll."""
        await asyncio.sleep(timeout)

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the locker's resources; no call may be in flight or follow."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


#: What a ``contest.targetlockers`` entry point's ``load()`` returns: the plugin's name and a
#: factory taking keyword settings.
LockerFactory = Callable[..., TargetLocker]

__all__ = [
    "Clock",
    "InvalidLockRequest",
    "LockConflict",
    "LockRequest",
    "LockerClosed",
    "LockerError",
    "LockerFactory",
    "LockerUnavailable",
    "QueuedLock",
    "TargetLocker",
    "TargetRef",
    "check_request",
    "target_id_of",
]
