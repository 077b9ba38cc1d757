"""TerminalExpect on a pseudo-terminal standing in for the serial line: the step opens the pty's
slave end as its port, the test plays the device on the master end."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from stepkit import refused, run_steps, validate, verdicts

from contest.errors import Cancelled
from contest.plugins.teststeps import terminalexpect as te_module
from contest.plugins.teststeps._expect import RollingBuffer, StreamClosed
from contest.plugins.teststeps.terminalexpect import TerminalExpect


@dataclass
class Device:
    """The far end of the line: what it prints reaches the step, what the step types is read
    here."""

    master: int
    port: str

    def hang_up(self) -> None:
        os.close(self.master)
        self.master = -1  # so that the fixture does not close a reused fd number

    def print(self, text: str) -> None:
        os.write(self.master, text.encode())

    def print_later(self, delay: float, text: str) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, self.print, text)

    async def read_until(self, end: bytes, timeout: float = 3.0) -> bytes:
        loop = asyncio.get_running_loop()
        got = b""
        deadline = loop.time() + timeout
        while not got.endswith(end):
            try:
                got += os.read(self.master, 1024)
            except BlockingIOError:
                if loop.time() > deadline:
                    raise TimeoutError(got) from None
                await asyncio.sleep(0.01)
        return got


@pytest.fixture
def device() -> Iterator[Device]:
    master, slave = os.openpty()
    os.set_blocking(master, False)
    port = os.ttyname(slave)
    dev = Device(master, port)
    try:
        yield dev
    finally:
        for fd in (dev.master, slave):
            if fd >= 0:
                os.close(fd)


def params(
    device: Device, match: str | list[str], timeout: str = "2s", **extra: list[object]
) -> dict[str, list[object]]:
    matches: list[object] = [match] if isinstance(match, str) else list(match)
    return {
        "port": [device.port],
        "speed": [115200],
        "match": matches,
        "timeout": [timeout],
        **extra,
    }


async def test_a_line_on_the_console_passes_the_target(device: Device) -> None:
    device.print_later(0.3, "coreboot-4.20\nramstage starting...\n")
    out = await run_steps([(TerminalExpect(), "S", params(device, "ramstage starting"))], ["T1"])
    assert out.error is None
    assert verdicts(out) == {"T1": None}


async def test_every_target_sees_the_same_output(device: Device) -> None:
    """One reader for the step: the single line satisfies all ten targets (with a reader per
    target they would race for its bytes)."""
    device.print_later(0.3, "login: ")
    targets = [f"T{i}" for i in range(10)]
    out = await run_steps([(TerminalExpect(), "S", params(device, "login:"))], targets)
    assert verdicts(out) == dict.fromkeys(targets)


async def test_several_matches_are_waited_for_in_order(device: Device) -> None:
    device.print_later(0.1, "Trying boot configuration\n")  # before the first: not enough
    device.print_later(0.3, "ramstage starting\n")
    out = await run_steps(
        [
            (
                TerminalExpect(),
                "S",
                params(device, ["ramstage starting", "Trying boot configuration"], "1s"),
            )
        ],
        ["T1"],
    )
    assert verdicts(out) == {"T1": "timed out after 1s"}

    device.print_later(0.1, "ramstage starting\n")
    device.print_later(0.2, "Trying boot ")
    device.print_later(0.3, "configuration\n")  # a match split across reads
    out = await run_steps(
        [
            (
                TerminalExpect(),
                "S",
                params(device, ["ramstage starting", "Trying boot configuration"], "2s"),
            )
        ],
        ["T1"],
    )
    assert verdicts(out) == {"T1": None}


async def test_send_types_a_line_first(device: Device) -> None:
    async def dut() -> bytes:
        typed = await device.read_until(b"\r")
        device.print("Password: ")
        return typed

    answer = asyncio.ensure_future(dut())
    out = await run_steps(
        [(TerminalExpect(), "S", params(device, "Password:", send=["{{ ToLower .ID }}"]))],
        ["ROOT"],
    )
    assert verdicts(out) == {"ROOT": None}
    assert await answer == b"root\r"


async def test_output_before_the_target_arrived_does_not_count(device: Device) -> None:
    device.print("login: \n")
    await asyncio.sleep(0.1)  # the step flushes what the line held before it opened it
    out = await run_steps([(TerminalExpect(), "S", params(device, "login:", "300ms"))], ["T1"])
    assert verdicts(out) == {"T1": "timed out after 300ms"}


async def test_timeout_fails_with_contests_text(device: Device) -> None:
    device.print_later(0.1, "nothing to see\n")
    t0 = time.monotonic()
    out = await run_steps(
        [(TerminalExpect(), "S", params(device, "login:", "400ms"))], ["T1", "T2"]
    )
    assert 0.35 < time.monotonic() - t0 < 2
    assert verdicts(out) == {"T1": "timed out after 400ms", "T2": "timed out after 400ms"}


async def test_cancel_ends_the_wait_and_passes_nothing(device: Device) -> None:
    t0 = time.monotonic()
    out = await run_steps(
        [(TerminalExpect(), "S", params(device, "login:", "30s"))], ["T1"], cancel_after=0.3
    )
    assert time.monotonic() - t0 < 1.5
    assert isinstance(out.error, Cancelled)
    assert verdicts(out) == {}  # ConTest reported a cancelled wait as a pass


async def test_a_port_that_cannot_be_opened_fails_every_target() -> None:
    out = await run_steps(
        [
            (
                TerminalExpect(),
                "S",
                {"port": ["/dev/no-such-tty"], "speed": [9600], "match": ["x"], "timeout": ["1s"]},
            )
        ],
        ["T1", "T2"],
    )
    assert out.error is None
    result = verdicts(out)
    assert set(result) == {"T1", "T2"}
    assert all(r.startswith("cannot open serial port /dev/no-such-tty: ") for r in result.values())


async def test_a_line_that_goes_away_fails_the_waiting_targets(device: Device) -> None:
    asyncio.get_running_loop().call_later(0.3, device.hang_up)
    t0 = time.monotonic()
    out = await run_steps([(TerminalExpect(), "S", params(device, "login:", "10s"))], ["T1"])
    assert time.monotonic() - t0 < 2
    assert "stream closed before a match" in verdicts(out)["T1"]


async def test_parameters_are_checked_at_submission(device: Device) -> None:
    step = TerminalExpect()
    await validate(step, params(device, ["a", "b"], "1m", send=["{{ .ID }}"]))
    assert (step.speed, step.matches, step.timeout) == (115200, [b"a", b"b"], 60.0)

    async def msg(**changes: list[object]) -> str:
        return await refused(TerminalExpect(), {**params(device, "x"), **changes})

    assert await msg(port=[]) == "port: missing; it is required"
    assert await msg(speed=["fast"]) == 'speed[0]: expected an integer, got "fast"'
    assert await msg(speed=[0]) == "speed[0]: must be at least 1, got 0"
    assert await msg(match=[]) == "match: missing; it is required"
    assert await msg(match=[""]) == "match: must not be empty"
    assert await msg(match=["x" * 4097]) == "match: longer than 4096 bytes"
    assert await msg(timeout=[]) == "timeout: missing; it is required"
    assert await msg(timeout=["soon"]) == (
        'timeout[0]: expected a duration such as "30s" or "1m30s", got "soon"'
    )
    assert await msg(timeout=["0s"]) == "timeout: must be positive, got 0s"
    assert await msg(send=["{{ .ID "]) == (
        "send[0]: not a valid template: unclosed action (line 1, column 8)"
    )
    assert await msg(send=["a", "b"]) == "send: takes one value, got 2"


def test_load() -> None:
    assert te_module.load() == ("TerminalExpect", TerminalExpect, ())
    assert TerminalExpect.__doc__ is not None


# --- the rolling buffer on its own ----------------------------------------------------------------


async def test_rolling_buffer_matches_from_each_cursor_and_forgets_old_bytes() -> None:
    buf = RollingBuffer(size=16)
    early = buf.mark()
    buf.feed(b"abc login")
    late = buf.mark()
    assert buf.find(b"login", early) is not None
    assert buf.find(b"login", late) is None
    waiter = asyncio.ensure_future(buf.expect(b"prompt>", late))
    buf.feed(b" pro")
    await asyncio.sleep(0)
    assert not waiter.done()
    buf.feed(b"mpt> ")
    m = await waiter
    assert (m.start, m.end, m.data) == (9 + 1, 9 + 8, b"prompt>")
    buf.feed(b"x" * 40)
    assert buf.start == buf.end - 16  # only the last 16 bytes kept
    import re

    assert (await buf.expect(re.compile(rb"x{3}"), 0)).data == b"xxx"
    buf.close(OSError(5, "Input/output error"))
    with pytest.raises(StreamClosed, match="Input/output error"):
        await buf.expect(b"never", buf.mark())
