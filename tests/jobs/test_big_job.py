"""A 20,000-target job on each SQL database: a TargetList job through two Noop steps, through a
job manager with the DB locker on the same database (as a server runs it).

It completes; its descriptor (about 1.3 MB) is stored whole and reads back identical; every
target entered and left each step exactly once (counted with SQL aggregates, not by loading
120,000 events); the status document builds and accounts for every target.
"""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import distinct, func, select

from contest.events import FrameworkEventQuery
from contest.job.descriptor import decode_descriptor
from contest.job.manager import JobManager
from contest.plugins.targetlockers import dblocker
from contest.storage import JobState, open_storage
from contest.storage.models import STATE_EVENT_NAMES
from contest.storage.schema import test_events as test_events_table

N = 20_000
LABELS = ("first", "second")
TEST_NAME = "twenty thousand"


def big_descriptor() -> str:
    return json.dumps(
        {
            "JobName": "big job",
            "Version": "1.0",
            "Runs": 1,
            "RunInterval": "1s",
            "Tags": ["big"],
            "TestDescriptors": [
                {
                    "TargetManagerName": "TargetList",
                    "TargetManagerAcquireParameters": {
                        "Targets": [
                            {"ID": f"target-{i:05d}", "FQDN": f"host-{i:05d}.example.com"}
                            for i in range(N)
                        ]
                    },
                    "TargetManagerReleaseParameters": {},
                    "TestFetcherName": "literal",
                    "TestFetcherFetchParameters": {
                        "TestName": TEST_NAME,
                        "Steps": [{"name": "noop", "label": label} for label in LABELS],
                    },
                }
            ],
            "Reporting": {
                "RunReporters": [
                    {"Name": "TargetSuccess", "Parameters": {"SuccessExpression": "=100%"}}
                ]
            },
        },
        indent=1,
    )


# 10-15 s on each database (PostgreSQL runs without server-side prepared statements: see
# contest.storage.engine); the timeout leaves room for a loaded machine.
@pytest.mark.timeout(120)
async def test_twenty_thousand_targets(db_url: str) -> None:
    began = time.monotonic()
    store = await open_storage(db_url)
    await store.reset()
    locker = dblocker.new(engine=store.engine)
    await locker.reset_all_locks()
    jm = JobManager(store, locker, server_id="big-job", shutdown_timeout=30.0)
    try:
        await jm.start()
        descriptor = big_descriptor()
        job_id = await jm.submit(descriptor, "big")
        assert await jm.wait_all(120.0), "the job did not end within 2 minutes"
        ran = time.monotonic() - began

        states = await store.framework_events(
            FrameworkEventQuery(job_id=job_id, event_names=sorted(STATE_EVENT_NAMES))
        )
        assert [e.name for e in states] == ["JobStateStarted", "JobStateCompleted"], [
            e.payload for e in states
        ]

        # the descriptor, whole: stored normalised (as ConTest re-serialises the decoded one),
        # it decodes to the very descriptor submitted
        req = await jm.request(job_id)
        assert req is not None and req.state is JobState.COMPLETED
        submitted = decode_descriptor(descriptor)
        assert len(req.descriptor) == len(submitted.to_json(indent=None)) > 500_000
        assert req.descriptor == submitted.to_json(indent=None)
        assert decode_descriptor(req.descriptor) == submitted
        targets = json.loads(req.descriptor)["TestDescriptors"][0][
            "TargetManagerAcquireParameters"
        ]["Targets"]
        assert len(targets) == N and targets[-1]["ID"] == f"target-{N - 1:05d}"
        assert req.extended_descriptor and len(req.extended_descriptor) > len(req.descriptor) / 2

        # one TargetIn and one TargetOut per target per step; one Acquired/Released per target
        t = test_events_table
        query = (
            select(
                t.c.step_label,
                t.c.event_name,
                func.count(),
                func.count(distinct(t.c.target_id)),
            )
            .where(t.c.job_id == job_id)
            .group_by(t.c.step_label, t.c.event_name)
        )
        counted = time.monotonic()
        rows = await store.run_read(lambda conn: _all(conn, query), "counting the big job's events")
        count_took = time.monotonic() - counted
        counts = {(label, name): (n, distinct_ids) for label, name, n, distinct_ids in rows}
        assert counts == {
            ("", "TargetAcquired"): (N, N),
            ("", "TargetReleased"): (N, N),
            **{(label, "TargetIn"): (N, N) for label in LABELS},
            **{(label, "TargetOut"): (N, N) for label in LABELS},
        }

        # the status document builds, with every target passed
        built = time.monotonic()
        doc = await jm.status(job_id)
        status_took = time.monotonic() - built
        assert doc["State"] == "JobStateCompleted"
        (test,) = doc["RunStatus"]["TestStatuses"]
        assert len(test["TargetStatuses"]) == N
        assert all(not s["Error"] for s in test["TargetStatuses"])
        assert [len(s["TargetStatuses"]) for s in test["TestStepStatuses"]] == [N, N]
        (report,) = doc["JobReport"]["RunReports"][0]
        assert report["Success"] is True
        # nothing is left locked
        assert await locker.try_lock(999_999, 1.0, ["target-00000", f"target-{N - 1:05d}"], 2)
        print(
            f"\n{store.backend}: job {ran:.1f} s, counts {count_took:.1f} s, "
            f"status {status_took:.1f} s"
        )
    finally:
        jm.cancel_all()
        await jm.wait_all(30.0)
        await jm.close()
        await locker.close()
        await store.close()


async def _all(conn, query):
    return (await conn.execute(query)).all()


def test_the_descriptor_is_big() -> None:
    assert 1_000_000 < len(big_descriptor()) < 2_000_000
