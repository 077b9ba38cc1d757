"""Storage URLs: what the server's ``--dbURI`` may say, turned into an async SQLAlchemy URL.

Accepted forms:

* ``sqlite:///PATH`` (the embedded default; ``sqlite:///:memory:`` is refused because every
  connection would see a different, empty database);
* ``mysql://...``, ``mariadb://...``, ``postgresql://...`` / ``postgres://...`` without a
  driver: ours is used (aiomysql, psycopg in async mode);
* ``DIALECT+DRIVER://...`` with an async driver as is, or a sync driver swapped for its async
  sibling (``mysql+pymysql`` -> ``mysql+aiomysql``, ``postgresql+psycopg2`` ->
  ``postgresql+psycopg``), because the whole storage runs on one AsyncEngine;
* ConTest's Go MySQL DSN, ``user:pass@tcp(host:port)/db?params`` (also ``unix(/sock)`` and
  ``user@/db``), so existing server command lines keep working.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

log = logging.getLogger(__name__)

#: async driver per dialect, used when a URL names none
DEFAULT_DRIVERS = {
    "sqlite": "aiosqlite",
    "mysql": "aiomysql",
    "mariadb": "aiomysql",
    "postgresql": "psycopg",
}
#: async drivers we accept as given
ASYNC_DRIVERS = {
    "sqlite": {"aiosqlite"},
    "mysql": {"aiomysql"},
    "mariadb": {"aiomysql"},
    "postgresql": {"psycopg", "psycopg_async"},
}
#: sync drivers we replace by the async driver of the same dialect
SYNC_TO_ASYNC = {
    ("sqlite", "pysqlite"): "aiosqlite",
    ("mysql", "pymysql"): "aiomysql",
    ("mysql", "mysqldb"): "aiomysql",
    ("mysql", "mysqlconnector"): "aiomysql",
    ("mariadb", "pymysql"): "aiomysql",
    ("mariadb", "mysqldb"): "aiomysql",
    ("mariadb", "mariadbconnector"): "aiomysql",
    ("postgresql", "psycopg2"): "psycopg",
    ("postgresql", "pg8000"): "psycopg",
    ("postgresql", "asyncpg"): "psycopg",
}

# user[:password]@proto(addr)/db?params  -- password may hold '@' (the last '@' splits)
_GO_DSN = re.compile(
    r"^(?:(?P<user>[^:@/]*)(?::(?P<password>.*))?@)?"
    r"(?:(?P<proto>[a-z0-9]+)(?:\((?P<addr>[^)]*)\))?)?"
    r"/(?P<db>[^?/]*)(?:\?(?P<params>.*))?$"
)
# Go driver parameters that mean nothing to aiomysql (we store unix seconds, not DATETIMEs)
_GO_IGNORED = {
    "parsetime",
    "loc",
    "allownativepasswords",
    "multistatements",
    "interpolateparams",
    "clientfoundrows",
    "columnswithalias",
    "rejectreadonly",
    "maxallowedpacket",
    "allowoldpasswords",
    "allowcleartextpasswords",
    "checkconnliveness",
}
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class StorageURLError(ValueError):
    """The storage URL cannot be used."""


def is_go_dsn(text: str) -> bool:
    """True for ConTest's Go MySQL DSN (no ``scheme://``, but ``@proto(`` or ``@/``)."""
    return "://" not in text and _GO_DSN.match(text) is not None and "@" in text


def _go_duration_seconds(value: str) -> float:
    total, pos = 0.0, 0
    for m in _GO_DURATION.finditer(value):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(value) or not value:
        raise StorageURLError(f"invalid duration {value!r} in MySQL DSN")
    return total


def from_go_dsn(dsn: str) -> URL:
    """Translate ``user:pass@tcp(host:port)/db?params`` into a ``mysql+aiomysql`` URL."""
    m = _GO_DSN.match(dsn)
    if m is None:
        raise StorageURLError(f"not a MySQL DSN: {dsn!r}")
    query: dict[str, str] = {}
    host: str | None = "127.0.0.1"
    port: int | None = 3306
    proto, addr = m.group("proto") or "tcp", m.group("addr") or ""
    if proto == "tcp":
        if addr:
            h, sep, p = addr.rpartition(":") if not addr.endswith("]") else (addr, "", "")
            if sep:
                host, port = h.strip("[]") or host, int(p)
            else:
                host = addr.strip("[]")
    elif proto == "unix":
        host, port = "localhost", None
        query["unix_socket"] = addr or "/tmp/mysql.sock"
    else:
        raise StorageURLError(f"unsupported MySQL DSN protocol {proto!r}")
    for key, value in parse_qsl(m.group("params") or "", keep_blank_values=True):
        low = key.lower()
        if low == "charset":
            query["charset"] = value.split(",")[0]
        elif low == "timeout":
            query["connect_timeout"] = str(max(1, round(_go_duration_seconds(value))))
        elif low not in _GO_IGNORED:
            log.warning("MySQL DSN parameter %s=%s ignored", key, value)
    return URL.create(
        "mysql+aiomysql",
        username=m.group("user") or None,
        password=m.group("password"),
        host=host,
        port=port,
        database=m.group("db") or None,
        query=query,
    )


def to_async_url(text: str | URL) -> URL:
    """Parse a storage URL (or Go DSN) into the async SQLAlchemy URL the engine connects with."""
    if isinstance(text, str):
        if is_go_dsn(text):
            return from_go_dsn(text)
        try:
            url = make_url(text)
        except ArgumentError as e:
            raise StorageURLError(f"invalid storage URL {text!r}: {e}") from None
    else:
        url = text
    dialect, _, driver = url.drivername.partition("+")
    if dialect == "postgres":
        dialect = "postgresql"
    if dialect not in DEFAULT_DRIVERS:
        raise StorageURLError(
            f"unsupported database {dialect!r}: use sqlite, mysql, mariadb or postgresql"
        )
    if not driver:
        driver = DEFAULT_DRIVERS[dialect]
    elif (dialect, driver) in SYNC_TO_ASYNC:
        driver = SYNC_TO_ASYNC[(dialect, driver)]
    elif driver not in ASYNC_DRIVERS[dialect]:
        raise StorageURLError(f"unsupported driver {driver!r} for {dialect}")
    if driver == "psycopg_async":
        driver = "psycopg"
    if dialect == "sqlite" and (url.database in (None, "", ":memory:")):
        raise StorageURLError("SQLite storage needs a file: sqlite:///PATH")
    return url.set(drivername=f"{dialect}+{driver}")


def backend_name(url: URL) -> str:
    """``sqlite``, ``mysql`` (also for MariaDB URLs) or ``postgresql``."""
    dialect = url.get_backend_name()
    return "mysql" if dialect == "mariadb" else dialect


def redact(url: URL) -> str:
    """The URL as text with the password hidden, for logs and errors."""
    return url.render_as_string(hide_password=True)
