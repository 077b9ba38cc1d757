"""The shared conformance suite against every built-in locker that keeps locks."""

from __future__ import annotations

import pytest

from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.testing.lockers import CASES, ConformanceCase, LockerBackend, SingleLockerBackend


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_inmemory(case: ConformanceCase) -> None:
    await case.run(SingleLockerBackend(lambda clock: InMemoryLocker(clock=clock)))


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_dblocker(case: ConformanceCase, db_backend: LockerBackend) -> None:
    await case.run(db_backend)
