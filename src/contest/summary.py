"""What happened to a job, for a person: per run and test, which targets failed, in which step,
why, and the end of that step's output; counts of passed, failed and not run; the reports'
verdicts; one line saying why the job did not succeed.

Everything is read from ConTest's status document (the ``Status`` of ``/status``, or
:meth:`JobManager.status`), so ``contestcli`` can summarise a job of any server that speaks
ConTest's API, and ``contest run`` the job it just ran. :mod:`contest.junit` writes the same
outcomes as JUnit XML.

A target's verdict in a test, from its statuses in the test's steps, in order:

* *failed*: a step reported an error for it (the first such step is named);
* *passed*: it left every step without an error;
* *not finished*: it entered a step and never left it, or passed some steps and never entered
  the next (the job was cancelled, paused, or is still running), or the job ended while it was
  inside a step (the ``TargetErr`` of :func:`contest.events.closing_error`); the step is named;
* *not run*: acquired, but it never entered a step.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contest.events import is_closing_error
from contest.golang.time import parse_go_time

PASSED = "passed"
FAILED = "failed"
NOT_FINISHED = "not finished"
NOT_RUN = "not run"

COMPLETED = "JobStateCompleted"
FINAL_STATES = frozenset(
    {"JobStateCompleted", "JobStateFailed", "JobStateCancelled", "JobStateCancellationFailed"}
)

OUTPUT_LINES = 10  # lines of a failed step's output shown per target
LINE_WIDTH = 200  # a longer output line is cut (a binary blob would fill the screen)
MAX_TARGETS = 20  # failed (or unfinished) targets listed per test before "... and N more"


@dataclass
class TargetOutcome:
    target: str
    verdict: str  # PASSED, FAILED, NOT_FINISHED or NOT_RUN
    step: str = ""  # where it failed or stopped
    error: str = ""
    output: list[str] = field(default_factory=list)  # the end of that step's output
    start: float | None = None  # entered its first step
    end: float | None = None  # left its last step

    @property
    def seconds(self) -> float:
        if self.start is None or self.end is None:
            return 0.0
        return max(self.end - self.start, 0.0)


@dataclass
class TestOutcome:
    __test__ = False

    run_id: int
    test: str
    steps: list[str] = field(default_factory=list)  # step labels, in order
    targets: list[TargetOutcome] = field(default_factory=list)
    acquire_errors: list[str] = field(default_factory=list)
    step_errors: list[str] = field(default_factory=list)  # a step misbehaved (TestError)

    def count(self, verdict: str) -> int:
        return sum(1 for t in self.targets if t.verdict == verdict)


@dataclass
class ReportVerdict:
    run_id: int  # 0: a final report
    reporter: str
    success: bool
    data: Any


@dataclass
class JobSummary:
    job_id: int
    name: str
    state: str
    reason: str  # why the job did not succeed ("" when it did)
    succeeded: bool
    tests: list[TestOutcome] = field(default_factory=list)
    reports: list[ReportVerdict] = field(default_factory=list)
    start: float | None = None
    end: float | None = None

    def to_json_obj(self) -> dict[str, Any]:
        """The summary as JSON (``--json``): the same facts, for scripts."""
        return {
            "JobID": self.job_id,
            "Name": self.name,
            "State": self.state,
            "Succeeded": self.succeeded,
            "Reason": self.reason,
            "Tests": [
                {
                    "RunID": t.run_id,
                    "TestName": t.test,
                    "Passed": t.count(PASSED),
                    "Failed": t.count(FAILED),
                    "NotFinished": t.count(NOT_FINISHED),
                    "NotRun": t.count(NOT_RUN),
                    "AcquireErrors": t.acquire_errors,
                    "StepErrors": t.step_errors,
                    "Targets": [
                        {
                            "Target": o.target,
                            "Verdict": o.verdict,
                            "Step": o.step,
                            "Error": o.error,
                            "Output": o.output,
                        }
                        for o in t.targets
                        if o.verdict != PASSED
                    ],
                }
                for t in self.tests
            ],
            "Reports": [
                {
                    "RunID": r.run_id,
                    "Reporter": r.reporter,
                    "Success": r.success,
                    "Data": r.data,
                }
                for r in self.reports
            ],
        }


# --- reading the status document ----------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _target_id(status: dict[str, Any]) -> str:
    return str(_dict(status.get("Target")).get("ID", ""))


def output_lines(events: Iterable[Any], lines: int = OUTPUT_LINES) -> list[str]:
    """The last ``lines`` lines of what a step's events of one target say they printed: every
    payload with a ``Msg`` text (``CmdStdout``, ``CmdStderr``, ``SSHCmdStdout``...), in order."""
    text = "".join(
        payload["Msg"]
        for ev in events
        if isinstance(payload := _dict(_dict(ev).get("Data")).get("Payload"), dict)
        and isinstance(payload.get("Msg"), str)
    )
    out = [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
    return [line if len(line) <= LINE_WIDTH else line[: LINE_WIDTH - 3] + "..." for line in out]


def _test_outcome(run_id: int, test: dict[str, Any]) -> TestOutcome:
    steps = [_dict(s) for s in _list(test.get("TestStepStatuses"))]
    labels = [str(s.get("TestStepLabel", "")) for s in steps]
    out = TestOutcome(run_id, str(test.get("TestName", "")), labels)
    # per step: target ID -> its status there
    by_step = [
        {_target_id(ts): ts for ts in (_dict(x) for x in _list(s.get("TargetStatuses")))}
        for s in steps
    ]
    for s in steps:
        for ev in _list(s.get("Events")):
            data = _dict(_dict(ev).get("Data"))
            if data.get("EventName") == "TestError":
                out.step_errors.append(f"step {s.get('TestStepLabel', '')}: {data.get('Payload')}")
    order: dict[str, None] = {}
    for ts in (_dict(x) for x in _list(test.get("TargetStatuses"))):
        if ts.get("Error") and not ts.get("TestStepLabel"):
            out.acquire_errors.append(str(ts["Error"]))
        elif _target_id(ts):
            order[_target_id(ts)] = None
    for statuses in by_step:  # targets a step saw that the test does not list (a resumed job)
        for tid in statuses:
            order.setdefault(tid, None)
    for tid in order:
        out.targets.append(_target_outcome(tid, out.steps, by_step))
    return out


def _target_outcome(
    tid: str, labels: Sequence[str], by_step: Sequence[dict[str, dict[str, Any]]]
) -> TargetOutcome:
    outcome = TargetOutcome(tid, NOT_RUN)
    for label, statuses in zip(labels, by_step, strict=True):
        ts = statuses.get(tid)
        if ts is None:
            if outcome.start is not None:  # passed the steps before, never entered this one
                outcome.verdict, outcome.step = NOT_FINISHED, label
            return outcome
        t_in, t_out = parse_go_time(ts.get("InTime")), parse_go_time(ts.get("OutTime"))
        if outcome.start is None:
            outcome.start = t_in
        if t_out is not None:
            outcome.end = t_out
        if ts.get("Error") and is_closing_error(str(ts["Error"]), label):
            # the job ended with the target inside (our closing TargetErr): not a failure
            outcome.verdict, outcome.step = NOT_FINISHED, label
            return outcome
        if ts.get("Error"):
            outcome.verdict, outcome.step = FAILED, label
            outcome.error = str(ts["Error"])
            outcome.output = output_lines(_list(ts.get("Events")))
            return outcome
        if t_out is None:
            outcome.verdict, outcome.step = NOT_FINISHED, label
            return outcome
    outcome.verdict = PASSED if labels else NOT_RUN
    return outcome


def _reports(status: dict[str, Any]) -> list[ReportVerdict]:
    report = _dict(status.get("JobReport"))
    out = [
        ReportVerdict(int(r.get("RunID") or 0), str(r.get("ReporterName", "")),
                      bool(r.get("Success")), r.get("Data"))
        for run in _list(report.get("RunReports"))
        for r in (_dict(x) for x in _list(run))
    ]  # fmt: skip
    out += [
        ReportVerdict(0, str(r.get("ReporterName", "")), bool(r.get("Success")), r.get("Data"))
        for r in (_dict(x) for x in _list(report.get("FinalReports")))
    ]
    return out


def report_text(data: Any) -> str:
    """A report's data on one line: a list of strings (TargetSuccess's) joined, else JSON."""
    if isinstance(data, list) and all(isinstance(x, str) for x in data):
        return "; ".join(data)
    if isinstance(data, str):
        return data
    if data is None:
        return ""
    return json.dumps(data, sort_keys=True)


def summarize(job_id: int, status: dict[str, Any] | None, cancel_reason: str = "") -> JobSummary:
    """The summary of the job whose status document is ``status``; ``cancel_reason`` is what
    the ``JobStateCancelled`` event says, when the caller could read it."""
    status = _dict(status)
    state = str(status.get("State") or "JobStateUnknown")
    runs = [_dict(r) for r in _list(status.get("RunStatuses"))]
    if not runs and status.get("RunStatus"):
        runs = [_dict(status["RunStatus"])]
    tests = [
        _test_outcome(int(run.get("RunID") or 0), _dict(t))
        for run in runs
        for t in _list(run.get("TestStatuses"))
    ]
    reports = _reports(status)
    failed_reports = [r for r in reports if not r.success]
    succeeded = state == COMPLETED and not failed_reports
    return JobSummary(
        job_id=job_id,
        name=str(status.get("Name", "")),
        state=state,
        reason="" if succeeded else _reason(state, status, cancel_reason, failed_reports),
        succeeded=succeeded,
        tests=tests,
        reports=reports,
        start=parse_go_time(status.get("StartTime")),
        end=parse_go_time(status.get("EndTime")),
    )


def _reason(
    state: str, status: dict[str, Any], cancel_reason: str, failed: Sequence[ReportVerdict]
) -> str:
    if state == "JobStateFailed":
        return str(status.get("StateErrMsg") or "the job failed")
    if state in ("JobStateCancelled", "JobStateCancelling"):
        return f"cancelled: {cancel_reason}" if cancel_reason else "cancelled"
    if state == "JobStateCancellationFailed":
        return "cancellation failed: a step did not stop when cancelled"
    if state == "JobStatePaused":
        return "paused: a server with this server ID resumes it when it starts"
    if state == "JobStatePauseFailed":
        return str(status.get("StateErrMsg") or "pausing failed")
    if state == COMPLETED and failed:
        r = failed[0]
        where = f"run {r.run_id}" if r.run_id else "final"
        more = f" (and {len(failed) - 1} more failed reports)" if len(failed) > 1 else ""
        return f"report {r.reporter} ({where}) failed: {report_text(r.data)}{more}"
    if state == COMPLETED:
        return ""
    return f"not finished yet ({state})"


# --- text ----------------------------------------------------------------------------------------


def _headline(s: JobSummary) -> str:
    name = f' "{s.name}"' if s.name else ""
    took = ""
    if s.start is not None and s.end is not None and s.state in FINAL_STATES:
        took = f" after {s.end - s.start:.1f}s"
    if s.succeeded:
        return f"Job {s.job_id}{name} succeeded: completed{took}, every report succeeded"
    if s.state == COMPLETED:
        return f"Job {s.job_id}{name} did not succeed: completed{took}, but a report failed"
    verb = {
        "JobStateFailed": "failed",
        "JobStateCancelled": "was cancelled",
        "JobStateCancellationFailed": "could not be cancelled",
        "JobStateCancelling": "is being cancelled",
        "JobStatePaused": "is paused",
        "JobStatePauseFailed": "failed to pause",
        "JobStateStarted": "is running",
    }.get(s.state, f"is {s.state}")
    return f"Job {s.job_id}{name} {verb}{took}"


def render_text(s: JobSummary, *, max_targets: int = MAX_TARGETS) -> str:
    """The summary as lines for a terminal or a CI log (plain text, no colours)."""
    lines = [_headline(s)]
    if s.reason:
        lines.append(f"  reason: {s.reason}")
    for t in s.tests:
        counts = [f"{t.count(PASSED)} passed", f"{t.count(FAILED)} failed"]
        if t.count(NOT_FINISHED):
            counts.append(f"{t.count(NOT_FINISHED)} not finished")
        counts.append(f"{t.count(NOT_RUN)} not run")
        lines.append("")
        lines.append(f'Run {t.run_id}, test "{t.test}": {len(t.targets)} targets: '
                     + ", ".join(counts))  # fmt: skip
        for err in t.acquire_errors:
            lines.append(f"  acquiring targets failed: {err}")
        for err in t.step_errors:
            lines.append(f"  {err}")
        shown = [o for o in t.targets if o.verdict in (FAILED, NOT_FINISHED)]
        for o in shown[:max_targets]:
            if o.verdict == FAILED:
                lines.append(f'  FAILED {o.target} in step "{o.step}": {o.error}')
                lines.extend(f"    | {line}" for line in o.output)
            else:
                lines.append(f'  NOT FINISHED {o.target} in step "{o.step}"')
        if len(shown) > max_targets:
            lines.append(
                f"  ... and {len(shown) - max_targets} more (contestcli events {s.job_id} "
                "--name TargetErr lists every failure)"
            )
    if s.reports:
        lines.append("")
        lines.append("Reports:")
        for r in s.reports:
            where = f"run {r.run_id}" if r.run_id else "final"
            verdict = "ok    " if r.success else "FAILED"
            text = report_text(r.data)
            lines.append(f"  {where:<7} {r.reporter:<16} {verdict} {text}".rstrip())
    return "\n".join(lines) + "\n"
