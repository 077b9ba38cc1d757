"""Storage fixtures: ``db_url`` over SQLite, MariaDB and PostgreSQL, ``storage`` on it.

Each session creates one database per kind (migrated once) and drops it at the end; each test
starts from empty tables (``Storage.reset``, and ``target_locks`` too), which keeps the folder
fast. A server that is down skips its tests, except on CI (``CI`` set), where it fails them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from contest.storage import Storage
from contest.testing.databases import (
    KINDS,
    DatabaseUnavailable,
    Kind,
    SessionDatabases,
    TcpProxy,
    open_empty_storage,
)

SERVER_KINDS: tuple[Kind, ...] = ("mariadb", "postgresql")


@pytest.fixture(scope="session")
def session_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionDatabases]:
    dbs = SessionDatabases(tmp_path_factory.mktemp("storage-db"))
    yield dbs
    dbs.drop_all()


def _url(dbs: SessionDatabases, kind: Kind) -> str:
    try:
        return dbs.url(kind)
    except DatabaseUnavailable as e:
        pytest.fail(f"{e}: the tests need this server running (see .ci/run)")


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest, session_databases: SessionDatabases) -> str:
    """The session's database of each kind (tables created, maybe not empty)."""
    return _url(session_databases, request.param)


@pytest.fixture(params=SERVER_KINDS)
def server_db_url(request: pytest.FixtureRequest, session_databases: SessionDatabases) -> str:
    """Like ``db_url``, for MariaDB and PostgreSQL only (connection-loss tests)."""
    return _url(session_databases, request.param)


@pytest.fixture
async def storage(db_url: str) -> AsyncIterator[Storage]:
    s = await open_empty_storage(db_url)
    yield s
    await s.close()


@pytest.fixture
async def proxy(server_db_url: str) -> AsyncIterator[TcpProxy]:
    """A TCP proxy in front of the server database, to drop its connections."""
    p = TcpProxy.for_url(server_db_url)
    await p.start()
    yield p
    await p.close()
