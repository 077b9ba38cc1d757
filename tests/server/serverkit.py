"""In-process server helpers: the real ASGI app over a real job manager on a temporary SQLite
database (with the DB target locker, as ``contest serve`` runs it), driven through httpx's ASGI
transport. No sockets, no subprocess: these tests check the HTTP surface, fast."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from contest.job.manager import JobManager
from contest.server.app import ContestApp
from contest.storage import JobState, Storage

SERVER_ID = "vm"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def descriptor(
    *,
    name: str = "test job",
    targets: tuple[str, ...] = ("1234",),
    steps: list[dict[str, Any]] | None = None,
    tags: tuple[str, ...] = ("test", "csv"),
    runs: int = 1,
) -> dict[str, Any]:
    """The descriptor of ConTest's ``start.json`` sample, one run by default so tests stay fast."""
    return {
        "JobName": name,
        "Runs": runs,
        "Tags": list(tags),
        "TestDescriptors": [
            {
                "TargetManagerName": "TargetList",
                "TargetManagerAcquireParameters": {
                    "Targets": [{"ID": t, "FQDN": "example.org"} for t in targets]
                },
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
                {"Name": "TargetSuccess", "Parameters": {"SuccessExpression": ">80%"}},
                {"Name": "Noop"},
            ],
            "FinalReporters": [{"Name": "noop"}],
        },
    }


def sleepy(seconds: str = "30s", targets: tuple[str, ...] = ("1234",)) -> dict[str, Any]:
    return descriptor(
        targets=targets,
        steps=[{"name": "sleep", "label": "nap", "parameters": {"duration": [seconds]}}],
    )


@dataclass
class ApiEnv:
    client: httpx.AsyncClient
    jm: JobManager
    store: Storage
    app: ContestApp

    async def form(self, verb: str, body: str | bytes) -> httpx.Response:
        return await self.client.post(f"/{verb}", content=body, headers=FORM)

    async def form_json(self, verb: str, **fields: str) -> dict[str, Any]:
        resp = await self.client.post(f"/{verb}", data=fields)
        assert resp.status_code == 200, resp.text
        out: dict[str, Any] = json.loads(resp.content)
        return out

    async def start(self, desc: dict[str, Any], requestor: str = "tester") -> int:
        out = await self.form_json("start", requestor=requestor, jobDesc=json.dumps(desc))
        assert out["Error"] is None, out
        job_id: int = out["Data"]["JobID"]
        return job_id

    async def wait_state(self, job_id: int, *states: JobState, timeout: float = 10.0) -> JobState:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            await self.store.flush()
            req = await self.store.get_job(job_id)
            if req is not None and req.state in states:
                return req.state
            if loop.time() > deadline:
                raise AssertionError(f"job {job_id} is {req.state if req else None}, not {states}")
            await asyncio.sleep(0.02)
