"""Live progress of a job: targets per step, in flight, passed and failed.

``ProgressStore`` wraps a job store and counts the runner's routing events as they are written,
so a live view costs nothing per poll, however big the job.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from contest.events import (
    TARGET_ERR,
    TARGET_IN,
    TARGET_OUT,
    FrameworkEvent,
    TestEvent,
)


@dataclass
class StepProgress:
    test: str
    label: str
    entered: int = 0
    passed: int = 0
    failed: int = 0

    @property
    def in_flight(self) -> int:
        return self.entered - self.passed - self.failed


@dataclass
class Progress:
    started: float = field(default_factory=time.time)
    steps: dict[tuple[str, str], StepProgress] = field(default_factory=dict)
    state: str = "JobStateUnknown"
    run: int = 0

    def rows(self) -> list[StepProgress]:
        return list(self.steps.values())

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "State": self.state,
            "Run": self.run,
            "Elapsed": round(time.time() - self.started, 3),
            "Steps": [
                {
                    "Test": s.test,
                    "Step": s.label,
                    "InFlight": s.in_flight,
                    "Passed": s.passed,
                    "Failed": s.failed,
                }
                for s in self.steps.values()
            ],
        }


class ProgressStore:
    """Delegates everything to ``store``; counts routing events on the way."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.progress = Progress()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def write_test_event(self, event: TestEvent) -> Awaitable[None] | None:
        name = event.name
        if name in (TARGET_IN, TARGET_OUT, TARGET_ERR):
            h = event.header
            key = (h.test_name, h.step_label)
            row = self.progress.steps.get(key)
            if row is None:
                row = self.progress.steps[key] = StepProgress(h.test_name, h.step_label)
            if name == TARGET_IN:
                row.entered += 1
            elif name == TARGET_OUT:
                row.passed += 1
            else:
                row.failed += 1
        result: Awaitable[None] | None = self._store.write_test_event(event)
        return result

    def write_framework_event(self, event: FrameworkEvent) -> Awaitable[None] | None:
        if event.name.startswith("JobState"):
            self.progress.state = event.name
        elif event.name == "RunStarted" and isinstance(event.payload, dict):
            self.progress.run = int(event.payload.get("RunID", 0))
            self.progress.steps = {}  # each run starts from nothing
        result: Awaitable[None] | None = self._store.write_framework_event(event)
        return result
