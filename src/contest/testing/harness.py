"""Run steps on targets in-process and look at the events, as tuples.

::

    outcome = await run_steps([(MyStep(), "Step1", {"text": ["hi"]})], ["T1", "T2"])
    assert outcome.error is None
    assert outcome.events(target="T1") == [
        ("Step1", "T1", "TargetIn", None),
        ("Step1", "T1", "TargetOut", None),
    ]
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any

from contest.bundle import Test, TestStepBundle, validate_step
from contest.context import StepContext
from contest.errors import ContestError
from contest.events import MemoryEventSink, TestEvent
from contest.params import StepParameters
from contest.runner.test_runner import TestRunner, TestRunResult
from contest.signals import Scope
from contest.target import Target
from contest.teststep import TestStep

EventTuple = tuple[str, str | None, str, Any]
"""(step label, target id or None, event name, payload)"""

StepSpec = TestStepBundle | tuple[TestStep, str] | tuple[TestStep, str, Mapping[str, Sequence[Any]]]


def event_tuples(
    events: Sequence[TestEvent],
    *,
    label: str | None = None,
    target: str | EllipsisType | None = ...,
    run_id: int | None = None,
) -> list[EventTuple]:
    """Events as ``(label, target_id, name, payload)``, optionally filtered by step label, by
    target id (None: step-level events only) and by run."""
    out: list[EventTuple] = []
    for ev in events:
        tid = ev.target.id if ev.target is not None else None
        if label is not None and ev.header.step_label != label:
            continue
        if target is not ... and tid != target:
            continue
        if run_id is not None and ev.header.run_id != run_id:
            continue
        out.append((ev.header.step_label, tid, ev.name, ev.payload))
    return out


@dataclass
class RunOutcome:
    """What :func:`run_steps` saw: the run's result or error, and every event."""

    result: TestRunResult | None
    error: BaseException | None
    sink: MemoryEventSink
    raw_events: list[TestEvent] = field(default_factory=list)

    def events(
        self,
        *,
        label: str | None = None,
        target: str | EllipsisType | None = ...,
        run_id: int | None = None,
    ) -> list[EventTuple]:
        return event_tuples(self.sink.test, label=label, target=target, run_id=run_id)

    @property
    def resume_state(self) -> bytes | None:
        return self.result.resume_state if self.result is not None else None


def _bundle(spec: StepSpec) -> TestStepBundle:
    if isinstance(spec, TestStepBundle):
        return spec
    step, label, *rest = spec
    params = rest[0] if rest else {}
    allowed = frozenset(type(step).events)
    return TestStepBundle(step, label, StepParameters.from_values(params), allowed)


def _targets(targets: Sequence[Target | str]) -> list[Target]:
    return [t if isinstance(t, Target) else Target(t) for t in targets]


async def run_steps(
    steps: Sequence[StepSpec],
    targets: Sequence[Target | str],
    *,
    shutdown_timeout: float = 3.0,
    job_id: int = 1,
    run_id: int = 1,
    test_name: str = "SimpleTest",
    resume_state: bytes | None = None,
    pause_after: float | None = None,
    cancel_after: float | None = None,
    scope: Scope | None = None,
    sink: MemoryEventSink | None = None,
    on_start: Callable[[Scope], None] | None = None,
    validate: bool = True,
) -> RunOutcome:
    """Run the steps (``(step, label, params)`` tuples or bundles) on the targets.

    Parameters are validated on the step instances first, as a job does: against the step's
    declared parameters (a :class:`~contest.paramspec.ParameterProblems` lists every problem),
    then by its ``validate_parameters``; a refusal is raised.
    ``pause_after`` / ``cancel_after`` signal the run after that many seconds. Errors of the run
    itself are returned in the outcome, not raised, so a test can look at the events either way.
    """
    bundles = [_bundle(s) for s in steps]
    sink = sink if sink is not None else MemoryEventSink()
    scope = scope if scope is not None else Scope()
    if validate:
        for b in bundles:
            await validate_step(
                b.step, StepContext(scope=Scope(), step_label=b.label), b.parameters
            )
    runner = TestRunner(sink, shutdown_timeout=shutdown_timeout)
    loop = asyncio.get_running_loop()
    handles = []
    if pause_after is not None:
        handles.append(loop.call_later(pause_after, scope.pause.set))
    if cancel_after is not None:
        handles.append(loop.call_later(cancel_after, scope.cancel.set))
    if on_start is not None:
        on_start(scope)
    try:
        result = await runner.run(
            Test(test_name, bundles),
            _targets(targets),
            job_id=job_id,
            run_id=run_id,
            scope=scope,
            resume_state=resume_state,
        )
        return RunOutcome(result, None, sink)
    except (ContestError, Exception) as exc:
        return RunOutcome(None, exc, sink)
    finally:
        for h in handles:
            h.cancel()
