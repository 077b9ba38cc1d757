"""Run statuses: what happened to each target in each step of each test of a run.

Built from stored events (see :mod:`contest.job.status`) for reporters and for the status
API. ``to_json_obj`` gives ConTest's shape, key order included, because ConTest's client and
users' scripts read it; :func:`encode_run_status` writes the same as JSON text directly.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from contest.events import TestEvent
from contest.golang.json import compact
from contest.golang.time import ZERO_TIME, go_time, go_times
from contest.target import Target

S = TypeVar("S")

_gc_depth = 0
_gc_was_enabled = False
_gc_lock = threading.Lock()


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (restored after, nesting allowed, from any thread:
    statuses are also built in worker threads).

    For code that builds a big acyclic structure at once (a 10,000-target run's status is
    about a million objects): every collection the allocations trigger walks the whole heap
    and can free none of them; in a server with a big heap, that was most of the time spent.
    Meant for synchronous stretches (the interpreter's other threads merely collect later).
    """
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
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


# --- writing a run's status as JSON, directly ------------------------------------------------


def _list_text(items: list[str]) -> str:
    """A JSON array of items already written, or ``null`` for none (Go's nil slice)."""
    return "[" + ",".join(items) + "]" if items else "null"


def _events_text(events: list[TestEvent]) -> str:
    return _list_text([compact(event_json(e)) for e in events])


class StatusWriter:
    """Writes the parts of one run's status, remembering what repeats: the text of each target
    (by object: a run's statuses share one object per target), each string, each step's
    prefix."""

    __slots__ = ("_prefixes", "_statuses", "_strings", "_targets")

    def __init__(self) -> None:
        # a test's own target statuses are its steps' (the same objects): written once
        self._statuses: dict[int, tuple[TargetStatus, str]] = {}
        self._targets: dict[int, tuple[Target, str]] = {}
        self._strings: dict[str, str] = {}
        self._prefixes: dict[tuple[int, int, str, str, str], str] = {}

    def forget(self, st: TargetStatus) -> None:
        """``st`` changed: write it afresh next time (a writer kept across encodings of a
        running run remembers the text of each target status it wrote)."""
        self._statuses.pop(id(st), None)

    def forgetter(self) -> Callable[[int, None], object]:
        """:meth:`forget` as a function of ``id(st), None``, for a loop that forgets many."""
        return self._statuses.pop

    def known(self, st: TargetStatus) -> bool:
        """Whether ``st``'s text is remembered (written and unchanged since)."""
        again = self._statuses.get(id(st))
        return again is not None and again[0] is st

    def unknown(self, statuses: Iterable[TargetStatus]) -> list[TargetStatus]:
        """Those of ``statuses`` whose text is not remembered (see :meth:`known`)."""
        done = self._statuses
        return [st for st in statuses if (again := done.get(id(st))) is None or again[0] is not st]

    def string(self, text: str) -> str:
        out = self._strings.get(text)
        if out is None:
            out = self._strings[text] = compact(text)
        return out

    def target(self, t: Target) -> str:
        known = self._targets.get(id(t))
        if known is not None and known[0] is t:
            return known[1]
        text = compact(t.to_json_obj())
        self._targets[id(t)] = (t, text)
        return text

    def seed_target(self, t: Target, text: str) -> None:
        """``text`` is ``t``'s JSON as :meth:`target` writes it (the caller knows)."""
        self._targets[id(t)] = (t, text)

    def prefix(self, st: TargetStatus) -> str:
        key = (st.job_id, st.run_id, st.test_name, st.step_name, st.step_label)
        prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = self._prefixes[key] = (
                f'{{"JobID":{st.job_id},"RunID":{st.run_id},'
                f'"TestName":{self.string(st.test_name)},'
                f'"TestStepName":{self.string(st.step_name)},'
                f'"TestStepLabel":{self.string(st.step_label)},"Target":'
            )
        return prefix

    def target_statuses(self, statuses: list[TargetStatus]) -> str:
        if not statuses:
            return "null"
        return "[" + ",".join(self.texts(statuses)) + "]"

    def texts(self, statuses: list[TargetStatus]) -> list[str]:
        """The text of each of ``statuses``: remembered, or written now (and remembered)."""
        done = self._statuses
        out = [
            again[1] if (again := done.get(id(st))) is not None and again[0] is st else None
            for st in statuses
        ]
        if None in out:
            todo = [i for i, text in enumerate(out) if text is None]
            for i, text in zip(todo, self.write([statuses[i] for i in todo]), strict=True):
                out[i] = text
        return out  # type: ignore[return-value]  # no None left

    def write(self, statuses: list[TargetStatus]) -> list[str]:
        """Write the text of each of ``statuses`` (and remember it), in order."""
        # the loop of the whole encoding (a status per target and step): the times written
        # all at once (go_times), names bound locally, the prefix looked up again only when the
        # coordinates change (a step's statuses share them), the common values ("" error, no
        # events) without a call
        parts: list[str] = []
        append = parts.append
        targets = self._targets
        done = self._statuses
        string = self.string
        ins = go_times([st.in_time for st in statuses])
        outs = go_times([st.out_time for st in statuses])
        last: TargetStatus | None = None
        prefix = ""
        for st, t_in, t_out in zip(statuses, ins, outs, strict=True):
            if (
                last is None
                or st.step_label != last.step_label
                or st.step_name != last.step_name
                or st.test_name != last.test_name
                or st.job_id != last.job_id
                or st.run_id != last.run_id
            ):
                prefix = self.prefix(st)
            last = st
            t = st.target
            known = targets.get(id(t))
            target = known[1] if known is not None and known[0] is t else self.target(t)
            error = string(st.error) if st.error else '""'
            events = _events_text(st.events) if st.events else "null"
            text = (
                f'{prefix}{target},"InTime":"{t_in}",'
                f'"OutTime":"{t_out}","Error":{error},"Events":{events}}}'
            )
            done[id(st)] = (st, text)
            append(text)
        return parts

    def step_status(self, ss: TestStepStatus) -> str:
        out: list[str] = []
        self._step_parts(ss, out)
        return "".join(out)

    def test_status(self, ts: TestStatus) -> str:
        out: list[str] = []
        self._test_parts(ts, out)
        return "".join(out)

    # The parts of a run's text, appended to one list joined once at the end: joined level
    # by level (a step's statuses, then its text, the test's, the run's) a 10,000-target run's
    # 13 MB were copied some eight times, each into fresh memory.

    def _statuses_parts(self, statuses: list[TargetStatus], out: list[str]) -> None:
        if statuses:
            texts = self.texts(statuses)
            # the texts and their commas into ``out`` (not joined here: copied once, at the end)
            seq = [","] * (2 * len(texts) - 1)
            seq[::2] = texts
            out.append("[")
            out += seq
            out.append("]")
        else:
            out.append("null")

    def _step_parts(self, ss: TestStepStatus, out: list[str]) -> None:
        out.append(
            f'{{"JobID":{ss.job_id},"RunID":{ss.run_id},"TestName":{self.string(ss.test_name)},'
            f'"TestStepName":{self.string(ss.step_name)},'
            f'"TestStepLabel":{self.string(ss.step_label)},"Events":{_events_text(ss.events)},'
            '"TargetStatuses":'
        )
        self._step_statuses_parts(ss, out)
        out.append("}")

    def _step_statuses_parts(self, ss: TestStepStatus, out: list[str]) -> None:
        """A step's ``TargetStatuses`` into ``out`` (a writer kept across encodings of a running
        run reuses those of a step that did not change: ``contest.job.status``)."""
        self._statuses_parts(ss.target_statuses, out)

    def _test_parts(self, ts: TestStatus, out: list[str]) -> None:
        out.append(
            f'{{"JobID":{ts.job_id},"RunID":{ts.run_id},"TestName":{self.string(ts.test_name)},'
            '"TestStepStatuses":'
        )
        _array_parts(ts.step_statuses, self._step_parts, out)
        out.append(',"TargetStatuses":')
        self._statuses_parts(ts.target_statuses, out)
        out.append("}")

    def run_parts(self, rs: RunStatus) -> list[str]:
        """:func:`encode_run_status`'s text in parts, to join."""
        out = [
            f'{{"JobID":{rs.job_id},"RunID":{rs.run_id},"StartTime":"{ZERO_TIME}","TestStatuses":'
        ]
        _array_parts(rs.test_statuses, self._test_parts, out)
        out.append("}")
        return out


def _array_parts(items: list[S], parts: Callable[[S, list[str]], None], out: list[str]) -> None:
    """A JSON array of ``items`` (Go's ``null`` when empty) into ``out``, each by ``parts``."""
    if not items:
        out.append("null")
        return
    for i, item in enumerate(items):
        out.append("," if i else "[")
        parts(item, out)
    out.append("]")


def encode_run_status(rs: RunStatus, writer: StatusWriter | None = None) -> str:
    """``rs`` as the JSON text ConTest's server writes for it: exactly
    ``contest.golang.json.compact(rs.to_json_obj())``, written without building that object (a
    10,000-target run's status is some 60,000 target statuses; the dictionaries and the generic
    encoder took four times as long). ``tests/jobs/test_status_fastpath.py`` checks the two
    agree on random statuses.

    ``writer`` (one kept across calls) reuses the text of the target statuses it wrote before
    that were not changed since (see :meth:`StatusWriter.forget`)."""
    w = writer if writer is not None else StatusWriter()
    return "".join(w.run_parts(rs))
