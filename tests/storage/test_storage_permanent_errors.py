"""Errors a retry cannot fix fail at once, with the database server's own message: a wrong
password, an unknown role or database, a missing privilege. Only an unreachable or busy server
is retried (the budget is 30 s: a wrong role used to be retried that long, with a warning per
attempt). Real servers, real roles: nothing is faked."""

from __future__ import annotations

import logging
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from contest.storage import StorageUnavailable, open_storage
from contest.storage.errors import database_message
from contest.testing.databases import (
    _mysql_admin,
    _pg_admin,
    admin_url,
    server_available,
    temporary_database,
)

RETRY_LOGGER = "contest.storage.retry"


def _require(kind: str) -> None:
    if not server_available(kind):  # type: ignore[arg-type]
        pytest.fail(f"no {kind} server: the tests need it running (see .ci/run)")


async def _fails_at_once(url: str, caplog: pytest.LogCaptureFixture) -> str:
    """open_storage(url) fails without a single retry; the message it gives."""
    caplog.set_level(logging.WARNING, logger=RETRY_LOGGER)
    began = time.monotonic()
    with pytest.raises(Exception) as info:
        await open_storage(url)  # the default 30 s retry budget
    took = time.monotonic() - began
    retries = [r for r in caplog.records if r.name == RETRY_LOGGER]
    assert retries == [], [r.getMessage() for r in retries]
    assert not isinstance(info.value, StorageUnavailable)
    assert took < 10, took  # a retry would have gone on for 30 s
    return database_message(info.value)


@pytest.fixture
def mariadb_user() -> Iterator[tuple[str, str, str]]:
    """A MariaDB user with a password and a database it may not use: (user, password, db)."""
    _require("mariadb")
    user, password = f"contest_u_{secrets.token_hex(4)}", "right-password"
    conn = _mysql_admin(admin_url("mariadb"))
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'")
    try:
        with temporary_database("mariadb") as url:
            yield user, password, make_url(url).database or ""
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            cur.execute(f"DROP USER IF EXISTS '{user}'@'localhost'")
        conn.close()


async def test_mariadb_wrong_password(
    mariadb_user: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    user, _, db = mariadb_user
    message = await _fails_at_once(f"mysql://{user}:wrong@127.0.0.1:3306/{db}", caplog)
    assert "Access denied for user" in message and "(using password: YES)" in message


async def test_mariadb_missing_privilege(
    mariadb_user: tuple[str, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    user, password, db = mariadb_user  # a right password, no grant on the database
    message = await _fails_at_once(f"mysql://{user}:{password}@127.0.0.1:3306/{db}", caplog)
    assert "Access denied for user" in message and db in message


async def test_mariadb_unknown_database(caplog: pytest.LogCaptureFixture) -> None:
    _require("mariadb")
    message = await _fails_at_once("mysql://root@127.0.0.1:3306/contest_no_such_db", caplog)
    assert "Unknown database 'contest_no_such_db'" in message


async def test_postgresql_unknown_role_and_database(caplog: pytest.LogCaptureFixture) -> None:
    _require("postgresql")
    message = await _fails_at_once("postgresql://contest_no_such_role@127.0.0.1:5432/test", caplog)
    assert 'role "contest_no_such_role" does not exist' in message
    caplog.clear()
    message = await _fails_at_once("postgresql://postgres@127.0.0.1:5432/contest_no_db", caplog)
    assert 'database "contest_no_db" does not exist' in message


async def test_postgresql_missing_privilege(caplog: pytest.LogCaptureFixture) -> None:
    """A role that may connect but not create tables (PostgreSQL 15 and later give no one
    CREATE on the public schema by default; older ones are told so here)."""
    _require("postgresql")
    role = f"contest_r_{secrets.token_hex(4)}"
    admin = _pg_admin(admin_url("postgresql"))
    admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        with temporary_database("postgresql") as url:
            db = make_url(url).database
            owner = _pg_admin(admin_url("postgresql").set(database=db))
            owner.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            owner.close()
            message = await _fails_at_once(f"postgresql://{role}@127.0.0.1:5432/{db}", caplog)
            assert "permission denied for schema public" in message
    finally:
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()


async def test_an_unreachable_server_is_still_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=RETRY_LOGGER)
    with pytest.raises(StorageUnavailable, match="database unreachable for"):
        await open_storage("postgresql://postgres@127.0.0.1:1/test", retry_for=0.3)
    assert [r for r in caplog.records if "retrying in" in r.getMessage()]


def test_contest_serve_says_why_it_cannot_start(tmp_path: Path) -> None:
    """The operator's view: exit 1, one line with the server's message, no retry warnings."""
    import sys

    _require("postgresql")
    proc = subprocess.run(
        [sys.executable, "-m", "contest.cli", "serve", "--listen", "127.0.0.1:0",
         "--db", "postgresql://contest_no_such_role:pw@127.0.0.1:5432/test"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == (
        "contest serve: cannot open the database "
        "postgresql+psycopg://contest_no_such_role:***@127.0.0.1:5432/test: connection failed: "
        'connection to server at "127.0.0.1", port 5432 failed: FATAL:  role '
        '"contest_no_such_role" does not exist\n'
    )
