"""Takeover (issue 12, item 3): a job whose server dies is resumed, by another server or by the
restarted one, from where its stored events leave it. Real ``contest serve`` processes, real
``kill -9``, real databases made for the test, a 2 s job lease:

* three servers on one PostgreSQL database and on one MariaDB database: the owner of three jobs
  (two running over their targets, a third queued behind one of them for the same targets) is
  killed mid-step; the other servers complete every job within lease + 30 s; every target
  passes every step; a target that had finished a step does not run it again, a target that
  was inside a step that keeps no checkpoint (SlowEcho) re-enters it once (the lost attempt
  marked ``TargetInterrupted``, naming the dead instance); no target is ever held by two jobs
  at once;
* one server on SQLite, killed mid-job and restarted with its defaults: the job resumes and
  completes, finished steps not run again, and the targets inside a step that keeps
  checkpoints (Sleep, once its checkpoint is stored) resume inside it from the checkpoint
  (``contest.checkpoint``): entered once, never interrupted.

``--no-resume-jobs`` (ConTest's behaviour: zombies failed) is tests/e2e/test_e2e_servers.py's and
tests/e2e/test_e2e_dead_jobs.py's.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

from e2ekit import ServerProcess, literal_job, start_all

LEASE = 2.0
STEPS = ("warm", "nap", "after")
# long enough for the three jobs to be inside it together before the kill, even on a loaded
# machine (they start one after the other); the resumed attempt runs all of it again
NAP = "4s"


def job(name: str, targets: list[str], nap: str, *, checkpoints: bool = False) -> dict[str, Any]:
    """Targets through a short step, a long one, and a last one. The long one is Sleep (it
    keeps checkpoints) with ``checkpoints``, else SlowEcho (it keeps none: a target inside
    re-enters it on takeover)."""
    if checkpoints:
        long = {"name": "sleep", "label": "nap", "parameters": {"duration": [nap]}}
    else:
        seconds = nap.removesuffix("s")
        long = {
            "name": "slowecho",
            "label": "nap",
            "parameters": {"sleep": [seconds], "text": ["z"]},
        }
    return literal_job(
        name=name,
        targets=[{"ID": t} for t in targets],
        steps=[
            {"name": "sleep", "label": "warm", "parameters": {"duration": ["0.2s"]}},
            long,
            {"name": "noop", "label": "after", "parameters": {}},
        ],
        success="=100%",
    )


def events(server: ServerProcess, job_id: int, *names: str) -> list[dict[str, Any]]:
    page = server.get(f"/api/v1/jobs/{job_id}/events", name=list(names), limit=10000).json()
    out: list[dict[str, Any]] = page["events"]
    return out


def framework(server: ServerProcess, job_id: int) -> list[str]:
    got = server.get(f"/api/v1/jobs/{job_id}/events", kind="framework").json()["events"]
    return [e["name"] for e in got if e["name"].startswith("JobState")]


def instance_of(server: ServerProcess) -> str:
    assert server.proc is not None
    for s in server.get("/api/v1/servers").json()["servers"]:
        if s["pid"] == server.proc.pid:
            return str(s["instance_id"])
    raise AssertionError("the server is not listed")


def check_resumed(
    server: ServerProcess, job_id: int, targets: list[str], lost: str, inside: str | None
) -> None:
    """Every target passed every step; each entered each step once, plus one interrupted
    attempt at ``inside`` (the step it was in when its server died), marked as such (None:
    none was interrupted: each resumed where it stood)."""
    routing = events(server, job_id, "TargetIn", "TargetOut", "TargetErr", "TargetInterrupted")
    count = Counter((e["target"]["ID"], e["step_label"], e["name"]) for e in routing)
    assert not [e for e in routing if e["name"] == "TargetErr"], routing
    for t in targets:
        for label in STEPS:
            interrupted = count[(t, label, "TargetInterrupted")]
            assert interrupted == (1 if label == inside else 0), (job_id, t, label, count)
            assert count[(t, label, "TargetIn")] - interrupted == 1, (job_id, t, label, count)
            assert count[(t, label, "TargetOut")] == 1, (job_id, t, label, count)
    marks = [e for e in routing if e["name"] == "TargetInterrupted"]
    assert {e["payload"]["Server"] for e in marks} <= {lost}
    # the status shows the final attempt: every target out of every step, none inside
    doc = server.get(f"/api/v1/jobs/{job_id}/status").json()
    zero = "0001-01-01T00:00:00Z"
    for run in doc["RunStatuses"]:
        for test in run["TestStatuses"]:
            for step in test["TestStepStatuses"]:
                for ts in step["TargetStatuses"]:
                    assert ts["OutTime"] != zero and not ts["Error"], ts
    assert [r["InFlight"] for r in server.progress(job_id)["Steps"]] == [0, 0, 0]


def never_shared(server: ServerProcess, job_ids: list[int]) -> None:
    """No target held by two jobs at once: by the database's order of the events, between a
    job's TargetAcquired and its TargetReleased of a target no other job acquires it."""
    moves = []
    for j in job_ids:
        for e in events(server, j, "TargetAcquired", "TargetReleased"):
            moves.append((e["sequence"], e["target"]["ID"], j, e["name"]))
    holder: dict[str, int] = {}
    for _, target, j, name in sorted(moves):
        if name == "TargetAcquired":
            assert target not in holder, (
                f"{target} acquired by job {j} while job {holder[target]} held it"
            )
            holder[target] = j
        else:
            assert holder.pop(target, None) == j
    assert holder == {}


def test_three_servers_take_over_a_killed_servers_jobs(
    shared_db: str, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    lease = ("--job-lease", f"{LEASE:g}s")
    a, b, c = start_all(
        *(server_factory(tmp_path, shared_db, *lease, server_id="", name=n) for n in "abc")
    )
    shared, own, more = ["s0", "s1", "s2"], ["u0", "u1", "u2"], ["v0", "v1"]
    first = a.submit(job("first", shared, NAP))
    second = a.submit(job("second", own, NAP))
    third = a.submit(job("third", more, NAP))
    for j, targets in ((first, shared), (second, own), (third, more)):
        a.wait_in_step(j, "nap", len(targets))
    lost = instance_of(a)
    held = {s["instance_id"]: s["jobs"] for s in b.get("/api/v1/servers").json()["servers"]}
    assert held[lost] == [first, second, third], held

    a.send(signal.SIGKILL)
    a.wait(10)
    killed = time.monotonic()
    # a job started meanwhile on the targets of a job being taken over does not get them
    # while that job holds them (its locks, keyed by its ID, moved with it)
    rival = b.submit(job("rival", shared, "0.2s"))
    for j in (first, second, third):
        state = b.wait_state(j, "JobStateCompleted", "JobStateFailed", timeout=LEASE + 30)
        assert state == "JobStateCompleted", (j, framework(b, j), c.output())
    took = time.monotonic() - killed
    print(f"kill -9 to 3 jobs completed elsewhere: {took:.1f}s")
    assert took < LEASE + 30
    for j in (first, second, third):
        assert framework(c, j) == ["JobStateStarted", "JobStateStarted", "JobStateCompleted"]
    check_resumed(b, first, shared, lost, inside="nap")
    check_resumed(c, second, own, lost, inside="nap")
    check_resumed(b, third, more, lost, inside="nap")
    b.wait_state(rival, "JobStateCompleted", "JobStateFailed", timeout=30)
    never_shared(b, [first, rival])
    # the takers were the live servers; the dead one is gone from the list
    live = {s["instance_id"] for s in c.get("/api/v1/servers").json()["servers"]}
    assert lost not in live and len(live) == 2
    assert b.stop() == 0 and c.stop() == 0


def checkpointed(db_file: Path, job_id: int, label: str, n: int) -> None:
    """Until the job's stored step checkpoint has ``n`` targets in step ``label`` (read from
    the SQLite file, as the server that takes over reads it)."""
    deadline = time.monotonic() + 30
    got: Any = None
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)) as conn:
            row = conn.execute(
                "SELECT data FROM job_checkpoints WHERE job_id = ?", (job_id,)
            ).fetchone()
        got = json.loads(row[0]) if row else None
        if got and any(s["L"] == label and len(s["D"]) == n for s in got["S"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id}: no checkpoint of {n} targets in {label}: {got}")


def test_sqlite_restart_resumes_the_killed_servers_job(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    db_file = tmp_path / "one.db"
    db = f"sqlite:///{db_file}"
    targets = ["q0", "q1", "q2"]
    # checkpoints every 0.2 s (the default, lease/3, is 10 s with the default lease)
    first = server_factory(tmp_path, db, "--checkpoint-period", "0.2s", name="first").start()
    job_id = first.submit(job("on sqlite", targets, "3s", checkpoints=True))
    first.wait_in_step(job_id, "nap", len(targets))
    checkpointed(db_file, job_id, "nap", len(targets))
    lost = instance_of(first)
    first.send(signal.SIGKILL)
    first.wait(10)

    again = server_factory(tmp_path, db, name="again").start()  # its defaults
    assert again.wait_state(job_id, "JobStateCompleted", "JobStateFailed", timeout=30) == (
        "JobStateCompleted"
    ), again.output()
    # inside Sleep, checkpointed: each target resumed there (its deadline kept), none entered
    # it again
    check_resumed(again, job_id, targets, lost, inside=None)
    assert "3 targets resume in their step from its checkpoint" in again.output()
    assert again.stop() == 0
