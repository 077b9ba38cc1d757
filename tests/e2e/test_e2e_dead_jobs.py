"""Dead jobs free their targets (issue 10, item 4), on real processes and real databases.

One ``contest serve`` per database (SQLite, PostgreSQL, MariaDB; the DB target locker, the
default), and on it: a job that completes and a job that is cancelled leave no lock rows; a
job sleeping in a step is killed with ``kill -9`` together with its server, and the next server
on the database (``--no-resume-jobs``: zombies are failed, ConTest's behaviour) has, within 10 s
of being started, failed the job, deleted its lock rows, and closed each target it left inside
the step with a ``TargetErr`` naming the cause; a new job on the same targets acquires them at
once and passes, and no status shows a target of the ended jobs inside a step.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2ekit import ServerProcess, contestcli, fresh_database, literal_job, sleep_job
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from contest.golang.time import parse_go_time
from contest.storage.schema import target_locks
from contest.testing.databases import Kind

KINDS: tuple[Kind, ...] = ("sqlite", "postgresql", "mariadb")
_SYNC_DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


def lock_rows(db_url: str) -> dict[str, int]:
    """The DB locker's rows, read straight from the database: target -> job."""
    url = make_url(db_url)
    url = url.set(drivername=_SYNC_DRIVERS.get(url.get_backend_name(), url.drivername))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(target_locks.c.target_id, target_locks.c.job_id))
            return {str(t): int(j) for t, j in rows}
    finally:
        engine.dispose()


def events(server: ServerProcess, job_id: int, *names: str) -> list[dict[str, Any]]:
    page = server.get(f"/api/v1/jobs/{job_id}/events", name=list(names), limit=10000).json()
    out: list[dict[str, Any]] = page["events"]
    return out


def targets_in_a_step(server: ServerProcess, job_id: int) -> list[tuple[str, str]]:
    """(step label, target) of every target the job's ConTest status shows entered and not
    left (InTime set, OutTime zero), in any run and test."""
    doc = server.get(f"/api/v1/jobs/{job_id}/status").json()
    zero = "0001-01-01T00:00:00Z"
    inside = []
    for run in doc["RunStatuses"] or []:
        for test in run["TestStatuses"] or []:
            for step in test["TestStepStatuses"] or []:
                for ts in step["TargetStatuses"] or []:
                    if ts["InTime"] != zero and ts["OutTime"] == zero:
                        inside.append((step["TestStepLabel"], ts["Target"]["ID"]))
    return inside


def test_a_dead_jobs_targets_are_free_at_the_restart(
    db_url: str, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(tmp_path, db_url).start()

    # a job that completes, and a job cancelled inside a step: neither leaves a lock row
    done = server.submit(literal_job(targets=[{"ID": "C1"}, {"ID": "C2"}]))
    cancelled = server.submit(sleep_job("60s", 2, name="to cancel"))  # targets T0000, T0001
    assert server.wait_state(done, "JobStateCompleted") == "JobStateCompleted"
    server.wait_in_step(cancelled, "nap", 2)
    assert set(lock_rows(db_url).values()) == {cancelled}
    stopped = json.loads(server.post("stop", f"jobID={cancelled}&requestor=e2e").content)
    assert stopped["Error"] is None, stopped
    assert server.wait_state(cancelled, "JobStateCancelled") == "JobStateCancelled"
    assert lock_rows(db_url) == {}
    # and its targets left inside the step are closed (Go ConTest leaves them in for good)
    closing = events(server, cancelled, "TargetErr")
    assert sorted(e["target"]["ID"] for e in closing) == ["T0000", "T0001"]
    assert {e["payload"]["Error"] for e in closing} == {
        f"job {cancelled} was cancelled (stopped by a stop request) while the target was in "
        'step "nap"'
    }
    assert targets_in_a_step(server, cancelled) == []
    assert [r["InFlight"] for r in server.progress(cancelled)["Steps"]] == [0]

    # the job that dies with its server, inside its sleep step
    desc = sleep_job("120s", 2, name="zombie")
    desc["TestDescriptors"][0]["TargetManagerAcquireParameters"]["Targets"] = [
        {"ID": "dut1"},
        {"ID": "dut2"},
    ]
    zombie = server.submit(desc)
    server.wait_in_step(zombie, "nap", 2)
    assert lock_rows(db_url) == {"dut1": zombie, "dut2": zombie}
    server.send(signal.SIGKILL)
    server.wait(10)
    assert lock_rows(db_url) == {"dut1": zombie, "dut2": zombie}  # a 10-minute lease

    began = time.monotonic()
    again = server_factory(tmp_path, db_url, "--no-resume-jobs", name="restarted").start()
    assert again.state(zombie) == "JobStateFailed"
    assert lock_rows(db_url) == {}
    closing = events(again, zombie, "TargetErr")
    took = time.monotonic() - began
    print(f"restart to zombie failed, freed and closed: {took:.2f}s")
    assert took < 10, f"the restart took {took:.1f}s to free the zombie's targets"
    assert sorted(e["target"]["ID"] for e in closing) == ["dut1", "dut2"]
    for e in closing:
        assert e["step_label"] == "nap"
        assert e["payload"] == {
            "Error": f'the server (vm) stopped while the target was in step "nap": '
            f"job {zombie} failed as a zombie"
        }
    assert targets_in_a_step(again, zombie) == []
    assert targets_in_a_step(again, cancelled) == []
    # contestcli's summary: not finished (not failed), and why
    proc = contestcli("status", str(zombie), "--human", addr=again.url)
    assert 'NOT FINISHED dut1 in step "nap"' in proc.stdout, proc.stdout
    assert "was zombieed: the server (vm) stopped" in proc.stdout
    assert again.progress(zombie)["Steps"][0]["InFlight"] == 0

    # the next job on the same targets gets them at once and passes
    desc = literal_job(targets=[{"ID": "dut1"}, {"ID": "dut2"}], success="=100%")
    nxt = again.submit(desc)
    assert again.wait_state(nxt, "JobStateCompleted", "JobStateFailed") == "JobStateCompleted"
    assert events(again, nxt, "TargetAcquireErr") == []
    acquired = events(again, nxt, "TargetAcquired")
    assert len(acquired) == 2
    began_job = parse_go_time(again.get(f"/api/v1/jobs/{nxt}/status").json()["StartTime"])
    got_them = parse_go_time(acquired[-1]["emit_time"])
    assert began_job is not None and got_them is not None
    assert got_them - began_job < 2.0, "the targets were not free at once"
    doc = again.get(f"/api/v1/jobs/{nxt}/status").json()
    assert doc["JobReport"]["RunReports"][0][0]["Success"] is True
    assert lock_rows(db_url) == {}
    assert again.stop() == 0
