"""Storage URLs: driver defaults, sync-to-async driver swap, ConTest's Go MySQL DSN."""

from __future__ import annotations

import pytest

from contest.storage.urls import StorageURLError, backend_name, redact, to_async_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///var/lib/contest.db", "sqlite+aiosqlite:///var/lib/contest.db"),
        ("sqlite+pysqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("mysql://u:p@db:3306/contest", "mysql+aiomysql://u:***@db:3306/contest"),
        ("mysql+pymysql://u@db/contest", "mysql+aiomysql://u@db/contest"),
        ("mysql+aiomysql://u@db/contest", "mysql+aiomysql://u@db/contest"),
        ("mariadb://u@db/contest", "mariadb+aiomysql://u@db/contest"),
        ("postgresql://u@db/contest", "postgresql+psycopg://u@db/contest"),
        ("postgres://u@db/contest", "postgresql+psycopg://u@db/contest"),
        ("postgresql+psycopg2://u@db/contest", "postgresql+psycopg://u@db/contest"),
        ("postgresql+psycopg://u@db/contest", "postgresql+psycopg://u@db/contest"),
    ],
)
def test_url_forms(given: str, expected: str) -> None:
    assert redact(to_async_url(given)) == expected


@pytest.mark.parametrize(
    ("dsn", "expected", "query"),
    [
        (
            "contest:contest@tcp(dbstorage:3306)/contest_integ?parseTime=true",
            "mysql+aiomysql://contest:contest@dbstorage:3306/contest_integ",
            {},
        ),
        ("root@tcp(localhost)/db", "mysql+aiomysql://root@localhost:3306/db", {}),
        ("root@/db", "mysql+aiomysql://root@127.0.0.1:3306/db", {}),
        (
            "u:p@ss:w@tcp([::1]:3307)/db?timeout=1500ms&charset=utf8mb4,utf8",
            "mysql+aiomysql://u:p%40ss%3Aw@[::1]:3307/db",
            {"charset": "utf8mb4", "connect_timeout": "2"},
        ),
        (
            "u@unix(/run/mysqld/mysqld.sock)/db",
            "mysql+aiomysql://u@localhost/db",
            {"unix_socket": "/run/mysqld/mysqld.sock"},
        ),
    ],
)
def test_go_dsn(dsn: str, expected: str, query: dict[str, str]) -> None:
    url = to_async_url(dsn)
    assert url.set(query={}).render_as_string(hide_password=False) == expected
    assert dict(url.query) == query
    assert backend_name(url) == "mysql"


@pytest.mark.parametrize(
    "bad",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "oracle://u@h/db",
        "mysql+mysqlfoo://u@h/db",
        "not a url",
        "u@pipe(x)/db",
    ],
)
def test_bad_urls(bad: str) -> None:
    with pytest.raises(StorageURLError):
        to_async_url(bad)
