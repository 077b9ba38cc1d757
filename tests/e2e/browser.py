"""A real headless Chromium, driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: commands on the browser's fd 3, answers and events on its fd 4,
each a JSON text ended by NUL). No browser is downloaded: Debian's ``chromium`` package."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Browser:
    """One browser with one page; ``goto``, ``evaluate`` in the page, and its cookies."""

    def __init__(self, profile: Path, *flags: str) -> None:
        cmd_read, self._cmd = os.pipe()  # the browser reads commands from its fd 3
        self._res, res_write = os.pipe()  # and writes answers to its fd 4

        def fds() -> None:
            os.dup2(cmd_read, 3)
            os.dup2(res_write, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--remote-debugging-pipe", f"--user-data-dir={profile}", *flags, "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=fds,
        )  # fmt: skip
        os.close(cmd_read)
        os.close(res_write)
        self._buf = b""
        self._id = 0
        self._events: list[dict[str, Any]] = []
        pages = [t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]
        attached = self.call("Target.attachToTarget", targetId=pages[0]["targetId"], flatten=True)
        self.session = attached["sessionId"]
        self.call("Page.enable", session=True)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (OSError, RuntimeError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self._cmd)
        os.close(self._res)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the protocol -----------------------------------------------------------------------

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._res], [], [], left)[0]:
                raise TimeoutError("no message from the browser")
            chunk = os.read(self._res, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser closed its pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(
        self, method: str, *, session: bool = False, timeout: float = 30, **params: Any
    ) -> Any:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._cmd, json.dumps(message).encode() + b"\0")
        while True:
            got = self._read(timeout)
            if got.get("id") == self._id:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                return got.get("result", {})
            self._events.append(got)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self._events):
                if ev.get("method") == method:
                    del self._events[: i + 1]
                    return ev
            self._events.append(self._read(max(deadline - time.monotonic(), 0.01)))

    # --- what a test does -------------------------------------------------------------------

    def goto(self, url: str) -> None:
        """Open ``url`` and wait for the page (after its redirects) to load."""
        self._events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call(
            "Runtime.evaluate",
            session=True,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """Poll a JavaScript expression until it is truthy (a page that navigates on its own,
        such as a form submitted by its script, fires no event we could wait for)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError:  # the page was being replaced
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression} stayed false")
            time.sleep(0.05)

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''"))

    def url(self) -> str:
        return str(self.evaluate("location.href"))

    def navigate_by(self, expression: str) -> None:
        """Run JavaScript that leaves the page (a form submission) and wait for the next one."""
        self._events.clear()
        self.evaluate(expression)
        self.wait_event("Page.loadEventFired")

    def cookies(self) -> list[dict[str, Any]]:
        """Every cookie of the browser, ``HttpOnly`` ones included."""
        cookies: list[dict[str, Any]] = self.call("Storage.getCookies")["cookies"]
        return cookies
