"""The web pages in a real browser (Debian's chromium, driven by Playwright) against a real
``contest serve`` on a real database.

One server and one browser serve the whole module. A 10,000-target job of five steps is run by
``contest run`` in the background from the start of the module on a database of its own; the
last test serves that database with ``contest serve`` and opens the job's page (which also shows
that the server lists the jobs of ``contest run``). Screenshots go to ``test-artifacts/web/``
(each test that takes one prints where).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2ekit import CONTEST, ServerProcess, literal_job, sleep_job, write_descriptor
from playwright.sync_api import Browser, Page, Playwright

from contest.testing.browser import launch

WAIT_MS = 20_000  # the longest a page may take to show what a test waits for
BIG_TARGETS = 10_000
BIG_STEPS = 5
# an element count a page of 100 rows of 5 cells stays under (10,000 rows would be ~130,000)
MAX_ELEMENTS = 3000
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web")


@pytest.fixture(scope="module", autouse=True)
def big_run(folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``contest run`` of the 10,000 x 5 job, started as the module starts."""
    desc = literal_job(
        name="ten thousand",
        targets=[{"ID": f"dut{i:05d}"} for i in range(BIG_TARGETS)],
        steps=[{"name": "noop", "label": f"step{i}", "parameters": {}} for i in range(BIG_STEPS)],
        success="=100%",
    )
    path = write_descriptor(folder, "big.json", desc)
    with (folder / "big-run.log").open("wb") as out:
        proc = subprocess.Popen(
            [*CONTEST, "run", str(path), "--json", "--db", f"sqlite:///{folder / 'big.db'}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        folder,
        f"sqlite:///{folder / 'web.db'}",
        "--allow-local-exec",
        "--target-wait-poll",
        "200ms",  # a job waiting for busy targets asks again soon: the waiting test stays quick
    ).start()
    try:
        yield srv
    finally:
        try:
            srv.stop()
        finally:
            srv.kill()


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = launch(playwright)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield p
    finally:
        context.close()
    assert errors == [], errors


def shot(p: Page, name: str) -> None:
    """A screenshot in ``test-artifacts/web/`` at the top of the checkout (ignored by git): it
    outlives the temporary folders, which later test runs clean up."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    p.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def submit(server: ServerProcess, desc: dict[str, Any]) -> int:
    resp = httpx.post(f"{server.url}/api/v1/jobs", json={"descriptor": desc}, timeout=30)
    assert resp.status_code == 201, resp.text
    job_id: int = resp.json()["job_id"]
    return job_id


def stamp(p: Page) -> None:
    """Mark the document: a full reload would lose the mark, a live update keeps it."""
    p.evaluate("window.__contestStamp = 1")


def still_stamped(p: Page) -> bool:
    return bool(p.evaluate("window.__contestStamp === 1"))


def cell_states(p: Page) -> list[str]:
    states: list[str] = p.eval_on_selector_all(
        "table.grid td.cell", "tds => tds.map(td => td.className.replace('cell s-', ''))"
    )
    return states


def flaky_job() -> dict[str, Any]:
    """Four targets through a probe that prints and takes a moment, t3 failing it, then a
    sleep."""
    script = "sleep 1; echo probing {{ .ID }}; echo oops >&2; test {{ .ID }} != t3"
    return literal_job(
        name="flaky",
        targets=[{"ID": f"t{i}"} for i in range(1, 5)],
        steps=[
            {
                "name": "cmd",
                "label": "probe",
                "parameters": {
                    "executable": ["sh"],
                    "args": ["-c", script],
                    "emit_stdout": ["true"],
                    "emit_stderr": ["true"],
                },
            },
            {"name": "sleep", "label": "soak", "parameters": {"duration": ["2s"]}},
        ],
        success="=100%",
    )


def test_the_grid_fills_in_live_and_a_failed_cell_says_why(
    server: ServerProcess, page: Page
) -> None:
    job = submit(server, flaky_job())
    page.goto(f"{server.url}/jobs/{job}")
    stamp(page)
    seen: list[list[str]] = []
    deadline = time.monotonic() + WAIT_MS / 1000
    while page.inner_text("#job-state") != "Completed":
        assert time.monotonic() < deadline, seen[-1:]
        states = cell_states(page)
        if not seen or states != seen[-1]:
            seen.append(states)
        page.wait_for_timeout(100)
    seen.append(cell_states(page))
    assert still_stamped(page), "the page was reloaded, not updated"
    # the grid went through running cells to its end: t3 failed the probe, the others passed
    assert any("running" in states for states in seen[:-1]), seen
    assert seen[-1] == ["passed", "passed"] * 2 + ["failed", "none"] + ["passed", "passed"]
    assert "✓ 3 ✗ 1" in page.inner_text("#counts")
    shot(page, "grid-done")

    page.click('tr[data-target="t3"] td.s-failed button')
    page.wait_for_selector("#cell-error")
    assert page.inner_text("#cell-error") == "exit status 1"
    detail = page.inner_text("#detail")
    assert "probing t3" in detail and "oops" in detail and "TargetErr" in detail
    assert page.get_attribute('tr[data-target="t3"] td.s-failed button', "aria-pressed")
    shot(page, "failed-cell")


def test_stop_a_running_job_from_its_page(server: ServerProcess, page: Page) -> None:
    job = submit(server, sleep_job("60s", n_targets=2, name="to stop"))
    page.goto(f"{server.url}/jobs/{job}")
    page.wait_for_selector("td.s-running", timeout=WAIT_MS)
    stamp(page)
    page.click("text=Stop job")
    page.wait_for_selector("#job-state:has-text('Cancelled')", timeout=WAIT_MS)
    assert still_stamped(page)
    assert page.query_selector("text=Stop job") is None  # nothing left to stop
    assert server.state(job) == "JobStateCancelled"
    shot(page, "stopped")


def on_duts(seconds: str, name: str) -> dict[str, Any]:
    """A job of one sleep step on targets dut1 and dut2."""
    return literal_job(
        name=name,
        targets=[{"ID": "dut1"}, {"ID": "dut2"}],
        steps=[{"name": "sleep", "label": "nap", "parameters": {"duration": [seconds]}}],
        success="=100%",
    )


def acquired(server: ServerProcess, job: int) -> bool:
    events = server.get(f"/api/v1/jobs/{job}/events", name=["TargetAcquired"]).json()["events"]
    return len(events) == 2


def test_a_waiting_job_shows_whom_it_waits_for_then_runs_live(
    server: ServerProcess, page: Page
) -> None:
    """A real wait: job A holds dut1 and dut2 in a long sleep, job B asks for them after it.
    B's page shows the waiting panel naming both targets and A; the jobs list shows B waiting;
    when A is stopped, B's page shows B acquiring and running them, without a reload."""
    jobs = page.context.new_page()  # the jobs list, open beside B's page
    list_errors: list[str] = []
    jobs.on("pageerror", lambda exc: list_errors.append(str(exc)))
    holder = submit(server, on_duts("60s", "holds dut1, dut2"))
    deadline = time.monotonic() + WAIT_MS / 1000
    while not acquired(server, holder):
        assert time.monotonic() < deadline, f"job {holder} did not acquire dut1, dut2"
        time.sleep(0.05)
    try:
        waiter = submit(server, on_duts("2s", "waits for dut1, dut2"))
        page.goto(f"{server.url}/jobs/{waiter}")
        stamp(page)
        page.wait_for_selector("#waiting-h", timeout=WAIT_MS)  # there, or pushed to the page
        rows = page.eval_on_selector_all(
            "section.waiting tbody tr",
            "trs => trs.map(tr => Array.from(tr.cells, td => td.innerText.trim()))",
        )
        assert rows == [["dut1", f"job {holder}"], ["dut2", f"job {holder}"]]
        assert page.get_attribute(f"section.waiting a[href='/jobs/{holder}']", "href")
        assert page.inner_text("#job-state") == "Started"
        shot(page, "waiting")

        jobs.goto(f"{server.url}/")
        stamp(jobs)
        assert "waiting for 2 targets" in jobs.inner_text(f"#job-{waiter}")
        assert "waiting" not in jobs.inner_text(f"#job-{holder}")
        shot(jobs, "jobs-waiting")
    finally:
        resp = httpx.post(f"{server.url}/api/v1/jobs/{holder}/stop", timeout=30)
        assert resp.status_code == 202, resp.text

    # A's end frees the targets: B's open page loses the panel and runs them, then completes
    page.wait_for_selector("#waiting-h", state="detached", timeout=WAIT_MS)
    page.wait_for_selector("td.s-running", timeout=WAIT_MS)
    shot(page, "waiting-acquired")
    page.wait_for_selector("#job-state:has-text('Completed')", timeout=WAIT_MS)
    assert cell_states(page) == ["passed", "passed"]
    assert still_stamped(page), "the page was reloaded, not updated"
    assert server.state(holder) == "JobStateCancelled"
    # and the open jobs list follows: B no longer waiting, completed
    jobs.wait_for_selector(f"#job-{waiter} .badge:has-text('Completed')", timeout=WAIT_MS)
    assert "waiting" not in jobs.inner_text(f"#job-{waiter}")
    assert still_stamped(jobs), "the jobs list was reloaded, not updated"
    assert list_errors == [], list_errors


def test_the_jobs_list_updates_live_and_the_api_docs_render(
    server: ServerProcess, page: Page
) -> None:
    page.goto(f"{server.url}/")
    stamp(page)
    job = submit(server, literal_job(name="appears live"))
    page.wait_for_selector(f"#job-{job}", timeout=WAIT_MS)
    page.wait_for_selector(f"#job-{job} .badge:has-text('Completed')", timeout=WAIT_MS)
    assert still_stamped(page)
    page.select_option("#f-state", "completed")
    page.wait_for_url("**/?state=completed*")
    assert page.query_selector(f"#job-{job}") is not None
    shot(page, "jobs")

    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".opblock", timeout=WAIT_MS)
    assert "/api/v1/jobs/{job_id}/stop" in page.inner_text("#swagger-ui")


def test_a_phone_and_the_keyboard(server: ServerProcess, browser: Browser) -> None:
    job = submit(server, flaky_job())
    server.wait_state(job, "JobStateCompleted")
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        p = context.new_page()
        p.goto(f"{server.url}/jobs/{job}")
        # nothing wider than the screen but the grid, which scrolls in its own box
        assert p.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        p.focus("#c0-0 button")
        p.keyboard.press("ArrowDown")
        p.keyboard.press("ArrowDown")
        assert p.evaluate("document.activeElement.closest('tr').dataset.target") == "t3"
        p.keyboard.press("Enter")
        p.wait_for_selector("#cell-error")
        assert "exit status 1" in p.inner_text("#detail")
        shot(p, "phone")
    finally:
        context.close()


def test_a_ten_thousand_target_job_page(
    big_run: subprocess.Popen[bytes], page: Page, folder: Path
) -> None:
    assert big_run.wait(300) == 0, (folder / "big-run.log").read_text()[-2000:]
    srv = ServerProcess(folder, f"sqlite:///{folder / 'big.db'}", name="big").start()
    try:
        page.goto(f"{srv.url}/")  # the jobs of `contest run` on the same database
        listed = page.inner_text("#job-1")
        assert "ten thousand" in listed and "10000/10000 passed" in listed
        started = time.perf_counter()
        page.goto(f"{srv.url}/jobs/1")
        page.wait_for_selector("#grid")
        took = time.perf_counter() - started
        timing = page.evaluate(
            "JSON.stringify(performance.getEntriesByType('navigation')[0].toJSON())"
        )
        nav = json.loads(timing)
        elements = page.evaluate("document.getElementsByTagName('*').length")
        print(
            f"10,000 x 5 job page: {took * 1000:.0f} ms to the grid, server answer "
            f"{nav['responseEnd'] - nav['requestStart']:.0f} ms, DOM complete "
            f"{nav['domComplete']:.0f} ms, {elements} elements"
        )
        assert elements < MAX_ELEMENTS
        assert len(page.query_selector_all("table.grid tbody tr")) == 100
        assert "targets 1 to 100 of 10000" in page.inner_text("caption")
        assert page.inner_text("#counts").count("✓ 10000") == BIG_STEPS
        page.click("text=Last")
        page.wait_for_selector('tr[data-target="dut09999"]', timeout=WAIT_MS)
        shot(page, "ten-thousand")
    finally:
        srv.stop()
