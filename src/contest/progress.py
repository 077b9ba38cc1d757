"""Live progress of a job: targets per step, in flight, passed and failed.

Progress is counted from the runner's routing events (``TargetIn``, ``TargetOut``, ``TargetErr``)
for the latest run and, per test, its latest attempt (:class:`RoutingCounts`), and shown in one
shape (:func:`progress_json`), the live view's. Two ways to feed the counts:

* :class:`ProgressStore` wraps a job store and counts the events as they are written
  (``contest run``), so a live view costs nothing per poll, however big the job;
* :class:`ProgressTracker` reads them back from the store (the REST API's ``/progress``), only
  the events since the previous poll.

While the job waits for targets other jobs hold, the shape has ``Waiting`` (the targets, their
holders and ``Text``: ``waiting for dut1, dut2 (held by job 3)``), read from the stored
``TargetsWaiting``/``TargetsWaitEnded`` events by :func:`contest.targetwait.current_wait`, the
one reader every view shares, and made by :func:`waiting_json`, which ``GET /api/v1/jobs/{id}``
uses too (:meth:`ProgressTracker.waiting`). The job's state stays ``JobStateStarted``
(ConTest's).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from contest.events import (
    RUN_STARTED,
    TARGET_ERR,
    TARGET_IN,
    TARGET_INTERRUPTED,
    TARGET_OUT,
    EventReader,
    FrameworkEvent,
    FrameworkEventQuery,
    TestEvent,
    TestEventQuery,
)
from contest.job.statusdoc import COMPLETION_STATES
from contest.storage.models import JobRequest, JobState
from contest.targetwait import TARGETS_WAIT_ENDED, TARGETS_WAITING, Waiting, current_wait

#: the events a progress reads: routing, and the wait for targets
_WAIT_EVENTS = (TARGETS_WAITING, TARGETS_WAIT_ENDED)


@dataclass
class StepProgress:
    test: str
    label: str
    entered: int = 0
    passed: int = 0
    failed: int = 0

    @property
    def in_flight(self) -> int:
        return max(self.entered - self.passed - self.failed, 0)


@dataclass
class RoutingCounts:
    """Routing-event counts per (test, step label), for the latest run and, per test, its latest
    attempt: a new run or a retried test starts again from nothing."""

    run: int = 0
    steps: dict[tuple[str, str], StepProgress] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)

    def add(self, ev: TestEvent) -> None:
        """Count one routing event (other events are ignored)."""
        if ev.name not in (TARGET_IN, TARGET_OUT, TARGET_ERR, TARGET_INTERRUPTED):
            return
        h = ev.header
        if h.run_id > self.run:
            self.run, self.steps, self.attempts = h.run_id, {}, {}
        elif h.run_id < self.run:
            return
        attempt = self.attempts.get(h.test_name, -1)
        if h.test_attempt > attempt:
            self.attempts[h.test_name] = h.test_attempt
            for key in [k for k in self.steps if k[0] == h.test_name]:
                del self.steps[key]
        elif h.test_attempt < attempt:
            return
        key = (h.test_name, h.step_label)
        row = self.steps.get(key)
        if row is None:
            row = self.steps[key] = StepProgress(h.test_name, h.step_label)
        if ev.name == TARGET_IN:
            row.entered += 1
        elif ev.name == TARGET_INTERRUPTED:
            # an attempt lost with its server (a takeover): the target enters the step again
            row.entered -= 1
        elif ev.name == TARGET_OUT:
            row.passed += 1
        else:
            row.failed += 1

    def rows(self, run: int) -> list[StepProgress]:
        """The rows of run ``run`` (none when its first routing event has not come yet)."""
        return list(self.steps.values()) if run == self.run else []


def progress_json(
    state: str,
    run: int,
    elapsed: float,
    rows: list[StepProgress],
    waiting: Waiting | None = None,
) -> dict[str, Any]:
    """The live view's shape (``contest run``, ``/progress``, ``contestcli --wait``);
    ``Waiting`` only while a running job waits for targets."""
    out: dict[str, Any] = {
        "State": state,
        "Run": run,
        "Elapsed": round(max(elapsed, 0.0), 3),
        "Steps": [
            {
                "Test": s.test,
                "Step": s.label,
                "InFlight": s.in_flight,
                "Passed": s.passed,
                "Failed": s.failed,
            }
            for s in rows
        ],
    }
    wait = waiting_json(state, waiting)
    if wait is not None:
        out["Waiting"] = wait
    return out


def waiting_json(state: str, waiting: Waiting | None) -> dict[str, Any] | None:
    """The ``Waiting`` object of ``/progress`` and of ``GET /api/v1/jobs/{id}``: the wait
    going on while the job is started (a paused or ended job waits for nothing), else None."""
    if waiting is None or state != JobState.STARTED.event_name:
        return None
    return waiting.to_json_obj()


class WaitEvents:
    """The latest wait event of a job, fed in any order: what :func:`current_wait` needs."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: tuple[int, str, Any, float] | None = None

    def add(self, ev: TestEvent, sequence: int | None = None) -> None:
        if ev.name not in _WAIT_EVENTS:
            return
        seq = ev.sequence if sequence is None else sequence
        if self.last is None or seq > self.last[0]:
            self.last = (seq, ev.name, ev.payload, ev.emit_time)

    def current(self) -> Waiting | None:
        return current_wait([self.last] if self.last is not None else [])


@dataclass
class Progress:
    started: float = field(default_factory=time.time)
    counts: RoutingCounts = field(default_factory=RoutingCounts)
    state: str = "JobStateUnknown"
    run: int = 0
    waits: WaitEvents = field(default_factory=WaitEvents)
    written: int = 0  # events written so far: their order, before the store numbers them

    def rows(self) -> list[StepProgress]:
        return self.counts.rows(self.run)

    def to_json_obj(self) -> dict[str, Any]:
        return progress_json(
            self.state, self.run, time.time() - self.started, self.rows(), self.waits.current()
        )


class ProgressStore:
    """Delegates everything to ``store``; counts routing events on the way."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.progress = Progress()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def write_test_event(self, event: TestEvent) -> Awaitable[None] | None:
        self.progress.counts.add(event)
        if event.name in _WAIT_EVENTS:
            self.progress.written += 1
            self.progress.waits.add(event, self.progress.written)
        result: Awaitable[None] | None = self._store.write_test_event(event)
        return result

    def write_framework_event(self, event: FrameworkEvent) -> Awaitable[None] | None:
        if event.name.startswith("JobState"):
            self.progress.state = event.name
        elif event.name == "RunStarted" and isinstance(event.payload, dict):
            self.progress.run = int(event.payload.get("RunID", 0))
        result: Awaitable[None] | None = self._store.write_framework_event(event)
        return result


@dataclass
class _JobCounts:
    """One job's counts and how far its events were read."""

    after: int = 0  # routing and wait events read up to this sequence
    waits_after: int = 0  # wait events read up to this sequence
    counts: RoutingCounts = field(default_factory=RoutingCounts)
    waits: WaitEvents = field(default_factory=WaitEvents)


class ProgressTracker:
    """Per-job progress for ``/progress``: a poll reads only the events since the last one, so
    following a 20,000-target job costs what it emitted since, not what it emitted in all."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._jobs: OrderedDict[int, _JobCounts] = OrderedDict()

    def _entry(self, job_id: int) -> _JobCounts:
        prog = self._jobs.pop(job_id, None) or _JobCounts()
        self._jobs[job_id] = prog
        while len(self._jobs) > self.capacity:
            self._jobs.popitem(last=False)
        return prog

    async def waiting(self, store: EventReader, req: JobRequest) -> dict[str, Any] | None:
        """The job's ``Waiting`` object (:func:`waiting_json`, as ``/progress`` has it) by its
        stored state, reading only its wait events since the last call (no routing events)."""
        prog = self._entry(req.job_id)
        while True:
            batch: list[TestEvent] = await store.test_events(
                TestEventQuery(
                    job_id=req.job_id,
                    event_names=list(_WAIT_EVENTS),
                    after_sequence=max(prog.after, prog.waits_after),
                    limit=50_000,
                )
            )
            for ev in batch:
                prog.waits.add(ev)
                prog.waits_after = max(prog.waits_after, ev.sequence)
            if len(batch) < 50_000:
                break
        return waiting_json(req.state.event_name, prog.waits.current())

    async def progress(self, store: EventReader, req: JobRequest) -> dict[str, Any]:
        job_id = req.job_id
        prog = self._entry(job_id)
        while True:
            batch: list[TestEvent] = await store.test_events(
                TestEventQuery(
                    job_id=job_id,
                    event_names=[
                        TARGET_IN,
                        TARGET_OUT,
                        TARGET_ERR,
                        TARGET_INTERRUPTED,
                        *_WAIT_EVENTS,
                    ],
                    after_sequence=prog.after,
                    limit=50_000,
                )
            )
            for ev in batch:
                prog.counts.add(ev)
                prog.waits.add(ev)
                prog.after = max(prog.after, ev.sequence)
            if len(batch) < 50_000:
                break
        states: list[FrameworkEvent] = await store.framework_events(
            FrameworkEventQuery(
                job_id=job_id,
                event_names=[s.event_name for s in JobState if s is not JobState.UNKNOWN]
                + [RUN_STARTED],
            )
        )
        run = prog.counts.run
        started = None
        ended = None
        state = JobState.UNKNOWN  # the last state event's (the jobs row may lag behind it)
        for fev in states:
            if fev.name == RUN_STARTED:
                if isinstance(fev.payload, dict) and isinstance(fev.payload.get("RunID"), int):
                    run = max(run, fev.payload["RunID"])
                continue
            state = JobState.from_event_name(fev.name) or state
            if state is JobState.STARTED and started is None:
                started = fev.emit_time
            elif state in COMPLETION_STATES:
                ended = fev.emit_time
        if state not in COMPLETION_STATES:
            ended = None
        elapsed = ((ended or time.time()) - started) if started is not None else 0.0
        return progress_json(
            state.event_name, run, elapsed, prog.counts.rows(run), prog.waits.current()
        )
