"""Tokens and roles against a real ``contest serve --auth-file``: every path needs a token,
every role may do what it should and is refused the rest (401/403 in each API's own shape),
``contestcli --token`` / ``CONTEST_TOKEN``, revocation without a restart, the login cookie, TLS,
and the refusal to serve an open API on a network address.

One authenticated server serves the module (its tests use their own jobs); the tokens are made
with the real ``contest token`` command."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2ekit import ServerProcess, contestcli, json_docs, sleep_job, write_descriptor
from seckit import bearer, contest, create_token, form, rest

FORM_VERBS = ("start", "stop", "status", "retry", "list", "version")


def sleeper(duration: str = "30s") -> dict[str, Any]:
    """A job sleeping on a target of its own (jobs holding the same target would wait)."""
    desc = sleep_job(duration)
    desc["TestDescriptors"][0]["TargetManagerAcquireParameters"]["Targets"] = [
        {"ID": f"T-{uuid.uuid4().hex[:12]}"}
    ]
    return desc


@dataclass
class Authed:
    server: ServerProcess
    auth_file: Path
    tokens: dict[str, str]  # name -> token

    def start(self, who: str, desc: dict[str, object] | None = None, **fields: str) -> int:
        resp = form(
            self.server,
            "start",
            self.tokens[who],
            jobDesc=json.dumps(desc or sleeper("30s")),
            **fields,
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["Error"] is None, body
        job_id: int = body["Data"]["JobID"]
        return job_id

    def job(self, job_id: int) -> dict[str, object]:
        resp = rest(self.server, "GET", f"/api/v1/jobs/{job_id}", self.tokens["admin"])
        assert resp.status_code == 200, resp.text
        out: dict[str, object] = resp.json()
        return out

    def wait_state(self, job_id: int, state: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while (now := self.job(job_id)["state"]) != state:
            assert time.monotonic() < deadline, f"job {job_id} is {now}, not {state}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def authed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authed]:
    folder = tmp_path_factory.mktemp("auth")
    auth_file = folder / "tokens.jsonl"
    roles = {"admin": "admin", "alice": "submitter", "bob": "submitter", "vera": "viewer"}
    tokens = {name: create_token(auth_file, name, role) for name, role in roles.items()}
    server = ServerProcess(
        folder,
        f"sqlite:///{folder / 'contest.db'}",
        "--auth-file",
        str(auth_file),
        local_exec=False,
    ).start()
    try:
        yield Authed(server, auth_file, tokens)
    finally:
        try:
            server.stop()
        finally:
            server.kill()


def assert_msg(resp: httpx.Response, status: int, text: str) -> None:
    """ConTest's error envelope (the form API's ``{"Msg"}``) with this status."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("text/plain"), resp.headers
    assert text in resp.json()["Msg"], resp.text


def assert_error(resp: httpx.Response, status: int, text: str) -> None:
    """The REST API's ``{"error"}`` with this status."""
    assert resp.status_code == status, resp.text
    assert text in resp.json()["error"], resp.text


# --- the token file ----------------------------------------------------------------------------


def test_token_create_prints_the_token_last_and_stores_only_its_hash(tmp_path: Path) -> None:
    auth_file = tmp_path / "tokens"
    first = create_token(auth_file, "ci", "submitter")
    second = create_token(auth_file, "ci", "viewer")  # a name may have several (rotation)
    assert first != second
    text = auth_file.read_text()
    assert first not in text and second not in text
    assert first[3:20] not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert [(e["name"], e["role"]) for e in entries] == [("ci", "submitter"), ("ci", "viewer")]
    assert all(len(e["sha256"]) == 64 and len(e["salt"]) == 32 for e in entries)
    assert oct(auth_file.stat().st_mode & 0o777) == "0o600"

    listed = contest("token", "list", "--auth-file", str(auth_file))
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[1:3] for line in listed.stdout.splitlines()] == [
        ["ci", "submitter"],
        ["ci", "viewer"],
    ]
    assert first not in listed.stdout

    gone = contest("token", "revoke", entries[0]["id"], "--auth-file", str(auth_file))
    assert gone.returncode == 0 and "revoked token" in gone.stdout
    assert [json.loads(line)["role"] for line in auth_file.read_text().splitlines()] == ["viewer"]
    missing = contest("token", "revoke", "nobody", "--auth-file", str(auth_file))
    assert missing.returncode == 1 and "no token named" in missing.stderr


@pytest.mark.parametrize(
    ("name", "role", "message"),
    [
        ("bad\nname", "admin", "token name"),
        ("x" * 33, "admin", "token name"),
        ("ok", "root", "invalid choice"),
    ],
)
def test_token_create_refuses_bad_names_and_roles(
    tmp_path: Path, name: str, role: str, message: str
) -> None:
    proc = contest("token", "create", name, "--role", role, "--auth-file", str(tmp_path / "t"))
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not (tmp_path / "t").exists() or (tmp_path / "t").read_text() == ""


# --- 401: no token, a wrong one ------------------------------------------------------------------


@pytest.mark.parametrize("verb", [*FORM_VERBS, "nosuchverb"])
@pytest.mark.parametrize("token", [None, "ct_not-a-real-token", "Basic YWRtaW46YWRtaW4="])
def test_every_form_verb_needs_a_valid_token(authed: Authed, verb: str, token: str | None) -> None:
    headers = {}
    if token is not None:
        headers = {"Authorization": token} if token.startswith("Basic") else bearer(token)
    resp = httpx.post(
        f"{authed.server.url}/{verb}",
        data={"requestor": "x", "jobID": "1", "jobDesc": json.dumps(sleeper("1s"))},
        headers=headers,
        timeout=30,
    )
    assert_msg(resp, 401, "authentication required")
    assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/jobs"),
        ("GET", "/api/v1/version"),
        ("GET", "/api/v1/jobs/1/descriptor"),
        ("GET", "/api/v1/jobs/1/events"),
        ("GET", "/openapi.json"),
        ("POST", "/api/v1/jobs"),
        ("POST", "/api/v1/jobs/1/stop"),
        ("POST", "/api/v1/jobs/1/retry"),
    ],
)
def test_every_rest_path_needs_a_token(authed: Authed, method: str, path: str) -> None:
    assert_error(rest(authed.server, method, path), 401, "authentication required")
    assert_error(rest(authed.server, method, path, "ct_wrong"), 401, "invalid token")


def test_healthz_answers_probes_without_a_token(authed: Authed) -> None:
    resp = rest(authed.server, "GET", "/healthz")
    assert resp.status_code == 200 and resp.json()["status"] == "ok"


# --- roles ------------------------------------------------------------------------------------


def test_a_viewer_reads_and_may_change_nothing(authed: Authed) -> None:
    job_id = authed.start("alice")
    vera = authed.tokens["vera"]
    for verb, fields in (
        ("version", {}),
        ("list", {}),
        ("status", {"jobID": str(job_id)}),
    ):
        resp = form(authed.server, verb, vera, requestor="vera", **fields)
        assert resp.status_code == 200 and resp.json()["Error"] is None, (verb, resp.text)
    for path in (
        "/api/v1/jobs",
        f"/api/v1/jobs/{job_id}",
        f"/api/v1/jobs/{job_id}/status",
        f"/api/v1/jobs/{job_id}/descriptor",
        f"/api/v1/jobs/{job_id}/events",
        f"/api/v1/jobs/{job_id}/report",
        f"/api/v1/jobs/{job_id}/progress",
    ):
        assert rest(authed.server, "GET", path, vera).status_code == 200, path

    desc = json.dumps(sleeper("1s"))
    assert_msg(form(authed.server, "start", vera, jobDesc=desc), 403, "vera is a viewer")
    for verb in ("stop", "retry"):
        assert_msg(form(authed.server, verb, vera, jobID=str(job_id)), 403, "needs a submitter")
        resp = rest(authed.server, "POST", f"/api/v1/jobs/{job_id}/{verb}", vera)
        assert_error(resp, 403, "vera is a viewer")
    assert_error(
        rest(authed.server, "POST", "/api/v1/jobs", vera, json={"descriptor": desc}),
        403,
        "needs a submitter",
    )
    assert authed.job(job_id)["state"] == "JobStateStarted"
    assert (
        form(authed.server, "stop", authed.tokens["alice"], jobID=str(job_id)).json()["Error"]
        is None
    )


def test_a_submitters_jobs_are_its_own_whatever_requestor_it_claims(authed: Authed) -> None:
    alice = authed.tokens["alice"]
    by_form = authed.start("alice", requestor="admin")
    assert authed.job(by_form)["requestor"] == "alice"
    resp = rest(
        authed.server,
        "POST",
        "/api/v1/jobs",
        alice,
        json={"descriptor": sleeper("30s"), "requestor": "bob"},
    )
    assert resp.status_code == 201, resp.text
    by_rest = resp.json()["job_id"]
    assert authed.job(by_rest)["requestor"] == "alice"

    # its own: stop and retry (once stopped: the new job needs the same target), by either API
    assert form(authed.server, "stop", alice, jobID=str(by_form)).json()["Error"] is None
    authed.wait_state(by_form, "JobStateCancelled")
    retried = form(authed.server, "retry", alice, jobID=str(by_form)).json()
    assert retried["Error"] is None, retried
    new_id = retried["Data"]["NewJobID"]
    assert authed.job(new_id)["requestor"] == "alice"
    for job_id in (by_rest, new_id):
        resp = rest(authed.server, "POST", f"/api/v1/jobs/{job_id}/stop", alice)
        assert resp.status_code == 202, resp.text


def test_a_submitter_may_not_stop_or_retry_anothers_job(authed: Authed) -> None:
    job_id = authed.start("alice")
    bob = authed.tokens["bob"]
    for verb in ("stop", "retry"):
        resp = form(authed.server, verb, bob, jobID=str(job_id))
        assert_msg(resp, 403, f"bob (submitter) may {verb} only its own jobs; job {job_id}")
        resp = rest(authed.server, "POST", f"/api/v1/jobs/{job_id}/{verb}", bob)
        assert_error(resp, 403, f"job {job_id} is alice's")
    assert authed.job(job_id)["state"] == "JobStateStarted"
    # an unknown job is not "forbidden": the verb says it does not exist, as ConTest does
    unknown = form(authed.server, "stop", bob, jobID="999999").json()
    assert "unknown job ID: 999999" in unknown["Error"]
    assert form(authed.server, "stop", authed.tokens["alice"], jobID=str(job_id)).status_code == 200


def test_an_admin_stops_and_retries_any_job(authed: Authed) -> None:
    admin = authed.tokens["admin"]
    first = authed.start("alice")
    second = authed.start("bob")
    assert form(authed.server, "stop", admin, jobID=str(first)).json()["Error"] is None
    assert rest(authed.server, "POST", f"/api/v1/jobs/{second}/stop", admin).status_code == 202
    authed.wait_state(first, "JobStateCancelled")
    resp = rest(authed.server, "POST", f"/api/v1/jobs/{first}/retry", admin)
    assert resp.status_code == 201, resp.text
    retry_id = resp.json()["job_id"]
    assert authed.job(retry_id)["requestor"] == "admin"
    assert form(authed.server, "stop", admin, jobID=str(retry_id)).json()["Error"] is None
    for job_id in (first, second, retry_id):
        authed.wait_state(job_id, "JobStateCancelled")


# --- contestcli ---------------------------------------------------------------------------------


def test_contestcli_sends_its_token_from_the_flag_or_the_environment(
    authed: Authed, tmp_path: Path
) -> None:
    url = authed.server.url
    path = write_descriptor(tmp_path, "job.json", sleeper("100ms"))
    done = contestcli("--token", authed.tokens["alice"], "start", "-w", str(path), addr=url)
    assert done.returncode == 0, (done.stdout, done.stderr)
    start, final = json_docs(done.stdout)
    job_id = start["Data"]["JobID"]
    assert final["Data"]["Status"]["State"] == "JobStateCompleted"
    assert authed.job(job_id)["requestor"] == "alice"

    env = {"CONTEST_TOKEN": authed.tokens["vera"]}
    status = contestcli("status", str(job_id), addr=url, env=env)
    assert status.returncode == 0, status.stderr
    assert json_docs(status.stdout)[0]["Data"]["Status"]["State"] == "JobStateCompleted"
    refused = contestcli("start", str(path), addr=url, env=env)
    assert refused.returncode == 1
    assert "vera is a viewer" in json_docs(refused.stdout)[0]["Err"]

    anonymous = contestcli("version", addr=url, env={"CONTEST_TOKEN": ""})
    assert anonymous.returncode == 1
    assert "authentication required" in json_docs(anonymous.stdout)[0]["Err"]


def test_a_revoked_token_is_refused_without_a_restart(authed: Authed) -> None:
    token = create_token(authed.auth_file, "temp", "viewer")
    deadline = time.monotonic() + 10
    while form(authed.server, "version", token).status_code != 200:  # noticed within a second
        assert time.monotonic() < deadline, "a new token was never accepted"
        time.sleep(0.1)
    gone = contest("token", "revoke", "temp", "--auth-file", str(authed.auth_file))
    assert gone.returncode == 0, gone.stderr
    deadline = time.monotonic() + 10
    while form(authed.server, "version", token).status_code != 401:
        assert time.monotonic() < deadline, "a revoked token was still accepted"
        time.sleep(0.1)
    assert form(authed.server, "version", authed.tokens["vera"]).status_code == 200


# --- the login cookie --------------------------------------------------------------------------


def test_browsers_log_in_with_a_cookie_that_only_same_origin_posts_may_use(
    authed: Authed,
) -> None:
    url = authed.server.url
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as browser:
        page = browser.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F"
        login = browser.get("/login?next=/jobs")
        assert login.status_code == 200 and '<form method="post"' in login.text
        assert 'name="next" value="/jobs"' in login.text

        bad = browser.post("/login", data={"token": "ct_wrong"}, headers={"Origin": url})
        assert bad.status_code == 401 and "not valid" in bad.text
        assert "set-cookie" not in bad.headers
        foreign = browser.post(
            "/login", data={"token": authed.tokens["alice"]}, headers={"Origin": "http://evil.test"}
        )
        assert foreign.status_code == 403 and "set-cookie" not in foreign.headers

        ok = browser.post(
            "/login",
            data={"token": authed.tokens["alice"], "next": "//evil.test/x"},
            headers={"Origin": url},
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/"  # never off-site
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain HTTP here; see the TLS test

        assert browser.get("/api/v1/jobs").status_code == 200
        desc = json.dumps(sleeper("30s"))
        no_origin = browser.post("/start", data={"jobDesc": desc, "requestor": "x"})
        assert_msg(no_origin, 403, "needs Origin")
        cross = browser.post(
            "/start", data={"jobDesc": desc}, headers={"Origin": "http://evil.test"}
        )
        assert_msg(cross, 403, "cross-origin request refused")
        started = browser.post(
            "/start", data={"jobDesc": desc, "requestor": "x"}, headers={"Origin": url}
        )
        assert started.status_code == 200 and started.json()["Error"] is None, started.text
        job_id = started.json()["Data"]["JobID"]
        assert authed.job(job_id)["requestor"] == "alice"
        stopped = browser.post("/stop", data={"jobID": str(job_id)}, headers={"Origin": url})
        assert stopped.json()["Error"] is None

        out = browser.post("/logout", headers={"Origin": url})
        assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
        assert browser.get("/api/v1/jobs").status_code == 401


# --- a network address, TLS ---------------------------------------------------------------------


def test_an_open_api_on_a_network_address_is_refused_at_start(tmp_path: Path) -> None:
    proc = contest(
        "serve", "--listen", "0.0.0.0:0", "--db", f"sqlite:///{tmp_path / 'c.db'}", cwd=tmp_path
    )
    assert proc.returncode == 1
    assert "--auth-file" in proc.stderr and "--insecure-no-auth" in proc.stderr
    assert not (tmp_path / "c.db").exists()


@pytest.mark.parametrize("how", ["--insecure-no-auth", "--auth-file"])
def test_a_network_address_is_served_with_tokens_or_when_told_to(
    tmp_path: Path, server_factory: type[ServerProcess], how: str
) -> None:
    args = ["--listen", "0.0.0.0:0", how]
    token = None
    if how == "--auth-file":
        token = create_token(tmp_path / "tokens", "root", "admin")
        args.append(str(tmp_path / "tokens"))
    server = server_factory(tmp_path, f"sqlite:///{tmp_path / 'c.db'}", *args).start()
    port = server.url.rsplit(":", 1)[1]
    server.url = f"http://127.0.0.1:{port}"
    resp = form(server, "version", token)
    assert resp.status_code == 200 and resp.json()["Data"] == {"Version": 5}


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "contest test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_tls_serves_https_with_tokens_and_secure_cookies(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    cert, key = _self_signed(tmp_path)
    token = create_token(tmp_path / "tokens", "ops", "admin")
    server = server_factory(
        tmp_path,
        f"sqlite:///{tmp_path / 'c.db'}",
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--auth-file",
        str(tmp_path / "tokens"),
    ).start()
    assert server.url.startswith("https://127.0.0.1:")
    with httpx.Client(verify=ssl.create_default_context(cafile=cert), timeout=30) as client:
        resp = client.post(f"{server.url}/version", data={"requestor": "x"}, headers=bearer(token))
        assert resp.status_code == 200 and resp.json()["Data"] == {"Version": 5}
        assert client.post(f"{server.url}/version", data={"requestor": "x"}).status_code == 401
        login = client.post(
            f"{server.url}/login", data={"token": token}, headers={"Origin": server.url}
        )
        assert login.status_code == 303 and "Secure" in login.headers["set-cookie"]
    with pytest.raises(httpx.HTTPError):
        httpx.post(server.url.replace("https", "http") + "/version", timeout=5)
    cli = contestcli("--token", token, "version", addr=server.url, env={"SSL_CERT_FILE": str(cert)})
    assert cli.returncode == 0, (cli.stdout, cli.stderr)
    assert json_docs(cli.stdout)[0]["Data"] == {"Version": 5}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["--auth-file", "missing.jsonl"], "no such file"),
        (["--secrets-dir", "nowhere"], "--secrets-dir nowhere: no such folder"),
        (["--allow-fetch-url", "ftp://x"], "--allow-fetch-url 'ftp://x'"),
        (["--public-url", "contest.example.org"], "--public-url 'contest.example.org'"),
    ],
)
def test_bad_security_options_stop_the_start(tmp_path: Path, args: list[str], message: str) -> None:
    proc = contest(
        "serve", "--listen", "127.0.0.1:0", "--db", f"sqlite:///{tmp_path / 'c.db'}", *args,
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr
