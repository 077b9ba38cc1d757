"""A real browser (headless Chromium) against a real ``contest serve``: a page on a rebound name
gets nothing, a cross-site form or fetch starts no job, and the login form sets a cookie that
pages of the server may use and script cannot read."""

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
from browser import CHROMIUM, Browser
from e2ekit import ServerProcess, sleep_job
from seckit import create_token

EVIL = "evil.test"


class _Attacker(http.server.BaseHTTPRequestHandler):
    """Serves whatever page a test put in ``pages``."""

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
def attacker() -> Iterator[int]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium not installed (apt-get install chromium)")
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        yield web.server_address[1]
    finally:
        web.shutdown()


def browser(tmp_path: Path) -> Browser:
    rules = f"MAP {EVIL} 127.0.0.1, MAP rebind.test 127.0.0.1"
    return Browser(tmp_path / "profile", f"--host-resolver-rules={rules}")


def forged_form(server: ServerProcess) -> str:
    """A page of another site that posts a job to the server as soon as it is opened."""
    desc = html.escape(json.dumps(sleep_job("30s")), quote=True)
    return (
        f'<form method="post" action="{server.url}/start">'
        '<input name="requestor" value="evil">'
        f'<input name="jobDesc" value="{desc}"></form>'
        "<script>document.forms[0].submit()</script>"
    )


def forged_answer(b: Browser) -> str:
    """What the server answered the forged form with, once the browser shows it."""
    shown = b.wait_for("location.pathname === '/start' && document.body && document.body.innerText")
    return str(shown)


def jobs(server: ServerProcess, token: str | None = None) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = httpx.get(f"{server.url}/api/v1/jobs", headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    out: list[dict[str, Any]] = resp.json()["jobs"]
    return out


def test_a_page_on_a_rebound_name_gets_nothing(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    port = shared_server.url.rsplit(":", 1)[1]
    with browser(tmp_path) as b:
        b.goto(f"http://rebind.test:{port}/api/v1/version")
        assert "this server does not answer to that host name" in b.text()
        b.goto(f"{shared_server.url}/api/v1/version")
        assert json.loads(b.text())["api_version"] == 5


def test_a_cross_site_form_or_fetch_starts_no_job(
    shared_server: ServerProcess, attacker: int, tmp_path: Path
) -> None:
    before = len(jobs(shared_server))
    _Attacker.pages["/form.html"] = forged_form(shared_server)
    desc = json.dumps(json.dumps(sleep_job("30s")))
    _Attacker.pages["/fetch.html"] = (
        "<script>fetch(" + json.dumps(f"{shared_server.url}/start") + ", {method: 'POST', "
        "mode: 'no-cors', body: new URLSearchParams({requestor: 'evil', jobDesc: " + desc + "})})"
        ".then(() => document.title = 'sent', e => document.title = 'error ' + e)</script>"
    )
    with browser(tmp_path) as b:
        b.goto(f"http://{EVIL}:{attacker}/form.html")  # submits itself to the server
        assert "cross-origin request refused" in forged_answer(b)
        b.goto(f"http://{EVIL}:{attacker}/fetch.html")
        assert b.wait_for("document.title") == "sent"  # the request went (its answer is opaque)
    assert len(jobs(shared_server)) == before


def test_the_login_cookie_works_for_the_servers_pages_only(
    tmp_path: Path, server_factory: type[ServerProcess], attacker: int
) -> None:
    token = create_token(tmp_path / "tokens", "carol", "submitter")
    server = server_factory(
        tmp_path, f"sqlite:///{tmp_path / 'c.db'}", "--auth-file", str(tmp_path / "tokens")
    ).start()
    with browser(tmp_path) as b:
        b.goto(f"{server.url}/jobs/1")
        assert b.url() == f"{server.url}/login?next=%2Fjobs%2F1"
        b.navigate_by(
            f"document.querySelector('#token').value = {json.dumps(token)}; "
            "document.forms[0].submit()"
        )
        assert b.url() == f"{server.url}/jobs/1"
        assert b.evaluate("document.cookie") == ""  # HttpOnly: no script can read the token
        (cookie,) = [c for c in b.cookies() if c["name"] == "contest_token"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        assert b.evaluate("fetch('/api/v1/jobs').then(r => r.status)") == 200
        desc = json.dumps(json.dumps(sleep_job("30s")))
        answer = b.evaluate(
            "fetch('/start', {method: 'POST', body: new URLSearchParams({requestor: 'x', "
            f"jobDesc: {desc}}})}}).then(r => r.json())"
        )
        assert answer["Error"] is None, answer
        started = jobs(server, token)
        assert [(j["job_id"], j["requestor"]) for j in started] == [
            (answer["Data"]["JobID"], "carol")
        ]

        # logged in, the same browser opens another site's forged form: no job either
        _Attacker.pages["/login-form.html"] = forged_form(server)
        b.goto(f"http://{EVIL}:{attacker}/login-form.html")
        assert "cross-origin request refused" in forged_answer(b)
    assert len(jobs(server, token)) == 1
