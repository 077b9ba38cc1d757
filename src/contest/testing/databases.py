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
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import URL, make_url

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
        conn = _pg_admin(admin_url("postgresql"))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@contextmanager
def temporary_database(kind: Kind, directory: str | Path | None = None) -> Iterator[str]:
    """Create a database, yield its URL, drop it afterwards (even on failure)."""
    db_url = create_database(kind, directory)
    try:
        yield db_url
    finally:
        drop_database(db_url)
