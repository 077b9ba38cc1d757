"""Several ``contest serve`` processes on one database (issue 12's foundation), real processes
on real PostgreSQL and MariaDB databases made for the test, with a 2 s job lease:

* two servers started with no flags on one host are two instances: a ``kill -9`` and restart of
  one never fails the other's running job, which completes; the killed one's job is failed as a
  zombie once its lease lapses (by the database's clock), by the restarted server's sweep;
* a stop received by the server that does not run the job reaches its owner through the
  database and takes effect within 2 s; a retry through either works;
* ``contestcli servers`` and ``GET /api/v1/servers`` list the live servers with their jobs.

And SQLite, one server per file: a second server on a live server's file refuses to start,
naming the file and the live server's pid; ``contest run`` on that file meanwhile runs its own
job, and neither fails the other's.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from e2ekit import CONTEST, ServerProcess, contestcli, sleep_job, start_all, write_descriptor

LEASE = "2s"
# ConTest's behaviour (--no-resume-jobs): a dead server's jobs are failed as zombies; the
# default, a takeover, is tests/e2e/test_e2e_takeover.py's
CONTEST_ZOMBIES = ("--job-lease", LEASE, "--no-resume-jobs")


def targets_job(seconds: str, prefix: str, n: int = 2) -> dict[str, Any]:
    desc = sleep_job(seconds, n, name=f"job-{prefix}")
    desc["TestDescriptors"][0]["TargetManagerAcquireParameters"]["Targets"] = [
        {"ID": f"{prefix}{i}"} for i in range(n)
    ]
    return desc


def wait_in_flight(server: ServerProcess, job_id: int, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = [r for r in server.progress(job_id)["Steps"] if r["Step"] == "nap"]
        if rows and rows[0]["InFlight"] >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id}: not {n} targets in the step: {rows}")


def state_names(server: ServerProcess, job_id: int) -> list[str]:
    events = server.get(f"/api/v1/jobs/{job_id}/events", kind="framework").json()["events"]
    return [e["name"] for e in events if e["name"].startswith("JobState")]


def live(server: ServerProcess) -> list[dict[str, Any]]:
    resp = server.get("/api/v1/servers")
    assert resp.status_code == 200, resp.text
    servers: list[dict[str, Any]] = resp.json()["servers"]
    return servers


def test_two_servers_without_flags_share_a_database(
    shared_db: str, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    host = socket.gethostname()
    a, b = start_all(
        server_factory(tmp_path, shared_db, *CONTEST_ZOMBIES, server_id="", name="a"),
        server_factory(tmp_path, shared_db, *CONTEST_ZOMBIES, server_id="", name="b"),
    )
    both = live(b)
    assert len(both) == 2
    assert {s["server_id"] for s in both} == {host}  # ConTest's ServerID: the host name
    ids = {s["instance_id"] for s in both}
    assert len(ids) == 2 and all(i.startswith(f"{host}-") for i in ids)
    assert {s["pid"] for s in both} == {a.proc.pid, b.proc.pid}  # type: ignore[union-attr]

    on_b = b.submit(targets_job("6s", "b"))
    on_a = a.submit(targets_job("120s", "a"))
    wait_in_flight(b, on_b, 2)
    wait_in_flight(a, on_a, 2)
    running = {s["pid"]: s["jobs"] for s in live(a)}
    assert running == {a.proc.pid: [on_a], b.proc.pid: [on_b]}  # type: ignore[union-attr]

    # kill -9 one server and start it again (no flags: the same ServerID, a new instance)
    a.send(signal.SIGKILL)
    a.wait(10)
    a2 = server_factory(tmp_path, shared_db, *CONTEST_ZOMBIES, server_id="", name="a2")
    a2.start()
    # the other server's job runs on to its end: never failed by the restart
    assert b.wait_state(on_b, "JobStateCompleted", "JobStateFailed", timeout=30) == (
        "JobStateCompleted"
    )
    assert state_names(b, on_b) == ["JobStateStarted", "JobStateCompleted"]
    # the killed server's job: a zombie once its lease lapsed (2 s), found by a2's sweep
    killed_at = time.monotonic()
    assert a2.wait_state(on_a, "JobStateFailed", timeout=15) == "JobStateFailed"
    assert time.monotonic() - killed_at < 15
    doc = a2.get(f"/api/v1/jobs/{on_a}/status").json()
    assert doc["StateErrMsg"].startswith(f"Job {on_a} was zombieed")
    assert state_names(b, on_a) == ["JobStateStarted", "JobStateFailed"]

    # a stop received by the server that does not run the job: cancelled within 2 s
    on_a2 = a2.submit(targets_job("120s", "c"))
    wait_in_flight(a2, on_a2, 2)
    # the other server's page of the job offers to stop it
    assert f'action="/jobs/{on_a2}/stop"' in b.get(f"/jobs/{on_a2}").text
    asked = time.monotonic()
    out = json.loads(b.post("stop", f"requestor=e2e&jobID={on_a2}").content)
    assert out["Error"] is None, out
    a2.wait_state(on_a2, "JobStateCancelled", timeout=2.0)
    took = time.monotonic() - asked
    assert took < 2.0, took
    # a retry through either server starts a new job from the same descriptor
    retried = json.loads(b.post("retry", f"requestor=e2e&jobID={on_a2}").content)
    assert retried["Error"] is None, retried
    new_id = retried["Data"]["NewJobID"]
    assert new_id > on_a2
    b.wait_state(new_id, "JobStateStarted", timeout=10)
    out = json.loads(a2.post("stop", f"requestor=e2e&jobID={new_id}").content)
    assert out["Error"] is None, out  # stopped through the other server again, whichever ran it
    a2.wait_state(new_id, "JobStateCancelled", timeout=2.0)

    # contestcli servers: both live ones, the killed one gone (its heartbeat lapsed)
    listing = contestcli("servers", addr=b.url, timeout=30)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:3] == ["INSTANCE", "SERVER", "ID"]
    assert len(lines) == 3, listing.stdout
    pids = {a2.proc.pid, b.proc.pid}  # type: ignore[union-attr]
    assert {int(line.split()[3]) for line in lines[1:]} == pids
    as_json = json.loads(contestcli("servers", "--json", addr=a2.url, timeout=30).stdout)
    assert {s["pid"] for s in as_json["servers"]} == pids
    assert all(s["heartbeat_age"] < 2.0 for s in as_json["servers"])

    metrics = b.get("/metrics").text
    (age,) = [line for line in metrics.splitlines() if line.startswith("contest_server_heartbeat")]
    assert 0.0 <= float(age.split()[-1]) < 2.0, age

    # a clean stop removes the server's row
    assert a2.stop() == 0
    assert [s["pid"] for s in live(b)] == [b.proc.pid]  # type: ignore[union-attr]
    assert b.stop() == 0


def test_a_server_id_is_one_live_server(
    pg_db: str, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    """``--server-id`` names one live instance: a second live server with it refuses to start;
    restarted after ``kill -9`` on the same host it is taken over at once (the old pid is gone),
    and the killed process's job is failed as it starts."""
    db = pg_db
    first = server_factory(tmp_path, db, "--job-lease", LEASE, server_id="dup", name="x")
    first.start()
    job_id = first.submit(targets_job("120s", "x"))
    wait_in_flight(first, job_id, 2)
    twin = server_factory(tmp_path, db, "--job-lease", LEASE, server_id="dup", name="y")
    with pytest.raises(AssertionError, match="server exited with 1") as refused:
        twin.start(timeout=30)
    assert "server ID 'dup' is in use by a live server" in str(refused.value)
    assert f"pid {first.proc.pid}" in str(refused.value)  # type: ignore[union-attr]

    first.send(signal.SIGKILL)
    first.wait(10)
    began = time.monotonic()
    again = server_factory(tmp_path, db, *CONTEST_ZOMBIES, server_id="dup", name="z")
    again.start()
    assert again.state(job_id) == "JobStateFailed"  # at start-up: no lease to wait for
    assert time.monotonic() - began < 10
    assert [s["instance_id"] for s in live(again)] == ["dup"]
    assert again.stop() == 0


def test_sqlite_takes_one_server_and_contest_run_beside_it(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    db_file = tmp_path / "one.db"
    db = f"sqlite:///{db_file}"
    first = server_factory(tmp_path, db, "--job-lease", LEASE, name="first").start()
    job_id = first.submit(targets_job("4s", "s"))
    wait_in_flight(first, job_id, 2)

    second = server_factory(tmp_path, db, name="second")
    with pytest.raises(AssertionError, match="server exited with 1") as refused:
        second.start(timeout=30)
    message = str(refused.value)
    assert f"pid {first.proc.pid}" in message  # type: ignore[union-attr]
    assert str(db_file) in message and "one server per SQLite file" in message

    # contest run on the same file while the server runs a job: both complete
    desc = write_descriptor(tmp_path, "run.json", targets_job("1s", "r"))
    run = subprocess.run(
        [*CONTEST, "run", str(desc), "--db", db, "--json"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout[run.stdout.index("{\n") :])["State"] == "JobStateCompleted"
    assert first.wait_state(job_id, "JobStateCompleted", "JobStateFailed", timeout=30) == (
        "JobStateCompleted"
    )
    assert [s["pid"] for s in live(first)] == [first.proc.pid]  # type: ignore[union-attr]
    # a restart right after kill -9 is not refused: the OS dropped the lock with the process
    first.send(signal.SIGKILL)
    first.wait(10)
    again = server_factory(tmp_path, db, name="again").start()
    assert [s["pid"] for s in live(again)] == [again.proc.pid]  # type: ignore[union-attr]
    assert again.stop() == 0
