"""A job waiting for targets other jobs hold: the two events that record it, read in one place.

The job runner emits, as test events of the run (no target, empty step label):

* ``TargetsWaiting`` ``{"Targets": ["dut1", ...], "HeldBy": {"dut1": 3, ...}, "Timeout": "5m0s"}``
  when a wait starts, and again when the jobs in the way change;
* ``TargetsWaitEnded`` ``{"Acquired": true, "Waited": "1.5s"}`` or
  ``{"Acquired": false, "Error": "could not acquire targets within 5m0s: ..."}``.

A job waits while its latest ``TargetsWaiting`` has no ``TargetsWaitEnded`` after it. Every
reader (the REST progress, ``contest run``'s and ``contestcli --wait``'s live view, the web
pages, the metrics) goes through :func:`parse_waiting` and :func:`current_wait`, so that any
server reading the stored events sees the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contest.events import TARGETS_WAIT_ENDED, TARGETS_WAITING
from contest.golang.time import format_duration

__all__ = [
    "TARGETS_WAITING",
    "TARGETS_WAIT_ENDED",
    "Waiting",
    "current_wait",
    "describe_holders",
    "ended_payload",
    "parse_waiting",
    "waiting_payload",
]


@dataclass(slots=True)
class Waiting:
    """A job waiting for targets: each target with the job in its way (None: not known),
    since when (the event's time), and the timeout as the event wrote it (Go's format)."""

    targets: list[tuple[str, int | None]]
    since: float
    timeout: str

    def text(self) -> str:
        """``waiting for dut1, dut2 (held by job 3)``: what a person reads in a live view."""
        return "waiting for " + describe_holders(self.targets, joiner=", ")

    def to_json_obj(self) -> dict[str, Any]:
        """The progress document's ``Waiting``."""
        return {
            "Targets": [t for t, _ in self.targets],
            "HeldBy": {t: j for t, j in self.targets if j is not None},
            "Since": round(self.since, 3),
            "Timeout": self.timeout,
            "Text": self.text(),
        }


def describe_holders(targets: Sequence[tuple[str, int | None]], *, joiner: str) -> str:
    """``dut1, dut2 (held by job 3), dut3 (held by job 4)``: targets in order, each run of
    targets with one holder followed by it once."""
    groups: list[tuple[list[str], int | None]] = []
    for tid, holder in targets:
        if groups and groups[-1][1] == holder:
            groups[-1][0].append(tid)
        else:
            groups.append(([tid], holder))
    parts = []
    for ids, holder in groups:
        names = joiner.join(ids)
        parts.append(names if holder is None else f"{names} (held by job {holder})")
    return joiner.join(parts)


def waiting_payload(
    targets: Sequence[str], held_by: Mapping[str, int], timeout: float
) -> dict[str, Any]:
    """``TargetsWaiting``'s payload."""
    return {
        "Targets": list(targets),
        "HeldBy": {t: held_by[t] for t in targets if t in held_by},
        "Timeout": format_duration(timeout),
    }


def ended_payload(*, waited: float | None = None, error: str | None = None) -> dict[str, Any]:
    """``TargetsWaitEnded``'s payload: acquired after ``waited`` seconds, or not (``error``)."""
    if error is not None:
        return {"Acquired": False, "Error": error}
    return {"Acquired": True, "Waited": format_duration(round(waited or 0.0, 3))}


def parse_waiting(payload: Any, emit_time: float) -> Waiting:
    """A ``TargetsWaiting`` event's payload read leniently (a stored event from another
    version, or written by hand, still reads)."""
    body = payload if isinstance(payload, dict) else {}
    raw_targets = body.get("Targets")
    names = [t for t in raw_targets if isinstance(t, str)] if isinstance(raw_targets, list) else []
    held = body.get("HeldBy")
    held_by = held if isinstance(held, dict) else {}

    def holder(target: str) -> int | None:
        value = held_by.get(target)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    timeout = body.get("Timeout")
    return Waiting(
        [(t, holder(t)) for t in names], emit_time, timeout if isinstance(timeout, str) else ""
    )


def current_wait(events: Iterable[tuple[int, str, Any, float]]) -> Waiting | None:
    """The wait going on, from a job's wait events as ``(sequence, name, payload, emit_time)``
    in any order: its latest ``TargetsWaiting`` when no ``TargetsWaitEnded`` came after it."""
    last: tuple[int, str, Any, float] | None = None
    for ev in events:
        if ev[1] in (TARGETS_WAITING, TARGETS_WAIT_ENDED) and (last is None or ev[0] > last[0]):
            last = ev
    if last is None or last[1] != TARGETS_WAITING:
        return None
    return parse_waiting(last[2], last[3])
