"""Secret step parameters, and descriptors with their values hidden.

A parameter is secret when its name (or, inside a JSON value, a key) is ``password`` — at any
depth, whatever the step, since that is what ConTest's own steps call it — or when the step
declares it in ``TestStep.secret_parameters`` (a dotted name reaches into the value:
``bag.transport.options.password``).

How a job keeps its secrets while they stay out of sight: the job manager stores the descriptor
that the API serves (``GET /api/v1/jobs/{id}/descriptor``, the web pages) with every secret value
replaced by :data:`REDACTED`, and the complete one only inside the extended descriptor, which no
endpoint serves and from which a job is rebuilt when it resumes or is retried. The database holds
inline secrets therefore; keep them in files under ``--secrets-dir`` or in ``CONTEST_SECRET_*``
variables instead (``password_file``, ``password_env``), which the descriptor only names.
"""

from __future__ import annotations

from typing import Any

from contest.golang.json import JsonObject, JsonValue, dumps, fold_key, loads_json

__all__ = ["ALWAYS_SECRET", "REDACTED", "redact_descriptor", "secret_parameter_paths"]

#: What a secret value is replaced with.
REDACTED = "<redacted>"
#: The key that is secret wherever it appears.
ALWAYS_SECRET = "password"


def secret_parameter_paths(step_factory: Any) -> frozenset[tuple[str, ...]]:
    """The secret parameters a step class declares, as key paths."""
    declared = getattr(step_factory, "secret_parameters", None) or ()
    return frozenset(tuple(fold_key(part) for part in name.split(".")) for name in declared)


def redact_descriptor(text: str, registry: Any) -> str:
    """The descriptor (or extended descriptor) JSON ``text`` with every secret value replaced.

    Steps are found wherever an object has a ``name`` and ``parameters`` (literal steps, fetched
    steps, cleanup steps); their declared secrets are looked up in ``registry``. Text that is not
    JSON is returned as it is (there is nothing it could be matched against)."""
    if not _may_hold_secrets(text, registry):
        return text
    try:
        tree = loads_json(text)
    except ValueError:
        return text
    return dumps(_redact(tree, registry))


def _may_hold_secrets(text: str, registry: Any) -> bool:
    """False when no secret key can be in ``text``: a 50,000-target descriptor without any is
    not decoded again. Escapes and non-ASCII text (a key may be spelt ``passwor\\u0064``, or
    with a Kelvin sign that Go folds to ``k``) always take the full path."""
    if "\\u" in text or not text.isascii():
        return True
    lowered = text.lower()
    names = {ALWAYS_SECRET}
    if registry is not None:
        for plugin in registry.plugins("teststeps"):
            names.update(path[0] for path in secret_parameter_paths(plugin.factory))
    return any(f'"{name}"' in lowered for name in names)


def _redact(value: JsonValue, registry: Any) -> JsonValue:
    if isinstance(value, list):
        return [_redact(v, registry) for v in value]
    if not isinstance(value, JsonObject):
        return value
    step_paths = _step_secrets(value, registry)
    pairs: list[tuple[str, JsonValue]] = []
    for key, item in value:
        folded = fold_key(key)
        if folded == ALWAYS_SECRET:
            pairs.append((key, _hidden(item)))
            continue
        item = _redact(item, registry)
        if step_paths and folded == "parameters" and isinstance(item, JsonObject):
            item = _redact_declared(item, step_paths)
        pairs.append((key, item))
    return JsonObject(pairs)


def _step_secrets(obj: JsonObject, registry: Any) -> frozenset[tuple[str, ...]]:
    name = obj.get_folded("name")
    if not isinstance(name, str) or registry is None:
        return frozenset()
    if not isinstance(obj.get_folded("parameters"), JsonObject):
        return frozenset()
    plugin = registry.find("teststeps", name)
    return secret_parameter_paths(plugin.factory) if plugin is not None else frozenset()


def _redact_declared(params: JsonObject, paths: frozenset[tuple[str, ...]]) -> JsonObject:
    """Hide the declared paths in ``{"name": [value, ...]}``: the first part names the parameter,
    the rest are keys inside each of its values."""
    pairs: list[tuple[str, JsonValue]] = []
    for key, values in params:
        folded = fold_key(key)
        rests = [p[1:] for p in paths if p[0] == folded]
        if rests:
            values = _hide_paths(values, rests, top=True)
        pairs.append((key, values))
    return JsonObject(pairs)


def _hide_paths(value: JsonValue, rests: list[tuple[str, ...]], *, top: bool = False) -> JsonValue:
    if any(not rest for rest in rests):
        return _hidden(value) if not top else _hidden_list(value)
    if isinstance(value, list):
        return [_hide_paths(v, rests) for v in value]
    if not isinstance(value, JsonObject):
        return value
    pairs: list[tuple[str, JsonValue]] = []
    for key, item in value:
        folded = fold_key(key)
        inner = [r[1:] for r in rests if r[0] == folded]
        pairs.append((key, _hide_paths(item, inner) if inner else item))
    return JsonObject(pairs)


def _hidden_list(values: JsonValue) -> JsonValue:
    """A parameter's list of values, each hidden (the shape stays a list of strings)."""
    if isinstance(values, list):
        return [REDACTED for _ in values]
    return REDACTED


def _hidden(value: JsonValue) -> JsonValue:
    if value is None:
        return None
    if isinstance(value, list):
        return [REDACTED for _ in value]
    return REDACTED
