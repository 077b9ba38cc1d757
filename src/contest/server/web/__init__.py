"""The web view: what a browser sees on the server's own port.

* ``/`` — the jobs, newest first, filtered by state, tags, requestor and name, with their
  progress; it updates live.
* ``/jobs/{id}`` — one job: its targets x steps grid for a run, test and attempt (paged; the
  counts per step cover every target), filled in live as the job runs; a cell shows that
  target's events in that step, its output and its error; the targets the job waits for and
  who holds them; its reports; stop and retry buttons for the roles that may use them.
* ``/targets/{id}`` — one target across jobs: how it fared in each step, its last failure,
  who holds it now.
* ``/docs`` — the REST API's documentation (Swagger UI over ``/openapi.json``).

Pages are rendered on the server (Jinja2); htmx and its server-sent-events extension swap
parts of them. Every asset is in ``static/`` (their versions and licences in its README), so
the pages need nothing but this server. Any other ``GET`` answers 404; ConTest's form verbs keep
their own answers (see :func:`owns`).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from contest.job.manager import JobService
from contest.server.formapi import RESPONSE_TYPES
from contest.server.web._pages import Pages

__all__ = ["WebApp", "create_web_app", "owns"]

#: seconds between two looks at the database by a job page's live stream
REFRESH = 0.5
#: the same for the jobs list's stream
LIST_REFRESH = 2.0
#: live streams open at once, at most
MAX_STREAMS = 200

_POST_PATHS = re.compile(r"/jobs/[0-9]+/(stop|retry)")


def owns(method: str, path: str) -> bool:
    """True for the requests the web view answers: every ``GET``/``HEAD`` except of ConTest's
    form verbs (which answer them "Only POST requests are supported", as ConTest does), and the
    buttons' ``POST`` paths."""
    if method in ("GET", "HEAD"):
        return path.lstrip("/") not in RESPONSE_TYPES
    return method == "POST" and _POST_PATHS.fullmatch(path) is not None


class WebApp:
    """The pages as one ASGI app, and the switch that ends their live streams."""

    def __init__(self, pages: Pages, app: Starlette) -> None:
        self.pages = pages
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def close(self) -> None:
        """End every live stream (the server is stopping: they would hold it up)."""
        self.pages.streams.close()

    def warm(self) -> None:
        """Compile every template now (a quarter of a second), not on the first page asked
        for; blocking: run it in a thread."""
        env = self.pages.env
        for name in env.list_templates(extensions=["html"]):
            env.get_template(name)


def create_web_app(
    jobs: JobService,
    *,
    refresh: float = REFRESH,
    list_refresh: float = LIST_REFRESH,
    max_streams: int = MAX_STREAMS,
) -> WebApp:
    """The pages over a job manager, whose ``store`` is a SQL ``Storage``."""
    pages = Pages(jobs, refresh=refresh, list_refresh=list_refresh, max_streams=max_streams)
    e = pages.endpoint
    static = GZipMiddleware(StaticFiles(packages=[("contest.server.web", "static")]))
    routes = [
        Route("/", e(pages.jobs_page), methods=["GET"]),
        Route("/jobs/live", e(pages.jobs_live), methods=["GET"]),
        Route("/jobs/{job_id:int}", e(pages.job_page), methods=["GET"]),
        Route("/jobs/{job_id:int}/live", e(pages.job_live), methods=["GET"]),
        Route("/jobs/{job_id:int}/cell", e(pages.cell), methods=["GET"]),
        Route("/jobs/{job_id:int}/stop", e(pages.stop), methods=["POST"]),
        Route("/jobs/{job_id:int}/retry", e(pages.retry), methods=["POST"]),
        Route("/targets/{target_id:path}", e(pages.target_page), methods=["GET"]),
        Route("/docs", e(pages.docs), methods=["GET"]),
        Mount("/static", app=static),
    ]
    app = Starlette(routes=routes, exception_handlers={404: pages.not_found})
    app.router.redirect_slashes = False  # an unknown path is a 404, not a redirect to a guess
    return WebApp(pages, app)
