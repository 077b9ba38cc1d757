"""The browser the web pages are tested and measured in: Debian's ``chromium`` package, driven
by Playwright (a dev dependency), which is never let download a browser of its own.

The flags keep the headless browser to itself: no sandbox (tests run as root), no GPU, and none
of the background traffic a desktop browser makes (updates, sync, QUIC probes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def launch(playwright: Playwright, *args: str) -> Browser:
    """Start the system's chromium under ``playwright``, with ``args`` added to its flags (the
    security tests map made-up host names to loopback: ``--host-resolver-rules``)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *args])
