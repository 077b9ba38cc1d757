"""The access guard in a real browser (Debian's chromium, driven by Playwright) against a real
``contest serve``: a page on a rebound name gets nothing, another site's form or fetch starts no
job, and the login form sets a cookie that the server's own pages may use (the job page's Stop
button included) and no script can read."""

from __future__ import annotations

import html
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from e2ekit import ServerProcess, sleep_job
from playwright.sync_api import Browser, Page, Playwright
from seckit import create_token

from contest.testing.browser import launch

EVIL = "evil.test"
WAIT_MS = 20_000


class _Attacker(http.server.BaseHTTPRequestHandler):
    """Another site: serves whatever page a test put in ``pages``."""

    pages: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path, "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def attacker() -> Iterator[str]:
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        yield f"http://{EVIL}:{web.server_address[1]}"
    finally:
        web.shutdown()


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # made-up names that resolve to this machine, as an attacker's DNS would make them
    b = launch(playwright, f"--host-resolver-rules=MAP {EVIL} 127.0.0.1, MAP rebind.test 127.0.0.1")
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def forged_form(server: ServerProcess) -> str:
    """Another site's page that posts a job to the server as soon as it is opened."""
    desc = html.escape(json.dumps(sleep_job("30s")), quote=True)
    return (
        f'<form method="post" action="{server.url}/start">'
        '<input name="requestor" value="evil">'
        f'<input name="jobDesc" value="{desc}"></form>'
        "<script>document.forms[0].submit()</script>"
    )


def forged_answer(page: Page, server: ServerProcess) -> str:
    """What the server answered the forged form with, once the browser shows it."""
    page.wait_for_url(f"{server.url}/start", timeout=WAIT_MS)
    return page.inner_text("body")


def jobs(server: ServerProcess, token: str | None = None) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = httpx.get(f"{server.url}/api/v1/jobs", headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    out: list[dict[str, Any]] = resp.json()["jobs"]
    return out


def test_a_page_on_a_rebound_name_gets_nothing(shared_server: ServerProcess, page: Page) -> None:
    port = shared_server.url.rsplit(":", 1)[1]
    answer = page.goto(f"http://rebind.test:{port}/api/v1/version")
    assert answer is not None and answer.status == 403
    assert "this server does not answer to that host name" in page.inner_text("body")
    answer = page.goto(f"{shared_server.url}/api/v1/version")
    assert answer is not None and answer.status == 200
    assert json.loads(page.inner_text("body"))["api_version"] == 5


def test_another_sites_form_or_fetch_starts_no_job(
    shared_server: ServerProcess, attacker: str, page: Page
) -> None:
    before = len(jobs(shared_server))
    _Attacker.pages["/form.html"] = forged_form(shared_server)
    desc = json.dumps(json.dumps(sleep_job("30s")))
    _Attacker.pages["/fetch.html"] = (
        "<script>fetch(" + json.dumps(f"{shared_server.url}/start") + ", {method: 'POST', "
        "mode: 'no-cors', body: new URLSearchParams({requestor: 'evil', jobDesc: " + desc + "})})"
        ".then(() => document.title = 'sent', e => document.title = 'error ' + e)</script>"
    )
    page.goto(f"{attacker}/form.html")
    assert "cross-origin request refused" in forged_answer(page, shared_server)
    page.goto(f"{attacker}/fetch.html")
    page.wait_for_function("document.title === 'sent'", timeout=WAIT_MS)  # it went out
    assert len(jobs(shared_server)) == before


def test_the_login_cookie_works_for_the_servers_pages_only(
    tmp_path: Path, server_factory: type[ServerProcess], attacker: str, page: Page
) -> None:
    token = create_token(tmp_path / "tokens", "carol", "submitter")
    server = server_factory(
        tmp_path, f"sqlite:///{tmp_path / 'c.db'}", "--auth-file", str(tmp_path / "tokens")
    ).start()
    page.goto(f"{server.url}/")
    assert page.url == f"{server.url}/login?next=%2F"
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/", timeout=WAIT_MS)
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read the token
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "contest_token"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    assert page.evaluate("fetch('/api/v1/jobs').then(r => r.status)") == 200
    desc = json.dumps(json.dumps(sleep_job("30s")))
    answer = page.evaluate(
        "fetch('/start', {method: 'POST', body: new URLSearchParams({requestor: 'x', "
        f"jobDesc: {desc}}})}}).then(r => r.json())"
    )
    assert answer["Error"] is None, answer
    job_id = answer["Data"]["JobID"]
    assert [(j["job_id"], j["requestor"]) for j in jobs(server, token)] == [(job_id, "carol")]

    # the job page's own button, posted by the page: same origin, carol's job
    page.goto(f"{server.url}/jobs/{job_id}")
    page.click("text=Stop job")
    page.wait_for_function(
        "fetch(location.pathname.replace('/jobs/', '/api/v1/jobs/')).then(r => r.json())"
        ".then(j => j.state === 'JobStateCancelled')",
        timeout=WAIT_MS,
    )

    # logged in, the same browser opens another site's forged form: no job either
    _Attacker.pages["/login-form.html"] = forged_form(server)
    page.goto(f"{attacker}/login-form.html")
    assert "cross-origin request refused" in forged_answer(page, server)
    assert len(jobs(server, token)) == 1
