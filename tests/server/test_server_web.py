"""The web pages in-process, over real jobs on each database: routing (pages, 404s, ConTest's
verbs untouched), the jobs list and its filters, a job's grid, counts, cells and paging, runs and
attempts, the waiting panel, the buttons and the roles that see them, a target's history.

The live side (server-sent events) needs a real socket: see tests/e2e/test_e2e_browser.py.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest
from serverkit import SERVER_ID, ApiEnv, descriptor, sleepy
from webkit import Page

from contest.events import TARGETS_WAIT_ENDED, TARGETS_WAITING, TestEvent, TestEventHeader
from contest.job.manager import JobManager
from contest.server import create_app
from contest.server.auth import Principal, Role
from contest.server.web._jobview import ViewParams, build
from contest.server.web._live import Streams, job_frames
from contest.storage import JobState
from contest.target import Target

DONE = (JobState.COMPLETED, JobState.FAILED)
TEST = "Literal test"


def probe(failing: str) -> dict[str, Any]:
    """A Cmd step that prints to both streams and fails the target ``failing``."""
    script = f"echo hello {{{{ .ID }}}}; echo warn >&2; test {{{{ .ID }}}} != {failing}"
    return {
        "name": "cmd",
        "label": "probe",
        "parameters": {
            "executable": ["sh"],
            "args": ["-c", script],
            "emit_stdout": ["true"],
            "emit_stderr": ["true"],
        },
    }


def failing_job(targets: tuple[str, ...] = ("a", "b", "c"), **kw: Any) -> dict[str, Any]:
    steps = [probe("b"), {"name": "noop", "label": "after", "parameters": {}}]
    return descriptor(targets=targets, steps=steps, **kw)


async def page(api: ApiEnv, path: str, status: int = 200, **params: Any) -> Page:
    resp = await api.client.get(path, params=params)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    return Page(resp.text)


async def run_job(api: ApiEnv, desc: dict[str, Any], requestor: str = "tester") -> int:
    job_id = await api.start(desc, requestor)
    await api.wait_state(job_id, *DONE, timeout=30)
    return job_id


# --- on each database ---------------------------------------------------------------------------


async def test_a_finished_job_on_every_page(any_api: ApiEnv) -> None:
    api = any_api
    job = await run_job(api, failing_job(name="first", tags=("web", "nightly")), "alice")
    other = await run_job(api, descriptor(name="Second Job", tags=("web",)), "bob")

    # the grid: b failed the probe and never reached "after"
    p = await page(api, f"/jobs/{job}")
    assert p.by_id("job-state").text == "Completed"
    assert p.steps() == ["probe", "after"]
    assert p.cells() == {
        ("a", "probe"): "passed",
        ("a", "after"): "passed",
        ("b", "probe"): "failed",
        ("b", "after"): "none",
        ("c", "probe"): "passed",
        ("c", "after"): "passed",
    }
    assert "exit status 1" in p.cell_title("b", "probe")
    counts = p.by_id("counts").text
    assert counts.startswith("3 targets") and "✓ 2 ✗ 1" in counts and "✓ 2 ✗ 0" in counts
    assert "Run 1, test Literal test, attempt 0: targets 1 to 3 of 3" in p.text
    assert "TargetSuccess" in p.text  # the run's report

    # the failed cell: the error, both output streams, every event of b in the probe
    cell = await page(
        api, f"/jobs/{job}/cell", run=1, test=TEST, attempt=0, step="probe", target="b"
    )
    assert cell.by_id("cell-error").text == "exit status 1"
    assert "hello b" in cell.text and "warn" in cell.text
    events = [li.find_all("strong")[0].text for li in cell.root.find_all("li")]
    assert events[0] == "TargetIn" and events[-1] == "TargetErr" and "CmdStdout" in events

    # narrowing the grid: failures only, an ID search, pages of one
    assert (await page(api, f"/jobs/{job}", show="failed")).grid_targets() == ["b"]
    assert (await page(api, f"/jobs/{job}", q="c")).grid_targets() == ["c"]
    paged = await page(api, f"/jobs/{job}", per=1, page=2)
    assert paged.grid_targets() == ["b"] and "page 2 of 3" in paged.text
    assert "✓ 2 ✗ 1" in paged.by_id("counts").text  # the counts cover every target

    # the list: newest first, progress, filters
    listing = await page(api, "/")
    assert listing.job_ids() == [other, job]
    row = listing.by_id(f"job-{job}").text
    assert "2/3 passed" in row and "1 failed" in row and "alice" in row and "nightly" in row
    assert (await page(api, "/", tag="nightly")).job_ids() == [job]
    assert (await page(api, "/", tag="web nightly")).job_ids() == [job]
    assert (await page(api, "/", requestor="bob")).job_ids() == [other]
    assert (await page(api, "/", name="second")).job_ids() == [other]
    assert (await page(api, "/", state="completed")).job_ids() == [other, job]
    assert (await page(api, "/", state="failed")).job_ids() == []
    assert (await page(api, "/", per=1)).job_ids() == [other]
    assert (await page(api, "/", per=1, before=other)).job_ids() == [job]

    # the target: its jobs, how it fared, its last failure
    target = await page(api, "/targets/b")
    assert target.by_id("last-error").text == "exit status 1"
    assert "✗ probe" in target.text and "first" in target.text
    assert target.by_id("holder").text == "nobody"
    assert "No job acquired this target" in (await page(api, "/targets/zzz")).text


async def test_the_waiting_panel_follows_the_wait_events(any_api: ApiEnv) -> None:
    api = any_api
    job = await api.start(sleepy("30s", targets=("dut1", "dut2")))
    await api.wait_state(job, JobState.STARTED)
    header = TestEventHeader(job, 1, TEST, "", 0)

    async def emit(name: str, payload: dict[str, Any]) -> None:
        pending = api.store.write_test_event(TestEvent(header, None, name, payload, time.time()))
        await pending

    await emit(
        TARGETS_WAITING,
        {"Targets": ["dut1", "dut2"], "HeldBy": {"dut1": 7, "dut2": 8}, "Timeout": "5m0s"},
    )
    p = await page(api, f"/jobs/{job}")
    panel = p.by_id("waiting-h")
    assert panel.text == "Waiting for targets"
    assert "for at most 5m0s" in p.text
    assert re.search(r"dut1 job 7 dut2 job 8", p.text)
    assert "waiting for 2 targets" in (await page(api, "/")).by_id(f"job-{job}").text

    await emit(TARGETS_WAIT_ENDED, {"Acquired": True, "Waited": "1.5s"})
    assert not (await page(api, f"/jobs/{job}")).has("waiting-h")
    assert "waiting" not in (await page(api, "/")).by_id(f"job-{job}").text
    await api.jm.stop(job)


# --- SQLite only ----------------------------------------------------------------------------------


async def test_routes_pages_404s_and_contest_verbs(api: ApiEnv) -> None:
    c = api.client
    home = await c.get("/")
    assert home.status_code == 200 and "No jobs." in Page(home.text).text
    for path in ("/nope", "/jobs/99", "/jobs/abc", "/static/nope.js", "/jobs/1/nope", "/targets"):
        resp = await c.get(path)
        assert resp.status_code == 404, path
        assert resp.headers["content-type"].startswith("text/html")
    # ConTest's form API keeps its answers: its verbs refuse GET, other methods, any path
    for verb in ("start", "stop", "status", "retry", "list", "version"):
        resp = await c.get(f"/{verb}")
        assert (resp.status_code, resp.content) == (400, b"Only POST requests are supported")
    assert (await c.head("/status")).content == b""
    assert (await c.put("/")).content == b"Only POST requests are supported"
    assert (await c.post("/bogus", data={"requestor": "x"})).content == (
        b'{"Msg":"unknown verb: bogus"}'
    )
    assert (await c.post("/jobs/1/nope")).content == b'{"Msg":"unknown verb: jobs/1/nope"}'
    # the REST side is untouched
    assert (await c.get("/openapi.json")).json()["openapi"].startswith("3.")
    assert (await c.get("/healthz")).json()["server_id"] == SERVER_ID


async def test_every_asset_is_served_by_the_server(api: ApiEnv) -> None:
    c = api.client
    job = await run_job(api, failing_job())
    pages = [await c.get(p) for p in ("/", f"/jobs/{job}", "/targets/a", "/docs")]
    refs = set()
    for resp in pages:
        assert resp.status_code == 200
        refs.update(re.findall(r'(?:src|href)="([^"]+)"', resp.text))
    external = {r for r in refs if "//" in r}
    assert external == set(), "pages must load nothing from elsewhere"
    assets = {r for r in refs if r.startswith("/static/")}
    assert {
        "/static/htmx/htmx.min.js",
        "/static/htmx/sse.min.js",
        "/static/app.js",
        "/static/app.css",
        "/static/swagger-ui/swagger-ui-bundle.js",
        "/static/swagger-ui/swagger-ui.css",
        "/static/docs.js",
    } <= assets
    for asset in assets:
        resp = await c.get(asset)
        assert resp.status_code == 200, asset
        kind = "javascript" if asset.endswith(".js") else "css"
        assert kind in resp.headers["content-type"], asset
    licences = ("htmx/LICENSE", "htmx/LICENSE-htmx-ext-sse", "swagger-ui/LICENSE", "README.md")
    for name in licences:
        assert (await c.get(f"/static/{name}")).status_code == 200, name


async def test_bad_parameters_get_a_400_page_naming_them(api: ApiEnv) -> None:
    job = await run_job(api, failing_job())
    for path, params, word in [
        (f"/jobs/{job}", {"show": "some"}, "show"),
        (f"/jobs/{job}", {"per": "100000"}, "per"),
        (f"/jobs/{job}", {"run": "-1"}, "run"),
        (f"/jobs/{job}/cell", {"run": "1", "test": TEST, "attempt": "0"}, "target"),
        ("/", {"state": "sleeping"}, "state"),
        ("/", {"before": "x"}, "before"),
        ("/targets/a", {"before": "x"}, "before"),
    ]:
        p = await page(api, path, 400, **params)
        assert word in p.text, (path, params)


async def test_runs_and_attempts_are_selectable(api: ApiEnv) -> None:
    desc = failing_job(targets=("a", "b"), runs=2)
    desc["RunInterval"] = "0s"
    td = desc["TestDescriptors"][0]
    td["RetryParameters"] = {"NumRetries": 1, "RetryInterval": "0s"}
    td["CleanupFetcherName"] = "literal"
    td["CleanupFetcherFetchParameters"] = {
        "TestName": "tidy",
        "Steps": [{"name": "noop", "label": "tidy", "parameters": {}}],
    }
    job = await run_job(api, desc)

    latest = await page(api, f"/jobs/{job}")
    assert "Run 2, test Literal test, attempt 1:" in latest.text
    runs = [o.text for o in latest.by_id("v-run").find_all("option")]
    attempts = [o.text for o in latest.by_id("v-attempt").find_all("option")]
    assert runs == ["latest (2)", "1", "2"] and attempts == ["latest (1)", "0", "1"]
    first = await page(api, f"/jobs/{job}", run=1, attempt=0)
    assert "Run 1, test Literal test, attempt 0:" in first.text
    assert first.cells()[("b", "probe")] == "failed"
    options = first.by_id("v-run").find_all("option")
    assert [o.text for o in options if "selected" in o.attrs] == ["1"]
    # cleanup steps: a test of their own, on the targets their test acquired
    tests = [o.text for o in latest.by_id("v-test").find_all("option")]
    assert tests == ["latest (Literal test)", TEST, f"{TEST} [CLEANUP]"]
    cleanup = await page(api, f"/jobs/{job}", test=f"{TEST} [CLEANUP]", run=1, attempt=0)
    assert cleanup.cells() == {("a", "tidy"): "passed", ("b", "tidy"): "passed"}
    assert cleanup.by_id("counts").text.startswith("2 targets")
    # htmx asks for the live part only
    part = await api.client.get(
        f"/jobs/{job}", params={"run": 1}, headers={"HX-Request": "true", "HX-Target": "live"}
    )
    assert part.text.startswith('<div id="live"') and "<html" not in part.text


class AsPrincipal:
    """The app as the access guard hands it a request from ``principal`` (the guard of an app
    built without access settings keeps a principal already in the scope)."""

    def __init__(self, app: Any, principal: Principal) -> None:
        self.app = app
        self.principal = principal

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope["contest.principal"] = self.principal
        await self.app(scope, receive, send)


def client_as(api: ApiEnv, principal: Principal) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=AsPrincipal(api.app, principal))
    return httpx.AsyncClient(transport=transport, base_url="http://contest.test")


async def test_stop_and_retry_buttons_follow_the_role_and_the_owner(api: ApiEnv) -> None:
    job = await api.start(sleepy("30s"))  # the tester's
    await api.wait_state(job, JobState.STARTED)
    anonymous = Page((await api.client.get(f"/jobs/{job}")).text).buttons()
    assert "Stop job" in anonymous and "Retry as a new job" in anonymous
    async with client_as(api, Principal("carol", Role.VIEWER)) as viewer:
        p = Page((await viewer.get(f"/jobs/{job}")).text)
        assert "Stop job" not in p.buttons() and "Retry as a new job" not in p.buttons()
        for action in ("stop", "retry"):
            denied = await viewer.post(f"/jobs/{job}/{action}")
            assert denied.status_code == 403 and "may not" in denied.text
    async with client_as(api, Principal("dave", Role.SUBMITTER)) as submitter:
        p = Page((await submitter.get(f"/jobs/{job}")).text)
        assert "Stop job" not in p.buttons()  # not dave's job
        for action in ("stop", "retry"):
            denied = await submitter.post(f"/jobs/{job}/{action}")
            assert denied.status_code == 403 and "tester&#39;s, not yours" in denied.text
    own = await api.start(sleepy("30s", targets=("dave1",)), requestor="dave")
    await api.wait_state(own, JobState.STARTED)
    async with client_as(api, Principal("dave", Role.SUBMITTER)) as submitter:
        p = Page((await submitter.get(f"/jobs/{own}")).text)
        assert "Stop job" in p.buttons() and "Retry as a new job" in p.buttons()
        await api.jm.stop(own)
        await api.wait_state(own, JobState.CANCELLED)
        retried = await submitter.post(f"/jobs/{own}/retry", headers={"HX-Request": "true"})
        new = int(retried.headers["hx-redirect"].removeprefix("/jobs/"))
        assert (await api.store.get_job(new)).requestor == "dave"  # type: ignore[union-attr]
    async with client_as(api, Principal("erin", Role.ADMIN)) as admin:
        assert "Stop job" in Page((await admin.get(f"/jobs/{new}")).text).buttons()
        stopped = await admin.post(f"/jobs/{new}/stop")
        assert stopped.status_code == 303
    # a form post without script: stop, then back to the job's page
    stopped = await api.client.post(f"/jobs/{job}/stop")
    assert (stopped.status_code, stopped.headers["location"]) == (303, f"/jobs/{job}")
    await api.wait_state(job, JobState.CANCELLED)
    assert "Stop job" not in Page((await api.client.get(f"/jobs/{job}")).text).buttons()
    again = await api.client.post(f"/jobs/{job}/stop")
    assert again.status_code == 409 and "unknown job ID" in again.text
    retried = await api.client.post(f"/jobs/{job}/retry")
    assert retried.status_code == 303 and retried.headers["location"].startswith("/jobs/")


async def test_a_target_held_by_a_running_job(api: ApiEnv) -> None:
    job = await api.start(sleepy("30s", targets=("dut9",)))
    await api.wait_state(job, JobState.STARTED)
    deadline = time.monotonic() + 10
    while "job" not in (held := (await page(api, "/targets/dut9")).by_id("holder").text):
        assert time.monotonic() < deadline, held
    assert held.startswith(f"job {job} (lease until")
    await api.jm.stop(job)
    await api.wait_state(job, JobState.CANCELLED)
    assert (await page(api, "/targets/dut9")).by_id("holder").text == "nobody"


@pytest.mark.parametrize("path", ["/", "/docs"])
async def test_pages_are_labelled_for_assistive_technology(api: ApiEnv, path: str) -> None:
    p = await page(api, path)
    html = p.html
    assert '<html lang="en">' in html and 'name="viewport"' in html
    assert 'class="skip" href="#main"' in html
    for control in p.root.find_all("input") + p.root.find_all("select"):
        assert f'for="{control.attrs["id"]}"' in html, control.attrs


async def test_a_server_with_an_instance_tag_lists_only_its_jobs(api: ApiEnv) -> None:
    mine = await run_job(api, failing_job(name="untagged"))
    blue_jm = JobManager(api.store, api.jm.locker, server_id="blue", instance_tag="_blue")
    blue = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(blue_jm, "blue")),
        base_url="http://contest.test",
    )
    async with blue:
        theirs = await blue_jm.submit(json.dumps(failing_job(name="blue")), "tester")
        await api.wait_state(theirs, *DONE, timeout=30)
        assert Page((await blue.get("/")).text).job_ids() == [theirs]
    assert (await page(api, "/")).job_ids() == [theirs, mine]


async def test_the_live_stream_patches_cells_and_asks_for_a_reload(api: ApiEnv) -> None:
    """The job page's stream over real stored events: a routing event of a target on the page
    redraws its cells and the counts; a new attempt starting asks the page to reload."""
    job = await api.start(sleepy("30s", targets=("x", "y")))
    await api.wait_state(job, JobState.STARTED)
    pages = api.app.web.pages
    view = ViewParams()
    deadline = time.monotonic() + 10
    while (built := await build(api.store, pages.memory, job, view)) is None or not all(
        built.grid.rows.get(t, [None])[0] is not None and built.grid.rows[t][0].state == "running"
        for t in ("x", "y")
    ):
        assert time.monotonic() < deadline
    assert built.follow and built.steps[0].label == "nap"
    streams = Streams(refresh=0.01, limit=10)
    frames = job_frames(streams, api.store, built, pages._live_parts)
    assert await anext(frames) == b"retry: 2000\n\n"

    header = TestEventHeader(job, 1, TEST, "nap", 0)
    target = Target("y")
    await api.store.write_test_event(TestEvent(header, target, "TargetErr", {"Error": "boom"}))
    cells = (await anext(frames)).decode()
    assert cells.startswith("id: ") and "event: cells" in cells
    assert 'id="c1-0" class="cell s-failed" hx-swap-oob="true"' in cells and "boom" in cells
    assert 'id="c0-0"' not in cells  # x did not change
    counts = (await anext(frames)).decode()
    assert "event: counts" in counts and "✗ 1" in counts

    retry = TestEventHeader(job, 1, TEST, "", 1)
    await api.store.write_test_event(TestEvent(retry, Target("x"), "TargetAcquired"))
    assert (await anext(frames)).decode() == "event: reload\ndata: attempt\n\n"
    streams.close()
    assert [chunk async for chunk in frames] == []
    await api.jm.stop(job)
