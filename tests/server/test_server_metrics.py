"""``GET /metrics`` in process: the waiting-for-targets gauges follow the ``TargetsWaiting`` /
``TargetsWaitEnded`` events of running jobs, routes are labelled with few values, and the
document always parses with prometheus-client's parser."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families
from serverkit import ApiEnv, sleepy

from contest.events import TestEvent, TestEventHeader
from contest.metrics import TARGETS_WAIT_ENDED, TARGETS_WAITING, route_label
from contest.storage import JobState


async def scrape(api: ApiEnv) -> dict[str, float]:
    resp = await api.client.get("/metrics")
    assert resp.status_code == 200
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            if not sample.labels:
                out[sample.name] = sample.value
    return out


async def test_targets_waiting_follows_the_wait_events_of_running_jobs(api: ApiEnv) -> None:
    """The job runner emits these events when targets are held by other jobs (the shared
    targets' change); here they are written as it writes them, for a job that is running."""
    job_id = await api.start(sleepy("30s", targets=("dut1", "dut2", "dut3")))
    await api.wait_state(job_id, JobState.STARTED)
    header = TestEventHeader(job_id, 1, "Literal test", "", 0)

    async def emit(name: str, payload: object) -> None:
        pending = api.store.write_test_event(TestEvent(header, None, name, payload, time.time()))
        await pending

    before = await scrape(api)
    assert before["contest_targets_waiting"] == 0 and before["contest_jobs_waiting"] == 0
    await emit(TARGETS_WAITING, {"Targets": ["dut1", "dut2"], "HeldBy": {"dut1": 3, "dut2": 3},
                                 "Timeout": "5m0s"})  # fmt: skip
    during = await scrape(api)
    assert during["contest_targets_waiting"] == 2 and during["contest_jobs_waiting"] == 1
    await emit(TARGETS_WAIT_ENDED, {"Acquired": True, "Waited": "1.5s"})
    after = await scrape(api)
    assert after["contest_targets_waiting"] == 0 and after["contest_jobs_waiting"] == 0

    # a job that is not running any more waits for nothing, whatever its last events say
    await emit(TARGETS_WAITING, {"Targets": ["dut3"], "HeldBy": {"dut3": 9}, "Timeout": "1m0s"})
    assert (await scrape(api))["contest_targets_waiting"] == 1
    await api.form_json("stop", requestor="t", jobID=str(job_id))
    await api.wait_state(job_id, JobState.CANCELLED)
    await api.jm.wait_all(10)
    assert (await scrape(api))["contest_targets_waiting"] == 0


async def test_head_and_methods(api: ApiEnv) -> None:
    head = await api.client.head("/metrics")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/plain; version=0.0.4")
    post = await api.client.post("/metrics")  # not ours: ConTest's form API answers it
    assert post.status_code == 400
    om = await api.client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n") and "contest_events_written_total" in om.text


def test_route_labels_are_few() -> None:
    assert route_label("/status") == "/status"
    assert route_label("/api/v1/jobs/12") == "/api/v1/jobs/{job_id}"
    assert route_label("/api/v1/jobs/12/events") == "/api/v1/jobs/{job_id}/events"
    assert route_label("/api/v1/jobs/12/whatever") == "other"
    assert route_label("/some/random/path/123") == "other"
    assert route_label("/metrics") == "/metrics"
    assert route_label("/jobs/3/cell") == "/jobs/{job_id}/cell"
    assert route_label("/targets/dut1/x") == "/targets/{target_id}"
    assert route_label("/static/htmx.min.js") == "/static"
