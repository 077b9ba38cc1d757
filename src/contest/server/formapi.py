"""ConTest's HTTP API: ``POST /start /stop /status /retry /list /version`` with form fields.

This is what ConTest's own client (and every script written against it) speaks, so it is matched
byte for byte (ConTest's ``pkg/api/api.go``, ``pkg/transport/http/http.go``; pinned by
``tests/server/test_server_formapi.py`` and ``tests/e2e/test_e2e_wire.py``): the form is read from
the body only, with Go's parsing rules; the answer is either HTTP 200 with the envelope
``{"ServerID","Type","Data","Error"}`` (job-manager errors travel in ``Error``) or HTTP 400 with
``{"Msg"}`` (bad input, a missing or too long requestor, a timed-out call); any other method gets a
plain-text 400. Every failure of ours, expected or not, becomes one of those answers: the form API
never answers 500.

Where we differ on purpose: ``retry`` works (a new job from the stored descriptor), and a bad
descriptor's ``Error`` names its first problem only as ConTest does, while the REST API lists all.
A ``start`` (or ``retry``) that runs past the timeout either withdraws its job, if it was not
stored yet, and says "time out", or waits for it to be stored and answers its ID: never the
error for a job that then runs (ConTest answers the error and runs the job anyway). A requestor
holding control characters is refused. With tokens (``--auth-file``), the requestor is the
token's name, whatever the form says, and a submitter may stop or retry only its own jobs: else
HTTP 403 with ``{"Msg"}``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from contest.golang import json as gojson
from contest.golang.strconv import NumError, parse_int64, quote
from contest.golang.time import format_duration
from contest.job.descriptor import DescriptorDecodeError, DescriptorValidationError, check_tags
from contest.job.manager import JobService, SubmitTicket
from contest.job.statusdoc import GZIP_FROM
from contest.server.auth import ANONYMOUS, Principal, may_control
from contest.storage.limits import Limits
from contest.storage.models import JobState

log = logging.getLogger(__name__)

T = TypeVar("T")

API_VERSION = 5
#: Job IDs the storage can hold (a signed 64-bit column); anything else is simply not found.
MAX_JOB_ID = (1 << 63) - 1
#: Largest form body read; Go refuses bodies above 10 MiB, we take a big descriptor more.
MAX_FORM_BYTES = 32 * 1024 * 1024

#: ConTest's limit on a requestor (``limits.ValidateRequestorName``), in UTF-8 bytes
MAX_REQUESTOR_BYTES = 32
#: Forms larger than this are parsed in a worker thread, not on the event loop.
INLINE_FORM_BYTES = 64 * 1024
#: A form value (a descriptor) larger than a descriptor the storage takes is refused unread.
MAX_FORM_VALUE = Limits().descriptor
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

CONTENT_TYPE = "text/plain; charset=utf-8"
ONLY_POST = b"Only POST requests are supported"

#: ConTest's response types, by verb
RESPONSE_TYPES = {
    "start": "ResponseTypeStart",
    "stop": "ResponseTypeStop",
    "status": "ResponseTypeStatus",
    "retry": "ResponseTypeRetry",
    "version": "ResponseTypeVersion",
    "list": "ResponseTypeList",
}

#: the states a list query may name (ConTest refuses JobStateUnknown over HTTP)
LISTABLE_STATES = {s.event_name: s for s in JobState if s is not JobState.UNKNOWN}


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer of the form API: ``body``, then the parts of ``more`` (a status document's
    runs, sent as they were encoded rather than joined into one copy)."""

    status: int
    body: bytes
    more: tuple[bytes, ...] = ()
    encoding: str | None = None  # Content-Encoding (gzip: a big status document)

    def whole(self) -> bytes:
        return self.body + b"".join(self.more)

    def size(self) -> int:
        return len(self.body) + sum(len(part) for part in self.more)


class BadRequest(Exception):
    """An API-level failure: HTTP 400 ``{"Msg": ...}``."""


class Forbidden(Exception):
    """The principal may not do this to this job: HTTP 403 ``{"Msg": ...}``."""


def parse_form(body: bytes, max_value: int | None = None) -> dict[str, list[str]]:
    """Go's ``url.ParseQuery`` on a form body: pairs split on ``&``, a pair holding ``;`` or a bad
    ``%`` escape is skipped (Go records the error and goes on), ``+`` is a space.

    A value longer than ``max_value`` bytes once unescaped (counted without unescaping it) is
    refused with :class:`BadRequest` before any work is spent on it."""
    out: dict[str, list[str]] = {}
    for pair in body.split(b"&"):
        if not pair or b";" in pair:
            continue
        key, _, value = pair.partition(b"=")
        if max_value is not None and len(value) - 2 * value.count(b"%") > max_value:
            raise BadRequest(f"{_unescape(key)} is larger than {max_value} bytes")
        k = _unescape(key)
        v = _unescape(value)
        if k is None or v is None:
            continue
        out.setdefault(k, []).append(v)
    return out


_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


#: Unescaped a piece at a time: the library splits its input at every ``%``, and a 24 MB form
#: value would become millions of small objects at once (hundreds of megabytes).
_UNESCAPE_PIECE = 256 * 1024


def _unescape(raw: bytes) -> str | None:
    """Go's ``QueryUnescape``: ``+`` is a space, ``%XX`` a byte, any other ``%`` an error
    (None). The library's unquoting works an escape at a time, not a byte at a time: a 24 MB
    form is decoded in well under a second, in pieces, so in little more memory than its
    result."""
    if b"%" not in raw and b"+" not in raw:
        return raw.decode("utf-8", "replace")
    if _BAD_ESCAPE.search(raw):
        return None
    pieces = []
    start = 0
    while start < len(raw):
        end = min(start + _UNESCAPE_PIECE, len(raw))
        cut = raw.rfind(b"%", max(start, end - 2), end)  # never split "%XX"
        if cut != -1 and end < len(raw):
            end = cut
        piece = raw[start:end].replace(b"+", b" ")
        pieces.append(urllib.parse.unquote_to_bytes(piece))
        start = end
    return b"".join(pieces).decode("utf-8", "replace")


def job_id_or_error(text: str) -> int:
    """ConTest's ``strToJobID``: blank -> "job ID cannot be empty"; else ``strconv.ParseInt``,
    and the int64 is then taken as ConTest's unsigned job ID (so ``-5`` is 2^64 - 5)."""
    if not text.strip():
        raise BadRequest("job ID cannot be empty")
    try:
        value = parse_int64(text)
    except NumError as exc:
        raise BadRequest(str(exc)) from None
    return value % (1 << 64)


def check_requestor(requestor: str) -> None:
    """``API.SendEvent``'s checks, made before any call reaches the job manager."""
    if requestor == "":
        raise BadRequest("requestor cannot be empty")
    size = len(requestor.encode("utf-8", "surrogatepass"))
    if size > MAX_REQUESTOR_BYTES:
        raise BadRequest(f"Requestor name is too long: {size} > {MAX_REQUESTOR_BYTES}")
    # ConTest takes any bytes; a newline or an escape sequence in a requestor would forge lines
    # in logs and listings
    if _CONTROL.search(requestor):
        raise BadRequest("requestor name may not contain control characters")


def descriptor_error(exc: DescriptorValidationError) -> str:
    """ConTest's text for a refused descriptor: a decoding error as it is, a validation error
    after "could not validate job descriptor: ". ConTest stops at the first problem; so does
    this message (the REST API and ``contest validate`` give every one)."""
    if not exc.errors:
        return f"could not validate job descriptor: {exc}"
    first = exc.errors[0]
    if first.wire is not None:
        return first.wire
    decoding = first.message.startswith(("json: ", "invalid JSON", "invalid YAML"))
    if isinstance(exc, DescriptorDecodeError) or decoding or not first.path:
        return first.message
    return f"could not validate job descriptor: {first.message}"


def not_found(job_id: int) -> str:
    return f"could not find job request with id {job_id}"


class FormAPI:
    """The six verbs over a :class:`JobService`, with ConTest's checks, errors and timeout."""

    def __init__(self, jobs: JobService, server_id: str, *, timeout: float = 3.0) -> None:
        self.jobs = jobs
        self.server_id = server_id
        self.timeout = timeout

    # --- HTTP -------------------------------------------------------------------------------

    async def handle(
        self,
        method: str,
        path: str,
        body: bytes,
        content_type: str,
        principal: Principal = ANONYMOUS,
        *,
        gzip: bool = False,
    ) -> Reply:
        """Answer one request; never raises. ``gzip``: the client accepts a gzip answer (a
        big status document is sent so; Go's HTTP client asks for it and inflates it)."""
        if method != "POST":
            return Reply(400, ONLY_POST)
        verb = path.lstrip("/")
        form: dict[str, list[str]] = {}
        try:
            if _is_urlencoded(content_type):
                if len(body) > INLINE_FORM_BYTES:  # a big descriptor: not on the event loop
                    form = await asyncio.to_thread(parse_form, body, MAX_FORM_VALUE)
                else:
                    form = parse_form(body, MAX_FORM_VALUE)
        except BadRequest as exc:  # a descriptor too big to be stored: not even decoded
            return Reply(400, gojson.marshal({"Msg": f"{verb.capitalize()} failed: {exc}"}))
        try:
            return await self._dispatch(verb, form, principal, gzip)
        except BadRequest as exc:
            return Reply(400, gojson.marshal({"Msg": str(exc)}))
        except Forbidden as exc:
            return Reply(403, gojson.marshal({"Msg": str(exc)}))
        except Exception as exc:  # a bug of ours: still a well-formed ConTest answer
            log.exception("form API %s failed", verb)
            return Reply(400, gojson.marshal({"Msg": f"internal error: {exc}"}))

    def envelope(self, verb: str, data: Any, error: str | None) -> Reply:
        return Reply(
            200,
            gojson.encode(
                {
                    "ServerID": self.server_id,
                    "Type": RESPONSE_TYPES[verb],
                    "Data": data,
                    "Error": error,
                }
            ),
        )

    async def _dispatch(
        self, verb: str, form: dict[str, list[str]], principal: Principal, gzip: bool = False
    ) -> Reply:
        def field(name: str) -> str:
            values = form.get(name)
            return values[0] if values else ""

        # with tokens, the job's requestor is who the token says, not what the form says
        requestor = principal.name if principal.authenticated else field("requestor")
        if verb == "start":
            desc = field("jobDesc")
            if desc == "":
                raise BadRequest("Missing job description")
            return await self._creating_verb(
                "Start", requestor, lambda t: self.start(desc, requestor, t)
            )
        if verb in ("status", "stop", "retry"):
            title = verb.capitalize()
            try:
                job_id = job_id_or_error(field("jobID"))
            except BadRequest as exc:
                raise BadRequest(f"{title} failed: {exc}") from None
            if verb == "status":
                return await self._verb(
                    title, requestor, lambda: self.status(job_id, requestor, gzip=gzip)
                )
            await self._check_control(title, job_id, principal)
            if verb == "stop":
                return await self._verb(title, requestor, lambda: self.stop(job_id, requestor))
            return await self._creating_verb(
                title, requestor, lambda t: self.retry(job_id, requestor, t)
            )
        if verb == "list":
            return await self._list(form, requestor)
        if verb == "version":
            return self.envelope("version", {"Version": API_VERSION}, None)
        raise BadRequest(f"unknown verb: {verb}")

    async def _verb(
        self, title: str, requestor: str, call: Callable[[], Awaitable[Reply]]
    ) -> Reply:
        try:
            check_requestor(requestor)
            return await self._bounded(call())
        except BadRequest as exc:
            raise BadRequest(f"{title} failed: {exc}") from None

    async def _creating_verb(
        self, title: str, requestor: str, call: Callable[[SubmitTicket], Awaitable[Reply]]
    ) -> Reply:
        """A verb that may create a job (start, retry): see :meth:`_submission`."""
        try:
            check_requestor(requestor)
            return await self._submission(call)
        except BadRequest as exc:
            raise BadRequest(f"{title} failed: {exc}") from None

    async def _check_control(self, title: str, job_id: int, principal: Principal) -> None:
        """A submitter may stop or retry its own jobs only (an unknown job is left to the verb,
        which says so as ConTest does)."""
        if not principal.authenticated or not 0 < job_id <= MAX_JOB_ID:
            return
        req = await self._bounded(self.jobs.request(job_id))
        if req is not None and not may_control(principal, req.requestor):
            raise Forbidden(
                f"{title} failed: {principal.name} ({principal.role}) may {title.lower()} only "
                f"its own jobs; job {job_id} is {req.requestor}'s"
            )

    def _timed_out(self) -> BadRequest:
        return BadRequest(f"time out waiting for response after {format_duration(self.timeout)}")

    async def _bounded(self, work: Awaitable[T]) -> T:
        """ConTest's event timeout: the caller gets an error after ``timeout``; a read or a stop
        goes on behind it, as in ConTest."""
        task = asyncio.ensure_future(work)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.timeout)
        except TimeoutError:
            task.add_done_callback(_log_late_failure)
            raise self._timed_out() from None

    async def _submission(self, make: Callable[[SubmitTicket], Awaitable[Reply]]) -> Reply:
        """A call that may create a job, bounded by ``timeout`` without the lie ConTest tells:
        past it, the job is withdrawn if it is not stored yet (the answer is the time-out, and
        there is no job); if it is being stored, the answer waits for its ID."""
        ticket = SubmitTicket()
        task = asyncio.ensure_future(make(ticket))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.timeout)
        except TimeoutError:
            if ticket.withdraw():
                task.add_done_callback(_log_late_failure)
                raise self._timed_out() from None
        return await task  # stored, or being stored: the caller gets the job's ID

    # --- the verbs (200 answers) -------------------------------------------------------------

    async def start(
        self, descriptor: str, requestor: str, ticket: SubmitTicket | None = None
    ) -> Reply:
        try:
            job_id = await self.jobs.submit(descriptor, requestor, ticket=ticket)
        except DescriptorValidationError as exc:
            return self.envelope("start", {"JobID": 0}, descriptor_error(exc))
        except Exception as exc:
            return self.envelope("start", {"JobID": 0}, _message(exc, "start"))
        return self.envelope("start", {"JobID": job_id}, None)

    async def stop(self, job_id: int, requestor: str) -> Reply:
        try:
            if not 0 < job_id <= MAX_JOB_ID:
                raise LookupError(f"could not stop job: unknown job ID: {job_id}")
            await self.jobs.stop(job_id)
        except Exception as exc:
            return self.envelope("stop", {}, _message(exc, "stop"))
        return self.envelope("stop", {}, None)

    async def status(self, job_id: int, requestor: str, *, gzip: bool = False) -> Reply:
        try:
            if not 0 < job_id <= MAX_JOB_ID:
                raise LookupError(not_found(job_id))
            doc = await self.jobs.status_document(job_id)
        except Exception as exc:
            msg = _message(exc, "status")
            if msg == not_found(job_id):
                msg = f"failed to fetch request for job ID {job_id}: {msg}"
            return self.envelope("status", {"Status": None}, msg)
        # the envelope around the document's parts, byte for byte what envelope() writes
        head = gojson.to_bytes(
            f'{{"ServerID":{gojson.compact(self.server_id)},"Type":"{RESPONSE_TYPES["status"]}",'
            '"Data":{"Status":'
        )
        zipped = gzip and doc.size() >= GZIP_FROM
        parts = await doc.body(gzip=zipped, before=head, after=b'},"Error":null}\n')
        return Reply(200, b"", tuple(parts), "gzip" if zipped else None)

    async def retry(self, job_id: int, requestor: str, ticket: SubmitTicket | None = None) -> Reply:
        try:
            if not 0 < job_id <= MAX_JOB_ID:
                raise LookupError(not_found(job_id))
            new_id = await self.jobs.retry(job_id, requestor, ticket=ticket)
        except DescriptorValidationError as exc:
            return self.envelope("retry", {"JobID": job_id, "NewJobID": 0}, descriptor_error(exc))
        except Exception as exc:
            return self.envelope("retry", {"JobID": job_id, "NewJobID": 0}, _message(exc, "retry"))
        return self.envelope("retry", {"JobID": job_id, "NewJobID": new_id}, None)

    async def _list(self, form: dict[str, list[str]], requestor: str) -> Reply:
        """ConTest's list, quirks included: an invalid state stops the state parsing; with no
        valid state before it the query is invalid, else the list runs and the answer is still
        the 400 naming the bad state."""
        states_text = form.get("states", [""])[0]
        tags_text = form.get("tags", [""])[0]
        bad_state: str | None = None
        states: list[JobState] | None = None
        if states_text:
            states = []
            for name in states_text.split(","):
                state = LISTABLE_STATES.get(name)
                if state is None:
                    bad_state = f"List failed: invalid job state {quote(name)}"
                    break
                states.append(state)
            if not states:
                raise BadRequest(
                    "Invalid query: unable to apply field 0:storage.jobQueryFieldStates([]): "
                    "field storage.jobQueryFieldStates has a zero value"
                )
        tags = tags_text.split(",") if tags_text else None
        reply = await self._verb("List", requestor, lambda: self.list(states, tags))
        if bad_state is not None:
            raise BadRequest(bad_state)
        return reply

    async def list(self, states: list[JobState] | None, tags: list[str] | None) -> Reply:
        if tags:
            problems = check_tags(tags, allow_internal=True)
            if problems:
                return self.envelope(
                    "list", {"JobIDs": None}, f"failed to list jobs: {problems[0].message}"
                )
        try:
            ids = await self.jobs.list(states=states, tags=tags)
        except Exception as exc:
            return self.envelope("list", {"JobIDs": None}, f"failed to list jobs: {exc}")
        return self.envelope("list", {"JobIDs": ids}, None)


def _is_urlencoded(content_type: str) -> bool:
    """Go reads a form body only for ``application/x-www-form-urlencoded`` (any case, any
    parameters); another type leaves the form empty."""
    return content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


def _message(exc: Exception, verb: str) -> str:
    """The job manager's message for ``exc``; unexpected ones are logged with their traceback."""
    from contest.errors import ContestError

    if not isinstance(exc, ContestError | LookupError):
        log.error("%s failed", verb, exc_info=exc)
    text = str(exc)
    if isinstance(exc, LookupError) and text.startswith("'") and text.endswith("'"):
        text = text[1:-1]  # KeyError's repr-quoting
    return text or type(exc).__name__


def _log_late_failure(task: asyncio.Future[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("an API call that had timed out failed: %s", exc)
