"""The server's ASGI application: the REST API, the web pages, and ConTest's form API.

``/api/...``, ``/openapi.json`` and ``/healthz`` go to the REST app; ``GET /metrics`` to
Prometheus' exposition (:mod:`contest.metrics`); a browser's ``GET``s (and
the pages' buttons) to the web view (:func:`contest.server.web.owns`), which answers 404 for a
path it does not know. Everything else is ConTest's: it routes by the whole path (``/start``,
``/status``...; anything else is an "unknown verb") and answers any other method, ``GET`` of its
verbs included, "Only POST requests are supported". The form side is plain ASGI rather than
Starlette so that its answers carry exactly ConTest's bytes and headers.
Every request's latency is measured (``contest_http_request_seconds``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from contest import metrics
from contest.golang.json import marshal
from contest.job.manager import JobService
from contest.server._asgi import BodyTooLarge, read_body
from contest.server._pieces import accepts_gzip, pieces
from contest.server.auth import principal_of
from contest.server.formapi import CONTENT_TYPE, MAX_FORM_BYTES, FormAPI, Reply
from contest.server.guard import Access, Guard
from contest.server.restapi import create_rest_app
from contest.server.web import create_web_app, owns

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

REST_PREFIXES = ("/api/",)
REST_PATHS = frozenset({"/api", "/openapi.json", "/healthz"})


def _content_length(scope: Scope) -> int:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


async def _send_reply(send: Send, reply: Reply) -> None:
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"content-length", str(reply.size()).encode()),
    ]
    if reply.encoding:
        headers.append((b"content-encoding", reply.encoding.encode()))
        headers.append((b"vary", b"Accept-Encoding"))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    if not reply.more:
        await send({"type": "http.response.body", "body": reply.body})
        return
    for piece in pieces((reply.body, *reply.more)):
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class ContestApp:
    """ASGI entry point: dispatches to the form API or the REST app, once the access guard
    (:mod:`contest.server.guard`: host, origin, token, role) has admitted the request."""

    def __init__(self, jobs: JobService, form: FormAPI, access: Access | None = None) -> None:
        self.jobs = jobs
        self.form = form
        self.rest = create_rest_app(jobs)
        self.web = create_web_app(jobs)
        self.guard = Guard(access)

    def close(self) -> None:
        """The server is stopping: end what would keep connections open (live pages)."""
        self.web.close()

    def warm(self) -> None:
        """Prepare what the first requests would otherwise wait for (blocking: a thread's)."""
        self.web.warm()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets: the server refuses the upgrade
        if not await self.guard.admit(scope, receive, send):
            return  # refused, or answered by the guard (the login page)
        path: str = scope.get("path", "/")
        began = time.perf_counter()
        try:
            if path == "/metrics" and scope["method"] in ("GET", "HEAD"):
                await self._metrics(scope, send)
            elif path in REST_PATHS or path.startswith(REST_PREFIXES):
                await self.rest(scope, receive, send)
            elif owns(scope["method"], path):
                await self.web(scope, receive, send)
            else:
                await self._form(scope, receive, send)
        finally:
            metrics.HTTP_REQUEST_SECONDS.labels(scope["method"], metrics.route_label(path)).observe(
                time.perf_counter() - began
            )

    async def _metrics(self, scope: Scope, send: Send) -> None:
        """``GET /metrics``: Prometheus' text format (see :mod:`contest.metrics`)."""
        jobs = self.jobs
        running = jobs.running_jobs()
        accept = ""
        for key, value in scope.get("headers", []):
            if key == b"accept":
                accept = value.decode("latin-1")
        try:
            body, ctype = await metrics.render(jobs.store, running, accept)
            status = 200
        except Exception as exc:  # the database is away: say so, as /healthz does
            log.warning("/metrics: %s", exc)
            body, status, ctype = f"metrics unavailable: {exc}\n".encode(), 503, "text/plain"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", ctype.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        if scope["method"] == "HEAD":
            body = b""
        await send({"type": "http.response.body", "body": body})

    async def _form(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        content_type = ""
        accept_encoding = ""
        for key, value in scope.get("headers", []):
            if key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
        body = b""
        if method == "POST":
            try:
                if _content_length(scope) > MAX_FORM_BYTES:
                    raise BodyTooLarge  # refused before a byte of it is read
                body = await read_body(receive, MAX_FORM_BYTES)
            except BodyTooLarge:
                msg = f"request body too large: the limit is {MAX_FORM_BYTES} bytes"
                await _send_reply(send, Reply(400, marshal({"Msg": msg})))
                return
        reply = await self.form.handle(
            method,
            scope.get("path", "/"),
            body,
            content_type,
            principal_of(scope),
            gzip=accepts_gzip(accept_encoding),
        )
        if method == "HEAD":
            reply = Reply(reply.status, b"")
        await _send_reply(send, reply)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        # the job manager's life is the server's (see lifecycle.py), not the app's
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    jobs: JobService,
    server_id: str,
    *,
    process_timeout: float = 3.0,
    access: Access | None = None,
) -> ContestApp:
    """The whole HTTP surface over one job manager; ``access`` None admits every request as
    the anonymous admin (an app built in-process), ``contest serve`` always gives one."""
    return ContestApp(jobs, FormAPI(jobs, server_id, timeout=process_timeout), access)
