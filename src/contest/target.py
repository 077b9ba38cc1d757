"""The target: a machine or device under test, as ConTest describes it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(slots=True)
class Target:
    """One device under test.

    ``manager_state`` is the target manager's own JSON value for this target (ConTest's ``TMS``),
    carried along untouched.
    """

    id: str
    fqdn: str = ""
    primary_ipv4: str | None = None
    primary_ipv6: str | None = None
    manager_state: Any = None

    # what a step parameter template may read, by its Go name (and nothing else)
    __template_fields__: ClassVar[dict[str, str]] = {
        "ID": "id",
        "FQDN": "fqdn",
        "PrimaryIPv4": "primary_ipv4",
        "PrimaryIPv6": "primary_ipv6",
        "TargetManagerState": "manager_state",
    }

    def to_json_obj(self) -> dict[str, Any]:
        """ConTest's JSON shape: ``ID`` always, the others only when set."""
        out: dict[str, Any] = {"ID": self.id}
        if self.fqdn:
            out["FQDN"] = self.fqdn
        if self.primary_ipv4:
            out["PrimaryIPv4"] = self.primary_ipv4
        if self.primary_ipv6:
            out["PrimaryIPv6"] = self.primary_ipv6
        if self.manager_state is not None:
            out["TMS"] = self.manager_state
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_json_obj(), separators=(",", ":"))

    @classmethod
    def from_json_obj(cls, obj: Any) -> Target:
        """Decode ConTest's JSON (keys matched case-insensitively, as Go does)."""
        if not isinstance(obj, dict):
            raise ValueError(f"a target must be a JSON object, got {type(obj).__name__}")
        keys = {k.lower(): v for k, v in obj.items()}
        tid = keys.get("id", "")
        if not isinstance(tid, str):
            raise ValueError("target ID must be a string")
        fqdn = keys.get("fqdn") or ""
        if not isinstance(fqdn, str):
            raise ValueError("target FQDN must be a string")
        return cls(
            id=tid,
            fqdn=fqdn,
            primary_ipv4=keys.get("primaryipv4") or None,
            primary_ipv6=keys.get("primaryipv6") or None,
            manager_state=keys.get("tms"),
        )

    def __str__(self) -> str:
        parts = [f'ID: "{self.id}"']
        if self.fqdn:
            parts.append(f'FQDN: "{self.fqdn}"')
        if self.primary_ipv4:
            parts.append(f'PrimaryIPv4: "{self.primary_ipv4}"')
        if self.primary_ipv6:
            parts.append(f'PrimaryIPv6: "{self.primary_ipv6}"')
        if self.manager_state is not None:
            parts.append(f"TMS: {json.dumps(self.manager_state)}")
        return "Target{" + ", ".join(parts) + "}"
