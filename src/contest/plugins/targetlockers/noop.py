"""The no-op target locker (``noop``): every call succeeds and nothing is recorded.

For setups where targets are never shared (a developer's bench, a one-shot ``contest run``) and
for tests of code that needs *a* locker. Unlike ConTest's Noop, ``try_lock`` honours ``limit``
(it returns the first ``limit`` distinct IDs): callers such as the CSV target manager rely on
never getting more targets than they asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from contest.locking import LockerFactory, TargetLocker, TargetRef, target_id_of

NAME = "noop"

log = logging.getLogger("contest.targetlockers.noop")


class NoopLocker(TargetLocker):
    """Claims success for everything; validates nothing, so it cannot fail a job."""

    async def lock(self, job_id: int, duration: float, targets: Iterable[TargetRef]) -> None:
        log.debug("noop: job %s 'locked' targets", job_id)

    async def try_lock(
        self, job_id: int, duration: float, targets: Iterable[TargetRef], limit: int
    ) -> list[str]:
        ids = list(dict.fromkeys(target_id_of(t) for t in (targets or ())))
        return ids[: max(limit, 0)]

    async def unlock(self, job_id: int, targets: Iterable[TargetRef]) -> None:
        log.debug("noop: job %s 'unlocked' targets", job_id)

    async def refresh_locks(
        self, job_id: int, duration: float, targets: Iterable[TargetRef]
    ) -> None:
        log.debug("noop: job %s 'refreshed' targets", job_id)

    async def close(self) -> None:
        """Nothing to release: this locker holds no connection and records no lock."""


def new(**settings: Any) -> NoopLocker:
    """No-op target locker: grants every request and records nothing.

    Takes no settings; any given are ignored, so it can stand in for any other locker.
    """
    return NoopLocker()


def load() -> tuple[str, LockerFactory]:
    """Entry point of the ``contest.targetlockers`` group."""
    return NAME, new
