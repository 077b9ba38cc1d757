"""What a job may touch on the server's machine, against a real ``contest serve``: host names and
origins (DNS rebinding, cross-site posts), local programs (``--allow-local-exec``), secret files
and variables (``--secrets-dir``, ``CONTEST_SECRET_*``), fetched files and URLs
(``--fetch-root``, ``--allow-fetch-url``), and requestors with control characters.

A "confined" server serves most tests: no ``--allow-local-exec``, a secrets folder, a fetch
root, one allowed URL prefix (a small HTTP server of the test), and a third-party step plugin
declaring ``runs_local_processes``, installed as a distribution on its ``PYTHONPATH``."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2ekit import ServerProcess, sleep_job, write_descriptor
from seckit import contest

STEPS_DOC = {"steps": [{"name": "noop", "label": "fetched", "parameters": {}}]}
SECRET_ENV = "CONTEST_SECRET_E2E_PASSWORD"
LOCAL_FLAG = "refused, as this server was not started with --allow-local-exec"


def job(
    steps: list[dict[str, Any]] | None = None,
    *,
    fetcher: tuple[str, dict[str, Any]] | None = None,
    manager: tuple[str, dict[str, Any]] | None = None,
    target: str | None = None,
) -> dict[str, Any]:
    """A one-test job; its own target unless told (jobs sharing a target would wait)."""
    tid = target or f"T-{uuid.uuid4().hex[:10]}"
    name, params = fetcher or ("literal", {"TestName": "t", "Steps": steps or []})
    tm_name, tm_params = manager or ("TargetList", {"Targets": [{"ID": tid, "FQDN": "x.test"}]})
    return {
        "JobName": "host access",
        "Runs": 1,
        "TestDescriptors": [
            {
                "TargetManagerName": tm_name,
                "TargetManagerAcquireParameters": tm_params,
                "TargetManagerReleaseParameters": {},
                "TestFetcherName": name,
                "TestFetcherFetchParameters": params,
            }
        ],
        "Reporting": {"RunReporters": [{"Name": "noop"}]},
    }


def sshcmd(**params: str) -> dict[str, Any]:
    base = {"host": "127.0.0.1", "port": "1", "user": "u", "executable": "true"}
    values = {name: [value] for name, value in {**base, **params}.items()}
    return {"name": "SSHCmd", "label": "ssh", "parameters": values}


def exec_ssh(**options: Any) -> dict[str, Any]:
    opts = {"host": "127.0.0.1", "port": 1, "user": "u", **options}
    bag = {"bin": {"path": "/bin/true"}, "transport": {"proto": "ssh", "options": opts}}
    return {"name": "Exec", "label": "exec", "parameters": {"bag": [bag]}}


def submit(server: ServerProcess, desc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Through the REST API (every error, with its path); (status, body)."""
    resp = httpx.post(f"{server.url}/api/v1/jobs", json={"descriptor": desc}, timeout=60)
    out: dict[str, Any] = resp.json()
    return resp.status_code, out


def refused(server: ServerProcess, desc: dict[str, Any]) -> str:
    """The errors of a refused descriptor, one per line ("path: message")."""
    status, body = submit(server, desc)
    assert status == 422, body
    return "\n".join(f"{d['path']}: {d['message']}" for d in body["details"])


def accepted(server: ServerProcess, desc: dict[str, Any]) -> int:
    status, body = submit(server, desc)
    assert status == 201, body
    job_id: int = body["job_id"]
    return job_id


def final_state(server: ServerProcess, job_id: int) -> str:
    return server.wait_state(
        job_id, "JobStateCompleted", "JobStateFailed", "JobStateCancelled", timeout=60
    )


def target_errors(server: ServerProcess, job_id: int) -> list[str]:
    events = server.get(f"/api/v1/jobs/{job_id}/events", name="TargetErr", limit="100").json()[
        "events"
    ]
    return [e["payload"]["Error"] for e in events]


class _Files(http.server.BaseHTTPRequestHandler):
    """``/tests/steps.json`` (allowed), ``/other/steps.json`` (not), ``/tests/away`` (redirect
    from the allowed prefix to the other)."""

    def do_GET(self) -> None:
        if self.path in ("/tests/steps.json", "/other/steps.json"):
            body = json.dumps(STEPS_DOC).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/tests/away":
            self.send_response(302)
            self.send_header("Location", "/other/steps.json")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the test output is the server's


@dataclass
class Confined:
    server: ServerProcess
    secrets: Path
    root: Path
    outside: Path
    web: str  # http://127.0.0.1:PORT


def _third_party_plugin(site: Path) -> None:
    """A step distribution as pip would install it: a module and its dist-info."""
    site.mkdir()
    (site / "sectest_plugin.py").write_text(
        "from contest.teststep import TestStep, for_each_target\n\n\n"
        "class LocalProbe(TestStep):\n"
        '    """Runs a probe on the server (declared, as a plugin author would)."""\n\n'
        '    name = "LocalProbe"\n'
        "    runs_local_processes = True\n\n"
        "    async def run(self, ctx, ch, params, ev, resume_state):\n"
        "        async def one(ctx, target):\n"
        "            return None\n\n"
        "        await for_each_target(ctx, ch, one)\n\n\n"
        "def load():\n"
        '    return "LocalProbe", LocalProbe, ()\n'
    )
    info = site / "sectest_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sectest-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[contest.teststeps]\nlocalprobe = sectest_plugin:load\n"
    )


@pytest.fixture(scope="module")
def confined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Confined]:
    folder = tmp_path_factory.mktemp("confined")
    secrets, root, outside = folder / "secrets", folder / "root", folder / "outside"
    for d in (secrets, root, outside):
        d.mkdir()
    (secrets / "pw").write_text("s3cret\n")
    (secrets / "big").write_bytes(b"x" * (1024 * 1024))
    (secrets / "zero").symlink_to("/dev/zero")  # leads outside: refused (see the bombs)
    os.mkfifo(secrets / "fifo")
    (outside / "pw").write_text("not for jobs\n")
    (root / "steps.json").write_text(json.dumps(STEPS_DOC))
    (root / "hosts.csv").write_text("h1,h1.test,,\n")
    (outside / "steps.json").write_text(json.dumps(STEPS_DOC))
    (root / "escape.json").symlink_to(outside / "steps.json")
    _third_party_plugin(folder / "site")
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{web.server_address[1]}"
    server = ServerProcess(
        folder,
        f"sqlite:///{folder / 'contest.db'}",
        "--secrets-dir",
        str(secrets),
        "--fetch-root",
        str(root),
        "--allow-fetch-url",
        f"{base}/tests/",
        "--public-url",
        "https://contest.example.org",
        local_exec=False,
        env={SECRET_ENV: "from-the-environment", "PYTHONPATH": str(folder / "site")},
    ).start()
    try:
        yield Confined(server, secrets, root, outside, base)
    finally:
        web.shutdown()
        try:
            server.stop()
        finally:
            server.kill()


# --- host names and origins ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST.",
        "127.0.0.1",
        "127.0.0.1:1",  # any port: a proxy in front may use another
        "[::1]:8080",
        "contest.example.org",  # --public-url
        socket.gethostname(),
    ],
)
def test_the_servers_own_names_and_addresses_are_answered(confined: Confined, host: str) -> None:
    resp = httpx.get(f"{confined.server.url}/api/v1/version", headers={"Host": host})
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example"])
def test_a_foreign_host_name_is_refused_dns_rebinding(confined: Confined, host: str) -> None:
    resp = httpx.get(f"{confined.server.url}/api/v1/version", headers={"Host": host})
    assert resp.status_code == 403 and "host name" in resp.json()["error"]
    resp = httpx.post(
        f"{confined.server.url}/version", data={"requestor": "x"}, headers={"Host": host}
    )
    assert resp.status_code == 403 and "host name" in resp.json()["Msg"]


def _job_count(server: ServerProcess) -> int:
    return len(server.get("/api/v1/jobs", limit="1000").json()["jobs"])


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # another port is another origin
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_cross_site_post_changes_nothing(confined: Confined, headers: dict[str, str]) -> None:
    server = confined.server
    before = _job_count(server)
    desc = json.dumps(job([{"name": "noop", "label": "n", "parameters": {}}]))
    resp = httpx.post(
        f"{server.url}/start", data={"requestor": "x", "jobDesc": desc}, headers=headers
    )
    assert resp.status_code == 403 and resp.json()["Msg"] == "cross-origin request refused"
    resp = httpx.post(f"{server.url}/api/v1/jobs", json={"descriptor": desc}, headers=headers)
    assert resp.status_code == 403 and resp.json()["error"] == "cross-origin request refused"
    assert _job_count(server) == before
    # reading is not refused: without CORS headers a foreign page cannot see the answer anyway
    assert httpx.get(f"{server.url}/api/v1/jobs", headers=headers).status_code == 200


@pytest.mark.parametrize("origin", ["self", "https://contest.example.org"])
def test_a_same_origin_post_is_accepted(confined: Confined, origin: str) -> None:
    server = confined.server
    desc = json.dumps(job([{"name": "noop", "label": "n", "parameters": {}}]))
    resp = httpx.post(
        f"{server.url}/start",
        data={"requestor": "x", "jobDesc": desc},
        headers={"Origin": server.url if origin == "self" else origin},
    )
    assert resp.status_code == 200 and resp.json()["Error"] is None, resp.text


# --- local programs -----------------------------------------------------------------------------


LOCAL_STEPS = [
    ({"name": "Cmd", "label": "run", "parameters": {"executable": ["id"]}}, "Cmd", "run"),
    (
        {"name": "GatherCmd", "label": "setup", "parameters": {"binary": ["id"]}},
        "GatherCmd",
        "setup",
    ),
    (
        {
            "name": "Exec",
            "label": "exec",
            "parameters": {
                "bag": [{"bin": {"path": "/usr/bin/id"}, "transport": {"proto": "local"}}]
            },
        },
        "Exec",
        "exec",
    ),
    (exec_ssh(send_binary=True), "Exec", "exec"),
    ({"name": "LocalProbe", "label": "probe", "parameters": {}}, "LocalProbe", "probe"),
]


@pytest.mark.parametrize(("step", "name", "label"), LOCAL_STEPS)
def test_steps_running_local_programs_are_refused_without_the_flag(
    confined: Confined, step: dict[str, Any], name: str, label: str
) -> None:
    errors = refused(confined.server, job([step]))
    assert f"step {name} (label {label!r}) runs programs on the server's machine" in errors
    assert LOCAL_FLAG in errors
    # ConTest's API says it too (its first problem)
    resp = httpx.post(
        f"{confined.server.url}/start",
        data={"requestor": "x", "jobDesc": json.dumps(job([step]))},
    )
    assert LOCAL_FLAG in resp.json()["Error"] and resp.json()["Data"] == {"JobID": 0}


def test_steps_running_nothing_locally_are_accepted(confined: Confined) -> None:
    job_id = accepted(confined.server, job([exec_ssh(), sshcmd()]))  # over SSH, not here
    assert final_state(confined.server, job_id) == "JobStateCompleted"


def test_local_programs_run_with_the_flag_and_under_contest_run(
    confined: Confined, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    marker = tmp_path / "ran"
    steps = [
        {
            "name": "Cmd",
            "label": "run",
            "parameters": {"executable": ["touch"], "args": [str(marker)]},
        }
    ]
    server = server_factory(tmp_path, f"sqlite:///{tmp_path / 'a.db'}").start()  # with the flag
    assert final_state(server, accepted(server, job(steps))) == "JobStateCompleted"
    assert marker.exists()
    marker.unlink()
    path = write_descriptor(tmp_path, "job.json", job(steps))
    proc = contest("run", str(path), "--json", "--db", f"sqlite:///{tmp_path / 'run.db'}")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert marker.exists()


def test_a_paused_job_is_not_resumed_by_a_server_without_the_flag(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    steps = [
        {"name": "sleep", "label": "nap", "parameters": {"duration": ["30s"]}},
        {"name": "Cmd", "label": "run", "parameters": {"executable": ["true"]}},
    ]
    first = server_factory(tmp_path, db, "--pause-timeout=-1s").start()
    job_id = accepted(first, job(steps))
    first.wait_state(job_id, "JobStateStarted")
    time.sleep(0.5)
    first.send(signal.SIGTERM)
    assert first.wait(30) == 0
    again = server_factory(tmp_path, db, name="again", local_exec=False).start()
    assert again.wait_state(job_id, "JobStateFailed") == "JobStateFailed"
    status = again.get(f"/api/v1/jobs/{job_id}/status").json()
    assert f"failed to resume job {job_id}" in status["StateErrMsg"]
    assert LOCAL_FLAG in status["StateErrMsg"]


# --- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "param"),
    [
        (sshcmd(password_file="/etc/passwd"), "password_file"),
        (sshcmd(password_file="../outside/pw"), "password_file"),
        (sshcmd(password_file="zero"), "password_file"),  # a link to /dev/zero
        (sshcmd(private_key_file="/etc/ssh/ssh_host_ed25519_key"), "private_key_file"),
        (sshcmd(known_hosts="/etc/hosts"), "known_hosts"),
        (exec_ssh(password_file="/etc/shadow"), "bag.transport.options.password_file"),
        (exec_ssh(identity_file="/root/.ssh/id_rsa"), "bag.transport.options.identity_file"),
    ],
)
def test_secret_files_outside_the_secrets_dir_are_refused(
    confined: Confined, step: dict[str, Any], param: str
) -> None:
    errors = refused(confined.server, job([step]))
    assert f"{param}: " in errors and "is not under the server's --secrets-dir" in errors


def test_without_a_secrets_dir_no_secret_file_is_read(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(tmp_path, f"sqlite:///{tmp_path / 'c.db'}").start()
    errors = refused(server, job([sshcmd(password_file=str(tmp_path / "pw"))]))
    assert "password_file: this server reads no secret files" in errors
    assert "--secrets-dir DIR" in errors


@pytest.mark.parametrize("variable", ["HOME", "PATH", "CONTEST_TOKEN"])
def test_password_variables_must_be_named_contest_secret(confined: Confined, variable: str) -> None:
    errors = refused(confined.server, job([sshcmd(password_env=variable)]))
    assert "password_env: this server reads only environment variables named CONTEST_SECRET_*" in (
        errors
    )


def test_secrets_under_the_dir_and_contest_secret_variables_are_used(confined: Confined) -> None:
    """Accepted, read when the target runs (the SSH login then fails: port 1 is closed)."""
    for step in (sshcmd(password_file="pw"), sshcmd(password_env=SECRET_ENV)):
        job_id = accepted(confined.server, job([step]))
        assert final_state(confined.server, job_id) == "JobStateCompleted"  # the run; targets:
        (error,) = target_errors(confined.server, job_id)
        assert "cannot connect to SSH server 127.0.0.1:1" in error


@pytest.mark.parametrize(
    ("password_file", "message"),
    [
        ("fifo", "password_file: cannot read 'fifo': not a regular file"),  # never blocks
        ("big", "password_file: cannot read 'big': larger than 65536 bytes"),
        ("{{ .FQDN }}", "is not under the server's --secrets-dir"),  # ../../outside/pw
    ],
)
def test_secret_files_are_checked_again_when_read(
    confined: Confined, password_file: str, message: str
) -> None:
    desc = job([sshcmd(password_file=password_file)])
    targets = desc["TestDescriptors"][0]["TargetManagerAcquireParameters"]["Targets"]
    targets[0]["FQDN"] = "../outside/pw"
    job_id = accepted(confined.server, desc)
    assert final_state(confined.server, job_id) == "JobStateCompleted"
    (error,) = target_errors(confined.server, job_id)
    assert message in error


# --- fetching -----------------------------------------------------------------------------------


def uri(where: str) -> tuple[str, dict[str, Any]]:
    return ("URI", {"TestName": "fetched", "URI": where})


def test_test_files_under_the_fetch_root_are_fetched(confined: Confined) -> None:
    for where in (
        "steps.json",
        str(confined.root / "steps.json"),
        f"file://{confined.root}/steps.json",
    ):
        job_id = accepted(confined.server, job(fetcher=uri(where)))
        assert final_state(confined.server, job_id) == "JobStateCompleted", where


@pytest.mark.parametrize(
    "where",
    ["../outside/steps.json", "/etc/passwd", "file:///etc/passwd", "escape.json", "/dev/zero"],
)
def test_files_outside_the_fetch_root_are_refused(confined: Confined, where: str) -> None:
    errors = refused(confined.server, job(fetcher=uri(where)))
    assert "URI: " in errors and "is not under the server's --fetch-root" in errors


def test_urls_are_fetched_only_under_an_allowed_prefix(confined: Confined) -> None:
    job_id = accepted(confined.server, job(fetcher=uri(f"{confined.web}/tests/steps.json")))
    assert final_state(confined.server, job_id) == "JobStateCompleted"
    errors = refused(confined.server, job(fetcher=uri(f"{confined.web}/other/steps.json")))
    assert "is under none of the server's --allow-fetch-url prefixes" in errors
    errors = refused(confined.server, job(fetcher=uri(f"{confined.web}/tests/away")))
    assert f"{confined.web}/other/steps.json" in errors and "--allow-fetch-url" in errors
    errors = refused(confined.server, job(fetcher=uri(f"{confined.web}/tests/../other/steps.json")))
    assert "--allow-fetch-url" in errors


def test_without_allowed_prefixes_no_url_is_fetched(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(tmp_path, f"sqlite:///{tmp_path / 'c.db'}").start()
    errors = refused(server, job(fetcher=uri("https://example.org/steps.json")))
    assert (
        "this server fetches no URLs (start contest serve with --allow-fetch-url PREFIX" in errors
    )


def test_target_files_obey_the_fetch_root_too(confined: Confined) -> None:
    def csv(where: str) -> tuple[str, dict[str, Any]]:
        return (
            "CSVFileTargetManager",
            {"FileURI": where, "MinNumberDevices": 1, "MaxNumberDevices": 1},
        )

    steps = [{"name": "noop", "label": "n", "parameters": {}}]
    job_id = accepted(confined.server, job(steps, manager=csv("hosts.csv")))
    assert final_state(confined.server, job_id) == "JobStateCompleted"
    errors = refused(confined.server, job(steps, manager=csv("/etc/passwd")))
    assert "FileURI: '/etc/passwd' is not under the server's --fetch-root" in errors


# --- requestors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("requestor", ["bad\nname", "esc\x1b[31m", "tab\there", "del\x7f"])
def test_requestors_with_control_characters_are_refused(confined: Confined, requestor: str) -> None:
    server = confined.server
    before = _job_count(server)
    desc = json.dumps(sleep_job("1s"))
    resp = httpx.post(f"{server.url}/start", data={"requestor": requestor, "jobDesc": desc})
    assert resp.status_code == 400
    assert resp.json()["Msg"] == "Start failed: requestor name may not contain control characters"
    resp = httpx.post(
        f"{server.url}/api/v1/jobs", json={"descriptor": desc, "requestor": requestor}
    )
    assert resp.status_code == 400 and "printable ASCII" in resp.json()["error"]
    assert _job_count(server) == before
