"""``noop``: a reporter that accepts any parameters, looks at nothing, and succeeds.

Its texts are ConTest's (``I did nothing``; ``I did nothing at the end, all good``): scripts that
read ConTest's reports find the same data here. One departure (docs/migrating-from-contest.md):
given a run in which no target was tested (or only such runs, at the end), it fails, with
``NOTHING_TESTED``: a report must never call a run that tested nothing a success.
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
NOTHING_TESTED: Final = "no target was tested"


def _tested(run_status: RunStatus) -> bool:
    """Whether any target was acquired in the run (a failed acquisition's status has no
    target ID)."""
    return any(t.target.id for ts in run_status.test_statuses for t in ts.target_statuses)


class Noop(Reporter):
    """Succeeds every run and at the end, unless no target was tested."""

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
        if not _tested(run_status):
            return False, NOTHING_TESTED
        return True, RUN_REPORT

    async def final_report(
        self,
        ctx: PluginContext,
        params: Any,
        run_statuses: list[RunStatus],
        events: EventReader,
    ) -> tuple[bool, Any]:
        if not any(_tested(rs) for rs in run_statuses):
            return False, NOTHING_TESTED
        return True, FINAL_REPORT


def new() -> Noop:
    return Noop()


def load() -> tuple[str, Callable[[], Reporter]]:
    """Entry point of the ``contest.reporters`` group."""
    return NAME, new
