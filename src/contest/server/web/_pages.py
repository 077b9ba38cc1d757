"""The pages' endpoints: jobs, one job (and its live stream, its cells), one target, the API
documentation, the stop and retry buttons.

Every page is whole HTML that works without script; htmx swaps parts of it (a request from
htmx names its target in ``HX-Target``, and gets only that part). Reads go through the
storage (``run_read`` with the queries of :mod:`._queries`) and the job manager; the only
writes are the job manager's ``stop`` and ``retry``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from contest.events import TARGET_ERR
from contest.job.manager import JobService
from contest.server.formapi import MAX_JOB_ID
from contest.server.web import _queries as Q
from contest.server.web._access import may_change, may_change_job, requestor
from contest.server.web._cache import Memory
from contest.server.web._holders import holder
from contest.server.web._jobslist import STATES, ListParams, build_list
from contest.server.web._jobview import MAX_INT, BadParameter, JobPage, ViewParams, build
from contest.server.web._live import EventStreamResponse, Streams, job_frames, list_frames
from contest.server.web._model import Grid
from contest.server.web._render import environment, query
from contest.storage import JobState, Storage
from contest.storage.errors import StorageError

log = logging.getLogger(__name__)

#: events a cell's panel lists; more are a link to the REST API away
CELL_EVENTS = 1000
#: characters of one output stream a cell's panel shows
OUTPUT_SHOWN = 256 * 1024
#: jobs per page of a target's history
HISTORY_PAGE = 20
#: event-name endings of step output (Cmd's ``CmdStdout``, SSHCmd's ``SSHCmdStderr``, ...)
OUTPUT_SUFFIXES = ("Stdout", "Stderr", "Output")

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass
class _History:
    """One job in a target's history: how the target left each step of each attempt."""

    row: Q.JobRow
    attempts: dict[tuple[int, str, int], list[tuple[str, bool, str]]] = field(default_factory=dict)


class PageError(Exception):
    """An answer other than the page: status, heading, message."""

    def __init__(self, status: int, heading: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.heading = heading
        self.message = message


def _job_id(request: Request) -> int:
    job_id: int = request.path_params["job_id"]
    if not 1 <= job_id <= MAX_JOB_ID:
        raise PageError(404, "No such job", f"There is no job {job_id}.")
    return job_id


def _int_param(request: Request, name: str, low: int = 0) -> int:
    text = request.query_params.get(name, "").strip()
    if not text.isdigit() or not low <= int(text) <= MAX_INT:
        raise PageError(400, "Bad request", f"{name} must be a whole number, got {text!r}")
    return int(text)


def _wants(request: Request, target: str) -> bool:
    """True for an htmx request that swaps the element ``target`` (the page's part only)."""
    return (
        request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == target
    )


class Pages:
    """The endpoints, over one job manager and its storage."""

    def __init__(
        self, jobs: JobService, *, refresh: float, list_refresh: float, max_streams: int
    ) -> None:
        self.jobs = jobs
        # the pages read SQL (aggregates, pages of rows): the job manager's store is a Storage
        self.store = cast(Storage, jobs.store)
        self.env = environment()
        self.memory = Memory()
        self.streams = Streams(refresh, max_streams)
        self.list_refresh = list_refresh

    # --- plumbing --------------------------------------------------------------------------

    def render(self, template: str, **context: Any) -> str:
        context.setdefault("server_id", self.jobs.server_id)
        return self.env.get_template(template).render(**context)

    def html(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(
            self.render(template, **context), status_code, headers={"cache-control": "no-store"}
        )

    def error(self, status: int, heading: str, message: str) -> HTMLResponse:
        return self.html("error.html", status, status=status, heading=heading, message=message)

    def endpoint(self, handler: Endpoint) -> Endpoint:
        """Our errors as pages: a bad parameter 400, an outage of the database 503."""

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except PageError as exc:
                return self.error(exc.status, exc.heading, exc.message)
            except BadParameter as exc:
                return self.error(400, "Bad request", str(exc))
            except StorageError as exc:
                log.error("page %s: storage error: %s", request.url.path, exc)
                return self.error(503, "Database unavailable", str(exc))

        return wrapped

    def _stream_slot(self) -> None:
        if self.streams.open >= self.streams.limit:
            raise PageError(503, "Busy", "Too many live views are open; reload later.")

    async def _snapshot(self) -> tuple[int, int]:
        flush = getattr(self.store, "flush", None)
        if flush is not None:
            await flush()
        upto: tuple[int, int] = await self.store.run_read(Q.max_sequence, "reading event numbers")
        return upto

    # --- the jobs list ---------------------------------------------------------------------

    async def _jobs_context(self, params: ListParams) -> dict[str, Any]:
        jobs = await build_list(self.store, self.memory, params, self.jobs.instance_tag)
        older = jobs[-1].row.job_id if len(jobs) == params.per else None
        filtered = bool(params.states or params.tags or params.requestor or params.name)
        return {"jobs": jobs, "params": params, "older": older, "filtered": filtered}

    async def jobs_page(self, request: Request) -> Response:
        params = ListParams.parse(request.query_params)
        after, fw_after = await self._snapshot()
        context = await self._jobs_context(params)
        live = {**params.query(), "after": after, "fafter": fw_after}
        context["live_url"] = f"/jobs/live?{query(live)}"
        if _wants(request, "jobs"):
            return self.html("_jobs_table.html", **context)
        return self.html("jobs.html", states=STATES, **context)

    async def jobs_live(self, request: Request) -> Response:
        params = ListParams.parse(request.query_params)
        upto = (_int_param(request, "after"), _int_param(request, "fafter"))
        self._stream_slot()

        async def render() -> str:
            return self.render("_jobs_rows.html", **await self._jobs_context(params))

        return EventStreamResponse(
            self.streams, list_frames(self.streams, self.store, upto, render, self.list_refresh)
        )

    # --- one job ---------------------------------------------------------------------------

    async def job_page(self, request: Request) -> Response:
        job_id = _job_id(request)
        view = ViewParams.parse(request.query_params)
        page = await build(self.store, self.memory, job_id, view)
        if page is None:
            raise PageError(404, "No such job", f"There is no job {job_id}.")
        allowed = may_change_job(request, page.job.requestor)
        context: dict[str, Any] = {
            "p": page,
            "self_url": f"/jobs/{job_id}?{query(view.query())}",
            "live_url": self._live_url(page) if page.active else None,
            # running here, or on another server of the database (the stop reaches it there)
            "can_stop": allowed
            and (self.jobs.running(job_id) or page.job.state is JobState.STARTED),
            "can_retry": allowed,
        }
        if _wants(request, "live"):
            return self.html("_job_live.html", **context)
        return self.html("job.html", **context)

    @staticmethod
    def _live_url(page: JobPage) -> str:
        params = page.view.query(
            run=page.run or None,
            test=page.test.name if page.test else None,
            attempt=page.attempt if page.test else None,
        )
        after, fw_after = page.upto
        extra = {"after": after, "fafter": fw_after, "follow": 1 if page.follow else None}
        return f"/jobs/{page.job.job_id}/live?{query({**params, **extra})}"

    async def job_live(self, request: Request) -> Response:
        job_id = _job_id(request)
        view = ViewParams.parse(request.query_params)
        upto = (_int_param(request, "after"), _int_param(request, "fafter"))
        self._stream_slot()
        page = await build(self.store, self.memory, job_id, view, upto=upto, full=False)
        if page is None:
            raise PageError(404, "No such job", f"There is no job {job_id}.")
        page.follow = request.query_params.get("follow") == "1"
        return EventStreamResponse(
            self.streams, job_frames(self.streams, self.store, page, self._live_parts)
        )

    def _live_parts(self, page: JobPage, changed: list[str], counts: bool) -> list[tuple[str, str]]:
        parts = []
        if changed:
            rows = {t: i for i, t in enumerate(page.targets)}
            parts.append(
                ("cells", self.render("_live_cells.html", p=page, changed=changed, rows=rows))
            )
        if counts:
            parts.append(("counts", self.render("_live_counts.html", p=page)))
        return parts

    async def cell(self, request: Request) -> Response:
        job_id = _job_id(request)
        params = request.query_params
        step = params.get("step")
        target = params.get("target")
        test = params.get("test")
        if step is None or not target or not test:
            raise PageError(400, "Bad request", "test, step and target are required")
        key = Q.AttemptKey(
            job_id, _int_param(request, "run", 1), test, _int_param(request, "attempt")
        )
        events = await self.store.run_read(
            lambda c: Q.cell_events(c, key, step, target, CELL_EVENTS + 1), "reading a cell"
        )
        truncated = len(events) > CELL_EVENTS
        events = events[:CELL_EVENTS]
        grid = Grid.empty([target], [step], False)
        streams: dict[str, list[str]] = {}
        for e in events:
            grid.apply(target, step, e.name, e.emit_time, e.payload)
            msg = e.payload.get("Msg") if isinstance(e.payload, dict) else None
            if isinstance(msg, str) and e.name.endswith(OUTPUT_SUFFIXES):
                streams.setdefault(e.name, []).append(msg)
        outputs = []
        for name, chunks in streams.items():
            text = "".join(chunks)
            outputs.append((name, text[:OUTPUT_SHOWN], max(len(text) - OUTPUT_SHOWN, 0)))
        api = query(
            {
                "run": key.run_id,
                "test": key.test_name,
                "attempt": key.attempt,
                "step": step,
                "target": target,
            }
        )
        return self.html(
            "_cell_detail.html",
            key=key,
            step=step,
            target=target,
            cell=grid.rows[target][0],
            events=events,
            outputs=outputs,
            truncated=truncated,
            api_url=f"/api/v1/jobs/{job_id}/events?{api}",
        )

    # --- the buttons -------------------------------------------------------------------------

    async def _check_may_change(self, request: Request, job_id: int) -> None:
        if not may_change(request):
            raise PageError(403, "Not allowed", "Your role may not stop or retry jobs.")
        req = await self.jobs.request(job_id)
        if req is not None and not may_change_job(request, req.requestor):
            raise PageError(403, "Not allowed", f"Job {job_id} is {req.requestor}'s, not yours.")

    def _done(self, request: Request, message: str, location: str) -> Response:
        if request.headers.get("hx-request") == "true":
            return HTMLResponse(f"<p>{message}</p>", headers={"hx-redirect": location})
        return RedirectResponse(location, 303)

    async def stop(self, request: Request) -> Response:
        job_id = _job_id(request)
        await self._check_may_change(request, job_id)
        try:
            await self.jobs.stop(job_id)
        except StorageError:
            raise
        except Exception as exc:
            raise PageError(409, "Cannot stop the job", str(exc)) from None
        if request.headers.get("hx-request") == "true":
            return HTMLResponse("<p>Stopping the job…</p>")
        return RedirectResponse(f"/jobs/{job_id}", 303)

    async def retry(self, request: Request) -> Response:
        job_id = _job_id(request)
        await self._check_may_change(request, job_id)
        try:
            new_id = await self.jobs.retry(job_id, requestor(request))
        except StorageError:
            raise
        except Exception as exc:
            raise PageError(409, "Cannot retry the job", str(exc)) from None
        return self._done(request, f"Started job {new_id}.", f"/jobs/{new_id}")

    # --- one target ----------------------------------------------------------------------------

    async def target_page(self, request: Request) -> Response:
        target_id: str = request.path_params["target_id"]
        if not target_id:
            raise PageError(404, "Not found", "A target's page is at /targets/ID.")
        before_text = request.query_params.get("before", "").strip()
        before = _int_param(request, "before", 1) if before_text else None

        async def read(conn: Any) -> tuple[Any, ...]:
            ids = await Q.target_jobs(conn, target_id, before, HISTORY_PAGE)
            rows = await Q.jobs_by_id(conn, ids)
            outcomes = await Q.target_outcomes(conn, target_id, ids)
            return ids, rows, outcomes, await Q.last_failure(conn, target_id)

        # a seek per step of each job in its history: many statements, read in the reader's
        # thread (tests/storage/test_storage_target_queries.py runs them whole)
        ids, rows, outcomes, last = await self.store.run_read_whole(read, "reading a target")
        history = [_History(rows[j]) for j in ids if j in rows]
        by_job = {h.row.job_id: h for h in history}
        for job_id, e in outcomes:
            h = by_job.get(job_id)
            if h is not None:
                ok = e.name != TARGET_ERR
                steps = h.attempts.setdefault((e.run_id, e.test_name, e.attempt), [])
                steps.append((e.step_label, ok, "" if ok else Q.error_text(e.payload)))
        return self.html(
            "target.html",
            target=target_id,
            history=history,
            holder=await holder(self.store, self.jobs, target_id),
            last_failure=last,
            last_error=Q.error_text(last[1].payload) if last else "",
            before=before,
            older=ids[-1] if len(ids) == HISTORY_PAGE else None,
        )

    # --- the API's documentation -----------------------------------------------------------------

    async def docs(self, request: Request) -> Response:
        return self.html("docs.html")

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return self.error(404, "Not found", f"Nothing is at {request.url.path}.")
