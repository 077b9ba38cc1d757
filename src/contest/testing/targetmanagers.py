"""``TargetListWithState``: a test-only target manager that proves target state survives resume.

It is ``TargetList`` (same acquire parameters, ``{"Targets": [...]}``) plus a check. Acquire gives
each target the manager state ``{"token": "<job ID>-<target ID>"}``; release checks that every
target comes back with exactly that state, and fails with :class:`TargetStateMismatch` otherwise.
Between the two the job may pause, the server restart and the job resume: the check fails if the
state was lost or mixed up on the way (ConTest's resume end-to-end test uses it so).

Acquire also waits a random 0 to 200 ms after locking, as ConTest's does, so that a pause is
sometimes requested while targets are being acquired. Release parameters are ignored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections.abc import Callable
from typing import Any

from contest.context import PluginContext
from contest.errors import ContestError
from contest.locking import TargetLocker
from contest.paramspec import Kind, Parameter, Parameters
from contest.plugins.targetmanagers.targetlist import TARGETS, AcquireParameters, decode_targets
from contest.target import Target
from contest.targetmanager import TargetManager

NAME = "TargetListWithState"
#: The longest random wait after locking, in seconds (ConTest: up to 200 ms).
MAX_ACQUIRE_DELAY = 0.2


class TargetStateMismatch(ContestError):
    """A target came back to release without the state acquire gave it."""


def token_state(job_id: int, target_id: str) -> dict[str, str]:
    """The manager state acquire gives a target."""
    return {"token": f"{job_id}-{target_id}"}


def _state_value(state: Any) -> Any:
    """The state as a JSON value: it may come back as raw JSON text after a trip to storage."""
    if isinstance(state, bytes | bytearray):
        state = state.decode("utf-8", "replace")
    if isinstance(state, str):
        try:
            return json.loads(state)
        except ValueError:
            return state
    return state


class TargetListWithState(TargetManager):
    """``TargetList`` that stamps each target with a token at acquire and checks it at release.

    ``max_delay`` bounds the random wait after locking; ``rng`` draws it (tests pin both).
    """

    name = NAME
    acquire_parameters = TARGETS
    release_parameters = Parameters(
        others=Parameter("<any>", Kind.JSON, doc="ignored, as ConTest's does"), go_struct=True
    )

    def __init__(
        self, *, max_delay: float = MAX_ACQUIRE_DELAY, rng: random.Random | None = None
    ) -> None:
        self.max_delay = max_delay
        self._rng = rng or random.Random()

    def validate_acquire_parameters(self, params: Any) -> AcquireParameters:
        return AcquireParameters(decode_targets(params, "targetlist_with_state.AcquireParameters"))

    def validate_release_parameters(self, params: Any) -> None:
        return None

    async def acquire(
        self,
        ctx: PluginContext,
        job_id: int,
        lock_timeout: float,
        params: Any,
        locker: TargetLocker,
    ) -> list[Target]:
        ap = params
        if not isinstance(ap, AcquireParameters):
            ap = self.validate_acquire_parameters(params)
        try:
            await locker.lock(job_id, lock_timeout, [t.id for t in ap.targets])
        except Exception as exc:
            ctx.log.warning("Failed to lock %d targets: %s", len(ap.targets), exc)
            raise
        targets = [
            dataclasses.replace(t, manager_state=token_state(job_id, t.id)) for t in ap.targets
        ]
        if self.max_delay > 0:
            await asyncio.sleep(self._rng.uniform(0, self.max_delay))
        ctx.log.info("Acquired %d targets", len(targets))
        return targets

    async def release(
        self, ctx: PluginContext, job_id: int, targets: list[Target], params: Any
    ) -> None:
        for t in targets:
            expected = token_state(job_id, t.id)
            if _state_value(t.manager_state) != expected:
                raise TargetStateMismatch(
                    f"state mismatch for target {t.id}: expected "
                    f"{json.dumps(expected, separators=(',', ':'))}, "
                    f"got {json.dumps(t.manager_state, separators=(',', ':'), default=repr)}"
                )
        ctx.log.info("Released %d targets", len(targets))


def new_targetlistwithstate() -> TargetListWithState:
    return TargetListWithState()


def load_targetlistwithstate() -> tuple[str, Callable[[], TargetManager]]:
    """Entry point of the ``contest.targetmanagers`` group (test-only plugin)."""
    return NAME, new_targetlistwithstate
