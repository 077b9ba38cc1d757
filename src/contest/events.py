"""Events: every move of a target and every change of a job is one.

A *test event* belongs to one step of one test run (header: job, run, test, step label, attempt)
and may name a target. A *framework event* belongs to a job (run started, job state changes).

Everything is written through an :class:`EventSink`. A sink's ``write_*`` call is synchronous up
to the point where the event's place in the order is fixed: events are stored, and numbered
(``sequence``, as read back), in the order of the write calls. It returns either ``None`` (the
event is already stored) or an awaitable that completes once the event is durable (or raises if
it could not be stored). The in-memory sink sets ``sequence`` at once; the SQL one has the
database number the rows at commit. The runner relies on the synchronous part: it records
``TargetIn`` at the instant a step takes a target, so nothing the step emits for that target can
come before it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from contest.errors import EventNotAllowed
from contest.target import Target

# events the test runner itself emits; steps need not declare them
TARGET_IN = "TargetIn"
TARGET_OUT = "TargetOut"
TARGET_ERR = "TargetErr"
TARGET_IN_ERR = "TargetInErr"
TEST_ERROR = "TestError"
VARIABLE_EMITTED = "VariableEmitted"
# events the job runner emits with an empty step label
TARGET_ACQUIRED = "TargetAcquired"
TARGET_RELEASED = "TargetReleased"
TARGET_ACQUIRE_ERR = "TargetAcquireErr"
# the job manager marks a target's attempt at a step lost with its server (kill -9, a lapsed
# lease): the job was taken over and the target re-enters the step; payload
# {"Server": "<lost instance>", "By": "<instance taking over>"}
TARGET_INTERRUPTED = "TargetInterrupted"
# an acquisition waiting for targets other jobs hold, and the end of that wait
TARGETS_WAITING = "TargetsWaiting"
TARGETS_WAIT_ENDED = "TargetsWaitEnded"
# framework events
RUN_STARTED = "RunStarted"


def closing_error(cause: str, label: str, tail: str = "") -> str:
    """The ``Error`` of the ``TargetErr`` the job manager writes for a target a job left inside
    step ``label`` when it ended (cancelled, failed, or failed as a zombie after its server
    died), so that no status shows the target in the step for good (ConTest writes none):
    ``<cause> while the target was in step "<label>"<tail>``."""
    return f'{cause} while the target was in step "{label}"{tail}'


def is_closing_error(error: str, label: str) -> bool:
    """True if ``error``, of a target in step ``label``, is a :func:`closing_error`: the target
    did not fail the step, its job ended while it was inside (a summary says "not finished")."""
    return f' while the target was in step "{label}"' in error


FRAMEWORK_TEST_EVENTS = frozenset(
    {
        TARGET_IN,
        TARGET_OUT,
        TARGET_ERR,
        TARGET_IN_ERR,
        TEST_ERROR,
        VARIABLE_EMITTED,
        TARGET_ACQUIRED,
        TARGET_RELEASED,
        TARGET_ACQUIRE_ERR,
        TARGET_INTERRUPTED,
    }
)
# routing events are summarised as in/out times in statuses, not listed per target
ROUTING_EVENTS = frozenset({TARGET_IN, TARGET_OUT, TARGET_ERR, TARGET_IN_ERR, TARGET_ACQUIRE_ERR})

MAX_EVENT_NAME_LEN = 32


def is_valid_event_name(name: str) -> bool:
    """ConTest's rule: letters only, at most 32 characters."""
    return 0 < len(name) <= MAX_EVENT_NAME_LEN and name.isascii() and name.isalpha()


@dataclass(slots=True, frozen=True)
class TestEventHeader:
    """Shared by every event of one step in one test attempt (one object, many events)."""

    __test__ = False

    job_id: int
    run_id: int
    test_name: str
    step_label: str
    test_attempt: int = 0


@dataclass(slots=True)
class TestEvent:
    __test__ = False

    header: TestEventHeader
    target: Target | None
    name: str
    payload: Any = None  # a JSON-able value; None means no payload
    emit_time: float = 0.0  # seconds since the epoch
    sequence: int = 0  # the event's place in the order, as stored (0 until the sink knows it)


@dataclass(slots=True)
class FrameworkEvent:
    job_id: int
    name: str
    payload: Any = None
    emit_time: float = 0.0
    sequence: int = 0


class EventSink(Protocol):
    """Where events go. See the module docstring for the two-part write contract.

    A sink's class may also define ``write_test_fields(header, target, name, payload,
    emit_time)``, the same write for an event given by its fields: :class:`EventEmitter` then
    calls it instead, which spares one object per event on the hot path (the SQL storage has
    it).
    """

    def write_test_event(self, event: TestEvent) -> Awaitable[None] | None: ...

    def write_framework_event(self, event: FrameworkEvent) -> Awaitable[None] | None: ...


@dataclass(slots=True)
class TestEventQuery:
    """Filters for test events; every field set narrows the result (lists are any-of)."""

    __test__ = False

    job_id: int | None = None
    run_id: int | None = None
    test_names: Sequence[str] | None = None
    step_labels: Sequence[str] | None = None
    target_ids: Sequence[str] | None = None
    event_names: Sequence[str] | None = None
    test_attempt: int | None = None
    emitted_after: float | None = None  # inclusive
    emitted_before: float | None = None  # exclusive
    after_sequence: int | None = None  # exclusive; for paging
    limit: int | None = None

    def matches(self, ev: TestEvent) -> bool:
        h = ev.header
        if self.job_id is not None and h.job_id != self.job_id:
            return False
        if self.run_id is not None and h.run_id != self.run_id:
            return False
        if self.test_names is not None and h.test_name not in self.test_names:
            return False
        if self.step_labels is not None and h.step_label not in self.step_labels:
            return False
        if self.test_attempt is not None and h.test_attempt != self.test_attempt:
            return False
        if self.target_ids is not None and (
            ev.target is None or ev.target.id not in self.target_ids
        ):
            return False
        if self.event_names is not None and ev.name not in self.event_names:
            return False
        if self.emitted_after is not None and ev.emit_time < self.emitted_after:
            return False
        if self.emitted_before is not None and ev.emit_time >= self.emitted_before:
            return False
        return self.after_sequence is None or ev.sequence > self.after_sequence


@dataclass(slots=True)
class FrameworkEventQuery:
    job_id: int | None = None
    event_names: Sequence[str] | None = None
    emitted_after: float | None = None
    emitted_before: float | None = None
    after_sequence: int | None = None
    limit: int | None = None

    def matches(self, ev: FrameworkEvent) -> bool:
        if self.job_id is not None and ev.job_id != self.job_id:
            return False
        if self.event_names is not None and ev.name not in self.event_names:
            return False
        if self.emitted_after is not None and ev.emit_time < self.emitted_after:
            return False
        if self.emitted_before is not None and ev.emit_time >= self.emitted_before:
            return False
        return self.after_sequence is None or ev.sequence > self.after_sequence


class EventReader(Protocol):
    async def test_events(self, query: TestEventQuery) -> list[TestEvent]: ...

    async def framework_events(self, query: FrameworkEventQuery) -> list[FrameworkEvent]: ...


@dataclass
class MemoryEventSink:
    """Keeps events in lists; for tests, benchmarks and the conformance kit."""

    test: list[TestEvent] = field(default_factory=list)
    framework: list[FrameworkEvent] = field(default_factory=list)
    _seq: int = 0

    def write_test_event(self, event: TestEvent) -> None:
        self._seq += 1
        event.sequence = self._seq
        self.test.append(event)

    def write_framework_event(self, event: FrameworkEvent) -> None:
        self._seq += 1
        event.sequence = self._seq
        self.framework.append(event)

    async def test_events(self, query: TestEventQuery) -> list[TestEvent]:
        out = [e for e in self.test if query.matches(e)]
        return out[: query.limit] if query.limit is not None else out

    async def framework_events(self, query: FrameworkEventQuery) -> list[FrameworkEvent]:
        out = [e for e in self.framework if query.matches(e)]
        return out[: query.limit] if query.limit is not None else out


class EventEmitter:
    """What a step gets to emit its own events; bound to the step's header.

    Only declared events pass (ConTest declares but never checks; we check). The runner's own
    events go through :meth:`write`, which skips the check.
    """

    __slots__ = ("_allowed", "_fields", "_header", "_sink")

    def __init__(
        self, sink: EventSink, header: TestEventHeader, allowed: Collection[str] | None
    ) -> None:
        self._sink = sink
        self._header = header
        self._allowed = None if allowed is None else frozenset(allowed)
        # looked up on the class: a wrapper that forwards what it lacks (``__getattr__``) and
        # watches write_test_event (contest.progress.ProgressStore) must keep seeing the events
        self._fields: Callable[..., Awaitable[None] | None] | None = (
            sink.write_test_fields  # type: ignore[attr-defined]
            if hasattr(type(sink), "write_test_fields")
            else None
        )

    @property
    def header(self) -> TestEventHeader:
        return self._header

    async def emit(self, name: str, target: Target | None = None, payload: Any = None) -> None:
        if (
            self._allowed is not None
            and name not in self._allowed
            and name not in FRAMEWORK_TEST_EVENTS
        ):
            raise EventNotAllowed(
                f"teststep {self._header.step_label} is not allowed to emit unregistered "
                f"event {name}"
            )
        pending = self.write(name, target, payload)
        if pending is not None:
            await pending

    def write(
        self, name: str, target: Target | None, payload: Any = None
    ) -> Awaitable[None] | None:
        fields = self._fields
        if fields is not None:
            return fields(self._header, target, name, payload, time.time())
        return self._sink.write_test_event(
            TestEvent(self._header, target, name, payload, time.time())
        )
