"""The shared conformance suite against every built-in locker that keeps locks."""

from __future__ import annotations

import pytest
from conftest import DBBackend

from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.testing.lockers import CASES, ConformanceCase, SingleLockerBackend


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_inmemory(case: ConformanceCase) -> None:
    await case.run(SingleLockerBackend(lambda clock: InMemoryLocker(clock=clock)))


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_dblocker(case: ConformanceCase, db_url: str) -> None:
    await case.run(DBBackend(db_url))
