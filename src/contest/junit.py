"""A job's outcome as JUnit XML, the test report format every CI system reads (Jenkins, GitLab,
GitHub's reporters): ``contest run --junit FILE`` and ``contestcli report ID --junit``.

The shape, from a :class:`~contest.summary.JobSummary`:

* one ``<testsuite>`` per test and run (``name`` "TEST run N"), with one ``<testcase>`` per
  target (``classname`` the test, ``name`` the target ID, ``time`` from its first step's
  ``TargetIn`` to its last ``TargetOut``/``TargetErr``);
* a failed target has a ``<failure>``: ``type`` the step label, ``message`` the error, and as
  text the step, the error and the end of the step's output;
* a target that entered a step and never left it (the job was cancelled or failed) has an
  ``<error>``; a target that never ran (or, for a job still running, has not finished yet) is
  ``<skipped>``;
* an acquisition that failed is a ``<testcase name="acquire targets">`` with an ``<error>``;
* the reporters' verdicts are a ``<testsuite name="reports">``, one ``<testcase>`` per report,
  and a job that failed or was cancelled adds a ``<testsuite name="job">`` saying why: a CI
  system then fails the build for the same reasons ``contest run`` exits 1.

The document is valid against the JUnit schema of Jenkins' xunit plugin (the suite checks it).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any

from contest.summary import (
    FAILED,
    FINAL_STATES,
    NOT_FINISHED,
    NOT_RUN,
    JobSummary,
    TestOutcome,
    report_text,
)

# characters XML 1.0 cannot carry at all (control characters but tab, newline, carriage return)
_INVALID = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF])


def _text(value: Any) -> str:
    """A string fit for XML: characters it cannot hold are dropped (a step's output may hold
    any byte)."""
    return str(value).translate(_INVALID)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"  # the schema allows at most three decimals


def _timestamp(value: float | None) -> str | None:
    if value is None:
        return None
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _suite(parent: ET.Element, name: str, **attrs: str | None) -> ET.Element:
    suite = ET.SubElement(parent, "testsuite", name=_text(name))
    for key, value in attrs.items():
        if value is not None:
            suite.set(key, value)
    return suite


def _case(suite: ET.Element, classname: str, name: str, seconds: float = 0.0) -> ET.Element:
    return ET.SubElement(
        suite, "testcase", classname=_text(classname), name=_text(name), time=_seconds(seconds)
    )


def _child(case: ET.Element, tag: str, message: str, kind: str, body: str = "") -> None:
    el = ET.SubElement(case, tag, message=_text(message), type=_text(kind))
    if body:
        el.text = _text(body)


def _count(suite: ET.Element, tag: str) -> int:
    return sum(1 for case in suite.iter("testcase") if case.find(tag) is not None)


def _finish(suite: ET.Element) -> None:
    suite.set("tests", str(len(suite.findall("testcase"))))
    suite.set("failures", str(_count(suite, "failure")))
    suite.set("errors", str(_count(suite, "error")))
    suite.set("skipped", str(_count(suite, "skipped")))


def _test_suite(root: ET.Element, s: JobSummary, t: TestOutcome, index: int) -> None:
    starts = [o.start for o in t.targets if o.start is not None]
    ends = [o.end for o in t.targets if o.end is not None]
    suite = _suite(
        root,
        f"{t.test} run {t.run_id}",
        id=str(index),
        package=f"job{s.job_id}",
        timestamp=_timestamp(min(starts) if starts else None),
        time=_seconds(max(ends) - min(starts)) if starts and ends else None,
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (("job_id", s.job_id), ("job_name", s.name), ("run_id", t.run_id),
                       ("job_state", s.state)):  # fmt: skip
        ET.SubElement(props, "property", name=f"contest.{key}", value=_text(value))
    for err in t.acquire_errors:
        case = _case(suite, t.test, "acquire targets")
        _child(case, "error", err, "acquire")
    for err in t.step_errors:
        case = _case(suite, t.test, "step error")
        _child(case, "error", err, "step")
    job_over = s.state in FINAL_STATES
    for o in t.targets:
        case = _case(suite, t.test, o.target, o.seconds)
        if o.verdict == FAILED:
            body = f"step {o.step}: {o.error}"
            if o.output:
                body += "\n\nlast lines of the output:\n" + "\n".join(o.output)
            _child(case, "failure", o.error, o.step, body)
        elif o.verdict == NOT_FINISHED:
            why = s.reason or s.state
            if job_over:
                _child(case, "error", f'did not finish step "{o.step}": {why}', "not finished")
            else:
                _child(case, "skipped", f'not finished yet: in step "{o.step}" ({s.state})',
                       "not finished")  # fmt: skip
        elif o.verdict == NOT_RUN:
            _child(case, "skipped", "never entered a step", "not run")
    _finish(suite)


def render(s: JobSummary) -> bytes:
    """The JUnit XML document of a job summary (UTF-8, with its XML declaration)."""
    root = ET.Element("testsuites", name=_text(f"job {s.job_id} {s.name}".rstrip()))
    for index, t in enumerate(s.tests):
        _test_suite(root, s, t, index)
    if s.reports:
        suite = _suite(root, "reports", id=str(len(s.tests)), package=f"job{s.job_id}")
        for r in s.reports:
            where = f"run {r.run_id}" if r.run_id else "final"
            case = _case(suite, "reports", f"{r.reporter} ({where})")
            if not r.success:
                text = report_text(r.data)
                _child(case, "failure", text or "the report did not succeed", r.reporter, text)
        _finish(suite)
    if s.state in FINAL_STATES and s.state != "JobStateCompleted":
        suite = _suite(root, "job", id=str(len(s.tests) + 1), package=f"job{s.job_id}")
        case = _case(suite, "job", f"job {s.job_id}")
        _child(case, "error", s.reason or s.state, s.state)
        _finish(suite)
    for key in ("tests", "failures", "errors"):
        root.set(key, str(sum(int(suite.get(key, "0")) for suite in root)))
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
