"""Compile statements (text, actions, if/with/range) to closures, and run a template.

A step parameter is parsed once and expanded once per target, thousands of times, so the tree
is turned into closures once and executing a template is just calling the root closure.
Nothing here ever evaluates Python source or reads an attribute the data did not declare (see
``values.get_field``).  ``break`` and ``continue`` unwind to their ``range`` as exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from contest.golang.strconv import quote

from .errors import TemplateExecError, exec_error
from .expressions import compile_command, compile_pipeline, last_at
from .gofmt import format_v, sorted_keys
from .nodes import (
    ActionNode,
    BreakNode,
    ContinueNode,
    IfNode,
    ListNode,
    Node,
    RangeNode,
    TextNode,
    WithNode,
)
from .runtime import (
    MAX_ITERATIONS,
    MAX_OUTPUT,
    NOFINAL,
    Failure,
    Run,
    State,
    fail,
    pop_vars,
    print_value,
    set_var,
)
from .values import MISSING, GoFuncError, Kind, kind_of, truth


class _Break(Exception):
    """``{{break}}`` ran: unwinds to the innermost ``range``, which ends its loop."""


class _Continue(Exception):
    """``{{continue}}`` ran: unwinds to the innermost ``range``, which goes on with the next
    element."""


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
            fail(node, f"output exceeds the limit of {MAX_OUTPUT} characters")

    return text_run


def _compile_action(node: ActionNode) -> Run:
    if node.pipe.decl:
        decl = compile_pipeline(node.pipe)

        def declare(st: State, dot: Any) -> None:
            decl(st, dot)

        return declare
    if len(node.pipe.cmds) == 1:
        cmd = compile_command(node.pipe.cmds[0])  # the common case, one call less

        def action1(st: State, dot: Any) -> None:
            v = cmd(st, dot, NOFINAL)
            s = v if type(v) is str else print_value(v, node)
            st.out.append(s)
            st.size += len(s)
            if st.size > MAX_OUTPUT:
                fail(node, f"output exceeds the limit of {MAX_OUTPUT} characters")

        return action1
    pipe = compile_pipeline(node.pipe)

    def action(st: State, dot: Any) -> None:
        v = pipe(st, dot)
        s = v if type(v) is str else print_value(v, node)
        st.out.append(s)
        st.size += len(s)
        if st.size > MAX_OUTPUT:
            fail(node, f"output exceeds the limit of {MAX_OUTPUT} characters")

    return action


def _compile_if_with(node: IfNode | WithNode) -> Run:
    pipe = compile_pipeline(node.pipe)
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
            pop_vars(st, mark)

    return if_with


def _compile_range(node: RangeNode) -> Run:
    pipe = compile_pipeline(node.pipe)
    body = compile_list(node.list)
    other = compile_list(node.else_list)
    decls = [v.ident[0] for v in node.pipe.decl]
    ndecl = len(decls)
    is_assign = node.pipe.is_assign
    at = last_at(node.pipe)

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
                fail(at, f"can't use {format_v(v)} to iterate over more than one variable")
            items = ((i, i) for i in range(max(int(v), 0)))
        elif k is Kind.INVALID:
            items = ()
        else:
            fail(at, f"range can't iterate over {print_value(v, at)}")
        inner = len(st.names)
        ran = False
        try:
            for index, elem in items:
                ran = True
                st.steps += 1
                if st.steps > MAX_ITERATIONS:
                    fail(node, f"range loops ran more than {MAX_ITERATIONS} iterations")
                if ndecl:
                    if is_assign:
                        set_var(st, decls[0], index if ndecl > 1 else elem, node.pipe)
                        if ndecl > 1:
                            set_var(st, decls[1], elem, node.pipe)
                    else:
                        st.values[inner - 1] = elem
                        if ndecl > 1:
                            st.values[inner - 2] = index
                try:
                    body(st, elem)
                except _Continue:
                    ...  # {{continue}}: the rest of the body is skipped; on to the next element
                pop_vars(st, inner)
        except _Break:
            ...  # {{break}}: the loop ends here
        if not ran:
            other(st, dot)
        pop_vars(st, mark)

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
