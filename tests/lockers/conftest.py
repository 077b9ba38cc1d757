"""Lock stores for the locker tests: one throw-away database per kind for the whole session.

Each conformance case empties ``target_locks`` instead of creating a database, which keeps the
folder fast; the database is dropped at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contest.locking import TargetLocker
from contest.plugins.targetlockers.dblocker import DBLocker, new
from contest.testing.databases import Kind, server_available, temporary_database
from contest.testing.lockers import FakeClock, LockerBackend


class DBBackend(LockerBackend):
    """Every ``open`` is a separate DBLocker with its own engine, like separate servers."""

    def __init__(self, url: str, batch_size: int = 3) -> None:
        self.url = url
        self.batch_size = batch_size  # small, so that multi-statement batching is exercised
        self._clock = FakeClock()
        self._first: DBLocker | None = None

    def make(self) -> DBLocker:
        return new(url=self.url, clock=self._clock, batch_size=self.batch_size)

    async def start(self, clock: FakeClock) -> None:
        self._clock = clock
        self._first = self.make()
        await self._first.create_table()
        await self._first.reset_all_locks()

    async def open(self) -> TargetLocker:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return self.make()


def _database(kind: Kind, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not server_available(kind):
        pytest.fail(f"no {kind} server: the tests need it running (see .ci/run)")
    with temporary_database(kind, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _database("sqlite", tmp_path_factory)


@pytest.fixture(scope="session")
def mariadb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _database("mariadb", tmp_path_factory)


@pytest.fixture(scope="session")
def postgresql_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _database("postgresql", tmp_path_factory)


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of each kind of test database in turn."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def db_backend(db_url: str) -> DBBackend:
    """A conformance-suite backend on each kind of test database in turn."""
    return DBBackend(db_url)
