"""A JSON REST API under ``/api/v1/``, beside ConTest's form API, described by ``/openapi.json``.

ConTest's API can only be driven by its form verbs and answers with one big status document; this
one lets tools page through a job's events, fetch its reports alone, and follow its progress
cheaply (``contestcli --wait`` draws its live view from ``/progress``). It reads and writes through
the same job manager as the form API, so both always agree.

Every input is checked before use: a malformed body, a parameter of the wrong type or range, an
unknown job gives a 4xx with ``{"error": message}``; only a fault of ours (or of the database,
503) is a 5xx. The OpenAPI document (:mod:`contest.server.openapi`) is the contract, and the suite
fuzzes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from contest import __version__
from contest.events import (
    FrameworkEvent,
    FrameworkEventQuery,
    TestEvent,
    TestEventQuery,
)
from contest.golang.time import go_time
from contest.job.descriptor import DescriptorValidationError
from contest.job.manager import JobService
from contest.job.statusdoc import GZIP_FROM, job_report_json
from contest.progress import ProgressTracker
from contest.redaction import redact_descriptor
from contest.server import openapi
from contest.server._pieces import accepts_gzip, pieces
from contest.server.auth import Principal, may_control, principal_of
from contest.server.formapi import API_VERSION, MAX_JOB_ID, MAX_REQUESTOR_BYTES
from contest.storage.errors import ParameterTooLong, StorageError
from contest.storage.models import JobRequest, JobState

log = logging.getLogger(__name__)

DEFAULT_REQUESTOR = "contest-rest"
MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_JOB_LIMIT = 100
MAX_JOB_LIMIT = 1000
DEFAULT_EVENT_LIMIT = 1000
MAX_EVENT_LIMIT = 10000
MAX_FILTER_VALUES = 100
JOB_STATES = {s.event_name: s for s in JobState}


class ApiError(Exception):
    """A 4xx (or 503) answer: ``{"error": message}`` plus optional ``details``."""

    def __init__(self, status: int, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


# --- JSON shapes ------------------------------------------------------------------------------


def job_json(req: JobRequest) -> dict[str, Any]:
    return {
        "job_id": req.job_id,
        "name": req.name,
        "requestor": req.requestor,
        "server_id": req.server_id,
        "state": req.state.event_name,
        "state_time": go_time(req.state_time) if req.state_time else None,
        "request_time": go_time(req.request_time),
        "tags": list(req.tags),
    }


def test_event_json(ev: TestEvent) -> dict[str, Any]:
    h = ev.header
    return {
        "sequence": ev.sequence,
        "emit_time": go_time(ev.emit_time),
        "job_id": h.job_id,
        "run_id": h.run_id,
        "test_name": h.test_name,
        "step_label": h.step_label,
        "test_attempt": h.test_attempt,
        "target": ev.target.to_json_obj() if ev.target is not None else None,
        "name": ev.name,
        "payload": ev.payload,
    }


def framework_event_json(ev: FrameworkEvent) -> dict[str, Any]:
    return {
        "sequence": ev.sequence,
        "emit_time": go_time(ev.emit_time),
        "job_id": ev.job_id,
        "name": ev.name,
        "payload": ev.payload,
    }


# --- input checks -----------------------------------------------------------------------------


def _int(text: str, name: str, low: int, high: int) -> int:
    t = text.strip()
    if not t or not (t.isascii() and (t.isdigit() or (t[0] in "+-" and t[1:].isdigit()))):
        raise ApiError(400, f"{name} must be an integer, got {text!r}")
    value = int(t)
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}, got {value}")
    return value


def _job_id(request: Request) -> int:
    return _int(request.path_params["job_id"], "job_id", 1, MAX_JOB_ID)


def _query_int(request: Request, name: str, low: int, high: int, default: int | None) -> int | None:
    values = request.query_params.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        raise ApiError(400, f"{name} may be given once")
    return _int(values[0], name, low, high)


def _query_list(request: Request, name: str) -> list[str] | None:
    """A repeatable parameter (``?tag=a&tag=b``); values are taken whole (a target ID may hold
    a comma), and may not be empty."""
    values = request.query_params.getlist(name)
    if len(values) > MAX_FILTER_VALUES:
        raise ApiError(400, f"at most {MAX_FILTER_VALUES} values of {name}")
    if any(v == "" for v in values):
        raise ApiError(400, f"{name} may not be empty")
    return list(dict.fromkeys(values)) or None  # a value given twice filters as once


def _query_choice(request: Request, name: str, choices: Sequence[str], default: str) -> str:
    values = request.query_params.getlist(name)
    if not values:
        return default
    if len(values) > 1 or values[0] not in choices:
        raise ApiError(400, f"{name} must be one of {', '.join(choices)}")
    return values[0]


def _requestor(body: dict[str, Any], principal: Principal) -> str:
    """Printable ASCII, 1 to 32 characters: ConTest's 32-byte limit, in a form a JSON schema
    can state (a schema counts characters, ConTest counts bytes). With tokens, the token's
    name, whatever the body says."""
    if principal.authenticated:
        return principal.name
    if "requestor" not in body:
        return DEFAULT_REQUESTOR
    value = body["requestor"]
    if not isinstance(value, str) or not _REQUESTOR_RE.fullmatch(value):
        raise ApiError(
            400,
            f"requestor must be 1 to {MAX_REQUESTOR_BYTES} printable ASCII characters",
        )
    return value


_REQUESTOR_RE = re.compile(f"[ -~]{{1,{MAX_REQUESTOR_BYTES}}}")


async def _json_body(request: Request, *, required: bool) -> dict[str, Any]:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if required:
            raise ApiError(400, "a JSON object body is required")
        return {}
    try:
        # a big descriptor is decoded in a thread, not on the loop that runs the jobs
        body = await asyncio.to_thread(json.loads, raw) if size > 65536 else json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


# --- the API ----------------------------------------------------------------------------------


class RestAPI:
    """The routes, bound to one job manager."""

    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs
        self.progress_tracker = ProgressTracker()

    async def _get(self, job_id: int) -> JobRequest:
        flush = getattr(self.jobs.store, "flush", None)
        if flush is not None:
            await flush()  # the job's row follows its state events: read it after them
        req = await self.jobs.request(job_id)
        if req is None:
            raise ApiError(404, f"job {job_id} not found")
        return req

    async def healthz(self, request: Request) -> Response:
        ping = getattr(self.jobs.store, "ping", None)
        if ping is not None:
            try:
                await ping()
            except Exception as exc:
                return JSONResponse({"status": "unavailable", "error": str(exc)}, 503)
        return JSONResponse({"status": "ok", "server_id": self.jobs.server_id})

    async def openapi_doc(self, request: Request) -> Response:
        return JSONResponse(openapi.document())

    async def version(self, request: Request) -> Response:
        return JSONResponse(
            {"api_version": API_VERSION, "server_id": self.jobs.server_id, "version": __version__}
        )

    async def list_servers(self, request: Request) -> Response:
        servers = await self.jobs.servers()
        return JSONResponse({"servers": [s.to_json_obj() for s in servers]})

    async def list_jobs(self, request: Request) -> Response:
        names = _query_list(request, "state")
        states = None
        if names is not None:
            unknown = [n for n in names if n not in JOB_STATES]
            if unknown:
                raise ApiError(400, f"unknown job state {unknown[0]!r}")
            states = [JOB_STATES[n] for n in names]
        tags = _query_list(request, "tag")
        if tags is not None:
            from contest.job.descriptor import check_tags

            problems = check_tags(tags, allow_internal=True, path="tag")
            if problems:
                raise ApiError(400, str(problems[0]))
        requestor = request.query_params.get("requestor")
        if requestor is not None and requestor == "":
            raise ApiError(400, "requestor must not be empty")
        limit = _query_int(request, "limit", 1, MAX_JOB_LIMIT, DEFAULT_JOB_LIMIT)
        order = _query_choice(request, "order", ("asc", "desc"), "asc")
        ids = await self.jobs.list(
            states=states, tags=tags, requestor=requestor, limit=limit, order=order
        )
        jobs = []
        for job_id in ids:
            req = await self.jobs.request(job_id)
            if req is not None:
                jobs.append(job_json(req))
        return JSONResponse({"jobs": jobs})

    async def create_job(self, request: Request) -> Response:
        body = await _json_body(request, required=True)
        desc = body.get("descriptor")
        if isinstance(desc, dict):
            text = json.dumps(desc)
        elif isinstance(desc, str) and desc.strip():
            text = desc
        else:
            raise ApiError(400, "descriptor must be a JSON object or a non-empty JSON or YAML text")
        requestor = _requestor(body, principal_of(request.scope))
        try:
            job_id = await self.jobs.submit(text, requestor)
        except DescriptorValidationError as exc:
            raise ApiError(
                422,
                "invalid job descriptor",
                [{"path": e.path, "message": e.message} for e in exc.errors],
            ) from None
        except ParameterTooLong as exc:
            raise ApiError(422, str(exc)) from None
        return JSONResponse({"job_id": job_id}, 201)

    async def get_job(self, request: Request) -> Response:
        req = await self._get(_job_id(request))
        body = job_json(req)
        # the same object as /progress's Waiting (one function makes both), null when not waiting
        body["waiting"] = await self.progress_tracker.waiting(self.jobs.store, req)
        return JSONResponse(body)

    async def get_status(self, request: Request) -> Response:
        job_id = _job_id(request)
        await self._get(job_id)
        try:
            doc = await self.jobs.status_document(job_id)
        except StorageError:
            raise
        except Exception as exc:
            raise ApiError(409, f"cannot build the status of job {job_id}: {exc}") from None
        zipped = accepts_gzip(request.headers.get("accept-encoding", "")) and (
            doc.size() >= GZIP_FROM
        )
        chunks = await doc.body(gzip=zipped)
        headers = {"content-length": str(sum(len(c) for c in chunks))}
        if zipped:
            headers.update({"content-encoding": "gzip", "vary": "Accept-Encoding"})
        return StreamingResponse(
            _iterate(pieces(chunks)), media_type="application/json", headers=headers
        )

    async def get_descriptor(self, request: Request) -> Response:
        req = await self._get(_job_id(request))
        # stored redacted already; redacted again for jobs stored before redaction existed
        text = await asyncio.to_thread(redact_descriptor, req.descriptor, self.jobs.registry)
        try:
            doc = json.loads(text)
        except ValueError:
            doc = text
        return JSONResponse({"job_id": req.job_id, "descriptor": doc})

    def _check_control(self, request: Request, req: JobRequest, verb: str) -> None:
        principal = principal_of(request.scope)
        if not may_control(principal, req.requestor):
            raise ApiError(
                403,
                f"{principal.name} ({principal.role}) may {verb} only its own jobs; "
                f"job {req.job_id} is {req.requestor}'s",
            )

    async def get_report(self, request: Request) -> Response:
        req = await self._get(_job_id(request))
        report = await self.jobs.store.job_report(req.job_id)
        return JSONResponse(job_report_json(report))

    async def get_progress(self, request: Request) -> Response:
        req = await self._get(_job_id(request))
        return JSONResponse(await self.progress_tracker.progress(self.jobs.store, req))

    async def stop_job(self, request: Request) -> Response:
        job_id = _job_id(request)
        self._check_control(request, await self._get(job_id), "stop")
        try:
            await self.jobs.stop(job_id)
        except StorageError:
            raise
        except Exception as exc:
            raise ApiError(409, str(exc)) from None
        return JSONResponse({"job_id": job_id, "state": JobState.CANCELLING.event_name}, 202)

    async def retry_job(self, request: Request) -> Response:
        job_id = _job_id(request)
        body = await _json_body(request, required=False)
        requestor = _requestor(body, principal_of(request.scope))
        self._check_control(request, await self._get(job_id), "retry")
        try:
            new_id = await self.jobs.retry(job_id, requestor)
        except DescriptorValidationError as exc:
            raise ApiError(
                409,
                "the stored descriptor is no longer valid",
                [{"path": e.path, "message": e.message} for e in exc.errors],
            ) from None
        except StorageError:
            raise
        except Exception as exc:
            raise ApiError(409, str(exc)) from None
        return JSONResponse({"job_id": new_id, "retry_of": job_id}, 201)

    async def get_events(self, request: Request) -> Response:
        job_id = _job_id(request)
        kind = _query_choice(request, "kind", ("test", "framework"), "test")
        names = _query_list(request, "name")
        after = _query_int(request, "after", 0, MAX_JOB_ID, 0)
        limit = _query_int(request, "limit", 1, MAX_EVENT_LIMIT, DEFAULT_EVENT_LIMIT)
        run = _query_int(request, "run", 1, 2**31 - 1, None)
        attempt = _query_int(request, "attempt", 0, 2**31 - 1, None)
        tests = _query_list(request, "test")
        steps = _query_list(request, "step")
        targets = _query_list(request, "target")
        await self._get(job_id)
        events: list[dict[str, Any]]
        if kind == "framework":  # run, attempt, test, step, target are test-event filters
            fw = await self.jobs.store.framework_events(
                FrameworkEventQuery(
                    job_id=job_id, event_names=names, after_sequence=after or None, limit=limit
                )
            )
            events = [framework_event_json(e) for e in fw]
        else:
            te = await self.jobs.store.test_events(
                TestEventQuery(
                    job_id=job_id,
                    run_id=run,
                    test_names=tests,
                    step_labels=steps,
                    target_ids=targets,
                    event_names=names,
                    test_attempt=attempt,
                    after_sequence=after or None,
                    limit=limit,
                )
            )
            events = [test_event_json(e) for e in te]
        next_after = events[-1]["sequence"] if events else after
        return JSONResponse({"events": events, "next_after": next_after})


def _error_response(exc: ApiError) -> JSONResponse:
    body: dict[str, Any] = {"error": exc.message}
    if exc.details is not None:
        body["details"] = exc.details
    return JSONResponse(body, exc.status)


def _wrap(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Turn our errors into JSON answers: ``ApiError`` as it says, a storage outage as 503."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return _error_response(exc)
        except StorageError as exc:
            log.error("storage error on %s %s: %s", request.method, request.url.path, exc)
            return JSONResponse({"error": f"storage unavailable: {exc}"}, 503)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    return JSONResponse({"error": exc.detail}, exc.status_code, headers=headers)


async def _iterate(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    """A plain iterator as the async one a streamed response reads (without a thread per
    piece, which Starlette would use for a plain one)."""
    for item in items:
        yield item


def create_rest_app(jobs: JobService) -> Starlette:
    """The REST routes (and ``/openapi.json``, ``/healthz``) as one Starlette app."""
    api = RestAPI(jobs)
    p = "/api/v1"
    handlers: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {
        "/healthz": {"GET": api.healthz},
        "/openapi.json": {"GET": api.openapi_doc},
        f"{p}/version": {"GET": api.version},
        f"{p}/servers": {"GET": api.list_servers},
        f"{p}/jobs": {"GET": api.list_jobs, "POST": api.create_job},
        f"{p}/jobs/{{job_id}}": {"GET": api.get_job},
        f"{p}/jobs/{{job_id}}/status": {"GET": api.get_status},
        f"{p}/jobs/{{job_id}}/descriptor": {"GET": api.get_descriptor},
        f"{p}/jobs/{{job_id}}/report": {"GET": api.get_report},
        f"{p}/jobs/{{job_id}}/progress": {"GET": api.get_progress},
        f"{p}/jobs/{{job_id}}/events": {"GET": api.get_events},
        f"{p}/jobs/{{job_id}}/stop": {"POST": api.stop_job},
        f"{p}/jobs/{{job_id}}/retry": {"POST": api.retry_job},
    }
    # one route per path, so a 405 lists every method the path has in its Allow header
    routes = [
        Route(path, _by_method(methods), methods=list(methods))
        for path, methods in handlers.items()
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.api = api
    return app


def _by_method(
    methods: dict[str, Callable[[Request], Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    wrapped = {m: _wrap(h) for m, h in methods.items()}
    if "GET" in wrapped:
        wrapped["HEAD"] = wrapped["GET"]

    async def endpoint(request: Request) -> Response:
        return await wrapped[request.method](request)

    return endpoint
