"""The SSH steps pass the step conformance suite (``contest.testing.conformance``) against the
real OpenSSH servers of the farm: one server per target, a remote ``sleep`` per target, killed
for real on cancel."""

from __future__ import annotations

import pytest
from sshtestlib import ssh_options, sshcmd_params, target_for

from contest.plugins.teststeps.exec import Exec
from contest.plugins.teststeps.sshcmd import SSHCmd
from contest.testing.conformance import CASES, StepCase, StepUnderTest
from contest.testing.sshd import SshdFarm


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_sshcmd(case: StepCase, farm: SshdFarm) -> None:
    subject = StepUnderTest(
        SSHCmd,
        sshcmd_params(farm, "sleep", "0.5"),
        targets=[target_for(s) for s in farm.servers],
    )
    await case.run(subject)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("detached", [False, True], ids=["attached", "detached"])
async def test_exec_over_ssh(case: StepCase, farm: SshdFarm, detached: bool) -> None:
    options = ssh_options(farm, **({"async": {"poll_interval": "100ms"}} if detached else {}))
    bag = {
        "bin": {"path": "/bin/sleep", "args": ["0.5"]},
        "transport": {"proto": "ssh", "options": options},
    }
    subject = StepUnderTest(Exec, {"bag": [bag]}, targets=[target_for(s) for s in farm.servers])
    await case.run(subject)
