"""Building run statuses from stored events (for reporters and for the status API), and saving
the status of a finished run so that the status API need not build it again.

For each run and each test, only the last attempt counts (ConTest LB): its steps' events become
per-step and per-target statuses; routing events become in/out times and errors; the test's own
target statuses come from its ``TargetAcquired`` (the target's status in the last step that saw
it) and ``TargetAcquireErr`` events (ConTest's ``pkg/runner/job_status.go``).

The builder makes one pass over a run's events, read lean where the store can
(:meth:`contest.storage.Storage.status_rows`: only the needed columns, each target decoded
once) and through :meth:`~contest.events.EventReader.test_events` otherwise.

A finished run's events never change, so its status never does either: the job runner saves it
(:func:`save_run_status`) once the run's tests are done, as a *snapshot*: the run's status JSON
exactly as the server sends it, encoded once (:func:`contest.status.encode_run_status`) and
zlib-compressed. :func:`snapshot_text` gives those bytes back, for the status document to send
as they are, without reading any event or encoding anything again. Runs without a snapshot
(running, paused, cancelled, failed) are built from their events.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import zlib
from collections.abc import Callable, Iterable, Sequence
from json.encoder import encode_basestring_ascii as _ascii_json
from typing import Any, TypeVar

from contest.events import (
    ROUTING_EVENTS,
    TARGET_ACQUIRE_ERR,
    TARGET_ACQUIRED,
    TARGET_ERR,
    TARGET_IN,
    TARGET_OUT,
    EventReader,
    TestEvent,
    TestEventHeader,
    TestEventQuery,
)
from contest.golang.json import compact, to_bytes
from contest.golang.time import ZERO_TIME
from contest.job._gzip import Fragment, fragment, inflate
from contest.job.model import Job
from contest.status import (
    RunStatus,
    StatusWriter,
    TargetStatus,
    TestStatus,
    TestStepStatus,
    encode_run_status,
    gc_paused,
)
from contest.storage.events import decode_json
from contest.target import Target

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

ACQUIRE_FAILED = "Failed to acquire targets"
#: the test's own events (no step label) that its status reads
_ACQUIRING = frozenset({TARGET_ACQUIRED, TARGET_ACQUIRE_ERR})

#: one event as the builder reads it: (test name, test attempt, step label, target or None,
#: event name, payload, emit time, sequence); see ``contest.storage.events.StatusRow``
StatusRow = tuple[str, int, str, Target | None, str, Any, float, int]
#: a test as the builder needs it: its name and its steps' (name, label) pairs, in order
TestShape = tuple[str, Sequence[tuple[str, str]]]


# --- building from events ---------------------------------------------------------------------


def _test_status(
    job_id: int, run_id: int, name: str, steps: Sequence[tuple[str, str]], rows: Sequence[StatusRow]
) -> TestStatus:
    """One test's status from its events (every attempt; the last one is kept). The events of
    one step label must be in sequence order; labels may come in any order."""
    last = max((r[1] for r in rows), default=0)
    ts = TestStatus(job_id, run_id, name)
    # label -> the steps with that label (one, unless a descriptor repeats a label)
    slots: dict[str, list[tuple[str, TestStepStatus, dict[str, TargetStatus]]]] = {}
    order: list[tuple[TestStepStatus, dict[str, TargetStatus]]] = []
    for step_name, label in steps:
        ss = TestStepStatus(job_id, run_id, name, step_name, label)
        per_target: dict[str, TargetStatus] = {}
        order.append((ss, per_target))
        slots.setdefault(label, []).append((step_name, ss, per_target))
    headers: dict[str, TestEventHeader] = {}

    def event(
        label: str, target: Target | None, ev: str, payload: Any, when: float, seq: int
    ) -> TestEvent:
        header = headers.get(label)
        if header is None:
            header = headers[label] = TestEventHeader(job_id, run_id, name, label, last)
        return TestEvent(header, target, ev, payload, when, seq)

    acquire: list[StatusRow] = []
    routing = ROUTING_EVENTS
    for row in rows:
        _, attempt, label, target, ev, payload, when, seq = row
        if attempt != last:
            continue
        if not label:
            acquire.append(row)
        entries = slots.get(label)
        if entries is None:
            continue
        for step_name, ss, per_target in entries:
            if target is None:
                if ev not in routing:
                    ss.events.append(event(label, None, ev, payload, when, seq))
                continue
            st = per_target.get(target.id)
            if st is None:
                st = per_target[target.id] = TargetStatus(
                    job_id, run_id, name, step_name, label, target
                )
            if ev == TARGET_IN:
                st.in_time = when
            elif ev == TARGET_OUT:
                st.out_time = when
            elif ev == TARGET_ERR:
                st.out_time = when
                st.error = str(payload.get("Error", "")) if isinstance(payload, dict) else ""
            elif ev not in routing:
                st.events.append(event(label, target, ev, payload, when, seq))

    latest: dict[str, TargetStatus] = {}
    for ss, per_target in order:
        ss.target_statuses = list(per_target.values())
        latest.update(per_target)
        ts.step_statuses.append(ss)
    for _, _, _, target, ev, payload, when, _ in acquire:
        if ev == TARGET_ACQUIRED and target is not None:
            st = latest.get(target.id) or TargetStatus(job_id, run_id, name, "", "", target)
            ts.target_statuses.append(st)
        elif ev == TARGET_ACQUIRE_ERR:
            err = payload.get("Error") if isinstance(payload, dict) else None
            ts.target_statuses.append(
                TargetStatus(
                    job_id,
                    run_id,
                    name,
                    "",
                    "",
                    target or Target(""),
                    in_time=when,
                    out_time=when,
                    error=err or ACQUIRE_FAILED,
                )
            )
    return ts


def build_run_status(
    job_id: int, run_id: int, tests: Sequence[TestShape], rows: Iterable[StatusRow]
) -> RunStatus:
    """A run's status from the events of its tests (any other test's events are ignored)."""
    with gc_paused():
        rows = rows if isinstance(rows, list) else list(rows)
        by_test: dict[str, list[StatusRow]] = {}
        if len(tests) == 1:
            by_test[tests[0][0]] = [r for r in rows if r[0] == tests[0][0]]
        else:
            for r in rows:
                by_test.setdefault(r[0], []).append(r)
        rs = RunStatus(job_id, run_id)
        for name, steps in tests:
            rs.test_statuses.append(
                _test_status(job_id, run_id, name, steps, by_test.get(name, []))
            )
        return rs


def job_shape(job: Job) -> list[TestShape]:
    """The job's tests, in order, with their steps' (name, label) pairs (cleanup steps are not
    part of a status)."""
    return [(jt.name, [(b.name, b.label) for b in jt.test.steps]) for jt in job.tests]


def rows_of(events: Iterable[TestEvent]) -> list[StatusRow]:
    """Events as the builder reads them."""
    return [
        (
            e.header.test_name,
            e.header.test_attempt,
            e.header.step_label,
            e.target,
            e.name,
            e.payload,
            e.emit_time,
            e.sequence,
        )
        for e in events
    ]


#: the only events with an empty step label a status reads (not TargetReleased)
_UNLABELLED = (TARGET_ACQUIRED, TARGET_ACQUIRE_ERR)


async def read_status_rows(
    reader: EventReader, job_id: int, run_id: int, tests: Sequence[TestShape]
) -> list[StatusRow]:
    """The run's events of ``tests``: lean from a store that can (only the events a status
    uses), else as events."""
    test_names = list(dict.fromkeys(name for name, _ in tests))
    if not test_names:
        return []
    lean = getattr(reader, "status_rows", None)
    if lean is not None:
        # a step with an empty label (descriptors do not allow one) sees them all
        empty_label = any(label == "" for _, steps in tests for _, label in steps)
        rows: list[StatusRow] = await lean(
            job_id, run_id, test_names, None if empty_label else _UNLABELLED
        )
        return rows
    events = await reader.test_events(
        TestEventQuery(job_id=job_id, run_id=run_id, test_names=list(test_names))
    )
    return rows_of(events)


async def build_run_statuses(
    job: Job, reader: EventReader, run_ids: Sequence[int]
) -> list[RunStatus]:
    """One ``RunStatus`` per run id, tests in the job's order. A big run is built in a worker
    thread, off the loop that runs the jobs."""
    tests = job_shape(job)
    out = []
    for run_id in run_ids:
        rows = await read_status_rows(reader, job.id, run_id, tests)
        if len(rows) < _BUILD_IN_THREAD:
            out.append(build_run_status(job.id, run_id, tests, rows))
        else:
            out.append(await asyncio.to_thread(build_run_status, job.id, run_id, tests, rows))
    return out


_BUILD_IN_THREAD = 20_000  # events


# --- a running run's status, kept as its events are written ----------------------------------


class _LiveTest:
    """One test of a :class:`LiveRunStatus`: :func:`_test_status`'s pass over the events, made
    one event at a time, as they are written."""

    __slots__ = (
        "acquired",
        "attempt",
        "headers",
        "job_id",
        "made",
        "name",
        "order",
        "run_id",
        "slots",
    )

    def __init__(self, job_id: int, run_id: int, name: str, steps: Sequence[tuple[str, str]]):
        self.job_id = job_id
        self.run_id = run_id
        self.name = name
        self.attempt = 0
        self.slots: dict[str, list[tuple[str, TestStepStatus, dict[str, TargetStatus]]]] = {}
        self.order: list[tuple[TestStepStatus, dict[str, TargetStatus]]] = []
        for step_name, label in steps:
            ss = TestStepStatus(job_id, run_id, name, step_name, label)
            per_target: dict[str, TargetStatus] = {}
            self.order.append((ss, per_target))
            self.slots.setdefault(label, []).append((step_name, ss, per_target))
        self.headers: dict[str, TestEventHeader] = {}
        # the test's own target statuses, in order: an acquired target (with the status it has
        # if no step saw it yet) or an acquire error's status
        self.acquired: list[tuple[Target, TargetStatus] | TargetStatus] = []
        # step label -> per event row that became events (in their order), those events: their
        # sequence numbers are read from the database for reporters (LiveRunStatus.with_sequences)
        self.made: dict[str, list[list[TestEvent]]] = {}

    def fresh(self) -> _LiveTest:
        steps = [(ss.step_name, ss.step_label) for ss, _ in self.order]
        return _LiveTest(self.job_id, self.run_id, self.name, steps)

    def unwritten(self, writer: _LiveWriter) -> list[TargetStatus]:
        """The target statuses of :meth:`status` whose text ``writer`` has not: each step's
        (but those of a step unchanged since the writer's last encoding: all written then),
        then the test's own that no step has (an acquired target no step saw yet, an acquire
        error; the others are a step's)."""
        unknown = writer.unknown
        clean = writer.clean
        steps = [per_target for _, per_target in self.order]
        out: list[TargetStatus] = []
        for per_target in steps:
            if not clean(per_target):
                out += unknown(per_target.values())
        own: list[TargetStatus] = []
        for entry in self.acquired:
            if isinstance(entry, tuple):
                tid = entry[0].id
                for per_target in steps:
                    if tid in per_target:
                        break
                else:
                    own.append(entry[1])
            else:
                own.append(entry)
        out += unknown(own)
        return out

    def event(
        self, label: str, target: Target | None, ev: str, payload: str | None, when: float
    ) -> TestEvent:
        header = self.headers.get(label)
        if header is None:
            header = self.headers[label] = TestEventHeader(
                self.job_id, self.run_id, self.name, label, self.attempt
            )
        return TestEvent(header, target, ev, decode_json(payload), when)

    def add(
        self,
        label: str,
        target: Target | None,
        ev: str,
        payload: str | None,
        when: float,
        writer: StatusWriter,
        ready: list[TargetStatus],
    ) -> None:
        # the same cases as _test_status, in the same order
        if not label:
            if ev == TARGET_ACQUIRED and target is not None:
                self.acquired.append(
                    (target, TargetStatus(self.job_id, self.run_id, self.name, "", "", target))
                )
            elif ev == TARGET_ACQUIRE_ERR:
                value = decode_json(payload)
                err = value.get("Error") if isinstance(value, dict) else None
                self.acquired.append(
                    TargetStatus(
                        self.job_id,
                        self.run_id,
                        self.name,
                        "",
                        "",
                        target or Target(""),
                        in_time=when,
                        out_time=when,
                        error=err or ACQUIRE_FAILED,
                    )
                )
        entries = self.slots.get(label)
        if entries is None:
            return
        made: list[TestEvent] | None = None
        if ev not in ROUTING_EVENTS:
            made = []
            self.made.setdefault(label, []).append(made)
        for step_name, ss, per_target in entries:
            if target is None:
                if made is not None:
                    made.append(self.event(label, None, ev, payload, when))
                    ss.events.append(made[-1])
                continue
            st = per_target.get(target.id)
            if st is None:
                st = per_target[target.id] = TargetStatus(
                    self.job_id, self.run_id, self.name, step_name, label, target
                )
            else:
                writer.forget(st)  # its text changes
            if ev == TARGET_IN:
                st.in_time = when
            elif ev == TARGET_OUT:
                st.out_time = when
                ready.append(st)
            elif ev == TARGET_ERR:
                st.out_time = when
                value = decode_json(payload)
                st.error = str(value.get("Error", "")) if isinstance(value, dict) else ""
                ready.append(st)
            elif made is not None:
                made.append(self.event(label, target, ev, payload, when))
                st.events.append(made[-1])

    def status(self) -> TestStatus:
        ts = TestStatus(self.job_id, self.run_id, self.name)
        for ss, per_target in self.order:
            ts.step_statuses.append(
                TestStepStatus(
                    self.job_id,
                    self.run_id,
                    self.name,
                    ss.step_name,
                    ss.step_label,
                    list(ss.events),
                    list(per_target.values()),
                )
            )
        # an acquired target's status is the one of the last step that saw it (looked up
        # from the last step back: most targets are in it)
        backwards = [per_target for _, per_target in reversed(self.order)]
        own = ts.target_statuses
        for entry in self.acquired:
            if isinstance(entry, tuple):
                target, unseen = entry
                tid = target.id
                for per_target in backwards:
                    seen = per_target.get(tid)
                    if seen is not None:
                        own.append(seen)
                        break
                else:
                    own.append(unseen)
            else:
                own.append(entry)
        return ts


class _LiveWriter(StatusWriter):
    """The :class:`StatusWriter` of a :class:`LiveRunStatus`, which also keeps each step's
    ``TargetStatuses`` as the parts of its last encoding, and reuses them when none of the step's
    statuses changed since: a running run's text is made again at each status build (about
    one a second under pollers), and most of a big run's steps are finished, or not begun
    (issue 17: a build's loop work under twenty pollers, ``benchmarks/perf.py``'s server
    section). The parts are the remembered texts themselves, so keeping them costs their
    references, not the text again. ``tests/jobs/test_status_fastpath.py`` checks the text
    against the build from the events at every cut of random runs."""

    __slots__ = ("arrays", "dirty", "sources")

    def __init__(self) -> None:
        super().__init__()
        # id(a step's statuses by target) -> (that dict, its TargetStatuses parts)
        self.arrays: dict[int, tuple[dict[str, TargetStatus], list[str]]] = {}
        # ids of the steps' dicts whose statuses changed since the last encoding (the take
        # marks them; anything else that changes a step clears ``arrays``)
        self.dirty: set[int] = set()
        # during an encoding: id(TestStepStatus) -> the step's dict it was made from
        self.sources: dict[int, dict[str, TargetStatus]] = {}

    def clean(self, per_target: dict[str, TargetStatus]) -> bool:
        """Whether this step's statuses are kept from the last encoding and did not change."""
        kept = self.arrays.get(id(per_target))
        return kept is not None and kept[0] is per_target and id(per_target) not in self.dirty

    def _step_statuses_parts(self, ss: TestStepStatus, out: list[str]) -> None:
        source = self.sources.get(id(ss))
        if source is None:
            super()._step_statuses_parts(ss, out)
        elif self.clean(source):
            out += self.arrays[id(source)][1]
        else:
            start = len(out)
            super()._step_statuses_parts(ss, out)
            self.arrays[id(source)] = (source, out[start:])


def _seed(writer: StatusWriter, target: Target, text: str) -> None:
    """Give ``writer`` the text of ``target`` read from ``text``, the target's JSON as the
    storage wrote it (:func:`contest.storage.events.encode_target`), where that is the text the
    status writes for it (``compact(target.to_json_obj())``): without a manager state (written
    otherwise) nor any ``\\u`` escape (the storage's text is ASCII, a status's is not). Writing
    it again was a third of the cost of writing a 10,000-target run's text
    (``tests/jobs/test_status_fastpath.py`` compares the documents; ``test_target_seed`` the
    texts)."""
    if target.manager_state is None and "\\u" not in text and '"TMS"' not in text:
        writer.seed_target(target, text)


class _Lane:
    """One step of a :class:`_LiveTest` as :meth:`LiveRunStatus._take`'s quick path needs it."""

    __slots__ = ("job_id", "label", "lt", "per_target", "run_id", "step_name", "test_name")

    def __init__(
        self,
        lt: _LiveTest,
        step_name: str,
        label: str,
        per_target: dict[str, TargetStatus] | None,  # None: the test's own events (no label)
    ) -> None:
        self.lt = lt
        self.job_id = lt.job_id
        self.run_id = lt.run_id
        self.test_name = lt.name
        self.step_name = step_name
        self.label = label
        self.per_target = per_target


class StatusGivenUp(Exception):
    """A kept status could not take one of its run's events (:attr:`LiveRunStatus.broken`): its
    text is not to be used; the run's status is built from its events instead."""


class LiveRunStatus:
    """The status of a run that this process is running, kept up to date from its events as
    they are written (:meth:`add` is the storage's tap, see
    :meth:`contest.storage.Storage.watch_run`), so that asking for it reads nothing back and
    builds nothing again, and encodes again only the target statuses that changed since the
    last time (the others' text is kept).

    It is :func:`build_run_status` of the same events, made one event at a time: the same
    rows (as the database gets them: target and payload as JSON text, decoded the way
    :func:`contest.storage.events.read_status_rows` decodes them), the same cases in the same
    order, so the same document to the byte; ``tests/jobs/test_status_fastpath.py`` checks it
    against the build from the database's events on SQLite, PostgreSQL and MariaDB. Any other
    reader (another server process on the same database, this one after a restart, a resumed
    run) builds the status from the events, as before. Only the events' ``sequence`` is not
    known here (the database numbers them at commit): the status document does not show it,
    and for run reporters :meth:`with_sequences` reads the numbers of the events in the status.
    """

    def __init__(self, job_id: int, run_id: int, tests: Sequence[TestShape]) -> None:
        self.job_id = job_id
        self.run_id = run_id
        self._tests = [_LiveTest(job_id, run_id, name, steps) for name, steps in tests]
        self._by_name: dict[str, list[_LiveTest]] = {}
        for lt in self._tests:
            self._by_name.setdefault(lt.name, []).append(lt)
        self._lanes: dict[str, dict[str, _Lane]] = {}
        self._make_lanes()
        self._targets: dict[str, Target] = {}  # target JSON -> its object (one per target)
        self._writer = _LiveWriter()
        self._changes = 0
        self._last: tuple[int, RunText] | None = None
        # rows queued by add() and not yet taken into the status (see _work)
        self._rows: list[Sequence[Any]] = []
        # target statuses that left their step (their text will not change, as a rule): written
        # a slice at a time while the run goes on (see _work)
        self._ready: list[TargetStatus] = []
        self._working = False
        self._broken = False

    @property
    def broken(self) -> bool:
        """An event could not be taken: this status is not to be used."""
        self._take()
        return self._broken

    @property
    def given_up(self) -> bool:
        """:attr:`broken` as far as the rows taken so far tell (it takes none): a status request
        that gets a shared text needs no row taken (:meth:`text` takes them, and raises
        :class:`StatusGivenUp` if one breaks it)."""
        return self._broken

    def add(self, row: Sequence[Any]) -> None:
        """One test event row as the storage queues it: ``(job_id, run_id, test_name,
        test_attempt, step_label, target_id, target_json, event_name, payload_json,
        emit_time)``. Never raises: a row it cannot take makes it :attr:`broken` (the
        status is then built from the events, as by any other reader).

        The row is only queued here: it is taken into the status when the event loop has
        nothing else to do (most of a job's time goes in waiting for its events' commit, the
        database working in its own thread), or at once when the status is asked for
        (everything that reads it takes the queued rows first, in their order)."""
        rows = self._rows
        rows.append(row)
        if len(rows) >= _ROWS_MAX:
            self._take()  # the loop never idles: bound what waits
        elif not self._working:
            self._start_work()

    async def take_queued(self, per_turn: int = 5_000) -> None:
        """Take the queued rows into the status ``per_turn`` at a time, letting the loop run
        between (a follower's first ask queues a whole run's rows: taken at once, 120,000 of
        them held the loop some 0.3 s)."""
        while self._rows and not self._broken:
            self._take(per_turn)
            await asyncio.sleep(0)

    def _take(self, upto: int | None = None) -> None:
        """Take the queued rows (the first ``upto`` of them) into the status, in order."""
        rows = self._rows
        if not rows:
            return
        if upto is None or upto >= len(rows):
            self._rows = []
        else:
            rows = rows[:upto]
            del self._rows[:upto]  # (a new list of the rest copied a long queue at each slice)
        if self._broken:
            return
        self._changes += 1
        # the statuses made here live as long as the run: a collection in between (one per
        # few hundred of them) could free none of them
        with gc_paused():
            self._take_rows(rows)

    def _take_rows(self, rows: list[Sequence[Any]]) -> None:
        by_name = self._by_name
        lanes = self._lanes
        targets = self._targets
        ready = self._ready
        # the writer's texts by status (StatusWriter.forget without a call per event), and the
        # steps whose statuses changed (_LiveWriter.dirty)
        forget = self._writer.forgetter()
        changed = self._writer.dirty.add
        marked: object = None  # the step last marked (a step's rows come together)
        in_, out, acquired = TARGET_IN, TARGET_OUT, TARGET_ACQUIRED
        for row in rows:
            try:
                # most rows (a target in or out of a step, acquired, released) taken here as
                # _LiveTest.add takes them, without its calls and checks; the others below
                by_label = lanes.get(row[2])
                if by_label is not None:
                    lane = by_label.get(row[4])
                    if lane is not None and row[3] == lane.lt.attempt:
                        ev = row[7]
                        per_target = lane.per_target
                        tjson = row[6]
                        if per_target is None:  # the test's own events (no step label)
                            if ev == acquired and tjson is not None:
                                target = targets.get(tjson)
                                if target is None:
                                    target = self._target_of(tjson, row[5])
                                lane.lt.acquired.append(
                                    (
                                        target,
                                        TargetStatus(
                                            lane.job_id, lane.run_id, lane.test_name, "", "", target
                                        ),
                                    )
                                )
                                continue
                            if ev not in _ACQUIRING and (tjson is None or tjson in targets):
                                continue  # not in the status (TargetReleased)
                        elif ev == in_ or ev == out:
                            target = targets.get(tjson)
                            if target is not None:
                                st = per_target.get(target.id)
                                if st is None:
                                    st = per_target[target.id] = TargetStatus(
                                        lane.job_id,
                                        lane.run_id,
                                        lane.test_name,
                                        lane.step_name,
                                        lane.label,
                                        target,
                                    )
                                else:
                                    forget(id(st), None)  # its text changes
                                if per_target is not marked:
                                    changed(id(per_target))
                                    marked = per_target
                                if ev == in_:
                                    st.in_time = row[9]
                                else:
                                    st.out_time = row[9]
                                    ready.append(st)
                                continue
                lives = by_name.get(row[2])
                if lives is not None:
                    self._add(lives, row)
                    # any step's statuses may have changed; a new attempt has a new writer
                    self._writer.arrays.clear()
                    forget = self._writer.forgetter()
                    changed = self._writer.dirty.add
                    marked = None
            except Exception:
                log.exception(
                    "job %d run %d: the kept status is given up", self.job_id, self.run_id
                )
                self._broken = True
                return
        if ready and not self._working:
            self._start_work()

    def _target_of(self, tjson: str, tid: str | None) -> Target:
        """The target of a row's target JSON (one object per target, its text given to the
        writer where it is the same). A target with only an ID (most are) is known by its
        text without reading it: ``{"ID":<the ID, escaped as the storage does>}`` reads as
        ``Target(ID)`` (``test_target_of`` checks it)."""
        if isinstance(tid, str) and tjson == '{"ID":' + _ascii_json(tid) + "}":
            target = Target(tid)
        else:
            target = Target.from_json_obj(json.loads(tjson))
        self._targets[tjson] = target
        _seed(self._writer, target, tjson)
        return target

    def _make_lanes(self) -> None:
        """The lanes of :meth:`_take`'s quick path: test name -> step label -> the only step
        with that label, for a test name and label that are not repeated (the empty label, of
        the test's own events, is never one)."""
        self._lanes.clear()  # in place: _take holds it
        for name, lives in self._by_name.items():
            if len(lives) != 1:
                continue
            (lt,) = lives
            lanes = self._lanes[name] = {
                label: _Lane(lt, entries[0][0], label, entries[0][2])
                for label, entries in lt.slots.items()
                if label and len(entries) == 1
            }
            if "" not in lt.slots:
                lanes[""] = _Lane(lt, "", "", None)

    def _add(self, lives: list[_LiveTest], row: Sequence[Any]) -> None:
        _, _, _, attempt, label, tid, tjson, ev, payload, when = row
        target: Target | None = None
        if tjson is not None:
            target = self._targets.get(tjson)
            if target is None:
                target = self._target_of(tjson, tid)
        elif tid is not None:
            target = Target(tid)
        for i, lt in enumerate(lives):
            if attempt != lt.attempt:
                if attempt < lt.attempt:
                    continue  # only the last attempt counts
                # a new attempt: the test's status starts afresh
                fresh = lt.fresh()
                fresh.attempt = attempt
                self._tests[self._tests.index(lt)] = lives[i] = lt = fresh
                self._writer = _LiveWriter()
                for text, known in self._targets.items():
                    _seed(self._writer, known, text)
                self._make_lanes()
            lt.add(label, target, ev, payload, when, self._writer, self._ready)

    def _start_work(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # written from outside a loop: the work is done when asked
            return
        self._working = True
        loop.call_soon(self._work, loop)

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take a slice of the queued rows, or write the text of a slice of the target
        statuses that left their step, when the loop has nothing else ready to run, and come
        back on a later turn for the next slice: the work then fills the loop's waits for the
        database (a step waiting for its events' commit) instead of adding to the job's time;
        the text is ready when the status is asked for, or when the run ends and its status is
        saved (which for a small job is most of its fixed cost). While other callbacks are
        ready it only puts itself behind them (one call per turn of the loop)."""
        if getattr(loop, "_ready", None):  # asyncio's queue of ready callbacks (not uvloop's)
            loop.call_soon(self._work, loop)
            return
        if self._rows:
            self._take(_ROWS_SLICE)
        elif self._ready:
            ready = self._ready
            piece = ready[-_READY_SLICE:]
            del ready[-_READY_SLICE:]
            writer = self._writer
            with gc_paused():
                writer.write(writer.unknown(piece))
        if (self._rows or self._ready) and not self._broken:
            loop.call_soon(self._work, loop)
        else:
            self._working = False

    def _check_kept(self) -> None:
        if self._broken:
            raise StatusGivenUp(f"job {self.job_id} run {self.run_id}: the kept status is given up")

    def _encoded(self) -> str:
        """:func:`encode_run_status` of :meth:`status`, each step's statuses that did not change
        since the last time reused as they were joined then (see :class:`_LiveWriter`)."""
        rs = self.status()  # takes the queued rows first: a new attempt has a new writer
        writer = self._writer
        writer.sources = {
            id(ss): per_target
            for ts, lt in zip(rs.test_statuses, self._tests, strict=True)
            for ss, (_, per_target) in zip(ts.step_statuses, lt.order, strict=True)
        }
        try:
            text = encode_run_status(rs, writer)
        finally:
            writer.sources = {}
        writer.dirty.clear()  # (not after a failure: a step it did not get to stays dirty)
        return text

    def status(self) -> RunStatus:
        """The run's status now (its target statuses are the live ones: encode it before the
        loop runs on)."""
        self._take()
        rs = RunStatus(self.job_id, self.run_id)
        rs.test_statuses = [lt.status() for lt in self._tests]
        return rs

    async def with_sequences(self, reader: Any) -> RunStatus | None:
        """:meth:`status` with its events' sequence numbers (which the database gives at commit),
        read from ``reader`` (``event_sequences``: only those of the events in the status);
        None if it cannot tell them (the caller builds the status from the events then)."""
        read = getattr(reader, "event_sequences", None)
        if read is None:
            return None
        self._take()
        for lt in list(self._tests):
            if not lt.made:
                continue
            found: list[tuple[str, int]] = await read(
                self.job_id, self.run_id, lt.name, lt.attempt, sorted(lt.made), ROUTING_EVENTS
            )
            numbers: dict[str, list[int]] = {}
            for label, seq in found:
                numbers.setdefault(label, []).append(seq)
            for label, rows in lt.made.items():
                seqs = numbers.get(label, [])
                if len(seqs) != len(rows):  # not the events seen here: build from the database
                    return None
                for seq, events in zip(seqs, rows, strict=True):
                    for e in events:
                        e.sequence = seq
        return self.status()

    async def text(self) -> RunText:
        """The run's status JSON now, as the server sends it. The target statuses not written
        since they last changed are written a slice at a time, letting the loop run between
        slices; the rest (those that changed meanwhile) and the joining is done at once. Raises
        :class:`StatusGivenUp` if an event could not be taken."""
        self._take()
        self._check_kept()
        last = self._last
        if last is not None and last[0] == self._changes:
            return last[1]  # nothing happened since: the same text (and its gzip fragment)
        writer = self._writer
        with gc_paused():
            pending = [st for lt in self._tests for st in lt.unwritten(writer)]
        for i in range(0, len(pending), _LIVE_SLICE):
            if self._writer is not writer:
                break  # a new attempt began meanwhile
            with gc_paused():
                writer.write(pending[i : i + _LIVE_SLICE])
            await asyncio.sleep(0)
        changes = self._changes
        with gc_paused():
            text = RunText(to_bytes(self._encoded()))
        self._check_kept()  # broken by a row taken since (status() takes them)
        self._last = (changes, text)
        return text


#: target statuses written between two turns of the loop when a live status is asked for
_LIVE_SLICE = 2_000
#: target statuses written per turn of an idle loop as they leave their steps
_READY_SLICE = 200
#: queued rows taken into a kept status per turn of an idle loop
_ROWS_SLICE = 1_000
#: queued rows beyond which they are taken at once (a loop that never idles)
_ROWS_MAX = 100_000


# --- snapshots of finished runs ---------------------------------------------------------------

#: snapshots written now: a header line ``{"v", "job", "run", "crc", "len", "zlen"}``, then the
#: run's status JSON exactly as the server sends it (UTF-8), as a raw deflate fragment (see
#: :mod:`contest.job._gzip`: a gzip answer sends it as it is). Version 1 (a compact layout
#: expanded at each read) is still read, from databases written by earlier versions.
SNAPSHOT_VERSION = 2
_IN_THREAD = 256 * 1024  # bytes; below this, (de)compressing in the loop is cheaper


async def _maybe_in_thread(size: int, fn: Callable[[T], R], arg: T) -> R:
    """``fn(arg)`` in a worker thread if ``size`` is big (zlib lets go of the interpreter lock
    there, so the loop that runs the jobs goes on), else here."""
    if size < _IN_THREAD:
        return fn(arg)
    return await asyncio.to_thread(fn, arg)


class RunText:
    """A run's status JSON as the server sends it: its bytes, its gzip fragment, or both; the
    missing one is made when first asked for (once, however many requests ask meanwhile), and
    kept (a running run's text is shared by the requests of
    :class:`~contest.job.statusdoc.RunningStatuses`, a saved one arrives as a fragment)."""

    __slots__ = ("_fragment", "_making", "_text", "_wanted")

    def __init__(self, text: bytes | None = None, frag: Fragment | None = None) -> None:
        if text is None and frag is None:
            raise ValueError("a run's text needs its bytes or its fragment")
        self._text = text
        self._fragment = frag
        self._making: asyncio.Future[None] | None = None  # the missing form, being made
        self._wanted = False

    @property
    def size(self) -> int:
        if self._text is not None:
            return len(self._text)
        assert self._fragment is not None
        return self._fragment.size

    @property
    def zipped(self) -> bool:
        """Its gzip fragment was asked for (:meth:`fragment`; :meth:`make_fragment` does not
        count): some client of it accepts gzip."""
        return self._wanted

    @property
    def fragment_ready(self) -> bool:
        """Its gzip fragment is made (a request for it waits for nothing)."""
        return self._fragment is not None

    async def text(self) -> bytes:
        while self._text is None:
            await self._make()
        return self._text

    def text_now(self) -> bytes:
        """:meth:`text`, here and now (raises ``ValueError`` for a damaged fragment)."""
        if self._text is None:
            assert self._fragment is not None
            self._text = inflate(self._fragment)
        return self._text

    async def fragment(self) -> Fragment:
        self._wanted = True
        return await self.make_fragment()

    async def make_fragment(self) -> Fragment:
        """:meth:`fragment`, made ahead of a request (its :attr:`zipped` stays as it was)."""
        while self._fragment is None:
            await self._make()
        return self._fragment

    async def _make(self) -> None:
        if self._making is None:
            self._making = asyncio.ensure_future(self._make_missing())
        making = self._making
        try:
            await asyncio.shield(making)
        finally:
            if making.done() and self._making is making:
                self._making = None

    async def _make_missing(self) -> None:
        if self._text is None:
            assert self._fragment is not None
            self._text = await _maybe_in_thread(self._fragment.size, inflate, self._fragment)
        else:
            self._fragment = await _maybe_in_thread(len(self._text), fragment, self._text)


def run_status_bytes(rs: RunStatus) -> bytes:
    """The status JSON of a run as the server sends it (see :func:`encode_run_status`)."""
    with gc_paused():
        return to_bytes(encode_run_status(rs))


async def encode_run_status_off_loop(rs: RunStatus) -> bytes:
    """:func:`run_status_bytes` in a worker thread for a big run: the loop that runs the jobs
    keeps going meanwhile (it gets the interpreter every few milliseconds)."""
    if sum(len(ss.target_statuses) for ts in rs.test_statuses for ss in ts.step_statuses) < 500:
        return run_status_bytes(rs)
    return await asyncio.to_thread(run_status_bytes, rs)


def _snapshot_of(frag: Fragment, job_id: int, run_id: int) -> bytes:
    head = {
        "v": SNAPSHOT_VERSION,
        "job": job_id,
        "run": run_id,
        "crc": frag.crc,
        "len": frag.size,
        "zlen": len(frag.data),
    }
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + frag.data


async def encode_snapshot(rs: RunStatus) -> bytes:
    """``rs`` as snapshot bytes (the big ones compressed in a thread)."""
    text = await encode_run_status_off_loop(rs)
    return _snapshot_of(await RunText(text).fragment(), rs.job_id, rs.run_id)


def snapshot_run_text(data: bytes, job_id: int, run_id: int) -> RunText | None:
    """The status JSON of run ``run_id`` of ``job_id`` from its snapshot, without reading any
    event (nor, for a snapshot of this version, inflating it); None if ``data`` is not a
    snapshot of that run (the caller builds the status from events then)."""
    try:
        if data.startswith(b'{"v":2,'):
            head, _, body = data.partition(b"\n")
            doc = json.loads(head)
            if doc.get("job") != job_id or doc.get("run") != run_id:
                return None
            if len(body) != doc["zlen"]:  # cut short (its CRC-32 finds any other damage)
                raise ValueError("saved status of the wrong length")
            return RunText(frag=Fragment(body, int(doc["crc"]), int(doc["len"])))
        with gc_paused():
            js = _snapshot_v1(zlib.decompress(data), job_id, run_id)
            return None if js is None else RunText(to_bytes(compact(js)))
    except (zlib.error, ValueError, LookupError, TypeError, AttributeError):
        log.warning(
            "job %d run %d: unreadable saved status; building it from events", job_id, run_id
        )
        return None


def snapshot_text(data: bytes, job_id: int, run_id: int) -> bytes | None:
    """:func:`snapshot_run_text`'s bytes (inflated and checked); None if they cannot be had."""
    found = snapshot_run_text(data, job_id, run_id)
    if found is None:
        return None
    try:
        return found.text_now()
    except (zlib.error, ValueError):
        log.warning("job %d run %d: damaged saved status", job_id, run_id)
        return None


def snapshot_json(data: bytes, job_id: int, run_id: int) -> dict[str, Any] | None:
    """:func:`snapshot_text` as the status JSON value (``RunStatus.to_json_obj()``)."""
    text = snapshot_text(data, job_id, run_id)
    if text is None:
        return None
    with gc_paused():
        value: dict[str, Any] = json.loads(text)
    return value


def _snapshot_v1(raw: bytes, job_id: int, run_id: int) -> dict[str, Any] | None:
    doc = json.loads(raw)
    if (
        not isinstance(doc, dict)
        or doc.get("v") != 1
        or doc.get("job") != job_id
        or doc.get("run") != run_id
    ):
        return None
    return _expand(doc["targets"], doc["tests"], job_id, run_id)


def _expand(targets: list[Any], tests: list[Any], job_id: int, run_id: int) -> dict[str, Any]:
    test_jsons = []
    for name, steps, own in tests:
        step_jsons = []
        expanded: list[list[dict[str, Any]]] = []
        for step_name, label, events, entries in steps:
            statuses = [
                {
                    "JobID": job_id,
                    "RunID": run_id,
                    "TestName": name,
                    "TestStepName": step_name,
                    "TestStepLabel": label,
                    "Target": dict(targets[t]),
                    "InTime": t_in,
                    "OutTime": t_out,
                    "Error": err,
                    "Events": evs,
                }
                for t, t_in, t_out, err, evs in entries
            ]
            expanded.append(statuses)
            step_jsons.append(
                {
                    "JobID": job_id,
                    "RunID": run_id,
                    "TestName": name,
                    "TestStepName": step_name,
                    "TestStepLabel": label,
                    "Events": events,
                    "TargetStatuses": statuses or None,
                }
            )
        own_jsons = []
        for entry in own:
            if len(entry) == 2:
                src = expanded[entry[0]][entry[1]]
                st = dict(src)
                st["Target"] = dict(src["Target"])
                if src["Events"] is not None:
                    st["Events"] = copy.deepcopy(src["Events"])
            else:
                t, step_name, label, t_in, t_out, err, evs = entry
                st = {
                    "JobID": job_id,
                    "RunID": run_id,
                    "TestName": name,
                    "TestStepName": step_name,
                    "TestStepLabel": label,
                    "Target": dict(targets[t]),
                    "InTime": t_in,
                    "OutTime": t_out,
                    "Error": err,
                    "Events": evs,
                }
            own_jsons.append(st)
        test_jsons.append(
            {
                "JobID": job_id,
                "RunID": run_id,
                "TestName": name,
                "TestStepStatuses": step_jsons or None,
                "TargetStatuses": own_jsons or None,
            }
        )
    return {
        "JobID": job_id,
        "RunID": run_id,
        "StartTime": ZERO_TIME,
        "TestStatuses": test_jsons or None,
    }


async def save_run_text(store: Any, job_id: int, run_id: int, text: RunText) -> bool:
    """:func:`save_run_status` of a status already encoded (a :class:`LiveRunStatus`'s)."""
    save = getattr(store, "store_run_status", None)
    if save is None:
        return False
    try:
        await save(job_id, run_id, _snapshot_of(await text.fragment(), job_id, run_id))
    except Exception as exc:
        log.warning(
            "job %d run %d: saving the run status failed (%s); the status document will "
            "build it from the events",
            job_id,
            run_id,
            exc,
        )
        return False
    return True


async def save_run_status(store: Any, status: RunStatus) -> bool:
    """Save a finished run's status in ``store``, if it keeps them (``store_run_status``);
    True if saved. A failure is logged, not raised: without a saved status the status document
    builds the run from its events, as for any unfinished run."""
    save = getattr(store, "store_run_status", None)
    if save is None:
        return False
    try:
        data = await encode_snapshot(status)
    except (ValueError, TypeError, RecursionError) as exc:
        log.warning(
            "job %d run %d: status not saved, not a JSON value: %s",
            status.job_id,
            status.run_id,
            exc,
        )
        return False
    try:
        await save(status.job_id, status.run_id, data)
    except Exception as exc:
        log.warning(
            "job %d run %d: saving the run status failed (%s); the status document will "
            "build it from the events",
            status.job_id,
            status.run_id,
            exc,
        )
        return False
    return True


async def saved_run_texts(store: Any, job_id: int, run_ids: Sequence[int]) -> dict[int, RunText]:
    """Run ID -> status JSON (as the server sends it, still compressed), for the runs among
    ``run_ids`` with a saved status."""
    if not run_ids:
        return {}
    return saved_texts_of(await saved_run_blobs(store, job_id), job_id, run_ids)


async def saved_run_blobs(store: Any, job_id: int) -> dict[int, bytes]:
    """Run ID -> saved status (the snapshot as stored), for the job's runs that have one;
    none from a store that keeps no snapshots or cannot read them."""
    load = getattr(store, "stored_run_statuses", None)
    if load is None:
        return {}
    try:
        blobs: dict[int, bytes] = await load(job_id)
    except Exception as exc:  # e.g. a database not migrated yet: build from events
        log.warning("job %d: cannot read saved run statuses (%s)", job_id, exc)
        return {}
    return blobs


def saved_texts_of(
    blobs: dict[int, bytes], job_id: int, run_ids: Sequence[int]
) -> dict[int, RunText]:
    """:func:`saved_run_texts` of snapshots already read (:func:`saved_run_blobs`)."""
    out = {}
    for run_id in run_ids:
        data = blobs.get(run_id)
        if data is not None:
            found = snapshot_run_text(data, job_id, run_id)
            if found is not None:
                out[run_id] = found
    return out
