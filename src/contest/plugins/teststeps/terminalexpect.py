"""``TerminalExpect``: waits, per target, for a text on a serial console.

Parameters: see :attr:`TerminalExpect.parameters`. Several ``match`` values are waited for in
order (each after the previous match), so one step can follow a whole boot
(``["ramstage starting", "Trying boot configuration", "login:"]``). ``send`` is typed first,
followed by a carriage return (what the Enter key of a terminal sends); the match window starts
just before it. The target fails with ``timed out after <d>`` when ``timeout`` passes.

The step opens the port once, when its first target arrives (raw mode, at ``speed``), and one
reader feeds everything the console prints into a shared rolling buffer (the last 64 KiB).
Each target matches from its own mark — the moment it entered the step — so every target sees
all the output after its arrival; matching is on the byte stream, so a prompt without a newline
matches as soon as it is printed. ConTest ran one line reader per target on one shared hook, so
several targets raced for the lines, and the hook was closed when the first target finished.
Input the line held before the port was opened is flushed, and the port is closed when the
step ends, so output printed while no step has the port open is not seen.
If the port cannot be opened, or the line closes, the targets fail with the reason.

Events: none. Pause: not supported; waits in flight run to their match or timeout.
Cancellation ends every wait at once, and the targets are not reported (ConTest reported them
as passed).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from typing import Any

import serial  # type: ignore[import-untyped]

from contest.golang.time import format_duration
from contest.plugins.teststeps._expect import RollingBuffer, StreamClosed
from contest.teststep import (
    EventEmitter,
    Kind,
    Param,
    Parameter,
    ParameterError,
    StepChannels,
    StepContext,
    StepParameters,
    Target,
    TestStep,
    for_each_target,
)

NAME = "TerminalExpect"
EVENTS: tuple[str, ...] = ()
ENTER = b"\r"
READ_SIZE = 4096


MAX_MATCH = 4096  # bytes: the rolling buffer must hold a match whole
PORT = Parameter("port", required=True, doc="the serial device, e.g. /dev/ttyUSB0")
SPEED = Parameter("speed", Kind.INTEGER, required=True, minimum=1, doc="the baud rate")
MATCH = Parameter(
    "match", many=True, required=True, doc="the texts to wait for, in order (plain substrings)"
)
TIMEOUT = Parameter(
    "timeout", Kind.DURATION, required=True, doc="how long to wait for all of them (> 0)"
)


class ExpectFailed(Exception):
    """A target fails: its serial port could not be opened, or the expected output did not
    appear before the timeout."""


class SerialConsole:
    """One open serial line: a reader feeding a :class:`RollingBuffer`, and a writer.

    The fd is non-blocking and watched by the event loop (``add_reader``), so no thread sits
    in a blocking read that cancellation could not interrupt.
    """

    def __init__(self, port: str, speed: int, buffer_size: int = 64 * 1024) -> None:
        self.port = port
        self.speed = speed
        self.buffer = RollingBuffer(buffer_size)
        self._serial: Any = None
        self._fd = -1
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        # opening configures the line (termios ioctls): cheap, but a wedged USB adapter can
        # block in the kernel, so not on the event loop
        self._serial = await loop.run_in_executor(None, self._open_blocking)
        self._fd = self._serial.fileno()
        os.set_blocking(self._fd, False)
        loop.add_reader(self._fd, self._on_readable)

    def _open_blocking(self) -> Any:
        return serial.Serial(port=self.port, baudrate=self.speed, timeout=0)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            # EIO: the other end hung up (a pty whose master closed, an unplugged adapter)
            self._stop_reading()
            self.buffer.close(exc)
            return
        if not data:
            self._stop_reading()
            self.buffer.close()
            return
        self.buffer.feed(data)

    def _stop_reading(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._fd)

    async def write(self, data: bytes) -> None:
        """Write all of ``data``, waiting for the line to take it when its buffer is full."""
        loop = asyncio.get_running_loop()
        async with self._write_lock:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self._fd, view)
                except BlockingIOError:
                    n = 0
                except OSError as exc:
                    if exc.errno != errno.EAGAIN:
                        raise
                    n = 0
                view = view[n:]
                if view:
                    ready: asyncio.Future[None] = loop.create_future()
                    loop.add_writer(self._fd, _resolve, ready)
                    try:
                        await ready
                    finally:
                        loop.remove_writer(self._fd)

    def close(self) -> None:
        self._stop_reading()
        self.buffer.close()
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
            self._serial = None
            self._fd = -1


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class TerminalExpect(TestStep):
    """Waits per target for texts on a serial console, optionally typing a line first.

    One reader per step feeds a buffer all its targets match against (see the module text)."""

    name = NAME
    events = EVENTS
    parameters = (
        PORT,
        SPEED,
        MATCH,
        TIMEOUT,
        Parameter("send", templated=True, doc="a line to type first, expanded per target"),
    )

    def __init__(self) -> None:
        self.port = ""
        self.speed = 0
        self.matches: list[bytes] = []
        self.timeout = 0.0
        self.send: Param | None = None

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        self.port = PORT.read(params)
        self.speed = SPEED.read(params)
        self.matches = [m.encode() for m in MATCH.read(params)]
        if any(len(m) > MAX_MATCH for m in self.matches):
            raise ParameterError(f"match: longer than {MAX_MATCH} bytes")
        self.timeout = TIMEOUT.read(params)
        if self.timeout <= 0:
            raise ParameterError(f"timeout: must be positive, got {params.get_one('timeout')}")
        sends = params.get("send")
        self.send = sends[0] if sends else None

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        console = SerialConsole(self.port, self.speed)
        open_error: str | None = None
        try:
            await console.open()
        except (OSError, ValueError, serial.SerialException) as exc:
            open_error = f"cannot open serial port {self.port}: {exc}"
            ctx.log.error("%s", open_error)
        try:

            async def one(ctx: StepContext, target: Target) -> None:
                if open_error is not None:
                    raise ExpectFailed(open_error)
                await self._expect(ctx, console, target)

            await for_each_target(ctx, ch, one)
        finally:
            console.close()

    async def _expect(self, ctx: StepContext, console: SerialConsole, target: Target) -> None:
        since = console.buffer.mark()
        line = None
        if self.send is not None:
            line = self.send.expand(target)  # ParameterError fails the target, with its text
        waiter = asyncio.ensure_future(self._expect_all(console, since, line))
        timer = asyncio.ensure_future(ctx.sleep(self.timeout))  # ends on cancel, not on pause
        try:
            await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
            if waiter.done():
                try:
                    waiter.result()
                except StreamClosed as exc:
                    raise ExpectFailed(f"{self.port}: {exc}") from exc
                ctx.log.info("target %s: %s: found %s", target.id, self.port, self.matches)
                return
            timer.result()  # raises Cancelled
            seen = console.buffer.text(since)[-200:]
            ctx.log.info("target %s: %s: timed out; last output: %r", target.id, self.port, seen)
            raise ExpectFailed(f"timed out after {format_duration(self.timeout)}")
        finally:
            timer.cancel()
            if not waiter.done():
                waiter.cancel()
                await asyncio.gather(waiter, return_exceptions=True)

    async def _expect_all(self, console: SerialConsole, since: int, line: str | None) -> None:
        if line is not None:
            await console.write(line.encode() + ENTER)
        for pattern in self.matches:
            found = await console.buffer.expect(pattern, since)
            since = found.end


def load() -> tuple[str, Any, tuple[str, ...]]:
    return NAME, TerminalExpect, EVENTS
