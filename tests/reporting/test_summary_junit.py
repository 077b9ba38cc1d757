"""The failure summary and JUnit XML from status documents of every shape: the verdict of each
target (failed, passed, not finished, not run), acquisition and step errors, the output's tail,
long lists cut, several runs, characters XML cannot hold; each JUnit document checked against
the JUnit schema."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from contest import junit
from contest.summary import (
    FAILED,
    NOT_FINISHED,
    NOT_RUN,
    PASSED,
    render_text,
    summarize,
)

SCHEMA = xmlschema.XMLSchema(Path(__file__).resolve().parents[1] / "data" / "junit-10.xsd")
ZERO = "0001-01-01T00:00:00Z"


def ts(target: str, label: str, t_in: str, t_out: str = ZERO, error: str = "",
       output: str | None = None) -> dict[str, Any]:  # fmt: skip
    events = None
    if output is not None:
        events = [
            {"EmitTime": t_in, "Header": {}, "Data": {"Target": {"ID": target},
             "EventName": "CmdStdout", "Payload": {"Msg": chunk}}}
            for chunk in output.split("|")
        ]  # fmt: skip
    return {"TestStepLabel": label, "Target": {"ID": target}, "InTime": t_in, "OutTime": t_out,
            "Error": error, "Events": events}  # fmt: skip


def doc(state: str, tests: list[dict[str, Any]], *, runs: int = 1, err: str = "",
        reports: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    run_statuses = [
        {"RunID": r, "TestStatuses": [dict(t, RunID=r) for t in tests]} for r in range(1, runs + 1)
    ]
    return {
        "Name": "shapes", "State": state, "StateErrMsg": err,
        "StartTime": "2026-01-01T00:00:00Z", "EndTime": "2026-01-01T00:01:00Z",
        "RunStatus": run_statuses[-1], "RunStatuses": run_statuses,
        "JobReport": {"JobID": 5, "RunReports": [reports] if reports else None,
                      "FinalReports": None},
    }  # fmt: skip


def make_test(name: str, steps: list[tuple[str, list[dict[str, Any]]]],
         targets: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    return {
        "TestName": name,
        "TestStepStatuses": [
            {"TestStepLabel": label, "Events": None, "TargetStatuses": statuses}
            for label, statuses in steps
        ],
        "TargetStatuses": targets,
    }


T0, T1, T2, T3 = (f"2026-01-01T00:00:0{i}.5Z" for i in range(4))


def shapes() -> dict[str, Any]:
    """Two steps; a target per verdict; a step error."""
    t = make_test(
        "flash",
        [
            ("write", [ts("ok", "write", T0, T1), ts("bad", "write", T0, T2, "exit status 3",
                       output="line 1\n|line 2\nline 3\n"), ts("between", "write", T0, T1),
                       ts("inside", "write", T0, T1)]),
            ("verify", [ts("ok", "verify", T1, T3), ts("inside", "verify", T2)]),
        ],
        [ts(x, "", T0) for x in ("ok", "bad", "between", "inside", "idle")],
    )  # fmt: skip
    t["TestStepStatuses"][1]["Events"] = [
        {"Data": {"EventName": "TestError", "Payload": "step verify returned early"}}
    ]
    return doc("JobStateCancelled", [t])


def test_every_verdict() -> None:
    s = summarize(5, shapes(), "pause timeout reached")
    verdicts = {o.target: (o.verdict, o.step) for o in s.tests[0].targets}
    assert verdicts == {
        "ok": (PASSED, ""),
        "bad": (FAILED, "write"),
        "between": (NOT_FINISHED, "verify"),  # passed write, never entered verify
        "inside": (NOT_FINISHED, "verify"),  # entered verify, never left
        "idle": (NOT_RUN, ""),
    }
    bad = next(o for o in s.tests[0].targets if o.target == "bad")
    assert bad.output == ["line 1", "line 2", "line 3"]
    assert bad.seconds == pytest.approx(2.0)
    assert s.reason == "cancelled: pause timeout reached" and not s.succeeded

    text = render_text(s)
    assert text.startswith('Job 5 "shapes" was cancelled after 60.0s\n')
    assert "  reason: cancelled: pause timeout reached\n" in text
    assert "5 targets: 1 passed, 1 failed, 2 not finished, 1 not run" in text
    assert '  FAILED bad in step "write": exit status 3\n    | line 1\n' in text
    assert '  NOT FINISHED inside in step "verify"' in text
    assert "  step verify: step verify returned early" in text

    root = ET.fromstring(checked(s))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["bad"].find("failure") is not None
    error = cases["inside"].find("error")
    assert error is not None
    assert error.get("message") == 'did not finish step "verify": cancelled: pause timeout reached'
    skipped = cases["idle"].find("skipped")
    assert skipped is not None and skipped.get("message") == "never entered a step"
    assert cases["step error"].find("error") is not None
    job = root.find("testsuite[@name='job']")
    assert job is not None and job.get("errors") == "1"


def test_a_target_closed_when_its_job_ended_is_not_finished() -> None:
    """The job manager's closing TargetErr (contest.events.closing_error) marks a target its
    job left inside a step when it ended: not finished, like one never closed; an error that
    merely mentions another step is a failure."""
    closed = 'job 5 was cancelled (stopped by a stop request) while the target was in step "verify"'
    other = 'job 5 was cancelled while the target was in step "write"'
    t = make_test(
        "flash",
        [
            ("write", [ts("closed", "write", T0, T1), ts("odd", "write", T0, T1)]),
            ("verify", [ts("closed", "verify", T1, T2, closed),
                        ts("odd", "verify", T1, T2, other)]),
        ],
        [ts(x, "", T0) for x in ("closed", "odd")],
    )  # fmt: skip
    s = summarize(5, doc("JobStateCancelled", [t]), "stopped by a stop request")
    verdicts = {o.target: (o.verdict, o.step) for o in s.tests[0].targets}
    assert verdicts == {"closed": (NOT_FINISHED, "verify"), "odd": (FAILED, "verify")}
    assert '  NOT FINISHED closed in step "verify"' in render_text(s)
    root = ET.fromstring(checked(s))
    case = next(c for c in root.iter("testcase") if c.get("name") == "closed")
    error = case.find("error")
    assert error is not None and error.get("type") == "not finished"


def checked(s: Any) -> bytes:
    data = junit.render(s)
    SCHEMA.validate(data.decode())
    return data


def test_a_running_job_skips_what_has_not_finished_yet() -> None:
    s = summarize(5, dict(shapes(), State="JobStateStarted", EndTime=None))
    assert render_text(s).startswith('Job 5 "shapes" is running\n')
    root = ET.fromstring(checked(s))
    inside = next(c for c in root.iter("testcase") if c.get("name") == "inside")
    assert inside.find("skipped") is not None  # not an error: it may still pass
    assert root.find("testsuite[@name='job']") is None


def test_acquisition_failure_and_failed_job() -> None:
    t = make_test("flash", [("write", [])], [ts("", "", T0, T0, "could not acquire targets")])
    s = summarize(5, doc("JobStateFailed", [t], err="Job 5 failed after 1s: acquire timed out"))
    assert s.reason == "Job 5 failed after 1s: acquire timed out"
    text = render_text(s)
    assert "  acquiring targets failed: could not acquire targets" in text
    assert "0 targets" in text
    root = ET.fromstring(checked(s))
    acquire = next(c for c in root.iter("testcase") if c.get("name") == "acquire targets")
    assert acquire.find("error") is not None


def test_many_failures_are_cut_and_output_lines_too() -> None:
    many = [ts(f"t{i:03d}", "s", T0, T1, "boom", output="x" * 500) for i in range(30)]
    s = summarize(5, doc("JobStateCompleted", [make_test("t", [("s", many)], [])]))
    assert s.succeeded and s.reason == ""  # completed, no report failed: a success
    text = render_text(s)
    assert text.count("  FAILED ") == 20
    assert "  ... and 10 more (contestcli events 5 --name TargetErr lists every failure)" in text
    line = next(x for x in text.splitlines() if x.startswith("    | "))
    assert len(line) == len("    | ") + 200 and line.endswith("...")


def test_several_runs_and_reports() -> None:
    t = make_test("t", [("s", [ts("a", "s", T0, T1)])], [ts("a", "", T0)])
    reports = [{"RunID": 2, "ReporterName": "TargetSuccess", "Success": False,
                "Data": ["Test t does not pass success criteria: 0% is not = 100%"]}]  # fmt: skip
    s = summarize(5, doc("JobStateCompleted", [t], runs=3, reports=reports))
    assert [x.run_id for x in s.tests] == [1, 2, 3]
    assert s.reason == (
        "report TargetSuccess (run 2) failed: Test t does not pass success criteria: 0% is not = "
        "100%"
    )
    root = ET.fromstring(checked(s))
    assert [x.get("name") for x in root.findall("testsuite")] == [
        "t run 1", "t run 2", "t run 3", "reports"
    ]  # fmt: skip
    assert root.get("tests") == "4" and root.get("failures") == "1"


def test_characters_xml_cannot_hold_are_dropped() -> None:
    weird = ts("dut\x01", "s", T0, T1, "bad \x1b[31mred\x1b[0m", output="\x00bin\x07ary\ufffe\n")
    s = summarize(5, doc("JobStateCompleted", [make_test("t\x0b", [("s", [weird])], [])]))
    root = ET.fromstring(checked(s))
    failure = root.find(".//failure")
    assert failure is not None and failure.get("message") == "bad [31mred[0m"
    assert failure.text is not None and "binary" in failure.text


def test_nothing_to_read() -> None:
    s = summarize(9, None)
    assert s.state == "JobStateUnknown" and not s.succeeded
    assert render_text(s).startswith("Job 9 is JobStateUnknown")
    checked(s)
