"""Job managers sharing one store, as servers share one database (``contest.storage.fleet``),
on every store and locker (see conftest.py): unique instances, job leases renewed by the
heartbeat, zombies by lease expiry only, a stop through a manager that does not run the job,
the list of live servers. Short leases (1 s) keep every wait short.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from sqlalchemy import select

from contest.job.manager import JobManager, JobManagerError
from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.storage import JobState, Storage, open_storage
from contest.storage.fleet import Instance, InstanceConflict, fleet_of
from contest.storage.schema import job_leases
from contest.testing.databases import TcpProxy

S = JobState
LEASE = 1.0


def sleepy(env, seconds: str):
    return env.descriptor(
        [env.step("slowecho", "nap", sleep=seconds, text="zz")], test_name="IntegrationTest: nap"
    )


async def test_managers_with_one_server_id_never_fail_each_others_jobs(jm_env) -> None:
    """Two servers started with no flags on one host: one ServerID (the host name), two
    instances. The second one's start-up and sweeps (every lease) leave the first's job alone,
    which runs for 3 leases and completes."""
    first = await jm_env.started(job_lease=LEASE)
    job_id = await first.submit(sleepy(jm_env, "3"), "integration-test")
    await jm_env.wait_for(job_id, S.STARTED)
    second = await jm_env.started(job_lease=LEASE)
    assert first.server_id == second.server_id and first.instance_id != second.instance_id
    await jm_env.wait_for(job_id, S.COMPLETED, timeout=10.0)
    assert await jm_env.states(job_id) == ["JobStateStarted", "JobStateCompleted"]
    assert second.jobs == {}
    assert await leases(jm_env) == []  # gone with the final state


async def leases(env) -> list[int]:
    """The job IDs with a lease row."""
    if isinstance(env.store, Storage):

        async def read(conn):
            return [r.job_id for r in (await conn.execute(select(job_leases.c.job_id))).all()]

        return await env.store.run_read(read, "test")
    return sorted(env.store._contest_fleet.leases)


async def test_a_stop_reaches_the_manager_that_runs_the_job(jm_env) -> None:
    owner = await jm_env.started(job_lease=LEASE)
    other = await jm_env.started(job_lease=LEASE)
    job_id = await owner.submit(sleepy(jm_env, "30"), "integration-test")
    await jm_env.wait_for(job_id, S.STARTED)
    servers = {s.instance_id: s.jobs for s in await other.servers()}
    assert servers == {owner.instance_id: (job_id,), other.instance_id: ()}
    asked = time.monotonic()
    await other.stop(job_id)  # returns once the owner took it
    await jm_env.wait_for(job_id, S.CANCELLED, timeout=2.0)
    assert time.monotonic() - asked < 2.0
    assert await jm_env.states(job_id) == [
        "JobStateStarted",
        "JobStateCancelling",
        "JobStateCancelled",
    ]
    # a job nobody runs: ConTest's answer
    with pytest.raises(JobManagerError, match=f"unknown job ID: {job_id}"):
        await other.stop(job_id)
    # its lease is gone with the job; a clean close removes the server from the list
    await owner.close()
    assert [s.instance_id for s in await other.servers()] == [other.instance_id]


async def test_an_instance_id_in_use_is_refused(jm_env) -> None:
    """``--server-id X`` twice: the second waits for the first's heartbeat to move, and
    refuses; once the first stopped, the ID is free."""
    me = Instance("explicit-id", jm_env.SERVER_ID)
    first = await jm_env.started(job_lease=LEASE, instance=me)
    started = time.monotonic()
    with pytest.raises(InstanceConflict, match="'explicit-id' is in use by a live server"):
        await jm_env.started(job_lease=LEASE, instance=me)
    assert time.monotonic() - started < 2 * LEASE
    await first.close()
    again = await jm_env.started(job_lease=LEASE, instance=me)
    assert [s.instance_id for s in await again.servers()] == ["explicit-id"]


async def test_a_draining_server_is_listed_as_such(jm_env) -> None:
    jm = await jm_env.started(job_lease=LEASE)
    (me,) = await jm.servers()
    assert not me.draining
    jm.mark_draining()  # what SIGUSR1 does
    deadline = time.monotonic() + 2.0
    while not (await jm.servers())[0].draining:
        assert time.monotonic() < deadline, "not marked draining"
        await asyncio.sleep(0.02)


async def test_a_live_server_removed_as_dead_registers_again(jm_env) -> None:
    """Its row removed (another server judged it dead after its heartbeat lapsed), a live
    manager puts it back at its next heartbeat, and is listed again."""
    jm = await jm_env.started(job_lease=LEASE)
    await jm.fleet.unregister(jm.instance_id)
    assert await jm.servers() == []
    deadline = time.monotonic() + 2 * LEASE
    while not await jm.servers():
        assert time.monotonic() < deadline, "not registered again"
        await asyncio.sleep(0.05)
    assert [s.instance_id for s in await jm.servers()] == [jm.instance_id]


async def test_a_heartbeat_that_fails_is_retried_and_the_manager_lives_on(
    postgresql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The database cut off (a proxy drops every connection and refuses new ones) until the
    heartbeat has failed twice, well within the 6 s lease: the heartbeat is retried with
    backoff, the manager keeps its job and reports the heartbeat's age; once the database is
    back, the heartbeat resumes and the job completes (its lease never lapsed: a lapsed one is
    lost, see test_job_manager_fence.py)."""
    proxy = TcpProxy.for_url(postgresql_url)
    await proxy.start()
    store = await open_storage(proxy.proxied_url(postgresql_url), retry_for=10.0)
    await store.reset()
    lease = 6 * LEASE
    # each heartbeat gives up after 0.2 s (not lease/3): two failures come within a period
    jm = JobManager(
        store,
        InMemoryLocker(),
        job_lease=lease,
        shutdown_timeout=3.0,
        fleet=fleet_of(store, retry_for=0.2),
    )
    try:
        await jm.start(resume_jobs=False)
        job_id = await jm.submit(sleepy_job("3"), "integration-test")
        await asyncio.sleep(0.5)
        caplog.set_level(logging.WARNING, logger="contest.job.manager")
        proxy.cut()
        cut = time.monotonic()

        def failed() -> list[str]:
            return [
                m for r in caplog.records if (m := r.getMessage()).startswith("heartbeat failed")
            ]

        while len(failed()) < 2:
            assert time.monotonic() - cut < lease / 3 + 1.5, caplog.records
            await asyncio.sleep(0.05)
        await asyncio.sleep(max(0.0, cut + 1.2 - time.monotonic()))
        age = jm.heartbeat_age()
        assert age is not None and age > 1.0
        assert jm._beat is not None and not jm._beat.done()
        assert jm.running(job_id)
        proxy.restore()
        assert time.monotonic() - cut < lease / 2  # the lease is still the manager's
        deadline = time.monotonic() + 5.0
        while (jm.heartbeat_age() or 0.0) > 0.5:
            assert time.monotonic() < deadline, "no heartbeat after the database came back"
            await asyncio.sleep(0.05)
        assert await jm.wait_all(15.0)
        assert (await store.get_job(job_id)).state is S.COMPLETED  # type: ignore[union-attr]
    finally:
        jm.cancel_all()
        await jm.wait_all(5.0)
        await jm.close()
        await store.close()
        await proxy.close()


def sleepy_job(seconds: str) -> str:
    import json

    return json.dumps(
        {
            "JobName": "outage",
            "Runs": 1,
            "Tags": ["integration_testing"],
            "TestDescriptors": [
                {
                    "TargetManagerName": "TargetList",
                    "TargetManagerAcquireParameters": {"Targets": [{"ID": "o1"}, {"ID": "o2"}]},
                    "TargetManagerReleaseParameters": {},
                    "TestFetcherName": "literal",
                    "TestFetcherFetchParameters": {
                        "TestName": "outage",
                        "Steps": [
                            {
                                "name": "sleep",
                                "label": "nap",
                                "parameters": {"duration": [f"{seconds}s"]},
                            }
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
    )


# --- takeover: the claim loop ---------------------------------------------------------------


async def test_servers_claiming_at_once_take_each_job_once(jm_env) -> None:
    """A dead server's jobs (lease lapsed), claimed by two live managers at once: each job is
    taken by one of them (FOR UPDATE SKIP LOCKED and the lease's conditional update), resumed
    and completed once; a job whose server died while cancelling it is cancelled, not resumed;
    a draining manager takes nothing."""
    dead = await jm_env.started(job_lease=LEASE)
    ids = []
    for i in range(4):
        desc = jm_env.descriptor(
            # still inside it when the server is killed (right after the jobs started); the
            # resumed copies run it again, in full
            [jm_env.step("slowecho", "nap", sleep="2", text="zz")],
            test_name="IntegrationTest: nap",
            targets=[f"c{i}a", f"c{i}b"],
        )
        ids.append(await dead.submit(desc, "integration-test"))
    for job_id in ids:
        await jm_env.wait_for(job_id, S.STARTED)
    stopping = ids[-1]
    await dead._state(stopping, S.CANCELLING)
    for entry in dead.jobs.values():  # kill -9: its tasks stop where they are
        assert entry.task is not None
        entry.task.cancel()
    await asyncio.gather(*(e.task for e in dead.jobs.values() if e.task), return_exceptions=True)
    dead.jobs.clear()
    dead._registered = False  # its row stays, its heartbeat stops
    await dead.close()
    await jm_env.flush()

    one, two, draining = [await jm_env.started(resume_jobs=True, job_lease=LEASE) for _ in range(3)]
    for jm in (one, two, draining):  # their claim loops: the test runs the passes at once
        assert jm._claimer is not None
        jm._claimer.cancel()
    draining.mark_draining()
    await asyncio.sleep(LEASE + 0.2)  # the dead server's leases lapse
    assert await draining.claim_jobs() == []
    got_one, got_two = await asyncio.gather(one.claim_jobs(), two.claim_jobs())
    assert not set(got_one) & set(got_two)
    assert sorted(got_one + got_two) == ids[:-1]
    for job_id in ids[:-1]:
        await jm_env.wait_for(job_id, S.COMPLETED, timeout=15.0)
        assert await jm_env.states(job_id) == [
            "JobStateStarted",
            "JobStateStarted",
            "JobStateCompleted",
        ]
    assert await jm_env.states(stopping) == [
        "JobStateStarted",
        "JobStateCancelling",
        "JobStateCancelled",
    ]
    assert await one.claim_jobs() == [] and await two.claim_jobs() == []


async def test_a_status_asked_of_a_manager_that_does_not_run_the_job(jm_env) -> None:
    """The other manager follows the running job's run from the store (contest.job.follow)
    rather than build it from every event at each ask: the same document as the owner's,
    which keeps it as its events are written; once the job ended, its saved statuses, and
    the follower is let go."""
    owner = await jm_env.started(job_lease=LEASE)
    other = await jm_env.started(job_lease=LEASE)
    job_id = await owner.submit(sleepy(jm_env, "2"), "integration-test")
    await jm_env.wait_for(job_id, S.STARTED)

    async def document(jm: JobManager) -> bytes:
        return b"".join(await (await jm.status_document(job_id)).body())

    for _ in range(60):  # the owner's shows events queued, the other's the committed ones
        mine, theirs = await document(owner), await document(other)
        if mine == theirs and b'"InTime":"2' in theirs:  # the targets are in the step
            break
        await asyncio.sleep(0.05)
    assert theirs == mine and b'"JobStateStarted"' in theirs
    followed = isinstance(jm_env.store, Storage)
    assert len(other._followers) == (1 if followed else 0)
    await jm_env.wait_for(job_id, S.COMPLETED, timeout=10.0)
    assert await document(other) == await document(owner)
    assert len(other._followers) == 0
