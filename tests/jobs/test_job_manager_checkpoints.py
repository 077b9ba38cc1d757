"""Step checkpoints (``contest.checkpoint``) on every store and locker (see conftest.py): a job
whose server dies inside a step that keeps checkpoints (the fixture ``Ticker``, through
``for_each_target_with_resume``) is taken over by another manager, which resumes the step from
its stored per-target state, with the variables the steps had set; the steps the targets had
finished do not run again; the checkpoint goes with the job's final state. The lease fences a
checkpoint as it fences events: a server that lost the lease cannot overwrite the new owner's.
A real ``contest serve`` killed with ``kill -9``: tests/e2e/test_e2e_takeover.py.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from contest.checkpoint import StoredCheckpoint
from contest.events import TARGET_IN, TARGET_INTERRUPTED, TestEventQuery
from contest.storage import JobRequest, JobState, open_storage
from contest.storage.errors import LeaseLost
from contest.storage.fleet import fleet_of

S = JobState
LEASE = 1.0
TICKS = 12


def ticking_job(env) -> str:
    """``vars`` sets a variable; ``tick`` counts TICKS ticks per target (0.15 s apart), saying
    that variable (a template, expanded as each target starts, resumed ones too); ``after``
    reads the count ``tick`` left, as a template too: a variable lost on takeover fails it."""
    return env.descriptor(
        [
            env.step("variables", "vars", greeting='"hi"'),
            env.step(
                "ticker",
                "tick",
                ticks=str(TICKS),
                interval="0.15",
                text='{{ StringVar "vars.greeting" }}',
            ),
            env.step("slowecho", "after", sleep="0", text='{{ IntVar "tick.count" }}'),
        ],
        test_name="IntegrationTest: ticks",
    )


async def ticks(env, job_id: int) -> dict[str, list[tuple[int, str]]]:
    """Per target, the (N, Text) of its Tick events, in order."""
    events = await env.store.test_events(TestEventQuery(job_id=job_id, event_names=["Tick"]))
    out: dict[str, list[tuple[int, str]]] = {}
    for e in events:
        assert e.target is not None
        out.setdefault(e.target.id, []).append((e.payload["N"], e.payload["Text"]))
    return out


async def kill(jm) -> None:
    """What ``kill -9`` does to a manager, in-process: its job tasks and loops stop where they
    are (its checkpoints too), its row stays, its heartbeat stops (as
    test_job_manager_fleet.py)."""
    for entry in jm.jobs.values():
        assert entry.task is not None
        entry.task.cancel()
    await asyncio.gather(*(e.task for e in jm.jobs.values() if e.task), return_exceptions=True)
    jm.jobs.clear()
    jm._registered = False
    await jm.close()


async def test_a_takeover_resumes_a_step_from_its_checkpoint_with_the_variables(jm_env) -> None:
    dead = await jm_env.started(job_lease=LEASE)
    assert dead.checkpoint_period == pytest.approx(LEASE / 3)
    job_id = await dead.submit(ticking_job(jm_env), "integration-test")

    async def checkpointed() -> bool:  # both targets 3 ticks in, in the stored checkpoint
        blob = await jm_env.store.job_checkpoint(job_id)
        if blob is None:
            return False
        step = StoredCheckpoint.decode(blob).steps.get(("IntegrationTest: ticks", "tick"))
        return (
            step is not None
            and len(step.data) == 2
            and all(isinstance(n, int) and n >= 3 for n in step.data.values())
        )

    await jm_env.wait_until("a checkpoint 3 ticks in", checkpointed, timeout=10.0)
    await kill(dead)
    await jm_env.flush()
    blob = await jm_env.store.job_checkpoint(job_id)
    assert blob is not None  # read after the kill: the last one the dead server stored
    kept = StoredCheckpoint.decode(blob).steps[("IntegrationTest: ticks", "tick")].data
    before = await ticks(jm_env, job_id)
    assert sorted(kept) == sorted(jm_env.TARGETS)
    for target, n in kept.items():
        # the dead server got at least that far (and at most a few ticks further)
        assert [t[0] for t in before[target]] == list(range(1, len(before[target]) + 1))
        assert 3 <= n <= len(before[target]) < TICKS

    taker = await jm_env.started(resume_jobs=True, job_lease=LEASE)
    await jm_env.wait_for(job_id, S.COMPLETED, timeout=15.0)
    assert await jm_env.states(job_id) == [
        "JobStateStarted",
        "JobStateStarted",
        "JobStateCompleted",
    ]
    after = await ticks(jm_env, job_id)
    for target, n in kept.items():
        # the step went on from the checkpoint (n + 1), not from its start (1), saying the
        # variable the first step had set before the takeover
        said = before[target][0][1]
        assert "hi" in said
        resumed = after[target][len(before[target]) :]
        assert resumed == [(k, said) for k in range(n + 1, TICKS + 1)]
        log = await jm_env.target_log(job_id, target)
        entered = [(label, name) for _, _, _, label, name in log if name == TARGET_IN]
        # each step entered once: "vars" was finished, "tick" resumed inside, "after" passed
        # (its template read the count "tick" set, before and after the takeover)
        assert entered == [("vars", TARGET_IN), ("tick", TARGET_IN), ("after", TARGET_IN)]
        assert not [e for e in log if e[4] == TARGET_INTERRUPTED]
        assert ("after", "TargetOut") in [e[3:] for e in log]
    assert await jm_env.store.job_checkpoint(job_id) is None  # gone with the final state
    assert taker.jobs == {}


async def test_a_server_that_lost_the_lease_cannot_overwrite_the_checkpoint(db_url) -> None:
    """Two servers' storages on one database: the first holds the job's lease, stores a
    checkpoint; the second takes the lease (the first judged dead) and stores its own; the
    first's next checkpoint is refused with LeaseLost, and the second's stays."""
    old, new = await open_storage(db_url), await open_storage(db_url)
    try:
        job_id = await old.store_job(JobRequest("ckpt", "r", "s", "{}"))
        fleet = fleet_of(old)
        epoch = await fleet.claim(job_id, "old-server", 30.0)
        assert epoch is not None
        old.fence_job(job_id, "old-server", epoch)
        await old.store_checkpoint(job_id, b'{"by":"old"}')
        taken = await fleet.claim(job_id, "new-server", 30.0, take_from="old-server")
        assert taken == epoch + 1
        new.fence_job(job_id, "new-server", taken)
        await new.store_checkpoint(job_id, b'{"by":"new"}')
        with pytest.raises(LeaseLost):
            await old.store_checkpoint(job_id, b'{"by":"old, late"}')
        assert json.loads(await new.job_checkpoint(job_id) or b"") == {"by": "new"}
        assert old.lease_lost(job_id)  # and its other writes of the job are refused now
    finally:
        await old.close()
        await new.close()


async def test_an_unchanged_checkpoint_is_not_written_again(jm_env) -> None:
    """Between ticks nothing a checkpoint holds changes: the manager writes none then (a
    checkpoint period far shorter than a tick makes most passes find it unchanged)."""
    jm = await jm_env.started(job_lease=LEASE, checkpoint_period=3600.0)
    desc = jm_env.descriptor(
        [jm_env.step("ticker", "tick", ticks="2", interval="30", text="zz")],
        test_name="IntegrationTest: slow ticks",
    )
    job_id = await jm.submit(desc, "integration-test")
    await jm_env.wait_for(job_id, S.STARTED)
    entry = jm.jobs[job_id]
    deadline = time.monotonic() + 5.0
    # the step has started, opted in, and has both targets in hand
    while (snap := entry.book.snapshot()) is None or len(json.loads(snap)["S"][0]["D"]) < 2:
        assert time.monotonic() < deadline, "the step never had both targets in hand"
        await asyncio.sleep(0.02)
    written = []
    for _ in range(3):
        before = entry.book.stored
        await jm._checkpoint_once()
        written.append(entry.book.stored is not before)
    assert written == [True, False, False]
    assert await jm_env.store.job_checkpoint(job_id) == entry.book.stored
