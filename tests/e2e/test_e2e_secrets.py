"""Secret step parameters against a real ``contest serve`` and a real sshd taking a password:
the password is never served by any endpoint nor written to the server's log (at debug level),
the stored descriptor holds it redacted, and yet the job logs in with it after a restart
(resumed from its extended descriptor) and when retried."""

from __future__ import annotations

import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2ekit import ServerProcess

from contest.redaction import REDACTED
from contest.testing.sshd import SshdFarm, find_sshd, password_login_supported

PASSWORD = "pw-" + uuid.uuid4().hex  # unique: found nowhere unless leaked


@pytest.fixture(scope="module")
def pw_sshd() -> Iterator[SshdFarm]:
    if find_sshd() is None:
        pytest.fail("sshd not installed (apt-get install openssh-server; .ci/run does)")
    if not password_login_supported():
        pytest.fail("password logins need root and mount namespaces (unshare)")
    with SshdFarm(1, first_host=70, password=PASSWORD) as farm:
        yield farm


def descriptor(farm: SshdFarm) -> dict[str, Any]:
    srv = farm.servers[0]
    login = {"host": srv.address, "port": srv.port, "user": farm.user}
    bag = {
        "bin": {"path": "echo", "args": ["exec ok"]},
        "transport": {
            "proto": "ssh",
            "options": {**login, "password": PASSWORD, "host_key": srv.host_public_key},
        },
    }
    return {
        "JobName": "secret job",
        "Runs": 1,
        "TestDescriptors": [
            {
                "TargetManagerName": "TargetList",
                "TargetManagerAcquireParameters": {
                    "Targets": [{"ID": f"T-{uuid.uuid4().hex[:8]}", "FQDN": srv.address}]
                },
                "TargetManagerReleaseParameters": {},
                "TestFetcherName": "literal",
                "TestFetcherFetchParameters": {
                    "TestName": "ssh with a password",
                    "Steps": [
                        {"name": "sleep", "label": "nap", "parameters": {"duration": ["2s"]}},
                        {
                            "name": "SSHCmd",
                            "label": "ssh",
                            "parameters": {
                                "host": [srv.address],
                                "port": [str(srv.port)],
                                "user": [farm.user],
                                "password": [PASSWORD],
                                "host_key": [srv.host_public_key],
                                "executable": ["echo"],
                                "args": ["sshcmd ok"],
                                "expect": ["sshcmd ok"],
                            },
                        },
                        {"name": "Exec", "label": "exec", "parameters": {"bag": [bag]}},
                    ],
                },
            }
        ],
        "Reporting": {
            "RunReporters": [
                {"Name": "TargetSuccess", "Parameters": {"SuccessExpression": "=100%"}}
            ]
        },
    }


def everything_served(server: ServerProcess, job_id: int) -> str:
    """Every answer the APIs give about the job, as text."""
    texts = []
    for path in (
        f"/api/v1/jobs/{job_id}",
        f"/api/v1/jobs/{job_id}/descriptor",
        f"/api/v1/jobs/{job_id}/status",
        f"/api/v1/jobs/{job_id}/report",
        f"/api/v1/jobs/{job_id}/progress",
        f"/api/v1/jobs/{job_id}/events?limit=10000",
        f"/api/v1/jobs/{job_id}/events?kind=framework&limit=10000",
        "/api/v1/jobs",
    ):
        resp = server.get(path)
        assert resp.status_code == 200, (path, resp.text)
        texts.append(resp.text)
    for verb, fields in (("status", {"jobID": str(job_id)}), ("list", {})):
        resp = httpx.post(f"{server.url}/{verb}", data={"requestor": "t", **fields}, timeout=30)
        texts.append(resp.text)
    return "\n".join(texts)


def test_a_password_is_never_served_nor_logged_and_the_job_still_resumes(
    pw_sshd: SshdFarm, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    db_file = tmp_path / "c.db"
    db = f"sqlite:///{db_file}"
    args = ("--pause-timeout=-1s", "--log-level", "debug")
    first = server_factory(tmp_path, db, *args, local_exec=False).start()
    resp = httpx.post(
        f"{first.url}/api/v1/jobs", json={"descriptor": descriptor(pw_sshd)}, timeout=60
    )
    assert resp.status_code == 201, resp.text
    job_id = resp.json()["job_id"]

    shown = first.get(f"/api/v1/jobs/{job_id}/descriptor").json()["descriptor"]
    steps = shown["TestDescriptors"][0]["TestFetcherFetchParameters"]["Steps"]
    assert steps[1]["parameters"]["password"] == [REDACTED]
    assert steps[2]["parameters"]["bag"][0]["transport"]["options"]["password"] == REDACTED
    assert steps[1]["parameters"]["user"] == [pw_sshd.user]  # only secrets are hidden
    assert PASSWORD not in everything_served(first, job_id)

    first.wait_state(job_id, "JobStateStarted")
    time.sleep(0.5)  # in the 2 s sleep: the SSH steps have not run yet
    first.send(signal.SIGTERM)
    assert first.wait(30) == 0
    assert "paus" in first.output().lower()

    again = server_factory(tmp_path, db, *args, name="again", local_exec=False).start()
    assert again.wait_state(job_id, "JobStateCompleted", "JobStateFailed") == "JobStateCompleted"
    report = again.get(f"/api/v1/jobs/{job_id}/report").json()
    assert report["RunReports"][0][0]["Success"] is True, report
    events = again.get(f"/api/v1/jobs/{job_id}/events", name="TargetErr").json()["events"]
    assert events == []

    retry = httpx.post(f"{again.url}/api/v1/jobs/{job_id}/retry", timeout=60)
    assert retry.status_code == 201, retry.text
    new_id = retry.json()["job_id"]
    assert again.wait_state(new_id, "JobStateCompleted", "JobStateFailed") == "JobStateCompleted"
    assert again.get(f"/api/v1/jobs/{new_id}/report").json()["RunReports"][0][0]["Success"]

    for job in (job_id, new_id):
        assert PASSWORD not in everything_served(again, job)
    again.stop()
    for server in (first, again):
        log = server.output()
        assert "DEBUG" in log  # the most talkative level was on
        assert PASSWORD not in log
    with sqlite3.connect(db_file) as conn:
        rows = conn.execute("SELECT descriptor, extended_descriptor FROM jobs").fetchall()
    assert rows and all(PASSWORD not in shown for shown, _ in rows)
    # kept where only resume and retry read it (see docs/security.md)
    assert all(PASSWORD in extended for _, extended in rows)
