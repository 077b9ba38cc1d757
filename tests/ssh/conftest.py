"""Real OpenSSH servers for the SSH step tests, started once per session on loopback addresses.

The servers run on this machine as the user running the tests, so a "remote" command is a local
process: a test checks that a cancelled step left nothing behind (``sshtestlib.wait_gone``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sshtestlib import PASSWORD

from contest.testing.sshd import SshdFarm, find_sshd, password_login_supported


def _need_sshd() -> None:
    if find_sshd() is None:
        pytest.fail("sshd not installed (apt-get install openssh-server; .ci/run does)")


@pytest.fixture(scope="session")
def farm50() -> Iterator[SshdFarm]:
    """Fifty servers, 127.0.0.2-51: one per target."""
    _need_sshd()
    with SshdFarm(50) as f:
        yield f


@pytest.fixture(scope="session")
def farm() -> Iterator[SshdFarm]:
    """Three servers: 127.0.0.2-4."""
    _need_sshd()
    with SshdFarm(3) as f:
        yield f


@pytest.fixture(scope="session")
def pw_farm() -> Iterator[SshdFarm]:
    """One server that also takes the password ``PASSWORD`` for the current user."""
    _need_sshd()
    if not password_login_supported():
        pytest.fail("password logins need root and mount namespaces (unshare)")
    with SshdFarm(1, first_host=60, password=PASSWORD) as f:
        yield f
