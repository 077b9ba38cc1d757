"""A job of 50 targets, each its own sshd: SSHCmd, then Cmd, then Sleep; the job manager pauses
it in the middle (as a server shutting down does), a new job manager on the same database
resumes it, and every target's events are there exactly once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

from sshtestlib import sshcmd_params, target_for

from contest.events import TestEventQuery
from contest.job.manager import JobManager
from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.storage import open_storage
from contest.storage.models import JobState
from contest.testing.sshd import SshdFarm


def descriptor(farm: SshdFarm) -> str:
    targets = [target_for(s, f"T{i:02d}").to_json_obj() for i, s in enumerate(farm.servers)]
    return json.dumps(
        {
            "JobName": "ssh fleet",
            "Runs": 1,
            "TestDescriptors": [
                {
                    "TargetManagerName": "TargetList",
                    "TargetManagerAcquireParameters": {"Targets": targets},
                    "TargetManagerReleaseParameters": {},
                    "TestFetcherName": "literal",
                    "TestFetcherFetchParameters": {
                        "TestName": "fleet",
                        "Steps": [
                            {
                                "name": "SSHCmd",
                                "label": "remote",
                                "parameters": sshcmd_params(
                                    farm, "echo", "remote {{ .ID }}", emit_stdout="true"
                                ),
                            },
                            {
                                "name": "Cmd",
                                "label": "local",
                                "parameters": {"executable": ["echo"], "args": ["{{ .ID }}"]},
                            },
                            {"name": "Sleep", "label": "nap", "parameters": {"duration": ["3s"]}},
                        ],
                    },
                }
            ],
            "Reporting": {
                "RunReporters": [
                    {"name": "TargetSuccess", "parameters": {"SuccessExpression": "=100%"}}
                ]
            },
        }
    )


async def test_fifty_sshd_job_paused_and_resumed(farm50: SshdFarm, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'contest.db'}"
    locker = InMemoryLocker()

    store = await open_storage(url)
    jm = JobManager(store, locker, server_id="fleet", lock_duration=30.0)
    await jm.start()
    job_id = await jm.submit(descriptor(farm50), "test")
    # pause once every target is asleep in the last step
    for _ in range(200):
        n = len(await store.test_events(TestEventQuery(job_id=job_id, step_labels=["nap"])))
        if n >= 50:
            break
        await asyncio.sleep(0.05)
    jm.pause_all()
    assert await jm.wait_all(timeout=10)
    req = await store.get_job(job_id)
    assert req is not None and req.state is JobState.PAUSED
    await jm.close()
    await store.close()

    store = await open_storage(url)
    jm = JobManager(store, locker, server_id="fleet", lock_duration=30.0)
    await jm.start()  # resumes the paused job
    assert await jm.wait_all(timeout=30)
    req = await store.get_job(job_id)
    assert req is not None and req.state is JobState.COMPLETED, req.state

    events = await store.test_events(TestEventQuery(job_id=job_id))
    per = Counter((e.target.id, e.header.step_label, e.name) for e in events if e.target)
    for i in range(50):
        tid = f"T{i:02d}"
        assert per[(tid, "", "TargetAcquired")] == 1
        assert per[(tid, "", "TargetReleased")] == 1
        for label in ("remote", "local", "nap"):
            assert per[(tid, label, "TargetIn")] == 1, (tid, label)
            assert per[(tid, label, "TargetOut")] == 1, (tid, label)
            assert per[(tid, label, "TargetErr")] == 0, (tid, label)
        assert per[(tid, "remote", "SSHCmdStdout")] == 1
    report = await store.job_report(job_id)
    assert [r.success for run in report.run_reports for r in run] == [True]
    await jm.close()
    await store.close()
