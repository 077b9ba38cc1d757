"""The OCP Test & Validation output parser of the ``Exec`` step.

A binary run with ``ocp_output: true`` prints a stream of JSON objects (usually one per line). Each
run or step artifact becomes an event as soon as it arrives, so a long test shows its progress
while it runs:

=====================================  ==========  ==========================================
OCP artifact                           event       payload
=====================================  ==========  ==========================================
``testRunArtifact.testRunStart``       TestStart   sequenceNumber, timestamp, name?, version?
``testRunArtifact.testRunEnd``         TestEnd     sequenceNumber, timestamp, name?, status?,
                                                   result?
``testRunArtifact.log``                TestLog     sequenceNumber, timestamp, severity?, text?
``testStepArtifact.testStepStart``     StepStart   sequenceNumber, timestamp, stepId, name
``testStepArtifact.testStepEnd``       StepEnd     sequenceNumber, timestamp, stepId, name,
                                                   status
``testStepArtifact.log``               StepLog     sequenceNumber, timestamp, stepId, severity?,
                                                   text?
=====================================  ==========  ==========================================

(``?``: left out when empty, as ConTest's ``omitempty`` does.) Other artifacts (measurements,
diagnoses, files...) are ignored. As in ConTest, object keys match case-insensitively (Go's
``encoding/json``), one artifact yields at most one event (start, else end, else log), and parsing
stops at the first thing that is not such an object (a warning, not a failure); the rest of the
output is still read, so the process never blocks on a full pipe.

The verdict: the run passed only if a ``testRunEnd`` with status ``COMPLETE`` and result ``PASS``
was seen; otherwise "did not see a complete run" or "test failed". (A non-zero exit overrides it;
that is the step's business.)
"""

from __future__ import annotations

import codecs
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["EVENTS", "OCPParser"]

TEST_START = "TestStart"
TEST_END = "TestEnd"
TEST_LOG = "TestLog"
STEP_START = "StepStart"
STEP_END = "StepEnd"
STEP_LOG = "StepLog"
EVENTS = (TEST_START, TEST_END, TEST_LOG, STEP_START, STEP_END, STEP_LOG)

STATUS_COMPLETE = "COMPLETE"
RESULT_PASS = "PASS"

# one JSON object may not grow without bound while we wait for its end
MAX_OBJECT_CHARS = 16 * 1024 * 1024

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


class _Malformed(Exception):
    """An OCP object is not what the schema says (a field of the wrong type, a root that is not an
    object); parsing stops."""


def _field(obj: dict[str, Any], key: str) -> Any:
    """Go's case-insensitive key match (an exact match wins)."""
    if key in obj:
        return obj[key]
    low = key.lower()
    for k, v in obj.items():
        if k.lower() == low:
            return v
    return None


def _str(obj: dict[str, Any], key: str) -> str:
    v = _field(obj, key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise _Malformed(f"{key}: want a string, got {json.dumps(v)[:40]}")
    return v


def _int(obj: dict[str, Any], key: str) -> int:
    v = _field(obj, key)
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Malformed(f"{key}: want an integer, got {json.dumps(v)[:40]}")
    return v


def _obj(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    v = _field(obj, key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _Malformed(f"{key}: want an object, got {json.dumps(v)[:40]}")
    return v


def _omitempty(payload: dict[str, Any], **optional: str) -> dict[str, Any]:
    for k, v in optional.items():
        if v:
            payload[k] = v
    return payload


class OCPParser:
    """Feed it stdout as it comes (:meth:`feed`), then :meth:`finish`; :meth:`verdict` is the
    error message, or None for a pass."""

    def __init__(self, emit: Emit, log: logging.Logger | logging.LoggerAdapter[Any] | None = None):
        self._emit = emit
        self._log = log or logging.getLogger(__name__)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._head = 0
        # scanner state inside the current object, so a big object is not rescanned per chunk
        self._pos = 0
        self._depth = 0
        self._in_string = False
        self._escape = False
        self.stopped = False
        self.run_end: dict[str, str] | None = None
        self.artifacts = 0

    async def feed(self, data: bytes) -> None:
        if self.stopped:
            return
        self._buf += self._decoder.decode(data)
        await self._drain()

    async def finish(self) -> None:
        if self.stopped:
            return
        self._buf += self._decoder.decode(b"", final=True)
        await self._drain()
        if not self.stopped and self._buf[self._head :].strip():
            self._stop("unexpected end of the output inside a JSON object")

    def verdict(self) -> str | None:
        if self.run_end is None:
            return "did not see a complete run"
        if self.run_end.get("result") != RESULT_PASS:
            return "test failed"
        return None

    def _stop(self, why: str) -> None:
        self._log.warning("failed to decode ocp json: %s; ignoring the rest of the output", why)
        self.stopped = True
        self._buf, self._head = "", 0

    async def _drain(self) -> None:
        while not self.stopped:
            text = self._next_object()
            if text is None:
                return
            try:
                root = json.loads(text)
            except ValueError as exc:
                self._stop(str(exc))
                return
            try:
                await self._handle(root)
            except _Malformed as exc:
                self._stop(str(exc))
                return

    def _next_object(self) -> str | None:
        """The next complete top-level ``{...}`` from the buffer, or None (need more data).

        ``_head`` is where the unread text starts: consumed text is dropped only once it is
        most of the buffer, so a chunk holding many small objects is not copied once per object.
        """
        buf = self._buf
        n = len(buf)
        if self._depth == 0:
            start = self._head
            while start < n and buf[start].isspace():
                start += 1
            self._head = start
            if start == n:
                self._buf, self._head = "", 0
                return None
            if buf[start] != "{":
                self._stop(f"not a JSON object: {buf[start : start + 40]!r}")
                return None
            self._pos = start
        i = self._pos
        depth, in_string, escape = self._depth, self._in_string, self._escape
        while i < n:
            c = buf[i]
            if in_string:
                if escape:
                    escape = False
                elif c == "\\":
                    escape = True
                elif c == '"':
                    in_string = False
            elif c == '"':
                in_string = True
            elif c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    text = buf[self._head : i + 1]
                    self._head = i + 1
                    if self._head > n // 2:
                        self._buf, self._head = buf[self._head :], 0
                    self._pos, self._depth, self._in_string, self._escape = 0, 0, False, False
                    return text
            i += 1
        self._pos, self._depth, self._in_string, self._escape = i, depth, in_string, escape
        if n - self._head > MAX_OBJECT_CHARS:
            self._stop(f"a JSON object longer than {MAX_OBJECT_CHARS} characters")
        return None

    async def _handle(self, root: Any) -> None:
        if not isinstance(root, dict):
            raise _Malformed("invalid root object")
        seq = _int(root, "sequenceNumber")
        ts = _str(root, "timestamp")
        run = _obj(root, "testRunArtifact")
        step = _obj(root, "testStepArtifact")
        self.artifacts += 1
        if run is not None:
            await self._run_artifact(run, seq, ts)
        elif step is not None:
            await self._step_artifact(step, seq, ts)

    async def _run_artifact(self, node: dict[str, Any], seq: int, ts: str) -> None:
        base: dict[str, Any] = {"sequenceNumber": seq, "timestamp": ts}
        start = _obj(node, "testRunStart")
        end = _obj(node, "testRunEnd")
        log = _obj(node, "log")
        if start is not None:
            payload = _omitempty(base, name=_str(start, "name"), version=_str(start, "version"))
            await self._emit(TEST_START, payload)
        elif end is not None:
            name, status, result = _str(end, "name"), _str(end, "status"), _str(end, "result")
            if status == STATUS_COMPLETE:
                self.run_end = {"name": name, "status": status, "result": result}
            await self._emit(TEST_END, _omitempty(base, name=name, status=status, result=result))
        elif log is not None:
            payload = _omitempty(base, severity=_str(log, "severity"), text=_str(log, "text"))
            await self._emit(TEST_LOG, payload)

    async def _step_artifact(self, node: dict[str, Any], seq: int, ts: str) -> None:
        step_id = _str(node, "testStepId")
        base: dict[str, Any] = {"sequenceNumber": seq, "timestamp": ts, "stepId": step_id}
        start = _obj(node, "testStepStart")
        end = _obj(node, "testStepEnd")
        log = _obj(node, "log")
        if start is not None:
            await self._emit(STEP_START, {**base, "name": _str(start, "name")})
        elif end is not None:
            await self._emit(
                STEP_END, {**base, "name": _str(end, "name"), "status": _str(end, "status")}
            )
        elif log is not None:
            payload = _omitempty(base, severity=_str(log, "severity"), text=_str(log, "text"))
            await self._emit(STEP_LOG, payload)
