"""Bring a database's tables to the newest schema, programmatically (no ``alembic.ini``).

Alembic runs on the storage's own AsyncEngine through ``run_sync`` (the documented recipe for
async engines), so no second, synchronous driver is involved. Two servers starting at once
against one database take turns: PostgreSQL and MySQL/MariaDB hold a named server lock around
the upgrade; SQLite holds the database's write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from contest.storage.migrations import VERSION_TABLE

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_NAME = "contest_schema_migration"
_PG_LOCK_KEY = 0x636F6E74  # "cont"


def alembic_config() -> Config:
    """An Alembic config pointing at our revisions (for tools and tests, too)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    return cfg


def head_revision() -> str:
    """The newest revision in the history (what :func:`upgrade` migrates to)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current(conn: Connection) -> str | None:
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def _upgrade(conn: Connection, target: str) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
    elif dialect in ("mysql", "mariadb"):
        conn.execute(text("SELECT GET_LOCK(:n, 600)"), {"n": _LOCK_NAME})
    conn.commit()
    try:
        if _current(conn) != target:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)
        conn.commit()
    except BaseException:
        # a failed statement (a missing privilege) aborts the transaction: end it, or the
        # unlock below fails too and its "transaction is aborted" hides the server's message
        conn.rollback()
        raise
    finally:
        if dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
        elif dialect in ("mysql", "mariadb"):
            conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": _LOCK_NAME})
        conn.commit()


async def upgrade(engine: AsyncEngine, target: str = "head") -> None:
    """Create or migrate the tables up to ``target``; a no-op when already there."""
    if target == "head":
        target = head_revision()
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            await conn.execution_options(contest_sqlite_begin="BEGIN IMMEDIATE")
        await conn.run_sync(_upgrade, target)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
