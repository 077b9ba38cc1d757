"""Compile a parse tree into Python closures, and run them with Go's semantics.

A step parameter is parsed once and expanded once per target, thousands of times, so the tree
is turned into closures once: every node becomes a function specialised for its shape (a single
field on a dict, a call to a user function with one argument...), and executing a template is
just calling the root closure.  Nothing here ever evaluates Python source or reads an attribute
the data did not declare (see ``values.get_field``).

Limits keep a template from exhausting the server: output size, range iterations in total, and
the size of strings built by ``printf``/``print``/``html``... in total.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn, Protocol

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
from .errors import TemplateExecError, exec_error
from .gofmt import format_v, quote, sorted_keys, sprint, sprintf, sprintln
from .nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TextNode,
    VariableNode,
    WithNode,
)
from .values import (
    MISSING,
    FieldError,
    GoFuncError,
    Kind,
    get_field,
    go_type_name,
    kind_of,
    template_fields,
    truth,
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


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


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


def _fail(node: Node, detail: str) -> NoReturn:
    raise Failure(node, detail)


def _emit(st: State, s: str, node: Node) -> None:
    st.out.append(s)
    st.size += len(s)
    if st.size > MAX_OUTPUT:
        _fail(node, f"output exceeds the limit of {MAX_OUTPUT} characters")


def _charge(st: State, n: int, node: Node) -> None:
    st.work += n
    if st.work > MAX_WORK:
        _fail(node, f"functions built more than {MAX_WORK} characters")


def _print(v: Any, node: Node) -> str:
    """How a template prints a value: Go's ``printValue`` then ``fmt.Fprint``."""
    if v is MISSING:
        return "<no value>"
    if kind_of(v) is Kind.FUNC:
        _fail(node, f"can't print {node} of type {go_type_name(v)}")
    try:
        return format_v(v)
    except GoFuncError as exc:
        _fail(node, str(exc))


# --------------------------------------------------------------------------- variables


def _var_value(st: State, name: str, node: Node) -> Any:
    names = st.names
    i = len(names) - 1
    while i >= 0:
        if names[i] == name:
            return st.values[i]
        i -= 1
    _fail(node, f"undefined variable: {name}")


def _set_var(st: State, name: str, value: Any, node: Node) -> None:
    names = st.names
    i = len(names) - 1
    while i >= 0:
        if names[i] == name:
            st.values[i] = value
            return
        i -= 1
    _fail(node, f"undefined variable: {name}")


def _pop(st: State, mark: int) -> None:
    if len(st.names) > mark:
        del st.names[mark:]
        del st.values[mark:]


# --------------------------------------------------------------------------- fields


def _field_chain(recv: Any, names: list[str], node: Node, has_args: bool, dig: bool) -> Any:
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
        _fail(node, detail)

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
            return _field_chain(dot, names, node, False, False)

        return field
    if isinstance(node, VariableNode):
        return _compile_variable(node, False)
    if isinstance(node, PipeNode):
        return _compile_pipeline(node)
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
        _fail(node, "invalid value; expected string")
    if kind_of(v) is Kind.STRING:
        return str(v)
    got = "interface {}" if v is None else go_type_name(v)
    _fail(node, f"wrong type for value; expected string; got {got}")


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
                _fail(node, f"can't give argument to non-function {node}")
            v = _var_value(st, name, node)
            return MISSING if dig and v is None else v

        return var

    def var_chain(st: State, dot: Any, final: Any = NOFINAL) -> Any:
        v = _var_value(st, name, node)
        return _field_chain(v, fields, node, nargs > 1 or final is not NOFINAL, dig)

    return var_chain


def _compile_chain(node: ChainNode, dig: bool, cmd_args: bool) -> Flexible:
    head = _compile_raw_arg(node.node)
    fields = node.fields

    def chain(st: State, dot: Any, final: Any = NOFINAL) -> Any:
        v = head(st, dot)
        return _field_chain(v, fields, node, cmd_args or final is not NOFINAL, dig)

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
            _fail(ident, f"wrong number of args for {name}: want at least {fixed} got {nargs}")
    elif n != fixed:
        _fail(ident, f"wrong number of args for {name}: want {fixed} got {n}")


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
                _charge(st, len(r), cmd)
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
            _charge(st, len(s), cmd)
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
            _charge(st, len(s), cmd)
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
            _fail(ident, undefined)
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


def _compile_command(cmd: CommandNode) -> Cmd:
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
        pipe = _compile_pipeline(first)

        def paren(st: State, dot: Any, final: Any) -> Any:
            if nargs > 1 or final is not NOFINAL:
                _fail(cmd, not_a_function)
            return pipe(st, dot)

        return paren
    if isinstance(first, DotNode):

        def dot_cmd(st: State, dot: Any, final: Any) -> Any:
            if nargs > 1 or final is not NOFINAL:
                _fail(first, not_a_function)
            return MISSING if dot is None else dot

        return dot_cmd
    if isinstance(first, NilNode):

        def nil_cmd(st: State, dot: Any, final: Any) -> Any:
            if nargs > 1 or final is not NOFINAL:
                _fail(first, not_a_function)
            _fail(first, "nil is not a command")

        return nil_cmd
    lit = _literal(first)
    if lit is None:
        return _compile_error_cmd(first, f"can't evaluate command {quote(str(first))}")
    literal = lit

    def literal_cmd(st: State, dot: Any, final: Any) -> Any:
        if nargs > 1 or final is not NOFINAL:
            _fail(first, not_a_function)
        return literal(st, dot)

    return literal_cmd


def _compile_error_cmd(node: Node, detail: str) -> Cmd:
    def err(st: State, dot: Any, final: Any) -> Any:
        _fail(node, detail)

    return err


def _compile_field_command(node: FieldNode, nargs: int) -> Cmd:
    names = node.ident
    if len(names) == 1 and nargs == 1:
        name = names[0]

        def field1(st: State, dot: Any, final: Any) -> Any:
            if final is NOFINAL and type(dot) is dict:
                v = dot.get(name, MISSING)
                return MISSING if v is None else v
            return _field_chain(dot, names, node, final is not NOFINAL, True)

        return field1

    def field(st: State, dot: Any, final: Any) -> Any:
        return _field_chain(dot, names, node, nargs > 1 or final is not NOFINAL, True)

    return field


def _compile_pipeline(pipe: PipeNode) -> Eval:
    cmds = tuple(_compile_command(c) for c in pipe.cmds)
    first = cmds[0]
    rest = cmds[1:]
    is_assign = pipe.is_assign
    at = _last_at(pipe)  # where Go reports an assignment to an undeclared variable
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
                _set_var(st, name, v, at)
            else:
                st.names.append(name)
                st.values.append(v)
        return v

    return pipeline


def _last_at(node: Node) -> Node:
    """The node Go's executor last stood at after evaluating ``node`` (for error positions)."""
    if isinstance(node, PipeNode):
        return _last_at(node.cmds[-1]) if node.cmds else node
    if isinstance(node, CommandNode):
        first = node.args[0]
        if isinstance(first, IdentifierNode):
            return _last_at(node.args[-1]) if len(node.args) > 1 else first
        if isinstance(first, PipeNode):
            return _last_at(first)
        return first
    return node


# --------------------------------------------------------------------------- statements


def _noop(st: State, dot: Any) -> None:
    return None


def _declares(lst: ListNode | None) -> bool:
    return lst is not None and any(isinstance(n, ActionNode) and n.pipe.decl for n in lst.nodes)


def compile_list(lst: ListNode | None) -> Run:
    if lst is None or not lst.nodes:
        return _noop
    runs = tuple(_compile_node(n) for n in lst.nodes)
    if len(runs) == 1:
        return runs[0]

    def run_list(st: State, dot: Any) -> None:
        for r in runs:
            r(st, dot)

    return run_list


def _compile_node(node: Node) -> Run:
    if isinstance(node, TextNode):
        return _compile_text(node)
    if isinstance(node, ActionNode):
        return _compile_action(node)
    if isinstance(node, (IfNode, WithNode)):
        return _compile_if_with(node)
    if isinstance(node, RangeNode):
        return _compile_range(node)
    if isinstance(node, BreakNode):
        return _break
    if isinstance(node, ContinueNode):
        return _continue
    if isinstance(node, ListNode):
        return compile_list(node)
    raise AssertionError(f"unknown node {type(node).__name__}")  # the parser makes no others


def _break(st: State, dot: Any) -> None:
    raise _Break


def _continue(st: State, dot: Any) -> None:
    raise _Continue


def _compile_text(node: TextNode) -> Run:
    text = node.text
    n = len(text)

    def text_run(st: State, dot: Any) -> None:
        st.out.append(text)
        st.size += n
        if st.size > MAX_OUTPUT:
            _fail(node, f"output exceeds the limit of {MAX_OUTPUT} characters")

    return text_run


def _compile_action(node: ActionNode) -> Run:
    if node.pipe.decl:
        decl = _compile_pipeline(node.pipe)

        def declare(st: State, dot: Any) -> None:
            decl(st, dot)

        return declare
    if len(node.pipe.cmds) == 1:
        cmd = _compile_command(node.pipe.cmds[0])  # the common case, one call less

        def action1(st: State, dot: Any) -> None:
            v = cmd(st, dot, NOFINAL)
            s = v if type(v) is str else _print(v, node)
            st.out.append(s)
            st.size += len(s)
            if st.size > MAX_OUTPUT:
                _fail(node, f"output exceeds the limit of {MAX_OUTPUT} characters")

        return action1
    pipe = _compile_pipeline(node.pipe)

    def action(st: State, dot: Any) -> None:
        v = pipe(st, dot)
        s = v if type(v) is str else _print(v, node)
        st.out.append(s)
        st.size += len(s)
        if st.size > MAX_OUTPUT:
            _fail(node, f"output exceeds the limit of {MAX_OUTPUT} characters")

    return action


def _compile_if_with(node: IfNode | WithNode) -> Run:
    pipe = _compile_pipeline(node.pipe)
    body = compile_list(node.list)
    other = compile_list(node.else_list)
    scoped = bool(node.pipe.decl) or _declares(node.list) or _declares(node.else_list)
    is_with = isinstance(node, WithNode)

    def if_with(st: State, dot: Any) -> None:
        mark = len(st.names)
        v = pipe(st, dot)
        if truth(v):
            body(st, v if is_with else dot)
        else:
            other(st, dot)
        if scoped:
            _pop(st, mark)

    return if_with


def _compile_range(node: RangeNode) -> Run:
    pipe = _compile_pipeline(node.pipe)
    body = compile_list(node.list)
    other = compile_list(node.else_list)
    decls = [v.ident[0] for v in node.pipe.decl]
    ndecl = len(decls)
    is_assign = node.pipe.is_assign
    at = _last_at(node.pipe)

    def range_run(st: State, dot: Any) -> None:
        mark = len(st.names)
        v = pipe(st, dot)
        k = kind_of(v)
        items: Any
        if k is Kind.LIST or k is Kind.BYTES:
            items = enumerate(v)
        elif k is Kind.MAP:
            items = ((key, v[key]) for key in sorted_keys(v))
        elif k is Kind.INT:
            if ndecl > 1:
                _fail(at, f"can't use {format_v(v)} to iterate over more than one variable")
            items = ((i, i) for i in range(max(int(v), 0)))
        elif k is Kind.INVALID:
            items = ()
        else:
            _fail(at, f"range can't iterate over {_print(v, at)}")
        inner = len(st.names)
        ran = False
        try:
            for index, elem in items:
                ran = True
                st.steps += 1
                if st.steps > MAX_ITERATIONS:
                    _fail(node, f"range loops ran more than {MAX_ITERATIONS} iterations")
                if ndecl:
                    if is_assign:
                        _set_var(st, decls[0], index if ndecl > 1 else elem, node.pipe)
                        if ndecl > 1:
                            _set_var(st, decls[1], elem, node.pipe)
                    else:
                        st.values[inner - 1] = elem
                        if ndecl > 1:
                            st.values[inner - 2] = index
                try:
                    body(st, elem)
                except _Continue:
                    pass
                _pop(st, inner)
        except _Break:
            pass
        if not ran:
            other(st, dot)
        _pop(st, mark)

    return range_run


# --------------------------------------------------------------------------- running


def execute(
    run: Run, name: str, source: str, root: object, funcs: Mapping[str, Callable[..., object]]
) -> str:
    """Run a compiled template; every failure becomes a TemplateExecError."""
    st = State(funcs, MISSING if root is None else root)
    try:
        run(st, st.values[0])
    except Failure as f:
        raise exec_error(name, source, f.node.pos, str(f.node), f.detail) from f.__cause__
    except RecursionError:
        raise _internal(name, source, "data nests too deeply") from None
    except GoFuncError as exc:  # from deep inside fmt, outside any function call
        raise _internal(name, source, str(exc)) from exc
    except Exception as exc:  # a bug of ours must still honour the API: report, chained
        raise _internal(name, source, f"internal error: {exc!r}") from exc
    return "".join(st.out)


def _internal(name: str, source: str, detail: str) -> TemplateExecError:
    message = f"template: {name}: executing {quote(name)}: {detail}"
    return TemplateExecError(message, name=name, line=1, col=1, detail=detail)
