"""Checks for the whole suite: the test-only plugin distribution must be installed.

Descriptors in the tests name the fixture steps (``Noop``, ``Crash``, ``SlowEcho``...) and the
``TargetListWithState`` target manager, which a normal install of contest-py does not register;
``tests/fixture-plugins`` is a distribution that does (``.ci/run`` installs it).
"""

from __future__ import annotations

import importlib.metadata

import pytest

FIXTURES = "contest-py-test-fixtures"


def pytest_configure(config: pytest.Config) -> None:
    try:
        importlib.metadata.distribution(FIXTURES)
    except importlib.metadata.PackageNotFoundError:
        raise pytest.UsageError(
            f"the test-only plugin distribution {FIXTURES} is not installed; run "
            "`pip install --no-build-isolation --no-deps -e tests/fixture-plugins`"
        ) from None
