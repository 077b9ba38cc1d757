"""ConTest's job status document: state, times, every run's status, and the reports."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contest.events import RUN_STARTED, EventReader, FrameworkEventQuery
from contest.golang.json import compact, to_bytes
from contest.golang.time import go_time
from contest.job._gzip import gzip_parts
from contest.job.follow import FollowBroken, Followers, RunFollower
from contest.job.model import Job
from contest.job.status import (
    LiveRunStatus,
    RunText,
    StatusGivenUp,
    build_run_statuses,
    encode_run_status_off_loop,
    saved_run_blobs,
    saved_texts_of,
)
from contest.status import gc_paused
from contest.storage.models import JobReport, JobRequest, JobState, Report

COMPLETION_STATES = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.CANCELLATION_FAILED}
)
log = logging.getLogger(__name__)
_STATE_NAMES = {s.event_name for s in JobState if s is not JobState.UNKNOWN}


def report_json(r: Report) -> dict[str, Any]:
    out: dict[str, Any] = {"JobID": r.job_id}
    if r.run_id:
        out["RunID"] = r.run_id
    out.update(
        ReporterName=r.reporter_name,
        ReportTime=go_time(r.report_time),
        Success=bool(r.success),
        Data=r.data,
    )
    return out


def job_report_json(rep: JobReport) -> dict[str, Any]:
    return {
        "JobID": rep.job_id,
        "RunReports": [[report_json(r) for r in run] for run in rep.run_reports]
        if rep.run_reports
        else None,
        "FinalReports": [report_json(r) for r in rep.final_reports] if rep.final_reports else None,
    }


class RunningStatuses:
    """The statuses of the runs of running jobs, shared between requests when they are dear.

    A running run has no saved snapshot: its status is built from every event so far, which for
    a 10,000-target run is about a second of work; twenty clients polling it would take all of
    the server's time and hold up the job itself. So each build is kept, with what it cost:

    * for ``share`` times as long as it took (``min_fresh`` seconds at least: a poller's usual
      interval), requests get it as it is (a cheap one, under ``min_build`` seconds, is fresh
      for no time: a small job's status is built afresh for each request that comes alone);
    * after that, a request starts the next build (one at a time per run, for all requests) and,
      if the last one was dear, gets the last one at once while the next is made in the
      background; if it was cheap, it waits for the next (and so does whoever comes meanwhile
      without a result to take);
    * a request arriving while a build is under way gets the last one, if there is one;
    * a big build's gzip fragment is made as part of it (see :func:`_zipped_next`): a request
      gets a text and its fragment, both made.

    Building statuses so takes at most about a ``share + 1``-th of the server's time, requests
    wait only for the first build of a run or for a cheap one, and a poller of a big running job
    sees events at most about ``share + 1`` builds (or ``min_fresh`` and a build) late. A job
    that is no longer running is forgotten (by the job manager): its status is built afresh.
    """

    def __init__(
        self,
        *,
        share: float = 4.0,
        min_build: float = 0.05,
        min_fresh: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.share = share
        self.min_build = min_build
        self.min_fresh = min_fresh
        self._clock = clock
        self._entries: dict[tuple[int, int], _Shared] = {}

    async def get(self, key: tuple[int, int], build: Callable[[], Awaitable[RunText]]) -> RunText:
        """The status bytes of run ``key`` (job ID, run ID), built by ``build`` if need be."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Shared()
        last = entry.result
        if last is not None:
            if entry.task is not None:
                return last  # being built: the last one will do
            if self._clock() - entry.built_at < entry.window:
                return last  # fresh enough
        if entry.task is None:
            entry.task = asyncio.ensure_future(self._build(entry, build))
            entry.task.add_done_callback(_log_failure)
            if last is not None and entry.window > 0:
                return last  # a dear one: the next is made in the background
        return await asyncio.shield(entry.task)  # a request that gives up stops no build

    async def _build(self, entry: _Shared, build: Callable[[], Awaitable[RunText]]) -> RunText:
        started = self._clock()
        try:
            result = await build()
            if _zipped_next(entry.result, result):
                # made with the text, in the background like it, and counted in its cost: made
                # at the first ask instead, every poller asking meanwhile waited for it (0.1-0.25
                # s for a 10,000-target run, under load) after the text, and a cheap text was
                # shared for no time, so each of them waited for a fragment of its own
                # (test_fragment_made_with_the_build, test_fragment_not_made_for_a_small_text)
                await result.make_fragment()
        finally:
            entry.task = None
        took = self._clock() - started
        entry.result, entry.built_at = result, self._clock()
        entry.window = max(self.share * took, self.min_fresh) if took >= self.min_build else 0.0
        return result

    def forget(self, job_id: int) -> None:
        """The job is not running (any more): its next status is built afresh."""
        for key in [k for k in self._entries if k[0] == job_id]:
            del self._entries[key]  # a build under way still answers the requests awaiting it

    def close(self) -> None:
        """Stop the builds under way (the server is stopping)."""
        for entry in self._entries.values():
            if entry.task is not None:
                entry.task.cancel()
        self._entries.clear()


def _zipped_next(last: object, result: object) -> bool:
    """Whether a build's gzip fragment is made with it: a big run's text, when the last one's
    fragment was asked for (its pollers accept gzip, as Go's HTTP client and httpx do), or when
    there is no last one (most clients do); a poller that does not costs a compression in a
    worker thread per build, only until the next build."""
    if not isinstance(result, RunText) or result.size < GZIP_FROM:
        return False
    return last is None or (isinstance(last, RunText) and last.zipped)


class _Shared:
    __slots__ = ("built_at", "result", "task", "window")

    def __init__(self) -> None:
        self.result: RunText | None = None
        self.built_at = 0.0
        self.window = 0.0
        self.task: asyncio.Task[RunText] | None = None


def _log_failure(task: asyncio.Task[RunText]) -> None:
    """A build nobody waits for (one in the background) must not fail unseen."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("building a running job's status failed: %s", task.exception())


#: a document at least this big goes gzipped to a client that accepts it (smaller ones are sent
#: as they are: the same bytes as ConTest's, and not worth the trouble)
GZIP_FROM = 64 * 1024


@dataclass
class StatusDocument:
    """ConTest's status document of one job, as the JSON bytes the server sends, in parts.

    The runs' statuses are the big part (a 10,000-target run's is some 15 MB) and are kept as
    they were encoded: a finished run's once, when it ended (its saved snapshot, compressed),
    a running one's when asked. Writing the document is joining parts, never encoding it
    whole, and for a client that accepts gzip not even inflating them (:meth:`body`).
    """

    head: dict[str, Any]  # Name, State, StateErrMsg, StartTime, EndTime
    runs: list[RunText]  # each run's status JSON, in run order
    report: dict[str, Any]  # the JobReport

    def named(self, name: str) -> StatusDocument:
        """The document with the job's ``Name`` (one built before its request was read)."""
        self.head["Name"] = name  # the key is there already: its place does not change
        return self

    def _parts(self, before: bytes, after: bytes) -> list[bytes | RunText]:
        head = to_bytes(compact(self.head))[:-1]  # without its "}": more keys follow
        tail = b',"JobReport":' + to_bytes(compact(self.report)) + b"}"
        if not self.runs:
            return [before + head + b',"RunStatus":null,"RunStatuses":null' + tail + after]
        out: list[bytes | RunText] = [before + head + b',"RunStatus":', self.runs[-1]]
        out.append(b',"RunStatuses":[')
        for i, run in enumerate(self.runs):
            if i:
                out.append(b",")
            out.append(run)
        out.append(b"]" + tail + after)
        return out

    def size(self) -> int:
        """The document's length, uncompressed."""
        return sum(p.size if isinstance(p, RunText) else len(p) for p in self._parts(b"", b""))

    async def body(
        self, *, gzip: bool = False, before: bytes = b"", after: bytes = b""
    ) -> list[bytes]:
        """The document's JSON (Go's compact encoding, key order included), between ``before``
        and ``after`` (an envelope), as pieces to send in order; with ``gzip``, as one gzip
        stream (the runs' saved fragments as they are)."""
        parts = self._parts(before, after)
        if gzip:
            return gzip_parts([await p.fragment() if isinstance(p, RunText) else p for p in parts])
        return [await p.text() if isinstance(p, RunText) else p for p in parts]

    async def json_value(self) -> dict[str, Any]:
        """The document as a JSON value (for callers that read it, not send it)."""
        text = b"".join(await self.body())
        with gc_paused():
            value: dict[str, Any] = json.loads(text)
        return value


async def job_status_document(job: Job, req: JobRequest, store: Any) -> dict[str, Any]:
    """ConTest's status document as a JSON value (:func:`encoded_status_document`, read)."""
    return await (await encoded_status_document(job, req, store)).json_value()


async def _built(job: Job, reader: EventReader, run_id: int) -> RunText:
    (rs,) = await build_run_statuses(job, reader, [run_id])
    return RunText(await encode_run_status_off_loop(rs))


async def _followed(
    follower: RunFollower, build: Callable[[], Awaitable[RunText]], reader: Any
) -> RunText:
    """The run's text from its follower, or built from its events if the follower broke."""
    try:
        return await follower.text(reader)
    except FollowBroken:
        return await build()


async def encoded_status_document(
    job: Job,
    req: JobRequest | None,
    store: Any,
    running: RunningStatuses | None = None,
    live: Mapping[tuple[int, int], LiveRunStatus] | None = None,
    follow: Followers | None = None,
) -> StatusDocument:
    """ConTest's status document: finished runs from their saved snapshots (read, not built),
    runs going on in this process from their statuses kept as they run (``live``, by job and
    run ID: the job runner's), the others followed from the database (``follow``, see
    :mod:`contest.job.follow`) or built from their events, and for a job that is running (here
    or elsewhere), taken from ``running`` (see :class:`RunningStatuses`)."""
    # The kept text of a run running here is asked for beside the reads, not after them: its
    # first build of a sharing window (0.15-0.5 s for a 10,000-target run under load) then
    # overlaps the reads' waits for turns of the loop instead of following them. Only the
    # runs this process is running are kept (the job runner drops a run's when it ends), and
    # one whose saved snapshot the reads find is taken from that instead
    # (test_running_status_is_kept_and_equals_the_build).
    early: dict[int, tuple[LiveRunStatus, asyncio.Future[RunText]]] = {}
    if running is not None and live is not None:
        for (job_id, run_id), kept in list(live.items()):
            if job_id == job.id and not kept.given_up:
                early[run_id] = (
                    kept,
                    asyncio.ensure_future(running.get((job_id, run_id), kept.text)),
                )
    try:
        return await _document(job, req, store, running, live, follow, early)
    finally:
        for _, future in early.values():  # not wanted after all (or the reads failed)
            if not future.done():
                future.cancel()  # stops no build: RunningStatuses.get shields it
            elif not future.cancelled():
                future.exception()  # seen: its build's failure is logged by RunningStatuses


async def _document(
    job: Job,
    req: JobRequest | None,
    store: Any,
    running: RunningStatuses | None,
    live: Mapping[tuple[int, int], LiveRunStatus] | None,
    follow: Followers | None,
    early: dict[int, tuple[LiveRunStatus, asyncio.Future[RunText]]],
) -> StatusDocument:
    reader: EventReader = store
    # The reads a status needs, at once: each waits for turns of the loop that runs the jobs
    # (a thread's answer is a callback queued behind the job's), so done one after the other
    # a busy server's status answer took the sum of their waits (issue 17: API p99 under 20
    # pollers, benchmarks/perf.py's server section). The job's states and its runs are one
    # query, split here (the same events, in the same order).
    wanted = sorted({*_STATE_NAMES, RUN_STARTED})
    events, report, blobs = await asyncio.gather(
        reader.framework_events(FrameworkEventQuery(job_id=job.id, event_names=wanted)),
        store.job_report(job.id),
        saved_run_blobs(store, job.id),
    )
    states = [e for e in events if e.name in _STATE_NAMES]
    runs = [e for e in events if e.name == RUN_STARTED]
    start = next((e.emit_time for e in states if e.name == JobState.STARTED.event_name), None)
    completions = [
        e
        for e in states
        if (JobState.from_event_name(e.name) or JobState.UNKNOWN) in COMPLETION_STATES
    ]
    state = "Unknown"
    err = ""
    if states:
        last = max(states, key=lambda e: e.sequence)
        state = last.name
        if last.name == JobState.FAILED.event_name:
            payload = last.payload
            if isinstance(payload, dict) and isinstance(payload.get("Err"), str):
                err = payload["Err"]
            else:
                err = "internal error: the failure event has no error message"
    last_run = max(
        (int(e.payload.get("RunID", 0)) for e in runs if isinstance(e.payload, dict)), default=0
    )
    run_ids = list(range(1, last_run + 1))
    # finished runs were saved by the job runner; the others are built from their events
    saved = saved_texts_of(blobs, job.id, run_ids)
    built: dict[int, RunText] = {}
    for run_id in run_ids:
        if run_id in saved:
            continue
        kept = live.get((job.id, run_id)) if live is not None else None
        asked = early.pop(run_id, None)
        if kept is not None and not kept.given_up:
            # shared between requests as a build is (RunningStatuses): a big run's text is
            # still some milliseconds to join, and its gzip fragment more to compress; the
            # rows it has not taken yet are taken by the build, not by every request (most
            # get the shared text as it is)
            try:
                if asked is not None and asked[0] is kept:
                    built[run_id] = await asked[1]
                elif running is None:
                    built[run_id] = await kept.text()
                else:
                    built[run_id] = await running.get((job.id, run_id), kept.text)
                continue
            except StatusGivenUp:
                if running is not None:
                    running.forget(job.id)  # its shared text came from the kept status
        build = functools.partial(_built, job, reader, run_id)
        if follow is not None and hasattr(reader, "run_rows_after"):
            build = functools.partial(_followed, follow.of(job, run_id), build, reader)
        if running is None:
            built[run_id] = await build()
        else:
            built[run_id] = await running.get((job.id, run_id), build)
    return StatusDocument(
        head={
            "Name": req.name if req is not None else "",  # None: the caller names it
            "State": state,
            "StateErrMsg": err,
            "StartTime": go_time(start),
            "EndTime": go_time(max(e.emit_time for e in completions)) if completions else None,
        },
        runs=[saved[r] if r in saved else built[r] for r in run_ids],
        report=job_report_json(report),
    )
