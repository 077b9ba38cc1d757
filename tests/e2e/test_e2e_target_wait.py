"""Waiting for busy targets through real processes (issue 10): a job whose targets another job
holds waits, and shows it in the REST progress and in ``contestcli start --wait``'s live view,
while ConTest's status document says ``JobStateStarted``; SIGTERM during the wait pauses the job
and a restarted server resumes its wait with what was left of the timeout; a wait that times out
fails the job with the holders named."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from e2ekit import CONTESTCLI, ServerProcess, json_docs, sleep_job, write_descriptor


def _start(server: ServerProcess, desc: dict[str, Any]) -> int:
    out = json.loads(
        server.post("start", urlencode({"requestor": "e2e", "jobDesc": json.dumps(desc)})).content
    )
    assert out["Error"] is None, out
    job_id: int = out["Data"]["JobID"]
    return job_id


def _on(targets: list[str], seconds: str, timeout: str | None = None) -> dict[str, Any]:
    desc = sleep_job(seconds, name=f"sleep {seconds}")
    desc["TestDescriptors"][0]["TargetManagerAcquireParameters"] = {
        "Targets": [{"ID": t} for t in targets]
    }
    if timeout is not None:
        desc["TargetManagerAcquireTimeout"] = timeout
    return desc


def _until(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _waiting(server: ServerProcess, job_id: int) -> dict[str, Any] | None:
    waiting: dict[str, Any] | None = server.progress(job_id).get("Waiting")
    return waiting


def _acquired(server: ServerProcess, job_id: int) -> bool:
    page = server.get(f"/api/v1/jobs/{job_id}/events", name=["TargetAcquired"]).json()
    return bool(page["events"])


def test_a_waiting_job_shows_what_it_waits_for_then_runs(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(
        tmp_path, f"sqlite:///{tmp_path / 'wait.db'}", "--target-wait-poll", "200ms"
    ).start()
    holder = _start(server, _on(["dut1", "dut2"], "2s"))
    _until("the holder has its targets", lambda: _acquired(server, holder))
    path = write_descriptor(tmp_path, "waiter.json", _on(["dut1", "dut2"], "10ms"))
    cli = subprocess.Popen(
        [*CONTESTCLI, "-a", server.url, "start", "-w", "--poll-interval", "0.1", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = cli.communicate(timeout=60)
    finally:
        cli.kill()
    assert cli.returncode == 0, err
    start, final = json_docs(out)
    waiter = start["Data"]["JobID"]
    assert final["Data"]["Status"]["State"] == "JobStateCompleted"
    text = f"waiting for dut1, dut2 (held by job {holder})"
    progress = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    shown = [p["Waiting"]["Text"] for p in progress if "Waiting" in p]
    assert shown and set(shown) == {text}, err
    assert all(p["State"] == "JobStateStarted" for p in progress if "Waiting" in p)
    assert progress[-1]["State"] == "JobStateCompleted" and "Waiting" not in progress[-1]
    assert server.state(holder) == "JobStateCompleted"
    events = server.get(f"/api/v1/jobs/{waiter}/events", name=["TargetsWaitEnded"]).json()
    (ended,) = events["events"]
    assert ended["payload"]["Acquired"] is True


def test_status_says_started_while_waiting_and_sigterm_pauses_the_wait(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    db = f"sqlite:///{tmp_path / 'pause.db'}"
    args = ("--target-wait-poll", "200ms", "--pause-timeout", "20s")
    server = server_factory(tmp_path, db, *args).start()
    holder = _start(server, _on(["dut1"], "3s"))
    _until("the holder has dut1", lambda: _acquired(server, holder))
    waiter = _start(server, _on(["dut1"], "10ms", timeout="1m"))
    waiting = _until("the job waits", lambda: _waiting(server, waiter))
    assert waiting["Text"] == f"waiting for dut1 (held by job {holder})"
    assert waiting["HeldBy"] == {"dut1": holder} and waiting["Timeout"] == "1m0s"
    status = server.get(f"/api/v1/jobs/{waiter}/status").json()
    assert status["State"] == "JobStateStarted" and status["StateErrMsg"] == ""
    form = json.loads(
        server.post("status", urlencode({"requestor": "e2e", "jobID": waiter})).content
    )
    assert form["Data"]["Status"]["State"] == "JobStateStarted"  # ConTest's own verb

    server.send(signal.SIGTERM)
    assert server.wait(15) == 0
    again = server_factory(tmp_path, db, *args, name="restarted").start()
    fw = again.get(f"/api/v1/jobs/{waiter}/events", kind="framework").json()["events"]
    paused = [e for e in fw if e["name"] == "JobStatePaused"]
    assert len(paused) == 1 and 30 < paused[0]["payload"]["W"] < 60, paused
    again.wait_state(holder, "JobStateCompleted", timeout=30)
    again.wait_state(waiter, "JobStateCompleted", timeout=30)
    names = [
        e["name"]
        for e in again.get(f"/api/v1/jobs/{waiter}/events", kind="framework").json()["events"]
    ]
    assert names == [
        "JobStateStarted",
        "RunStarted",
        "JobStatePaused",
        "JobStateStarted",
        "JobStateCompleted",
    ]
    acquired = again.get(f"/api/v1/jobs/{waiter}/events", name=["TargetAcquired"]).json()
    assert [e["target"]["ID"] for e in acquired["events"]] == ["dut1"]


def test_a_wait_that_times_out_fails_the_job_naming_the_holder(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(
        tmp_path, f"sqlite:///{tmp_path / 'timeout.db'}", "--target-wait-poll", "100ms"
    ).start()
    holder = _start(server, _on(["dut1", "dut2"], "5s"))
    _until("the holder has its targets", lambda: _acquired(server, holder))
    waiter = _start(server, _on(["dut1", "dut2"], "10ms", timeout="500ms"))
    server.wait_state(waiter, "JobStateFailed", timeout=20)
    form = json.loads(
        server.post("status", urlencode({"requestor": "e2e", "jobID": waiter})).content
    )
    status = form["Data"]["Status"]
    assert status["StateErrMsg"] == (
        f"could not acquire targets within 500ms: dut1 held by job {holder}, "
        f"dut2 held by job {holder}"
    )
    reports = status["JobReport"]["RunReports"][0]
    assert [(r["ReporterName"], r["Success"]) for r in reports] == [
        ("TargetSuccess", False),
        ("noop", False),
    ]


def test_contestcli_status_of_a_waiting_job_prints_the_waiting_line(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(
        tmp_path, f"sqlite:///{tmp_path / 'status.db'}", "--target-wait-poll", "200ms"
    ).start()
    holder = _start(server, _on(["dut1", "dut2"], "60s"))
    _until("the holder has its targets", lambda: _acquired(server, holder))
    waiter = _start(server, _on(["dut1", "dut2"], "10ms"))
    _until("the job waits", lambda: _waiting(server, waiter))
    line = f"waiting for dut1, dut2 (held by job {holder})"

    def status(*flags: str) -> subprocess.CompletedProcess[str]:
        argv = [*CONTESTCLI, "-a", server.url, "status", *flags, str(waiter)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return proc

    plain = status()  # off a terminal: ConTest's document on stdout, the line on stderr
    assert json.loads(plain.stdout)["Data"]["Status"]["State"] == "JobStateStarted"
    assert plain.stderr.strip() == line
    human = status("--human")  # the line above the summary
    assert human.stdout.splitlines()[0] == line and human.stderr == ""
    machine = status("--json")  # machine output only
    assert line not in machine.stdout + machine.stderr
    server.post("stop", urlencode({"requestor": "e2e", "jobID": holder}))
    server.wait_state(waiter, "JobStateCompleted", timeout=30)
    assert status().stderr == "" and line not in status("--human").stdout
