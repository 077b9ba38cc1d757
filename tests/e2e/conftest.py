"""End-to-end fixtures: a real ``contest serve`` process (SQLite in the test's folder unless a
test asks for another database) and the real ``contestcli``. See ``e2ekit.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from e2ekit import ServerProcess, fresh_database

if TYPE_CHECKING:
    from playwright.sync_api import Playwright


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[ServerProcess]]:
    """Make servers with ``server_factory(folder, db_url, *args)``; all are killed at the end."""
    made: list[ServerProcess] = []

    class Tracked(ServerProcess):
        def launch(self) -> None:
            if self not in made:
                made.append(self)
            super().launch()

    yield Tracked
    for server in made:
        server.kill()


@pytest.fixture(params=["postgresql", "mariadb"])
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on the local PostgreSQL, then MariaDB, server, for several servers to
    share; dropped afterwards. Per test: the tests assert the list of live servers and the
    lease rows, which another test's servers (killed, frozen) would leave behind."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def pg_db(tmp_path: Path) -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped afterwards."""
    with fresh_database("postgresql", tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for a whole module (its tests must not depend on each other's jobs)."""
    folder = tmp_path_factory.mktemp("e2e")
    server = ServerProcess(folder, f"sqlite:///{folder / 'contest.db'}").start()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            server.kill()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright, for a module's browser (see ``contest.testing.browser.launch``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw
