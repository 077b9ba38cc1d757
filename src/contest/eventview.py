"""A job's events on a terminal: ``contestcli events`` (from a server's REST API) and
``contest events`` (from a database), one event a line, in the order they happened, optionally
following the job until it ends.

Both commands read pages of events through an :class:`EventSource`; this module merges the test
and framework events by their emit time, page by page (memory bounded by two pages, whatever
the job's size), filters, prints, and follows. Events are the REST API's JSON shape
(``contest.server.restapi.test_event_json`` / ``framework_event_json``) plus ``kind``.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from contest.golang.time import parse_go_time
from contest.summary import FINAL_STATES

PAGE = 1000


@dataclass
class Filters:
    """Which events: any of ``names``; test events of any of ``targets`` and ``steps`` (a
    framework event has neither, so either filter leaves only test events)."""

    targets: Sequence[str] = field(default_factory=list)
    steps: Sequence[str] = field(default_factory=list)
    names: Sequence[str] = field(default_factory=list)

    def kinds(self) -> tuple[str, ...]:
        return ("test",) if self.targets or self.steps else ("test", "framework")


class EventSource(Protocol):
    def page(self, kind: str, filters: Filters, after: int, limit: int) -> list[dict[str, Any]]:
        """Events of ``kind`` ("test" or "framework") matching ``filters`` with a sequence
        above ``after``, by sequence, at most ``limit``."""
        ...

    def state(self) -> str:
        """The job's state name (``JobStateCompleted``...)."""
        ...


def _when(ev: dict[str, Any]) -> float:
    return parse_go_time(ev.get("emit_time")) or 0.0


def _pages(
    source: EventSource, kind: str, filters: Filters, cursor: dict[str, int]
) -> Iterator[dict[str, Any]]:
    """Every event of ``kind`` after ``cursor[kind]``, page by page; moves the cursor."""
    while True:
        page = source.page(kind, filters, cursor[kind], PAGE)
        for ev in page:
            cursor[kind] = max(cursor[kind], int(ev.get("sequence", 0)))
            yield {**ev, "kind": kind}
        if len(page) < PAGE:
            return


def read(source: EventSource, filters: Filters, cursor: dict[str, int]) -> Iterator[dict[str, Any]]:
    """The events after ``cursor`` (per kind), merged by emit time."""
    streams = [_pages(source, kind, filters, cursor) for kind in filters.kinds()]
    return heapq.merge(*streams, key=_when)


def show(
    source: EventSource,
    filters: Filters,
    write: Callable[[dict[str, Any]], None],
    *,
    follow: bool = False,
    poll: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Print the job's events; with ``follow``, keep printing new ones until the job is in a
    final state. Returns how many were printed."""
    cursor = {"test": 0, "framework": 0}
    shown = 0
    while True:
        # the state first: every event of a job is written before its final state, so a read
        # after seeing it is the last one needed
        done = not follow or source.state() in FINAL_STATES
        for ev in read(source, filters, cursor):
            write(ev)
            shown += 1
        if done:
            return shown
        sleep(poll)


def _payload(payload: Any) -> str:
    if payload is None:
        return ""
    return json.dumps(payload, ensure_ascii=False, separators=(", ", ": "))


def line(ev: dict[str, Any]) -> str:
    """One event on one line::

    2024-05-01T10:00:00.123Z  run 1  failing/check  bad  TargetErr  {"Error": "exit status 1"}
    2024-05-01T10:00:00.130Z  job  JobStateCompleted
    """
    when = str(ev.get("emit_time", ""))
    if "." in when:  # milliseconds are enough to read, and align
        head, frac = when.split(".", 1)
        when = f"{head}.{frac.rstrip('Z')[:3]:0<3}Z"
    else:
        when = when.replace("Z", ".000Z")
    if ev.get("kind") == "framework":
        parts = [when, "job", str(ev.get("name", ""))]
    else:
        where = str(ev.get("test_name", ""))
        if ev.get("step_label"):
            where += f"/{ev['step_label']}"
        if ev.get("test_attempt"):
            where += f" (attempt {ev['test_attempt']})"
        target = ev.get("target") or {}
        parts = [
            when,
            f"run {ev.get('run_id', 0)}",
            where,
            str(target.get("ID", "-")) if isinstance(target, dict) else "-",
            str(ev.get("name", "")),
        ]
    text = _payload(ev.get("payload"))
    if text:
        parts.append(text)
    return "  ".join(parts)


def writer(out: TextIO, *, as_json: bool) -> Callable[[dict[str, Any]], None]:
    """Print each event as a line (or as one JSON object per line), flushed at once: a
    follower may be piped into ``grep`` or a CI log."""

    def write(ev: dict[str, Any]) -> None:
        out.write((json.dumps(ev, ensure_ascii=False) if as_json else line(ev)) + "\n")
        out.flush()

    return write
