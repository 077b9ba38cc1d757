"""``contestcli`` against a real ``contest serve``: ConTest's ``tests/e2e/e2e_test.go``
and every verb: start (JSON, YAML, stdin), status, list with filters, stop, retry, version, and
``--wait`` with its exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from e2ekit import (
    CONTEST,
    CONTESTCLI,
    SERVER_ID,
    ServerProcess,
    contestcli,
    fresh_database,
    json_docs,
    literal_job,
    sleep_job,
    wait_for_text,
    write_descriptor,
)

YAML_JOB = """\
JobName: yaml job
Runs: 1
Tags: [yaml, test]
TestDescriptors:
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters:
      Targets: [{ID: T1, FQDN: t1.example.org}, {ID: T2}]
    TargetManagerReleaseParameters: {}
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: yaml test
      Steps:
        - name: echo
          label: say
          parameters:
            text: ["hello {{ .ID }}"]
Reporting:
  RunReporters:
    - name: TargetSuccess
      parameters:
        SuccessExpression: ">=100%"
"""


def _ok(proc: object) -> dict[str, object]:
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    docs = json_docs(proc.stdout)
    assert len(docs) == 1
    doc: dict[str, object] = docs[0]
    return doc


def test_without_a_server_every_verb_fails(tmp_path: Path) -> None:
    """Catalog 97: no reachable server."""
    addr = "http://127.0.0.1:9"  # discard port: nothing listens
    assert contestcli("--help", addr=addr).returncode == 0
    cases = [
        ([], "Missing verb, see --help"),
        (["INVALID"], "invalid verb: 'invalid'"),
        (["start", "NOTFOUND"], "failed to read job descriptor: open NOTFOUND"),
        (["start", "--invalid"], "unrecognized arguments: --invalid"),
        (["stop"], "missing job ID"),
        (["stop", "123"], "cannot reach"),
        (["status"], "missing job ID"),
        (["status", "123"], "cannot reach"),
        (["status", "abc"], 'Invalid job ID: abc: strconv.Atoi: parsing "abc": invalid syntax'),
        (["status", "-3"], "Invalid job ID: -3: it must be positive"),
        (["retry"], "missing job ID"),
        (["retry", "123"], "cannot reach"),
        (["version"], "cannot reach"),
        (["list", "--states", "Bogus"], 'invalid job state "Bogus"'),
    ]
    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(lambda c: contestcli(*c[0], addr=addr, cwd=tmp_path), cases))
    for (args, message), proc in zip(cases, procs, strict=True):
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert proc.stdout == "", args


def test_fresh_server_lists_nothing_then_starts_yaml(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    """Catalog 98: list is empty before any start; ``start -Y file`` gives a job ID."""
    server = server_factory(tmp_path, f"sqlite:///{tmp_path / 'fresh.db'}").start()
    out = _ok(contestcli("list", addr=server.url))
    assert out == {"ServerID": SERVER_ID, "Data": {"JobIDs": []}, "Err": None}
    path = write_descriptor(tmp_path, "job.yaml", YAML_JOB)
    out = _ok(contestcli("start", "-Y", str(path), addr=server.url))
    job_id = out["Data"]["JobID"]  # type: ignore[index]
    assert job_id == 1
    assert server.wait_state(job_id, "JobStateCompleted") == "JobStateCompleted"
    assert server.stop() == 0


def test_start_json_status_list_version(shared_server: ServerProcess, tmp_path: Path) -> None:
    server = shared_server
    path = write_descriptor(tmp_path, "job.json", literal_job(tags=("e2e", "json")))
    start = _ok(contestcli("start", str(path), addr=server.url))
    assert list(start) == ["ServerID", "Data", "Err"]
    job_id = start["Data"]["JobID"]  # type: ignore[index]
    assert start == {"ServerID": SERVER_ID, "Data": {"JobID": job_id}, "Err": None}
    server.wait_state(job_id, "JobStateCompleted")

    status = _ok(contestcli("status", str(job_id), addr=server.url))
    doc = status["Data"]["Status"]  # type: ignore[index]
    assert doc["State"] == "JobStateCompleted" and doc["StateErrMsg"] == ""
    ts = doc["RunStatus"]["TestStatuses"][0]["TestStepStatuses"][0]["TargetStatuses"][0]
    events = [e["Data"]["EventName"] for e in ts["Events"]]
    assert events == ["CmdStart", "CmdEnd"]

    # from stdin, and YAML from stdin
    out = _ok(contestcli("start", addr=server.url, stdin=path.read_bytes()))
    from_stdin = out["Data"]["JobID"]  # type: ignore[index]
    out = _ok(contestcli("start", "--yaml", addr=server.url, stdin=YAML_JOB.encode()))
    yaml_id = out["Data"]["JobID"]  # type: ignore[index]
    for j in (from_stdin, yaml_id):
        server.wait_state(j, "JobStateCompleted")

    listed = _ok(contestcli("list", "--tags", "e2e,json", addr=server.url))
    assert listed["Data"] == {"JobIDs": [job_id, from_stdin]}
    listed = _ok(contestcli("list", "--tags", "yaml", "--tags", "test", addr=server.url))
    assert listed["Data"] == {"JobIDs": [yaml_id]}
    listed = _ok(
        contestcli(
            "list", "--states=JobStateCompleted,JobStateFailed", "--tags=e2e", addr=server.url
        )
    )
    assert listed["Data"] == {"JobIDs": [job_id, from_stdin]}
    listed = _ok(contestcli("list", "--states", "JobStateCancelled", "--tags=e2e", addr=server.url))
    assert listed["Data"] == {"JobIDs": []}

    version = contestcli("version", addr=server.url)
    assert version.returncode == 0
    # exactly what ConTest's client prints (cmds/clients/contestcli/cli/verbs.go)
    assert version.stdout == (
        '{\n "ServerID": "vm",\n "Data": {\n  "Version": 5\n },\n "Err": null\n}\n'
    )


def test_stop_and_retry(shared_server: ServerProcess, tmp_path: Path) -> None:
    server = shared_server
    path = write_descriptor(tmp_path, "sleep.json", sleep_job("60s", 3))
    job_id = _ok(contestcli("start", str(path), addr=server.url))["Data"]["JobID"]  # type: ignore[index]
    server.wait_state(job_id, "JobStateStarted")
    stop = contestcli("stop", str(job_id), addr=server.url)
    assert stop.stdout == '{\n "ServerID": "vm",\n "Data": {},\n "Err": null\n}\n'
    server.wait_state(job_id, "JobStateCancelled")
    status = _ok(contestcli("status", str(job_id), addr=server.url))
    assert status["Data"]["Status"]["State"] == "JobStateCancelled"  # type: ignore[index]

    again = contestcli("stop", str(job_id), addr=server.url)
    assert again.returncode == 1
    assert json_docs(again.stdout)[0]["Err"] == f"could not stop job: unknown job ID: {job_id}"

    retry = _ok(contestcli("retry", str(job_id), addr=server.url))
    new_id = retry["Data"]["NewJobID"]  # type: ignore[index]
    assert retry["Data"] == {"JobID": job_id, "NewJobID": new_id} and new_id > job_id
    assert retry["Err"] is None
    server.wait_state(new_id, "JobStateStarted")
    _ok(contestcli("stop", str(new_id), addr=server.url))
    server.wait_state(new_id, "JobStateCancelled")

    unknown = contestcli("retry", "99999", addr=server.url)
    assert unknown.returncode == 1
    assert json_docs(unknown.stdout)[0] == {
        "ServerID": SERVER_ID,
        "Data": {"JobID": 99999, "NewJobID": 0},
        "Err": "could not find job request with id 99999",
    }


def test_server_errors_are_printed_and_exit_1(shared_server: ServerProcess) -> None:
    server = shared_server
    proc = contestcli("-r", "", "status", "1", addr=server.url)
    assert proc.returncode == 1
    assert json_docs(proc.stdout)[0] == {
        "ServerID": "",
        "Data": {"Status": None},
        "Err": "Status failed: requestor cannot be empty",
    }
    proc = contestcli("status", "424242", addr=server.url)
    assert json_docs(proc.stdout)[0]["Err"] == (
        "failed to fetch request for job ID 424242: could not find job request with id 424242"
    )
    proc = contestcli("start", addr=server.url, stdin=b'{"JobName": "x"}')
    assert proc.returncode == 1
    assert json_docs(proc.stdout)[0]["Data"] == {"JobID": 0}
    proc = contestcli("start", addr=server.url, stdin=b"[1, 2]")
    assert proc.returncode == 2
    assert "failed to parse JSON job descriptor" in proc.stderr


def test_wait_exit_codes_and_output(shared_server: ServerProcess, tmp_path: Path) -> None:
    server = shared_server
    good = write_descriptor(tmp_path, "good.json", literal_job(name="good"))
    proc = contestcli("start", "--wait", "--poll-interval", "0.1", str(good), addr=server.url)
    assert proc.returncode == 0, proc.stderr
    start, final = json_docs(proc.stdout)  # ConTest's two documents, nothing else on stdout
    assert start["Data"]["JobID"] == final["Data"]["Status"]["RunStatus"]["JobID"]
    assert final["Data"]["Status"]["State"] == "JobStateCompleted"
    assert "Waiting for job to complete..." in proc.stderr
    progress = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert progress and progress[-1]["State"] == "JobStateCompleted"
    assert progress[-1]["Steps"][0]["Passed"] == 1

    # completed, but the report failed: exit 1
    failing = literal_job(
        name="failing",
        targets=[{"ID": "ok"}, {"ID": "bad"}],
        steps=[
            {
                "name": "cmd",
                "label": "check",
                "parameters": {"executable": ["sh"], "args": ["-c", "test {{ .ID }} != bad"]},
            }
        ],
        success="=100%",
    )
    path = write_descriptor(tmp_path, "failing.json", failing)
    proc = contestcli("start", "-w", "--poll-interval", "0.1", str(path), addr=server.url)
    assert proc.returncode == 1, proc.stderr
    final = json_docs(proc.stdout)[1]["Data"]["Status"]
    assert final["State"] == "JobStateCompleted"
    assert final["JobReport"]["RunReports"][0][0]["Success"] is False

    # a refused descriptor: one document, exit 1
    proc = contestcli("start", "-w", addr=server.url, stdin=b'{"JobName": "x"}')
    assert proc.returncode == 1 and len(json_docs(proc.stdout)) == 1


def test_wait_on_a_server_that_goes_away_exits_2(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(tmp_path, f"sqlite:///{tmp_path / 'gone.db'}").start()
    path = write_descriptor(tmp_path, "sleep.json", sleep_job("60s"))
    waiting = subprocess.Popen(
        [
            *CONTESTCLI,
            "-a",
            server.url,
            "start",
            "-w",
            "--poll-interval",
            "0.1",
            "--reconnect",
            "1",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and server.get("/api/v1/jobs").json()["jobs"] == []:
            time.sleep(0.05)
        server.wait_state(1, "JobStateStarted")
        server.send(signal.SIGKILL)
        server.wait(10)
        out, err = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == 2, err
    assert "server unreachable" in err
    assert len(json_docs(out)) == 1  # the start answer only


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_other_databases(kind: str, tmp_path: Path, server_factory: type[ServerProcess]) -> None:
    """The same server on PostgreSQL and MariaDB: start, wait, status, list."""
    with fresh_database(kind, tmp_path) as url:  # type: ignore[arg-type]
        server = server_factory(tmp_path, url).start()
        path = write_descriptor(tmp_path, "job.json", literal_job())
        proc = contestcli("start", "-w", "--poll-interval", "0.1", str(path), addr=server.url)
        assert proc.returncode == 0, proc.stderr
        job_id = json_docs(proc.stdout)[0]["Data"]["JobID"]
        listed = _ok(contestcli("list", "--states", "JobStateCompleted", addr=server.url))
        assert listed["Data"] == {"JobIDs": [job_id]}
        assert server.stop() == 0


def test_no_options_serves_sqlite_here_on_port_8080(tmp_path: Path) -> None:
    """``contest serve`` alone: SQLite in the current folder, 127.0.0.1:8080, where a browser
    finds the jobs ``contest run`` (here as ``python -m contest run``) stored in that folder."""
    import socket
    import sys

    import httpx

    job = write_descriptor(tmp_path, "run.json", literal_job(name="run here"))
    ran = subprocess.run(
        [sys.executable, "-m", "contest", "run", str(job), "--json"],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 8080))
        except OSError:
            pytest.fail("port 8080 is taken on this machine: free it to check the defaults")
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([*CONTEST, "serve"], cwd=tmp_path, stdout=log, stderr=log)
    try:
        text = wait_for_text(tmp_path / "serve.log", "listening on")
        assert "listening on http://127.0.0.1:8080 " in text, text
        assert "sqlite" in text and (tmp_path / "contest.db").exists()
        out = _ok(contestcli("version"))  # contestcli's default address finds it
        assert out["Data"] == {"Version": 5}
        page = httpx.get("http://127.0.0.1:8080/", timeout=30)
        assert page.status_code == 200 and "run here" in page.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        log.close()


def test_wait_on_a_terminal_shows_the_live_table(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    """``--wait`` on a terminal: rich's live table (test, step, in flight, passed, failed), then
    a short summary; exit 0."""
    import os
    import pty

    path = write_descriptor(tmp_path, "tty.json", sleep_job("1s", 5, name="tty"))
    pid, fd = pty.fork()
    if pid == 0:  # the child: contestcli on the terminal
        os.execv(
            CONTESTCLI[0],
            [
                *CONTESTCLI,
                "-a",
                shared_server.url,
                "start",
                "-w",
                "--poll-interval",
                "0.2",
                str(path),
            ],
        )
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    screen = b"".join(chunks).decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, screen
    for word in ("in flight", "passed", "failed", "nap", "after", "JobStateCompleted"):
        assert word in screen, (word, screen)
    assert '"tty" succeeded: completed after ' in screen  # the summary, for a person
    assert "5 targets: 5 passed, 0 failed, 0 not run" in screen
