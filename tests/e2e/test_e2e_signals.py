"""The server's signals and restarts, on real processes (ConTest's
``cmds/contest/server/server.go``).

* SIGTERM mid-job with ``--pause-timeout``: the job pauses, the process exits quickly; the next
  server on the same database resumes it, and the event log is that of an uninterrupted run.
* ``kill -9``: the next server fails the job as a zombie, with a message saying so, and serves.
* the default: SIGTERM pauses (a minute before escalating to cancel); ``--pause-timeout 0``
  (ConTest's default): SIGTERM or SIGINT cancels; a second signal cancels a job that is slow to
  pause; a positive timeout escalates to cancel, and the job's summary says so.
* SIGUSR1 drains: no new requests, running jobs finish, then the process exits.
"""

from __future__ import annotations

import collections
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2ekit import ServerProcess, contestcli, literal_job, sleep_job

from contest.storage import JobState


def wait_in_flight(server: ServerProcess, job_id: int, step: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = [r for r in server.progress(job_id)["Steps"] if r["Step"] == step]
        if rows and rows[0]["InFlight"] >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id}: not {n} targets in {step}: {rows}")


def status(server: ServerProcess, job_id: int) -> dict[str, Any]:
    doc: dict[str, Any] = server.get(f"/api/v1/jobs/{job_id}/status").json()
    return doc


def routing_counts(server: ServerProcess, job_id: int) -> collections.Counter[tuple[str, str, str]]:
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    after = 0
    while True:
        page = server.get(
            f"/api/v1/jobs/{job_id}/events",
            name=["TargetIn", "TargetOut", "TargetErr", "TargetAcquired", "TargetReleased"],
            after=after,
            limit=10000,
        ).json()
        if not page["events"]:
            return counts
        for ev in page["events"]:
            counts[(ev["step_label"], ev["target"]["ID"], ev["name"])] += 1
        after = page["next_after"]


def test_sigterm_pauses_2000_targets_and_a_restart_completes_them(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    db = f"sqlite:///{tmp_path / 'pause.db'}"
    server = server_factory(tmp_path, db, "--pause-timeout", "30s").start()
    n = 2000
    job_id = server.submit(sleep_job("6s", n, name="big"))
    wait_in_flight(server, job_id, "nap", n, timeout=60)

    began = time.monotonic()
    server.send(signal.SIGTERM)
    assert server.wait(10) == 0
    took = time.monotonic() - began
    assert took < 5.0, f"the server took {took:.1f}s to exit\n{server.output()}"

    # between the two servers, the database says the job is paused
    with sqlite3.connect(tmp_path / "pause.db") as conn:
        (state,) = conn.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    assert JobState(state) is JobState.PAUSED

    again = server_factory(tmp_path, db, "--pause-timeout", "30s", name="restarted").start()
    fw = again.get(f"/api/v1/jobs/{job_id}/events", kind="framework").json()["events"]
    names = [e["name"] for e in fw]
    assert names[:3] == ["JobStateStarted", "RunStarted", "JobStatePaused"], names
    again.wait_state(job_id, "JobStateCompleted", timeout=60)
    names = [
        e["name"]
        for e in again.get(f"/api/v1/jobs/{job_id}/events", kind="framework").json()["events"]
    ]
    assert names == [
        "JobStateStarted",
        "RunStarted",
        "JobStatePaused",
        "JobStateStarted",
        "JobStateCompleted",
    ]

    counts = routing_counts(again, job_id)
    targets = [f"T{i:04d}" for i in range(n)]
    for label in ("nap", "after"):
        for t in targets:
            assert counts[(label, t, "TargetIn")] == 1, (label, t)
            assert counts[(label, t, "TargetOut")] == 1, (label, t)
            assert counts[(label, t, "TargetErr")] == 0, (label, t)
    for t in targets:  # acquired and released once, across the restart
        assert counts[("", t, "TargetAcquired")] == 1
        assert counts[("", t, "TargetReleased")] == 1
    assert sum(counts.values()) == 6 * n
    doc = status(again, job_id)
    assert doc["JobReport"]["RunReports"][0][0]["Success"] is True
    assert again.stop() == 0


def test_kill_9_leaves_a_zombie_that_the_next_server_fails_without_resume(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    db = f"sqlite:///{tmp_path / 'zombie.db'}"
    server = server_factory(tmp_path, db).start()
    job_id = server.submit(sleep_job("60s", 2))
    wait_in_flight(server, job_id, "nap", 2, timeout=30)
    server.send(signal.SIGKILL)
    server.wait(10)

    # ConTest's behaviour; by default the job is resumed (tests/e2e/test_e2e_takeover.py)
    again = server_factory(tmp_path, db, "--no-resume-jobs", name="restarted").start()
    assert again.state(job_id) == "JobStateFailed"
    doc = status(again, job_id)
    assert doc["State"] == "JobStateFailed"
    assert doc["StateErrMsg"].startswith(f"Job {job_id} was zombieed")
    assert "stopped while it was running" in doc["StateErrMsg"]
    assert doc["EndTime"] is not None
    # and it serves: a new job (on the zombie's own targets: tests/e2e/test_e2e_dead_jobs.py)
    assert again.post("version", "requestor=e2e").status_code == 200
    other = literal_job(targets=[{"ID": "fresh"}])
    new_id = again.submit(other)
    assert again.wait_state(new_id, "JobStateCompleted") == "JobStateCompleted"
    assert again.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_pause_timeout_zero_cancels_at_the_first_signal(
    sig: signal.Signals, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    db = f"sqlite:///{tmp_path / 'cancel.db'}"
    server = server_factory(tmp_path, db, "--pause-timeout", "0").start()  # ConTest's default
    job_id = server.submit(sleep_job("60s", 3))
    wait_in_flight(server, job_id, "nap", 3, timeout=30)
    server.send(sig)
    assert server.wait(10) == 0
    again = server_factory(tmp_path, db, name="restarted").start()
    assert again.state(job_id) == "JobStateCancelled"
    counts = routing_counts(again, job_id)
    assert sum(1 for k in counts if k[2] == "TargetReleased") == 3
    assert again.stop() == 0


def _slow_to_pause() -> dict[str, Any]:
    """A step that does not pause (a command runs to its end), so only cancel stops it."""
    return literal_job(
        name="stubborn",
        targets=[{"ID": "S1"}],
        steps=[
            {
                "name": "cmd",
                "label": "long",
                "parameters": {"executable": ["sleep"], "args": ["60"]},
            },
        ],
    )


def test_a_second_signal_cancels(tmp_path: Path, server_factory: type[ServerProcess]) -> None:
    db = f"sqlite:///{tmp_path / 'second.db'}"
    server = server_factory(tmp_path, db, "--pause-timeout=-1s").start()
    job_id = server.submit(_slow_to_pause())
    wait_in_flight(server, job_id, "long", 1, timeout=30)
    server.send(signal.SIGTERM)
    time.sleep(0.5)
    assert server.proc is not None and server.proc.poll() is None  # still pausing
    server.send(signal.SIGTERM)
    assert server.wait(15) == 0
    again = server_factory(tmp_path, db, name="restarted").start()
    assert again.state(job_id) == "JobStateCancelled"
    assert again.stop() == 0


def test_a_positive_pause_timeout_escalates_to_cancel(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    db = f"sqlite:///{tmp_path / 'escalate.db'}"
    server = server_factory(tmp_path, db, "--pause-timeout", "1s").start()
    job_id = server.submit(_slow_to_pause())
    wait_in_flight(server, job_id, "long", 1, timeout=30)
    began = time.monotonic()
    server.send(signal.SIGTERM)
    assert server.wait(15) == 0
    assert time.monotonic() - began >= 0.9
    again = server_factory(tmp_path, db, name="restarted").start()
    assert again.state(job_id) == "JobStateCancelled"
    # the failure summary says why, and which target was stopped where
    proc = contestcli("status", str(job_id), "--human", addr=again.url)
    assert f'Job {job_id} "stubborn" was cancelled after ' in proc.stdout
    assert "  reason: cancelled: pause timeout reached\n" in proc.stdout
    assert 'NOT FINISHED S1 in step "long"' in proc.stdout
    proc = contestcli("report", str(job_id), "--junit", addr=again.url)
    assert proc.returncode == 1
    assert 'message="did not finish step &quot;long&quot;: cancelled: pause timeout reached"' in (
        proc.stdout
    )
    assert again.stop() == 0


def test_sigterm_pauses_by_default(tmp_path: Path, server_factory: type[ServerProcess]) -> None:
    """No --pause-timeout: SIGTERM pauses (the README's promise that jobs survive a restart),
    and the next server resumes the job."""
    db = f"sqlite:///{tmp_path / 'default.db'}"
    server = server_factory(tmp_path, db).start()
    job_id = server.submit(sleep_job("3s", 2))
    wait_in_flight(server, job_id, "nap", 2, timeout=30)
    server.send(signal.SIGTERM)
    assert server.wait(15) == 0
    assert "SIGTERM: pausing every job (cancelling those still running after 60s)" in (
        server.output()
    )
    with sqlite3.connect(tmp_path / "default.db") as conn:
        (state,) = conn.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    assert JobState(state) is JobState.PAUSED
    again = server_factory(tmp_path, db, name="restarted").start()
    assert again.wait_state(job_id, "JobStateCompleted", timeout=30) == "JobStateCompleted"
    assert again.stop() == 0


def test_sigusr1_drains(tmp_path: Path, server_factory: type[ServerProcess]) -> None:
    db = f"sqlite:///{tmp_path / 'drain.db'}"
    server = server_factory(tmp_path, db).start()
    job_id = server.submit(sleep_job("2s", 2))
    wait_in_flight(server, job_id, "nap", 2, timeout=30)
    server.send(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    refused = False
    while time.monotonic() < deadline and not refused:
        try:
            httpx.post(f"{server.url}/version", data={"requestor": "x"}, timeout=1)
            time.sleep(0.05)
        except httpx.HTTPError:
            refused = True
    assert refused, "the server still takes requests after SIGUSR1"
    assert server.wait(30) == 0
    again = server_factory(tmp_path, db, name="restarted").start()
    assert again.state(job_id) == "JobStateCompleted"
    assert again.stop() == 0
