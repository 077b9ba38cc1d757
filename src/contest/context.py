"""What a running step knows about the world: its job, run, test and label, the pause and cancel
signals, a logger, and the step variables."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from contest.logs import QuickAdapter
from contest.signals import Scope
from contest.variables import StepVariables

if TYPE_CHECKING:
    from contest.checkpoint import StepSlot, TargetsInHand

_log = logging.getLogger("contest.step")


class StepContext:
    """Handed to ``validate_parameters`` and ``run``.

    Pause and cancel are independent signals; cancel wins when both are set.
    """

    __slots__ = (
        "_checkpoints",
        "job_id",
        "log",
        "run_id",
        "scope",
        "step_label",
        "test_name",
        "variables",
    )

    def __init__(
        self,
        *,
        scope: Scope,
        job_id: int = 0,
        run_id: int = 0,
        test_name: str = "",
        step_label: str = "",
        variables: StepVariables | None = None,
        checkpoints: StepSlot | None = None,
    ) -> None:
        self.scope = scope
        self._checkpoints = checkpoints
        self.job_id = job_id
        self.run_id = run_id
        self.test_name = test_name
        self.step_label = step_label
        self.variables = variables
        extra: dict[str, Any] = {
            "job_id": job_id,
            "run_id": run_id,
            "test_name": test_name,
            "step_label": step_label,
        }
        self.log = QuickAdapter(_log, extra)

    def is_cancelled(self) -> bool:
        return self.scope.cancel.is_set()

    def is_paused(self) -> bool:
        return self.scope.pause.is_set()

    async def wait_cancelled(self) -> None:
        await self.scope.cancel.wait()

    async def wait_paused(self) -> None:
        await self.scope.pause.wait()

    def keep_checkpoints(self, version: int, targets: TargetsInHand) -> None:
        """Opt in to checkpoints (see :mod:`contest.checkpoint`): while the step runs, the job
        manager calls ``targets()`` every checkpoint period (on the event loop, between the
        step's own turns) for the targets in hand and, for each, the JSON-able data its pause
        would save; if the job's server dies, a target the checkpoint had is resumed in this
        step with that data, in :func:`~contest.stephelpers.for_each_target_with_resume`'s
        state format under ``version``, instead of entering the step again from its start.
        ``for_each_target_with_resume`` calls this itself. A no-op where nothing keeps
        checkpoints (a step run outside a job manager: its own tests, the conformance kit)."""
        if self._checkpoints is not None:
            self._checkpoints.keep(version, targets)

    def sleep(self, seconds: float) -> Coroutine[Any, Any, None]:
        """``await ctx.sleep(s)``: sleep; raises ``Cancelled`` or ``Paused`` as soon as either
        is signalled. (Returns the scope's coroutine directly: one frame fewer for each of
        possibly 100,000 sleeping targets.)"""
        return self.scope.sleep(seconds)


class PluginContext:
    """What a target manager, test fetcher or reporter gets: the job's signals and a logger.

    Acquire and release are deliberately not interrupted by cancellation (the job runner bounds
    them by their timeouts instead), but a plugin may watch ``scope`` to wrap up early.
    """

    __slots__ = ("job_id", "log", "run_id", "scope")

    def __init__(self, *, scope: Scope, job_id: int = 0, run_id: int = 0) -> None:
        self.scope = scope
        self.job_id = job_id
        self.run_id = run_id
        self.log = QuickAdapter(
            logging.getLogger("contest.plugin"), {"job_id": job_id, "run_id": run_id}
        )
