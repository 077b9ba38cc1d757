"""Helpers of the SSH step tests (targets, parameters, process checks, event digests)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from contest.target import Target
from contest.testing.sshd import SshdFarm, SshdServer, pids_matching

PASSWORD = "correct horse battery staple"


def target_for(srv: SshdServer, tid: str | None = None) -> Target:
    """A target whose FQDN is the server's address and whose manager state holds its port, so
    that ``{{ .FQDN }}`` and ``{{ .TargetManagerState.port }}`` reach it."""
    return Target(
        tid or f"T{srv.index}",
        fqdn=srv.address,
        manager_state={"port": srv.port},
    )


HOST = "{{ .FQDN }}"
PORT = "{{ .TargetManagerState.port }}"


def sshcmd_params(farm: SshdFarm, exe: str, /, *args: str, **extra: Any) -> dict[str, list[Any]]:
    """SSHCmd parameters logging in with the farm's key and checking its known_hosts."""
    params: dict[str, list[Any]] = {
        "host": [HOST],
        "port": [PORT],
        "user": [farm.user],
        "private_key_file": [str(farm.client_key_file)],
        "known_hosts": [str(farm.known_hosts_file)],
        "executable": [exe],
        "args": list(args),
    }
    for k, v in extra.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = v if isinstance(v, list) else [v]
    return params


def ssh_options(farm: SshdFarm, **extra: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "host": HOST,
        "port": PORT,
        "user": farm.user,
        "identity_file": str(farm.client_key_file),
        "known_hosts": str(farm.known_hosts_file),
    }
    for k, v in extra.items():
        if v is None:
            opts.pop(k, None)
        else:
            opts[k] = v
    return opts


def marker() -> str:
    """A unique number for ``sleep``: ``sleep 60.<n>`` is findable with pgrep, and still a
    valid duration."""
    return f"60.{uuid.uuid4().int % 10**9:09d}"


async def wait_gone(pattern: str, timeout: float = 3.0) -> list[int]:
    """Wait until no process has ``pattern`` in its command line; returns what is left."""
    deadline = time.monotonic() + timeout
    while True:
        left = pids_matching(pattern)
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.05)


async def wait_running(command: str, count: int = 1, timeout: float = 5.0) -> list[int]:
    """Wait until ``count`` processes have exactly ``command`` as their command line."""
    deadline = time.monotonic() + timeout
    while True:
        found = pids_matching(command, exact=True)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.02)


def errors(outcome: Any) -> dict[str, str]:
    """Target id -> its TargetErr message."""
    return {
        tid: payload["Error"]
        for _label, tid, name, payload in outcome.events()
        if name == "TargetErr" and tid is not None
    }


def names(outcome: Any, target: str) -> list[str]:
    return [name for _l, _t, name, _p in outcome.events(target=target)]


def payloads(outcome: Any, target: str, event: str) -> list[Any]:
    return [p for _l, _t, name, p in outcome.events(target=target) if name == event]
