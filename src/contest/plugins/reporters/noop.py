"""``noop``: a reporter that accepts any parameters, looks at nothing, and always succeeds.

Its texts are ConTest's (``I did nothing``; ``I did nothing at the end, all good``): scripts that
read ConTest's reports find the same data here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from contest.context import PluginContext
from contest.events import EventReader
from contest.paramspec import Kind, Parameter, Parameters
from contest.reporter import Reporter

if TYPE_CHECKING:
    from contest.status import RunStatus

NAME = "noop"
RUN_REPORT: Final = "I did nothing"
FINAL_REPORT: Final = "I did nothing at the end, all good"


class Noop(Reporter):
    """Succeeds every run and at the end, whatever happened."""

    name = NAME
    run_parameters = final_parameters = Parameters(
        others=Parameter("<any>", Kind.JSON, doc="ignored"), go_struct=True
    )

    def validate_run_parameters(self, params: Any) -> None:
        return None

    def validate_final_parameters(self, params: Any) -> None:
        return None

    async def run_report(
        self, ctx: PluginContext, params: Any, run_status: RunStatus, events: EventReader
    ) -> tuple[bool, Any]:
        return True, RUN_REPORT

    async def final_report(
        self,
        ctx: PluginContext,
        params: Any,
        run_statuses: list[RunStatus],
        events: EventReader,
    ) -> tuple[bool, Any]:
        return True, FINAL_REPORT


def new() -> Noop:
    return Noop()


def load() -> tuple[str, Callable[[], Reporter]]:
    """Entry point of the ``contest.reporters`` group."""
    return NAME, new
