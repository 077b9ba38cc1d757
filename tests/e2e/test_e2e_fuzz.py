"""Fuzzing a real ``contest serve``, with bounded budgets: no 500, no hang.

* The REST API, from its own OpenAPI document, with schemathesis: every operation gets valid and
  invalid inputs, and every answer must match the document (status codes, content types, body
  schemas) and never be a server error.
* ConTest's form API with random bodies (hypothesis): random verbs, fields and bytes; every
  answer is one of ConTest's (a 200 envelope, a 400 ``{"Msg"}``, the plain-text 400), fast.

The server has a completed job 1 and a running job 2, so job-scoped operations meet real jobs
as well as missing ones. Every request has a timeout: a hang fails the test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import schemathesis
from e2ekit import ServerProcess, literal_job, sleep_job
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from contest.server.openapi import document

REQUEST_TIMEOUT = 10.0
#: examples per REST operation; CONTEST_FUZZ_EXAMPLES=500 for a long, random run by hand
EXAMPLES = int(os.environ.get("CONTEST_FUZZ_EXAMPLES", "30"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="CONTEST_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    server = ServerProcess(folder, f"sqlite:///{folder / 'fuzz.db'}").start()
    try:
        for desc in (literal_job(name="done", targets=[{"ID": "fz1"}]), sleep_job("1h", 1)):
            form = urlencode({"requestor": "fuzz", "jobDesc": json.dumps(desc)})
            assert json.loads(server.post("start", form).content)["Error"] is None
        server.wait_state(1, "JobStateCompleted")
        server.wait_state(2, "JobStateStarted")
        yield server
    finally:
        try:
            server.stop()
        finally:
            server.kill()


# the document the server serves is this one (checked below), so the tests can be generated at
# collection time, before any server runs
schema = schemathesis.openapi.from_dict(document())


def test_the_server_serves_this_document(fuzzed_server: ServerProcess) -> None:
    assert fuzzed_server.get("/openapi.json").json() == document()


@schema.parametrize()
@FUZZ_SETTINGS
def test_rest_api_keeps_to_its_openapi_document(
    case: schemathesis.Case, fuzzed_server: ServerProcess
) -> None:
    excluded = []
    if case.operation.label == "POST /api/v1/jobs":
        # a schema-valid descriptor object is still refused when it means nothing (422): no
        # JSON schema can say what a valid job is
        excluded.append(positive_data_acceptance)
    case.call_and_validate(
        base_url=fuzzed_server.url, timeout=REQUEST_TIMEOUT, excluded_checks=excluded
    )


FORM_VERBS = ["start", "stop", "status", "retry", "list", "version"]
VERBS = [*FORM_VERBS, "bogus", ""]
FIELDS = ["requestor", "jobDesc", "jobID", "states", "tags", "x"]
field_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "1",
            "2",
            "-1",
            "0",
            "18446744073709551616",
            "JobStateStarted",
            "a,b",
            "{}",
            "[]",
            '{"JobName":"x"}',
            "test,csv",
            "JobStateCompleted,Bogus",
            "null",
            "9" * 30,
        ]
    ),
    st.integers().map(str),
)
forms = st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=6).map(
    lambda d: urlencode(d).encode()
)
raw_bodies = st.one_of(forms, st.binary(max_size=200))
content_types = st.sampled_from(
    ["application/x-www-form-urlencoded", "application/json", "", "multipart/form-data"]
)


def test_form_api_answers_every_random_body_as_contest_does(
    fuzzed_server: ServerProcess,
) -> None:
    client = httpx.Client(base_url=fuzzed_server.url, timeout=REQUEST_TIMEOUT)

    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES * 13)
    @given(
        method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]),
        verb=st.one_of(
            st.sampled_from(VERBS),
            st.text(
                st.characters(
                    codec="utf-8", categories=("L", "N", "P", "S"), exclude_characters="/?#%\\"
                ),
                max_size=12,
            ),
        ),
        body=raw_bodies,
        content_type=content_types,
    )
    def one(method: str, verb: str, body: bytes, content_type: str) -> None:
        if verb in ("stop", "retry") and b"jobID=2" in body:
            return  # keep the long job running for the other examples
        headers = {"Content-Type": content_type} if content_type else {}
        resp = client.request(method, f"/{verb}", content=body, headers=headers)
        if method == "GET" and verb not in FORM_VERBS:
            # a browser's path: the web view's page, or its 404 page (see test_server_web.py)
            assert resp.status_code in (200, 404), (verb, resp.status_code)
            assert resp.headers["content-type"].startswith("text/html")
            return
        assert resp.headers["content-type"] == "text/plain; charset=utf-8"
        if method != "POST":
            assert (resp.status_code, resp.content) == (400, b"Only POST requests are supported")
            return
        if resp.status_code == 200:
            assert resp.content.endswith(b"\n")
            doc = json.loads(resp.content)
            assert list(doc) == ["ServerID", "Type", "Data", "Error"]
            assert doc["ServerID"] == "vm"
            assert doc["Error"] is None or isinstance(doc["Error"], str)
        else:
            assert resp.status_code == 400, resp.content
            doc = json.loads(resp.content)
            assert list(doc) == ["Msg"] and isinstance(doc["Msg"], str)
            assert not doc["Msg"].startswith("internal error"), doc

    try:
        one()
    finally:
        client.close()
