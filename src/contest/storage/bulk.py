"""The fastest multi-row insert each database offers, for the event writer's hot path.

* PostgreSQL (psycopg): ``COPY ... FROM STDIN``. Measured on the CI machine it moves rows
  about four times faster than a 1,000-row ``INSERT ... VALUES`` (psycopg adapts parameters
  one by one; COPY streams them in C), and it still runs inside the caller's transaction.
* MySQL/MariaDB (aiomysql): multi-row ``INSERT ... VALUES (...), (...)`` statements of about
  100 KB each, as aiomysql's ``executemany`` would build, but quoting each distinct short string
  once (with the connection's own ``escape``, kept from batch to batch): quoting every value was
  40% of the writer's time, and names, labels and targets repeat on almost every row. Each
  statement is built while the server runs the one before.
* SQLite: multi-row ``INSERT ... VALUES`` of up to 1,000 rows (10,000 parameters): the sqlite3
  module's ``executemany`` binds each row through Python and ran at half that speed. All the
  statements of a batch go to aiosqlite's thread in one trip (see :func:`_sqlite_insert_all`).

Both skip SQLAlchemy's per-row parameter processing: the rows arrive as tuples in column order,
already converted (the event encoder did that at write time). Auto-increment keys are assigned
in row order, so the sequence of the rows is the order of the list.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

Row = tuple[Any, ...]
BulkInsert = Callable[[AsyncConnection, list[Row]], Awaitable[None]]

# a multi-row INSERT stays below this many characters (aiomysql's own executemany limit is 1 MB):
# short enough that the next one is built while the server runs it (_mysql_multirow)
_MYSQL_STATEMENT_CHARS = 100_000
_QUOTE_CACHE_MAX_LEN = 1024
# the quoted strings kept between batches hold at most this many characters (then start afresh)
_QUOTE_CACHE_MAX_CHARS = 16_000_000
# the server's status bit for the sql_mode that makes backslashes plain characters (MySQL's
# SERVER_STATUS_NO_BACKSLASH_ESCAPES)
_NO_BACKSLASH_ESCAPES = 512
# SQLite >= 3.32 binds up to 32766 parameters a statement; stay well below
_SQLITE_MAX_PARAMS = 10_000
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": ":{n}"}


def bulk_insert(
    dialect: Dialect,
    table: str,
    columns: Sequence[str],
    *,
    header: int = 0,
    defaults: Mapping[str, object] | None = None,
) -> BulkInsert:
    """A function inserting many rows (tuples in ``columns`` order) into ``table``.

    ``header``: how many leading columns repeat together from row to row (a test event's
    step: job, run, test, attempt, label); on MySQL their text is made once per distinct
    header. ``defaults``: columns the database fills in when left out, with the value it puts
    there (a column's server default, or NULL); on MySQL a batch whose rows all hold that value
    leaves the column out."""
    q = dialect.identifier_preparer.quote
    cols = ", ".join(q(c) for c in columns)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        copy_sql = f"COPY {q(table)} ({cols}) FROM STDIN"

        async def copy_rows(conn: AsyncConnection, rows: list[Row]) -> None:
            raw = await conn.get_raw_connection()
            driver_conn: Any = raw.driver_connection
            async with driver_conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in rows:
                    await copy.write_row(row)

        return copy_rows

    if dialect.name in ("mysql", "mariadb") and dialect.driver == "aiomysql":
        return _mysql_multirow(table, columns, q, header, defaults or {})

    ph = _PLACEHOLDER[dialect.paramstyle]
    marks = ", ".join(ph.format(n=i + 1) for i in range(len(columns)))
    insert_sql = f"INSERT INTO {q(table)} ({cols}) VALUES ({marks})"
    if dialect.name == "sqlite" and dialect.paramstyle == "qmark":
        head = f"INSERT INTO {q(table)} ({cols}) VALUES "
        group = f"({marks})"
        per_statement = max(1, _SQLITE_MAX_PARAMS // len(columns))

        statements = _sqlite_statements(head, group, per_statement)

        async def multirow(conn: AsyncConnection, rows: list[Row]) -> None:
            run = await sqlite_thread(conn)
            if run is None:  # not aiosqlite's connection: one statement at a time
                for sql, params in statements(rows):
                    await conn.exec_driver_sql(sql, params)
                return
            await run(_sqlite_insert_all, statements(rows))

        return multirow

    async def executemany(conn: AsyncConnection, rows: list[Row]) -> None:
        await conn.exec_driver_sql(insert_sql, rows)

    return executemany


#: SQLite statements with their parameters
Statements = list[tuple[str, tuple[Any, ...]]]


def _sqlite_statements(
    head: str, group: str, per_statement: int
) -> Callable[[list[Row]], Statements]:
    full = head + ",".join([group] * per_statement)

    def statements(rows: list[Row]) -> Statements:
        out = []
        for i in range(0, len(rows), per_statement):
            chunk = rows[i : i + per_statement]
            sql = full if len(chunk) == per_statement else head + ",".join([group] * len(chunk))
            out.append((sql, tuple(chain.from_iterable(chunk))))
        return out

    return statements


def sqlite_insert_statements(
    dialect: Dialect, table: str, columns: Sequence[str]
) -> Callable[[list[Row]], Statements]:
    """The multi-row ``INSERT`` statements of rows into ``table`` on SQLite (what
    :func:`bulk_insert` runs there), for code that runs them in the driver's thread itself
    (:func:`sqlite_thread`)."""
    q = dialect.identifier_preparer.quote
    head = f"INSERT INTO {q(table)} ({', '.join(q(c) for c in columns)}) VALUES "
    group = "(" + ", ".join(["?"] * len(columns)) + ")"
    return _sqlite_statements(head, group, max(1, _SQLITE_MAX_PARAMS // len(columns)))


#: runs ``fn(sqlite3_connection, *args)`` in aiosqlite's thread and returns its result
InThread = Callable[..., Awaitable[Any]]


async def sqlite_thread(conn: AsyncConnection) -> InThread | None:
    """A way to run a function on the sqlite3 connection under ``conn`` in aiosqlite's own
    thread, in one trip (what each aiosqlite call queues there: ``Connection._execute``); None
    if ``conn`` is not on aiosqlite (then use SQLAlchemy's path). Through SQLAlchemy every
    statement is three or four trips (cursor, execute, fetch, close), and each trip's answer
    waits for a turn of the event loop, which a busy job keeps full (thousands of target
    wake-ups per commit): the event writer's statements spent most of their time waiting in
    line, not in SQLite."""
    raw = await conn.get_raw_connection()
    driver_conn: Any = raw.driver_connection
    queue = getattr(driver_conn, "_execute", None)
    if queue is None or not hasattr(driver_conn, "_conn"):
        return None

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        # the sqlite3 connection is looked up in the thread that owns it
        return await queue(lambda: fn(driver_conn._conn, *args))

    return run


def _sqlite_insert_all(db: Any, statements: Statements) -> None:
    """Every statement of a batch, in aiosqlite's thread (see :func:`sqlite_thread`)."""
    for sql, params in statements:
        db.execute(sql, params).close()


def _sqlite_all(db: Any, statements: Statements) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for sql, params in statements:
        rows = [tuple(r) for r in db.execute(sql, params).fetchall()]
    return rows


async def sqlite_execute(
    conn: AsyncConnection, *statements: tuple[str, tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Run driver-level statements on a SQLite connection in one trip to aiosqlite's thread
    (see :func:`sqlite_thread`), and return the last one's rows; on another driver, through
    SQLAlchemy."""
    run = await sqlite_thread(conn)
    if run is not None:
        rows: list[tuple[Any, ...]] = await run(_sqlite_all, list(statements))
        return rows
    out: list[tuple[Any, ...]] = []
    for sql, params in statements:
        result = await conn.exec_driver_sql(sql, params)
        out = [tuple(r) for r in result.all()] if result.returns_rows else []
    return out


def _mysql_multirow(
    table: str, columns: Sequence[str], quote: Callable[[str], str], header: int,
    defaults: Mapping[str, object],
) -> BulkInsert:  # fmt: skip
    # the quoted form of each short string seen, kept from batch to batch (a job's names,
    # labels and targets come back in every batch: quoting them again was half of building a
    # batch), apart for each quoting mode of the connection, and bounded; with them, the text
    # of each distinct header (the row's first ``header`` values), made once per set of
    # columns left out
    kept: dict[bool, dict[str, str]] = {False: {}, True: {}}
    headers: dict[tuple[bool, tuple[int, ...]], dict[tuple[Any, ...], str]] = {}
    held = [0]  # characters kept, all of them
    # the columns a batch may leave out, by place, with the value the database fills in
    omittable = [(columns.index(name), value) for name, value in defaults.items()]
    heads: dict[tuple[int, ...], str] = {}

    def head_of(omit: tuple[int, ...]) -> str:
        head = heads.get(omit)
        if head is None:
            names = ", ".join(quote(c) for i, c in enumerate(columns) if i not in omit)
            head = heads[omit] = f"INSERT INTO {quote(table)} ({names}) VALUES "
        return head

    async def insert_rows(conn: AsyncConnection, rows: list[Row]) -> None:
        raw = await conn.get_raw_connection()
        driver_conn: Any = raw.driver_connection
        escape = driver_conn.escape  # the connection's own quoting (honours NO_BACKSLASH_ESCAPES)
        no_backslash = bool(driver_conn.server_status & _NO_BACKSLASH_ESCAPES)
        if held[0] > _QUOTE_CACHE_MAX_CHARS:
            for cache in kept.values():
                cache.clear()
            headers.clear()
            held[0] = 0
        # Columns every row of the batch leaves at the database's default (a first attempt,
        # no payload) are not sent: MariaDB parses every value of a multi-row INSERT and
        # makes an item of it, which was a third of its work on a job's rows
        omit = tuple(
            i for i, value in omittable
            if all(type(row[i]) is type(value) and row[i] == value for row in rows)
        )  # fmt: skip
        head = head_of(omit)
        keep = [i for i in range(len(rows[0]) if rows else 0) if i not in omit]
        in_header = [i for i in keep if i < header]
        in_tail = [i for i in keep if i >= header]
        tail_of = itemgetter(*in_tail) if len(in_tail) > 1 else None
        quoted = kept[no_backslash]
        made = headers.setdefault((no_backslash, omit), {})
        last = [False]  # the statement just built is the batch's last
        literal = _mysql_literal(escape, quoted, held)
        lookup = quoted.get

        def statements() -> Iterator[str]:
            groups: list[str] = []
            size = len(head)
            arity = len(in_tail)
            for row in rows:
                if header:
                    key = row[:header]
                    group = made.get(key)
                    if group is None:
                        group = made[key] = "(" + "".join(
                            [literal(row[i]) + "," for i in in_header]
                        )
                        held[0] += len(group)
                else:
                    group = "("
                # a test event's rest (target ID, target, name, payload if any, time), written
                # out: a loop and a join cost a third more, and this text is built on the
                # event loop for every event stored; a time's repr has no exponent in that
                # range (literal() checks)
                if arity == 5:
                    a, b, c, d, e = tail_of(row)  # type: ignore[misc]
                    when = f"{e!r}e0" if type(e) is float and 1e-4 < e < 1e16 else literal(e)
                    group = (
                        f"{group}{lookup(a) or literal(a)},{lookup(b) or literal(b)},"
                        f"{lookup(c) or literal(c)},{lookup(d) or literal(d)},{when})"
                    )
                elif arity == 4:
                    a, b, c, e = tail_of(row)  # type: ignore[misc]
                    when = f"{e!r}e0" if type(e) is float and 1e-4 < e < 1e16 else literal(e)
                    group = (
                        f"{group}{lookup(a) or literal(a)},{lookup(b) or literal(b)},"
                        f"{lookup(c) or literal(c)},{when})"
                    )
                else:
                    group += ",".join([literal(row[i]) for i in in_tail]) + ")"
                if groups and size + len(group) + 1 > _MYSQL_STATEMENT_CHARS:
                    yield head + ",".join(groups)
                    groups, size = [], len(head)
                groups.append(group)
                size += len(group) + 1
            if groups:
                last[0] = True
                yield head + ",".join(groups)

        # Each statement is built while the server runs the one before: the building (a few
        # microseconds a row, on the loop) is then off the writer's path, which the server's
        # own work (some 15 us a row) sets. Statements of ~100 KB keep the first one short.
        async with driver_conn.cursor() as cur:
            built = statements()
            sql = next(built, None)
            while sql is not None:
                if last[0]:  # nothing to build meanwhile: no task, no extra turn of the loop
                    await cur.execute(sql)  # no args: no %-formatting
                    return
                running = asyncio.ensure_future(cur.execute(sql))
                try:
                    await asyncio.sleep(0)  # the statement leaves: the task's first step
                    sql = next(built, None)
                    await running
                except BaseException:
                    running.cancel()  # never a statement left running on a connection given up
                    raise

    return insert_rows


def _mysql_literal(
    escape: Callable[[Any], str], quoted: dict[str, str], held: list[int]
) -> Callable[[Any], str]:
    """A value's SQL text for MySQL, short strings' kept in ``quoted`` (see _mysql_multirow)."""

    def literal(v: Any) -> str:
        t = type(v)  # most values are strings: tested first
        if t is str:
            lit = quoted.get(v)
            if lit is None:
                lit = escape(v)
                if len(v) <= _QUOTE_CACHE_MAX_LEN:
                    quoted[v] = lit
                    held[0] += len(v) + len(lit)
            return lit
        if t is int:
            return str(v)
        if v is None:
            return "NULL"
        if t is float and math.isfinite(v):
            lit = repr(v)  # shortest round-trip text; 'e0' makes it a DOUBLE
            return lit if "e" in lit else lit + "e0"
        return escape(v)

    return literal
