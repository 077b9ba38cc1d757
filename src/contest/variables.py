"""Step variables (LB): values a step stores per target for later steps and templates to read.

A value is kept as JSON text under (target, step label, name), so it survives a pause inside the
runner's resume state exactly as it was written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from contest.errors import ContestError

_IDENT = re.compile(r"[A-Za-z]\w*\Z")


class VariableError(ContestError):
    """A step variable cannot be stored (an empty target, label or name; a value that is not
    JSON) or read (not emitted yet, or not of the type the parameter wants)."""


def is_identifier(s: str) -> bool:
    """LB's rule for step labels and variable names: a letter, then letters, digits or _."""
    return bool(_IDENT.match(s))


class VariableStore:
    """All variables of one test run: target id -> step label -> name -> JSON text."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: dict[str, dict[str, dict[str, str]]] = {}

    def add(self, target_id: str, label: str, name: str, value: Any) -> str:
        """Store ``value`` (JSON-encoded; a ``RawJSON`` is checked, not re-encoded)."""
        if not target_id:
            raise VariableError("empty target id")
        if not label:
            raise VariableError("empty step label")
        if not name:
            raise VariableError("empty variable name")
        if isinstance(value, RawJSON):
            try:
                json.loads(value.text)
            except ValueError as exc:
                raise VariableError(f"invalid input, failed to unmarshal: {exc}") from exc
            text = value.text
        else:
            try:
                text = json.dumps(value, separators=(",", ":"))
            except (TypeError, ValueError) as exc:
                raise VariableError(f"cannot encode variable {name!r}: {exc}") from exc
        self._data.setdefault(target_id, {}).setdefault(label, {})[name] = text
        return text

    def get_raw(self, target_id: str, label: str, name: str) -> str:
        by_label = self._data.get(target_id, {})
        if label not in by_label:
            raise VariableError(f"step '{label}' didn't emit any variables yet")
        names = by_label[label]
        if name not in names:
            raise VariableError(
                f"step '{label}' didn't emit variable '{name}' yet for target '{target_id}'"
            )
        return names[name]

    def get(self, target_id: str, label: str, name: str) -> Any:
        return json.loads(self.get_raw(target_id, label, name))

    def for_target(self, target_id: str) -> dict[str, dict[str, Any]]:
        """The target's variables as a JSON-able dict (for the resume state)."""
        return {
            label: {n: json.loads(t) for n, t in names.items()}
            for label, names in self._data.get(target_id, {}).items()
        }

    def load_target(self, target_id: str, saved: dict[str, dict[str, Any]]) -> None:
        for label, names in saved.items():
            for name, value in names.items():
                self._data.setdefault(target_id, {}).setdefault(label, {})[name] = json.dumps(
                    value, separators=(",", ":")
                )

    def has_target(self, target_id: str) -> bool:
        return target_id in self._data


class RawJSON:
    """A value that already is JSON text (stored as is, after a validity check)."""

    __slots__ = ("text",)

    def __init__(self, text: str | bytes) -> None:
        self.text = text.decode() if isinstance(text, bytes) else text


class StepVariables:
    """``ctx.variables``: one step's view of the store; ``add`` writes under the step's label."""

    __slots__ = ("_label", "_on_add", "_store")

    def __init__(
        self,
        store: VariableStore,
        label: str,
        on_add: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self._store = store
        self._label = label
        self._on_add = on_add

    def add(self, target_id: str, name: str, value: Any) -> None:
        if not is_identifier(name):
            raise VariableError(f"invalid variable name '{name}'")
        text = self._store.add(target_id, self._label, name, value)
        if self._on_add is not None:
            self._on_add(target_id, name, text)

    def get(self, target_id: str, step_label: str, name: str) -> Any:
        return self._store.get(target_id, step_label, name)

    @property
    def store(self) -> VariableStore:
        return self._store


def split_var_ref(ref: str) -> tuple[str, str]:
    """``"label.variable"`` -> (label, variable), with LB's checks and messages."""
    label, dot, name = ref.partition(".")
    if not dot:
        raise VariableError(f"not 'label.variable' format of '{ref}'")
    if not is_identifier(label):
        raise VariableError(f"invalid step label '{label}'")
    if not is_identifier(name):
        raise VariableError(f"invalid variable name '{name}'")
    return label, name
