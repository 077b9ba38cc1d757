"""Plugins that break: a target manager or reporter raising an unexpected exception fails its job
with a message naming the plugin, and the other jobs go on (ConTest's ``pkg/jobmanager/start.go``;
the issue's "a plugin that raises in acquire/release/report fails that job"); an expected error
(``ContestError``) from acquire is only a failed attempt (LB). On every store and locker.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from contest import events
from contest.context import PluginContext
from contest.errors import ContestError
from contest.events import EventReader
from contest.job.manager import JobManager
from contest.plugins.targetmanagers.targetlist import TargetList
from contest.registry import PluginRegistry
from contest.reporter import Reporter
from contest.status import RunStatus
from contest.storage import JobState
from contest.target import Target

S = JobState


class BrokenAcquire(TargetList):
    """TargetList whose acquire raises something no plugin should."""

    async def acquire(
        self, ctx: PluginContext, job_id: int, lock_timeout: float, params: Any, locker: Any
    ) -> list[Target]:
        raise KeyError("inventory")


class BrokenRelease(TargetList):
    async def release(
        self, ctx: PluginContext, job_id: int, targets: list[Target], params: Any
    ) -> None:
        raise RuntimeError("the inventory service is down")


class RefusingAcquire(TargetList):
    """An acquire that fails the way plugins are meant to (a ``ContestError``)."""

    async def acquire(
        self, ctx: PluginContext, job_id: int, lock_timeout: float, params: Any, locker: Any
    ) -> list[Target]:
        raise ContestError("no free devices")


class BrokenReporter(Reporter):
    def validate_run_parameters(self, params: Any) -> Any:
        return params

    def validate_final_parameters(self, params: Any) -> Any:
        return params

    async def run_report(
        self, ctx: PluginContext, params: Any, run_status: RunStatus, events: EventReader
    ) -> tuple[bool, Any]:
        raise ZeroDivisionError("division by zero")

    async def final_report(
        self, ctx: PluginContext, params: Any, run_statuses: list[RunStatus], events: EventReader
    ) -> tuple[bool, Any]:
        return True, None


#: (plugin call, job ID, run ID) as the plugins below saw them in their context
SEEN: list[tuple[str, int, int]] = []


class MetaTargets(TargetList):
    """ConTest's readmeta target manager: notes the job and run IDs of its context."""

    async def acquire(
        self, ctx: PluginContext, job_id: int, lock_timeout: float, params: Any, locker: Any
    ) -> list[Target]:
        SEEN.append(("acquire", ctx.job_id, ctx.run_id))
        return await super().acquire(ctx, job_id, lock_timeout, params, locker)

    async def release(
        self, ctx: PluginContext, job_id: int, targets: list[Target], params: Any
    ) -> None:
        SEEN.append(("release", ctx.job_id, ctx.run_id))


class MetaReporter(BrokenReporter):
    async def run_report(
        self, ctx: PluginContext, params: Any, run_status: RunStatus, events: EventReader
    ) -> tuple[bool, Any]:
        SEEN.append(("run report", ctx.job_id, ctx.run_id))
        return True, None

    async def final_report(
        self, ctx: PluginContext, params: Any, run_statuses: list[RunStatus], events: EventReader
    ) -> tuple[bool, Any]:
        SEEN.append(("final report", ctx.job_id, ctx.run_id))
        return True, None


@pytest.fixture
def registry() -> PluginRegistry:
    reg = PluginRegistry()
    reg.load_entry_points()
    reg.register("targetmanagers", "BrokenAcquire", BrokenAcquire)
    reg.register("targetmanagers", "BrokenRelease", BrokenRelease)
    reg.register("targetmanagers", "RefusingAcquire", RefusingAcquire)
    reg.register("targetmanagers", "MetaTargets", MetaTargets)
    reg.register("reporters", "BrokenReporter", BrokenReporter)
    reg.register("reporters", "MetaReporter", MetaReporter)
    SEEN.clear()
    return reg


def slow_echo(env, targets: tuple[str, ...], **kw: Any) -> str:
    return env.descriptor(
        [env.step("slowecho", "slowecho_label", sleep="0.5", text="Hello world")],
        targets=targets,
        **kw,
    )


CASES = {
    "acquire": (
        {"target_manager": "BrokenAcquire"},
        "target manager BrokenAcquire crashed in acquire: KeyError('inventory')",
    ),
    "release": (
        {"target_manager": "BrokenRelease"},
        "Failed to release targets: target manager BrokenRelease: the inventory service is down",
    ),
    "report": (
        {"run_reporters": [{"Name": "BrokenReporter"}]},
        "reporter BrokenReporter crashed: ZeroDivisionError('division by zero')",
    ),
}


@pytest.mark.parametrize("where", list(CASES))
async def test_a_broken_plugin_fails_its_job_and_others_go_on(
    jm_env, registry: PluginRegistry, where: str
) -> None:
    jm: JobManager = await jm_env.started(registry=registry)
    kw, message = CASES[where]
    healthy = await jm.submit(slow_echo(jm_env, ("id3", "id4")), "integration-test")
    broken = await jm.submit(slow_echo(jm_env, ("id1", "id2"), **kw), "integration-test")
    await jm_env.wait_for(broken, S.FAILED, timeout=5.0)
    await jm_env.wait_for(healthy, S.COMPLETED, timeout=5.0)
    assert await jm.wait_all(5.0)

    (failed,) = await jm_env.events_named(broken, "JobStateFailed")
    err = failed.payload["Err"]
    assert err.startswith(f"Job {broken} failed after "), err
    assert err.endswith(message), err
    assert (await jm.status(broken))["StateErrMsg"] == err
    # the broken job gave its targets back (the locks are the runner's, not the plugin's)
    assert await jm_env.locked(("id1", "id2", "id3", "id4")) == []
    # the healthy one was not disturbed
    assert await jm_env.states(healthy) == ["JobStateStarted", "JobStateCompleted"]
    (report,) = (await jm_env.report(healthy)).run_reports
    assert [r.success for r in report] == [True]
    if where == "report":  # the crashed report is stored as a failed one
        (crashed,) = (await jm_env.report(broken)).run_reports[0]
        assert (crashed.reporter_name, crashed.success) == ("BrokenReporter", False)
    else:  # the run never got to its reports
        assert (await jm_env.report(broken)).run_reports == []


async def test_an_acquire_error_is_a_failed_attempt_and_a_run_that_tested_nothing_fails(
    jm_env, registry: PluginRegistry
) -> None:
    # each attempt fails (retried), as in ConTest; but where ConTest's job then completes having
    # tested nothing, ours fails with the acquisition's error (docs/migrating-from-contest.md)
    jm: JobManager = await jm_env.started(registry=registry)
    descriptor = json.loads(
        jm_env.descriptor([jm_env.step("noop", "noop_label")], target_manager="RefusingAcquire")
    )
    descriptor["TestDescriptors"][0]["RetryParameters"] = {"NumRetries": 1}
    job_id = await jm.submit(json.dumps(descriptor), "integration-test")
    await jm_env.wait_for(job_id, S.FAILED)
    (failed,) = await jm_env.events_named(job_id, S.FAILED.event_name)
    assert failed.payload == {"Err": "no free devices"}
    errs = await jm_env.store.test_events(
        events.TestEventQuery(job_id=job_id, event_names=["TargetAcquireErr"])
    )
    assert [(e.header.test_attempt, e.payload) for e in errs] == [
        (0, {"Error": "no free devices"}),
        (1, {"Error": "no free devices"}),
    ]
    (report,) = (await jm_env.report(job_id)).run_reports
    assert [r.success for r in report] == [False]
    doc = await jm.status(job_id)
    (status,) = doc["RunStatus"]["TestStatuses"][0]["TargetStatuses"]
    assert status["Error"] == "no free devices"


async def test_plugins_get_the_job_and_run_ids(jm_env, registry: PluginRegistry) -> None:
    """ConTest's ``TestJobManagerTargetManagerMetadataAvailable``
    (``tests/integ/jobmanager/common.go``): the readmeta job's target manager, step and reporters
    all find the job and run IDs in their context."""
    jm: JobManager = await jm_env.started(registry=registry)
    descriptor = jm_env.descriptor(
        [jm_env.step("readmeta", "readmeta_label")],
        target_manager="MetaTargets",
        runs=2,
        run_interval="10ms",
        run_reporters=[{"Name": "MetaReporter"}],
        final_reporters=[{"Name": "MetaReporter"}],
    )
    job_id = await jm.submit(descriptor, "integration-test")
    await jm_env.wait_for(job_id, S.COMPLETED)
    assert SEEN == [
        ("acquire", job_id, 1),
        ("release", job_id, 1),
        ("run report", job_id, 1),
        ("acquire", job_id, 2),
        ("release", job_id, 2),
        ("run report", job_id, 2),
        ("final report", job_id, 0),
    ]
    metadata = await jm_env.store.test_events(
        events.TestEventQuery(job_id=job_id, event_names=["MetadataEvent"])
    )
    assert sorted((e.payload["job_id"], e.payload["run_id"]) for e in metadata) == [
        (job_id, 1),
        (job_id, 1),
        (job_id, 2),
        (job_id, 2),
    ]
