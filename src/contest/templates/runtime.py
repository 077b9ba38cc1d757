"""What one execution carries, and the helpers every compiled closure shares.

The closures built by ``expressions`` and ``evaluator`` all take a :class:`State`: the caller's
functions, the output, Go's variable stack and the budgets.  A failure anywhere is a
:class:`Failure` naming the node Go would name in its message.

Limits keep a template from exhausting the server: output size, range iterations in total, and
the size of strings built by ``printf``/``print``/``html``... in total.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn, Protocol

from .gofmt import format_v
from .nodes import Node
from .values import (
    MISSING,
    FieldError,
    GoFuncError,
    Kind,
    get_field,
    go_type_name,
    kind_of,
    template_fields,
)

MAX_OUTPUT: Final = 1 << 20  # characters one execution may produce
MAX_ITERATIONS: Final = 100_000  # range iterations per execution, all loops together
MAX_WORK: Final = 16 << 20  # characters built by printf & co. per execution


class _NoFinal:
    """No value is piped into this command (Go's ``missingVal``)."""


NOFINAL: Final = _NoFinal()


class Failure(Exception):
    """An execution error at a node; turned into TemplateExecError with the position."""

    def __init__(self, node: Node, detail: str) -> None:
        super().__init__(detail)
        self.node = node
        self.detail = detail


class State:
    """What one execution carries: functions, output, the variable stack and the budgets."""

    __slots__ = ("funcs", "names", "out", "size", "steps", "values", "work")

    def __init__(self, funcs: Mapping[str, Callable[..., object]], root: object) -> None:
        self.funcs = funcs
        self.out: list[str] = []
        self.size = 0
        self.names = ["$"]
        self.values = [root]
        self.steps = 0
        self.work = 0


Run = Callable[[State, Any], None]
Eval = Callable[[State, Any], Any]
Cmd = Callable[[State, Any, Any], Any]


class Flexible(Protocol):
    """A closure usable both as a command (with a piped value) and as an argument (without)."""

    def __call__(self, st: State, dot: Any, final: Any = ..., /) -> Any: ...


def fail(node: Node, detail: str) -> NoReturn:
    raise Failure(node, detail)


def charge(st: State, n: int, node: Node) -> None:
    st.work += n
    if st.work > MAX_WORK:
        fail(node, f"functions built more than {MAX_WORK} characters")


def print_value(v: Any, node: Node) -> str:
    """How a template prints a value: Go's ``printValue`` then ``fmt.Fprint``."""
    if v is MISSING:
        return "<no value>"
    if kind_of(v) is Kind.FUNC:
        fail(node, f"can't print {node} of type {go_type_name(v)}")
    try:
        return format_v(v)
    except GoFuncError as exc:
        fail(node, str(exc))


# --------------------------------------------------------------------------- variables


def var_value(st: State, name: str, node: Node) -> Any:
    names = st.names
    i = len(names) - 1
    while i >= 0:
        if names[i] == name:
            return st.values[i]
        i -= 1
    fail(node, f"undefined variable: {name}")


def set_var(st: State, name: str, value: Any, node: Node) -> None:
    names = st.names
    i = len(names) - 1
    while i >= 0:
        if names[i] == name:
            st.values[i] = value
            return
        i -= 1
    fail(node, f"undefined variable: {name}")


def pop_vars(st: State, mark: int) -> None:
    if len(st.names) > mark:
        del st.names[mark:]
        del st.values[mark:]


# --------------------------------------------------------------------------- fields


def field_chain(recv: Any, names: list[str], node: Node, has_args: bool, dig: bool) -> Any:
    """Read ``.A.B.C`` from ``recv``.  ``dig``: a nil map value becomes "no value", as when Go
    looks through the ``interface{}`` a pipeline returns (a declared field's nil stays nil)."""
    last = len(names) - 1
    prev = recv
    for i, name in enumerate(names):
        prev = recv
        try:
            recv = get_field(prev, name, has_args and i == last)
        except FieldError as exc:
            raise Failure(node, str(exc)) from exc.__cause__
    if dig and recv is None and template_fields(prev) is None:
        return MISSING
    return recv
