"""The :class:`Storage` object: jobs, events and reports of one database."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar, Unpack, cast

from sqlalchemy import delete, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contest.events import (
    FrameworkEvent,
    FrameworkEventQuery,
    TestEvent,
    TestEventHeader,
    TestEventQuery,
)
from contest.storage import checkpoints as ck
from contest.storage import events as ev
from contest.storage import jobs as jb
from contest.storage import migrate, schema
from contest.storage import reports as rp
from contest.storage import runstatuses as rs
from contest.storage.bulk import Row, sqlite_execute, sqlite_insert_statements
from contest.storage.engine import create_engine, create_sync_engine
from contest.storage.errors import LeaseLost
from contest.storage.limits import Limits
from contest.storage.limits import check as check_size
from contest.storage.models import JobQuery, JobReport, JobRequest, JobState, Report
from contest.storage.reader import ThreadReader
from contest.storage.retry import InThreadWork, RetryPolicy, Transactor
from contest.storage.urls import backend_name, redact
from contest.storage.writer import Ack, GroupCommitWriter
from contest.target import Target

T = TypeVar("T")
log = logging.getLogger(__name__)

# how often the writer prunes commit markers, and how old they must be
_PRUNE_EVERY = 600.0
_MARKER_TTL = 3600.0
_SQLITE_PRUNE = f'DELETE FROM "{schema.commit_markers.name}" WHERE "committed_at" < ?'

# tables Storage.reset() empties (not target_locks: like ConTest's Reset, locks outlive it)
_RESET_TABLES = (
    schema.jobs,
    schema.job_tags,
    schema.test_events,
    schema.framework_events,
    schema.reports,
    schema.run_statuses,
    schema.commit_markers,
    schema.servers,
    schema.job_leases,
    schema.job_commands,
    schema.job_checkpoints,
)


class Storage:
    """Jobs, tags, events, reports (and the engine for target locks) of one SQL database.

    An :class:`~contest.events.EventSink` and :class:`~contest.events.EventReader`. Make one with
    :func:`open_storage`; share it within the process (it owns the engine, its pool and the
    one event writer) and :meth:`close` it at shutdown.

    Every operation survives a database that goes away for less than ``retry_for`` seconds
    (see :mod:`contest.storage.retry`); past that it raises
    :class:`~contest.storage.errors.StorageUnavailable`. Values too long for their column raise
    :class:`~contest.storage.errors.ParameterTooLong` before anything is sent.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        retry: RetryPolicy | None = None,
        limits: Limits | None = None,
        max_batch: int = 10_000,
        reader: ThreadReader | None = None,
    ) -> None:
        self.engine = engine
        # the reads a server's API makes, each whole in a worker thread (see _read)
        self._reader = reader
        self.backend = backend_name(engine.url)
        self.limits = limits or Limits()
        self.retry = retry or RetryPolicy()
        self.transactor = Transactor(
            engine,
            self.retry,
            write_lock=asyncio.Lock() if self.backend == "sqlite" else None,
            sqlite=self.backend == "sqlite",
        )
        self._codec = ev.EventCodec(self.limits)
        # a saved status's chunks fit the statement size the limits allow (base64: no quoting)
        self._status_chunk = max(64 * 1024, min(rs.CHUNK_MAX, self.limits.report_data))
        self._event_flush = ev.make_flush(engine.dialect, self._jobs_ended)
        self._frees_target_locks = False
        self._forgets_job_leases = False
        self._last_prune = time.monotonic()
        self._writer: GroupCommitWriter[ev.Item] = GroupCommitWriter(
            self._flush_events,
            self.transactor,
            max_batch=max_batch,
            name="events",
            in_thread=self._sqlite_in_thread,
        )
        self._last_framework: Ack | None = None
        self._closed = False
        # (job ID, run ID) -> who sees that run's test event rows as they are queued
        self._taps: dict[tuple[int, int], Callable[[Row], None]] = {}
        # lease fencing (see fence_job): job -> (this server's instance, the epoch it holds)
        self._fences: dict[int, tuple[str, int]] = {}
        self._lost: dict[int, int] = {}  # job -> the epoch whose lease was found lost
        self._lost_callbacks: list[Callable[[int, int], None]] = []
        self._lease_sql = _lease_sql(engine.dialect)
        # SQLite: a batch of test events is written in one trip (_sqlite_in_thread)
        self._sqlite_rows = (
            sqlite_insert_statements(engine.dialect, schema.test_events.name, ev.TEST_COLUMNS)
            if self.backend == "sqlite"
            else None
        )

    @property
    def url(self) -> URL:
        return self.engine.url

    def __repr__(self) -> str:
        return f"<Storage {redact(self.engine.url)}>"

    # --- events: EventSink --------------------------------------------------------------------

    def write_test_event(self, event: TestEvent) -> Ack:
        """Queue a test event; await the result to know it is committed.

        The checks (sizes, JSON payload) run now and raise now; the event's place in the order
        is fixed now too: rows get their ``sequence`` in the order of these calls (per table;
        test and framework events are numbered separately). ``event.sequence`` itself is not
        filled in: the database assigns it at commit, and reading the event back shows it.
        A job whose lease this server lost raises :class:`LeaseLost` (see :meth:`fence_job`).
        """
        if self._lost:
            self._refuse_lost(event.header.job_id)
        row = self._codec.test_item(event)
        ack = self._writer.submit(row)
        if self._taps:
            self._tap(row)
        return ack

    def write_test_fields(
        self,
        header: TestEventHeader,
        target: Target | None,
        name: str,
        payload: Any,
        emit_time: float,
    ) -> Ack:
        """:meth:`write_test_event` for an event given by its fields: what
        :class:`~contest.events.EventEmitter` calls, one object (the event) fewer per event."""
        if self._lost:
            self._refuse_lost(header.job_id)
        row = self._codec.test_row(header, target, name, payload, emit_time)
        ack = self._writer.submit(row)
        if self._taps:
            self._tap(row)
        return ack

    def _tap(self, row: Row) -> None:
        tap = self._taps.get((row[0], row[1]))
        if tap is not None:
            tap(row)

    def watch_run(self, job_id: int, run_id: int, tap: Callable[[Row], None] | None) -> None:
        """Have ``tap`` see every test event row of run ``run_id`` of ``job_id`` queued from now
        on, as it goes to the database (``(job_id, run_id, test_name, test_attempt,
        step_label, target_id, target_json, event_name, payload_json, emit_time)``), in the
        order of their ``sequence``; None stops it. The job runner keeps a running run's
        status so (:class:`contest.job.status.LiveRunStatus`)."""
        if tap is None:
            self._taps.pop((job_id, run_id), None)
        else:
            self._taps[(job_id, run_id)] = tap

    def write_framework_event(self, event: FrameworkEvent) -> Ack:
        """Queue a framework event, as :meth:`write_test_event`.

        A job-state event (``JobStateStarted``, ``JobStateCompleted``, ...) also sets
        ``jobs.state`` in the same transaction, so :meth:`list_jobs` by state is a plain query
        that always agrees with the event log.
        """
        if self._lost:
            self._refuse_lost(event.job_id)
        ack = self._last_framework = self._writer.submit(self._codec.framework_item(event))
        return ack

    async def _framework_flushed(self) -> None:
        """Wait until every framework event written so far is committed: the batch of the last
        one, not every test event queued since (a busy job queues thousands, and a job list or
        a status would wait for them all)."""
        last = self._last_framework
        if last is not None:
            await self._writer.settled(last)

    async def flush(self) -> None:
        """Wait until every event written so far is committed (or has failed)."""
        await self._writer.flush()

    async def _flush_events(
        self, conn: AsyncConnection, items: list[ev.Item]
    ) -> dict[int, BaseException] | None:
        refused = None
        if self._fences or self._lost:
            refused = await self._fence_batch(conn, items)
            if refused:
                items = [item for i, item in enumerate(items) if i not in refused]
        if items:
            await self._event_flush(conn, items)
        prune = self._prune_due()
        if prune is not None:
            m = schema.commit_markers
            await conn.execute(delete(m).where(m.c.committed_at < prune))
        return refused

    # --- lease fencing ------------------------------------------------------------------------

    def fence_job(self, job_id: int, owner: str, epoch: int) -> None:
        """From now on every event and state write of ``job_id`` (and the DB locker's writes
        for it, see :meth:`check_lease`) is fenced by its lease: it commits only if, in its
        own transaction, the job's lease row (read with a share lock, so that no claim can
        change it before the commit) still says ``owner`` with ``epoch``, unexpired by the
        database's clock. A stale write is refused with :class:`LeaseLost`, nothing of that
        job's part of the batch stored; the job is then marked lost here: its later writes
        are refused at once, and every callback of :meth:`on_lease_lost` is told. The job
        manager fences each job after claiming its lease (it holds ``epoch``)."""
        self._fences[job_id] = (owner, epoch)
        self._lost.pop(job_id, None)

    def unfence_job(self, job_id: int) -> None:
        """The job's lease is no longer checked (the job paused, or ended, or its copy here
        stopped): writes of it are unfenced again. A job marked lost stays refused until it is
        fenced again (a later claim) or :meth:`forget_lost` is called."""
        self._fences.pop(job_id, None)

    def forget_lost(self, job_id: int) -> None:
        self._lost.pop(job_id, None)

    def lease_lost(self, job_id: int) -> bool:
        return job_id in self._lost

    def on_lease_lost(self, callback: Callable[[int, int], None]) -> None:
        """Call ``callback(job_id, epoch)`` (on the event loop, soon after) when a write of a
        fenced job is refused, or :meth:`mark_lost` is called."""
        self._lost_callbacks.append(callback)

    def mark_lost(self, job_id: int, epoch: int) -> None:
        """This server no longer holds the job's lease (its heartbeat found it taken or
        lapsed): refuse its writes from now on, as if the database had."""
        fence = self._fences.pop(job_id, None)
        if fence is not None and fence[1] != epoch:
            self._fences[job_id] = fence  # a newer claim than the one that was lost
            return
        if job_id in self._lost:
            return
        self._lost[job_id] = epoch
        loop = asyncio.get_running_loop()
        for callback in self._lost_callbacks:
            loop.call_soon(callback, job_id, epoch)

    def _refuse_lost(self, job_id: int) -> None:
        epoch = self._lost.get(job_id)
        if epoch is not None:
            raise LeaseLost(job_id, epoch, "refused by this server")

    def _sqlite_in_thread(
        self, items: list[ev.Item]
    ) -> InThreadWork[dict[int, BaseException] | None] | None:
        """A batch of test events on SQLite as one trip to the driver's thread (see
        :meth:`Transactor.write`): there the lease rows of the batch's fenced jobs are read
        (the transaction holds the database's write lock already, BEGIN IMMEDIATE), the rows
        of the jobs whose lease is stale or lost are left out, and the others inserted. What
        it decides is what :meth:`_fence_batch` decides, from the same fences, taken before
        the trip; the jobs found stale are marked lost on the loop after it. None for a batch
        with framework events (their job states are SQLAlchemy's statements)."""
        statements = self._sqlite_rows
        if statements is None or not all(type(item) is tuple for item in items):
            return None
        rows = cast("list[Row]", items)
        ids = {row[0] for row in rows}
        refuse: dict[int, tuple[int, str]] = {
            j: (self._lost[j], "refused by this server") for j in ids if j in self._lost
        }
        fences = {j: self._fences[j] for j in ids if j in self._fences}
        sql = self._lease_query(list(fences)) if fences else None
        lost = set(refuse)
        prune = self._prune_due()

        def work(db: Any) -> dict[int, str]:
            stale = _stale_of([tuple(r) for r in db.execute(sql).fetchall()], fences) if sql else {}
            skip = lost | stale.keys()
            kept = [row for row in rows if row[0] not in skip] if skip else rows
            for insert, params in statements(kept):
                db.execute(insert, params).close()
            if prune is not None:
                db.execute(_SQLITE_PRUNE, (prune,)).close()
            return stale

        def after(stale: dict[int, str]) -> dict[int, BaseException] | None:
            for job_id, why in stale.items():
                epoch = fences[job_id][1]
                refuse[job_id] = (epoch, why)
                log.error("%s; refusing its writes", LeaseLost(job_id, epoch, why))
                self.mark_lost(job_id, epoch)
            if not refuse:
                return None
            return {
                i: LeaseLost(row[0], *refuse[row[0]])
                for i, row in enumerate(rows)
                if row[0] in refuse
            }

        return work, after

    def _prune_due(self) -> float | None:
        """The time before which commit markers are pruned, when it is time to (every
        ``_PRUNE_EVERY`` s, in the event writer's transaction), else None."""
        now = time.monotonic()
        if now - self._last_prune <= _PRUNE_EVERY:
            return None
        self._last_prune = now
        return time.time() - max(_MARKER_TTL, 4 * self.retry.retry_for)

    def _lease_query(self, job_ids: list[int]) -> str:
        """The fencing read of ``job_ids``' lease rows (see :meth:`_stale`)."""
        sql = self._lease_sql + ",".join(str(int(j)) for j in sorted(job_ids)) + ")"
        if self.backend == "postgresql":
            sql += " FOR SHARE"
        elif self.backend != "sqlite":
            sql += " LOCK IN SHARE MODE"
        return sql

    async def _stale(self, conn: AsyncConnection, job_ids: list[int]) -> dict[int, str]:
        """Of the fenced ``job_ids``, the ones whose lease this server no longer holds, and
        why. The lease rows are read with a share lock (FOR SHARE on PostgreSQL, LOCK IN
        SHARE MODE on MariaDB/MySQL): a claim (an UPDATE of the row) waits for this
        transaction's commit, so what was checked holds until the write is committed. On
        SQLite the transaction holds the database's write lock already (BEGIN IMMEDIATE)."""
        sql = self._lease_query(job_ids)
        # driver-level SQL, built from integers only: this runs once per batch, and building
        # and compiling a SELECT each time cost as much as the round trip
        if self.backend == "sqlite":
            found = await sqlite_execute(conn, (sql, ()))  # one trip to the driver's thread
        else:
            found = [tuple(r) for r in (await conn.exec_driver_sql(sql)).all()]
        return _stale_of(found, {j: self._fences[j] for j in job_ids})

    async def check_lease(self, conn: AsyncConnection, job_id: int) -> None:
        """Fence a write of ``job_id`` made by another part of this server in ``conn``'s
        transaction (the DB target locker's lock, refresh and unlock): raises
        :class:`LeaseLost` when this server's lease on the job is stale. Nothing to check for
        a job that is not fenced."""
        lost = self._lost.get(job_id)
        if lost is not None:
            raise LeaseLost(job_id, lost, "refused by this server")
        fence = self._fences.get(job_id)
        if fence is None:
            return
        why = (await self._stale(conn, [job_id])).get(job_id)
        if why is not None:
            self.mark_lost(job_id, fence[1])
            raise LeaseLost(job_id, fence[1], why)

    async def _fence_batch(
        self, conn: AsyncConnection, items: list[ev.Item]
    ) -> dict[int, BaseException] | None:
        """The items of the batch to refuse (by index): those of jobs marked lost, and of
        fenced jobs whose lease turns out stale in this transaction (which marks them lost)."""
        ids = {item[0] if type(item) is tuple else item.row[0] for item in items}  # type: ignore[union-attr]
        fenced = [j for j in ids if j in self._fences]
        refuse: dict[int, tuple[int, str]] = {
            j: (self._lost[j], "refused by this server") for j in ids if j in self._lost
        }
        if fenced:
            for job_id, why in (await self._stale(conn, fenced)).items():
                epoch = self._fences[job_id][1]
                refuse[job_id] = (epoch, why)
                log.error("%s; refusing its writes", LeaseLost(job_id, epoch, why))
                self.mark_lost(job_id, epoch)
        if not refuse:
            return None
        out: dict[int, BaseException] = {}
        for i, item in enumerate(items):
            job_id = item[0] if type(item) is tuple else item.row[0]  # type: ignore[union-attr]
            if job_id in refuse:
                epoch, why = refuse[job_id]
                out[i] = LeaseLost(job_id, epoch, why)
        return out

    def hold_outages(self, *, max_items: int = 1_000_000, max_backoff: float = 5.0) -> None:
        """Keep queued events through a database outage longer than the retry budget (see
        :meth:`GroupCommitWriter.hold_outages`): a server's jobs are suspended, not failed,
        while the database is away, and nothing a step emitted is lost."""
        self._writer.hold_outages(max_items=max_items, max_backoff=max_backoff)

    @property
    def outage_since(self) -> float | None:
        """``time.monotonic()`` when the event writer began holding events through an outage
        (None: it is not)."""
        return self._writer.outage_since

    def free_target_locks_at_job_end(self) -> None:
        """Say that the database locker keeps its locks in this database (``contest serve``
        with the DB locker on the storage's engine): from now on, the transaction storing a
        job's final state (completed, failed, cancelled, pause or cancellation failed) also
        deletes the job's locks (:func:`contest.storage.jobs.free_targets_of_ended_jobs`).
        Off by default: a locker elsewhere keeps its own rows, which this database's job IDs
        do not name."""
        self._frees_target_locks = True

    def forget_job_leases_at_job_end(self) -> None:
        """Say that job leases are kept in this database (:class:`contest.storage.fleet.
        SqlFleet`): from now on, the transaction storing a job's final state also deletes its
        lease, the commands left for it and its step checkpoints, so that a job is never seen
        ended with a lease, or running without one. Off by default: a reader of a database
        not migrated this far (``contest events``) has no such tables."""
        self._forgets_job_leases = True

    async def _jobs_ended(self, conn: AsyncConnection, job_ids: set[int]) -> None:
        if self._frees_target_locks:
            await jb.free_targets_of_ended_jobs(conn, job_ids)
        if self._forgets_job_leases:
            # imported here: the fleet module imports this package
            from contest.storage.fleet import forget_ended_jobs

            await forget_ended_jobs(conn, job_ids)
            await ck.forget(conn, job_ids)  # kept by the lease holder, gone with the lease

    # --- events: EventReader ------------------------------------------------------------------

    async def test_events(self, query: TestEventQuery) -> list[TestEvent]:
        """Test events matching ``query``, by sequence; waits for this process's queued writes
        first, so a reader sees every event written before the call."""
        await self._writer.flush()
        return await self.transactor.read(
            lambda c: ev.read_test_events(c, query), "reading test events"
        )

    async def framework_events(self, query: FrameworkEventQuery) -> list[FrameworkEvent]:
        """Framework events matching ``query``, by sequence (after the queued framework
        events)."""
        await self._framework_flushed()
        return await self._read(
            lambda c: ev.read_framework_events(c, query), "reading framework events"
        )

    async def status_rows(
        self,
        job_id: int,
        run_id: int,
        test_names: Sequence[str],
        unlabelled: Sequence[str] | None = None,
    ) -> list[ev.StatusRow]:
        """The events a run status is built from, lean (see :func:`events.read_status_rows`);
        after the queued writes, as :meth:`test_events`."""
        await self._writer.flush()
        return await self.transactor.read(
            lambda c: ev.read_status_rows(c, job_id, run_id, test_names, unlabelled),
            "reading a run's events",
        )

    async def run_rows_after(
        self, job_id: int, run_id: int, after: int, limit: int = 20_000
    ) -> list[tuple[Any, ...]]:
        """The run's committed test event rows after sequence ``after``, in order (all of them
        for ``after`` 0, else at most ``limit``: see :func:`events.run_rows_after`). It does
        not wait for this process's queued writes (a busy job queues thousands): what they add
        is read the next time."""
        return await self._read(
            lambda c: ev.run_rows_after(c, job_id, run_id, after, limit),
            "reading a run's new events",
        )

    async def has_test_events(self, job_id: int, run_id: int) -> bool:
        """Whether run ``run_id`` of ``job_id`` has any committed test event (the job runner
        asks before a run starts: none of its events can be queued yet)."""
        return await self.transactor.read(
            lambda c: ev.has_test_events(c, job_id, run_id), "reading test events"
        )

    async def event_sequences(
        self,
        job_id: int,
        run_id: int,
        test_name: str,
        attempt: int,
        labels: Sequence[str],
        except_names: Collection[str],
    ) -> list[tuple[str, int]]:
        """(step label, sequence) of the run's events of one test attempt with those labels and
        none of those names, by label then sequence (after the queued writes)."""
        await self._writer.flush()
        return await self.transactor.read(
            lambda c: ev.event_sequences(
                c, job_id, run_id, test_name, attempt, labels, except_names
            ),
            "reading test events",
        )

    # --- step checkpoints (contest.checkpoint) -------------------------------------------------

    async def store_checkpoint(self, job_id: int, data: bytes) -> None:
        """Replace the job's step checkpoint, in a transaction fenced by the job's lease as its
        events are (:meth:`check_lease`): a server that lost the lease gets
        :class:`LeaseLost`, and the new owner's checkpoint stays. Too big a checkpoint (past
        the report size limit) is refused with ``ParameterTooLong`` before anything is sent."""
        text_ = data.decode()
        check_size("Checkpoint", text_, self.limits.report_data)

        async def work(conn: AsyncConnection) -> None:
            await self.check_lease(conn, job_id)
            await ck.save(conn, job_id, text_)

        await self.transactor.write(work, "storing a step checkpoint")

    async def job_checkpoint(self, job_id: int) -> bytes | None:
        """The job's stored step checkpoint (None: it has none)."""
        got = await self.transactor.read(lambda c: ck.load(c, job_id), "reading a step checkpoint")
        return None if got is None else got.encode()

    # --- finished runs' statuses --------------------------------------------------------------

    async def store_run_status(self, job_id: int, run_id: int, data: bytes) -> None:
        """Save the status of finished run ``run_id`` (opaque bytes; replaces a saved one)."""
        chunks = rs.split(data, self._status_chunk)
        await self.transactor.write(
            lambda c: rs.save(c, job_id, run_id, chunks), "storing a run status"
        )

    async def stored_run_statuses(self, job_id: int) -> dict[int, bytes]:
        """Run ID -> saved status bytes, for the job's runs that have one."""
        return await self._read(lambda c: rs.load(c, job_id), "reading saved run statuses")

    # --- jobs ---------------------------------------------------------------------------------

    async def store_job(self, request: JobRequest) -> int:
        """Store a new job request with its tags; returns the new job ID (from 1, ascending)."""
        jb.check_request(request, self.limits)
        return await self.transactor.write(
            lambda c: jb.insert_job(c, request), "storing a job request"
        )

    async def get_job(self, job_id: int) -> JobRequest | None:
        """The stored request (with tags, state and state time), or None for an unknown ID."""
        return await self._read(lambda c: jb.fetch_job(c, job_id), "reading a job")

    async def list_jobs(self, **query: Unpack[JobQuery]) -> list[int]:
        """The IDs of the jobs ``query`` asks for (see :class:`JobQuery`)."""
        await self._framework_flushed()  # states follow framework events
        return await self._read(lambda c: jb.select_job_ids(c, **query), "listing jobs")

    async def job_state_counts(self) -> dict[str, int]:
        """Job state name -> how many jobs of the database are in it (``/metrics``)."""
        await self._writer.flush()  # states follow framework events
        return await self.transactor.read(jb.count_by_state, "counting jobs by state")

    async def job_state(self, job_id: int) -> JobState | None:
        """The job's last state (None for an unknown job)."""
        job = await self.get_job(job_id)
        return None if job is None else job.state

    # --- reports ------------------------------------------------------------------------------

    async def store_report(self, report: Report) -> None:
        """Store a run report (``run_id`` > 0) or a final report (``run_id`` 0)."""
        row = rp.report_row(report, self.limits)
        await self.transactor.write(lambda c: rp.insert_report(c, row), "storing a report")

    async def job_report(self, job_id: int) -> JobReport:
        """Every report of the job (empty lists for an unknown job)."""
        return await self._read(lambda c: rp.fetch_job_report(c, job_id), "reading reports")

    # --- for other storage users (the DB target locker) ---------------------------------------

    async def run_write(self, work: Callable[[AsyncConnection], Awaitable[T]], what: str) -> T:
        """Run ``work`` in one write transaction, exactly once, with the retry and (on SQLite)
        the process-wide write lock every storage write uses. ``work`` must not commit."""
        return await self.transactor.write(work, what)

    async def _read(self, work: Callable[[AsyncConnection], Awaitable[T]], what: str) -> T:
        """A read of the API's (a job, a list, a status's reads): in a worker thread with its
        own connection when the storage has a :class:`ThreadReader` (a server's: one turn of
        the job's loop for the answer instead of five to seven, docs/performance.md), else on
        the AsyncEngine. Retried on transient errors alike (the same classifier: the sync
        drivers' errors are the async ones')."""
        reader = self._reader
        if reader is None:
            return await self.transactor.read(work, what)

        async def op() -> T:
            if self._closed:  # stopping: the reader's threads take no more work
                async with self.engine.connect() as conn:
                    return await work(conn)
            return await reader.read(work)

        return await self.transactor.retrying(op, what)

    async def run_read(self, work: Callable[[AsyncConnection], Awaitable[T]], what: str) -> T:
        """Run read-only ``work`` with the storage's retry."""
        return await self.transactor.read(work, what)

    async def run_read_whole(self, work: Callable[[AsyncConnection], Awaitable[T]], what: str) -> T:
        """:meth:`run_read` for ``work`` that awaits nothing but ``conn.execute``: in a worker
        thread, in one turn of the loop, when the storage has a reader (a server's), as the
        API's reads; for reads of many statements (the web view's page of a target)."""
        return await self._read(work, what)

    # --- admin --------------------------------------------------------------------------------

    async def version(self) -> int:
        """The schema version: the number of the newest applied migration (0: none)."""
        rev = await self.transactor.retrying(
            lambda: migrate.current_revision(self.engine), "reading the schema version"
        )
        return int(rev) if rev else 0

    async def reset(self) -> None:
        """Delete all jobs, events and reports (for tests; target locks are kept)."""
        await self._writer.flush()

        async def wipe(conn: AsyncConnection) -> None:
            for table in _RESET_TABLES:
                await conn.execute(delete(table))

        await self.transactor.write(wipe, "resetting the storage")

    async def ping(self) -> None:
        """Check the database answers (with the retry)."""

        async def one(conn: AsyncConnection) -> Any:
            return (await conn.execute(text("SELECT 1"))).scalar()

        await self.transactor.read(one, "ping")

    async def close(self) -> None:
        """Write what is queued, stop the writer and close every connection."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._writer.close()
        finally:
            if self._reader is not None:
                self._reader.close()
            await self.engine.dispose()


def _stale_of(rows: list[tuple[Any, ...]], fences: dict[int, tuple[str, int]]) -> dict[int, str]:
    """Of the fenced jobs (job -> (owner, epoch) this server holds), the ones whose lease rows
    (job_id, owner, epoch, unexpired) say this server no longer holds it, and why."""
    found = {int(r[0]): r for r in rows}
    stale: dict[int, str] = {}
    for job_id, (owner, epoch) in fences.items():
        row = found.get(job_id)
        if row is None:
            stale[job_id] = "the job has no lease (it ended, or was failed, elsewhere)"
        elif row[1] != owner or int(row[2]) != epoch:
            stale[job_id] = f"{row[1]} holds it now (epoch {int(row[2])})"
        elif not row[3]:
            stale[job_id] = "it lapsed (no heartbeat renewed it in time)"
    return stale


def _lease_sql(dialect: Any) -> str:
    """The head of the fencing read: ``... WHERE job_id IN (`` (the IDs and the lock follow)."""
    # imported here: the fleet module imports this package
    from contest.storage.fleet import db_now

    q = dialect.identifier_preparer.quote
    now = str(db_now().compile(dialect=dialect))
    return (
        f"SELECT {q('job_id')}, {q('owner')}, {q('epoch')}, "
        f"CASE WHEN {q('expires_at')} >= {now} THEN 1 ELSE 0 END "
        f"FROM {q(schema.job_leases.name)} WHERE {q('job_id')} IN ("
    )


async def open_storage(
    url: str | URL,
    *,
    retry_for: float = 30.0,
    limits: Limits | None = None,
    max_batch: int = 10_000,
    pool_size: int = 10,
    migrate_schema: bool = True,
    idle_transaction_timeout: float | None = None,
    session_name: str | None = None,
    read_threads: int = 0,
) -> Storage:
    """Connect to ``url``, create or migrate the tables (unless ``migrate_schema`` is False)
    and return the :class:`Storage`.

    On MySQL/MariaDB the size limits are lowered, if need be, to fit the server's
    ``max_allowed_packet``. ``idle_transaction_timeout``: see
    :func:`contest.storage.engine.create_engine` (a server sets it, as its writes are fenced),
    and ``session_name`` (a server's instance ID, which names its PostgreSQL sessions).
    ``read_threads``: the API's reads run whole in that many worker threads, on connections
    of their own (:mod:`contest.storage.reader`; a server's), rather than on the AsyncEngine.
    """
    engine = create_engine(
        url,
        pool_size=pool_size,
        idle_transaction_timeout=idle_transaction_timeout,
        session_name=session_name,
    )
    try:
        policy = RetryPolicy(retry_for=retry_for)
        lim = limits or Limits()
        probe = Transactor(engine, policy)
        if migrate_schema:
            await probe.retrying(lambda: migrate.upgrade(engine), "migrating the schema")
        if backend_name(engine.url) == "mysql":

            async def _packet(conn: AsyncConnection) -> int:
                return int((await conn.execute(text("SELECT @@max_allowed_packet"))).scalar_one())

            lim = lim.for_packet(await probe.read(_packet, "reading max_allowed_packet"))
        reader = None
        if read_threads > 0:
            reader = ThreadReader(
                create_sync_engine(
                    url,
                    pool_size=read_threads,
                    idle_transaction_timeout=idle_transaction_timeout,
                    session_name=session_name,
                ),
                read_threads,
            )
            reader.warm()
        return Storage(engine, retry=policy, limits=lim, max_batch=max_batch, reader=reader)
    except BaseException:
        await engine.dispose()
        raise
