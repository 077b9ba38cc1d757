"""The line for busy targets, shared by the InMemory and DB lockers: who is granted what.

Both lockers keep, per target, the jobs waiting for it, each with the job's *ticket* (one number
per job, taken at its first ``lock_queued`` call and kept until it is granted, leaves or lets
its place lapse) and an expiry (``ttl`` after its latest call). Given what a locker read for one
request, :func:`decide` says whether the job is granted and which targets it takes; the lockers
only differ in where they keep that state.

Why one ticket per job rather than an order per target: the tickets order *all* waiting jobs, so
the job with the lowest live ticket is first in line for every target it asks for and is
granted as soon as the holders let go. With an order per target, job X could be first on ``a``
and second on ``b`` while job Y is first on ``b`` and second on ``a``: each would wait for the
other for ever. Since a waiting job holds nothing new (all-or-none, or at least ``need``), no
job holds part of a request while it waits for the rest, so waiting cannot deadlock either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from contest.locking import InvalidLockRequest


@dataclass(frozen=True, slots=True)
class Decision:
    """``take``: the targets granted (input order), empty when not granted."""

    granted: bool
    take: list[str]
    blockers: dict[str, int]


def check_queued(
    operation: str, n_targets: int, need: int | None, limit: int | None, ttl: float
) -> None:
    """Reject a ``need``/``limit``/``ttl`` that could never be honoured, before any state is
    read (``check_request`` has checked the job, targets, duration and that limit >= 0)."""
    if need is not None:
        if isinstance(need, bool) or not isinstance(need, int) or need < 0:
            raise InvalidLockRequest(
                f"invalid {operation} request: need must be an int >= 0, got {need!r}"
            )
        if need > n_targets:
            raise InvalidLockRequest(
                f"invalid {operation} request: need {need} is more than the {n_targets} "
                "targets asked for"
            )
        if limit is not None and limit < need:
            raise InvalidLockRequest(
                f"invalid {operation} request: limit {limit} is below need {need}"
            )
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise InvalidLockRequest(
            f"invalid {operation} request: ttl must be seconds as a number, "
            f"got {type(ttl).__name__}"
        )
    if not math.isfinite(ttl) or ttl < 0:
        raise InvalidLockRequest(f"invalid {operation} request: ttl must be finite and >= 0")


def decide(
    ids: list[str],
    own: set[str],
    holders: Mapping[str, int],
    ahead: Mapping[str, int],
    need: int | None,
    limit: int | None,
) -> Decision:
    """Grant or not, for one request.

    ``ids``: the request (distinct, input order); ``own``: those the job holds already (any
    lease of its own, expired or not: re-locked as ``lock`` does); ``holders``: those another
    job holds with a running lease, and that job; ``ahead``: those for which a live waiter with
    a lower ticket is in line, and the first such waiter (the head of the line).

    A target is *available* to the job when it is its own, or neither held nor promised to an
    earlier waiter. ``need=None``: granted only if every target is available. ``need=k``:
    granted once ``k`` are, taking the available ones in input order, at most ``limit``.
    """
    available: list[str] = []
    blockers: dict[str, int] = {}
    for tid in ids:
        if tid in own:
            available.append(tid)
        elif tid in holders:
            blockers[tid] = holders[tid]
        elif tid in ahead:
            blockers[tid] = ahead[tid]
        else:
            available.append(tid)
    if need is None:
        if blockers:
            return Decision(False, [], blockers)
        return Decision(True, available, {})
    if len(available) >= need:
        cap = len(ids) if limit is None else limit
        return Decision(True, available[:cap], {})
    return Decision(False, [], blockers)
