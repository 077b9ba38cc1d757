"""Surviving a database that goes away: which errors to retry, for how long, and how to retry
a write without doing it twice.

Every storage operation runs through :class:`Transactor`. Reads are simply repeated. Writes are
repeated too, but a write may have committed even though the connection dropped before the
server's answer arrived; so every write transaction also inserts a random token into
``commit_markers``, and after a failure the retry first looks for that token: found means "it
committed, do not do it again".

Retries are bounded by :attr:`RetryPolicy.retry_for` measured from the start of the outage
(the first failure not followed by a success), not from each operation: once the database
has been away longer than that, every operation fails at its first error, with a clear
:class:`StorageUnavailable`, instead of each one waiting the full budget again.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contest.storage import schema
from contest.storage.bulk import sqlite_execute, sqlite_thread
from contest.storage.errors import StorageUnavailable, database_message

log = logging.getLogger(__name__)
T = TypeVar("T")

#: a write's whole work on SQLite's own ``sqlite3`` connection, in the driver's thread, and
#: what turns its result into the write's result on the event loop (see :meth:`Transactor.write`)
InThreadWork = tuple[Callable[[Any], Any], Callable[[Any], T]]

# MySQL/MariaDB error numbers worth a retry: 0 (the drivers' "not connected"), connection
# refused/lost/killed, server shutting down, too many connections, lock wait timeout, deadlock
_MYSQL_TRANSIENT = {0, 1040, 1053, 1205, 1213, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 4031}
# PostgreSQL SQLSTATEs worth a retry (class 08, connection exceptions, is checked apart)
_PG_TRANSIENT = {"40001", "40P01", "53300", "55P03", "57P01", "57P02", "57P03"}
# Of those, the ones about transactions getting in each other's way rather than about the
# connection: serialization failure, deadlock, lock not available; MySQL's lock wait timeout
# and deadlock. Retried at once on fresh data, and counted apart from outages (is_contention).
_PG_CONTENTION = {"40001", "40P01", "55P03"}
_MYSQL_CONTENTION = {1205, 1213}
_SQLITE_MARK = f'INSERT INTO "{schema.commit_markers.name}" ("token", "committed_at") VALUES (?, ?)'
# A connection PostgreSQL refuses gives no SQLSTATE through libpq, only the server's message:
# these say the refusal is for good (a wrong password or role, an unknown database, no right
# to connect), and retrying for the whole budget would only hide it (a wrong role used to be
# retried for 30 s with a warning each time). The server's other refusals (starting up, too
# many clients, shutting down) stay retried.
_PG_PERMANENT_CONNECT = (
    "password authentication failed",
    "authentication failed for user",
    "no password supplied",
    "does not exist",  # role "x" / database "x" does not exist
    "no pg_hba.conf entry",
    "permission denied",
    "is not permitted to log in",
    "invalid connection option",
    "invalid dsn",
)


def is_transient(error: BaseException) -> bool:
    """True if ``error`` means "the database is (perhaps briefly) unreachable or busy".

    Handles SQLAlchemy's wrapped errors and the drivers' own (the event writer's bulk paths
    talk to the driver directly).
    """
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if not isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
            return False
        return _driver_error_transient(error.orig)
    if _is_driver_error(error):
        names = {c.__name__ for c in type(error).__mro__}
        return bool(names & {"OperationalError", "InterfaceError"}) and _driver_error_transient(
            error
        )
    return isinstance(error, ConnectionError | TimeoutError | OSError)


_DRIVER_MODULES = {"pymysql", "aiomysql", "psycopg", "sqlite3", "aiosqlite"}


def _is_driver_error(error: BaseException) -> bool:
    return type(error).__module__.split(".")[0] in _DRIVER_MODULES


def is_contention(error: BaseException) -> bool:
    """True if ``error`` is transient because of other transactions (a deadlock, a
    serialization failure, a lock wait that timed out, SQLite's busy database) rather than
    because the database is unreachable: the work can be redone at once on fresh data, and a
    retry budget for outages should not count it. Implies :func:`is_transient`."""
    if not is_transient(error):
        return False
    orig = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return False
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in _MYSQL_CONTENTION
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _PG_CONTENTION
    text = str(orig).lower()  # SQLite says so only in words
    return "database is locked" in text or "busy" in text


def _driver_error_transient(orig: BaseException | None) -> bool:
    """For a driver's OperationalError/InterfaceError: is it about the connection or a lock?"""
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):  # PyMySQL/aiomysql: (errno, message)
        return args[0] in _MYSQL_TRANSIENT
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None or type(orig).__module__.startswith("psycopg"):
        if sqlstate is None:
            text = str(orig).lower()
            return not any(p in text for p in _PG_PERMANENT_CONNECT)
        return sqlstate.startswith("08") or sqlstate in _PG_TRANSIENT
    text = str(orig).lower()
    if "locked" in text or "busy" in text:  # SQLite
        return True
    # aiomysql raises InterfaceError(0, '') / "Lost connection" texts without a number
    return "lost connection" in text or ("connection" in text and "closed" in text)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to keep trying, and how fast."""

    retry_for: float = 30.0  # seconds from the start of an outage
    first_delay: float = 0.05
    max_delay: float = 1.0


WorkFn = Callable[[AsyncConnection], Awaitable[T]]


class WriteState:
    """One write's identity across calls of :meth:`Transactor.write`: its commit token, and
    whether an attempt reached COMMIT without an answer. A caller that calls again after
    :class:`StorageUnavailable` (the event writer holding a batch through an outage) passes
    the same one, so a batch that did commit before the connection dropped is not written
    twice."""

    __slots__ = ("after", "reached_commit", "result", "token")

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self.reached_commit = False
        self.result: Any = None  # what the attempt that reached COMMIT returned
        self.after: Callable[[Any], Any] | None = None  # makes it the write's result (in_thread)


class Transactor:
    """Runs units of work in transactions, retrying them across connection loss.

    ``write_lock`` serialises writers within the process; it is set for SQLite, where a second
    concurrent writer would only wait on the file lock (or fail with "database is locked").
    """

    def __init__(
        self,
        engine: AsyncEngine,
        policy: RetryPolicy,
        *,
        write_lock: asyncio.Lock | None = None,
        sqlite: bool = False,
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.write_lock = write_lock
        self._sqlite = sqlite
        self._down_since: float | None = None
        self.commits = 0  # successful write transactions (tests count group commits with it)
        self.retries = 0  # attempts repeated after a transient error

    # --- outage bookkeeping ------------------------------------------------------------------

    def _ok(self) -> None:
        if self._down_since is not None:
            log.warning(
                "database reachable again after %.1f s", time.monotonic() - self._down_since
            )
            self._down_since = None

    async def _backoff(self, attempt: int, error: BaseException, what: str) -> None:
        """Sleep before the next attempt, or raise StorageUnavailable if the budget is spent."""
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        deadline = self._down_since + self.policy.retry_for
        if now >= deadline:
            raise StorageUnavailable(
                f"{what} failed: database unreachable for {now - self._down_since:.1f} s "
                f"(retry limit {self.policy.retry_for:g} s): {database_message(error)}"
            ) from error
        self.retries += 1
        delay = min(self.policy.first_delay * 2**attempt, self.policy.max_delay, deadline - now)
        log.warning("%s: %s; retrying in %.2f s", what, error, delay)
        await asyncio.sleep(delay)

    # --- connections -------------------------------------------------------------------------

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        if self.write_lock is None:
            yield
        else:
            async with self.write_lock:
                yield

    async def begin_write(self, conn: AsyncConnection, token: str | None = None) -> bool:
        """Start a write transaction (``BEGIN IMMEDIATE`` on SQLite: take the lock up front).
        On SQLite, with ``token``, the transaction's commit marker is inserted in the same trip
        to the driver's thread (True: the caller must not insert it again)."""
        if self._sqlite:
            # the engine's begin hook issues nothing (""): the BEGIN goes to the driver in one
            # trip instead of SQLAlchemy's three (see contest.storage.bulk.sqlite_thread)
            await conn.execution_options(contest_sqlite_begin="")
            await conn.begin()
            statements: list[tuple[str, tuple[Any, ...]]] = [("BEGIN IMMEDIATE", ())]
            if token is not None:
                # the marker's time is the transaction's start rather than its end: it only
                # decides when the marker is pruned, an hour or more later
                statements.append((_SQLITE_MARK, (token, time.time())))
            await sqlite_execute(conn, *statements)
            return token is not None
        await conn.begin()
        return False

    # --- the two entry points ----------------------------------------------------------------

    async def retrying(self, op: Callable[[], Awaitable[T]], what: str) -> T:
        """Run ``op`` (which gets its own connections), repeated on transient errors; for
        idempotent operations only (reads, schema migration)."""
        attempt = 0
        while True:
            try:
                result = await op()
                self._ok()
                return result
            except Exception as e:
                if not is_transient(e):
                    raise
                await self._backoff(attempt, e, what)
                attempt += 1

    async def read(self, work: WorkFn[T], what: str = "read") -> T:
        """Run a read-only ``work`` on a pooled connection; repeated on transient errors."""

        async def op() -> T:
            async with self.engine.connect() as conn:
                return await work(conn)

        return await self.retrying(op, what)

    async def write(
        self,
        work: WorkFn[T],
        what: str = "write",
        conn_source: ConnectionSource | None = None,
        state: WriteState | None = None,
        in_thread: Callable[[], InThreadWork[T] | None] | None = None,
    ) -> T:
        """Run ``work`` in one write transaction, exactly once, retrying on transient errors.

        ``conn_source`` lends a long-lived connection (the event writer keeps one); without it
        each attempt checks a connection out of the pool. ``state``: the write's identity when
        this call repeats an earlier one that raised :class:`StorageUnavailable`.

        ``in_thread``: gives, for each attempt, the same work written for SQLite's own
        connection, ``(fn, after)`` (or None: use ``work``). On SQLite through aiosqlite the
        whole transaction (``BEGIN IMMEDIATE``, the commit marker, ``fn(db)``, ``COMMIT``) is
        then one trip to the driver's thread instead of three, and the write returns
        ``after(fn's result)``, called on the event loop once the transaction committed. Each
        trip's answer waits for a turn of a loop that a busy job keeps full, so the trips, not
        SQLite, were most of a batch's time.
        """
        source = conn_source or PoolSource(self.engine)
        state = state or WriteState()
        token = state.token
        attempt = 0
        result: Any = None
        while True:
            try:
                async with self._writing():
                    conn = await source.acquire()
                    try:
                        if state.reached_commit and await self._committed(conn, token):
                            self._ok()
                            if state.after is not None:
                                return state.after(state.result)  # type: ignore[no-any-return]
                            return state.result  # type: ignore[no-any-return]
                        run = await sqlite_thread(conn) if in_thread and self._sqlite else None
                        prepared = in_thread() if run is not None and in_thread else None
                        if run is not None and prepared is not None:
                            fn, state.after = prepared
                            result = state.after(await run(_one_trip, token, fn, state))
                        else:
                            state.after = None
                            marked = await self.begin_write(conn, token)
                            result = await work(conn)
                            if not marked:
                                await self._mark(conn, token)
                            state.reached_commit = True
                            state.result = result
                            await conn.commit()
                    except BaseException:
                        await source.discard(conn)
                        raise
                    await source.release(conn)
                self.commits += 1
                self._ok()
                return result  # type: ignore[no-any-return]
            except Exception as e:
                if not is_transient(e):
                    raise
                await self._backoff(attempt, e, what)
                attempt += 1

    async def _mark(self, conn: AsyncConnection, token: str) -> None:
        """Insert the commit marker of ``token`` in the transaction (see :meth:`write`)."""
        await conn.execute(
            insert(schema.commit_markers), {"token": token, "committed_at": time.time()}
        )

    @staticmethod
    async def _committed(conn: AsyncConnection, token: str) -> bool:
        m = schema.commit_markers
        found = (await conn.execute(select(m.c.token).where(m.c.token == token))).first()
        await conn.rollback()
        return found is not None


def _one_trip(db: Any, token: str, fn: Callable[[Any], Any], state: WriteState) -> Any:
    """A write transaction on SQLite's own connection, in the driver's thread (see
    :meth:`Transactor.write`): what :meth:`Transactor.begin_write`, the work and the commit do
    in three trips. A failure rolls back here, so the connection is left outside any
    transaction either way."""
    db.execute("BEGIN IMMEDIATE").close()
    try:
        # the marker's time is the transaction's start (see Transactor.begin_write)
        db.execute(_SQLITE_MARK, (token, time.time())).close()
        out = state.result = fn(db)
        state.reached_commit = True  # read on the loop only after this trip returns or raises
        db.execute("COMMIT").close()
    except BaseException:
        if db.in_transaction:
            with suppress(Exception):
                db.execute("ROLLBACK").close()
        raise
    return out


class ConnectionSource(abc.ABC):
    """Where :meth:`Transactor.write` gets its connection from."""

    @abc.abstractmethod
    async def acquire(self) -> AsyncConnection:
        """A connection for one transaction."""

    @abc.abstractmethod
    async def release(self, conn: AsyncConnection) -> None:
        """The transaction is over: give the connection back."""

    async def discard(self, conn: AsyncConnection) -> None:
        """The connection failed mid-transaction: drop it. Invalidated, not just returned to
        the pool: when the error came from the driver directly (the bulk paths), SQLAlchemy
        has not seen it and would hand the broken connection out again."""
        with suppress(Exception):
            await conn.invalidate()
        with suppress(Exception):
            await conn.close()


class PoolSource(ConnectionSource):
    """A pool checkout per attempt."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def acquire(self) -> AsyncConnection:
        return await self._engine.connect()

    async def release(self, conn: AsyncConnection) -> None:
        await conn.close()


class HeldSource(ConnectionSource):
    """One connection kept across transactions (the event writer's), replaced when it fails.

    Keeping it saves a pool checkout per batch; losing it costs nothing but a reconnect.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None

    async def acquire(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self._engine.connect()
        return self._conn

    async def release(self, conn: AsyncConnection) -> None:
        """Kept for the next transaction: nothing to give back."""

    async def discard(self, conn: AsyncConnection) -> None:
        self._conn = None
        await super().discard(conn)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with suppress(Exception):
                await conn.close()
