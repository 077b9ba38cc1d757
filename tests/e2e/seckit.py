"""Helpers for the security tests: tokens made by the real ``contest token``, requests with a
token, the server's memory, and ``/version`` latency measured while something else happens."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from e2ekit import CONTEST, ServerProcess

MiB = 1024 * 1024


def contest(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real ``contest`` command."""
    return subprocess.run(
        [*CONTEST, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def create_token(auth_file: Path, name: str, role: str) -> str:
    """``contest token create``: the token is the last line of its output."""
    proc = contest("token", "create", name, "--role", role, "--auth-file", str(auth_file))
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip().splitlines()[-1]
    assert token.startswith("ct_") and len(token) > 40, proc.stdout
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def form(
    server: ServerProcess, verb: str, token: str | None = None, **fields: str
) -> httpx.Response:
    headers = bearer(token) if token else {}
    return httpx.post(f"{server.url}/{verb}", data=fields, headers=headers, timeout=60)


def rest(
    server: ServerProcess, method: str, path: str, token: str | None = None, **kw: Any
) -> httpx.Response:
    headers = {**(bearer(token) if token else {}), **kw.pop("headers", {})}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=60, **kw)


def memory(server: ServerProcess) -> dict[str, int]:
    """The server's resident memory now and at its peak (``VmRSS``, ``VmHWM``), in bytes."""
    assert server.proc is not None
    out = {}
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def reset_peak(server: ServerProcess) -> bool:
    """Start the peak (``VmHWM``) afresh from the current RSS (Linux: ``clear_refs`` 5)."""
    assert server.proc is not None
    try:
        Path(f"/proc/{server.proc.pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class LatencyProbe:
    """Asks ``POST /version`` every ``interval`` seconds in a thread, keeping each latency."""

    server: ServerProcess
    token: str | None = None
    interval: float = 0.01
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> LatencyProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        time.sleep(5 * self.interval)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)

    def _run(self) -> None:
        headers = bearer(self.token) if self.token else {}
        with httpx.Client(timeout=30, headers=headers) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    resp = client.post(f"{self.server.url}/version", data={"requestor": "probe"})
                    if resp.status_code != 200:
                        self.errors.append(f"HTTP {resp.status_code}: {resp.text[:100]}")
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                self.latencies.append(time.perf_counter() - start)
                self._stop.wait(self.interval)

    def summary(self) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return "no answers"
        p50 = lat[len(lat) // 2] * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        worst = lat[-1] * 1000
        return (
            f"/version: {len(lat)} answers, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms"
        )

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)
