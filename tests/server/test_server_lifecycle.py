"""Server start-up checks and the signal state machine (ConTest's
``cmds/contest/server/server.go``), without processes."""

from __future__ import annotations

import asyncio
import signal
import socket

import pytest

from contest.server.lifecycle import StartupError, check_settings, parse_listen, serve
from contest.server.shutdown import ShutdownController
from contest.settings import ServeSettings


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        (":8080", ("0.0.0.0", 8080)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_addresses(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["nope", "host:", "host:http", "h:70000"])
def test_bad_listen_addresses(listen: str) -> None:
    with pytest.raises(StartupError, match="--listen"):
        parse_listen(listen)


def test_settings_contest_refuses() -> None:
    assert check_settings(ServeSettings(server_id="vm")) == "vm"
    with pytest.raises(StartupError, match="Server ID is too long: 65 > 64"):
        check_settings(ServeSettings(server_id="x" * 65))
    for tag in ("notinternal", "_bad tag", "_" + "x" * 40):
        with pytest.raises(StartupError, match="--instance-tag"):
            check_settings(ServeSettings(instance_tag=tag))
    assert check_settings(ServeSettings(server_id="s", instance_tag="_blue")) == "s"
    with pytest.raises(StartupError, match="--target-locker"):
        check_settings(ServeSettings(target_locker="redis"))


def test_a_busy_port_fails_before_the_database_is_touched(tmp_path: object) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        db = f"sqlite:///{tmp_path}/never.db"
        assert serve(ServeSettings(listen=f"127.0.0.1:{port}", db=db)) == 1
    assert not (tmp_path / "never.db").exists()  # type: ignore[operator]


class FakeJobs:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.reasons: list[str] = []

    def pause_all(self) -> None:
        self.calls.append("pause")

    def cancel_all(self, reason: str = "") -> None:
        self.calls.append("cancel")
        self.reasons.append(reason)

    def mark_draining(self) -> None:
        self.calls.append("draining")


def controller(pause_timeout: float) -> tuple[ShutdownController, FakeJobs, list[str], list[int]]:
    jobs = FakeJobs()
    api: list[str] = []
    exits: list[int] = []
    ctl = ShutdownController(
        jobs, lambda: api.append("stop"), pause_timeout, force_exit=exits.append
    )
    return ctl, jobs, api, exits


async def test_zero_pause_timeout_cancels_at_once() -> None:
    ctl, jobs, api, _ = controller(0)
    ctl.on_signal(signal.SIGTERM)
    assert jobs.calls == ["cancel"] and api == ["stop"] and ctl.stopping.is_set()
    assert jobs.reasons == ["the server was stopped (SIGTERM, --pause-timeout 0)"]


async def test_negative_pause_timeout_pauses_and_never_escalates() -> None:
    ctl, jobs, api, _ = controller(-1)
    ctl.on_signal(signal.SIGINT)
    await asyncio.sleep(0.05)
    assert jobs.calls == ["pause"]
    ctl.on_signal(signal.SIGTERM)  # a second signal always cancels
    assert jobs.calls == ["pause", "cancel"] and api == ["stop"]


async def test_positive_pause_timeout_escalates_after_it() -> None:
    ctl, jobs, _, _ = controller(0.05)
    ctl.on_signal(signal.SIGTERM)
    assert jobs.calls == ["pause"]
    await asyncio.sleep(0.15)
    assert jobs.calls == ["pause", "cancel"]
    assert jobs.reasons == ["pause timeout reached"]  # what the failure summary says
    ctl.on_signal(signal.SIGTERM)
    assert jobs.calls == ["pause", "cancel", "cancel"]


async def test_escalation_is_dropped_when_the_server_closes_first() -> None:
    ctl, jobs, _, _ = controller(0.05)
    ctl.on_signal(signal.SIGTERM)
    ctl.close()
    await asyncio.sleep(0.1)
    assert jobs.calls == ["pause"]


async def test_a_third_signal_exits_at_once() -> None:
    ctl, _, _, exits = controller(-1)
    for _ in range(3):
        ctl.on_signal(signal.SIGTERM)
    assert exits == [1]


async def test_sigusr1_drains_then_a_signal_pauses() -> None:
    ctl, jobs, api, _ = controller(30)
    ctl.on_signal(signal.SIGUSR1)
    assert ctl.draining and jobs.calls == ["draining"] and api == ["stop"]
    ctl.on_signal(signal.SIGUSR1)
    assert api == ["stop"]
    ctl.on_signal(signal.SIGTERM)
    assert jobs.calls == ["draining", "pause"] and api == ["stop"]
    ctl.close()
