"""Core conformance tests: every async test must leave no task behind (ConTest's goroutine-leak
check, ``tests/common/goroutine_leak_check``)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import pytest
from core_kit import assert_no_task_leaks


@pytest.fixture(autouse=True)
async def _no_task_leaks(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if inspect.iscoroutinefunction(getattr(request.node, "function", None)):
        await assert_no_task_leaks()
