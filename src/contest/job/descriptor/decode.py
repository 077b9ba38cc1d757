"""Decoding descriptors with the rules of Go's ``encoding/json``, as ConTest's server applies them.

Users' descriptors were written for ConTest, so what ConTest accepts must mean the same here:

* a key matches a field ignoring case (``name``, ``Name`` and ``NAME`` all set ``Name``); keys are
  applied in document order, so a later spelling of the same field wins;
* a key that matches no field is refused, with its path and the nearest known key (Go ignores
  it, so a typo such as ``nmae`` used to fail far from its cause, or not at all); only keys
  starting with ``x-`` (where YAML can keep anchors) and the obsolete top-level
  ``ReporterName``/``ReporterParameters`` (:data:`OBSOLETE_KEYS`) are ignored;
* ``null`` leaves a string, number, bool or struct field as it was, empties a list or map, unsets
  an optional timeout, and is kept as the text ``null`` for a raw sub-document;
* a value of the wrong type is reported in our words with its path (``Runs: expected a whole
  number (0 or more), got a string``), and decoding goes on; unlike Go we report every such
  error. Go's own text (``json: cannot unmarshal string into Go struct field Descriptor.Runs of
  type uint``) is kept as the error's ``wire`` text, which ConTest's form API answers with;
* ``Runs`` is unsigned (``-1`` and ``1.0`` are errors), ``NumRetries`` is a ``uint32``;
* durations must be quoted Go duration strings (see ``contest.golang.time``).

Two ConTest checks are made here rather than in validation because they are about the shape of the
document: a ``null`` test descriptor ("test description is null") and a ``null`` step ("test step
description is null"). The entry is replaced by an empty placeholder so later indices stay right.

Known differences from Go, all deliberate: a list given twice is replaced, not merged element by
element; escapes inside a duration string are decoded before parsing (Go parses the raw text); JSON
syntax errors are worded by Python's parser, with line and column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from contest.golang.json import (
    JsonNumber,
    JsonObject,
    JsonSyntaxError,
    JsonValue,
    dumps,
    fold_key,
    from_python,
    json_kind,
    loads_json,
    loads_yaml,
)
from contest.golang.time import DurationError, parse_duration
from contest.golang.unmarshal import type_error_text, uint_of, value_kind
from contest.job.descriptor.model import (
    DescriptorDecodeError,
    DescriptorError,
    ExtendedDescriptor,
    FetchedTest,
    JobDescriptor,
    LiteralFetchParameters,
    ReporterConfig,
    Reporting,
    RetryParameters,
    StepDescriptor,
    TestDescriptor,
)
from contest.suggest import did_you_mean

__all__ = [
    "DescriptorFormat",
    "decode_descriptor",
    "decode_extended_descriptor",
    "decode_fetch_parameters",
    "decode_steps",
    "decode_steps_document",
    "parse_document",
    "try_decode_descriptor",
    "try_decode_extended_descriptor",
]

DescriptorFormat = Literal["json", "yaml"]

#: Messages ConTest gives for ``null`` entries (pkg/pluginregistry, pkg/jobmanager).
NULL_TEST_MESSAGE = "test description is null"
NULL_STEP_MESSAGE = "test step description is null"

T = TypeVar("T")


class _Skip:
    """Marker: leave the field as it is (JSON ``null`` for a scalar, or a type error)."""


_SKIP = _Skip()


#: Keys starting with it are not fields and are ignored: a YAML descriptor keeps its anchors
#: there (``x-defaults: &d {...}``), as docker-compose files do.
EXTENSION_PREFIX = "x-"

#: Keys of fields ConTest's descriptors once had, still in old descriptors and in ConTest's own
#: job manager tests (pkg/jobmanager/jobmanager_test.go): accepted and ignored, as Go ignores
#: them, rather than refused as misspellings.
OBSOLETE_KEYS: dict[str, tuple[str, ...]] = {
    "job.Descriptor": ("ReporterName", "ReporterParameters"),
    "job.ExtendedDescriptor": ("ReporterName", "ReporterParameters"),
}
_OBSOLETE = {gotype: {fold_key(k) for k in keys} for gotype, keys in OBSOLETE_KEYS.items()}

#: What each struct is, in a message about a key it does not have.
_STRUCT_WORDS: dict[str, str] = {
    "job.Descriptor": "the job descriptor",
    "job.ExtendedDescriptor": "the job descriptor",
    "job.Reporting": "Reporting",
    "job.ReporterConfig": "a reporter",
    "test.TestDescriptor": "a test descriptor",
    "test.RetryParameters": "RetryParameters",
    "test.TestStepDescriptor": "a test step",
    "test.TestStepsDescriptors": "a fetched test",
    "literal.FetchParameters": "the literal fetcher's parameters",
    "uri.doc": "a test file",
}


def _expected(gotype: str) -> str:
    """A Go type as a message says what was expected."""
    if gotype == "string":
        return "a string"
    if gotype == "bool":
        return "true or false"
    if gotype == "uint":
        return "a whole number (0 or more)"
    if gotype == "uint32":
        return "a whole number from 0 to 4294967295"
    if gotype == "[]test.Param":
        return 'a list of values (write ["x"] for one value)'
    if gotype.startswith("[]"):
        return "a list"
    if gotype == "map[string]string":
        return "an object of strings"
    if gotype == "test.TestStepParameters":
        return "an object of parameters, each a list of values"
    return "an object"


def _given(value: JsonValue) -> str:
    """A value as a message shows what was given: a scalar itself, a container by its kind."""
    if isinstance(value, str):
        return dumps(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, JsonNumber):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return "a list" if isinstance(value, list) else "an object"


@dataclass(frozen=True)
class _Ctx:
    """Go's error context: the struct being filled and the chain of field names from the root."""

    struct: str | None = None
    stack: tuple[str, ...] = ()

    def enter(self, struct: str, name: str) -> _Ctx:
        return _Ctx(struct, (*self.stack, name))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_Handler = Callable[[JsonValue, str, _Ctx], None]
_FieldSpec = tuple[str, str, _Handler]
_Fields = Mapping[str, _FieldSpec]


def _fields(*specs: tuple[str, _Handler] | tuple[str, _Handler, str]) -> dict[str, _FieldSpec]:
    """Index field specs ``(go_name, handler[, path_name])`` by folded Go name."""
    out: dict[str, _FieldSpec] = {}
    for spec in specs:
        go_name, handler = spec[0], spec[1]
        path_name = spec[2] if len(spec) == 3 else go_name
        out[fold_key(go_name)] = (go_name, path_name, handler)
    return out


class _Decoder:
    """Fills dataclasses from a JSON tree, collecting Go-worded errors instead of stopping."""

    def __init__(self) -> None:
        self.errors: list[DescriptorError] = []

    # --- errors -------------------------------------------------------------------------------

    def error(self, path: str, message: str, wire: str | None = None) -> None:
        self.errors.append(DescriptorError(path, message, wire, decoding=True))

    def type_error(self, path: str, ctx: _Ctx, value: JsonValue, gotype: str) -> None:
        field = None if ctx.struct is None else f"{ctx.struct}.{'.'.join(ctx.stack)}"
        # Go names a number by its text only where it fits the kind but not the type (-1 for a
        # uint); otherwise by its kind
        what = (
            value_kind(value)
            if isinstance(value, JsonNumber) and gotype.startswith("uint")
            else json_kind(value)
        )
        self.error(
            path,
            f"expected {_expected(gotype)}, got {_given(value)}",
            type_error_text(what, gotype, field),
        )

    def unknown_key(self, path: str, key: str, gotype: str, fields: _Fields) -> None:
        """A key no field takes: Go ignores it; a typo (``nmae``) then fails far from its cause,
        so it is refused here, with the nearest known key."""
        known = [spec[1] for spec in fields.values()]
        self.error(
            _join(path, key),
            f'unknown key "{key}" in {_STRUCT_WORDS.get(gotype, "this object")}'
            f"{did_you_mean(key, known)}",
        )

    # --- scalars ------------------------------------------------------------------------------

    def string(self, value: JsonValue, path: str, ctx: _Ctx) -> str | _Skip:
        if value is None:
            return _SKIP
        if isinstance(value, str):
            return value
        self.type_error(path, ctx, value, "string")
        return _SKIP

    def uint(self, value: JsonValue, path: str, ctx: _Ctx, bits: int, gotype: str) -> int | _Skip:
        if value is None:
            return _SKIP
        if isinstance(value, JsonNumber):
            got = uint_of(value, bits)
            if got is not None:
                return got
            self.type_error(path, ctx, value, gotype)
            return _SKIP
        self.type_error(path, ctx, value, gotype)
        return _SKIP

    def boolean(self, value: JsonValue, path: str, ctx: _Ctx) -> bool | _Skip:
        if value is None:
            return _SKIP
        if isinstance(value, bool):
            return value
        self.type_error(path, ctx, value, "bool")
        return _SKIP

    def duration(self, value: JsonValue, path: str, *, optional: bool) -> float | _Skip | None:
        """A quoted Go duration; ``null`` only unsets an optional (pointer) one, as in Go."""
        if value is None and optional:
            return None
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except DurationError as exc:
                self.error(
                    path,
                    f'expected a duration such as "30s" or "1m30s", got {dumps(value)}',
                    str(exc),
                )
                return _SKIP
        self.error(
            path,
            f'expected a duration as a quoted string such as "30s" or "1m30s", got {_given(value)}',
            "not a properly double-quoted string: a duration must be a quoted Go duration "
            f'such as "30s" or "1m30s", got {value_kind(value)}',
        )
        return _SKIP

    # --- containers ---------------------------------------------------------------------------

    def struct(
        self, value: JsonValue, path: str, ctx: _Ctx, gotype: str, name: str, fields: _Fields
    ) -> bool:
        """Apply each known key of an object to its field; ``null`` leaves the struct alone."""
        if value is None:
            return False
        if not isinstance(value, JsonObject):
            self.type_error(path, ctx, value, gotype)
            return False
        for key, item in value:
            spec = fields.get(fold_key(key))
            if spec is None:
                folded = fold_key(key)
                if not folded.startswith(EXTENSION_PREFIX) and folded not in _OBSOLETE.get(
                    gotype, ()
                ):
                    self.unknown_key(path, key, gotype, fields)
                continue
            go_name, path_name, handler = spec
            handler(item, _join(path, path_name), ctx.enter(name, go_name))
        return True

    def array(
        self,
        value: JsonValue,
        path: str,
        ctx: _Ctx,
        gotype: str,
        element: Callable[[JsonValue, str, _Ctx], T],
    ) -> list[T] | _Skip:
        """A list; ``null`` empties it; elements keep their index even when they fail."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.type_error(path, ctx, value, gotype)
            return _SKIP
        return [element(item, f"{path}[{i}]", ctx) for i, item in enumerate(value)]

    def raw(self, value: JsonValue) -> str:
        return dumps(value)

    # --- ConTest's types ----------------------------------------------------------------------

    def string_elem(self, value: JsonValue, path: str, ctx: _Ctx) -> str:
        got = self.string(value, path, ctx)
        return "" if isinstance(got, _Skip) else got

    def reporter(self, value: JsonValue, path: str, ctx: _Ctx) -> ReporterConfig:
        r = ReporterConfig()
        self.struct(
            value,
            path,
            ctx,
            "job.ReporterConfig",
            "ReporterConfig",
            _fields(
                ("Name", self._setter(r, "name", self.string)),
                ("Parameters", lambda v, p, c: setattr(r, "parameters", self.raw(v))),
            ),
        )
        return r

    def reporting(self, value: JsonValue, path: str, ctx: _Ctx, rep: Reporting) -> None:
        def reporters(attr: str) -> _Handler:
            def handle(v: JsonValue, p: str, c: _Ctx) -> None:
                got = self.array(v, p, c, "[]job.ReporterConfig", self.reporter)
                if not isinstance(got, _Skip):
                    setattr(rep, attr, got)

            return handle

        self.struct(
            value,
            path,
            ctx,
            "job.Reporting",
            "Reporting",
            _fields(
                ("RunReporters", reporters("run_reporters")),
                ("FinalReporters", reporters("final_reporters")),
            ),
        )

    def retry(self, value: JsonValue, path: str, ctx: _Ctx, rp: RetryParameters) -> None:
        def interval(v: JsonValue, p: str, c: _Ctx) -> None:
            got = self.duration(v, p, optional=False)
            if isinstance(got, float):
                rp.retry_interval = got

        def retries(v: JsonValue, p: str, c: _Ctx) -> int | _Skip:
            return self.uint(v, p, c, 32, "uint32")

        self.struct(
            value,
            path,
            ctx,
            "test.RetryParameters",
            "RetryParameters",
            _fields(
                ("NumRetries", self._setter(rp, "num_retries", retries)),
                ("RetryInterval", interval),
            ),
        )

    def test_descriptor(self, value: JsonValue, path: str, ctx: _Ctx) -> TestDescriptor:
        td = TestDescriptor()
        if value is None:
            self.error(path, NULL_TEST_MESSAGE)
            return td

        def raw(attr: str) -> _Handler:
            return lambda v, p, c: setattr(td, attr, self.raw(v))

        self.struct(
            value,
            path,
            ctx,
            "test.TestDescriptor",
            "TestDescriptor",
            _fields(
                ("Disabled", self._setter(td, "disabled", self.boolean)),
                ("RetryParameters", lambda v, p, c: self.retry(v, p, c, td.retry_parameters)),
                ("TargetManagerName", self._setter(td, "target_manager_name", self.string)),
                ("TargetManagerAcquireParameters", raw("target_manager_acquire_parameters")),
                ("TargetManagerReleaseParameters", raw("target_manager_release_parameters")),
                ("TestFetcherName", self._setter(td, "test_fetcher_name", self.string)),
                ("TestFetcherFetchParameters", raw("test_fetcher_fetch_parameters")),
                ("CleanupFetcherName", self._setter(td, "cleanup_fetcher_name", self.string)),
                ("CleanupFetcherFetchParameters", raw("cleanup_fetcher_fetch_parameters")),
            ),
        )
        return td

    def job_fields(self, d: JobDescriptor) -> dict[str, _FieldSpec]:
        """The descriptor's fields (a dict, so the extended descriptor can add its own)."""

        def duration(attr: str, optional: bool) -> _Handler:
            def handle(v: JsonValue, p: str, c: _Ctx) -> None:
                got = self.duration(v, p, optional=optional)
                if not isinstance(got, _Skip):
                    setattr(d, attr, got)

            return handle

        def tests(v: JsonValue, p: str, c: _Ctx) -> None:
            got = self.array(v, p, c, "[]*test.TestDescriptor", self.test_descriptor)
            if not isinstance(got, _Skip):
                d.test_descriptors = got

        def tags(v: JsonValue, p: str, c: _Ctx) -> None:
            got = self.array(v, p, c, "[]string", self.string_elem)
            if not isinstance(got, _Skip):
                d.tags = got

        def runs(v: JsonValue, p: str, c: _Ctx) -> int | _Skip:
            return self.uint(v, p, c, 64, "uint")

        return _fields(
            ("JobName", self._setter(d, "job_name", self.string)),
            ("Version", self._setter(d, "version", self.string)),
            ("Tags", tags),
            ("Runs", self._setter(d, "runs", runs)),
            ("RunInterval", duration("run_interval", False)),
            ("TestDescriptors", tests),
            ("Reporting", lambda v, p, c: self.reporting(v, p, c, d.reporting)),
            ("TargetManagerAcquireTimeout", duration("target_manager_acquire_timeout", True)),
            ("TargetManagerReleaseTimeout", duration("target_manager_release_timeout", True)),
        )

    def step(self, value: JsonValue, path: str, ctx: _Ctx) -> StepDescriptor:
        s = StepDescriptor()
        if value is None:
            self.error(path, NULL_STEP_MESSAGE)
            return s

        def param(v: JsonValue, p: str, c: _Ctx) -> str:
            return self.raw(v)

        def parameters(v: JsonValue, p: str, c: _Ctx) -> None:
            if v is None:
                s.parameters = {}
                return
            if not isinstance(v, JsonObject):
                self.type_error(p, c, v, "test.TestStepParameters")
                return
            for key, item in v:
                got = self.array(item, _join(p, key), c, "[]test.Param", param)
                if not isinstance(got, _Skip):
                    s.parameters[key] = got

        def mapping(v: JsonValue, p: str, c: _Ctx) -> None:
            if v is None:
                s.variables_mapping = {}
                return
            if not isinstance(v, JsonObject):
                self.type_error(p, c, v, "map[string]string")
                return
            for key, item in v:
                s.variables_mapping[key] = self.string_elem(item, _join(p, key), c)

        self.struct(
            value,
            path,
            ctx,
            "test.TestStepDescriptor",
            "TestStepDescriptor",
            _fields(
                ("Name", self._setter(s, "name", self.string), "name"),
                ("Label", self._setter(s, "label", self.string), "label"),
                ("Parameters", parameters, "parameters"),
                ("VariablesMapping", mapping),
            ),
        )
        return s

    def steps(self, value: JsonValue, path: str, ctx: _Ctx) -> list[StepDescriptor]:
        got = self.array(value, path, ctx, "[]*test.TestStepDescriptor", self.step)
        return [] if isinstance(got, _Skip) else got

    def fetched_test(self, value: JsonValue, path: str, ctx: _Ctx) -> FetchedTest:
        t = FetchedTest()

        def steps(attr: str) -> _Handler:
            return lambda v, p, c: setattr(t, attr, self.steps(v, p, c))

        self.struct(
            value,
            path,
            ctx,
            "test.TestStepsDescriptors",
            "TestStepsDescriptors",
            _fields(
                ("TestName", self._setter(t, "test_name", self.string)),
                ("TestSteps", steps("test_steps")),
                ("CleanupSteps", steps("cleanup_steps")),
            ),
        )
        return t

    # --- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _setter(obj: object, attr: str, read: Callable[[JsonValue, str, _Ctx], Any]) -> _Handler:
        def handle(value: JsonValue, path: str, ctx: _Ctx) -> None:
            got = read(value, path, ctx)
            if not isinstance(got, _Skip):
                setattr(obj, attr, got)

        return handle


# --- documents ----------------------------------------------------------------------------------


def parse_document(
    data: str | bytes | Mapping[str, Any], fmt: DescriptorFormat | None = None
) -> JsonValue:
    """Read JSON or YAML text (or plain Python data) into the tree model.

    With ``fmt=None`` a document starting with ``{`` or ``[`` is JSON, anything else YAML
    (ConTest's client converts YAML to JSON before sending; we accept both directly). A broken
    JSON document is not retried as YAML, which would accept it with other meanings (YAML takes
    ``{"a": 1,}``). Raises :class:`JsonSyntaxError`.
    """
    if isinstance(data, Mapping):
        return from_python(data)
    if fmt == "json":
        return loads_json(data)
    if fmt == "yaml":
        return loads_yaml(data)
    if fmt is not None:
        raise ValueError(f"unknown descriptor format {fmt!r}: use 'json' or 'yaml'")
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "["):
        return loads_json(data)
    return loads_yaml(data)


def _parse_or_error(
    data: str | bytes | Mapping[str, Any], fmt: DescriptorFormat | None
) -> tuple[JsonValue, list[DescriptorError]]:
    try:
        return parse_document(data, fmt), []
    except JsonSyntaxError as exc:
        return None, [DescriptorError("", str(exc))]


def try_decode_descriptor(
    data: str | bytes | Mapping[str, Any], *, fmt: DescriptorFormat | None = None
) -> tuple[JobDescriptor | None, list[DescriptorError]]:
    """Decode as far as possible: the descriptor (``None`` on a syntax error) and every error.

    Like Go, a field with a type error keeps its zero value and decoding goes on, so the partial
    descriptor can still be validated (see ``contest.job.descriptor.load_descriptor``).
    """
    tree, errors = _parse_or_error(data, fmt)
    if errors:
        return None, errors
    dec = _Decoder()
    d = JobDescriptor()
    dec.struct(tree, "", _Ctx(), "job.Descriptor", "Descriptor", dec.job_fields(d))
    return d, dec.errors


def decode_descriptor(
    data: str | bytes | Mapping[str, Any], *, fmt: DescriptorFormat | None = None
) -> JobDescriptor:
    """Decode a job descriptor (JSON or YAML) with Go's rules, without validating it.

    Raises :class:`DescriptorDecodeError` listing every decoding error.
    """
    d, errors = try_decode_descriptor(data, fmt=fmt)
    if errors or d is None:
        raise DescriptorDecodeError(errors)
    return d


def try_decode_extended_descriptor(
    data: str | bytes | Mapping[str, Any],
) -> tuple[ExtendedDescriptor | None, list[DescriptorError]]:
    """Decode ConTest's extended-descriptor JSON, collecting every error (see above)."""
    tree, errors = _parse_or_error(data, "json" if not isinstance(data, Mapping) else None)
    if errors:
        return None, errors
    dec = _Decoder()
    ext = ExtendedDescriptor()
    fields = dec.job_fields(ext.descriptor)

    def tests(v: JsonValue, p: str, c: _Ctx) -> None:
        got = dec.array(v, p, c, "[]test.TestStepsDescriptors", dec.fetched_test)
        if not isinstance(got, _Skip):
            ext.tests = got

    fields.update(_fields(("TestStepsDescriptors", tests)))
    dec.struct(tree, "", _Ctx(), "job.ExtendedDescriptor", "ExtendedDescriptor", fields)
    return ext, dec.errors


def decode_extended_descriptor(data: str | bytes | Mapping[str, Any]) -> ExtendedDescriptor:
    """Decode ConTest's extended-descriptor JSON; raises :class:`DescriptorDecodeError`."""
    ext, errors = try_decode_extended_descriptor(data)
    if errors or ext is None:
        raise DescriptorDecodeError(errors)
    return ext


def _tree_of(obj: Any) -> JsonValue:
    """Accept a tree, plain Python data, or raw JSON text (``str``/``bytes``) for a sub-document."""
    if isinstance(obj, bytes | bytearray):
        return loads_json(bytes(obj))
    return from_python(obj)


def decode_steps(
    obj: Any, path: str = "Steps"
) -> tuple[list[StepDescriptor], list[DescriptorError]]:
    """Decode a list of steps (``[{"name", "label", "parameters"}, ...]``) with Go's rules.

    ``obj`` is the list as plain Python data (from ``json.loads``) or as a tree. A ``null`` entry
    is reported as "test step description is null" and kept as an empty step, so the indices of
    the other steps (and of their errors) stay those of the document.
    """
    dec = _Decoder()
    steps = dec.steps(_tree_of(obj), path, _Ctx("FetchParameters", ("Steps",)))
    return steps, dec.errors


def decode_fetch_parameters(
    raw: str | bytes | Any, path: str = ""
) -> tuple[LiteralFetchParameters, list[DescriptorError]]:
    """Decode the literal fetcher's parameters ``{"TestName", "Steps"}`` with Go's rules.

    ``raw`` is the raw JSON text of ``TestFetcherFetchParameters`` (``None`` when the key was
    absent, which Go reports as "unexpected end of JSON input"), or already-decoded data. The
    test name is not required here: the literal fetcher requires it for tests, not for cleanups.
    """
    params = LiteralFetchParameters()
    if raw is None:
        return params, [DescriptorError(path, "unexpected end of JSON input")]
    try:
        tree = loads_json(raw) if isinstance(raw, str | bytes | bytearray) else from_python(raw)
    except JsonSyntaxError as exc:
        return params, [DescriptorError(path, str(exc))]
    dec = _Decoder()

    def steps(v: JsonValue, p: str, c: _Ctx) -> None:
        params.steps = dec.steps(v, p, c)

    dec.struct(
        tree,
        path,
        _Ctx(),
        "literal.FetchParameters",
        "FetchParameters",
        _fields(
            ("TestName", dec._setter(params, "test_name", dec.string)),
            ("Steps", steps),
        ),
    )
    return params, dec.errors


def decode_steps_document(
    data: str | bytes | Any, path: str = ""
) -> tuple[list[StepDescriptor], list[DescriptorError]]:
    """Decode a test file as the URI fetcher reads it: ``{"steps": [step, ...]}``."""
    try:
        tree = loads_json(data) if isinstance(data, str | bytes | bytearray) else from_python(data)
    except JsonSyntaxError as exc:
        return [], [DescriptorError(path, str(exc))]
    dec = _Decoder()
    result: list[StepDescriptor] = []

    def steps(v: JsonValue, p: str, c: _Ctx) -> None:
        result[:] = dec.steps(v, p, c)

    dec.struct(tree, path, _Ctx(), "uri.doc", "doc", _fields(("Steps", steps, "steps")))
    return result, dec.errors
