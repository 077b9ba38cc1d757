"""``waitport`` (LB): waits, per target, until a port accepts connections.

Parameters: see :attr:`WaitPort.parameters`. Without ``target``, the target's FQDN, PrimaryIPv4
and PrimaryIPv6 are tried, in that order, in every round. A UDP "connection" needs no answer, so
for ``udp*`` this only checks that the name resolves, as in ConTest. ``check_interval`` is
honoured (ConTest checked it and then forgot it, and dialled in a tight loop).

Events, per target: ``waitportStart`` with the settings
``{"Address", "Port", "Protocol", "CheckInterval", "Timeout"}`` (durations in integer
nanoseconds, as ConTest), then ``waitportEnd`` (no payload) whatever the outcome — except on a
pause, after which the wait goes on. A target that times out fails with
``context deadline exceeded`` (ConTest's text; its retry test relies on it).

Pause: supported. A target waiting when the job pauses saves its absolute deadline (and the
address); on resume it waits only for what is left and does not emit ``waitportStart`` again.
(ConTest restarted the timeout and emitted a second start.) Cancellation interrupts a dial or a
pause between dials at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from contest.golang.time import parse_duration_ns
from contest.teststep import (
    EventEmitter,
    Kind,
    Param,
    Parameter,
    ParameterError,
    Paused,
    StepChannels,
    StepContext,
    StepParameters,
    TargetWithData,
    TestStep,
    for_each_target_with_resume,
)

NAME = "waitport"
EVENT_START = "waitportStart"
EVENT_END = "waitportEnd"
EVENTS = (EVENT_START, EVENT_END)
STATE_VERSION = 1
PROTOCOLS = ("tcp", "tcp4", "tcp6", "udp", "udp4", "udp6")
MAX_PORT = 65535
DEADLINE_EXCEEDED = "context deadline exceeded"

_FAMILIES = {"": socket.AF_UNSPEC, "4": socket.AF_INET, "6": socket.AF_INET6}


class WaitPortFailed(Exception):
    """A target fails: no address to dial, or the port did not answer before the timeout."""


@dataclass(slots=True)
class _Settings:
    target: Param | None
    port: int
    protocol: str
    check_interval_ns: int
    timeout_ns: int


TARGET = Parameter(
    "target",
    templated=True,
    doc="the host to dial, expanded per target (default: its FQDN, then IPv4, then IPv6)",
)
PORT = Parameter("port", Kind.INTEGER, required=True, minimum=1, maximum=MAX_PORT)
PROTOCOL = Parameter("protocol", required=True, choices=PROTOCOLS, doc="any case")
TIMEOUT = Parameter("timeout", Kind.DURATION, required=True, doc="how long to wait in all (> 0)")
CHECK_INTERVAL = Parameter(
    "check_interval", Kind.DURATION, required=True, doc="the pause between rounds of dialling"
)


def _duration_ns(params: StepParameters, name: str) -> int:
    """A positive duration, in integer nanoseconds (the events carry them so, as ConTest's)."""
    text = str(params.get_one(name))
    ns = parse_duration_ns(text)  # the declaration checked the syntax
    if ns <= 0:
        raise ParameterError(f"{name}: must be a positive duration, got '{text}'")
    return ns


def parse_parameters(params: StepParameters) -> _Settings:
    targets = params.get("target")
    return _Settings(
        targets[0] if targets else None,
        PORT.read(params),
        PROTOCOL.read(params).lower(),
        _duration_ns(params, "check_interval"),
        _duration_ns(params, "timeout"),
    )


async def dial(host: str, port: int, protocol: str) -> None:
    """One connection attempt (raises ``OSError`` on failure); closes what it opened."""
    family = _FAMILIES[protocol[3:]]
    if protocol.startswith("tcp"):
        _reader, writer = await asyncio.open_connection(host, port, family=family)
        writer.close()
        with contextlib.suppress(OSError):  # the port answered; how the close went is moot
            await writer.wait_closed()
        return
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=(host, port), family=family
    )
    transport.close()


class WaitPort(TestStep):
    """Waits per target until a TCP/UDP port answers, polling every check_interval."""

    name = NAME
    events = EVENTS
    parameters = (TARGET, PORT, PROTOCOL, TIMEOUT, CHECK_INTERVAL)
    supports_pause = True

    def __init__(self) -> None:
        self.settings: _Settings | None = None

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        self.settings = parse_parameters(params)

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        settings = self.settings if self.settings is not None else parse_parameters(params)
        interval = settings.check_interval_ns / 1e9

        async def one(ctx: StepContext, twd: TargetWithData) -> None:
            target = twd.target
            if twd.data is None:  # a new target (not one resumed after a pause)
                address = ""
                if settings.target is not None:
                    try:
                        address = settings.target.expand(target)
                    except ParameterError as exc:
                        raise WaitPortFailed(
                            f"cannot expand target parameter '{settings.target}': '{exc}'"
                        ) from exc
                await ev.emit(
                    EVENT_START,
                    target,
                    {
                        "Address": address,
                        "Port": settings.port,
                        "Protocol": settings.protocol,
                        "CheckInterval": settings.check_interval_ns,
                        "Timeout": settings.timeout_ns,
                    },
                )
                twd.data = {
                    "D": int((time.time() + settings.timeout_ns / 1e9) * 1000),
                    "A": address,
                }
            address = twd.data["A"]
            deadline = twd.data["D"] / 1000
            hosts = (
                [address]
                if address
                else [h for h in (target.fqdn, target.primary_ipv4, target.primary_ipv6) if h]
            )
            hosts = [h[1:-1] if h.startswith("[") and h.endswith("]") else h for h in hosts]
            try:
                await self._wait(ctx, hosts, settings, interval, deadline, target.id)
            except Paused:
                raise  # the wait goes on after resume: no end yet
            except Exception:
                await ev.emit(EVENT_END, target, None)
                raise
            await ev.emit(EVENT_END, target, None)

        await for_each_target_with_resume(ctx, ch, resume_state, STATE_VERSION, one)

    async def _wait(
        self,
        ctx: StepContext,
        hosts: list[str],
        settings: _Settings,
        interval: float,
        deadline: float,
        target_id: str,
    ) -> None:
        if not hosts:
            raise WaitPortFailed(
                "no address to dial: no 'target' parameter, and the target has no FQDN, "
                "PrimaryIPv4 or PrimaryIPv6"
            )
        attempt = 0
        while True:
            for host in hosts:
                left = deadline - time.time()
                if left <= 0:
                    raise WaitPortFailed(DEADLINE_EXCEEDED)
                attempt += 1
                try:
                    if await _within(ctx, dial(host, settings.port, settings.protocol), left):
                        ctx.log.info(
                            "target %s: connected to %s port %d (%s)",
                            target_id,
                            host,
                            settings.port,
                            settings.protocol,
                        )
                        return
                except OSError as exc:
                    ctx.log.debug(
                        "target %s: attempt %d: cannot connect to %s port %d: %s",
                        target_id,
                        attempt,
                        host,
                        settings.port,
                        exc,
                    )
            left = deadline - time.time()
            if left <= 0:
                raise WaitPortFailed(DEADLINE_EXCEEDED)
            await ctx.sleep(min(interval, left))


async def _within(ctx: StepContext, attempt: Awaitable[None], seconds: float) -> bool:
    """Run ``attempt`` for at most ``seconds``: True if it succeeded, False if time ran out;
    its ``OSError`` is raised; a cancel or pause (``ctx.sleep``'s) interrupts it at once."""
    task = asyncio.ensure_future(attempt)
    timer = asyncio.ensure_future(ctx.sleep(seconds))
    try:
        await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
            return True
        timer.result()  # raises Cancelled or Paused
        return False
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def load() -> tuple[str, Any, tuple[str, ...]]:
    return NAME, WaitPort, EVENTS
