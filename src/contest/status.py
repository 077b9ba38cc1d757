"""Run statuses: what happened to each target in each step of each test of a run.

Built from stored events (see :mod:`contest.job.status`) for reporters and for the status
API. ``to_json_obj`` gives ConTest's shape, key order included, because ConTest's client and
users' scripts read it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from contest.events import TestEvent
from contest.golang.time import ZERO_TIME, go_time
from contest.target import Target

_gc_depth = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (restored after, nesting allowed).

    For code that builds a big acyclic structure at once (a 10,000-target run's status is
    about a million objects): every collection the allocations trigger walks the whole heap
    and can free none of them; in a server with a big heap, that was most of the time spent.
    Meant for synchronous stretches (the interpreter's other threads merely collect later).
    """
    global _gc_depth, _gc_was_enabled
    if _gc_depth == 0:
        _gc_was_enabled = gc.isenabled()
        gc.disable()
    _gc_depth += 1
    try:
        yield
    finally:
        _gc_depth -= 1
        if _gc_depth == 0 and _gc_was_enabled:
            gc.enable()


def event_json(ev: TestEvent) -> dict[str, Any]:
    h = ev.header
    return {
        "EmitTime": go_time(ev.emit_time),
        "Header": {
            "JobID": h.job_id,
            "RunID": h.run_id,
            "TestName": h.test_name,
            "TestStepLabel": h.step_label,
        },
        "Data": {
            "Target": ev.target.to_json_obj() if ev.target is not None else None,
            "EventName": ev.name,
            "Payload": ev.payload,
        },
    }


@dataclass
class TargetStatus:
    job_id: int
    run_id: int
    test_name: str
    step_name: str
    step_label: str
    target: Target
    in_time: float | None = None
    out_time: float | None = None
    error: str = ""
    events: list[TestEvent] = field(default_factory=list)

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "JobID": self.job_id,
            "RunID": self.run_id,
            "TestName": self.test_name,
            "TestStepName": self.step_name,
            "TestStepLabel": self.step_label,
            "Target": self.target.to_json_obj(),
            "InTime": go_time(self.in_time),
            "OutTime": go_time(self.out_time),
            "Error": self.error,
            "Events": [event_json(e) for e in self.events] if self.events else None,
        }


@dataclass
class TestStepStatus:
    __test__ = False

    job_id: int
    run_id: int
    test_name: str
    step_name: str
    step_label: str
    events: list[TestEvent] = field(default_factory=list)
    target_statuses: list[TargetStatus] = field(default_factory=list)

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "JobID": self.job_id,
            "RunID": self.run_id,
            "TestName": self.test_name,
            "TestStepName": self.step_name,
            "TestStepLabel": self.step_label,
            "Events": [event_json(e) for e in self.events] if self.events else None,
            "TargetStatuses": [t.to_json_obj() for t in self.target_statuses]
            if self.target_statuses
            else None,
        }


@dataclass
class TestStatus:
    __test__ = False

    job_id: int
    run_id: int
    test_name: str
    step_statuses: list[TestStepStatus] = field(default_factory=list)
    target_statuses: list[TargetStatus] = field(default_factory=list)

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "JobID": self.job_id,
            "RunID": self.run_id,
            "TestName": self.test_name,
            "TestStepStatuses": [s.to_json_obj() for s in self.step_statuses]
            if self.step_statuses
            else None,
            "TargetStatuses": [t.to_json_obj() for t in self.target_statuses]
            if self.target_statuses
            else None,
        }


@dataclass
class RunStatus:
    job_id: int
    run_id: int
    test_statuses: list[TestStatus] = field(default_factory=list)

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "JobID": self.job_id,
            "RunID": self.run_id,
            "StartTime": ZERO_TIME,
            "TestStatuses": [t.to_json_obj() for t in self.test_statuses]
            if self.test_statuses
            else None,
        }
