"""Which fields of the root a template reads, found without executing it.

A step parameter is expanded with the target as the dot, per target, while the job runs; a field
the target does not have (``{{ .Hostname }}``) would then fail every target at the last moment.
:func:`root_fields` lists the fields read from the root (``.X`` where the dot is still the root,
and ``$.X`` anywhere), each with its line and column, so validation can refuse the template at
submission. Inside ``range`` and ``with`` the dot is something else, and the walk does not look at
what is read from it there.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from .errors import line_col
from .nodes import (
    ActionNode,
    BranchNode,
    ChainNode,
    CommandNode,
    DotNode,
    FieldNode,
    IfNode,
    ListNode,
    Node,
    PipeNode,
    VariableNode,
)
from .parser import parse_tree

__all__ = ["FieldRef", "root_fields"]


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field read from the root: its name, and where (1-based line and character column)."""

    name: str
    line: int
    col: int


def root_fields(text: str, *, name: str = "", funcs: Collection[str] = ()) -> list[FieldRef]:
    """The root fields ``text`` reads, in order; raises ``TemplateSyntaxError`` if it does not
    parse. Text without actions reads none."""
    if "{{" not in text:
        return []
    tree = parse_tree(text, name, funcs)
    return [
        FieldRef(field, *line_col(text, pos)) for field, pos in _in_list(tree, dot_is_root=True)
    ]


def _in_list(lst: ListNode | None, *, dot_is_root: bool) -> Iterator[tuple[str, int]]:
    if lst is None:
        return
    for node in lst.nodes:
        if isinstance(node, ActionNode):
            yield from _in_pipe(node.pipe, dot_is_root)
        elif isinstance(node, BranchNode):
            yield from _in_pipe(node.pipe, dot_is_root)
            # ``if`` keeps the dot; ``with`` and ``range`` set it to the pipeline's value(s)
            yield from _in_list(node.list, dot_is_root=dot_is_root and isinstance(node, IfNode))
            yield from _in_list(node.else_list, dot_is_root=dot_is_root)


def _in_pipe(pipe: PipeNode, dot_is_root: bool) -> Iterator[tuple[str, int]]:
    for cmd in pipe.cmds:
        yield from _in_command(cmd, dot_is_root)


def _in_command(cmd: CommandNode, dot_is_root: bool) -> Iterator[tuple[str, int]]:
    for arg in cmd.args:
        yield from _in_arg(arg, dot_is_root)


def _in_arg(node: Node, dot_is_root: bool) -> Iterator[tuple[str, int]]:
    if isinstance(node, FieldNode):
        if dot_is_root:
            yield node.ident[0], node.pos
    elif isinstance(node, VariableNode):
        if node.ident[0] == "$" and len(node.ident) > 1:
            yield node.ident[1], node.pos
    elif isinstance(node, ChainNode):
        if isinstance(node.node, DotNode) and dot_is_root and node.fields:
            yield node.fields[0], node.pos
        elif isinstance(node.node, PipeNode):
            yield from _in_pipe(node.node, dot_is_root)
    elif isinstance(node, PipeNode):
        yield from _in_pipe(node, dot_is_root)
