"""Compile expressions (arguments, fields, function calls, commands, pipelines) to closures.

Each node becomes a closure specialised for its shape when the template is parsed, so that
running it per target is only a few Python calls: a single field on a dict, a call to one of the
caller's functions with one argument, a built-in with its arity known.  Arguments are evaluated
the way Go passes them: built-ins see "no value" as such (Go's ``reflect.Value``), while
``interface{}`` parameters (the caller's functions, ``printf``) receive nil instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from contest.golang.strconv import quote

from .builtins import (
    arity_message,
    error_text,
    eval_args,
    go_call,
    go_eq,
    go_ge,
    go_gt,
    go_index,
    go_le,
    go_length,
    go_lt,
    go_ne,
    go_not,
    go_slice,
    html_escape,
    js_escape,
    url_query_escape,
)
from .nodes import (
    BoolNode,
    ChainNode,
    CommandNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    VariableNode,
)
from .printf import sprint, sprintf, sprintln
from .runtime import (
    NOFINAL,
    Cmd,
    Eval,
    Failure,
    Flexible,
    State,
    charge,
    fail,
    field_chain,
    set_var,
    var_value,
)
from .values import MISSING, GoFuncError, Kind, go_type_name, kind_of, truth

# --------------------------------------------------------------------------- arguments


def _ideal(node: NumberNode) -> tuple[Any, str | None]:
    """Go's ``idealConstant``: which Go type an untyped number literal becomes."""
    n = node.number
    text = n.text
    if n.is_complex:
        return n.complex128, None
    is_hex_int = (
        len(text) > 2 and text[0] == "0" and text[1] in "xX" and not any(c in text for c in "pP")
    )
    if n.is_float and not is_hex_int and text[0] != "'" and any(c in text for c in ".eEpP"):
        return n.float64, None
    if n.is_int:
        return n.int64, None
    if n.is_uint:
        return None, f"{text} overflows int"
    return MISSING, None


def _const(value: Any) -> Eval:
    def ev(st: State, dot: Any) -> Any:
        return value

    return ev


def _raising(node: Node, detail: str) -> Eval:
    def ev(st: State, dot: Any) -> Any:
        fail(node, detail)

    return ev


def _literal(node: Node) -> Eval | None:
    if isinstance(node, BoolNode):
        return _const(node.value)
    if isinstance(node, StringNode):
        return _const(node.text)
    if isinstance(node, NumberNode):
        value, err = _ideal(node)
        return _const(value) if err is None else _raising(node, err)
    return None


def _compile_raw_arg(node: Node) -> Eval:
    """An argument as a built-in sees it (``reflect.Value``): "no value" stays "no value"."""
    lit = _literal(node)
    if lit is not None:
        return lit
    if isinstance(node, DotNode):
        return _dot
    if isinstance(node, NilNode):
        return _const(MISSING)
    if isinstance(node, FieldNode):
        names = node.ident

        def field(st: State, dot: Any) -> Any:
            return field_chain(dot, names, node, False, False)

        return field
    if isinstance(node, VariableNode):
        return _compile_variable(node, False)
    if isinstance(node, PipeNode):
        return compile_pipeline(node)
    if isinstance(node, IdentifierNode):
        call = _compile_call(node, node, [])

        def ev(st: State, dot: Any) -> Any:
            return call(st, dot, NOFINAL)

        return ev
    if isinstance(node, ChainNode):
        return _compile_chain(node, False, False)
    return _raising(node, f"can't handle {node} for arg")


def _dot(st: State, dot: Any) -> Any:
    return dot


def _compile_iface_arg(node: Node) -> Eval:
    """An argument as an ``interface{}`` parameter sees it: "no value" becomes nil."""
    if isinstance(node, NilNode):
        return _const(None)
    raw = _compile_raw_arg(node)
    if isinstance(node, (BoolNode, StringNode, NumberNode)):
        return raw

    def ev(st: State, dot: Any) -> Any:
        v = raw(st, dot)
        return None if v is MISSING else v

    return ev


def _as_string(v: Any, node: Node) -> str:
    """Go's ``validateType(v, string)``."""
    if type(v) is str:
        return v
    if v is MISSING:
        fail(node, "invalid value; expected string")
    if kind_of(v) is Kind.STRING:
        return str(v)
    got = "interface {}" if v is None else go_type_name(v)
    fail(node, f"wrong type for value; expected string; got {got}")


def _compile_string_arg(node: Node) -> Eval:
    """An argument for a ``string`` parameter (printf's format)."""
    if isinstance(node, StringNode):
        return _const(node.text)
    if isinstance(node, (NumberNode, BoolNode)):
        return _raising(node, f"expected string; found {node}")
    if isinstance(node, NilNode):
        return _raising(node, "cannot assign nil to string")
    raw = _compile_raw_arg(node)

    def ev(st: State, dot: Any) -> Any:
        return _as_string(raw(st, dot), node)

    return ev


# --------------------------------------------------------------------------- variables & chains


def _compile_variable(node: VariableNode, dig: bool, nargs: int = 1) -> Flexible:
    name = node.ident[0]
    fields = node.ident[1:]
    if not fields:

        def var(st: State, dot: Any, final: Any = NOFINAL) -> Any:
            if nargs > 1 or final is not NOFINAL:
                fail(node, f"can't give argument to non-function {node}")
            v = var_value(st, name, node)
            return MISSING if dig and v is None else v

        return var

    def var_chain(st: State, dot: Any, final: Any = NOFINAL) -> Any:
        v = var_value(st, name, node)
        return field_chain(v, fields, node, nargs > 1 or final is not NOFINAL, dig)

    return var_chain


def _compile_chain(node: ChainNode, dig: bool, cmd_args: bool) -> Flexible:
    head = _compile_raw_arg(node.node)
    fields = node.fields

    def chain(st: State, dot: Any, final: Any = NOFINAL) -> Any:
        v = head(st, dot)
        return field_chain(v, fields, node, cmd_args or final is not NOFINAL, dig)

    return chain


# --------------------------------------------------------------------------- function calls


_RAW_BUILTINS: Final[dict[str, tuple[int, bool, Callable[[str, list[Any]], Any]]]] = {
    # name: (fixed args, variadic, implementation)
    "not": (1, False, lambda n, a: go_not(a[0])),
    "len": (1, False, lambda n, a: go_length(a[0])),
    "index": (1, True, lambda n, a: go_index(a[0], a[1:])),
    "slice": (1, True, lambda n, a: go_slice(a[0], a[1:])),
    "eq": (1, True, lambda n, a: go_eq(a[0], a[1:])),
    "ne": (2, False, lambda n, a: go_ne(a[0], a[1])),
    "lt": (2, False, lambda n, a: go_lt(a[0], a[1])),
    "le": (2, False, lambda n, a: go_le(a[0], a[1])),
    "gt": (2, False, lambda n, a: go_gt(a[0], a[1])),
    "ge": (2, False, lambda n, a: go_ge(a[0], a[1])),
    "call": (1, True, lambda n, a: go_call(n, a[0], a[1:])),
}

_STRING_BUILTINS: Final[dict[str, Callable[[list[Any]], str]]] = {
    "print": sprint,
    "println": sprintln,
    "html": lambda a: html_escape(eval_args(a)),
    "js": lambda a: js_escape(eval_args(a)),
    "urlquery": lambda a: url_query_escape(eval_args(a)),
}


def _arity_check(
    name: str, ident: Node, fixed: int, variadic: bool, nargs: int, final: Any
) -> None:
    n = nargs + (final is not NOFINAL)
    if variadic:
        if n < fixed:
            fail(ident, f"wrong number of args for {name}: want at least {fixed} got {nargs}")
    elif n != fixed:
        fail(ident, f"wrong number of args for {name}: want {fixed} got {n}")


def _compile_builtin(
    name: str, ident: IdentifierNode, cmd: Node, arg_nodes: list[Node]
) -> Cmd | None:
    nargs = len(arg_nodes)
    if name in ("and", "or"):
        raw = tuple(_compile_raw_arg(a) for a in arg_nodes)
        want = name == "or"

        def and_or(st: State, dot: Any, final: Any) -> Any:
            _arity_check(name, ident, 1, True, nargs, final)
            v: Any = MISSING
            for ev in raw:  # short-circuit, as Go does since 1.18
                v = ev(st, dot)
                if truth(v) == want:
                    return MISSING if v is None else v
            if final is not NOFINAL:
                v = final
            return MISSING if v is None else v

        return and_or

    spec = _RAW_BUILTINS.get(name)
    if spec is not None:
        fixed, variadic, impl = spec
        raw = tuple(_compile_raw_arg(a) for a in arg_nodes)
        callee = str(arg_nodes[0]) if arg_nodes else name

        def builtin(st: State, dot: Any, final: Any) -> Any:
            _arity_check(name, ident, fixed, variadic, nargs, final)
            vals = [ev(st, dot) for ev in raw]
            if final is not NOFINAL:
                vals.append(final)
            try:
                r = impl(callee, vals)
            except GoFuncError as exc:
                raise Failure(cmd, f"error calling {name}: {exc}") from exc.__cause__
            if name == "slice" and isinstance(r, (str, list, tuple, bytes)):
                charge(st, len(r), cmd)
            return MISSING if r is None else r

        return builtin

    string_impl = _STRING_BUILTINS.get(name)
    if string_impl is not None:
        iface = tuple(_compile_iface_arg(a) for a in arg_nodes)

        def string_builtin(st: State, dot: Any, final: Any) -> Any:
            vals = [ev(st, dot) for ev in iface]
            if final is not NOFINAL:
                vals.append(None if final is MISSING else final)
            try:
                s = string_impl(vals)
            except GoFuncError as exc:
                raise Failure(cmd, f"error calling {name}: {exc}") from None
            charge(st, len(s), cmd)
            return s

        return string_builtin

    if name == "printf":
        fmt_arg = _compile_string_arg(arg_nodes[0]) if arg_nodes else None
        rest = tuple(_compile_iface_arg(a) for a in arg_nodes[1:])
        last_node: Node = arg_nodes[-1] if arg_nodes else ident

        def printf(st: State, dot: Any, final: Any) -> Any:
            _arity_check(name, ident, 1, True, nargs, final)
            if fmt_arg is not None:
                fmt = fmt_arg(st, dot)
                vals = [ev(st, dot) for ev in rest]
                if final is not NOFINAL:
                    vals.append(None if final is MISSING else final)
            else:
                fmt = _as_string(final, last_node)
                vals = []
            try:
                s = sprintf(fmt, vals)
            except GoFuncError as exc:
                raise Failure(cmd, f"error calling printf: {exc}") from None
            charge(st, len(s), cmd)
            return s

        return printf
    return None


def _compile_call(ident: IdentifierNode, cmd: Node, arg_nodes: list[Node]) -> Cmd:
    """A function call: the caller's function if it has one by that name, else Go's built-in."""
    name = ident.ident
    iface = tuple(_compile_iface_arg(a) for a in arg_nodes)
    builtin = _compile_builtin(name, ident, cmd, arg_nodes)
    undefined = f"{quote(name)} is not a defined function"

    one = iface[0] if len(iface) == 1 else None

    def call(st: State, dot: Any, final: Any) -> Any:
        fn = st.funcs.get(name)
        if fn is None:
            if builtin is not None:
                return builtin(st, dot, final)
            fail(ident, undefined)
        args = [one(st, dot)] if one is not None else [ev(st, dot) for ev in iface]
        if final is not NOFINAL:
            args.append(None if final is MISSING else final)
        try:
            r = fn(*args)
        except Exception as exc:
            if isinstance(exc, TypeError):
                msg = arity_message(name, fn, len(args))
                if msg is not None:
                    raise Failure(ident, msg) from exc
            raise Failure(cmd, f"error calling {name}: {error_text(exc)}") from exc
        return MISSING if r is None else r

    return call


# --------------------------------------------------------------------------- commands & pipelines


def compile_command(cmd: CommandNode) -> Cmd:
    first = cmd.args[0]
    nargs = len(cmd.args)
    if isinstance(first, IdentifierNode):
        return _compile_call(first, cmd, cmd.args[1:])
    if isinstance(first, FieldNode):
        return _compile_field_command(first, nargs)
    if isinstance(first, VariableNode):
        return _compile_variable(first, True, nargs)
    if isinstance(first, ChainNode):
        return _compile_chain(first, True, nargs > 1)
    not_a_function = f"can't give argument to non-function {first}"
    if isinstance(first, PipeNode):
        pipe = compile_pipeline(first)

        def paren(st: State, dot: Any, final: Any) -> Any:
            if nargs > 1 or final is not NOFINAL:
                fail(cmd, not_a_function)
            return pipe(st, dot)

        return paren
    if isinstance(first, DotNode):

        def dot_cmd(st: State, dot: Any, final: Any) -> Any:
            if nargs > 1 or final is not NOFINAL:
                fail(first, not_a_function)
            return MISSING if dot is None else dot

        return dot_cmd
    if isinstance(first, NilNode):

        def nil_cmd(st: State, dot: Any, final: Any) -> Any:
            if nargs > 1 or final is not NOFINAL:
                fail(first, not_a_function)
            fail(first, "nil is not a command")

        return nil_cmd
    lit = _literal(first)
    if lit is None:
        return _compile_error_cmd(first, f"can't evaluate command {quote(str(first))}")
    literal = lit

    def literal_cmd(st: State, dot: Any, final: Any) -> Any:
        if nargs > 1 or final is not NOFINAL:
            fail(first, not_a_function)
        return literal(st, dot)

    return literal_cmd


def _compile_error_cmd(node: Node, detail: str) -> Cmd:
    def err(st: State, dot: Any, final: Any) -> Any:
        fail(node, detail)

    return err


def _compile_field_command(node: FieldNode, nargs: int) -> Cmd:
    names = node.ident
    if len(names) == 1 and nargs == 1:
        name = names[0]

        def field1(st: State, dot: Any, final: Any) -> Any:
            if final is NOFINAL and type(dot) is dict:
                v = dot.get(name, MISSING)
                return MISSING if v is None else v
            return field_chain(dot, names, node, final is not NOFINAL, True)

        return field1

    def field(st: State, dot: Any, final: Any) -> Any:
        return field_chain(dot, names, node, nargs > 1 or final is not NOFINAL, True)

    return field


def compile_pipeline(pipe: PipeNode) -> Eval:
    cmds = tuple(compile_command(c) for c in pipe.cmds)
    first = cmds[0]
    rest = cmds[1:]
    is_assign = pipe.is_assign
    at = last_at(pipe)  # where Go reports an assignment to an undeclared variable
    decls = tuple(v.ident[0] for v in pipe.decl)

    if not decls and not rest:

        def single(st: State, dot: Any) -> Any:
            return first(st, dot, NOFINAL)

        return single

    def pipeline(st: State, dot: Any) -> Any:
        v = first(st, dot, NOFINAL)
        for c in rest:
            v = c(st, dot, v)
        for name in decls:
            if is_assign:
                set_var(st, name, v, at)
            else:
                st.names.append(name)
                st.values.append(v)
        return v

    return pipeline


def last_at(node: Node) -> Node:
    """The node Go's executor last stood at after evaluating ``node`` (for error positions)."""
    if isinstance(node, PipeNode):
        return last_at(node.cmds[-1]) if node.cmds else node
    if isinstance(node, CommandNode):
        first = node.args[0]
        if isinstance(first, IdentifierNode):
            return last_at(node.args[-1]) if len(node.args) > 1 else first
        if isinstance(first, PipeNode):
            return last_at(first)
        return first
    return node
