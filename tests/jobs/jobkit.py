"""Small building blocks for job runner and job manager tests."""

from __future__ import annotations

from typing import Any

from contest.bundle import Test, TestStepBundle
from contest.context import PluginContext
from contest.errors import ContestError
from contest.events import EventReader, TestEvent
from contest.job.model import Job, JobTest, ReporterBinding
from contest.params import StepParameters
from contest.reporter import Reporter
from contest.status import RunStatus
from contest.target import Target
from contest.targetmanager import TargetManager
from contest.teststep import (
    EventEmitter,
    StepChannels,
    StepContext,
    TestStep,
    for_each_target,
)


class Echo(TestStep):
    """Passes every target and remembers which it saw."""

    name = "Echo"

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async def one(ctx: StepContext, t: Target) -> None:
            self.seen.append(t.id)

        await for_each_target(ctx, ch, one)


class FailFirstCall(TestStep):
    """Fails every target the first time it runs, passes them afterwards."""

    name = "FailFirstCall"

    def __init__(self, calls: list[int] | None = None) -> None:
        # the count may be shared by the instances of one job before and after a pause
        self.counter = calls if calls is not None else [0]

    @property
    def calls(self) -> int:
        return self.counter[0]

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        self.counter[0] += 1
        first = self.counter[0] == 1

        async def one(ctx: StepContext, t: Target) -> None:
            if first:
                raise ContestError("some error")

        await for_each_target(ctx, ch, one)


class ListTM(TargetManager):
    """Acquires a fixed list; can be told to fail the first ``fail`` calls."""

    def __init__(self, ids: list[str], fail: int = 0) -> None:
        self.ids = ids
        self.fail = fail
        self.acquired = 0
        self.released: list[list[str]] = []

    def validate_acquire_parameters(self, params: Any) -> Any:
        return params

    def validate_release_parameters(self, params: Any) -> Any:
        return params

    async def acquire(
        self, ctx: PluginContext, job_id: int, lock_timeout: float, params: Any, locker: Any
    ) -> list[Target]:
        self.acquired += 1
        if self.acquired <= self.fail:
            raise ContestError("some error")
        return [Target(i) for i in self.ids]

    async def release(
        self, ctx: PluginContext, job_id: int, targets: list[Target], params: Any
    ) -> None:
        self.released.append([t.id for t in targets])


class Recorder(Reporter):
    """Records the run statuses it is given; success when every target passed."""

    def __init__(self) -> None:
        self.runs: list[RunStatus] = []
        self.finals: list[list[RunStatus]] = []

    def validate_run_parameters(self, params: Any) -> Any:
        return params

    def validate_final_parameters(self, params: Any) -> Any:
        return params

    async def run_report(
        self, ctx: PluginContext, params: Any, run_status: RunStatus, events: EventReader
    ) -> tuple[bool, Any]:
        self.runs.append(run_status)
        ok = all(not t.error for ts in run_status.test_statuses for t in ts.target_statuses)
        return ok, {"runs": len(self.runs)}

    async def final_report(
        self, ctx: PluginContext, params: Any, run_statuses: list[RunStatus], events: EventReader
    ) -> tuple[bool, Any]:
        self.finals.append(run_statuses)
        return True, "final"


def bundle(
    step: TestStep, label: str, params: dict[str, list[Any]] | None = None
) -> TestStepBundle:
    return TestStepBundle(step, label, StepParameters.from_values(params or {}), None)


def job_of(
    steps: list[TestStepBundle],
    tm: TargetManager,
    *,
    job_id: int = 1,
    cleanup: list[TestStepBundle] | None = None,
    retries: int = 0,
    retry_interval: float = 0.0,
    runs: int = 1,
    run_interval: float = 0.0,
    reporter: Reporter | None = None,
    test_name: str = "SimpleTest",
) -> Job:
    return Job(
        id=job_id,
        name="job",
        runs=runs,
        run_interval=run_interval,
        tests=[
            JobTest(
                test=Test(test_name, steps, cleanup or []),
                target_manager=tm,
                target_manager_name="ListTM",
                acquire_params=None,
                release_params=None,
                acquire_timeout=5.0,
                release_timeout=5.0,
                num_retries=retries,
                retry_interval=retry_interval,
            )
        ],
        run_reporters=[ReporterBinding(reporter, "Recorder", None)] if reporter else [],
        final_reporters=[ReporterBinding(reporter, "Recorder", None)] if reporter else [],
    )


def tuples(
    events: list[TestEvent], target: str | None = None
) -> list[tuple[int, str, str, str, Any]]:
    """(attempt, test name, label, event, payload) of the events of one target (or all)."""
    return [
        (e.header.test_attempt, e.header.test_name, e.header.step_label, e.name, e.payload)
        for e in events
        if target is None or (e.target is not None and e.target.id == target)
    ]
