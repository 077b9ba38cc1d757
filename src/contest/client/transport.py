"""The HTTP transport of ``contestcli``: ConTest's form API, plus our REST progress endpoint.

Each verb POSTs the form ConTest's Go client sends (keys sorted, ``url.Values.Encode`` escaping)
to ``<addr>/<verb>`` and returns ConTest's client-side response shape ``{"ServerID", "Data",
"Err"}`` (the client prints ``Err`` where the wire says ``Error``). A 400 ``{"Msg"}`` becomes a
response with ``Err`` set and zero-valued data, as in ConTest. Anything that is not a ConTest
answer (no server, a timeout, a body that is not the API's) raises :class:`TransportError`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote_plus

import httpx

DEFAULT_ADDR = "http://localhost:8080"

#: what ConTest's client decodes into when the server gave no data (a 400)
ZERO_DATA: dict[str, Any] = {
    "start": {"JobID": 0},
    "stop": {},
    "status": {"Status": None},
    "retry": {"JobID": 0, "NewJobID": 0},
    "list": {"JobIDs": None},
    "version": {"Version": 0},
}


class TransportError(Exception):
    """The server could not be reached, or did not answer as ConTest's API does."""


def encode_form(fields: dict[str, str]) -> bytes:
    """Go's ``url.Values.Encode``: keys sorted, ``QueryEscape`` on keys and values."""
    return "&".join(
        f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k, v in sorted(fields.items())
    ).encode()


def normalize_addr(addr: str) -> str:
    """``[scheme://]host:port[/basepath]``; ``http://`` when no scheme is given."""
    addr = addr.strip()
    if "://" not in addr:
        addr = "http://" + addr
    scheme = addr.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise TransportError(f"unsupported scheme {scheme!r} in {addr!r}: use http or https")
    return addr.rstrip("/")


class HTTPTransport:
    """One server; keeps its connection alive across calls (as Go's client does)."""

    def __init__(
        self,
        addr: str = DEFAULT_ADDR,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        self.addr = normalize_addr(addr)
        headers = {"User-Agent": "contestcli-py"}
        if token:  # a server started with --auth-file wants it on every request
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(timeout=timeout, headers=headers, transport=transport)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HTTPTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- ConTest's verbs --------------------------------------------------------------------

    def version(self, requestor: str) -> dict[str, Any]:
        return self._call("version", {"requestor": requestor})

    def start(self, requestor: str, descriptor: str) -> dict[str, Any]:
        return self._call("start", {"requestor": requestor, "jobDesc": descriptor})

    def stop(self, requestor: str, job_id: int) -> dict[str, Any]:
        return self._call("stop", {"requestor": requestor, "jobID": str(job_id)})

    def status(self, requestor: str, job_id: int) -> dict[str, Any]:
        return self._call("status", {"requestor": requestor, "jobID": str(job_id)})

    def retry(self, requestor: str, job_id: int) -> dict[str, Any]:
        return self._call("retry", {"requestor": requestor, "jobID": str(job_id)})

    def list(self, requestor: str, states: Sequence[str], tags: Sequence[str]) -> dict[str, Any]:
        fields = {"requestor": requestor}
        if states:
            fields["states"] = ",".join(states)
        if tags:
            fields["tags"] = ",".join(tags)
        return self._call("list", fields)

    def _call(self, verb: str, fields: dict[str, str]) -> dict[str, Any]:
        url = f"{self.addr}/{verb}"
        try:
            resp = self._client.post(
                url,
                content=encode_form(fields),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
        try:
            body = json.loads(resp.content)
        except ValueError:
            body = None
        if resp.status_code == 200:
            if not isinstance(body, dict) or "Data" not in body:
                raise TransportError(
                    f"{url}: HTTP 200 with a body that is not an HTTP API response"
                )
            return {
                "ServerID": body.get("ServerID", ""),
                "Data": body.get("Data"),
                "Err": body.get("Error"),
            }
        if not isinstance(body, dict) or not isinstance(body.get("Msg"), str):
            raise TransportError(
                f"{url}: HTTP {resp.status_code}: response is not a valid HTTP API Error object: "
                f"{resp.text[:200]!r}"
            )
        return {"ServerID": "", "Data": dict(ZERO_DATA[verb]), "Err": body["Msg"]}

    # --- ours ---------------------------------------------------------------------------------

    def get_json(self, path: str, params: Sequence[tuple[str, str | int]] = ()) -> tuple[int, Any]:
        """GET a REST path (``/api/v1/...``): the status code and the JSON body (None when the
        body is not JSON, as from a ConTest server, which has no REST API)."""
        url = f"{self.addr}{path}"
        try:
            resp = self._client.get(url, params=list(params))
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, None

    def progress(self, job_id: int) -> dict[str, Any] | None:
        """The job's progress from the REST API; None if the server has none (ConTest's)."""
        url = f"{self.addr}/api/v1/jobs/{job_id}/progress"
        try:
            resp = self._client.get(url)
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
        if resp.status_code != 200:
            return None
        try:
            body = resp.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) and "State" in body else None
