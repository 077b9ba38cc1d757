"""The ``api`` fixture: the real ASGI app over a real job manager on a temporary SQLite
database (with the DB target locker, as ``contest serve`` runs it), driven through httpx's ASGI
transport; ``any_api`` is the same on each database (SQLite, MariaDB, PostgreSQL: one database
per kind for the session, emptied for each test). Helpers are in ``serverkit.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from serverkit import SERVER_ID, ApiEnv

from contest.job.manager import JobManager
from contest.server import create_app
from contest.server.lifecycle import make_locker
from contest.storage import Storage, open_storage
from contest.storage.reader import READ_THREADS
from contest.testing.databases import (
    KINDS,
    DatabaseUnavailable,
    SessionDatabases,
    open_empty_storage,
)


@asynccontextmanager
async def _api_env(store: Storage) -> AsyncIterator[ApiEnv]:
    locker = make_locker("auto", store)
    jm = JobManager(store, locker, server_id=SERVER_ID, shutdown_timeout=5.0)
    await jm.start(resume_jobs=False)
    app = create_app(jm, SERVER_ID, process_timeout=5.0)
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://contest.test")
    try:
        yield ApiEnv(client, jm, store, app)
    finally:
        await client.aclose()
        jm.cancel_all()
        await jm.wait_all(10.0)
        await jm.close()
        await locker.close()
        await store.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    # the API's reads in threads of their own, as contest serve makes them (lifecycle.py)
    store = await open_storage(f"sqlite:///{tmp_path / 'server.db'}", read_threads=READ_THREADS)
    async with _api_env(store) as env:
        yield env


@pytest.fixture(scope="session")
def server_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionDatabases]:
    dbs = SessionDatabases(tmp_path_factory.mktemp("server-db"))
    yield dbs
    dbs.drop_all()


@pytest.fixture(params=KINDS)
async def any_api(
    request: pytest.FixtureRequest, server_databases: SessionDatabases
) -> AsyncIterator[ApiEnv]:
    try:
        url = server_databases.url(request.param)
    except DatabaseUnavailable as e:
        pytest.fail(f"{e}: the tests need this server running (see .ci/run)")
    async with _api_env(await open_empty_storage(url, read_threads=READ_THREADS)) as env:
        yield env
