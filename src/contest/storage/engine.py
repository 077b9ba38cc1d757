"""The AsyncEngine for a storage URL, with each database's settings.

SQLite gets WAL (readers never block the writer), ``synchronous=NORMAL`` (durable across a
process crash; a power cut may lose the last transactions, the usual WAL trade), a busy
timeout (another process holding the lock makes us wait, not fail) and real transactions:
the driver's implicit-transaction mode is turned off and SQLAlchemy emits ``BEGIN`` itself,
``BEGIN IMMEDIATE`` for write transactions (see :meth:`Transactor.begin_write`), so a
read-then-write transaction cannot fail half way on a lock upgrade.

MySQL/MariaDB connect with ``utf8mb4``; PostgreSQL with psycopg in async mode, without
server-side prepared statements.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contest.storage.urls import backend_name, to_async_url

SQLITE_BUSY_TIMEOUT_MS = 10_000


def create_engine(
    url: str | URL,
    *,
    pool_size: int = 10,
    echo: bool = False,
    idle_transaction_timeout: float | None = None,
    session_name: str | None = None,
) -> AsyncEngine:
    """An AsyncEngine for a storage URL (any form :func:`to_async_url` accepts).

    ``idle_transaction_timeout`` (seconds, PostgreSQL and MariaDB): the database ends a session
    of ours that sits idle inside a transaction that long, so that a process frozen mid-
    transaction (SIGSTOP, a VM paused) cannot hold its row locks for ever: a server's event
    writer holds a share lock on its jobs' lease rows until its commit (lease fencing), which
    another server's claim of those leases must not wait for beyond that. Our transactions
    never idle (their statements follow each other at once); one ended by it is retried as a
    lost connection. A statement half received is not idle: MariaDB bounds its wait for the
    rest by ``net_read_timeout`` (30 s by default); PostgreSQL does not, and ``session_name``
    (the server's instance ID, PostgreSQL's ``application_name`` of each session) lets the
    other servers end the sessions of a server whose heartbeat lapsed (contest.storage.fleet)."""
    aurl, kwargs = _engine_settings(
        url,
        pool_size=pool_size,
        echo=echo,
        idle_transaction_timeout=idle_transaction_timeout,
        session_name=session_name,
    )
    engine = create_async_engine(aurl, **kwargs)
    if backend_name(aurl) == "sqlite":
        _setup_sqlite(engine.sync_engine)
    return engine


#: the synchronous driver of each database, for :func:`create_sync_engine`
SYNC_DRIVERS = {"sqlite": "pysqlite", "mysql": "pymysql", "postgresql": "psycopg"}


def create_sync_engine(
    url: str | URL,
    *,
    pool_size: int = 4,
    idle_transaction_timeout: float | None = None,
    session_name: str | None = None,
) -> Engine:
    """A synchronous Engine on the same database as :func:`create_engine`'s, with the same
    settings, through each database's synchronous driver (sqlite3, PyMySQL, psycopg): for
    reads run whole in a worker thread (:mod:`contest.storage.reader`)."""
    aurl, kwargs = _engine_settings(
        url,
        pool_size=pool_size,
        echo=False,
        idle_transaction_timeout=idle_transaction_timeout,
        session_name=session_name,
    )
    dialect = aurl.drivername.partition("+")[0]
    surl = aurl.set(drivername=f"{dialect}+{SYNC_DRIVERS[backend_name(aurl)]}")
    engine = sa_create_engine(surl, **kwargs)
    if backend_name(surl) == "sqlite":
        _setup_sqlite(engine, direct=True)
    return engine


def _engine_settings(
    url: str | URL,
    *,
    pool_size: int,
    echo: bool,
    idle_transaction_timeout: float | None,
    session_name: str | None,
) -> tuple[URL, dict[str, Any]]:
    """The async URL and the engine's keyword arguments (see :func:`create_engine`)."""
    aurl = to_async_url(url)
    backend = backend_name(aurl)
    kwargs: dict[str, Any] = {"echo": echo}
    if backend == "mysql":
        if "charset" not in aurl.query:
            aurl = aurl.update_query_dict({"charset": "utf8mb4"})
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=3600)
        if idle_transaction_timeout:
            # MariaDB's (10.3+); MySQL has none, and reports an unknown variable
            secs = max(1, math.ceil(idle_transaction_timeout))
            kwargs["connect_args"] = {
                "init_command": f"SET SESSION idle_transaction_timeout={secs}"
            }
    elif backend == "postgresql":
        # No server-side prepared statements: psycopg would prepare a statement on its 5th run,
        # and PostgreSQL's generic plan for our batched "... WHERE target_id IN (200 values)"
        # statements is some 25 times slower than a custom one.
        connect: dict[str, Any] = {"prepare_threshold": None}
        if idle_transaction_timeout:
            ms = max(1, round(idle_transaction_timeout * 1000))
            connect["options"] = f"-c idle_in_transaction_session_timeout={ms}"
        if session_name:
            connect["application_name"] = session_name[:63]
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, connect_args=connect)
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size)
    return aurl, kwargs


def _setup_sqlite(sync_engine: Engine, *, direct: bool = False) -> None:
    """WAL and our own ``BEGIN`` on each connection of ``sync_engine``; ``direct``: its
    connections are sqlite3's own (the reader's engine), so the ``BEGIN`` goes straight to
    the driver: through SQLAlchemy's execution it was a third of a status read's time in the
    reader's thread, and the reads of twenty pollers share the interpreter with the jobs
    (issue 17, ``benchmarks/perf.py``'s server section)."""

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # "" : the caller issues its own BEGIN (Transactor.begin_write, in one trip)
        sql = conn.get_execution_options().get("contest_sqlite_begin", "BEGIN")
        if not sql:
            return
        if direct:
            conn.connection.dbapi_connection.execute(sql)  # type: ignore[union-attr]
        else:
            conn.exec_driver_sql(sql)
