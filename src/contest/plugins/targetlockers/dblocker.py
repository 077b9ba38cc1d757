"""The database target locker (``DBLocker``): leases as rows of ``target_locks``.

Servers that share a database share their locks, so a target is used by one job at a time across
all of them, and a crashed server's leases simply run out. The table (one row per locked target:
``target_id`` primary key, ``job_id``, ``expires_at``/``created_at`` in unix seconds) is
:data:`contest.storage.schema.target_locks`.

**Time.** Leases are computed with the *locker's* clock (``time.time`` unless a clock is
injected), read once per attempt, and stored as unix seconds; expiry is decided by comparing
that clock with the stored ``expires_at``. Several servers sharing a database therefore need
synchronised clocks (NTP), as with ConTest. The database clock is not used: it would make leases
untestable without sleeping, and its resolution and time zone differ among the three databases.

**Concurrency.** Each call is one transaction that reads the rows, decides, then writes with
statements that re-check what was read (compare-and-set), and counts the rows they affected:

* a free target is claimed with an insert-if-absent (``ON CONFLICT DO NOTHING`` on PostgreSQL
  and SQLite, ``INSERT IGNORE`` on MySQL/MariaDB): the primary key lets exactly one of several
  racing transactions have it;
* the job's own rows are extended with ``UPDATE ... WHERE job_id = <job>``, another job's expired
  rows are taken over with ``UPDATE ... WHERE expires_at < <now>``, and unlock deletes with
  ``WHERE job_id = <job>``, so a row that changed since it was read is left alone.

If any statement affects fewer rows than planned, something raced us: the transaction is rolled
back (nothing changed, which keeps every call all-or-nothing) and the whole call is retried on
fresh data, a few times with a short random back-off. Deadlocks and serialization failures
are retried the same way. On PostgreSQL and MariaDB the read takes row locks
(``SELECT ... FOR UPDATE``, in target order) so that races on existing rows wait instead of
retrying; MariaDB runs these transactions at ``READ COMMITTED`` so that reading absent rows
takes no gap locks (which would turn racing inserts into deadlocks). On SQLite each
transaction starts with a write that changes nothing, which takes the database's write lock
before anything is read; since SQLite runs one writer at a time anyway, one locker also runs its
calls one at a time rather than have them poll for that lock.

**The line** (:meth:`DBLocker.lock_queued`, :data:`contest.storage.schema.target_waits`): a job
whose targets are busy gets a row per target it asks for, with its *ticket* (one per job, the
order of its first call) and the time its place lapses (``ttl`` after its latest call). It is
granted only the targets no other job holds with a running lease and for which no live row of
another job has a lower ticket: first come, first served across jobs and servers (see
:mod:`contest.plugins.targetlockers._line` for why one ticket per job, and why all-or-none
cannot deadlock). A job *joining* the line (its first call, or its place lapsed) first locks
the one row of ``target_wait_tickets`` (``SELECT ... FOR UPDATE``; SQLite runs one writer anyway)
and takes its ticket from it: joiners are numbered in commit order, so none is granted past an
earlier joiner that has not committed yet. A job already in line skips that lock, so the
periodic calls of waiting jobs do not queue behind each other: whoever joins meanwhile gets a
higher ticket, hence behind it, and two grants of one target collide on its lease, which is
compare-and-set as in ``lock`` (the loser retries on fresh data). Then the call reads the
targets' leases (``FOR UPDATE``, target order, as ``lock`` does) and the line, and in the same
transaction either takes the leases and deletes the job's rows in the line, or renews (or
writes) them. Locks are always taken in that order (ticket row, then leases in target order,
then the job's own rows in the line), so the line adds no deadlock between lockers; ``lock``,
``try_lock``, ``refresh_locks`` and ``unlock`` do not look at the line (ConTest's behaviour, for
callers that never wait). Lapsed rows are ignored when read, and deleted now and then.

**Losing the connection.** Every call is retried when the database connection fails
(PostgreSQL SQLSTATE class 08, 57P01..57P03; MySQL 2006, 2013 and the like: the storage's own
classifier, :func:`contest.storage.retry.is_transient`) until ``retry_for`` seconds have passed
since the first failure; contention (deadlocks, serialization failures) is retried up to
``max_attempts`` times. A transaction rolled back by the lost connection changed nothing, so it
is simply redone. One whose ``COMMIT`` got no answer may have committed: ``lock``, ``try_lock``,
``refresh_locks`` and ``lock_queued`` are idempotent (the job's own rows are re-locked), and an
``unlock`` redone after such a commit releases whatever of the targets is still the job's.

**Waking waiters**: :meth:`DBLocker.wait_for_release` returns as soon as this locker (this
process) unlocks, hands a place in line back or sees one given up; waiters on other servers
poll, with the timeout they pass.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Table, delete, false, select, update
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import SingletonThreadPool, StaticPool
from sqlalchemy.sql.dml import Insert

from contest.locking import (
    Clock,
    InvalidLockRequest,
    LockConflict,
    LockerClosed,
    LockerFactory,
    LockerUnavailable,
    QueuedLock,
    TargetLocker,
    TargetRef,
    check_request,
)
from contest.plugins.targetlockers._line import Decision, check_queued, decide
from contest.plugins.targetlockers._wakeup import ReleaseSignal
from contest.storage.engine import create_engine
from contest.storage.retry import is_contention, is_transient
from contest.storage.schema import target_locks, target_wait_tickets, target_waits
from contest.storage.urls import redact, to_async_url

NAME = "DBLocker"

#: how many times a call is tried when it races another writer
DEFAULT_MAX_ATTEMPTS = 10
#: seconds a call keeps retrying while the database connection fails
DEFAULT_RETRY_FOR = 10.0
#: seconds between two clean-ups of lapsed places in line (by one locker)
PURGE_EVERY = 10.0
#: targets per statement: far below SQLite's bound-parameter limit, and big enough that a job of a
#: few hundred targets takes a handful of round trips
DEFAULT_BATCH_SIZE = 200

log = logging.getLogger("contest.targetlockers.dblocker")

T = TypeVar("T")


class _Raced(Exception):
    """A write affected fewer rows than planned: another transaction got there first."""


@dataclass(slots=True)
class _Row:
    job_id: int
    expires_at: float


@dataclass(slots=True)
class _Try:
    """What a transaction body knows of the attempts before it."""

    #: an earlier attempt failed while committing: it may have committed
    unsure_commit: bool = False


Body = Callable[[AsyncConnection, float, _Try], Awaitable[T]]


def _batches(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


class DBLocker(TargetLocker):
    """Leases in ``target_locks``; see the module docstring for time and concurrency."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        owns_engine: bool = False,
        clock: Clock | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry_for: float = DEFAULT_RETRY_FOR,
        batch_size: int = DEFAULT_BATCH_SIZE,
        table: Table = target_locks,
        waits_table: Table = target_waits,
        tickets_table: Table = target_wait_tickets,
        create_table: bool = False,
    ) -> None:
        if max_attempts < 1 or batch_size < 1:
            raise ValueError("max_attempts and batch_size must be >= 1")
        if not retry_for >= 0:
            raise ValueError("retry_for must be >= 0")
        self._engine = engine
        self._owns_engine = owns_engine
        self._clock: Clock = clock or time.time
        self._max_attempts = max_attempts
        self._retry_for = float(retry_for)
        self._batch = batch_size
        self._t = table
        self._w = waits_table
        self._tickets = tickets_table
        self._dialect = engine.dialect.name  # "postgresql", "mysql", "mariadb", "sqlite"
        self._max_id_len: int | None = getattr(table.c.target_id.type, "length", None)
        # A pool with one shared connection would interleave concurrent transactions on it, and
        # SQLite runs one writer at a time anyway (a waiting writer polls, which is slow): our
        # calls go one at a time there. Other pools give each call its own connection.
        shared = isinstance(engine.sync_engine.pool, StaticPool | SingletonThreadPool)
        self._serial = asyncio.Lock() if shared or self._dialect == "sqlite" else None
        self._closed = False
        self._table_ready = not create_table
        self._table_lock = asyncio.Lock()
        self._release_signal = ReleaseSignal()
        self._last_purge = 0.0
        #: attempts repeated after a lost connection (tests and logs read it)
        self.reconnects = 0
        self._lease_check: Callable[[AsyncConnection, int], Awaitable[None]] | None = None

    def fence_with(self, check: Callable[[AsyncConnection, int], Awaitable[None]]) -> None:
        """Fence every write of a job by its lease: ``check(conn, job_id)`` runs first in each
        transaction and raises (``contest.storage.errors.LeaseLost``) when the server's lease
        on the job is stale, so a server that lost a job can neither refresh nor release the
        locks its new owner holds (``Storage.check_lease``; set by the server when the locker
        is on the storage's engine)."""
        self._lease_check = check

    # --- plumbing ------------------------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def _check(self, operation: str, ids: list[str]) -> None:
        if self._closed:
            raise LockerClosed("the DBLocker target locker is closed")
        if self._max_id_len is not None:
            too_long = [tid for tid in ids if len(tid) > self._max_id_len]
            if too_long:
                raise InvalidLockRequest(
                    f"invalid {operation} request: target IDs longer than {self._max_id_len} "
                    f"characters: {too_long}"
                )

    async def _transaction(self, operation: str, job_id: int, body: Body[T]) -> T:
        """Run ``body(conn, now, try)`` in a transaction, retrying on races and transient
        errors."""
        if not self._table_ready:
            await self._ensure_table()
        if self._serial is not None:
            async with self._serial:
                return await self._attempts(operation, job_id, body)
        return await self._attempts(operation, job_id, body)

    async def _attempts(self, operation: str, job_id: int, body: Body[T]) -> T:
        why = ""
        races = 0
        outages = 0
        down_since: float | None = None
        state = _Try()
        while True:
            committing = False
            try:
                async with self._engine.connect() as conn:
                    if self._dialect in ("mysql", "mariadb"):
                        await conn.execution_options(isolation_level="READ COMMITTED")
                    async with conn.begin():
                        if self._dialect == "sqlite":
                            # a write that changes nothing takes SQLite's write lock now, so
                            # that what we read cannot change before we write
                            await conn.execute(delete(self._t).where(false()))
                        if self._lease_check is not None:
                            await self._lease_check(conn, job_id)
                        result = await body(conn, self._clock(), state)
                        committing = True
                return result
            except _Raced:
                races += 1
                why = "concurrent changes to the same targets"
            except LockConflict:
                raise
            except Exception as e:
                if not is_transient(e):
                    if isinstance(e, SQLAlchemyError):
                        raise LockerUnavailable(f"{operation} by job {job_id}: {e}") from e
                    raise
                orig = e.orig if isinstance(e, DBAPIError) else e
                why = f"{type(orig).__name__}: {orig}"
                state.unsure_commit = state.unsure_commit or committing
                if is_contention(e):
                    races += 1
                else:
                    # the connection failed: redo on a new one, for up to retry_for seconds
                    now = time.monotonic()
                    down_since = now if down_since is None else down_since
                    if now - down_since >= self._retry_for:
                        raise LockerUnavailable(
                            f"{operation} by job {job_id}: the database connection kept "
                            f"failing for {now - down_since:.1f} s ({why})"
                        ) from e
                    outages += 1
                    self.reconnects += 1
                    log.warning(
                        "%s by job %d: lost the database connection (%s), retrying",
                        operation,
                        job_id,
                        why,
                    )
                    delay = min(0.05 * 2 ** (outages - 1), 1.0, self._retry_for)
                    await asyncio.sleep(random.uniform(delay / 2, delay))
                    continue
            if races >= self._max_attempts:
                raise LockerUnavailable(
                    f"{operation} by job {job_id}: gave up after {races} attempts ({why})"
                )
            log.debug(
                "%s by job %d: attempt %d raced (%s), retrying", operation, job_id, races, why
            )
            await asyncio.sleep(random.uniform(0, min(0.1, 0.002 * 2**races)))

    async def _read(self, conn: AsyncConnection, ids: list[str]) -> dict[str, _Row]:
        """Current rows of the targets; locked for update where the database can."""
        c = self._t.c
        rows: dict[str, _Row] = {}
        for chunk in _batches(sorted(ids), self._batch):
            stmt = (
                select(c.target_id, c.job_id, c.expires_at)
                .where(c.target_id.in_(chunk))
                .order_by(c.target_id)
            )
            if self._dialect != "sqlite":
                stmt = stmt.with_for_update()
            for tid, job, exp in (await conn.execute(stmt)).all():
                rows[tid] = _Row(int(job), float(exp))
        return rows

    def _insert_absent(self) -> Insert:
        return self._insert_ignore(self._t)

    def _insert_ignore(self, table: Table) -> Insert:
        """An insert that skips rows whose primary key exists already."""
        if self._dialect == "postgresql":
            return pg_dialect.insert(table).on_conflict_do_nothing()
        if self._dialect == "sqlite":
            return sqlite_dialect.insert(table).on_conflict_do_nothing()
        if self._dialect in ("mysql", "mariadb"):
            return mysql_dialect.insert(table).prefix_with("IGNORE")
        raise LockerUnavailable(f"DBLocker does not support the {self._dialect} database")

    async def _expect(self, conn: AsyncConnection, stmt: Any, expected: int) -> None:
        """Run a write; a row count other than ``expected`` means another writer raced us."""
        # SQLAlchemy reports INSERT row counts only when asked to preserve them
        result = await conn.execute(stmt.execution_options(preserve_rowcount=True))
        if result.rowcount != expected:
            raise _Raced()

    async def _write(
        self,
        conn: AsyncConnection,
        job_id: int,
        now: float,
        expires_at: float,
        fresh: list[str],
        own: list[str],
        taken: list[str],
    ) -> None:
        """Claim ``fresh`` (absent rows), extend ``own``, take over ``taken`` (expired)."""
        c = self._t.c
        for chunk in _batches(sorted(fresh), self._batch):
            rows = [
                {"target_id": tid, "job_id": job_id, "expires_at": expires_at, "created_at": now}
                for tid in chunk
            ]
            await self._expect(conn, self._insert_absent().values(rows), len(chunk))
        for chunk in _batches(sorted(own), self._batch):
            stmt = (
                update(self._t)
                .where(c.target_id.in_(chunk), c.job_id == job_id)
                .values(expires_at=expires_at)
            )
            await self._expect(conn, stmt, len(chunk))
        for chunk in _batches(sorted(taken), self._batch):
            stmt = (
                update(self._t)
                .where(c.target_id.in_(chunk), c.expires_at < now)
                .values(job_id=job_id, expires_at=expires_at, created_at=now)
            )
            await self._expect(conn, stmt, len(chunk))

    async def _take(
        self,
        operation: str,
        job_id: int,
        duration: float,
        ids: list[str],
        limit: int,
        *,
        require_owned: bool,
        skip_conflicts: bool,
    ) -> list[str]:
        """Shared by lock, try_lock and refresh_locks: plan in input order, then write."""

        async def body(conn: AsyncConnection, now: float, _: _Try) -> list[str]:
            rows = await self._read(conn, ids)
            fresh: list[str] = []
            own: list[str] = []
            taken: list[str] = []
            held: list[str] = []
            conflicts: dict[str, int] = {}
            expired: list[str] = []
            missing: list[str] = []
            for tid in ids:
                if len(held) >= limit:
                    break
                row = rows.get(tid)
                if row is None:
                    if require_owned:
                        missing.append(tid)
                        continue
                    fresh.append(tid)
                elif row.job_id == job_id:
                    own.append(tid)
                elif now > row.expires_at and not require_owned:
                    taken.append(tid)
                else:
                    if not skip_conflicts:
                        conflicts[tid] = row.job_id
                        if now > row.expires_at:
                            expired.append(tid)
                    continue
                held.append(tid)
            if conflicts or missing:
                raise LockConflict(operation, job_id, conflicts, missing, expired)
            await self._write(conn, job_id, now, now + duration, fresh, own, taken)
            return held

        return await self._transaction(operation, job_id, body)

    # --- the Locker interface ------------------------------------------------------------------

    async def lock(self, job_id: int, duration: float, targets: Iterable[TargetRef]) -> None:
        req = check_request("lock", job_id, targets, duration=duration)
        self._check("lock", req.target_ids)
        if req.target_ids:
            await self._take(
                "lock",
                req.job_id,
                duration,
                req.target_ids,
                len(req.target_ids),
                require_owned=False,
                skip_conflicts=False,
            )
        log.debug("job %d locked %d targets for %ss", req.job_id, len(req.target_ids), duration)

    async def try_lock(
        self, job_id: int, duration: float, targets: Iterable[TargetRef], limit: int
    ) -> list[str]:
        req = check_request("try_lock", job_id, targets, duration=duration, limit=limit)
        self._check("try_lock", req.target_ids)
        if not req.target_ids or limit == 0:
            return []
        got = await self._take(
            "try_lock",
            req.job_id,
            duration,
            req.target_ids,
            limit,
            require_owned=False,
            skip_conflicts=True,
        )
        log.debug("job %d try-locked %d/%d targets", req.job_id, len(got), len(req.target_ids))
        return got

    async def unlock(self, job_id: int, targets: Iterable[TargetRef]) -> None:
        req = check_request("unlock", job_id, targets)
        self._check("unlock", req.target_ids)
        if not req.target_ids:
            return
        ids = req.target_ids
        c = self._t.c

        async def body(conn: AsyncConnection, now: float, state: _Try) -> None:
            rows = await self._read(conn, ids)
            conflicts = {t: rows[t].job_id for t in ids if t in rows and rows[t].job_id != job_id}
            missing = [t for t in ids if t not in rows]
            if state.unsure_commit:
                # an earlier attempt may have committed this very unlock (its COMMIT got no
                # answer): what is gone, or already another job's, was released by it
                ids_left = sorted(t for t in ids if t in rows and rows[t].job_id == job_id)
            elif conflicts or missing:
                raise LockConflict("unlock", job_id, conflicts, missing)
            else:
                ids_left = sorted(ids)
            for chunk in _batches(ids_left, self._batch):
                stmt = delete(self._t).where(c.target_id.in_(chunk), c.job_id == job_id)
                await self._expect(conn, stmt, len(chunk))

        await self._transaction("unlock", job_id, body)
        self._release_signal.fire()
        log.debug("job %d unlocked %d targets", job_id, len(ids))

    async def refresh_locks(
        self, job_id: int, duration: float, targets: Iterable[TargetRef]
    ) -> None:
        req = check_request("refresh_locks", job_id, targets, duration=duration)
        self._check("refresh_locks", req.target_ids)
        if req.target_ids:
            await self._take(
                "refresh_locks",
                req.job_id,
                duration,
                req.target_ids,
                len(req.target_ids),
                require_owned=True,
                skip_conflicts=False,
            )
        log.debug("job %d refreshed %d targets for %ss", req.job_id, len(req.target_ids), duration)

    # --- the line -----------------------------------------------------------------------------

    async def _line_lock(self, conn: AsyncConnection) -> int:
        """Lock the ticket row (which runs the line's transactions one at a time) and return
        the last ticket handed out; the row is created if the table was made without it."""
        c = self._tickets.c
        stmt = select(c.last_ticket).where(c.id == 1)
        if self._dialect != "sqlite":
            stmt = stmt.with_for_update()
        last = (await conn.execute(stmt)).scalar()
        if last is None:
            insert_row = self._insert_ignore(self._tickets).values(id=1, last_ticket=0)
            await conn.execute(insert_row)
            last = (await conn.execute(stmt)).scalar()
        return int(last or 0)

    async def _new_ticket(self, conn: AsyncConnection, last: int) -> int:
        c = self._tickets.c
        stmt = update(self._tickets).where(c.id == 1, c.last_ticket == last)
        await self._expect(conn, stmt.values(last_ticket=last + 1), 1)
        return last + 1

    async def _line_ahead(
        self, conn: AsyncConnection, job_id: int, ids: list[str], now: float, mine: int | None
    ) -> dict[str, int]:
        """For each target, the first live waiter of another job ahead of ``mine`` (all of
        them when the job has no ticket yet)."""
        w = self._w.c
        heads: dict[str, tuple[int, int]] = {}
        for chunk in _batches(sorted(ids), self._batch):
            stmt = select(w.target_id, w.job_id, w.ticket).where(
                w.target_id.in_(chunk), w.job_id != job_id, w.expires_at >= now
            )
            if mine is not None:
                stmt = stmt.where(w.ticket < mine)
            for tid, other, ticket in (await conn.execute(stmt)).all():
                head = heads.get(tid)
                if head is None or int(ticket) < head[0]:
                    heads[tid] = (int(ticket), int(other))
        return {tid: other for tid, (_, other) in heads.items()}

    async def _write_place(
        self,
        conn: AsyncConnection,
        job_id: int,
        ids: list[str],
        ticket: int,
        until: float,
        had: dict[str, float],
    ) -> bool:
        """Renew (or write) the job's rows in the line; True if some place was given up."""
        w = self._w.c
        if had and set(had) == set(ids):
            stmt = update(self._w).where(w.job_id == job_id).values(expires_at=until)
            await self._expect(conn, stmt, len(ids))
            return False
        if had:
            await conn.execute(delete(self._w).where(w.job_id == job_id))
        for chunk in _batches(sorted(ids), self._batch):
            rows = [
                {"target_id": tid, "job_id": job_id, "ticket": ticket, "expires_at": until}
                for tid in chunk
            ]
            await conn.execute(self._w.insert(), rows)
        return bool(set(had) - set(ids))

    async def lock_queued(
        self,
        job_id: int,
        duration: float,
        targets: Iterable[TargetRef],
        *,
        need: int | None = None,
        limit: int | None = None,
        ttl: float = 30.0,
    ) -> QueuedLock:
        """Lock the targets if the job is first in line for each, else keep its place in
        ``target_waits``; see :mod:`contest.locking` and this module's docstring."""
        req = check_request("lock_queued", job_id, targets, duration=duration, limit=limit)
        ids = req.target_ids
        check_queued("lock_queued", len(ids), need, limit, ttl)
        self._check("lock_queued", ids)
        w = self._w.c

        async def body(conn: AsyncConnection, now: float, _: _Try) -> tuple[Decision, bool]:
            mine_rows = (
                await conn.execute(
                    select(w.target_id, w.ticket, w.expires_at).where(w.job_id == job_id)
                )
            ).all()
            had = {str(tid): float(exp) for tid, _, exp in mine_rows}
            live = [int(ticket) for _, ticket, exp in mine_rows if float(exp) >= now]
            # a place lapses as a whole (all its rows are renewed together)
            mine = min(live) if live and len(live) == len(mine_rows) else None
            # a job joining the line takes the ticket row first (see the module docstring);
            # one already in line does not: whoever commits meanwhile joins behind it
            last = await self._line_lock(conn) if mine is None else 0
            rows = await self._read(conn, ids)
            own = {t for t in ids if t in rows and rows[t].job_id == job_id}
            holders = {
                t: rows[t].job_id
                for t in ids
                if t in rows and rows[t].job_id != job_id and now <= rows[t].expires_at
            }
            ahead = await self._line_ahead(conn, job_id, ids, now, mine)
            decision = decide(ids, own, holders, ahead, need, limit)
            if decision.granted:
                fresh = [t for t in decision.take if t not in rows]
                mine_taken = [t for t in decision.take if t in own]
                taken = [t for t in decision.take if t in rows and t not in own]
                await self._write(conn, job_id, now, now + duration, fresh, mine_taken, taken)
                if had:
                    await conn.execute(delete(self._w).where(w.job_id == job_id))
                return decision, bool(had)
            if mine is None:
                mine = await self._new_ticket(conn, last)
                if had:  # lapsed: start again at the back
                    await conn.execute(delete(self._w).where(w.job_id == job_id))
                    had = {}
            gave_up = await self._write_place(conn, job_id, ids, mine, now + ttl, had)
            return decision, gave_up

        generation = self._release_signal.generation
        decision, released = await self._transaction("lock_queued", req.job_id, body)
        if released:
            self._release_signal.fire()
        # what this task has seen: the line as of its transaction, and its own release
        self._release_signal.mark(generation + (1 if released else 0))
        log.debug(
            "job %d lock_queued %d targets: %s",
            req.job_id,
            len(ids),
            f"granted {len(decision.take)}"
            if decision.granted
            else f"waits on {decision.blockers}",
        )
        await self._purge_lapsed()
        return QueuedLock(decision.granted, decision.take, decision.blockers)

    async def _purge_lapsed(self) -> None:
        """Now and then, delete the places in line nobody renewed (crashed waiters): reads
        ignore them anyway, this only keeps the table small. Its own short transaction, and
        its failure is only logged."""
        now = self._clock()
        if abs(now - self._last_purge) < PURGE_EVERY:
            return
        self._last_purge = now
        try:
            if self._serial is not None:
                async with self._serial:
                    dropped = await self._delete_lapsed(now)
            else:
                dropped = await self._delete_lapsed(now)
            if dropped:
                log.info("dropped %d lapsed places in the target line", dropped)
        except Exception as e:
            log.warning("could not drop lapsed places in the target line: %s", e)

    async def _delete_lapsed(self, now: float) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(self._w).where(self._w.c.expires_at < now))
        return int(result.rowcount or 0)

    async def leave_queue(self, job_id: int) -> None:
        """Give up the job's places in line (idempotent); wakes this locker's waiters."""
        req = check_request("leave_queue", job_id, ())
        self._check("leave_queue", [])
        w = self._w.c

        async def body(conn: AsyncConnection, now: float, _: _Try) -> int:
            result = await conn.execute(delete(self._w).where(w.job_id == req.job_id))
            return int(result.rowcount or 0)

        if await self._transaction("leave_queue", req.job_id, body):
            self._release_signal.fire()
            log.debug("job %d left the line", req.job_id)

    async def wait_for_release(self, timeout: float) -> None:
        """Return at once if this locker saw an unlock or a place given up since this task's
        last ``lock_queued``, as soon as it sees one, or after ``timeout`` seconds (waiters
        on other servers are not woken: they poll)."""
        self._check("wait_for_release", [])
        await self._release_signal.wait(timeout)

    async def close(self) -> None:
        """Stop accepting calls; dispose of the engine if the locker created it."""
        if self._closed:
            return
        self._closed = True
        self._release_signal.fire()
        if self._owns_engine:
            await self._engine.dispose()

    # --- beyond the interface ------------------------------------------------------------------

    async def create_table(self) -> None:
        """Create ``target_locks`` and the line's tables if they are missing (the storage's
        migrations normally do)."""
        for table in (self._t, self._w, self._tickets):
            try:
                async with self._engine.begin() as conn:
                    await conn.run_sync(table.create, checkfirst=True)
            except SQLAlchemyError as e:
                raise LockerUnavailable(f"cannot create table {table.name}: {e}") from e

    async def _ensure_table(self) -> None:
        async with self._table_lock:
            if not self._table_ready:
                await self.create_table()
                self._table_ready = True

    async def reset_all_locks(self) -> None:
        """Delete every lock and place in line of every job: for tests and for an operator's
        emergency only."""
        log.warning("deleting all target locks")
        async with self._engine.begin() as conn:
            await conn.execute(delete(self._t))
            await conn.execute(delete(self._w))
        self._release_signal.fire()


def new(**settings: Any) -> DBLocker:
    """Database target locker: leases in ``target_locks``, shared by the servers using it.

    Settings:

    * ``engine``: an :class:`AsyncEngine` to share (typically the storage's; not disposed on
      close), or ``url``: a storage URL (``sqlite:///PATH``, ``mysql://...``,
      ``postgresql://...``, ConTest's Go MySQL DSN, ...), for which the locker opens and later
      disposes its own engine;
    * ``clock``: seconds since the epoch (default ``time.time``);
    * ``create_table``: create the table on first use if it is missing (default False: the
      server's storage migrations create it);
    * ``max_attempts``, ``batch_size``: retry and statement-size tuning;
    * ``retry_for``: seconds a call keeps retrying while the database connection fails
      (default 10).
    """
    allowed = {"engine", "url", "clock", "max_attempts", "batch_size", "create_table", "retry_for"}
    unknown = set(settings) - allowed
    if unknown:
        raise TypeError(f"{NAME} target locker: unknown settings {sorted(unknown)}")
    engine = settings.get("engine")
    url = settings.get("url")
    if (engine is None) == (url is None):
        raise TypeError(f"{NAME} target locker: give exactly one of 'engine' and 'url'")
    owns = False
    if engine is None:
        if not isinstance(url, str | URL):
            raise TypeError(f"{NAME} target locker: 'url' must be a str or a SQLAlchemy URL")
        async_url = to_async_url(url)
        engine = create_engine(async_url)  # the storage's settings per database
        owns = True
        log.info("DBLocker on %s", redact(async_url))
    if not isinstance(engine, AsyncEngine):
        raise TypeError(f"{NAME} target locker: 'engine' must be an AsyncEngine")
    return DBLocker(
        engine,
        owns_engine=owns,
        clock=settings.get("clock"),
        max_attempts=settings.get("max_attempts", DEFAULT_MAX_ATTEMPTS),
        retry_for=settings.get("retry_for", DEFAULT_RETRY_FOR),
        batch_size=settings.get("batch_size", DEFAULT_BATCH_SIZE),
        create_table=bool(settings.get("create_table", False)),
    )


def load() -> tuple[str, LockerFactory]:
    """Entry point of the ``contest.targetlockers`` group."""
    return NAME, new
