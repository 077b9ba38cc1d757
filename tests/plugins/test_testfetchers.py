"""Test fetchers: literal and URI (ConTest's ``plugins/testfetchers/``), URI over a real HTTP server
on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contest.context import PluginContext
from contest.errors import ContestError, ParameterError
from contest.job.descriptor import StepDescriptor
from contest.plugins.testfetchers import literal, uri
from contest.plugins.testfetchers.literal import Literal
from contest.plugins.testfetchers.uri import URI, FetchError
from contest.signals import Scope
from contest.testing.paths import samples_dir

SAMPLES = samples_dir()
LB_CONTEST = SAMPLES / "lb/cmds/contest"
RANDECHO = (LB_CONTEST / "test_samples/randecho.json").read_bytes()
STEP_FILES = sorted(SAMPLES.glob("*/cmds/contest/test_samples/*.json")) + sorted(
    SAMPLES.glob("*/cmds/clients/contestcli/descriptors/debug.json")
)
RAW_STEP_FILES = {p: p.read_bytes() for p in STEP_FILES}
RANDECHO_STEPS = [
    StepDescriptor("echo", "thefirstrandecho", {"text": ['"some very random text"']}),
    StepDescriptor("randecho", "thesecondrandecho", {"text": ['"some very random text"']}),
    StepDescriptor("echo", "thethirdrandecho", {"text": ['"some very random text"']}),
]


@pytest.fixture
def ctx() -> PluginContext:
    return PluginContext(scope=Scope(), job_id=1)


# --- a real HTTP server -------------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {
        "/randecho.json": (200, RANDECHO),
        "/notjson": (200, b"<html>hello</html>"),
        "/wrongshape": (200, b'{"steps": {"name": "echo"}}'),
        "/missing": (404, b'{"steps": []}'),
        "/broken": (500, b"oops"),
        "/big": (200, b'{"steps": [], "x-pad": "' + b"x" * 5000 + b'"}'),
        "/empty": (200, b"{}"),
    }

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/randecho.json")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(1.0)
        if self.path == "/drip":  # headers at once, then the body too slowly
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            try:
                for _ in range(10):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)
            except ConnectionError:
                pass  # the client gave up, as the test wants (not an error of this server)
            return
        code, body = self.routes.get(self.path, (200, RANDECHO))
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: the default writes every request to stderr, noise in test output."""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- literal ------------------------------------------------------------------------------------


def test_literal_sample_start_literal_json() -> None:
    desc = json.loads(
        (SAMPLES / "lb/cmds/clients/contestcli/descriptors/start-literal.json").read_text()
    )
    params = desc["TestDescriptors"][0]["TestFetcherFetchParameters"]
    fp = Literal().validate_fetch_parameters(params)
    assert fp.test_name == "Literal test"
    assert fp.steps == [
        StepDescriptor(
            "cmd",
            "somelabel",
            {
                "executable": ['"echo"'],
                "args": ['"Title={{ Title .FQDN }}, ToUpper={{ ToUpper .FQDN }}"'],
            },
        )
    ]


def test_literal_sample_yaml() -> None:
    desc = yaml.safe_load(
        (SAMPLES / "lb/cmds/clients/contestcli/descriptors/start-literal.yaml").read_text()
    )
    fp = Literal().validate_fetch_parameters(
        desc["TestDescriptors"][0]["TestFetcherFetchParameters"]
    )
    assert fp.test_name
    assert fp.steps


def test_literal_go_rules() -> None:
    fp = Literal().validate_fetch_parameters(
        {
            "testname": "t",
            "STEPS": [
                {"NAME": "echo", "Label": "a", "Parameters": {"text": ["hi", 2, True, {"k": 1}]}},
            ],
        }
    )
    assert fp.test_name == "t"
    assert fp.steps == [StepDescriptor("echo", "a", {"text": ['"hi"', "2", "true", '{"k":1}']})]
    # an unknown key is refused (Go ignores it), with the nearest known one
    with pytest.raises(ParameterError) as info:
        Literal().validate_fetch_parameters({"TestName": "t", "Stpes": []})
    assert str(info.value) == (
        'Stpes: unknown key "Stpes" in the literal fetcher\'s parameters; did you mean "Steps"?'
    )


def test_literal_raw_text_keeps_numbers() -> None:
    fp = Literal().validate_fetch_parameters(
        '{"TestName": "t", "Steps": [{"name": "x", "label": "l", "parameters": {"n": [1.50]}}]}'
    )
    assert fp.steps[0].parameters == {"n": ["1.50"]}


@pytest.mark.parametrize("params", [None, {}, {"Steps": []}, {"TestName": ""}, {"TestName": None}])
def test_literal_name_required(params: Any) -> None:
    with pytest.raises(ParameterError) as info:
        Literal().validate_fetch_parameters(params)
    assert str(info.value) == "TestName: test name cannot be empty for fetch parameters"
    fp = Literal().validate_fetch_parameters(params, require_name=False)  # cleanup steps
    assert fp.test_name == ""


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([], "expected an object, got a list"),
        ({"TestName": 5}, "TestName: expected a string, got 5"),
        ({"TestName": "t", "Steps": [None]}, "Steps[0]: test step description is null"),
        ({"TestName": "t", "Steps": {"name": "x"}}, "Steps: expected a list, got an object"),
    ],
)
def test_literal_invalid(params: Any, message: str) -> None:
    with pytest.raises(ParameterError) as info:
        Literal().validate_fetch_parameters(params)
    assert str(info.value) == message


def test_literal_reports_every_decoding_error() -> None:
    with pytest.raises(ParameterError) as info:
        Literal().validate_fetch_parameters({"TestName": "t", "Steps": [None, {"name": 1}]})
    assert str(info.value).startswith("Steps[0]: test step description is null; Steps[1].name: ")


async def test_literal_fetch(ctx: PluginContext) -> None:
    f = Literal()
    fp = f.validate_fetch_parameters({"TestName": "t", "Steps": [{"name": "echo", "label": "a"}]})
    name, steps = await f.fetch(ctx, fp)
    assert (name, steps) == ("t", [StepDescriptor("echo", "a")])
    steps[0].parameters["x"] = ["1"]
    assert fp.steps[0].parameters == {}  # a copy: the parameters are not changed
    assert await f.fetch(ctx, {"Steps": [{"name": "n", "label": "l"}]}) == (
        "",
        [StepDescriptor("n", "l")],
    )


# --- URI: parameters ----------------------------------------------------------------------------


def test_uri_sample_start_json_parameters() -> None:
    desc = json.loads((SAMPLES / "lb/cmds/clients/contestcli/descriptors/start.json").read_text())
    fp = URI().validate_fetch_parameters(desc["TestDescriptors"][0]["TestFetcherFetchParameters"])
    assert fp == uri.FetchParameters(
        "RackSwitchProvisioning", "test_samples/randecho.json", "file", "test_samples/randecho.json"
    )


@pytest.mark.parametrize(
    ("text", "scheme", "location"),
    [
        ("x.json", "file", "x.json"),
        ("/abs/x%20y.json", "file", "/abs/x y.json"),
        ("file:///abs/x.json", "file", "/abs/x.json"),
        ("file://localhost/abs/x.json", "file", "/abs/x.json"),
        ("http://example.org/x.json", "http", "http://example.org/x.json"),
        ("HTTPS://example.org:8443/x.json?v=1", "https", "HTTPS://example.org:8443/x.json?v=1"),
    ],
)
def test_uri_forms(text: str, scheme: str, location: str) -> None:
    fp = URI().validate_fetch_parameters({"testname": "t", "uri": text})
    assert (fp.scheme, fp.location, fp.uri) == (scheme, location, text)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"URI": "x.json"}, "TestName: test name cannot be empty for fetch parameters"),
        ({"TestName": "t"}, "URI: file URI not specified in fetch parameters"),
        ({"TestName": "t", "URI": None}, "URI: file URI not specified in fetch parameters"),
        ({"TestName": "t", "URI": ""}, "URI: file URI not specified in fetch parameters"),
        ({"TestName": "t", "URI": "ftp://h/x.json"}, "URI: unsupported scheme ftp"),
        ({"TestName": "t", "URI": "S3://b/x.json"}, "URI: unsupported scheme s3"),
        (
            {"TestName": "t", "URI": "file://server/x.json"},
            "URI: invalid host in URI: 'server'. Only 'localhost' or empty string are supported "
            "for scheme file",
        ),
        ({"TestName": "t", "URI": "http:///x.json"}, "URI: 'http:///x.json' names no host"),
        ({"TestName": "t", "URI": "file://localhost"}, "URI: 'file://localhost' names no file"),
        (
            {"TestName": "t", "URI": ["x"]},
            "URI: json: cannot unmarshal array into Go struct field FetchParameters.URI "
            "of type string",
        ),
        ("[1]", "json: cannot unmarshal array into Go value of type uri.FetchParameters"),
    ],
)
def test_uri_invalid(params: Any, message: str) -> None:
    with pytest.raises(ParameterError) as info:
        URI().validate_fetch_parameters(params)
    assert str(info.value) == message


def test_uri_bad_url() -> None:
    with pytest.raises(ParameterError, match="URI: invalid URI"):
        URI().validate_fetch_parameters({"TestName": "t", "URI": "http://[::1/x"})


def test_uri_name_not_required_for_cleanup() -> None:
    assert URI().validate_fetch_parameters({"URI": "x.json"}, require_name=False).test_name == ""


# --- URI: fetching files ------------------------------------------------------------------------


async def test_uri_sample_relative_to_cwd(
    ctx: PluginContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(LB_CONTEST)  # start.json's URI is relative to the server's CWD
    f = URI()
    fp = f.validate_fetch_parameters(
        {"TestName": "RackProvisioning", "URI": "test_samples/randecho.json"}
    )
    assert await f.fetch(ctx, fp) == ("RackProvisioning", RANDECHO_STEPS)


@pytest.mark.parametrize("path", STEP_FILES, ids=lambda p: str(p.relative_to(SAMPLES)))
async def test_uri_every_steps_sample(ctx: PluginContext, path: Path) -> None:
    f = URI()
    name, steps = await f.fetch(
        ctx, f.validate_fetch_parameters({"TestName": "t", "URI": f"file://{path}"})
    )
    doc = json.loads(RAW_STEP_FILES[path])
    assert name == "t"
    assert [(s.name, s.label) for s in steps] == [(d["name"], d["label"]) for d in doc["steps"]]
    for s, d in zip(steps, doc["steps"], strict=True):
        assert s.parameters == {
            k: [json.dumps(v, separators=(",", ":"), ensure_ascii=False) for v in vs]
            for k, vs in d.get("parameters", {}).items()
        }


async def test_uri_name_comes_from_parameters(ctx: PluginContext, tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text('{"STEPS": [{"name": "echo", "label": "a"}], "x-note": "ignored"}')
    f = URI()
    assert await f.fetch(ctx, f.validate_fetch_parameters({"TestName": "mine", "URI": str(p)})) == (
        "mine",
        [StepDescriptor("echo", "a")],
    )


async def test_uri_missing_file(ctx: PluginContext) -> None:
    f = URI()
    with pytest.raises(FetchError) as info:
        await f.fetch(ctx, f.validate_fetch_parameters({"TestName": "t", "URI": "/nope/x.json"}))
    assert (
        str(info.value) == "cannot read test description '/nope/x.json': No such file or directory"
    )
    assert isinstance(info.value, ContestError)


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("not json", "invalid JSON"),
        ('{"steps": [null]}', "steps[0]: test step description is null"),
        ("[]", "expected an object, got a list"),
        ('{"steps": [], "TestName": "t"}', 'TestName: unknown key "TestName" in a test file'),
    ],
)
async def test_uri_bad_document(
    ctx: PluginContext, tmp_path: Path, content: str, detail: str
) -> None:
    p = tmp_path / "t.json"
    p.write_text(content)
    f = URI()
    with pytest.raises(FetchError) as info:
        await f.fetch(ctx, f.validate_fetch_parameters({"TestName": "t", "URI": str(p)}))
    assert str(info.value).startswith(f"cannot decode JSON test description from {p}: ")
    assert detail in str(info.value)


async def test_uri_file_size_limit(ctx: PluginContext, tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text('{"steps": []}' + " " * 100)
    f = URI(max_size=50)
    with pytest.raises(FetchError, match="larger than 50 bytes"):
        await f.fetch(ctx, f.validate_fetch_parameters({"TestName": "t", "URI": str(p)}))


async def test_uri_empty_document_has_no_steps(ctx: PluginContext, tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text("{}")
    f = URI()
    assert await f.fetch(ctx, {"TestName": "t", "URI": str(p)}) == ("t", [])


# --- URI: fetching over HTTP --------------------------------------------------------------------


async def test_uri_http(ctx: PluginContext, server: str) -> None:
    f = URI()
    fp = f.validate_fetch_parameters({"TestName": "t", "URI": f"{server}/randecho.json"})
    assert await f.fetch(ctx, fp) == ("t", RANDECHO_STEPS)


async def test_uri_http_follows_redirects(ctx: PluginContext, server: str) -> None:
    assert await URI().fetch(ctx, {"TestName": "t", "URI": f"{server}/redirect"}) == (
        "t",
        RANDECHO_STEPS,
    )


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("/missing", "HTTP 404 Not Found"),
        ("/broken", "HTTP 500 Internal Server Error"),
    ],
)
async def test_uri_http_error_status(
    ctx: PluginContext, server: str, route: str, message: str
) -> None:
    with pytest.raises(FetchError) as info:
        await URI().fetch(ctx, {"TestName": "t", "URI": server + route})
    assert str(info.value) == f"cannot fetch test description from {server}{route}: {message}"


async def test_uri_http_not_a_test(ctx: PluginContext, server: str) -> None:
    with pytest.raises(FetchError, match=r"cannot decode JSON test description from .*/notjson"):
        await URI().fetch(ctx, {"TestName": "t", "URI": f"{server}/notjson"})
    with pytest.raises(FetchError, match=r"steps: expected a list, got an object"):
        await URI().fetch(ctx, {"TestName": "t", "URI": f"{server}/wrongshape"})


async def test_uri_http_timeout(ctx: PluginContext, server: str) -> None:
    start = time.monotonic()
    with pytest.raises(FetchError) as info:
        await URI(timeout=0.2).fetch(ctx, {"TestName": "t", "URI": f"{server}/slow"})
    assert time.monotonic() - start < 0.9
    assert str(info.value) == (
        f"cannot fetch test description from {server}/slow: no complete answer within 200ms"
    )


async def test_uri_http_timeout_bounds_the_whole_exchange(ctx: PluginContext, server: str) -> None:
    # every chunk arrives within the per-read timeout, but the body as a whole takes too long
    start = time.monotonic()
    with pytest.raises(FetchError, match="no complete answer within 300ms"):
        await URI(timeout=0.3).fetch(ctx, {"TestName": "t", "URI": f"{server}/drip"})
    assert time.monotonic() - start < 0.9


async def test_uri_http_size_limit(ctx: PluginContext, server: str) -> None:
    with pytest.raises(FetchError, match="larger than 1000 bytes"):
        await URI(max_size=1000).fetch(ctx, {"TestName": "t", "URI": f"{server}/big"})
    assert await URI().fetch(ctx, {"TestName": "t", "URI": f"{server}/big"}) == ("t", [])


async def test_uri_http_connection_refused(ctx: PluginContext) -> None:
    url = f"http://127.0.0.1:{closed_port()}/x.json"
    with pytest.raises(FetchError) as info:
        await URI(timeout=5).fetch(ctx, {"TestName": "t", "URI": url})
    assert str(info.value).startswith(f"cannot fetch test description from {url}: ")


# --- entry points -------------------------------------------------------------------------------


def test_load() -> None:
    assert literal.load()[0] == "literal"
    assert isinstance(literal.load()[1](), Literal)
    assert uri.load()[0] == "URI"
    assert isinstance(uri.load()[1](), URI)
