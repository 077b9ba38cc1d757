"""Every async step test must leave no task behind (a step that forgets a reader or a timer
task would otherwise go unnoticed)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest


async def _leftover_tasks(grace: float = 0.3) -> set[asyncio.Task[Any]]:
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    deadline = loop.time() + grace
    while True:
        others = {t for t in asyncio.all_tasks() if t is not me and not t.done()}
        if not others or loop.time() >= deadline:
            return others
        await asyncio.sleep(0.005)


@pytest.fixture(autouse=True)
async def _no_task_leaks(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if inspect.iscoroutinefunction(getattr(request.node, "function", None)):
        left = await _leftover_tasks()
        assert not left, f"leaked tasks: {left}"
