"""Real processes for the end-to-end tests: ``contest serve`` on a free port, ``contestcli``.

The server listens on port 0 and says where in its first line on stderr ("listening on
http://127.0.0.1:PORT"), so tests never race for a port. Its output goes to a file in the test's
folder (shown when a test fails), never to a pipe that could fill up.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from contest.testing.databases import Kind, server_available, temporary_database

BIN = Path(sys.executable).parent
SERVER_ID = "vm"
_LISTENING = re.compile(r"listening on (https?://\S+)")


def command(script: str, module: str) -> list[str]:
    """The console script next to this Python, or ``python -m module`` when it is missing."""
    path = BIN / script
    return [str(path)] if path.exists() else [sys.executable, "-m", module]


CONTEST = command("contest", "contest.cli")
CONTESTCLI = command("contestcli", "contest.client.cli")


class ServerProcess:
    """One ``contest serve`` process."""

    def __init__(
        self,
        folder: Path,
        db_url: str,
        *args: str,
        server_id: str = SERVER_ID,
        name: str = "server",
        local_exec: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.db_url = db_url
        # the capture's jobs run `cmd echo`, which a server refuses without --allow-local-exec
        self.args = ["--allow-local-exec", *args] if local_exec else list(args)
        self.server_id = server_id
        self.name = name
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = folder / f"{name}.log"
        self._starts = 0

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.launch()
        return self.wait_listening(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it to listen (see :func:`start_all`)."""
        self._starts += 1
        self.log = self.folder / f"{self.name}-{self._starts}.log"
        out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                *CONTEST,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--db",
                self.db_url,
                # "": no flag, as an operator who starts several servers without one
                *(("--server-id", self.server_id) if self.server_id else ()),
                "--log-level",
                "warning",
                *self.args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
            env=self.env,
        )
        out.close()

    def wait_listening(self, timeout: float = 30.0) -> ServerProcess:
        """Until the launched server says where it listens (it exiting first fails the test)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = _LISTENING.search(self.output())
            if m:
                self.url = m.group(1)
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"server did not start in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM and wait (killing it if it does not go)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.send(signal.SIGTERM)
        try:
            return self.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"server ignored SIGTERM:\n{self.output()}") from None

    # --- talking to it -------------------------------------------------------------------------

    def post(self, verb: str, body: bytes | str, **headers: str) -> httpx.Response:
        hdrs = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        return httpx.post(f"{self.url}/{verb.lstrip('/')}", content=body, headers=hdrs, timeout=30)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=30)

    def state(self, job_id: int) -> str:
        resp = self.get(f"/api/v1/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        state: str = resp.json()["state"]
        return state

    def wait_state(self, job_id: int, *states: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.state(job_id)
            if state in states:
                return state
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} is {state}, not one of {states}")

    def progress(self, job_id: int) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/api/v1/jobs/{job_id}/progress").json()
        return out

    def submit(self, desc: dict[str, Any], requestor: str = "e2e") -> int:
        """Start a job through ConTest's form API (``/start``, as the Go client does); its ID."""
        body = urlencode({"requestor": requestor, "jobDesc": json.dumps(desc)})
        out = json.loads(self.post("start", body).content)
        assert out["Error"] is None, out
        job_id: int = out["Data"]["JobID"]
        return job_id

    def wait_in_step(self, job_id: int, label: str, n: int, timeout: float = 30.0) -> None:
        """Until ``n`` targets are inside step ``label`` (and so past the steps before it)."""
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = [r for r in self.progress(job_id)["Steps"] if r["Step"] == label]
            if rows and rows[0]["InFlight"] >= n:
                return
            time.sleep(0.05)
        raise AssertionError(f"job {job_id}: not {n} targets in {label}: {rows}")


def start_all(*servers: ServerProcess, timeout: float = 30.0) -> list[ServerProcess]:
    """Start several servers at once: their start-ups (mostly Python's imports) overlap, and
    each is still a separate ``contest serve`` process that registers on its own."""
    for server in servers:
        server.launch()
    return [server.wait_listening(timeout) for server in servers]


@contextmanager
def fresh_database(kind: Kind, folder: Path) -> Iterator[str]:
    """A new, empty database on the local server of ``kind`` (SQLite: a file in ``folder``),
    dropped afterwards. A missing server fails the test: CI must never skip these."""
    if not server_available(kind):
        pytest.fail(f"no {kind} server: the tests need it running (see .ci/run)")
    with temporary_database(kind, folder) as url:
        yield url


def contestcli(
    *args: str,
    addr: str | None = None,
    stdin: bytes | None = None,
    timeout: float = 120.0,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``contestcli``; stdout and stderr captured as text."""
    argv = [*CONTESTCLI, *(("-a", addr) if addr else ()), *args]
    return subprocess.run(
        argv,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )


def json_docs(text: str) -> list[Any]:
    """The JSON documents printed one after the other (``start --wait`` prints two)."""
    decoder = json.JSONDecoder()
    out = []
    i = 0
    text = text.strip()
    while i < len(text):
        doc, end = decoder.raw_decode(text, i)
        out.append(doc)
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
    return out


def wait_for_text(path: Path, needle: str, timeout: float = 30.0) -> str:
    """The file's text once it holds ``needle`` (what it holds after ``timeout`` otherwise):
    for a process whose output goes to a file, such as a server's "listening on" line."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline and needle not in text:
        time.sleep(0.05)
        text = path.read_text(errors="replace") if path.exists() else ""
    return text


def write_descriptor(folder: Path, name: str, desc: dict[str, Any] | str) -> Path:
    path = folder / name
    path.write_text(desc if isinstance(desc, str) else json.dumps(desc, indent=2))
    return path


def literal_job(
    *,
    name: str = "test job",
    targets: Sequence[dict[str, str]] = ({"ID": "1234", "FQDN": "example.org"},),
    steps: list[dict[str, Any]] | None = None,
    tags: Sequence[str] = ("test", "csv"),
    runs: int = 1,
    run_interval: str | None = None,
    success: str = ">80%",
) -> dict[str, Any]:
    """The capture's descriptor shape (TargetList + literal + cmd echo, TargetSuccess + noop)."""
    desc: dict[str, Any] = {
        "JobName": name,
        "Runs": runs,
        "Tags": list(tags),
        "TestDescriptors": [
            {
                "TargetManagerName": "TargetList",
                "TargetManagerAcquireParameters": {"Targets": list(targets)},
                "TargetManagerReleaseParameters": {},
                "TestFetcherName": "literal",
                "TestFetcherFetchParameters": {
                    "TestName": "Literal test",
                    "Steps": steps
                    or [
                        {
                            "name": "cmd",
                            "label": "some label",
                            "parameters": {
                                "executable": ["echo"],
                                "args": ["Title={{ Title .FQDN }}, ToUpper={{ ToUpper .FQDN }}"],
                            },
                        }
                    ],
                },
            }
        ],
        "Reporting": {
            "RunReporters": [
                {"Name": "TargetSuccess", "Parameters": {"SuccessExpression": success}},
                {"Name": "Noop"},
            ],
            "FinalReporters": [{"Name": "noop"}],
        },
    }
    if run_interval is not None:
        desc["RunInterval"] = run_interval
    return desc


def sleep_job(seconds: str, n_targets: int = 1, name: str = "sleepy") -> dict[str, Any]:
    return literal_job(
        name=name,
        targets=[{"ID": f"T{i:04d}"} for i in range(n_targets)],
        steps=[
            {"name": "sleep", "label": "nap", "parameters": {"duration": [seconds]}},
            {"name": "noop", "label": "after", "parameters": {}},
        ],
        success="=100%",
    )
