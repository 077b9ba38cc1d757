"""ConTest's form API in-process: every error path of ConTest's ``pkg/api`` and
``pkg/transport/http`` with its exact status and
body, and the verbs' happy paths (start, status, stop, retry, list, version)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from serverkit import SERVER_ID, ApiEnv, descriptor, sleepy

from contest.server.formapi import FormAPI, parse_form
from contest.storage import JobState

TEXT = "text/plain; charset=utf-8"


def envelope(type_: str, data: Any, error: str | None) -> bytes:
    """The 200 body ConTest writes (compact, no HTML escaping, trailing newline)."""
    body = {"ServerID": SERVER_ID, "Type": type_, "Data": data, "Error": error}
    return (json.dumps(body, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


# --- the error cases of the capture, byte for byte ---------------------------------------------

# (method, path, body) -> (status, exact body), as ConTest's server answers them with curl
CAPTURED: list[tuple[str, str, str, int, bytes]] = [
    ("GET", "/version", "", 400, b"Only POST requests are supported"),
    ("POST", "/bogus", "requestor=x", 400, b'{"Msg":"unknown verb: bogus"}'),
    ("POST", "/start", "requestor=x", 400, b'{"Msg":"Missing job description"}'),
    (
        "POST",
        "/start",
        "jobDesc=%7B%7D&requestor=x",
        200,
        envelope(
            "ResponseTypeStart",
            {"JobID": 0},
            "could not validate job descriptor: need at least one TestDescriptor in the "
            "JobDescriptor",
        ),
    ),
    ("POST", "/status", "requestor=x", 400, b'{"Msg":"Status failed: job ID cannot be empty"}'),
    (
        "POST",
        "/status",
        "jobID=abc",
        400,
        b'{"Msg":"Status failed: strconv.ParseInt: parsing \\"abc\\": invalid syntax"}',
    ),
    (
        "POST",
        "/list",
        "states=Bogus",
        400,
        b'{"Msg":"Invalid query: unable to apply field 0:storage.jobQueryFieldStates([]): '
        b'field storage.jobQueryFieldStates has a zero value"}',
    ),
    ("POST", "/version", "", 200, envelope("ResponseTypeVersion", {"Version": 5}, None)),
    ("POST", "/list", "tags=nonexistent", 400, b'{"Msg":"List failed: requestor cannot be empty"}'),
    ("POST", "/list", "tags=", 400, b'{"Msg":"List failed: requestor cannot be empty"}'),
    ("POST", "/status", "jobID=1", 400, b'{"Msg":"Status failed: requestor cannot be empty"}'),
    ("POST", "/stop", "jobID=1", 400, b'{"Msg":"Stop failed: requestor cannot be empty"}'),
    ("POST", "/retry", "jobID=1", 400, b'{"Msg":"Retry failed: requestor cannot be empty"}'),
    (
        "POST",
        "/list",
        "requestor=x&tags=nonexistent",
        200,
        envelope("ResponseTypeList", {"JobIDs": []}, None),
    ),
    (
        "POST",
        "/status",
        "requestor=x&jobID=-5",
        200,
        envelope(
            "ResponseTypeStatus",
            {"Status": None},
            "failed to fetch request for job ID 18446744073709551611: could not find job request "
            "with id 18446744073709551611",
        ),
    ),
    (
        "POST",
        "/version?x=1",
        "requestor=x",
        200,
        envelope("ResponseTypeVersion", {"Version": 5}, None),
    ),
    (
        "POST",
        "/start",
        "jobDesc=%7B%22JobName%22%3A%22x%22%7D",
        400,
        b'{"Msg":"Start failed: requestor cannot be empty"}',
    ),
    (
        "POST",
        "/status",
        "jobID=999&requestor=contestcli-http",
        200,
        envelope(
            "ResponseTypeStatus",
            {"Status": None},
            "failed to fetch request for job ID 999: could not find job request with id 999",
        ),
    ),
    (
        "POST",
        "/stop",
        "jobID=999&requestor=contestcli-http",
        200,
        envelope("ResponseTypeStop", {}, "could not stop job: unknown job ID: 999"),
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "expected"), CAPTURED)
async def test_captured_error_cases(
    api: ApiEnv, method: str, path: str, body: str, status: int, expected: bytes
) -> None:
    resp = await api.client.request(
        method,
        path,
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"} if body else {},
    )
    assert resp.status_code == status
    assert resp.content == expected
    assert resp.headers["content-type"] == TEXT
    assert resp.headers["content-length"] == str(len(expected))


MORE_ERRORS: list[tuple[str, str, int, bytes]] = [
    # stop and retry parse the job ID the same way, with their own verb in the message
    ("/stop", "requestor=x&jobID=", 400, b'{"Msg":"Stop failed: job ID cannot be empty"}'),
    (
        "/retry",
        "requestor=x&jobID=%2B",
        400,
        b'{"Msg":"Retry failed: strconv.ParseInt: parsing \\"+\\": invalid syntax"}',
    ),
    (
        "/status",
        "requestor=x&jobID=99999999999999999999",
        400,
        b'{"Msg":"Status failed: strconv.ParseInt: parsing \\"99999999999999999999\\": '
        b'value out of range"}',
    ),
    (
        "/status",
        "requestor=x&jobID=%205",
        400,
        b'{"Msg":"Status failed: strconv.ParseInt: parsing \\" 5\\": invalid syntax"}',
    ),
    (
        "/status",
        "requestor=x&jobID=%2B%20",
        400,
        b'{"Msg":"Status failed: strconv.ParseInt: parsing \\"+ \\": invalid syntax"}',
    ),
    # a requestor longer than ConTest's 32 bytes
    (
        "/status",
        "requestor=" + "r" * 33 + "&jobID=1",
        400,
        b'{"Msg":"Status failed: Requestor name is too long: 33 \\u003e 32"}',
    ),
    # a bad state after a good one: the list runs, the answer is still the 400
    (
        "/list",
        "requestor=x&states=JobStateStarted,Bogus",
        400,
        b'{"Msg":"List failed: invalid job state \\"Bogus\\""}',
    ),
    (
        "/list",
        "requestor=x&states=JobStateUnknown",
        400,
        b'{"Msg":"Invalid query: unable to apply field 0:storage.jobQueryFieldStates([]): '
        b'field storage.jobQueryFieldStates has a zero value"}',
    ),
    # Go's json.Marshal escapes HTML in the 400 body
    ("/a<b>&c", "requestor=x", 400, b'{"Msg":"unknown verb: a\\u003cb\\u003e\\u0026c"}'),
    ("/", "requestor=x", 400, b'{"Msg":"unknown verb: "}'),
    ("/Version", "requestor=x", 400, b'{"Msg":"unknown verb: Version"}'),
    ("//version", "requestor=x", 200, envelope("ResponseTypeVersion", {"Version": 5}, None)),
    # an invalid tag is the storage's error, inside a 200
    (
        "/list",
        "requestor=x&tags=a%20b",
        200,
        envelope(
            "ResponseTypeList", {"JobIDs": None}, 'failed to list jobs: "a b" is not a valid tag'
        ),
    ),
    (
        "/list",
        "requestor=x&tags=a,a",
        200,
        envelope("ResponseTypeList", {"JobIDs": None}, 'failed to list jobs: duplicate tag "a"'),
    ),
    (
        "/retry",
        "requestor=x&jobID=999",
        200,
        envelope(
            "ResponseTypeRetry",
            {"JobID": 999, "NewJobID": 0},
            "could not find job request with id 999",
        ),
    ),
    (
        "/stop",
        "requestor=x&jobID=0",
        200,
        envelope("ResponseTypeStop", {}, "could not stop job: unknown job ID: 0"),
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "expected"), MORE_ERRORS)
async def test_more_error_paths(
    api: ApiEnv, path: str, body: str, status: int, expected: bytes
) -> None:
    reply = await api.app.form.handle(
        "POST", path, body.encode(), "application/x-www-form-urlencoded"
    )
    assert (reply.status, reply.body) == (status, expected)


async def test_head_and_other_methods_get_the_plain_text_400(api: ApiEnv) -> None:
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        resp = await api.client.request(method, "/start", content=b"requestor=x")
        assert (resp.status_code, resp.content) == (400, b"Only POST requests are supported")
    resp = await api.client.head("/status")
    assert resp.status_code == 400 and resp.content == b""


async def test_form_is_read_from_the_body_only(api: ApiEnv) -> None:
    # the query string is ignored (Go's PostFormValue)
    resp = await api.client.post("/status?requestor=x&jobID=1", content=b"")
    assert resp.content == b'{"Msg":"Status failed: job ID cannot be empty"}'
    # a body of another content type is not a form (Go leaves the form empty)
    resp = await api.client.post(
        "/start", content=b"requestor=x&jobDesc=x", headers={"Content-Type": "text/plain"}
    )
    assert resp.content == b'{"Msg":"Missing job description"}'
    # the content type's parameters and case do not matter
    resp = await api.client.post(
        "/version",
        content=b"requestor=x",
        headers={"Content-Type": "Application/X-WWW-Form-URLEncoded; charset=UTF-8"},
    )
    assert resp.status_code == 200


def test_go_form_parsing_rules() -> None:
    assert parse_form(b"a=1&a=2&b=x+y%21") == {"a": ["1", "2"], "b": ["x y!"]}
    # a pair with a semicolon or a bad escape is skipped, the rest kept (Go's ParseQuery)
    assert parse_form(b"a=1;b=2&c=3") == {"c": ["3"]}
    assert parse_form(b"a=%zz&b=%4&c=%41") == {"c": ["A"]}
    assert parse_form(b"&&=v&k") == {"": ["v"], "k": [""]}
    assert parse_form("é=%C3%A9".encode()) == {"é": ["é"]}
    assert parse_form(b"a=%ff") == {"a": ["\ufffd"]}


# --- happy paths ----------------------------------------------------------------------------------


async def test_start_status_list_and_version(api: ApiEnv) -> None:
    job_id = await api.start(descriptor())
    assert job_id >= 1
    await api.wait_state(job_id, JobState.COMPLETED)
    out = await api.form_json("status", requestor="x", jobID=str(job_id))
    assert out["Type"] == "ResponseTypeStatus" and out["Error"] is None
    status = out["Data"]["Status"]
    assert list(status) == [
        "Name",
        "State",
        "StateErrMsg",
        "StartTime",
        "EndTime",
        "RunStatus",
        "RunStatuses",
        "JobReport",
    ]
    assert status["Name"] == "test job"
    assert status["State"] == "JobStateCompleted"
    assert status["EndTime"] is not None
    step = status["RunStatus"]["TestStatuses"][0]["TestStepStatuses"][0]
    assert step["TestStepLabel"] == "some label"
    assert step["TargetStatuses"][0]["Target"] == {"ID": "1234", "FQDN": "example.org"}
    reports = status["JobReport"]["RunReports"][0]
    assert [r["ReporterName"] for r in reports] == ["TargetSuccess", "noop"]
    assert all(r["Success"] for r in reports)

    other = await api.start(descriptor(tags=("other",)))
    await api.wait_state(other, JobState.COMPLETED)
    out = await api.form_json("list", requestor="x")
    assert out["Data"]["JobIDs"] == [job_id, other]
    out = await api.form_json("list", requestor="x", tags="test,csv")
    assert out["Data"]["JobIDs"] == [job_id]
    out = await api.form_json("list", requestor="x", states="JobStateCompleted,JobStateFailed")
    assert out["Data"]["JobIDs"] == [job_id, other]
    out = await api.form_json("list", requestor="x", states="JobStateFailed")
    assert out["Data"]["JobIDs"] == []
    out = await api.form_json("version", requestor="x")
    assert out == {
        "ServerID": SERVER_ID,
        "Type": "ResponseTypeVersion",
        "Data": {"Version": 5},
        "Error": None,
    }


async def test_yaml_descriptor_is_accepted(api: ApiEnv) -> None:
    yaml_text = """
JobName: yaml job
Runs: 1
TestDescriptors:
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters: {Targets: [{ID: y1}]}
    TargetManagerReleaseParameters: {}
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: t
      Steps: [{name: noop, label: n, parameters: {}}]
Reporting:
  RunReporters: [{name: TargetSuccess, parameters: {SuccessExpression: ">=100%"}}]
"""
    out = await api.form_json("start", requestor="x", jobDesc=yaml_text)
    assert out["Error"] is None
    await api.wait_state(out["Data"]["JobID"], JobState.COMPLETED)


async def test_stop_a_running_job_then_status_says_cancelled(api: ApiEnv) -> None:
    job_id = await api.start(sleepy())
    await api.wait_state(job_id, JobState.STARTED)
    resp = await api.form("stop", f"jobID={job_id}&requestor=contestcli-http")
    assert resp.content == envelope("ResponseTypeStop", {}, None)
    await api.wait_state(job_id, JobState.CANCELLED)
    out = await api.form_json("status", requestor="x", jobID=str(job_id))
    assert out["Data"]["Status"]["State"] == "JobStateCancelled"
    # a second stop: the job is not running any more
    resp = await api.form("stop", f"jobID={job_id}&requestor=x")
    assert resp.content == envelope(
        "ResponseTypeStop", {}, f"could not stop job: unknown job ID: {job_id}"
    )
    out = await api.form_json("list", requestor="x", states="JobStateCancelled")
    assert out["Data"]["JobIDs"] == [job_id]


async def test_retry_starts_a_new_job_from_the_stored_descriptor(api: ApiEnv) -> None:
    job_id = await api.start(descriptor(name="again"))
    await api.wait_state(job_id, JobState.COMPLETED)
    resp = await api.form("retry", f"jobID={job_id}&requestor=x")
    out = json.loads(resp.content)
    new_id = out["Data"]["NewJobID"]
    assert resp.content == envelope(
        "ResponseTypeRetry", {"JobID": job_id, "NewJobID": new_id}, None
    )
    assert new_id > job_id
    await api.wait_state(new_id, JobState.COMPLETED)
    req = await api.store.get_job(new_id)
    assert req is not None and req.name == "again" and req.requestor == "x"


async def test_a_refused_descriptor_names_its_first_problem(api: ApiEnv) -> None:
    bad = descriptor()
    bad["TestDescriptors"][0]["TestFetcherFetchParameters"]["Steps"][0]["name"] = "nosuchstep"
    out = await api.form_json("start", requestor="x", jobDesc=json.dumps(bad))
    assert out["Data"] == {"JobID": 0}
    assert out["Error"].startswith("could not validate job descriptor: ")
    assert "nosuchstep" in out["Error"]
    # a type error is Go's decoding error, as it is
    out = await api.form_json("start", requestor="x", jobDesc='{"JobName": 5}')
    assert out["Error"] == (
        "json: cannot unmarshal number into Go struct field Descriptor.JobName of type string"
    )
    out = await api.form_json("list", requestor="x")
    assert out["Data"]["JobIDs"] == []


class _Slow:
    """A job service that never answers in time."""

    async def submit(self, descriptor: str | bytes, requestor: str) -> int:
        await asyncio.sleep(10)
        return 1

    async def stop(self, job_id: int) -> None:
        await asyncio.sleep(10)

    async def status(self, job_id: int) -> dict[str, Any]:
        await asyncio.sleep(10)
        return {}

    async def status_document(self, job_id: int) -> Any:
        await asyncio.sleep(10)

    async def retry(self, job_id: int, requestor: str) -> int:
        await asyncio.sleep(10)
        return 1

    async def list(self, **kw: Any) -> list[int]:
        await asyncio.sleep(10)
        return []


async def test_a_call_that_takes_too_long_is_a_400_after_the_process_timeout() -> None:
    form = FormAPI(_Slow(), SERVER_ID, timeout=0.05)
    ct = "application/x-www-form-urlencoded"
    reply = await form.handle("POST", "/status", b"requestor=x&jobID=3", ct)
    assert (reply.status, reply.body) == (
        400,
        b'{"Msg":"Status failed: time out waiting for response after 50ms"}',
    )
    reply = await form.handle("POST", "/list", b"requestor=x", ct)
    assert reply.body == b'{"Msg":"List failed: time out waiting for response after 50ms"}'
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.cancel()


class _Broken:
    async def status(self, job_id: int) -> dict[str, Any]:
        raise RuntimeError("the database melted")

    async def status_document(self, job_id: int) -> Any:
        raise RuntimeError("the database melted")

    async def list(self, **kw: Any) -> list[int]:
        raise RuntimeError("the database melted")


async def test_unexpected_failures_are_answers_not_crashes() -> None:
    form = FormAPI(_Broken(), SERVER_ID)  # type: ignore[arg-type]
    ct = "application/x-www-form-urlencoded"
    reply = await form.handle("POST", "/status", b"requestor=x&jobID=3", ct)
    assert reply.status == 200
    assert json.loads(reply.body)["Error"] == "the database melted"
    reply = await form.handle("POST", "/list", b"requestor=x", ct)
    assert json.loads(reply.body)["Error"] == "failed to list jobs: the database melted"


async def test_strict_descriptors_over_both_apis(api: ApiEnv) -> None:
    """A misspelt key or step parameter is refused by /start (ConTest ignored both); the form
    API answers with the first problem in our words, naming it, the REST API with every one and
    its path. Go's decoding texts stay where ConTest's client sees them."""
    bad = descriptor(
        steps=[
            {"nmae": "sleep", "label": "a", "parameters": {"duration": ["1s"]}},
            {
                "name": "cmd",
                "label": "b",
                "parameters": {"executable": ["echo"], "emit_stdot": [1]},
            },
            {"name": "echo", "label": "c", "parameters": {"text": ["{{ .Hostname }}"]}},
        ]
    )
    out = await api.form_json("start", requestor="x", jobDesc=json.dumps(bad))
    assert out["Data"] == {"JobID": 0}
    assert out["Error"] == (
        'could not validate job descriptor: unknown key "nmae" in a test step; did you mean "name"?'
    )
    resp = await api.client.post("/api/v1/jobs", json={"descriptor": bad, "requestor": "x"})
    assert resp.status_code == 422
    steps = "TestDescriptors[0].TestFetcherFetchParameters.Steps"
    assert resp.json()["details"] == [
        {
            "path": f"{steps}[0].nmae",
            "message": 'unknown key "nmae" in a test step; did you mean "name"?',
        },
        {
            "path": f"{steps}[1].parameters.emit_stdot",
            "message": "step Cmd, parameter emit_stdot: unknown parameter; did you mean "
            '"emit_stdout"?',
        },
        {
            "path": f"{steps}[2].parameters.text[0]",
            "message": "step Echo, parameter text[0]: the template reads .Hostname (line 1, column "
            "4), which a target does not have (it has ID, FQDN, PrimaryIPv4, PrimaryIPv6, "
            "TargetManagerState)",
        },
    ]
    assert (await api.form_json("list", requestor="x"))["Data"]["JobIDs"] == []
