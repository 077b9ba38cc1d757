"""Reporters: noop and TargetSuccess (ConTest's
``plugins/reporters/targetsuccess/targetsuccess.go``), with the final report we implement."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contest import events as ev
from contest.comparison import ComparisonType
from contest.context import PluginContext
from contest.errors import ContestError, ParameterError
from contest.plugins.reporters import noop, targetsuccess
from contest.plugins.reporters.noop import Noop
from contest.plugins.reporters.targetsuccess import ReportError, TargetSuccess
from contest.signals import Scope
from contest.status import RunStatus, TargetStatus, TestStatus
from contest.target import Target
from contest.testing.paths import samples_dir

SAMPLES = samples_dir()


class NoEvents:
    async def test_events(self, query: ev.TestEventQuery) -> list[ev.TestEvent]:
        return []

    async def framework_events(self, query: ev.FrameworkEventQuery) -> list[ev.FrameworkEvent]:
        return []


EVENTS = NoEvents()


@pytest.fixture
def ctx() -> PluginContext:
    return PluginContext(scope=Scope(), job_id=1, run_id=1)


def tstatus(name: str, *errors: str, run_id: int = 1) -> TestStatus:
    """A test whose targets T0, T1... ended with these errors ("" = passed)."""
    return TestStatus(
        job_id=1,
        run_id=run_id,
        test_name=name,
        target_statuses=[
            TargetStatus(1, run_id, name, "", "", Target(f"T{i}"), error=e)
            for i, e in enumerate(errors)
        ],
    )


def run(run_id: int, *tests: TestStatus) -> RunStatus:
    return RunStatus(job_id=1, run_id=run_id, test_statuses=list(tests))


# --- noop ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [None, {}, {"x": 1}, [1, 2], "anything", 5])
def test_noop_accepts_any_parameters(params: Any) -> None:
    assert Noop().validate_run_parameters(params) is None  # type: ignore[func-returns-value]
    assert Noop().validate_final_parameters(params) is None  # type: ignore[func-returns-value]


async def test_noop_reports(ctx: PluginContext) -> None:
    assert await Noop().run_report(ctx, None, run(1, tstatus("t", "boom")), EVENTS) == (
        True,
        "I did nothing",
    )
    assert await Noop().final_report(ctx, None, [run(1, tstatus("t", ""))], EVENTS) == (
        True,
        "I did nothing at the end, all good",
    )


async def test_noop_fails_when_no_target_was_tested(ctx: PluginContext) -> None:
    # a run whose acquisition failed has one status without a target (the acquisition error):
    # a report must not call it a success (ConTest's noop does; docs/migrating-from-contest.md)
    failed_acquire = TestStatus(
        job_id=1,
        run_id=1,
        test_name="t",
        target_statuses=[TargetStatus(1, 1, "t", "", "", Target(""), error="busy")],
    )
    nothing = (False, "no target was tested")
    assert await Noop().run_report(ctx, None, run(1, failed_acquire), EVENTS) == nothing
    assert await Noop().run_report(ctx, None, run(1, tstatus("t")), EVENTS) == nothing
    assert await Noop().final_report(ctx, None, [], EVENTS) == nothing
    assert await Noop().final_report(ctx, None, [run(1, failed_acquire)], EVENTS) == nothing


async def test_target_success_fails_when_no_target_was_tested(ctx: PluginContext) -> None:
    failed_acquire = TestStatus(
        job_id=1,
        run_id=1,
        test_name="t",
        target_statuses=[TargetStatus(1, 1, "t", "", "", Target(""), error="busy")],
    )
    ts = TargetSuccess()
    for expr in (">0%", ">=0%", "=100%"):
        params = ts.validate_run_parameters({"SuccessExpression": expr})
        got = await _run_report_or_error(ts, ctx, params, run(1, failed_acquire))
        assert got is False, expr


async def _run_report_or_error(
    ts: TargetSuccess, ctx: PluginContext, params: Any, status: RunStatus
) -> bool:
    """The success the job runner stores: a ContestError is a failed report."""
    try:
        success, _ = await ts.run_report(ctx, params, status, EVENTS)
    except ContestError:
        return False
    return success


# --- TargetSuccess: parameters ------------------------------------------------------------------


def test_targetsuccess_sample_parameters() -> None:
    for name in ("start.json", "start-literal.json"):
        desc = json.loads((SAMPLES / "lb/cmds/clients/contestcli/descriptors" / name).read_text())
        params = desc["Reporting"]["RunReporters"][0]["Parameters"]
        rp = TargetSuccess().validate_run_parameters(params)
        assert str(rp.success_expression) == ">80%"
        assert rp.success_expression.type is ComparisonType.PERCENTAGE


def test_targetsuccess_keys_are_case_insensitive() -> None:
    rp = TargetSuccess().validate_run_parameters('{"successexpression": "=100%", "x": 1}')
    assert str(rp.success_expression) == "=100%"
    fp = TargetSuccess().validate_final_parameters({"AVERAGESUCCESSEXPRESSION": ">=2"})
    assert str(fp.average_success_expression) == ">=2"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            None,
            "SuccessExpression: could not parse success expression: expression  not supported",
        ),
        (
            {"AverageSuccessExpression": ">80%"},
            "SuccessExpression: could not parse success expression: expression  not supported",
        ),
        (
            {"SuccessExpression": "80%"},
            "SuccessExpression: could not parse success expression: expression 80% not supported",
        ),
        (
            {"SuccessExpression": ">eighty%"},
            "SuccessExpression: could not parse success expression: could not extract percentage "
            'from expression: strconv.ParseFloat: parsing "eighty": invalid syntax',
        ),
        (
            {"SuccessExpression": 80},
            "SuccessExpression: json: cannot unmarshal number 80 into Go struct field "
            "RunParameters.SuccessExpression of type string",
        ),
        ([], "json: cannot unmarshal array into Go value of type targetsuccess.RunParameters"),
    ],
)
def test_targetsuccess_invalid_run_parameters(params: Any, message: str) -> None:
    with pytest.raises(ParameterError) as info:
        TargetSuccess().validate_run_parameters(params)
    assert str(info.value) == message


def test_targetsuccess_invalid_final_parameters() -> None:
    with pytest.raises(ParameterError) as info:
        TargetSuccess().validate_final_parameters({"SuccessExpression": ">80%"})
    assert str(info.value) == (
        "AverageSuccessExpression: could not parse average success expression: "
        "expression  not supported"
    )


# --- TargetSuccess: run reports -----------------------------------------------------------------


async def report(ctx: PluginContext, expr: str, status: RunStatus) -> tuple[bool, list[str]]:
    ts = TargetSuccess()
    return await ts.run_report(
        ctx, ts.validate_run_parameters({"SuccessExpression": expr}), status, EVENTS
    )


async def test_run_report_all_pass(ctx: PluginContext) -> None:
    assert await report(ctx, "=100%", run(1, tstatus("T", "", ""))) == (
        True,
        ["Test T passes success criteria: 100.00% = 100.00%"],
    )


async def test_run_report_fails_if_any_test_fails(ctx: PluginContext) -> None:
    status = run(1, tstatus("A", "", "x"), tstatus("B", "", "", "", "y"))
    assert await report(ctx, ">=75%", status) == (
        False,
        [
            "Test A does not pass success criteria: 50.00% is not >= 75.00%",
            "Test B passes success criteria: 75.00% >= 75.00%",
        ],
    )


async def test_run_report_integration_expression(ctx: PluginContext) -> None:
    # the jobmanager integration descriptors use ">0%": one passing target is enough
    assert await report(ctx, ">0%", run(1, tstatus("T", "e", ""))) == (
        True,
        ["Test T passes success criteria: 50.00% > 0.00%"],
    )
    assert await report(ctx, ">0%", run(1, tstatus("T", "e", "e"))) == (
        False,
        ["Test T does not pass success criteria: 0.00% is not > 0.00%"],
    )


async def test_run_report_value_mode(ctx: PluginContext) -> None:
    assert await report(ctx, ">=2", run(1, tstatus("T", "", "", "e"))) == (
        True,
        ["Test T passes success criteria: 2.00 >= 2.00"],
    )


async def test_run_report_zero_targets(ctx: PluginContext) -> None:
    with pytest.raises(ReportError) as info:
        await report(ctx, ">80%", run(1, tstatus("A", ""), tstatus("Empty")))
    assert str(info.value) == "overall count of success and failures is zero for test Empty"
    assert isinstance(info.value, ContestError)  # a failed report, not a crashed job


async def test_run_report_no_tests(ctx: PluginContext) -> None:
    assert await report(ctx, ">80%", run(1)) == (True, [])


async def test_run_report_validates_raw_parameters(ctx: PluginContext) -> None:
    got = await TargetSuccess().run_report(
        ctx, {"SuccessExpression": "<1"}, run(1, tstatus("T", "e")), EVENTS
    )
    assert got == (True, ["Test T passes success criteria: 0.00 < 1.00"])


# --- TargetSuccess: final report (ours; ConTest's always errors) --------------------------------


async def final(ctx: PluginContext, expr: str, runs: list[RunStatus]) -> tuple[bool, list[str]]:
    ts = TargetSuccess()
    params = ts.validate_final_parameters({"AverageSuccessExpression": expr})
    return await ts.final_report(ctx, params, runs, EVENTS)


async def test_final_report_percentage_over_all_runs(ctx: PluginContext) -> None:
    runs = [
        run(1, tstatus("A", "", "", run_id=1), tstatus("B", "", run_id=1)),
        run(2, tstatus("A", "", "e", run_id=2), tstatus("B", "e", run_id=2)),
        run(3, tstatus("A", "", "", run_id=3), tstatus("B", "e", run_id=3)),
    ]
    assert await final(ctx, ">=80%", runs) == (
        False,
        [
            "Test A passes average success criteria over 3 runs: 83.33% >= 80.00%",
            "Test B does not pass average success criteria over 3 runs: 33.33% is not >= 80.00%",
        ],
    )
    assert (await final(ctx, ">30%", runs))[0] is True


async def test_final_report_weighs_every_target_the_same(ctx: PluginContext) -> None:
    runs = [run(1, tstatus("A", "", "", "", "")), run(2, tstatus("A", "e", run_id=2))]
    # 4 of 5 targets passed: 80%, although the per-run rates were 100% and 0%
    assert await final(ctx, "=80%", runs) == (
        True,
        ["Test A passes average success criteria over 2 runs: 80.00% = 80.00%"],
    )


async def test_final_report_value_mode_is_the_average_count(ctx: PluginContext) -> None:
    runs = [run(1, tstatus("A", "", "")), run(2, tstatus("A", "", "e", run_id=2))]
    assert await final(ctx, ">=2", runs) == (
        False,
        ["Test A does not pass average success criteria over 2 runs: 1.50 is not >= 2.00"],
    )
    assert await final(ctx, ">1", runs[:1]) == (
        True,
        ["Test A passes average success criteria over 1 run: 2.00 > 1.00"],
    )


async def test_final_report_matches_tests_by_position_and_name(ctx: PluginContext) -> None:
    runs = [
        run(1, tstatus("A", ""), tstatus("A", "e")),
        run(2, tstatus("A", ""), tstatus("A", "e")),
    ]
    assert await final(ctx, "=100%", runs) == (
        False,
        [
            "Test A passes average success criteria over 2 runs: 100.00% = 100.00%",
            "Test A does not pass average success criteria over 2 runs: 0.00% is not = 100.00%",
        ],
    )


async def test_final_report_errors(ctx: PluginContext) -> None:
    with pytest.raises(ReportError, match=r"^no runs to report on$"):
        await final(ctx, ">1%", [])
    with pytest.raises(ReportError) as info:
        await final(ctx, ">1%", [run(1, tstatus("E")), run(2, tstatus("E"))])
    assert str(info.value) == "overall count of success and failures is zero for test E"


async def test_final_report_counts_runs_with_no_targets(ctx: PluginContext) -> None:
    runs = [run(1, tstatus("A", "", "")), run(2, tstatus("A"))]
    assert await final(ctx, ">=1", runs) == (
        True,
        ["Test A passes average success criteria over 2 runs: 1.00 >= 1.00"],
    )


# --- entry points -------------------------------------------------------------------------------


def test_load() -> None:
    assert targetsuccess.load()[0] == "TargetSuccess"
    assert isinstance(targetsuccess.load()[1](), TargetSuccess)
    assert noop.load()[0] == "noop"
    assert isinstance(noop.load()[1](), Noop)
