"""The REST API in-process: jobs, status, events with filters and paging, reports, progress,
stop, retry, and the 4xx answers to malformed input."""

from __future__ import annotations

import asyncio
import json

import pytest
from serverkit import SERVER_ID, ApiEnv, descriptor, sleepy

from contest.server.openapi import document
from contest.storage import JobState


async def test_health_version_and_openapi(api: ApiEnv) -> None:
    resp = await api.client.get("/healthz")
    assert resp.json() == {"status": "ok", "server_id": SERVER_ID}
    resp = await api.client.get("/api/v1/version")
    assert resp.json()["api_version"] == 5
    resp = await api.client.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc == document()
    assert doc["openapi"].startswith("3.1")
    assert "/api/v1/jobs/{job_id}/events" in doc["paths"]


async def test_create_get_status_report_progress_events(api: ApiEnv) -> None:
    resp = await api.client.post(
        "/api/v1/jobs", json={"descriptor": descriptor(targets=("a", "b")), "requestor": "me"}
    )
    assert resp.status_code == 201, resp.text
    job_id = resp.json()["job_id"]
    await api.wait_state(job_id, JobState.COMPLETED)

    job = (await api.client.get(f"/api/v1/jobs/{job_id}")).json()
    assert job["job_id"] == job_id and job["name"] == "test job" and job["requestor"] == "me"
    assert job["state"] == "JobStateCompleted"
    assert job["server_id"] == SERVER_ID and sorted(job["tags"]) == ["csv", "test"]

    status = (await api.client.get(f"/api/v1/jobs/{job_id}/status")).json()
    assert status["State"] == "JobStateCompleted" and status["Name"] == "test job"

    report = (await api.client.get(f"/api/v1/jobs/{job_id}/report")).json()
    assert report["JobID"] == job_id
    assert [r["ReporterName"] for r in report["RunReports"][0]] == ["TargetSuccess", "noop"]
    assert report["FinalReports"][0]["Data"] == "I did nothing at the end, all good"

    progress = (await api.client.get(f"/api/v1/jobs/{job_id}/progress")).json()
    assert progress["State"] == "JobStateCompleted" and progress["Run"] == 1
    assert progress["Steps"] == [
        {"Test": "Literal test", "Step": "some label", "InFlight": 0, "Passed": 2, "Failed": 0}
    ]

    desc = (await api.client.get(f"/api/v1/jobs/{job_id}/descriptor")).json()
    assert desc["descriptor"]["JobName"] == "test job"

    # events: filters, then paging through them two at a time
    all_events = (await api.client.get(f"/api/v1/jobs/{job_id}/events")).json()["events"]
    names = [e["name"] for e in all_events]
    assert names.count("TargetIn") == 2 and names.count("TargetAcquired") == 2
    seqs = [e["sequence"] for e in all_events]
    assert seqs == sorted(seqs)
    only_b = (
        await api.client.get(
            f"/api/v1/jobs/{job_id}/events",
            params=[
                ("target", "b"),
                ("name", "TargetIn"),
                ("name", "TargetOut"),
                ("run", 1),
                ("attempt", 0),
            ],
        )
    ).json()["events"]
    assert [(e["name"], e["target"]["ID"]) for e in only_b] == [
        ("TargetIn", "b"),
        ("TargetOut", "b"),
    ]
    paged: list[dict[str, object]] = []
    after = 0
    while True:
        page = (
            await api.client.get(
                f"/api/v1/jobs/{job_id}/events", params={"after": after, "limit": 2}
            )
        ).json()
        if not page["events"]:
            assert page["next_after"] == after
            break
        assert len(page["events"]) <= 2
        paged += page["events"]
        after = page["next_after"]
    assert paged == all_events
    fw = (
        await api.client.get(f"/api/v1/jobs/{job_id}/events", params={"kind": "framework"})
    ).json()["events"]
    assert fw[0]["name"] == "JobStateStarted"
    assert fw[-1]["name"] == "JobStateCompleted"
    steps = (
        await api.client.get(
            f"/api/v1/jobs/{job_id}/events", params=[("step", "some label"), ("test", "nope")]
        )
    ).json()["events"]
    assert steps == []


async def test_list_jobs_with_filters(api: ApiEnv) -> None:
    first = await api.start(descriptor(tags=("alpha", "common")), requestor="ann")
    second = await api.start(descriptor(tags=("beta", "common")), requestor="bob")
    await api.wait_state(first, JobState.COMPLETED)
    await api.wait_state(second, JobState.COMPLETED)

    async def ids(**params: object) -> list[int]:
        resp = await api.client.get("/api/v1/jobs", params=params)
        assert resp.status_code == 200, resp.text
        return [j["job_id"] for j in resp.json()["jobs"]]

    assert await ids() == [first, second]
    assert await ids(order="desc") == [second, first]
    assert await ids(limit=1) == [first]
    assert await ids(tag="common") == [first, second]
    assert await ids(tag=["common", "beta"]) == [second]
    assert await ids(requestor="ann") == [first]
    assert await ids(state="JobStateCompleted") == [first, second]
    assert await ids(state="JobStateFailed") == []


async def test_stop_and_retry(api: ApiEnv) -> None:
    resp = await api.client.post("/api/v1/jobs", json={"descriptor": sleepy()})
    job_id = resp.json()["job_id"]
    await api.wait_state(job_id, JobState.STARTED)
    resp = await api.client.post(f"/api/v1/jobs/{job_id}/stop")
    assert resp.status_code == 202
    assert resp.json() == {"job_id": job_id, "state": "JobStateCancelling"}
    await api.wait_state(job_id, JobState.CANCELLED)
    resp = await api.client.post(f"/api/v1/jobs/{job_id}/stop")
    assert resp.status_code == 409
    assert resp.json()["error"] == f"could not stop job: unknown job ID: {job_id}"

    resp = await api.client.post(f"/api/v1/jobs/{job_id}/retry", json={"requestor": "again"})
    assert resp.status_code == 201
    new_id = resp.json()["job_id"]
    assert resp.json() == {"job_id": new_id, "retry_of": job_id}
    await api.wait_state(new_id, JobState.STARTED)
    job = (await api.client.get(f"/api/v1/jobs/{new_id}")).json()
    assert job["requestor"] == "again"
    assert (await api.client.post(f"/api/v1/jobs/{new_id}/stop")).status_code == 202


BAD_REQUESTS: list[tuple[str, str, object, int, str]] = [
    ("GET", "/api/v1/jobs/0", None, 400, "job_id must be between"),
    ("GET", "/api/v1/jobs/abc", None, 400, "job_id must be an integer"),
    ("GET", "/api/v1/jobs/99999999999999999999", None, 400, "job_id must be between"),
    ("GET", "/api/v1/jobs/42", None, 404, "job 42 not found"),
    ("GET", "/api/v1/jobs/42/status", None, 404, "job 42 not found"),
    ("GET", "/api/v1/jobs/42/events", None, 404, "job 42 not found"),
    ("POST", "/api/v1/jobs/42/stop", None, 404, "job 42 not found"),
    ("POST", "/api/v1/jobs/42/retry", None, 404, "job 42 not found"),
    ("GET", "/api/v1/jobs?limit=0", None, 400, "limit must be between 1 and 1000"),
    ("GET", "/api/v1/jobs?limit=x", None, 400, "limit must be an integer"),
    ("GET", "/api/v1/jobs?limit=1&limit=2", None, 400, "limit may be given once"),
    ("GET", "/api/v1/jobs?state=Nope", None, 400, "unknown job state 'Nope'"),
    ("GET", "/api/v1/jobs?tag=a%20b", None, 400, "is not a valid tag"),
    ("GET", "/api/v1/jobs?order=up", None, 400, "order must be one of asc, desc"),
    ("GET", "/api/v1/jobs?requestor=", None, 400, "requestor must not be empty"),
    ("POST", "/api/v1/jobs", b"", 400, "a JSON object body is required"),
    ("POST", "/api/v1/jobs", b"{", 400, "the body is not valid JSON"),
    ("POST", "/api/v1/jobs", b"[1]", 400, "the body must be a JSON object"),
    ("POST", "/api/v1/jobs", b'{"descriptor": 5}', 400, "descriptor must be"),
    ("POST", "/api/v1/jobs", b'{"descriptor": ""}', 400, "descriptor must be"),
    ("POST", "/api/v1/jobs", b'{"descriptor": {}, "requestor": 7}', 400, "requestor must be"),
    (
        "POST",
        "/api/v1/jobs",
        b'{"descriptor": {}, "requestor": "' + b"r" * 33 + b'"}',
        400,
        "requestor must be 1 to 32 printable ASCII characters",
    ),
    ("POST", "/api/v1/jobs", b'{"descriptor": {}}', 422, "invalid job descriptor"),
    ("DELETE", "/api/v1/jobs", None, 405, "Method Not Allowed"),
    ("GET", "/api/v1/nothing", None, 404, "Not Found"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), BAD_REQUESTS)
async def test_malformed_input_gets_a_4xx_with_a_message(
    api: ApiEnv, method: str, path: str, body: bytes | None, status: int, message: str
) -> None:
    resp = await api.client.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == status, resp.text
    assert message in resp.json()["error"]


async def test_descriptor_problems_are_all_listed(api: ApiEnv) -> None:
    resp = await api.client.post("/api/v1/jobs", json={"descriptor": {"JobName": "x"}})
    assert resp.status_code == 422
    details = resp.json()["details"]
    assert {d["path"] for d in details} >= {"TestDescriptors", "Reporting"}


async def test_descriptor_may_be_yaml_text(api: ApiEnv) -> None:
    text = json.dumps(descriptor())  # JSON is YAML; a string descriptor is parsed as either
    resp = await api.client.post("/api/v1/jobs", json={"descriptor": text})
    assert resp.status_code == 201


async def test_events_parameters_are_checked(api: ApiEnv) -> None:
    job_id = await api.start(descriptor())
    await api.wait_state(job_id, JobState.COMPLETED)
    base = f"/api/v1/jobs/{job_id}/events"
    for params, message in [
        ({"kind": "other"}, "kind must be one of test, framework"),
        ({"limit": "10001"}, "limit must be between 1 and 10000"),
        ({"after": "-1"}, "after must be between"),
        ({"run": "0"}, "run must be between"),
        ({"attempt": "1.5"}, "attempt must be an integer"),
        ([("name", "X")] * 101, "at most 100 values of name"),
        ({"test": ""}, "test may not be empty"),
    ]:
        resp = await api.client.get(base, params=params)
        assert resp.status_code == 400, (params, resp.text)
        assert message in resp.json()["error"]


async def test_a_job_shows_what_it_waits_for_as_progress_does(api: ApiEnv) -> None:
    """A real wait (job B asks for targets job A holds): ``GET /api/v1/jobs/{id}`` carries the
    same object as ``/progress``'s ``Waiting`` while B waits, and null before and after."""
    holder = await api.start(sleepy("30s", targets=("dut1", "dut2")))
    await api.wait_state(holder, JobState.STARTED)
    assert (await api.client.get(f"/api/v1/jobs/{holder}")).json()["waiting"] is None
    waiter = await api.start(sleepy("10ms", targets=("dut1", "dut2")))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (job := (await api.client.get(f"/api/v1/jobs/{waiter}")).json())["waiting"] is None:
        assert loop.time() < deadline, job
        await asyncio.sleep(0.05)
    progress = (await api.client.get(f"/api/v1/jobs/{waiter}/progress")).json()
    assert job["waiting"] == progress["Waiting"]
    assert job["state"] == "JobStateStarted"
    assert job["waiting"]["Targets"] == ["dut1", "dut2"]
    assert job["waiting"]["HeldBy"] == {"dut1": holder, "dut2": holder}
    assert job["waiting"]["Text"] == f"waiting for dut1, dut2 (held by job {holder})"

    await api.jm.stop(holder)
    await api.wait_state(waiter, JobState.COMPLETED, timeout=20)
    job = (await api.client.get(f"/api/v1/jobs/{waiter}")).json()
    assert job["waiting"] is None and job["state"] == "JobStateCompleted"
    assert "Waiting" not in (await api.client.get(f"/api/v1/jobs/{waiter}/progress")).json()
