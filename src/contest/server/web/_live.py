"""Server-sent events: the pages fill in live, without reloading.

A page opens a stream with the snapshot it was drawn at (the newest test and framework event
numbers). The stream reads only the events numbered past it, every ``refresh`` seconds:

* the job page's stream follows one attempt on one page of targets: a routing event of a target
  on screen redraws its cell (``cells``: table cells swapped in by ID) and the counts of its
  step; anything that changes the page's shape (a new state, run, attempt or test, targets
  acquired, a wait for targets beginning or ending, a failure while only failures are shown)
  asks the page to fetch itself again (``reload``) and the stream goes quiet;
* the jobs list's stream sends the list again (``jobs``) when any event was stored.

Streams end when the client goes, or when the server stops (:meth:`Streams.close`); at most
``limit`` are open at once, so a crowd of tabs cannot hold the server's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

from starlette.responses import Response

from contest.events import (
    TARGET_ACQUIRE_ERR,
    TARGET_ACQUIRED,
    TARGET_ERR,
    TARGET_INTERRUPTED,
    TARGETS_WAIT_ENDED,
    TARGETS_WAITING,
)
from contest.server.web import _queries as Q
from contest.server.web._jobview import JobPage
from contest.storage import Storage

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: seconds between two comments on a quiet stream, so that a vanished client is noticed
KEEPALIVE = 15.0
#: events read per query by a stream (a big job stores thousands a second)
BATCH = 5000
#: batches one tick may read before it draws what it has
MAX_BATCHES = 8
#: events after which the job page is drawn anew rather than patched
_SHAPE_EVENTS = frozenset({TARGETS_WAITING, TARGETS_WAIT_ENDED, TARGET_ACQUIRE_ERR})


def frame(event: str | None, data: str = "", event_id: int | None = None) -> bytes:
    """One server-sent event; ``data`` may span lines."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in (data.splitlines() or [""]))
    return ("\n".join(lines) + "\n\n").encode()


class Streams:
    """The open streams: their number, and the signal that ends them all."""

    def __init__(self, refresh: float, limit: int) -> None:
        self.refresh = refresh
        self.limit = limit
        self.open = 0
        self.closing = asyncio.Event()

    def close(self) -> None:
        self.closing.set()

    async def pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; False once the server is stopping."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.closing.wait()
        return not self.closing.is_set()


class EventStreamResponse(Response):
    """An ASGI response sending ``frames`` as ``text/event-stream`` until they end, the client
    goes, or the server stops. It listens for the client's disconnect itself, whatever the ASGI
    server's version, so a closed tab never leaves a stream polling the database."""

    def __init__(self, streams: Streams, frames: AsyncGenerator[bytes, None]) -> None:
        # not Response.__init__: the headers are sent as they are below, without a length
        self.status_code = 200
        self.background = None
        self.streams = streams
        self.frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-store"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return

        async def pump() -> None:
            async for chunk in self.frames:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                continue

        self.streams.open += 1
        tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(watch())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.streams.open -= 1
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.frames.aclose()
        if tasks[0] in done and tasks[0].exception() is None:
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b""})


async def _quiet(streams: Streams) -> AsyncGenerator[bytes, None]:
    """Keep a stream open without news (after ``reload``: the page replaces it soon)."""
    while await streams.pause(KEEPALIVE):
        yield b": idle\n\n"


async def job_frames(
    streams: Streams,
    store: Storage,
    page: JobPage,
    render: Callable[[JobPage, list[str], bool], list[tuple[str, str]]],
) -> AsyncGenerator[bytes, None]:
    """The job page's stream, from the snapshot ``page`` was built at.

    ``render(page, changed, counts)`` draws the changed targets' cells (and the counts row when
    ``counts``) as ``(event, html)`` pairs of swaps by ID.
    """
    key = page.key
    after, fw_after = page.upto
    yield b"retry: 2000\n\n"
    last_sent = time.monotonic()
    while await streams.pause(streams.refresh):
        try:
            names = await store.run_read(
                lambda c: Q.framework_after(c, page.job.job_id, fw_after), "reading job states"
            )
            if names:
                yield frame("reload", "state")
                break
            events: list[Q.EventRow] = []
            for _ in range(MAX_BATCHES):
                since = events[-1].sequence if events else after
                batch = await store.run_read(
                    partial(Q.events_after, job_id=page.job.job_id, after=since, limit=BATCH),
                    "reading job events",
                )
                events.extend(batch)
                if len(batch) < BATCH:
                    break
        except Exception as exc:  # the database is away: try again at the next tick
            log.warning("live view of job %d: %s", page.job.job_id, exc)
            continue
        if events:
            after = events[-1].sequence
        reload, changed, recount = _apply(page, key, events)
        if reload:
            yield frame("reload", reload)
            break
        if changed or recount:
            if recount:
                page.recount()
            for name, html in render(page, changed, recount):
                yield frame(name, html, after)
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent > KEEPALIVE:
            yield b": keepalive\n\n"
            last_sent = time.monotonic()
    async for chunk in _quiet(streams):
        yield chunk


def _apply(
    page: JobPage, key: Q.AttemptKey | None, events: list[Q.EventRow]
) -> tuple[str, list[str], bool]:
    """Apply new events to the page: (why to reload or "", targets whose row changed, whether
    the counts changed)."""
    changed: dict[str, None] = {}
    recount = False
    for ev in events:
        if ev.name in _SHAPE_EVENTS:
            return "waiting", [], False  # a wait began or ended, or an acquisition failed
        ours = key is not None and (ev.run_id, ev.test_name, ev.attempt) == (
            key.run_id,
            key.test_name,
            key.attempt,
        )
        if ev.name == TARGET_ACQUIRED:
            if ours:
                return "targets", [], False
            if page.follow:
                return "attempt", [], False  # the job moved on to another test or attempt
            continue
        if not ours or (ev.name not in Q.ROUTING and ev.name != TARGET_INTERRUPTED):
            continue
        if ev.name == TARGET_ERR and page.view.show == "failed":
            return "failed", [], False
        counted = (ev.test_name, ev.attempt, ev.step_label, ev.name)
        page.counts[counted] = page.counts.get(counted, 0) + 1
        recount = True
        if ev.target_id is not None and page.grid.apply(
            ev.target_id, ev.step_label, ev.name, ev.emit_time, ev.payload
        ):
            page.grid.settle(ev.target_id)
            changed[ev.target_id] = None
    return "", list(changed), recount


async def list_frames(
    streams: Streams,
    store: Storage,
    upto: tuple[int, int],
    render: Callable[[], Awaitable[str]],
    refresh: float,
) -> AsyncGenerator[bytes, None]:
    """The jobs list's stream: the list again whenever anything was stored since ``upto``."""
    yield b"retry: 2000\n\n"
    seen = upto
    last_sent = time.monotonic()
    while await streams.pause(refresh):
        try:
            now = await store.run_read(Q.max_sequence, "reading event numbers")
            if now == seen:
                if time.monotonic() - last_sent > KEEPALIVE:
                    yield b": keepalive\n\n"
                    last_sent = time.monotonic()
                continue
            html = await render()
        except Exception as exc:
            log.warning("live jobs list: %s", exc)
            continue
        seen = now
        yield frame("jobs", html)
        last_sent = time.monotonic()
