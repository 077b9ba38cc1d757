"""What ``contestcli`` reads beyond ConTest's verbs, from our REST API: a job's events page by
page (``events``), and why a job was cancelled (for the failure summary). A ConTest server has
no REST API: events then fail with a message saying so, and a summary goes without the
cancellation's reason."""

from __future__ import annotations

from typing import Any

from contest.client.transport import HTTPTransport, TransportError
from contest.eventview import Filters
from contest.summary import JobSummary, summarize


class RestError(Exception):
    """The REST API answered with an error (an unknown job...), or there is none."""


def _get(transport: HTTPTransport, path: str, params: list[tuple[str, str | int]]) -> Any:
    status, body = transport.get_json(path, params)
    if status == 200 and isinstance(body, dict):
        return body
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        raise RestError(body["error"])
    raise RestError(
        f"{transport.addr} has no REST API (HTTP {status} for {path}): a ConTest server? "
        "This needs a contest-py server."
    )


class RestEvents:
    """A job's events through ``/api/v1/jobs/{id}/events`` (an ``EventSource``)."""

    def __init__(self, transport: HTTPTransport, job_id: int) -> None:
        self.transport = transport
        self.job_id = job_id

    def page(self, kind: str, filters: Filters, after: int, limit: int) -> list[dict[str, Any]]:
        params: list[tuple[str, str | int]] = [("kind", kind), ("after", after), ("limit", limit)]
        params += [("name", n) for n in filters.names]
        if kind == "test":
            params += [("target", t) for t in filters.targets]
            params += [("step", s) for s in filters.steps]
        body = _get(self.transport, f"/api/v1/jobs/{self.job_id}/events", params)
        events = body.get("events")
        return events if isinstance(events, list) else []

    def state(self) -> str:
        body = _get(self.transport, f"/api/v1/jobs/{self.job_id}", [])
        return str(body.get("state", ""))


def cancel_reason(transport: HTTPTransport, job_id: int) -> str:
    """What the job's ``JobStateCancelled`` event says, or "" (not cancelled, no REST API)."""
    try:
        body = _get(
            transport,
            f"/api/v1/jobs/{job_id}/events",
            [("kind", "framework"), ("name", "JobStateCancelled")],
        )
    except (RestError, TransportError):
        return ""
    for ev in reversed(body.get("events") or []):
        payload = ev.get("payload") if isinstance(ev, dict) else None
        if isinstance(payload, dict) and isinstance(payload.get("Reason"), str):
            return str(payload["Reason"])
    return ""


def waiting_text(transport: HTTPTransport, job_id: int) -> str:
    """``waiting for dut1, dut2 (held by job 3)`` while the job waits for targets other jobs
    hold (the REST job's ``waiting``, the object ``/progress`` has), else "" (not waiting, or
    a ConTest server, which has no REST API)."""
    try:
        status, body = transport.get_json(f"/api/v1/jobs/{job_id}")
    except TransportError:
        return ""
    waiting = body.get("waiting") if status == 200 and isinstance(body, dict) else None
    text = waiting.get("Text") if isinstance(waiting, dict) else None
    return text if isinstance(text, str) else ""


def job_summary(transport: HTTPTransport, job_id: int, status: dict[str, Any] | None) -> JobSummary:
    """The summary of a job from its status document, with the cancellation's reason."""
    reason = ""
    cancelled = ("JobStateCancelled", "JobStateCancelling")
    if isinstance(status, dict) and status.get("State") in cancelled:
        reason = cancel_reason(transport, job_id)
    return summarize(job_id, status, reason)
