"""The records the storage keeps besides events: job requests, job states and reports."""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, TypedDict


class JobState(enum.IntEnum):
    """A job's state; the number is what ``jobs.state`` holds, the name is the event's name.

    ConTest's numbering (``pkg/job``), so a database shared with tooling reads the same.
    """

    UNKNOWN = 0
    STARTED = 1
    COMPLETED = 2
    FAILED = 3
    PAUSED = 4
    PAUSE_FAILED = 5
    CANCELLING = 6
    CANCELLED = 7
    CANCELLATION_FAILED = 8

    @property
    def event_name(self) -> str:
        """The framework event (and status) name, e.g. ``JobStateCompleted``."""
        return _NAMES[self]

    @classmethod
    def from_event_name(cls, name: str) -> JobState | None:
        """The state a framework event name stands for, or None if it is no state event."""
        return _BY_NAME.get(name)

    @classmethod
    def parse(cls, value: JobState | int | str) -> JobState:
        """Accept a state, its number or its event name (``JobStateUnknown`` included)."""
        if isinstance(value, str):
            state = _BY_NAME.get(value)
            if state is None:
                raise ValueError(f"unknown job state {value!r}")
            return state
        return cls(value)


_NAMES = {
    JobState.UNKNOWN: "JobStateUnknown",
    JobState.STARTED: "JobStateStarted",
    JobState.COMPLETED: "JobStateCompleted",
    JobState.FAILED: "JobStateFailed",
    JobState.PAUSED: "JobStatePaused",
    JobState.PAUSE_FAILED: "JobStatePauseFailed",
    JobState.CANCELLING: "JobStateCancelling",
    JobState.CANCELLED: "JobStateCancelled",
    JobState.CANCELLATION_FAILED: "JobStateCancellationFailed",
}
_BY_NAME = {name: state for state, name in _NAMES.items()}

#: framework event names that change ``jobs.state`` (Unknown is never emitted)
STATE_EVENT_NAMES = frozenset(n for s, n in _NAMES.items() if s is not JobState.UNKNOWN)


class JobQuery(TypedDict, total=False):
    """Which jobs a list asks for; every filter is optional, and the answer is job IDs.

    Jobs in any of ``states`` (a state, its number or its event name; Unknown = no state event
    yet) carrying all of ``tags``, of one ``server_id`` and one ``requestor``; by job ID,
    ``order`` ``"asc"`` (the default) or ``"desc"``, the ``limit`` first ones. Storage, job
    manager and APIs all take it as keywords (``list_jobs(states=[...], tags=[...])``).
    """

    states: Collection[JobState | int | str] | None
    tags: Collection[str] | None
    server_id: str | None
    requestor: str | None
    limit: int | None
    order: str


@dataclass(slots=True)
class JobRequest:
    """A job as submitted: what ``start`` stores before it answers.

    ``tags`` are stored in ``job_tags`` (the job manager has already validated them and added
    the instance tag, if any); the storage does not parse ``descriptor``. ``job_id``,
    ``state`` and ``state_time`` are filled in by :meth:`Storage.get_job` and ignored by
    :meth:`Storage.store_job`. ``request_time`` 0 means "now".
    """

    name: str
    requestor: str
    server_id: str
    descriptor: str
    extended_descriptor: str | None = None
    tags: tuple[str, ...] = ()
    request_time: float = 0.0
    job_id: int = 0
    state: JobState = JobState.UNKNOWN
    state_time: float | None = None


@dataclass(slots=True)
class Report:
    """One reporter's verdict: for run ``run_id`` (1-based), or the final one (``run_id`` 0)."""

    job_id: int
    run_id: int
    reporter_name: str
    success: bool | None
    data: Any = None  # any JSON value
    report_time: float = 0.0  # 0 means "now"


@dataclass(slots=True)
class JobReport:
    """All reports of a job: ``run_reports[i]`` holds run ``i + 1``'s, by reporter name."""

    job_id: int
    run_reports: list[list[Report]] = field(default_factory=list)
    final_reports: list[Report] = field(default_factory=list)
