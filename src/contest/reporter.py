"""The reporter contract: judging a run, and the whole job, from its events."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

from contest.context import PluginContext
from contest.events import EventReader
from contest.paramspec import Parameters

if TYPE_CHECKING:
    from contest.status import RunStatus

__all__ = ["Reporter"]


class Reporter(abc.ABC):
    """Run reports come after every run, final reports once at the end; each returns
    ``(success, data)`` with ``data`` JSON-able. A report never changes the job's state.

    ``run_parameters`` and ``final_parameters`` declare the parameters' keys (see
    :mod:`contest.paramspec`); the job builder checks a descriptor against them first.
    ``None``: not declared."""

    run_parameters: ClassVar[Parameters | None] = None
    final_parameters: ClassVar[Parameters | None] = None

    @abc.abstractmethod
    def validate_run_parameters(self, params: Any) -> Any: ...

    @abc.abstractmethod
    def validate_final_parameters(self, params: Any) -> Any: ...

    @abc.abstractmethod
    async def run_report(
        self, ctx: PluginContext, params: Any, run_status: RunStatus, events: EventReader
    ) -> tuple[bool, Any]: ...

    @abc.abstractmethod
    async def final_report(
        self,
        ctx: PluginContext,
        params: Any,
        run_statuses: list[RunStatus],
        events: EventReader,
    ) -> tuple[bool, Any]: ...
