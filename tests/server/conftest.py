"""The ``api`` fixture: the real ASGI app over a real job manager on a temporary SQLite
database (with the DB target locker, as ``contest serve`` runs it), driven through httpx's ASGI
transport. Helpers are in ``serverkit.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from serverkit import SERVER_ID, ApiEnv

from contest.job.manager import JobManager
from contest.server import create_app
from contest.server.lifecycle import make_locker
from contest.storage import open_storage


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    store = await open_storage(f"sqlite:///{tmp_path / 'server.db'}")
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
