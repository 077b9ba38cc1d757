"""What the pages show, made from the rows of :mod:`._queries`: a job's tests and steps, the
state of each cell of the targets x steps grid, the counts per step, a job's progress.

A cell is one target in one step of one attempt:

* ``none``: not reached (the target never got there: it failed earlier, or the job ended);
* ``waiting``: the target is through the step before (or acquired, for the first step) and the
  job is still going, so it is queued for this one;
* ``running``: the step took it (``TargetIn``) and has not reported it yet;
* ``passed`` / ``failed``: the step reported it (``TargetOut`` / ``TargetErr`` with the error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contest.events import (
    TARGET_ACQUIRED,
    TARGET_ERR,
    TARGET_IN,
    TARGET_INTERRUPTED,
    TARGET_OUT,
)
from contest.job.build import CLEANUP_SUFFIX
from contest.server.web._queries import error_text
from contest.storage.models import JobState

#: states in which a job may still move
ACTIVE_STATES = frozenset(
    {JobState.UNKNOWN, JobState.STARTED, JobState.PAUSED, JobState.CANCELLING}
)
CELL_STATES = ("none", "waiting", "running", "passed", "failed")


# --- a job's tests and steps ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepShape:
    label: str
    plugin: str


@dataclass(frozen=True, slots=True)
class TestShape:
    __test__ = False

    name: str
    steps: tuple[StepShape, ...]


@dataclass(frozen=True, slots=True)
class JobShape:
    """The tests of a job (cleanup steps as a test of their own, as their events name them)
    and its number of runs (0: forever), from the stored extended descriptor."""

    runs: int = 1
    tests: tuple[TestShape, ...] = ()

    def test(self, name: str) -> TestShape | None:
        for t in self.tests:
            if t.name == name:
                return t
        return None


def _steps(raw: Any) -> tuple[StepShape, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        StepShape(str(s.get("Label", "")), str(s.get("Name", "")))
        for s in raw
        if isinstance(s, dict)
    )


def job_shape(extended_descriptor: str | None) -> JobShape:
    """The shape of a job from its extended descriptor as stored (ConTest's field names); an
    unreadable one gives an empty shape, and the pages fall back on the events."""
    try:
        doc = json.loads(extended_descriptor or "{}")
    except ValueError:
        return JobShape()
    if not isinstance(doc, dict):
        return JobShape()
    runs = doc.get("Runs")
    descriptors = doc.get("TestDescriptors")
    fetched = doc.get("TestStepsDescriptors")
    tests: list[TestShape] = []
    for i, ft in enumerate(fetched if isinstance(fetched, list) else []):
        if not isinstance(ft, dict):
            continue
        td = descriptors[i] if isinstance(descriptors, list) and i < len(descriptors) else {}
        if isinstance(td, dict) and td.get("Disabled") is True:
            continue
        name = str(ft.get("TestName", ""))
        tests.append(TestShape(name, _steps(ft.get("TestSteps"))))
        cleanup = _steps(ft.get("CleanupSteps"))
        if cleanup:
            tests.append(TestShape(name + CLEANUP_SUFFIX, cleanup))
    return JobShape(runs if isinstance(runs, int) and runs >= 0 else 1, tuple(tests))


# --- counts per step ----------------------------------------------------------------------------

#: (test, attempt, step label, event name) -> count, for one run of one job
Counts = dict[tuple[str, int, str, str], int]


def tests_of(shape: JobShape, counts: Counts) -> list[TestShape]:
    """The job's tests: those of its descriptor, then any its events name that it does not."""
    tests = list(shape.tests)
    known = {t.name for t in tests}
    for name in dict.fromkeys(test for test, _, _, _ in counts):
        if name not in known:
            steps = dict.fromkeys(s for t, _, s, _ in counts if t == name and s)
            tests.append(TestShape(name, tuple(StepShape(s, "") for s in steps)))
            known.add(name)
    return tests


def acquirer(test: str) -> str:
    """The test whose acquisition gave ``test`` its targets: cleanup steps run on the targets
    their test acquired (and are named after it)."""
    return test.removesuffix(CLEANUP_SUFFIX)


def attempts_of(counts: Counts, test: str) -> list[int]:
    return sorted({a for t, a, _, _ in counts if t in (test, acquirer(test))})


def steps_of(test: TestShape, counts: Counts, attempt: int) -> list[StepShape]:
    """The test's steps in descriptor order, then steps its events name that it does not."""
    steps = list(test.steps)
    known = {s.label for s in steps}
    for t, a, s, _ in counts:
        if t == test.name and a == attempt and s and s not in known:
            steps.append(StepShape(s, ""))
            known.add(s)
    return steps


@dataclass(slots=True)
class StepCount:
    """How many targets of an attempt are in each state for one step."""

    label: str
    plugin: str
    waiting: int = 0
    running: int = 0
    passed: int = 0
    failed: int = 0
    none: int = 0


def step_counts(
    counts: Counts, test: str, attempt: int, steps: Sequence[StepShape], active: bool
) -> tuple[int, list[StepCount]]:
    """The attempt's number of targets and, per step, its targets by cell state."""
    acquired = counts.get((acquirer(test), attempt, "", TARGET_ACQUIRED), 0)
    out: list[StepCount] = []
    upstream = acquired
    for step in steps:
        # an attempt lost with its server (TargetInterrupted) is entered again: not counted
        entered = counts.get((test, attempt, step.label, TARGET_IN), 0) - counts.get(
            (test, attempt, step.label, TARGET_INTERRUPTED), 0
        )
        passed = counts.get((test, attempt, step.label, TARGET_OUT), 0)
        failed = counts.get((test, attempt, step.label, TARGET_ERR), 0)
        waiting = max(upstream - entered, 0) if active else 0
        out.append(
            StepCount(
                step.label,
                step.plugin,
                waiting=waiting,
                running=max(entered - passed - failed, 0),
                passed=passed,
                failed=failed,
                none=max(acquired - entered - waiting, 0),
            )
        )
        upstream = passed
    return acquired, out


@dataclass(slots=True)
class Progress:
    """A job's latest run, summed over its tests' latest attempts."""

    run: int = 0
    targets: int = 0
    passed: int = 0  # through every step
    failed: int = 0
    in_flight: int = 0  # neither yet, while the job goes on


def progress(shape: JobShape, run: int, counts: Counts, active: bool) -> Progress:
    out = Progress(run=run)
    for test in tests_of(shape, counts):
        attempts = attempts_of(counts, test.name)
        if not attempts:
            continue
        attempt = attempts[-1]
        steps = steps_of(test, counts, attempt)
        acquired, per_step = step_counts(counts, test.name, attempt, steps, active)
        passed = per_step[-1].passed if per_step else 0
        failed = sum(s.failed for s in per_step)
        out.targets += acquired
        out.passed += passed
        out.failed += failed
        if active:
            out.in_flight += max(acquired - passed - failed, 0)
    return out


# --- the grid's cells ---------------------------------------------------------------------------


@dataclass(slots=True)
class Cell:
    state: str = "none"
    entered: float | None = None
    left: float | None = None
    error: str = ""

    def key(self) -> tuple[str, float | None, float | None, str]:
        return (self.state, self.entered, self.left, self.error)


@dataclass(slots=True)
class Grid:
    """The cells of the targets on one page, by target, in step order."""

    labels: list[str]
    active: bool
    rows: dict[str, list[Cell]] = field(default_factory=dict)

    @classmethod
    def empty(cls, targets: Sequence[str], labels: Sequence[str], active: bool) -> Grid:
        return cls(list(labels), active, {t: [Cell() for _ in labels] for t in targets})

    def apply(self, target: str, step: str, event: str, when: float, payload: Any) -> bool:
        """Apply one routing event; True when it concerns a cell of this grid."""
        cells = self.rows.get(target)
        if cells is None or step not in self.labels:
            return False
        cell = cells[self.labels.index(step)]
        if event == TARGET_IN:
            cell.state, cell.entered, cell.left, cell.error = "running", when, None, ""
        elif event == TARGET_OUT:
            cell.state, cell.left = "passed", when
        elif event == TARGET_ERR:
            cell.state, cell.left, cell.error = "failed", when, error_text(payload)
        else:
            return False
        return True

    def settle(self, target: str) -> None:
        """Mark the row's queued cells ``waiting`` (only while the job goes on)."""
        cells = self.rows[target]
        before = "passed"
        for cell in cells:
            if cell.state in ("none", "waiting"):
                cell.state = "waiting" if self.active and before == "passed" else "none"
            before = cell.state

    def settle_all(self) -> None:
        for target in self.rows:
            self.settle(target)

    def snapshot(self) -> Mapping[str, list[tuple[str, float | None, float | None, str]]]:
        return {t: [c.key() for c in cells] for t, cells in self.rows.items()}
