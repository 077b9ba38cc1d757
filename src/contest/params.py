"""Step parameters: ConTest's ``Param`` (raw JSON text) and its per-target template expansion.

A parameter value is kept as the raw JSON text the descriptor had, so ``"12"`` and ``12`` both
read as the integer 12, and a template such as ``{{ .ID }}`` stays text until it is expanded.
Each ``Param`` parses its template once and keeps it, so a step expanding one parameter for
10,000 targets parses it once.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import contest.templates as templates
from contest.errors import ParameterError
from contest.target import Target
from contest.variables import VariableError, VariableStore, split_var_ref


def go_title(s: str) -> str:
    """Go's ``strings.Title``: upper-case the first letter of every word."""
    out = []
    prev_sep = True
    for ch in s:
        if prev_sep and ch.isalpha():
            out.append(ch.upper())
        else:
            out.append(ch)
        prev_sep = not (ch.isalnum() or ch == "_" or ch == "'")
    return "".join(out)


def _str_fn(fn: Callable[[str], str]) -> Callable[..., str]:
    def call(*args: Any) -> str:
        if len(args) != 1 or not isinstance(args[0], str):
            raise ParameterError("expects one string argument")
        return fn(args[0])

    return call


BUILTIN_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ToUpper": _str_fn(str.upper),
    "ToLower": _str_fn(str.lower),
    "Title": _str_fn(go_title),
}
VARIABLE_FUNCTIONS = ("StringVar", "IntVar")

_user_functions: dict[str, Callable[..., Any]] = {}


def register_function(name: str, fn: Callable[..., Any]) -> None:
    """Make ``fn`` callable from every step parameter template as ``{{ name ... }}``.

    ``fn`` takes strings (or whatever the template passes) and returns a value; raising fails the
    expansion with the error's text.
    """
    if name in _user_functions or name in BUILTIN_FUNCTIONS or name in VARIABLE_FUNCTIONS:
        raise ValueError(f"function '{name}' is already registered")
    if not name.isidentifier():
        raise ValueError(f"function name '{name}' is not an identifier")
    _user_functions[name] = fn


def unregister_function(name: str) -> None:
    if name not in _user_functions:
        raise ValueError(f"function '{name}' is not registered")
    del _user_functions[name]


# The variables of the test run the current task belongs to: the runner sets it for each step's
# task, so ``param.expand(target)`` inside a step can resolve StringVar/IntVar without the
# author passing the store around.
current_variables: contextvars.ContextVar[VariableStore | None] = contextvars.ContextVar(
    "contest_current_variables", default=None
)


_NO_FUNCTIONS: Mapping[str, Any] = MappingProxyType({})


def _functions(target: Target | None, variables: VariableStore | None) -> dict[str, Any]:
    funcs: dict[str, Any] = {**BUILTIN_FUNCTIONS, **_user_functions}
    if target is not None and variables is not None:
        tid = target.id

        def string_var(ref: str) -> str:
            label, name = split_var_ref(ref)
            value = variables.get(tid, label, name)
            if not isinstance(value, str):
                raise VariableError(f"variable '{ref}' is not a string")
            return value

        def int_var(ref: str) -> int:
            label, name = split_var_ref(ref)
            value = variables.get(tid, label, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise VariableError(f"variable '{ref}' is not an integer")
            return value

        funcs["StringVar"] = string_var
        funcs["IntVar"] = int_var
    return funcs


def known_function_names() -> set[str]:
    """Every function a parameter template may call (built-in, step variables, registered)."""
    return {*BUILTIN_FUNCTIONS, *_user_functions, *VARIABLE_FUNCTIONS}


class Param:
    """One value of a step parameter, as raw JSON text (ConTest's ``test.Param``)."""

    __slots__ = ("_template", "name", "raw")

    def __init__(self, raw: str, name: str = "") -> None:
        self.raw = raw
        self.name = name
        self._template: templates.Template | None = None

    @classmethod
    def from_value(cls, value: Any, name: str = "") -> Param:
        return cls(json.dumps(value, separators=(",", ":")), name)

    def __str__(self) -> str:
        """The JSON string's value if the raw text is a JSON string, else the raw text."""
        raw = self.raw
        if raw.startswith('"'):
            try:
                value = json.loads(raw)
            except ValueError:
                return raw
            if isinstance(value, str):
                return value
        return raw

    def __repr__(self) -> str:
        return f"Param({self.raw!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Param) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    @property
    def value(self) -> Any:
        """The decoded JSON value (``ParameterError`` if the raw text is not JSON)."""
        try:
            return json.loads(self.raw)
        except ValueError as exc:
            raise ParameterError(f"parameter {self.name!r} is not valid JSON: {exc}") from exc

    def json(self) -> str:
        return self.raw

    def is_empty(self) -> bool:
        return str(self) == ""

    def template(self) -> templates.Template:
        """The parsed template (parsed on first use; ``ParameterError`` names the parameter)."""
        if self._template is None:
            try:
                self._template = templates.parse(
                    str(self), name=self.name or "param", funcs=known_function_names()
                )
            except templates.TemplateError as exc:
                raise ParameterError(f"failed to parse template: {exc}") from exc
        return self._template

    def expand(self, target: Target | None = None, variables: VariableStore | None = None) -> str:
        """Expand the Go template with ``target`` as the dot."""
        tpl = self.template()
        if tpl.is_constant:
            return tpl.source
        if tpl.calls_nothing:  # no function to give it (Template.execute's fast path)
            funcs: Mapping[str, Any] = _NO_FUNCTIONS
        else:
            if variables is None:
                variables = current_variables.get()
            funcs = _functions(target, variables)
        try:
            return tpl.execute(target, funcs)
        except templates.TemplateError as exc:
            raise ParameterError(str(exc)) from exc


class StepParameters(Mapping[str, list[Param]]):
    """Parameter name -> list of values, as in a step descriptor's ``parameters`` object."""

    __slots__ = ("_params",)

    def __init__(self, params: Mapping[str, Iterable[Param | str]] | None = None) -> None:
        self._params: dict[str, list[Param]] = {}
        for key, values in (params or {}).items():
            self._params[key] = [v if isinstance(v, Param) else Param(v, key) for v in values]
            for p in self._params[key]:
                if not p.name:
                    p.name = key

    @classmethod
    def from_values(cls, params: Mapping[str, Iterable[Any]]) -> StepParameters:
        """Build from decoded JSON values (``{"args": ["a", 12]}``)."""
        return cls({k: [Param.from_value(v, k) for v in vs] for k, vs in params.items()})

    def __getitem__(self, key: str) -> list[Param]:
        return self._params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def get(self, name: str, default: Any = None) -> list[Param]:
        """The list for ``name``; a missing name gives an empty list, as in ConTest."""
        return self._params.get(name, [] if default is None else default)

    def get_one(self, name: str) -> Param:
        values = self._params.get(name)
        if not values:
            return Param('""', name)
        return values[0]

    def get_int(self, name: str) -> int:
        value = str(self.get_one(name))
        if value == "":
            raise ParameterError(f"{name}: expected an integer string, got an empty string")
        try:
            return int(value, 10)
        except ValueError as exc:
            raise ParameterError(f"{name}: cannot convert '{value}' to int: {exc}") from exc

    def to_raw(self) -> dict[str, list[str]]:
        return {k: [p.raw for p in vs] for k, vs in self._params.items()}

    def to_json_obj(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for k, vs in self._params.items():
            items: list[Any] = []
            for p in vs:
                try:
                    items.append(json.loads(p.raw))
                except ValueError:
                    items.append(p.raw)
            out[k] = items
        return out
