"""Every built-in step passes the step conformance suite (``contest.testing.conformance``), with
real processes, a real port and a pseudo-terminal for the serial console. The SSH steps pass it
against real sshd servers in tests/ssh/test_conformance_ssh.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator

import pytest

from contest.plugins.teststeps.cmd import Cmd
from contest.plugins.teststeps.echo import Echo
from contest.plugins.teststeps.example import Example
from contest.plugins.teststeps.exec import Exec
from contest.plugins.teststeps.gathercmd import GatherCmd
from contest.plugins.teststeps.randecho import RandEcho
from contest.plugins.teststeps.sleep import Sleep
from contest.plugins.teststeps.terminalexpect import TerminalExpect
from contest.plugins.teststeps.variables import Variables
from contest.plugins.teststeps.waitport import WaitPort
from contest.testing.conformance import CASES, StepCase, StepUnderTest

SUBJECTS = {
    "Cmd": StepUnderTest(Cmd, {"executable": ["sleep"], "args": ["0.5"]}),
    "GatherCmd": StepUnderTest(GatherCmd, {"binary": ["sleep"], "args": ["0.5"]}),
    "Echo": StepUnderTest(Echo, {"text": ["hi {{ .ID }}"]}),
    "RandEcho": StepUnderTest(RandEcho, {"text": ["heads or tails"]}),
    "Example": StepUnderTest(Example, {"FailPct": [50]}),
    "Sleep": StepUnderTest(Sleep, {"duration": ["500ms"]}),
    "variables": StepUnderTest(Variables, {"answer": [42], "where": [{"lab": "B12"}]}),
    "Exec (local)": StepUnderTest(
        Exec,
        {
            "bag": [
                {"bin": {"path": "/bin/sleep", "args": ["0.5"]}, "transport": {"proto": "local"}}
            ]
        },
    ),
}


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("name", sorted(SUBJECTS))
async def test_builtin_step(name: str, case: StepCase) -> None:
    # local execution: allowed, as contest run allows it (the default host policy)
    await case.run(SUBJECTS[name])


@contextlib.asynccontextmanager
async def closed_port() -> AsyncIterator[int]:
    """A port nothing listens on (bound, never listening, so no one else takes it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_waitport(case: StepCase) -> None:
    # the port never opens: every target waits out its timeout and fails, which is its outcome
    async with closed_port() as port:
        subject = StepUnderTest(
            WaitPort,
            {
                "target": ["127.0.0.1"],
                "port": [port],
                "protocol": ["tcp"],
                "timeout": ["1s"],
                "check_interval": ["50ms"],
            },
        )
        await case.run(subject)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_terminalexpect(case: StepCase) -> None:
    """The console prints the awaited text every half second: each target, which matches from
    the moment it came in, passes on the next one."""
    master, slave = os.openpty()
    os.set_blocking(master, False)

    async def console() -> None:
        while True:
            await asyncio.sleep(0.5)
            with contextlib.suppress(OSError):
                os.write(master, b"login: \r\n")

    printer = asyncio.ensure_future(console())
    try:
        subject = StepUnderTest(
            TerminalExpect,
            {
                "port": [os.ttyname(slave)],
                "speed": [115200],
                "match": ["login:"],
                "timeout": ["5s"],
            },
        )
        await case.run(subject)
    finally:
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer
        os.close(master)
        os.close(slave)
