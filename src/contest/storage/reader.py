"""Reads made whole in a worker thread, with connections of their own: one turn of the loop each.

Through the AsyncEngine a read is five to seven trips between the event loop and the driver
(SQLite: aiosqlite's thread; check out, ``BEGIN``, execute, fetch, roll back), and each trip's
answer is a callback queued behind whatever the loop has to do. On a server running a big job
that is thousands of target wake-ups per commit: a status or a job list waited 50-150 ms per
read in line, not in the database (issue 17, docs/performance.md, "The server under 20
pollers"). A :class:`ThreadReader` runs the same read functions (``async def f(conn)``, the
storage's) on a synchronous connection of the same database, in a thread of its own, from
check-out to roll-back: the loop sees one callback, the answer.

The read functions only ``await conn.execute(...)``; given a connection whose ``execute``
answers at once, their coroutine runs to its end in one step, in the thread, and returns the
same values from the same statements and the same dialect's type processing.

Reads only: writes keep the storage's one AsyncEngine, its write lock and its commit markers.
SQLite's WAL lets a reader on another connection see every committed transaction; a reader
never waits for the writer (busy_timeout bounds the rare wait for a checkpoint).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")

#: worker threads (and pooled connections) for reads: a status makes four at once
READ_THREADS = 4


class _AnswersAtOnce:
    """What the storage's read functions use of an :class:`AsyncConnection`, over a
    synchronous connection: each ``execute`` is done when awaited, without suspending."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if parameters is None:
            return self._conn.execute(statement)
        return self._conn.execute(statement, parameters)


class ReadWaited(RuntimeError):
    """A read function awaited something else than its connection: it cannot run whole in a
    thread (a bug of ours, found by ``tests/storage/test_storage_reader.py``)."""


def run_whole(work: Callable[[AsyncConnection], Awaitable[T]], conn: Connection) -> T:
    """``work`` on ``conn``, to its end, here (see the module's doc)."""
    coro = cast(Coroutine[Any, Any, T], work(cast(AsyncConnection, _AnswersAtOnce(conn))))
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    raise ReadWaited(f"{getattr(work, '__qualname__', work)!r} waited on something else")


class ThreadReader:
    """Runs read functions in worker threads on ``engine`` (a synchronous one: see
    :func:`contest.storage.engine.create_sync_engine`), each in one connection check-out and
    one transaction, rolled back."""

    def __init__(self, engine: Engine, threads: int = READ_THREADS) -> None:
        self.engine = engine
        self._threads = threads
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="contest-read"
        )
        self._closed = False

    def warm(self, timeout: float = 10.0) -> None:
        """Make each thread's connection now, in the background, rather than at the first
        reads: a server's first status answers each waited for new connections (0.15 s on
        MariaDB: the handshake and SQLAlchemy's first look at the server). Not waited for; a
        database that does not answer leaves the reads to connect when they come, as before."""
        met = threading.Barrier(self._threads)

        def connect() -> None:
            with self.engine.connect(), contextlib.suppress(threading.BrokenBarrierError):
                met.wait(timeout)  # every thread at once: as many connections as threads

        for _ in range(self._threads):
            self._pool.submit(connect)

    def _read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        with self.engine.connect() as conn:
            return run_whole(work, conn)

    async def read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``work``'s result, read in a worker thread (one turn of the loop for the answer)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._read, work)

    def close(self) -> None:
        """No new reads. The ones queued or under way still end, and answer (a request being
        answered as the server stops gets its answer, not a cancellation); not waited for
        here, as a database that stopped answering would hold the shutdown."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=False)
        self.engine.dispose()
