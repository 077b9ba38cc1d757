"""waitport against real sockets: a listening port passes, a closed one times out with ConTest's
text after dialling once per check_interval (not in a tight loop), a port opened late is found,
pause keeps the deadline, cancel is prompt, bad parameters are refused by name."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest
from stepkit import names, payloads, refused, run_steps, validate, verdicts

from contest.errors import Cancelled
from contest.plugins.teststeps import waitport as waitport_module
from contest.plugins.teststeps.waitport import WaitPort
from contest.target import Target

LOCAL = Target("T1", primary_ipv4="127.0.0.1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve(port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


@pytest.fixture
async def listening() -> AsyncIterator[int]:
    server = await _serve(0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


def params(
    port: int, timeout: str = "2s", interval: str = "100ms", **extra: list[object]
) -> dict[str, list[object]]:
    return {
        "port": [port],
        "protocol": ["tcp"],
        "timeout": [timeout],
        "check_interval": [interval],
        **extra,
    }


async def test_a_listening_port_passes_with_the_start_and_end_events(listening: int) -> None:
    out = await run_steps([(WaitPort(), "S", params(listening, target=["127.0.0.1"]))], ["T1"])
    assert out.error is None
    assert verdicts(out) == {"T1": None}
    assert names(out, "T1") == ["TargetIn", "waitportStart", "waitportEnd", "TargetOut"]
    assert payloads(out, "waitportStart") == [
        {
            "Address": "127.0.0.1",
            "Port": listening,
            "Protocol": "tcp",
            "CheckInterval": 100_000_000,
            "Timeout": 2_000_000_000,
        }
    ]
    assert payloads(out, "waitportEnd") == [None]


async def test_without_a_target_parameter_the_target_addresses_are_dialled(
    listening: int,
) -> None:
    out = await run_steps(
        [(WaitPort(), "S", params(listening))],
        [
            LOCAL,
            Target("T2", fqdn="127.0.0.1"),
            Target("T3", primary_ipv6="::1", primary_ipv4="127.0.0.1"),
        ],
    )
    assert verdicts(out) == {"T1": None, "T2": None, "T3": None}
    assert payloads(out, "waitportStart", "T1")[0]["Address"] == ""


async def test_the_target_parameter_is_a_template(listening: int) -> None:
    out = await run_steps(
        [(WaitPort(), "S", params(listening, target=["{{ .PrimaryIPv4 }}"]))], [LOCAL]
    )
    assert verdicts(out) == {"T1": None}
    assert payloads(out, "waitportStart")[0]["Address"] == "127.0.0.1"


async def test_a_closed_port_fails_after_the_timeout_dialling_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="contest.step")
    t0 = time.monotonic()
    out = await run_steps([(WaitPort(), "S", params(free_port(), "1s", "250ms"))], [LOCAL])
    elapsed = time.monotonic() - t0
    assert verdicts(out) == {"T1": "context deadline exceeded"}
    assert names(out, "T1")[-2:] == ["waitportEnd", "TargetErr"]
    assert 0.9 < elapsed < 2.5
    attempts = [r for r in caplog.records if "attempt" in r.getMessage()]
    assert 3 <= len(attempts) <= 6  # ConTest's forgotten interval made this thousands


async def test_a_port_opened_later_is_found_on_a_later_round() -> None:
    port = free_port()

    async def open_later() -> asyncio.Server:
        await asyncio.sleep(0.5)
        return await _serve(port)

    opener = asyncio.ensure_future(open_later())
    t0 = time.monotonic()
    out = await run_steps([(WaitPort(), "S", params(port, "5s", "100ms"))], [LOCAL])
    elapsed = time.monotonic() - t0
    server = await opener
    server.close()
    await server.wait_closed()
    assert verdicts(out) == {"T1": None}
    assert 0.45 < elapsed < 1.5


async def test_the_check_interval_is_the_pause_between_rounds() -> None:
    port = free_port()

    async def open_later() -> asyncio.Server:
        await asyncio.sleep(0.2)
        return await _serve(port)

    opener = asyncio.ensure_future(open_later())
    t0 = time.monotonic()
    out = await run_steps([(WaitPort(), "S", params(port, "5s", "1200ms"))], [LOCAL])
    elapsed = time.monotonic() - t0
    server = await opener
    server.close()
    await server.wait_closed()
    assert verdicts(out) == {"T1": None}
    assert elapsed > 1.1  # the second round came one interval after the first


async def test_udp_only_needs_the_name_to_resolve() -> None:
    out = await run_steps(
        [(WaitPort(), "S", {**params(free_port()), "protocol": ["UDP4"]})], [LOCAL]
    )
    assert verdicts(out) == {"T1": None}
    assert payloads(out, "waitportStart")[0]["Protocol"] == "udp4"


async def test_a_target_without_an_address_fails_at_once() -> None:
    out = await run_steps([(WaitPort(), "S", params(free_port()))], ["bare"])
    assert "no address to dial" in verdicts(out)["bare"]


async def test_cancel_ends_the_wait_at_once_and_reports_nothing() -> None:
    t0 = time.monotonic()
    out = await run_steps(
        [(WaitPort(), "S", params(free_port(), "30s", "5s"))], [LOCAL], cancel_after=0.3
    )
    assert time.monotonic() - t0 < 1.5
    assert isinstance(out.error, Cancelled)
    assert verdicts(out) == {}


async def test_pause_keeps_the_deadline_and_does_not_start_again() -> None:
    port = free_port()
    first = await run_steps(
        [(WaitPort(), "S", params(port, "1s", "100ms"))], [LOCAL], pause_after=0.3
    )
    assert first.error is None and first.resume_state is not None
    assert names(first, "T1") == ["TargetIn", "waitportStart"]  # no end: it goes on

    # resumed after the deadline: it has passed, the wait does not start over
    await asyncio.sleep(1.0)
    t0 = time.monotonic()
    late = await run_steps(
        [(WaitPort(), "S", params(port, "1s", "100ms"))], [LOCAL], resume_state=first.resume_state
    )
    assert time.monotonic() - t0 < 0.5
    assert verdicts(late) == {"T1": "context deadline exceeded"}
    assert names(late, "T1") == ["waitportEnd", "TargetErr"]


async def test_resumed_in_time_the_wait_goes_on() -> None:
    port = free_port()
    first = await run_steps(
        [(WaitPort(), "S", params(port, "10s", "100ms"))], [LOCAL], pause_after=0.2
    )
    server = await _serve(port)
    try:
        second = await run_steps(
            [(WaitPort(), "S", params(port, "10s", "100ms"))],
            [LOCAL],
            resume_state=first.resume_state,
        )
    finally:
        server.close()
        await server.wait_closed()
    assert verdicts(second) == {"T1": None}
    assert names(second, "T1") == ["waitportEnd", "TargetOut"]


async def test_parameters_are_checked_at_submission() -> None:
    step = WaitPort()
    await validate(step, params(80, "1m", "2s", target=["{{ .FQDN }}"]))
    assert step.settings is not None
    assert (step.settings.port, step.settings.protocol) == (80, "tcp")
    assert (step.settings.timeout_ns, step.settings.check_interval_ns) == (60 * 10**9, 2 * 10**9)

    async def msg(**changes: list[object]) -> str:
        return await refused(WaitPort(), {**params(80), **changes})

    assert await msg(target=["a", "b"]) == "target: takes one value, got 2"
    assert await msg(target=["{{ .ID "]) == (
        "target[0]: not a valid template: unclosed action (line 1, column 8)"
    )
    assert await msg(port=["http"]) == 'port[0]: expected an integer, got "http"'
    assert await msg(port=[0]) == "port[0]: must be at least 1, got 0"
    assert await msg(port=[65536]) == "port[0]: must be at most 65535, got 65536"
    assert await msg(protocol=[]) == "protocol: missing; it is required"
    assert await msg(protocol=["tpc"]) == (
        'protocol[0]: expected one of tcp, tcp4, tcp6, udp, udp4, udp6, got "tpc"; did you mean '
        '"tcp"?'
    )
    assert await msg(timeout=[]) == "timeout: missing; it is required"
    assert await msg(timeout=["10"]) == (
        'timeout[0]: expected a duration such as "30s" or "1m30s", got "10"'
    )
    assert await msg(check_interval=["0s"]) == (
        "check_interval: must be a positive duration, got '0s'"
    )
    assert await msg(check_interval=["-1s"]) == (
        "check_interval: must be a positive duration, got '-1s'"
    )
    step = WaitPort()
    await validate(step, params(80, protocol=["UDP6"]))  # any case
    assert step.settings is not None and step.settings.protocol == "udp6"


def test_load() -> None:
    assert waitport_module.load() == ("waitport", WaitPort, ("waitportStart", "waitportEnd"))
