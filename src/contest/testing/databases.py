"""Throw-away databases for tests: one uniquely named database per test session.

Every suite that needs real storage (storage, job manager, server, locker) uses these helpers so
that parallel runs on one machine (or one CI host) never see each other's rows, and nothing is
left behind: :func:`temporary_database` creates ``contest_t_<pid>_<random>`` on the server and
drops it on exit (PostgreSQL with ``FORCE``, so leftover connections do not block the drop).

Servers are found through environment variables, defaulting to the ones on the development
machines and CI:

* ``CONTEST_TEST_MYSQL_URL``  (default ``mysql://root@127.0.0.1:3306/test``)
* ``CONTEST_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``)

The admin connection uses the sync drivers (PyMySQL, psycopg), so the helpers work from plain
(non-async) pytest fixtures of any scope. The URLs handed out name no driver, so
:func:`contest.storage.urls.to_async_url` picks ours.

Also here, for any suite that tests against real databases:

* :class:`SessionDatabases`: one migrated database per kind for a session, made on first use;
* :func:`open_empty_storage`: a Storage on such a database with every table emptied;
* :func:`kill_connections`: kill every server-side connection to a database (outage drill);
* :func:`kill_connection`: kill one server-side connection, by its backend PID or thread ID;
* :class:`TcpProxy`: a forwarder that can cut all connections and refuse new ones for a while.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from contest.storage import Storage

Kind = Literal["sqlite", "mariadb", "postgresql"]
KINDS: tuple[Kind, ...] = ("sqlite", "mariadb", "postgresql")

DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/test"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


class DatabaseUnavailable(RuntimeError):
    """The database server for a kind cannot be reached (tests may skip on it, CI must not)."""


def admin_url(kind: Kind) -> URL:
    """The URL of the server's existing database used to create and drop test databases."""
    if kind == "mariadb":
        return make_url(os.environ.get("CONTEST_TEST_MYSQL_URL", DEFAULT_MYSQL_URL))
    if kind == "postgresql":
        return make_url(os.environ.get("CONTEST_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    raise ValueError(f"no server for {kind}")


def unique_name(prefix: str = "contest_t") -> str:
    """A database name no other run picks: prefix, pid and 48 random bits."""
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(6)}"


def _mysql_admin(url: URL) -> Any:
    import pymysql  # type: ignore[import-untyped]

    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=url.database,
        autocommit=True,
        connect_timeout=5,
    )


def _pg_admin(url: URL) -> Any:
    import psycopg

    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname=url.database or "postgres",
        autocommit=True,
        connect_timeout=5,
    )


def server_available(kind: Kind) -> bool:
    """True if the server for ``kind`` accepts the admin connection (always True for SQLite)."""
    if kind == "sqlite":
        return True
    try:
        conn = _mysql_admin(admin_url(kind)) if kind == "mariadb" else _pg_admin(admin_url(kind))
    except Exception:
        return False
    conn.close()
    return True


def create_database(kind: Kind, directory: str | Path | None = None) -> str:
    """Create an empty database and return its storage URL (no driver named).

    For SQLite this is a new file name in ``directory`` (default: the system temp dir); the
    file itself is created by the first connection.
    """
    if kind == "sqlite":
        base = Path(directory) if directory is not None else Path(tempfile.gettempdir())
        return f"sqlite:///{base / (unique_name() + '.db')}"
    url = admin_url(kind)
    name = unique_name()
    try:
        if kind == "mariadb":
            conn = _mysql_admin(url)
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        else:
            conn = _pg_admin(url)
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as e:
        raise DatabaseUnavailable(f"cannot create a {kind} test database at {url!r}: {e}") from e
    conn.close()
    return url.set(drivername=url.get_backend_name(), database=name).render_as_string(
        hide_password=False
    )


def drop_database(db_url: str) -> None:
    """Drop a database made by :func:`create_database` (SQLite: delete the file and WAL)."""
    url = make_url(db_url)
    backend = url.get_backend_name()
    name = url.database or ""
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(name + suffix).unlink(missing_ok=True)
        return
    if not name.startswith("contest_t_"):
        raise ValueError(f"refusing to drop {name!r}: not a test database")
    if backend in ("mysql", "mariadb"):
        conn = _mysql_admin(admin_url("mariadb"))
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    else:
        import psycopg

        conn = _pg_admin(admin_url("postgresql"))
        # bounded: PostgreSQL's DROP DATABASE waits for every backend of the cluster to
        # acknowledge a barrier, and a backend whose client is frozen (a test's SIGSTOP, in
        # another process) would hold it for as long as the client stays frozen
        conn.execute("SET statement_timeout = '30s'")
        try:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.errors.QueryCanceled:
            warnings.warn(f"test database {name} not dropped in 30 s: left behind", stacklevel=2)
    conn.close()


@contextmanager
def temporary_database(kind: Kind, directory: str | Path | None = None) -> Iterator[str]:
    """Create a database, yield its URL, drop it afterwards (even on failure)."""
    db_url = create_database(kind, directory)
    try:
        yield db_url
    finally:
        drop_database(db_url)


class SessionDatabases:
    """One database per kind for a whole test session, created (and migrated) on first use.

    ``url(kind)`` raises :class:`DatabaseUnavailable` when the server is down; a conftest turns
    that into a skip (or a failure on CI). ``drop_all()`` at session end removes them.
    """

    def __init__(self, directory: str | Path | None = None, *, migrate: bool = True) -> None:
        self._directory = directory
        self._migrate = migrate
        self._urls: dict[Kind, str] = {}

    def url(self, kind: Kind) -> str:
        if kind not in self._urls:
            if not server_available(kind):
                raise DatabaseUnavailable(f"no {kind} server at {admin_url(kind)!r}")
            db_url = create_database(kind, self._directory)
            self._urls[kind] = db_url
            if self._migrate:
                migrate_database(db_url)
        return self._urls[kind]

    def drop_all(self) -> None:
        while self._urls:
            _, db_url = self._urls.popitem()
            drop_database(db_url)


def migrate_database(db_url: str) -> None:
    """Create the tables in ``db_url`` (from sync code: runs its own event loop in a thread)."""
    from contest.storage import open_storage

    async def run() -> None:
        storage = await open_storage(db_url)
        await storage.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


class TcpProxy:
    """A TCP forwarder between the code under test and a database server, to simulate outages.

    ``cut()`` drops every open connection and makes new ones fail at once (accepted, then
    closed: the client sees "lost connection" on its handshake) until ``restore()``. Used to
    check that storage rides out a database that goes away and comes back.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.listen_port = 0
        self._server: Any = None
        self._cut = False
        self._writers: set[Any] = set()
        self.connections = 0

    @classmethod
    def for_url(cls, db_url: str) -> TcpProxy:
        url = make_url(db_url)
        default_port = 5432 if url.get_backend_name() == "postgresql" else 3306
        return cls(url.host or "127.0.0.1", url.port or default_port)

    def proxied_url(self, db_url: str) -> str:
        """``db_url`` with host and port replaced by the proxy's."""
        return (
            make_url(db_url)
            .set(host="127.0.0.1", port=self.listen_port)
            .render_as_string(hide_password=False)
        )

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: Any, writer: Any) -> None:
        if self._cut:
            writer.close()
            return
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: Any, dst: Any) -> None:
            try:
                with suppress(OSError, asyncio.CancelledError):
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
            finally:
                dst.close()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        """Drop all connections and refuse new ones."""
        self._cut = True
        for w in list(self._writers):
            transport = w.transport
            if transport is not None:
                transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self._cut = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def open_empty_storage(
    db_url: str, *, retry_for: float = 10.0, max_batch: int = 10_000, read_threads: int = 0
) -> Storage:
    """A :class:`~contest.storage.Storage` on an already migrated ``db_url``, every table
    emptied (target locks too): the per-test start for suites sharing a session database.
    ``read_threads``: see :func:`~contest.storage.open_storage` (a server's storage)."""
    from sqlalchemy import delete

    from contest.storage import open_storage
    from contest.storage.schema import target_locks, target_waits

    storage = await open_storage(
        db_url,
        migrate_schema=False,
        retry_for=retry_for,
        max_batch=max_batch,
        read_threads=read_threads,
    )
    try:
        await storage.reset()

        async def wipe_locks(conn: AsyncConnection) -> None:
            await conn.execute(delete(target_locks))
            await conn.execute(delete(target_waits))

        await storage.run_write(wipe_locks, "emptying target_locks")
    except BaseException:
        await storage.close()
        raise
    return storage


def kill_connection(db_url: str, connection_id: int) -> None:
    """Kill one server-side connection of ``db_url``'s server from another connection
    (PostgreSQL ``pg_terminate_backend``, waiting until the backend is gone; MariaDB ``KILL
    CONNECTION``): what a dropped connection does to the client using it. ``connection_id`` is
    the backend PID (PostgreSQL) or the connection's thread ID (MariaDB)."""
    backend = make_url(db_url).get_backend_name()
    if backend in ("mysql", "mariadb"):
        conn = _mysql_admin(admin_url("mariadb"))
        try:
            with conn.cursor() as cur:
                cur.execute(f"KILL CONNECTION {int(connection_id)}")
        finally:
            conn.close()
        return
    if backend == "postgresql":
        conn = _pg_admin(admin_url("postgresql"))
        try:
            conn.execute("SELECT pg_terminate_backend(%s, 5000)", (int(connection_id),))
        finally:
            conn.close()
        return
    raise ValueError(f"cannot kill a connection of {backend}")


def kill_connections(db_url: str) -> int:
    """Kill, on the server, every connection to ``db_url``'s database (MariaDB ``KILL``,
    PostgreSQL ``pg_terminate_backend``): what a server restart or a network cut does to the
    clients. Returns how many were killed. Not for SQLite."""
    url = make_url(db_url)
    name = url.database or ""
    backend = url.get_backend_name()
    if backend in ("mysql", "mariadb"):
        conn = _mysql_admin(admin_url("mariadb"))
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT id FROM information_schema.processlist "
                    "WHERE db = %s AND id <> CONNECTION_ID()",
                    (name,),
                )
                ids = [row[0] for row in cur.fetchall()]
                for i in ids:
                    with suppress(Exception):  # gone already
                        cur.execute(f"KILL {int(i)}")
            return len(ids)
        finally:
            conn.close()
    if backend == "postgresql":
        conn = _pg_admin(admin_url("postgresql"))
        try:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
            return len(rows)
        finally:
            conn.close()
    raise ValueError(f"cannot kill connections of {backend}")
