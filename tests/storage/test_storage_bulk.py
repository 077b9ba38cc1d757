"""The writer's multi-row inserts (contest.storage.bulk) keep every value as it was, on the
three databases; on MariaDB, a string quoted once is quoted again when the connection's
quoting mode changes (``NO_BACKSLASH_ESCAPES``), as the kept quotes are per mode."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from contest.storage import Storage
from contest.storage.bulk import bulk_insert
from contest.storage.events import TEST_COLUMNS, TEST_DEFAULTS
from contest.storage.schema import test_events

AWKWARD = ["it's", 'a "b"', "back\\slash", "\\'", "tab\there", "é ü 😀", "%s %(x)s", "''"]
AWKWARD += ["line\nbreak\r\n", "\\N", "\\t", "", "\b\f\v", "end\\"]


def _rows(job_id: int) -> list[tuple[object, ...]]:
    return [
        (job_id, 1, text, 0, f"s{i}", text, None, "Note", text, 1.5 + i)
        for i, text in enumerate(AWKWARD)
    ]


async def _read(storage: Storage, job_id: int) -> list[tuple[object, ...]]:
    t = test_events
    cols = [t.c[name] for name in TEST_COLUMNS]
    async with storage.engine.connect() as conn:
        result = await conn.execute(
            select(*cols).where(t.c.job_id == job_id).order_by(t.c.sequence)
        )
        return [tuple(r) for r in result.all()]


async def test_awkward_strings_survive_every_quoting_mode(storage: Storage) -> None:
    insert = bulk_insert(storage.engine.dialect, test_events.name, TEST_COLUMNS)
    mysql = storage.engine.dialect.name in ("mysql", "mariadb")
    async with storage.engine.begin() as conn:  # one transaction, committed at the end
        await insert(conn, _rows(1))  # quoted, and kept
        if mysql:
            await conn.exec_driver_sql(
                "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')"
            )
        await insert(conn, _rows(2))  # the same strings, another mode: quoted anew
        if mysql:
            await conn.exec_driver_sql(
                "SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')"
            )
        await insert(conn, _rows(3))  # back: the first mode's kept quotes again
    for job_id in (1, 2, 3):
        assert await _read(storage, job_id) == [tuple(r) for r in _rows(job_id)], job_id


@pytest.mark.parametrize("limit", [0, 40])
async def test_the_kept_quotes_are_bounded(
    storage: Storage, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """Past the bound, the kept quotes start afresh; what is written is the same."""
    from contest.storage import bulk

    monkeypatch.setattr(bulk, "_QUOTE_CACHE_MAX_CHARS", limit)
    insert = bulk_insert(storage.engine.dialect, test_events.name, TEST_COLUMNS)
    async with storage.engine.begin() as conn:
        for job_id in (4, 5, 6):
            await insert(conn, _rows(job_id))
    for job_id in (4, 5, 6):
        assert await _read(storage, job_id) == [tuple(r) for r in _rows(job_id)]


def _wide_rows(job_id: int, n: int) -> list[tuple[object, ...]]:
    # 7,000 characters each (payload and target), so ~100 KB statements hold a dozen rows
    return [
        (job_id, 1, "wide", 0, "s", f"t{i}", "T" * 3_500 + str(i), "Note", "p" * 3_500, 0.5 + i)
        for i in range(n)
    ]


async def test_a_batch_over_many_statements_keeps_its_order(storage: Storage) -> None:
    """On MariaDB a batch is sent as several statements, each built while the server runs the
    one before; the rows land in the list's order, all of them."""
    rows = _wide_rows(7, 300)  # ~2 MB: twenty statements on MariaDB
    insert = bulk_insert(storage.engine.dialect, test_events.name, TEST_COLUMNS)
    async with storage.engine.begin() as conn:
        await insert(conn, rows)
    assert await _read(storage, 7) == [tuple(r) for r in rows]


async def test_a_row_refused_in_a_later_statement_takes_the_whole_batch_back(
    storage: Storage,
) -> None:
    """A row the database refuses (here a NULL job ID) in the batch's last statement fails the
    insert; the transaction rolled back keeps none of the statements sent before it."""
    rows = _wide_rows(8, 200)
    rows.append((None, *rows[-1][1:]))
    insert = bulk_insert(storage.engine.dialect, test_events.name, TEST_COLUMNS)
    with pytest.raises(Exception):  # noqa: B017 -- each driver raises its own IntegrityError
        async with storage.engine.begin() as conn:
            await insert(conn, rows)
    assert await _read(storage, 8) == []
    async with storage.engine.begin() as conn:  # a new connection works as before
        await insert(conn, rows[:-1])
    assert len(await _read(storage, 8)) == 200


async def test_times_and_headers_of_every_kind_survive(storage: Storage) -> None:
    """A row's time is written out apart from the other values on MariaDB, and a step's header
    (job, run, test, attempt, label) is written once per distinct header: times outside the
    usual range (which ``repr`` gives with an exponent), headers coming back after others, a
    target ID or payload left out, all come back as they went in."""
    times = [1796701636.9321508, 0.0, -3.5, 1e-5, 1.5e-4, 1e16, 1e20, 5e-324, 123.0]
    labels = ["a", "b'c", "a"]  # the first header again after another
    rows = [
        (9, run, "t", attempt, label, None if i % 3 == 0 else f"id{i}", None, "E",
         None if i % 2 else f"p{i}", when)
        for run in (1, 2)
        for attempt in (0, 1)
        for label in labels
        for i, when in enumerate(times)
    ]  # fmt: skip
    insert = bulk_insert(storage.engine.dialect, test_events.name, TEST_COLUMNS, header=5)
    async with storage.engine.begin() as conn:
        await insert(conn, rows)
        await insert(conn, rows[::-1])  # a second batch: its headers' text already made
    assert await _read(storage, 9) == [tuple(r) for r in rows + rows[::-1]]


async def test_columns_left_at_their_default_come_back_as_the_database_fills_them(
    storage: Storage,
) -> None:
    """On MariaDB a batch whose rows all hold a column's default (a first attempt, no
    payload) leaves that column out of its ``INSERT``; every batch comes back as it went in,
    whichever columns it could leave out: both, one, none."""
    insert = bulk_insert(
        storage.engine.dialect, test_events.name, TEST_COLUMNS, header=5, defaults=TEST_DEFAULTS
    )
    base = [(11, 1, "t", 0, f"s{i % 3}", f"id{i}", None, "E", None, 1.5 + i) for i in range(50)]
    batches = [
        base,  # both left out
        [(*r[:3], 2, *r[4:]) for r in base],  # a second attempt: the payload only
        [(*r[:8], '{"a":1}', r[9]) for r in base],  # payloads: the attempt only
        [*base[:-1], (*base[-1][:8], "p", base[-1][9])],  # one payload: the attempt only
        [(*r[:3], 1, *r[4:8], "q", r[9]) for r in base],  # neither
    ]
    async with storage.engine.begin() as conn:
        for batch in batches:
            await insert(conn, batch)
    assert await _read(storage, 11) == [tuple(r) for batch in batches for r in batch]


def test_the_defaults_left_out_are_the_schemas() -> None:
    """What the writer leaves out is what the database fills in (schema.test_events)."""
    for name, value in TEST_DEFAULTS.items():
        column = test_events.c[name]
        if value is None:
            assert column.nullable and column.server_default is None, name
        else:
            assert column.server_default is not None
            assert str(column.server_default.arg) == str(value), name
