"""``TargetSuccess``: a test passes when enough of its targets passed.

Run reporter parameters: ``{"SuccessExpression": ">=80%"}`` (a comparison expression, see
:mod:`contest.comparison`; required). After every run, each test of the run is judged on its
targets: a target whose status carries an error failed, the others passed. The run succeeds only if
every test passes. The data is one line per test, ConTest's texts::

    Test <name> passes success criteria: 100.00% = 100.00%
    Test <name> does not pass success criteria: 50.00% is not > 80.00%

A test with no targets at all makes the report fail ("overall count of success and failures is
zero for test <name>"), as in ConTest; so does a test whose targets were never acquired (its only
status is the acquisition's error, which ConTest counts as one failed target: an expression such
as ``>=0%`` would then pass a test that tested nothing). A run without tests succeeds with an
empty list (ConTest's data is then ``null``; a list is what readers of the data expect).

Final reporter parameters: ``{"AverageSuccessExpression": ">=80%"}``. ConTest validates them and
then always fails the final report ("final reporting not implemented yet in TargetSuccess"). We
decided to do what a user writing that expression expects instead: judge each test on its targets
over **all runs**. In percentage mode the left-hand side is the share of passed targets over all
runs (every target of every run weighs the same); in value mode it is the average number of
passed targets per run. The job succeeds if every test passes; the data is one line per test::

    Test <name> passes average success criteria over 3 runs: 83.33% >= 80.00%
    Test <name> does not pass average success criteria over 2 runs: 1.50 is not >= 2.00

Tests are matched across runs by their position in the run and their name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from contest.comparison import ComparisonError, ComparisonType, Expression, parse_expression
from contest.context import PluginContext
from contest.errors import ContestError, ParameterError
from contest.events import EventReader
from contest.golang.unmarshal import GoStruct
from contest.paramspec import Parameter, Parameters
from contest.reporter import Reporter

if TYPE_CHECKING:
    from contest.status import RunStatus, TestStatus

NAME = "TargetSuccess"


class ReportError(ContestError):
    """The report could not be computed; the job runner stores it as failed, without data."""


@dataclass(frozen=True)
class RunParameters:
    success_expression: Expression


@dataclass(frozen=True)
class FinalParameters:
    average_success_expression: Expression


def _expression(params: Any, gotype: str, field: str, what: str) -> Expression:
    text = GoStruct(params, gotype).string(field)
    try:
        return parse_expression(text)
    except ComparisonError as exc:
        raise ParameterError(f"{field}: could not parse {what}: {exc}") from None


def count_targets(test: TestStatus) -> tuple[int, int]:
    """``(passed, total)`` over the test's target statuses: a status with an error failed.
    ``(0, 0)`` when no target was acquired (the statuses are acquisition errors only)."""
    if not any(ts.target.id for ts in test.target_statuses):
        return 0, 0
    total = len(test.target_statuses)
    failed = sum(1 for ts in test.target_statuses if ts.error != "")
    return total - failed, total


class TargetSuccess(Reporter):
    """Judges tests by the share (or number) of their targets that passed."""

    name = NAME
    run_parameters = Parameters(
        Parameter(
            "SuccessExpression",
            required=True,
            doc='a comparison of the passed targets: ">=80%", "=100%", ">2"',
        ),
        go_struct=True,
    )
    final_parameters = Parameters(
        Parameter(
            "AverageSuccessExpression",
            required=True,
            doc="the same, over all runs (the share over all runs, or the average count)",
        ),
        go_struct=True,
    )

    def validate_run_parameters(self, params: Any) -> RunParameters:
        return RunParameters(
            _expression(
                params, "targetsuccess.RunParameters", "SuccessExpression", "success expression"
            )
        )

    def validate_final_parameters(self, params: Any) -> FinalParameters:
        return FinalParameters(
            _expression(
                params,
                "targetsuccess.FinalParameters",
                "AverageSuccessExpression",
                "average success expression",
            )
        )

    async def run_report(
        self, ctx: PluginContext, params: Any, run_status: RunStatus, events: EventReader
    ) -> tuple[bool, list[str]]:
        rp = params
        if not isinstance(rp, RunParameters):
            rp = self.validate_run_parameters(params)
        expr = rp.success_expression
        run_success = True
        reports: list[str] = []
        for test in run_status.test_statuses:
            success, total = count_targets(test)
            if total == 0:
                raise ReportError(
                    f"overall count of success and failures is zero for test {test.test_name}"
                )
            try:
                result = expr.evaluate_success(success, total)
            except ComparisonError as exc:
                raise ReportError(
                    f"error while calculating run report for test {test.test_name}: {exc}"
                ) from None
            if result.passed:
                reports.append(f"Test {test.test_name} passes success criteria: {result.expr}")
            else:
                run_success = False
                reports.append(
                    f"Test {test.test_name} does not pass success criteria: {result.expr}"
                )
        return run_success, reports

    async def final_report(
        self,
        ctx: PluginContext,
        params: Any,
        run_statuses: list[RunStatus],
        events: EventReader,
    ) -> tuple[bool, list[str]]:
        fp = params
        if not isinstance(fp, FinalParameters):
            fp = self.validate_final_parameters(params)
        expr = fp.average_success_expression
        if not run_statuses:
            raise ReportError("no runs to report on")
        # (position, name) -> [passed, total, runs]
        tally: dict[tuple[int, str], list[int]] = {}
        for run in run_statuses:
            for position, test in enumerate(run.test_statuses):
                success, total = count_targets(test)
                counts = tally.setdefault((position, test.test_name), [0, 0, 0])
                counts[0] += success
                counts[1] += total
                counts[2] += 1
        job_success = True
        reports: list[str] = []
        for (_, name), (success, total, runs) in tally.items():
            if total == 0:
                raise ReportError(f"overall count of success and failures is zero for test {name}")
            if expr.type is ComparisonType.PERCENTAGE:
                result = expr.evaluate(success / total * 100)
            else:
                result = expr.evaluate(success / runs)
            over = f"over {runs} run{'s' if runs != 1 else ''}"
            if result.passed:
                reports.append(f"Test {name} passes average success criteria {over}: {result.expr}")
            else:
                job_success = False
                reports.append(
                    f"Test {name} does not pass average success criteria {over}: {result.expr}"
                )
        return job_success, reports


def new() -> TargetSuccess:
    return TargetSuccess()


def load() -> tuple[str, Callable[[], Reporter]]:
    """Entry point of the ``contest.reporters`` group."""
    return NAME, new
