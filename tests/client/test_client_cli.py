"""``contestcli`` against a scripted server (httpx's mock transport): arguments, outputs, exit
codes, ``--wait`` against a server with and without our REST progress, and the transport's
handling of answers that are not ConTest's."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from contest.client import cli
from contest.client.transport import HTTPTransport, TransportError

Handler = Callable[[httpx.Request], httpx.Response]


def envelope(type_: str, data: Any, error: str | None = None) -> httpx.Response:
    body = {"ServerID": "srv", "Type": type_, "Data": data, "Error": error}
    return httpx.Response(200, content=(json.dumps(body) + "\n").encode())


def status_doc(state: str, success: bool = True, failed_target: bool = False) -> dict[str, Any]:
    target = {
        "JobID": 7,
        "RunID": 1,
        "TestName": "t",
        "TestStepName": "Sleep",
        "TestStepLabel": "nap",
        "Target": {"ID": "T1"},
        "InTime": "2026-01-01T00:00:00Z",
        "OutTime": "2026-01-01T00:00:01Z",
        "Error": "boom" if failed_target else "",
        "Events": [],
    }
    flying = dict(target, Target={"ID": "T2"}, OutTime="0001-01-01T00:00:00Z", Error="")
    run = {
        "JobID": 7,
        "RunID": 1,
        "StartTime": "0001-01-01T00:00:00Z",
        "TestStatuses": [
            {
                "JobID": 7,
                "RunID": 1,
                "TestName": "t",
                "TestStepStatuses": [
                    {
                        "JobID": 7,
                        "RunID": 1,
                        "TestName": "t",
                        "TestStepName": "Sleep",
                        "TestStepLabel": "nap",
                        "Events": None,
                        "TargetStatuses": [target, flying],
                    }
                ],
                "TargetStatuses": [],
            }
        ],
    }
    return {
        "Name": "job",
        "State": state,
        "StateErrMsg": "",
        "StartTime": "2026-01-01T00:00:00Z",
        "EndTime": None,
        "RunStatus": run,
        "RunStatuses": [run],
        "JobReport": {
            "JobID": 7,
            "RunReports": [
                [
                    {
                        "JobID": 7,
                        "RunID": 1,
                        "ReporterName": "TargetSuccess",
                        "ReportTime": "2026-01-01T00:00:02Z",
                        "Success": success,
                        "Data": "x",
                    }
                ]
            ],
            "FinalReports": None,
        },
    }


class FakeServer:
    """Answers form verbs from a script; records the forms it got."""

    def __init__(self, states: list[str], *, rest: bool, success: bool = True) -> None:
        self.states = list(states)
        self.rest = rest
        self.success = success
        self.forms: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET":
            if not self.rest:
                return httpx.Response(400, content=b"Only POST requests are supported")
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return httpx.Response(
                200,
                json={
                    "State": state,
                    "Run": 1,
                    "Elapsed": 1.0,
                    "Steps": [
                        {"Test": "t", "Step": "nap", "InFlight": 0, "Passed": 2, "Failed": 0}
                    ],
                },
            )
        self.forms.append((path, request.content.decode()))
        if path == "/start":
            return envelope("ResponseTypeStart", {"JobID": 7})
        if path == "/status":
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return envelope("ResponseTypeStatus", {"Status": status_doc(state, self.success)})
        if path == "/version":
            return envelope("ResponseTypeVersion", {"Version": 5})
        if path == "/list":
            return envelope("ResponseTypeList", {"JobIDs": [1, 2]})
        if path == "/stop":
            return envelope("ResponseTypeStop", {}, "could not stop job: unknown job ID: 3")
        return httpx.Response(400, content=b'{"Msg":"unknown verb"}')


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_cli(
    argv: list[str], server: Handler, *, stdin: str = "", tty: bool = False
) -> tuple[int, str]:
    out: io.StringIO = Tty() if tty else io.StringIO()
    args = cli._parser().parse_intermixed_args(argv)

    def connect(addr: str) -> HTTPTransport:
        return HTTPTransport(addr, transport=httpx.MockTransport(server))

    try:
        code = cli.run(args, out, io.StringIO(stdin), connect)
    except cli.UsageError:
        code = cli.EXIT_USAGE
    return code, out.getvalue()


DESC = '{"JobName": "j", "TestDescriptors": []}'


def test_verbs_print_contests_output_and_send_its_forms() -> None:
    server = FakeServer(["JobStateCompleted"], rest=True)
    code, out = run_cli(["version"], server)
    assert code == 0
    assert out == '{\n "ServerID": "srv",\n "Data": {\n  "Version": 5\n },\n "Err": null\n}\n'
    code, out = run_cli(
        [
            "list",
            "--states",
            "JobStateStarted",
            "--states=JobStatePaused",
            "--tags",
            "a,b",
            "-r",
            "me",
        ],
        server,
    )
    assert code == 0 and json.loads(out)["Data"] == {"JobIDs": [1, 2]}
    assert server.forms[-1] == (
        "/list",
        "requestor=me&states=JobStateStarted%2CJobStatePaused&tags=a%2Cb",
    )
    code, out = run_cli(["STOP", "3"], server)  # verbs are case-insensitive
    assert code == 1 and json.loads(out)["Err"] == "could not stop job: unknown job ID: 3"
    assert server.forms[-1] == ("/stop", "jobID=3&requestor=contestcli-http")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "Missing verb"),
        (["frobnicate"], "invalid verb: 'frobnicate'"),
        (["status"], "missing job ID"),
        (["status", "0"], "it must be positive"),
        (["status", "1x"], "invalid syntax"),
        (["status", "99999999999999999999"], "value out of range"),
        (["list", "--states", "JobStateUnknown"], 'invalid job state "JobStateUnknown"'),
    ],
)
def test_usage_errors(argv: list[str], message: str) -> None:
    args = cli._parser().parse_intermixed_args(argv)
    with pytest.raises(cli.UsageError, match=message):
        cli.run(args, io.StringIO(), io.StringIO())


@pytest.mark.parametrize("rest", [True, False])
def test_wait_polls_until_the_end_and_exits_by_the_outcome(rest: bool) -> None:
    server = FakeServer(["JobStateStarted", "JobStateStarted", "JobStateCompleted"], rest=rest)
    code, out = run_cli(["start", "-w", "--poll-interval", "0.01"], server, stdin=DESC)
    assert code == 0
    start, final = [json.loads(d) for d in _docs(out)]
    assert start["Data"] == {"JobID": 7}
    assert final["Data"]["Status"]["State"] == "JobStateCompleted"

    failing = FakeServer(["JobStateCompleted"], rest=rest, success=False)
    code, _ = run_cli(["start", "-w", "--poll-interval", "0.01"], failing, stdin=DESC)
    assert code == 1
    failed = FakeServer(["JobStateFailed"], rest=rest)
    code, _ = run_cli(["start", "-w", "--poll-interval", "0.01"], failed, stdin=DESC)
    assert code == 1


def test_wait_on_a_terminal_ends_with_a_summary() -> None:
    server = FakeServer(["JobStateStarted", "JobStateCompleted"], rest=True)
    code, out = run_cli(["start", "-w", "--poll-interval", "0.01"], server, stdin=DESC, tty=True)
    assert code == 0
    assert "nap" in out and "passed" in out  # the live table
    summary = out[out.index("Job 7") :]
    assert summary.startswith('Job 7 "job" succeeded: completed, every report succeeded')
    assert "run 1   TargetSuccess    ok" in summary


def test_wait_off_a_terminal_keeps_contests_documents_and_summarises_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    failed = FakeServer(["JobStateCompleted"], rest=False, success=False)
    code, out = run_cli(["start", "-w", "--poll-interval", "0.01"], failed, stdin=DESC)
    assert code == 1
    docs = [json.loads(d) for d in _docs(out)]  # stdout: ConTest's documents only
    assert [d["Data"].get("JobID") for d in docs] == [7, None]
    err = capsys.readouterr().err
    assert 'Job 7 "job" did not succeed: completed' in err
    assert "reason: report TargetSuccess (run 1) failed: x" in err
    # --json: machine output only, nothing on stderr but the live view's lines
    code, out = run_cli(["start", "-w", "--json", "--poll-interval", "0.01"], failed, stdin=DESC)
    assert len(_docs(out)) == 2 and "did not succeed" not in capsys.readouterr().err


def test_status_human_and_report_name_the_failed_target() -> None:
    class Failing(FakeServer):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/status":
                doc = status_doc("JobStateCompleted", success=False, failed_target=True)
                return envelope("ResponseTypeStatus", {"Status": doc})
            return super().__call__(request)

    server = Failing(["JobStateCompleted"], rest=False)
    code, out = run_cli(["status", "7", "--human"], server)
    assert code == 0
    assert 'FAILED T1 in step "nap": boom' in out
    assert 'NOT FINISHED T2 in step "nap"' in out
    assert "0 passed, 1 failed, 1 not finished, 0 not run" in out
    code, out = run_cli(["status", "7"], server)  # off a terminal: ConTest's JSON
    assert json.loads(out)["Data"]["Status"]["State"] == "JobStateCompleted"
    code, out = run_cli(["report", "7", "--json"], server)
    assert code == 1
    report = json.loads(out)
    assert report["Succeeded"] is False
    assert report["Tests"][0]["Targets"][0] == {
        "Target": "T1",
        "Verdict": "failed",
        "Step": "nap",
        "Error": "boom",
        "Output": [],
    }


def test_progress_from_a_status_document() -> None:
    prog = cli.progress_from_status(status_doc("JobStateStarted", failed_target=True))
    assert prog["Steps"] == [{"Test": "t", "Step": "nap", "InFlight": 1, "Passed": 0, "Failed": 1}]
    assert cli.progress_from_status(None)["State"] == "JobStateUnknown"
    assert cli.job_succeeded(status_doc("JobStateCompleted"))
    assert not cli.job_succeeded(status_doc("JobStateCompleted", success=False))
    assert not cli.job_succeeded(status_doc("JobStateCancelled"))


def test_answers_that_are_not_contests_are_transport_errors() -> None:
    def plain_400(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=b"Only POST requests are supported")

    def bad_200(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>")

    def msg_400(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=b'{"Msg":"Status failed: requestor cannot be empty"}')

    t = HTTPTransport("h:1", transport=httpx.MockTransport(plain_400))
    with pytest.raises(TransportError, match="not a valid HTTP API Error object"):
        t.version("x")
    t = HTTPTransport("h:1", transport=httpx.MockTransport(bad_200))
    with pytest.raises(TransportError, match="not an HTTP API response"):
        t.status("x", 1)
    t = HTTPTransport("h:1", transport=httpx.MockTransport(msg_400))
    assert t.status("x", 1) == {
        "ServerID": "",
        "Data": {"Status": None},
        "Err": "Status failed: requestor cannot be empty",
    }
    code, _ = run_cli(["version"], plain_400)
    assert code == cli.EXIT_UNREACHABLE


def _docs(text: str) -> list[str]:
    decoder = json.JSONDecoder()
    out, i, text = [], 0, text.strip()
    while i < len(text):
        _, end = decoder.raw_decode(text, i)
        out.append(text[i:end])
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
    return out


def test_status_of_a_waiting_job_on_a_terminal_says_what_it_waits_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = "waiting for dut1, dut2 (held by job 3)"

    class Waiting(FakeServer):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            if self.rest and request.method == "GET" and request.url.path == "/api/v1/jobs/7":
                waiting = {"Targets": ["dut1", "dut2"], "HeldBy": {"dut1": 3, "dut2": 3},
                           "Since": 1.0, "Timeout": "5m0s", "Text": text}  # fmt: skip
                return httpx.Response(200, json={"job_id": 7, "waiting": waiting})
            return super().__call__(request)

    code, out = run_cli(["status", "7"], Waiting(["JobStateStarted"], rest=True), tty=True)
    assert code == 0 and out.splitlines()[0] == text
    code, out = run_cli(["status", "7"], Waiting(["JobStateStarted"], rest=True))
    assert json.loads(out)["Data"]["Status"]["State"] == "JobStateStarted"
    assert capsys.readouterr().err.strip() == text  # beside ConTest's document, on stderr
    code, out = run_cli(["status", "7", "--json"], Waiting(["JobStateStarted"], rest=True))
    assert text not in out and capsys.readouterr().err == ""
    # a ConTest server (no REST API): no line, no complaint
    code, out = run_cli(["status", "7"], Waiting(["JobStateStarted"], rest=False), tty=True)
    assert code == 0 and "waiting for" not in out and capsys.readouterr().err == ""
