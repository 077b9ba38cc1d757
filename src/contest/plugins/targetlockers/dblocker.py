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
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
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
    TargetLocker,
    TargetRef,
    check_request,
)
from contest.storage.engine import create_engine
from contest.storage.schema import target_locks
from contest.storage.urls import redact, to_async_url

NAME = "DBLocker"

#: how many times a call is tried when it races another writer
DEFAULT_MAX_ATTEMPTS = 10
#: targets per statement: far below SQLite's bound-parameter limit, and big enough that a job of a
#: few hundred targets takes a handful of round trips
DEFAULT_BATCH_SIZE = 200

log = logging.getLogger("contest.targetlockers.dblocker")

T = TypeVar("T")

# PostgreSQL SQLSTATEs and MySQL/MariaDB error codes of transient failures worth a retry
_PG_TRANSIENT = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available
_MYSQL_TRANSIENT = {1213, 1205}  # deadlock, lock wait timeout


class _Raced(Exception):
    """A write affected fewer rows than planned: another transaction got there first."""


@dataclass(slots=True)
class _Row:
    job_id: int
    expires_at: float


def _batches(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _is_transient(exc: DBAPIError) -> bool:
    """Deadlock, serialization failure, lock timeout, or SQLite's busy database."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _PG_TRANSIENT:
        return True
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_TRANSIENT:
        return True
    if isinstance(orig, sqlite3.OperationalError) or "sqlite" in type(orig).__module__:
        text = str(orig).lower()
        return "locked" in text or "busy" in text
    return False


class DBLocker(TargetLocker):
    """Leases in ``target_locks``; see the module docstring for time and concurrency."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        owns_engine: bool = False,
        clock: Clock | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        table: Table = target_locks,
        create_table: bool = False,
    ) -> None:
        if max_attempts < 1 or batch_size < 1:
            raise ValueError("max_attempts and batch_size must be >= 1")
        self._engine = engine
        self._owns_engine = owns_engine
        self._clock: Clock = clock or time.time
        self._max_attempts = max_attempts
        self._batch = batch_size
        self._t = table
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

    async def _transaction(
        self, operation: str, job_id: int, body: Callable[[AsyncConnection, float], Awaitable[T]]
    ) -> T:
        """Run ``body(conn, now)`` in a transaction, retrying on races and transient errors."""
        if not self._table_ready:
            await self._ensure_table()
        if self._serial is not None:
            async with self._serial:
                return await self._attempts(operation, job_id, body)
        return await self._attempts(operation, job_id, body)

    async def _attempts(
        self, operation: str, job_id: int, body: Callable[[AsyncConnection, float], Awaitable[T]]
    ) -> T:
        why = ""
        for attempt in range(1, self._max_attempts + 1):
            try:
                async with self._engine.connect() as conn:
                    if self._dialect in ("mysql", "mariadb"):
                        await conn.execution_options(isolation_level="READ COMMITTED")
                    async with conn.begin():
                        if self._dialect == "sqlite":
                            # a write that changes nothing takes SQLite's write lock now, so
                            # that what we read cannot change before we write
                            await conn.execute(delete(self._t).where(false()))
                        return await body(conn, self._clock())
            except _Raced:
                why = "concurrent changes to the same targets"
            except DBAPIError as e:
                if not _is_transient(e):
                    raise LockerUnavailable(f"{operation} by job {job_id}: {e}") from e
                why = f"{type(e.orig).__name__}: {e.orig}"
            except SQLAlchemyError as e:
                raise LockerUnavailable(f"{operation} by job {job_id}: {e}") from e
            log.debug(
                "%s by job %d: attempt %d raced (%s), retrying", operation, job_id, attempt, why
            )
            await asyncio.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))
        raise LockerUnavailable(
            f"{operation} by job {job_id}: gave up after {self._max_attempts} attempts ({why})"
        )

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
        if self._dialect == "postgresql":
            return pg_dialect.insert(self._t).on_conflict_do_nothing(index_elements=["target_id"])
        if self._dialect == "sqlite":
            return sqlite_dialect.insert(self._t).on_conflict_do_nothing(
                index_elements=["target_id"]
            )
        if self._dialect in ("mysql", "mariadb"):
            return mysql_dialect.insert(self._t).prefix_with("IGNORE")
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

        async def body(conn: AsyncConnection, now: float) -> list[str]:
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

        async def body(conn: AsyncConnection, now: float) -> None:
            rows = await self._read(conn, ids)
            conflicts = {t: rows[t].job_id for t in ids if t in rows and rows[t].job_id != job_id}
            missing = [t for t in ids if t not in rows]
            if conflicts or missing:
                raise LockConflict("unlock", job_id, conflicts, missing)
            for chunk in _batches(sorted(ids), self._batch):
                stmt = delete(self._t).where(c.target_id.in_(chunk), c.job_id == job_id)
                await self._expect(conn, stmt, len(chunk))

        await self._transaction("unlock", job_id, body)
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

    async def close(self) -> None:
        """Stop accepting calls; dispose of the engine if the locker created it."""
        if self._closed:
            return
        self._closed = True
        if self._owns_engine:
            await self._engine.dispose()

    # --- beyond the interface ------------------------------------------------------------------

    async def create_table(self) -> None:
        """Create ``target_locks`` if it is missing (the storage's migrations normally do)."""
        try:
            async with self._engine.begin() as conn:
                await conn.run_sync(lambda sc: self._t.create(sc, checkfirst=True))
        except SQLAlchemyError as e:
            raise LockerUnavailable(f"cannot create table {self._t.name}: {e}") from e

    async def _ensure_table(self) -> None:
        async with self._table_lock:
            if not self._table_ready:
                await self.create_table()
                self._table_ready = True

    async def reset_all_locks(self) -> None:
        """Delete every lock of every job: for tests and for an operator's emergency only."""
        log.warning("deleting all target locks")
        async with self._engine.begin() as conn:
            await conn.execute(delete(self._t))


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
    * ``max_attempts``, ``batch_size``: retry and statement-size tuning.
    """
    allowed = {"engine", "url", "clock", "max_attempts", "batch_size", "create_table"}
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
        batch_size=settings.get("batch_size", DEFAULT_BATCH_SIZE),
        create_table=bool(settings.get("create_table", False)),
    )


def load() -> tuple[str, LockerFactory]:
    """Entry point of the ``contest.targetlockers`` group."""
    return NAME, new
