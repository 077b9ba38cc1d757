"""The job runner's pause payload (ConTest's, version 1, with LB's additions).

Stored as the payload of the ``JobStatePaused`` event; the job manager hands it back to the job
runner on resume.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from contest.errors import ResumeStateError
from contest.target import Target

PAUSE_PAYLOAD_VERSION = 1


@dataclass
class PausePayload:
    job_id: int
    run_id: int  # 1-based
    test_index: int = 0  # 0-based here; stored 1-based as "T" (0 = none, omitted)
    start_at: float | None = None  # when the next run starts (paused between runs)
    targets: list[Target] | None = None  # held targets (locked, not released)
    test_state: bytes | None = None  # the test runner's resume state
    cleanup_state: bytes | None = None  # the cleanup runner's resume state
    attempt: int = 0
    next_attempt_at: float | None = None
    run_started: bool = False  # RunStarted of run_id already emitted
    test_results: dict[str, str | None] | None = None  # the test steps' verdicts, when paused
    # after them: in cleanup or before release (the resumed attempt skips the steps and is
    # judged on these, not counted as failed)
    version: int = PAUSE_PAYLOAD_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json_obj(self) -> dict[str, Any]:
        out: dict[str, Any] = {"V": self.version, "J": self.job_id, "R": self.run_id}
        if self.test_index or self.targets is not None:
            out["T"] = self.test_index + 1
        if self.start_at is not None:
            out["S"] = self.start_at
        if self.targets is not None:
            out["TT"] = [t.to_json_obj() for t in self.targets]
        if self.test_state is not None:
            out["TRS"] = _state(self.test_state)
        out["TA"] = self.attempt
        if self.next_attempt_at is not None:
            out["NTA"] = self.next_attempt_at
        if self.cleanup_state is not None:
            out["CRS"] = _state(self.cleanup_state)
        if self.run_started:
            out["RS"] = True
        if self.test_results is not None:
            out["TR"] = self.test_results
        return out

    @classmethod
    def from_json_obj(cls, obj: Any) -> PausePayload:
        if not isinstance(obj, dict):
            raise ResumeStateError("invalid pause payload: not a JSON object")
        version = obj.get("V")
        if version != PAUSE_PAYLOAD_VERSION:
            raise ResumeStateError(
                f"incompatible resume state version (want {PAUSE_PAYLOAD_VERSION}, got {version})"
            )
        try:
            targets = obj.get("TT")
            return cls(
                job_id=int(obj["J"]),
                run_id=int(obj["R"]),
                test_index=max(0, int(obj.get("T", 0)) - 1),
                start_at=obj.get("S"),
                targets=[Target.from_json_obj(t) for t in targets] if targets is not None else None,
                test_state=_unstate(obj.get("TRS")),
                cleanup_state=_unstate(obj.get("CRS")),
                attempt=int(obj.get("TA", 0)),
                next_attempt_at=obj.get("NTA"),
                run_started=bool(obj.get("RS", False)),
                test_results=obj.get("TR"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResumeStateError(f"invalid pause payload: {exc}") from exc


def _state(blob: bytes) -> Any:
    try:
        return json.loads(blob)
    except ValueError:
        return {"b64": base64.b64encode(blob).decode()}


def _unstate(obj: Any) -> bytes | None:
    if obj is None:
        return None
    if isinstance(obj, dict) and set(obj) == {"b64"}:
        return base64.b64decode(obj["b64"])
    return json.dumps(obj, separators=(",", ":")).encode()
