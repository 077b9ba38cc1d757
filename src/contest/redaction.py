"""Secret step parameters, and descriptors with their values hidden.

A parameter is secret when its name (or, inside a JSON value, a key) is ``password`` — at any
depth, whatever the step, since that is what ConTest's own steps call it — or when the step
declares it secret (``Parameter(..., secret=True)``, see :mod:`contest.paramspec`), which its
class's ``TestStep.secret_parameters`` lists (a dotted name reaches into the value:
``bag.transport.options.password``; a step that declares no parameters may list them itself).

How a job keeps its secrets while they stay out of sight: the job manager stores the descriptor
that the API serves (``GET /api/v1/jobs/{id}/descriptor``, the web pages) with every secret value
replaced by :data:`REDACTED`, and the complete one only inside the extended descriptor, which no
endpoint serves and from which a job is rebuilt when it resumes or is retried. The database holds
inline secrets therefore; keep them in files under ``--secrets-dir`` or in ``CONTEST_SECRET_*``
variables instead (``password_file``, ``password_env``), which the descriptor only names.

Logs: :class:`SecretLogFilter`, on the handlers of ``contest serve`` and ``contest run``, hides
every secret value the job manager has seen (and those steps read from files) in every line, at
every level, whoever logs it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from contest.golang.json import JsonObject, JsonValue, dumps, fold_key, loads_json

__all__ = [
    "ALWAYS_SECRET",
    "REDACTED",
    "SecretLogFilter",
    "find_secrets",
    "install_log_filter",
    "redact_descriptor",
    "redact_parameters",
    "remember_secrets",
    "secret_parameter_paths",
]

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
    return dumps(_Walk(registry).redact(tree))


def find_secrets(text: str, registry: Any) -> list[str]:
    """The secret values in a descriptor (or extended descriptor) JSON ``text``: what
    :func:`redact_descriptor` hides, as text (for :class:`SecretLogFilter`)."""
    if not _may_hold_secrets(text, registry):
        return []
    try:
        tree = loads_json(text)
    except ValueError:
        return []
    walk = _Walk(registry)
    walk.redact(tree)
    return walk.found


def redact_parameters(parameters: dict[str, list[str]]) -> dict[str, list[str]]:
    """A step's parameters (raw JSON texts, as a ``StepDescriptor`` keeps them) with every
    ``password`` hidden, at any depth: for messages that show a step (ConTest's ``%+v``)."""
    out: dict[str, list[str]] = {}
    walk = _Walk(None)
    for name, values in parameters.items():
        if fold_key(name) == ALWAYS_SECRET:
            out[name] = [dumps(REDACTED) for _ in values]
            continue
        shown = []
        for raw in values:
            try:
                shown.append(dumps(walk.redact(loads_json(raw))) if "assword" in raw else raw)
            except ValueError:
                shown.append(raw)
        out[name] = shown
    return out


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


class _Walk:
    """One pass over a JSON tree: a copy with the secrets hidden, and the values it hid."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.found: list[str] = []

    def redact(self, value: JsonValue) -> JsonValue:
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        if not isinstance(value, JsonObject):
            return value
        step_paths = self._step_secrets(value)
        pairs: list[tuple[str, JsonValue]] = []
        for key, item in value:
            folded = fold_key(key)
            if folded == ALWAYS_SECRET:
                pairs.append((key, self.hide(item)))
                continue
            item = self.redact(item)
            if step_paths and folded == "parameters" and isinstance(item, JsonObject):
                item = self._declared(item, step_paths)
            pairs.append((key, item))
        return JsonObject(pairs)

    def _step_secrets(self, obj: JsonObject) -> frozenset[tuple[str, ...]]:
        name = obj.get_folded("name")
        if not isinstance(name, str) or self.registry is None:
            return frozenset()
        if not isinstance(obj.get_folded("parameters"), JsonObject):
            return frozenset()
        plugin = self.registry.find("teststeps", name)
        return secret_parameter_paths(plugin.factory) if plugin is not None else frozenset()

    def _declared(self, params: JsonObject, paths: frozenset[tuple[str, ...]]) -> JsonObject:
        """Hide the declared paths in ``{"name": [value, ...]}``: the first part names the
        parameter, the rest are keys inside each of its values."""
        pairs: list[tuple[str, JsonValue]] = []
        for key, values in params:
            folded = fold_key(key)
            rests = [p[1:] for p in paths if p[0] == folded]
            if rests and isinstance(values, list):
                values = [self._inside(v, rests) for v in values]
            elif rests:
                values = self._inside(values, rests)
            pairs.append((key, values))
        return JsonObject(pairs)

    def _inside(self, value: JsonValue, rests: list[tuple[str, ...]]) -> JsonValue:
        if any(not rest for rest in rests):
            return self.hide(value)
        if isinstance(value, list):
            return [self._inside(v, rests) for v in value]
        if not isinstance(value, JsonObject):
            return value
        pairs: list[tuple[str, JsonValue]] = []
        for key, item in value:
            folded = fold_key(key)
            inner = [r[1:] for r in rests if r[0] == folded]
            pairs.append((key, self._inside(item, inner) if inner else item))
        return JsonObject(pairs)

    def hide(self, value: JsonValue) -> JsonValue:
        """REDACTED for a value (each element of a list: a parameter's values stay a list)."""
        if value is None:
            return None
        if isinstance(value, list):
            return [self.hide(v) if isinstance(v, list) else self._leaf(v) for v in value]
        return self._leaf(value)

    def _leaf(self, value: JsonValue) -> str:
        if isinstance(value, str):
            self.found.append(value)
        elif value is not None:
            self.found.append(dumps(value))
        return REDACTED


# --- logs ---------------------------------------------------------------------------------------

#: Shorter values are not looked for in logs: hiding every "abc" would garble them.
MIN_LOGGED_SECRET = 4
#: Values kept for the log filter (the most recent; a server runs many jobs).
MAX_KNOWN_SECRETS = 10_000

_known: dict[str, None] = {}
_known_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None


def remember_secrets(values: Iterable[str]) -> None:
    """Secret values that :class:`SecretLogFilter` hides from every log line from now on (the
    job manager adds those of each job it builds; steps those they read from files)."""
    global _pattern
    fresh = [v for v in values if len(v) >= MIN_LOGGED_SECRET and v != REDACTED]
    if not fresh:
        return
    with _known_lock:
        changed = False
        for value in fresh:
            if value not in _known:
                _known[value] = None
                changed = True
        while len(_known) > MAX_KNOWN_SECRETS:
            del _known[next(iter(_known))]
        if changed:
            # longest first, so that a secret containing another is hidden whole
            alternatives = sorted(_known, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(v) for v in alternatives))


class SecretLogFilter(logging.Filter):
    """Hides the remembered secret values in every record (message, arguments, traceback)
    that reaches the handler it is attached to: whatever a library logs at debug level (a
    database driver logging the statements that store a job, say) shows ``<redacted>``."""

    @staticmethod
    def message(text: str) -> str:
        """A record's message as :meth:`filter` leaves it (for a line made without a record:
        :class:`contest.logs.QuickAdapter`)."""
        pattern = _pattern
        if pattern is not None and pattern.search(text):
            return pattern.sub(REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        pattern = _pattern
        if pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:
            # not formattable: the handler says so when it formats it (logging's own report,
            # "--- Logging error ---"), instead of the caller's logging call raising here
            return True
        redacted = self.message(message)
        if redacted is not message:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and pattern.search(record.exc_text):
            record.exc_text = pattern.sub(REDACTED, record.exc_text)
        if record.stack_info and pattern.search(record.stack_info):
            record.stack_info = pattern.sub(REDACTED, record.stack_info)
        return True


def install_log_filter() -> None:
    """Put a :class:`SecretLogFilter` on every handler of the root logger (where every
    logger's records end up); ``contest serve`` and ``contest run`` call it at start."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretLogFilter) for f in handler.filters):
            handler.addFilter(SecretLogFilter())
