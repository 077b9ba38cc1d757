"""Declared parameters: what a plugin takes, said once, next to its class.

A step lists its parameters as :class:`Parameter` declarations::

    class Sleep(TestStep):
        name = "Sleep"
        parameters = (
            Parameter("duration", Kind.DURATION, required=True, minimum=0,
                      doc="how long each target waits"),
        )

and the framework uses that one list for everything around the step: it checks a descriptor's
parameters before the step's own ``validate_parameters`` runs (unknown names refused with a
did-you-mean, values of the wrong type or out of range named with their path, templated values
parsed and their target fields checked), it knows which values are secret, and it documents the
step (``contest plugins NAME``, ``docs/steps.md``, ``contest schema``). A step without a
declaration (``parameters = None``, the default) is checked by its ``validate_parameters`` alone,
as before.

Step parameters are ConTest's: every name maps to a *list* of values, and a value may be spelt
loosely (``"12"`` and ``12`` are both the integer 12; ``"true"`` and ``true`` both true), since
steps read them as text. Target managers, fetchers and reporters take a JSON object that ConTest
decodes into a Go struct: their declarations are ``Parameters(..., go_struct=True)``, whose keys
match ignoring case and whose values must have the JSON type itself (Go's rules).
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from contest import templates
from contest.errors import ParameterError
from contest.golang.json import fold_key
from contest.golang.strconv import parse_bool
from contest.golang.time import DurationError, parse_duration
from contest.params import Param, StepParameters, known_function_names
from contest.suggest import closest, did_you_mean
from contest.target import Target

__all__ = [
    "Kind",
    "Parameter",
    "ParameterProblems",
    "Parameters",
    "Problem",
    "declared",
]


class Kind(enum.Enum):
    """The type of a parameter's value."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DURATION = "duration"
    JSON = "json"  # any JSON value
    OBJECT = "object"  # a JSON object (its keys declared in ``fields``, or any)
    STEPS = "steps"  # a list of test steps (the literal fetcher's)

    @property
    def words(self) -> str:
        """The kind as a message says what was expected."""
        return _WORDS[self]


_WORDS: Final = {
    Kind.STRING: "a string",
    Kind.INTEGER: "an integer",
    Kind.NUMBER: "a number",
    Kind.BOOLEAN: "a boolean (true or false)",
    Kind.DURATION: 'a duration such as "30s" or "1m30s"',
    Kind.JSON: "any JSON value",
    Kind.OBJECT: "an object",
    Kind.STEPS: "a list of test steps",
}
_PY_KINDS: Final[dict[Any, Kind]] = {
    str: Kind.STRING,
    int: Kind.INTEGER,
    float: Kind.NUMBER,
    bool: Kind.BOOLEAN,
    dict: Kind.OBJECT,
    object: Kind.JSON,
}
#: The fields a template may read from a target (``{{ .FQDN }}``).
TARGET_FIELDS: Final = tuple(Target.__template_fields__)
_INT_TEXT: Final = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with some parameters: where (``args[1]``, ``bag[0].bin.path``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ParameterProblems(ParameterError):
    """Parameters refused by their declaration; ``problems`` lists every one found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("; ".join(map(str, self.problems)))


@dataclass(frozen=True)
class Parameter:
    """One declared parameter.

    ``type`` is a :class:`Kind` (or ``str``, ``int``, ``float``, ``bool``, ``dict``, ``object``).
    ``required`` parameters must be given (and not empty); ``default`` is what an absent one
    means (shown in the reference, and what :meth:`read` returns). ``many``: a step parameter may
    have several values; an object field holds a list. ``templated``: the value is a Go template
    expanded per target, checked at submission for syntax and for target fields. ``secret``: the
    value is never shown. ``choices`` lists the accepted values (compared ignoring case);
    ``minimum``/``maximum`` bound numbers (durations in seconds). ``fields`` declares the keys of
    an ``OBJECT`` (any key is accepted without it).
    """

    name: str
    type: Kind | type = Kind.STRING
    doc: str = ""
    required: bool = False
    default: Any = None
    many: bool = False
    templated: bool = False
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    fields: Parameters | Sequence[Parameter] | None = None

    def __post_init__(self) -> None:
        kind = self.type if isinstance(self.type, Kind) else _PY_KINDS.get(self.type)
        if kind is None:
            raise TypeError(f"parameter {self.name!r}: unsupported type {self.type!r}")
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "choices", tuple(self.choices))
        if self.fields is not None and not isinstance(self.fields, Parameters):
            object.__setattr__(self, "fields", Parameters(*self.fields))
        if not self.name:
            raise ValueError("a parameter needs a name")
        if self.required and self.default is not None:
            raise ValueError(f"parameter {self.name!r}: required, so it cannot have a default")
        if self.fields is not None and kind is not Kind.OBJECT:
            raise ValueError(f"parameter {self.name!r}: only an object has fields")
        plain = not (self.choices or self.templated or self.many) and (
            self.minimum is None and self.maximum is None
        )
        object.__setattr__(self, "_plain", plain)

    @property
    def plain(self) -> bool:
        """Nothing to check of a value of the right JSON type (no choices, range, template)."""
        plain: bool = self.__dict__["_plain"]
        return plain

    @property
    def kind(self) -> Kind:
        assert isinstance(self.type, Kind)
        return self.type

    @property
    def field_set(self) -> Parameters | None:
        assert self.fields is None or isinstance(self.fields, Parameters)
        return self.fields

    # --- reading a step's value -----------------------------------------------------------------

    def read(self, params: StepParameters) -> Any:
        """The value of this step parameter, typed: ``str``, ``int``, ``float``, ``bool``,
        seconds (``float``) for a duration, the decoded JSON otherwise; a list when ``many``;
        the default (typed likewise) when absent. Raises ``ParameterError`` for a value the
        declaration refuses (validation normally refused the job already)."""
        values = [p for p in params.get(self.name) if not p.is_empty()]
        if not values:
            if self.default is None:
                return [] if self.many else None
            defaults = self.default if self.many else [self.default]
            values = [Param.from_value(v, self.name) for v in defaults]
        out = [self._typed(p) for p in values]
        return out if self.many else out[0]

    def _typed(self, p: Param) -> Any:
        if self.templated and "{{" in str(p) and self.kind is not Kind.STRING:
            raise ParameterError(f"{self.name}: a template; expand it per target (Param.expand)")
        problems: list[Problem] = []
        value = _decoded(p)
        _check_loose(self, value, self.name, problems, check_templates=False)
        if problems:
            raise ParameterProblems(problems)
        kind = self.kind
        if kind is Kind.STRING:
            return str(p)
        if kind is Kind.INTEGER:
            return int(str(p), 10)
        if kind is Kind.NUMBER:
            return float(str(p))
        if kind is Kind.BOOLEAN:
            return value if isinstance(value, bool) else parse_bool(str(p))
        if kind is Kind.DURATION:
            return parse_duration(str(p))
        return value

    # --- documentation --------------------------------------------------------------------------

    @property
    def type_text(self) -> str:
        """The type as the reference shows it: ``duration``, ``list of string``, ``object``."""
        text = self.kind.value
        if self.choices:
            text = " | ".join(self.choices)
        return f"list of {text}" if self.many else text


class Parameters(Sequence[Parameter]):
    """A plugin's declared parameters.

    ``others`` describes the values of any name not declared (the ``variables`` step takes any
    name); without it an undeclared name is refused. ``go_struct``: the parameters are a JSON
    object read as a Go struct (keys ignore case, values have their JSON type).
    """

    def __init__(
        self, *items: Parameter, others: Parameter | None = None, go_struct: bool = False
    ) -> None:
        self.items: tuple[Parameter, ...] = items
        self.others = others
        self.go_struct = go_struct
        self._by_key: dict[str, Parameter] = {}
        #: The required ones, checked for every object (kept apart: a list of 100,000 targets
        #: checks them 100,000 times).
        self.required: tuple[Parameter, ...] = tuple(p for p in items if p.required)
        for p in items:
            key = self._key(p.name)
            if key in self._by_key:
                raise ValueError(f"parameter {p.name!r} is declared twice")
            self._by_key[key] = p

    def _key(self, name: str) -> str:
        return fold_key(name) if self.go_struct else name

    def __getitem__(self, i: int) -> Parameter:  # type: ignore[override]
        return self.items[i]

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"Parameters({', '.join(p.name for p in self.items)})"

    def get(self, name: str) -> Parameter | None:
        """The declaration of ``name`` (ignoring case for a Go struct), or None."""
        return self._by_key.get(self._key(name))

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.items]

    # --- checking -------------------------------------------------------------------------------

    def check_step(self, params: StepParameters) -> list[Problem]:
        """Every problem of a step's parameters (``name -> [values]``), paths relative to the
        step's ``parameters`` (``duration``, ``args[1]``, ``bag[0].transport.options.host``)."""
        problems: list[Problem] = []
        for name, values in params.items():
            decl = self.get(name) or self.others
            if decl is None:
                problems.append(Problem(name, f"unknown parameter{did_you_mean(name, self.names)}"))
                continue
            if len(values) > 1 and not decl.many:
                problems.append(Problem(name, f"takes one value, got {len(values)}"))
                continue
            for i, p in enumerate(values):
                _check_loose(decl, _decoded(p), f"{name}[{i}]", problems, check_templates=True)
        for decl in self.items:
            if decl.required and all(v.is_empty() for v in params.get(decl.name)):
                given = bool(params.get(decl.name))
                problems.append(
                    Problem(decl.name, "must not be empty" if given else "missing; it is required")
                )
        return problems

    def check_object(self, value: Any, path: str = "") -> list[Problem]:
        """Every problem of a JSON object (decoded) against these fields; ``None`` (absent or
        ``null``) is an empty object."""
        problems: list[Problem] = []
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            problems.append(Problem(path, f"expected an object, got {_got(value)}"))
            return problems
        _check_fields(self, value, path, problems, strict=self.go_struct, templates_on=True)
        return problems

    # --- JSON Schema ----------------------------------------------------------------------------

    def json_schema(
        self,
        *,
        loose: bool = False,
        steps_ref: str = "#/definitions/step",
        step_parameters: bool = True,
        templated: bool = False,
    ) -> dict[str, Any]:
        """The JSON Schema of these parameters: a step's (``name: [value, ...]``, exact names)
        or, for a Go struct or a nested object (``step_parameters=False``), an object of fields
        (``loose`` for a step's nested values; ``templated`` when every string in them is a
        template). ``steps_ref`` is where the descriptor schema defines a test step."""
        props: dict[str, dict[str, Any]] = {}
        for q in self.items:
            value = _value_schema(
                q, loose=loose or step_parameters, steps_ref=steps_ref, templated=templated
            )
            if step_parameters:
                item: dict[str, Any] = {"type": "array", "items": value}
                if not q.many:
                    item["maxItems"] = 1
                if q.required:
                    item["minItems"] = 1
                props[q.name] = _described(q, item)
            elif q.many:
                props[q.name] = _described(q, {"type": "array", "items": value})
            else:
                props[q.name] = _described(q, value)
        others: dict[str, Any] | bool = False
        if self.others is not None:
            value = _value_schema(
                self.others,
                loose=loose or step_parameters,
                steps_ref=steps_ref,
                templated=templated,
            )
            others = {"type": "array", "items": value, "maxItems": 1} if step_parameters else value
        if self.go_struct:
            return go_object({k: or_null(v) for k, v in props.items()}, others=others)
        schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "additionalProperties": others,
        }
        required = [q.name for q in self.items if q.required]
        if required:
            schema["required"] = required
        return schema

    # --- secrets --------------------------------------------------------------------------------

    def secret_names(self) -> frozenset[str]:
        """The secret parameters, as dotted names into their values
        (``password``, ``bag.transport.options.password``)."""
        out: set[str] = set()
        for p in self.items:
            if p.secret:
                out.add(p.name)
            if p.field_set is not None:
                out.update(f"{p.name}.{inner}" for inner in p.field_set.secret_names())
        return frozenset(out)


def declared(owner: Any, attribute: str = "parameters") -> Parameters | None:
    """The declaration an object or class carries in ``attribute`` (a :class:`Parameters`, or a
    sequence of :class:`Parameter`), or None if it declares nothing."""
    found = getattr(owner, attribute, None)
    if found is None or isinstance(found, Parameters):
        return found
    if isinstance(found, Sequence) and all(isinstance(p, Parameter) for p in found):
        return Parameters(*found)
    raise TypeError(
        f"{getattr(owner, '__name__', type(owner).__name__)}.{attribute} must be a sequence of "
        f"Parameter, got {type(found).__name__}"
    )


# --- values ------------------------------------------------------------------------------------


def _decoded(p: Param) -> Any:
    try:
        return json.loads(p.raw)
    except ValueError:
        return p.raw  # not JSON (a value built in code): its text


def _got(value: Any, secret: bool = False) -> str:
    """A value as a message shows what was given (a secret only by its kind)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean" if secret else ("true" if value else "false")
    if isinstance(value, int | float):
        return "a number" if secret else json.dumps(value)
    if isinstance(value, str):
        if secret:
            return "a string"
        shown = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, list):
        return "a list"
    return "an object"


def _text_of(value: Any) -> str | None:
    """A scalar as a step reads it as text (ConTest's ``Param.String()``), None for containers."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return None


def _check_loose(
    decl: Parameter, value: Any, path: str, problems: list[Problem], *, check_templates: bool
) -> None:
    """One value of a step parameter, read as steps read them: scalars may be spelt as text."""
    kind = decl.kind
    if value == "":
        # an empty value is an absent one to a step (``Param.is_empty``); a required
        # parameter's emptiness is checked on its own
        return
    if decl.templated and isinstance(value, str) and "{{" in value:
        if check_templates:
            _check_template(value, path, problems)
        return
    if kind is Kind.JSON:
        if decl.templated and check_templates:
            _check_template_leaves(value, path, problems)
        return
    if kind is Kind.OBJECT:
        if not isinstance(value, Mapping):
            problems.append(Problem(path, f"expected an object, got {_got(value, decl.secret)}"))
            return
        if decl.templated and check_templates and decl.field_set is None:
            _check_template_leaves(value, path, problems)
        if decl.field_set is not None:
            _check_fields(
                decl.field_set,
                value,
                path,
                problems,
                strict=False,
                templates_on=check_templates,
                templated=decl.templated,
            )
        return
    if kind is Kind.STEPS:
        if not isinstance(value, list):
            problems.append(Problem(path, f"expected a list of steps, got {_got(value)}"))
        return
    text = _text_of(value)
    if text is None:  # a list, an object or null where a scalar goes
        problems.append(Problem(path, f"expected {kind.words}, got {_got(value, decl.secret)}"))
        return
    _check_scalar_text(decl, text, value, path, problems)


def _check_scalar_text(
    decl: Parameter, text: str, value: Any, path: str, problems: list[Problem]
) -> None:
    kind = decl.kind
    number: float | None = None
    if kind is Kind.INTEGER:
        if isinstance(value, bool) or not _INT_TEXT.fullmatch(text):
            problems.append(Problem(path, f"expected an integer, got {_got(value, decl.secret)}"))
            return
        number = int(text, 10)
    elif kind is Kind.NUMBER:
        try:
            number = float(text)
        except ValueError:
            number = None
        if isinstance(value, bool) or number is None or not math.isfinite(number):
            problems.append(Problem(path, f"expected a number, got {_got(value, decl.secret)}"))
            return
    elif kind is Kind.BOOLEAN:
        try:
            parse_bool(text)
        except ValueError:
            problems.append(
                Problem(
                    path,
                    f"expected a boolean (true, false, 1, 0, t, f), got {_got(value, decl.secret)}",
                )
            )
        return
    elif kind is Kind.DURATION:
        if not isinstance(value, str):
            problems.append(
                Problem(path, f"expected {kind.words} (quoted), got {_got(value, decl.secret)}")
            )
            return
        try:
            number = parse_duration(text)
        except DurationError:
            problems.append(Problem(path, f"expected {kind.words}, got {_got(value, decl.secret)}"))
            return
    _check_choices_and_range(decl, text, number, path, problems)


def _check_choices_and_range(
    decl: Parameter, text: str, number: float | None, path: str, problems: list[Problem]
) -> None:
    if decl.choices and text.casefold() not in {c.casefold() for c in decl.choices}:
        problems.append(
            Problem(
                path,
                f"expected one of {', '.join(decl.choices)}, got {_got(text, decl.secret)}"
                + _suggest(text, decl.choices, decl.secret),
            )
        )
    if number is None:
        return
    unit = " seconds" if decl.kind is Kind.DURATION else ""
    if decl.minimum is not None and number < decl.minimum:
        problems.append(Problem(path, f"must be at least {_num(decl.minimum)}{unit}, got {text}"))
    if decl.maximum is not None and number > decl.maximum:
        problems.append(Problem(path, f"must be at most {_num(decl.maximum)}{unit}, got {text}"))


def _suggest(text: str, known: Sequence[str], secret: bool) -> str:
    best = None if secret else closest(text, known)
    return f'; did you mean "{best}"?' if best else ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _check_strict(decl: Parameter, value: Any, path: str, problems: list[Problem]) -> None:
    """One field of a Go struct: the JSON type must be the field's (``null`` was skipped)."""
    kind = decl.kind
    ok: bool
    number: float | None = None
    if kind is Kind.STRING:
        ok = isinstance(value, str)
    elif kind is Kind.INTEGER:
        ok = isinstance(value, int) and not isinstance(value, bool)
        number = value if ok else None
    elif kind is Kind.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        number = value if ok else None
    elif kind is Kind.BOOLEAN:
        ok = isinstance(value, bool)
    elif kind is Kind.DURATION:
        ok = isinstance(value, str)
        if ok:
            try:
                number = parse_duration(value)
            except DurationError:
                problems.append(Problem(path, f"expected {kind.words}, got {_got(value)}"))
                return
    elif kind is Kind.OBJECT:
        ok = isinstance(value, Mapping)
        if ok and decl.field_set is not None:
            _check_fields(decl.field_set, value, path, problems, strict=True, templates_on=True)
            return
    elif kind is Kind.STEPS:
        ok = isinstance(value, list)
    else:
        return
    if not ok:
        problems.append(Problem(path, f"expected {kind.words}, got {_got(value, decl.secret)}"))
        return
    if isinstance(value, str) and decl.templated and "{{" in value:
        _check_template(value, path, problems)
        return
    _check_choices_and_range(decl, str(value), number, path, problems)


def _check_fields(
    fields: Parameters,
    value: Mapping[str, Any],
    path: str,
    problems: list[Problem],
    *,
    strict: bool,
    templates_on: bool,
    templated: bool = False,
) -> None:
    """The keys of an object: each known, of its type; the required ones present.

    Written for speed as well: a ``TargetList`` of 100,000 targets is 100,000 objects."""
    given: dict[str, Any] = {}  # declared name -> the (last) value given for it
    key_of = fields._key
    by_key = fields._by_key
    for key, item in value.items():
        decl = by_key.get(key_of(key)) or fields.others
        if decl is None:
            sub = f"{path}.{key}" if path else key
            problems.append(Problem(sub, f"unknown key{did_you_mean(key, fields.names)}"))
            continue
        given[decl.name] = item
        if item is None:
            continue  # null: Go leaves the field as it is; a step reads it as absent
        if strict and decl.type is Kind.STRING and type(item) is str and decl.plain:
            continue  # the common case, a plain string where one is wanted
        sub = f"{path}.{key}" if path else key
        if templated and not decl.templated:
            decl = replace(decl, templated=True)  # a templated object: every leaf is a template
        items: list[tuple[str, Any]]
        if decl.many:
            if isinstance(item, list):
                items = [(f"{sub}[{i}]", v) for i, v in enumerate(item)]
            elif strict:
                problems.append(Problem(sub, f"expected a list, got {_got(item, decl.secret)}"))
                continue
            else:
                items = [(sub, item)]  # a step's loose reading takes one value for a list of one
        else:
            items = [(sub, item)]
        for where, v in items:
            if strict:
                _check_strict(decl, v, where, problems)
            else:
                _check_loose(decl, v, where, problems, check_templates=templates_on)
    for decl in fields.required:
        if decl.name not in given:
            sub = f"{path}.{decl.name}" if path else decl.name
            problems.append(Problem(sub, "missing; it is required"))
        elif _blank(given[decl.name]):
            sub = f"{path}.{decl.name}" if path else decl.name
            problems.append(Problem(sub, "must not be empty"))


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


# --- templates ---------------------------------------------------------------------------------


def _check_template(text: str, path: str, problems: list[Problem]) -> None:
    """A template must parse, and read from the target only the fields a target has."""
    try:
        refs = templates.root_fields(text, name=path, funcs=known_function_names())
    except templates.TemplateError as exc:
        problems.append(
            Problem(path, f"not a valid template: {exc.detail} (line {exc.line}, column {exc.col})")
        )
        return
    for ref in refs:
        if ref.name in TARGET_FIELDS:
            continue
        best = closest(ref.name, TARGET_FIELDS)
        hint = f'; did you mean "{best}"?' if best else f" (it has {', '.join(TARGET_FIELDS)})"
        problems.append(
            Problem(
                path,
                f"the template reads .{ref.name} (line {ref.line}, column {ref.col}), which a "
                f"target does not have{hint}",
            )
        )


def _check_template_leaves(value: Any, path: str, problems: list[Problem]) -> None:
    if isinstance(value, str):
        if "{{" in value:
            _check_template(value, path, problems)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_template_leaves(v, f"{path}[{i}]", problems)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _check_template_leaves(v, f"{path}.{k}", problems)


# --- JSON Schema ---------------------------------------------------------------------------------

#: A Go duration as text (``"300ms"``, ``"1m30s"``, ``"0"``).
DURATION_PATTERN: Final = (
    r"^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)$"
)
_GO_BOOL_TEXTS: Final = ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false",
                         "False")  # fmt: skip


def any_case(name: str) -> str:
    """A regular expression matching ``name`` in any case (JSON Schema's regexes have no ``(?i)``):
    ``JobName`` gives ``^[Jj][Oo][Bb][Nn][Aa][Mm][Ee]$``."""
    return "^" + _any_case_body(name) + "$"


def _any_case_body(name: str) -> str:
    out = []
    for ch in name:
        low, up = ch.lower(), ch.upper()
        if low != up and len(low) == 1 and len(up) == 1:
            out.append(f"[{re.escape(up)}{re.escape(low)}]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def one_of_any_case(names: Sequence[str]) -> dict[str, Any]:
    """A string that is one of ``names``, in any case (the names offered for completion)."""
    return {
        "anyOf": [
            {"enum": list(names)},
            {"type": "string", "pattern": "^(" + "|".join(_any_case_body(n) for n in names) + ")$"},
        ]
    }


def or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or JSON ``null`` (which Go reads as "leave it as it is")."""
    t = schema.get("type")
    if isinstance(t, str) and set(schema) <= {
        "type",
        "description",
        "default",
        "minimum",
        "maximum",
        "pattern",
        "items",
        "properties",
        "patternProperties",
        "additionalProperties",
    }:
        return {**schema, "type": [t, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def go_object(
    properties: Mapping[str, dict[str, Any]],
    *,
    extra: dict[str, Any] | None = None,
    others: dict[str, Any] | bool = False,
) -> dict[str, Any]:
    """An object read as a Go struct: each key in any case, no other key (unless ``others``)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": dict(properties),
        "patternProperties": {any_case(k): v for k, v in properties.items()},
        "additionalProperties": others,
    }
    if extra:
        schema["patternProperties"].update(extra)
    return schema


def _described(p: Parameter, schema: dict[str, Any]) -> dict[str, Any]:
    if p.doc:
        schema = {**schema, "description": p.doc}
    if p.default is not None and "$ref" not in schema:
        schema = {**schema, "default": p.default}
    return schema


def _value_schema(
    p: Parameter, *, loose: bool, steps_ref: str, templated: bool = False
) -> dict[str, Any]:
    """One value of ``p``: loose (a step's: scalars may be text) or strict; a templated value
    may also be a template."""
    kind = p.kind
    templated = templated or p.templated
    template = {"type": "string", "pattern": r"\{\{"}
    bounds = {k: v for k, v in (("minimum", p.minimum), ("maximum", p.maximum)) if v is not None}
    s: dict[str, Any]
    if p.choices:
        s = one_of_any_case(p.choices)
    elif kind is Kind.STRING:
        s = {"type": ["string", "number", "boolean"]} if loose else {"type": "string"}
    elif kind is Kind.INTEGER:
        s = {"type": "integer", **bounds}
        if loose:
            s = {"anyOf": [s, {"type": "string", "pattern": r"^[+-]?[0-9]+$"}]}
    elif kind is Kind.NUMBER:
        s = {"type": "number", **bounds}
        if loose:
            s = {"anyOf": [s, {"type": "string"}]}
    elif kind is Kind.BOOLEAN:
        s = {"type": "boolean"}
        if loose:
            s = {"anyOf": [s, {"enum": list(_GO_BOOL_TEXTS)}]}
    elif kind is Kind.DURATION:
        s = {"type": "string", "pattern": DURATION_PATTERN}
    elif kind is Kind.OBJECT:
        fields = p.field_set
        if fields is None:
            s = {"type": "object"}
        else:
            s = fields.json_schema(
                loose=loose, steps_ref=steps_ref, step_parameters=False, templated=templated
            )
    elif kind is Kind.STEPS:
        s = {"type": "array", "items": {"$ref": steps_ref}}
    else:
        s = {}
    if templated and kind not in (Kind.STRING, Kind.JSON, Kind.OBJECT) and s:
        s = {"anyOf": [s, template]}
    return s
