"""The target manager contract: where a test's targets come from and go back to."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from contest.context import PluginContext
from contest.locking import TargetLocker
from contest.paramspec import Parameters
from contest.target import Target

__all__ = ["TargetManager"]


class TargetManager(abc.ABC):
    """Acquires the targets of a test and releases them afterwards.

    Parameters arrive as decoded JSON values (the descriptor's ``TargetManagerAcquireParameters``
    and ``TargetManagerReleaseParameters``). ``validate_*`` raise ``ParameterError`` naming the
    bad field and return the parsed form, which is what ``acquire``/``release`` then receive.
    The job runner locks the returned targets itself, right after ``acquire``.

    ``acquire_parameters`` and ``release_parameters`` declare the parameters' keys (see
    :mod:`contest.paramspec`, ``Parameters(..., go_struct=True)``): the job builder checks a
    descriptor against them before ``validate_*`` runs, and the reference documents them.
    ``None``: not declared.
    """

    acquire_parameters: ClassVar[Parameters | None] = None
    release_parameters: ClassVar[Parameters | None] = None

    @abc.abstractmethod
    def validate_acquire_parameters(self, params: Any) -> Any: ...

    @abc.abstractmethod
    def validate_release_parameters(self, params: Any) -> Any: ...

    @abc.abstractmethod
    async def acquire(
        self,
        ctx: PluginContext,
        job_id: int,
        lock_timeout: float,
        params: Any,
        locker: TargetLocker,
    ) -> list[Target]:
        """Return the targets; ``lock_timeout`` is the lease to use if the manager locks them
        itself through ``locker`` (TargetList's ``lock`` and CSVFileTargetManager's
        ``lock_queued`` do).

        In a job, ``locker`` waits for busy targets: its ``lock`` and ``lock_queued`` return
        once the job's turn in line came (or raise when the acquire timeout ran out, or
        ``Paused``/``Cancelled`` when the job stops waiting: let those through). ``try_lock``
        does not wait. A manager that wants "at least k of these" asks ``lock_queued`` with
        ``need=k``."""

    @abc.abstractmethod
    async def release(
        self, ctx: PluginContext, job_id: int, targets: list[Target], params: Any
    ) -> None: ...
