"""Parse-tree nodes.

Each node keeps its position (an index into the source) and prints itself the way Go's
``parse.Node.String()`` does, because execution errors quote the node they happened at:
``executing "args" at <.Foo>: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .literals import Number


@dataclass(slots=True)
class Node:
    pos: int

    def __str__(self) -> str:  # pragma: no cover - every node overrides it
        return ""


@dataclass(slots=True)
class TextNode(Node):
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class DotNode(Node):
    def __str__(self) -> str:
        return "."


@dataclass(slots=True)
class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass(slots=True)
class BoolNode(Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(slots=True)
class NumberNode(Node):
    number: Number

    def __str__(self) -> str:
        return self.number.text


@dataclass(slots=True)
class StringNode(Node):
    quoted: str  # the literal as written, quotes included
    text: str  # its value

    def __str__(self) -> str:
        return self.quoted


@dataclass(slots=True)
class IdentifierNode(Node):
    ident: str

    def __str__(self) -> str:
        return self.ident


@dataclass(slots=True)
class VariableNode(Node):
    ident: list[str]  # "$x" then the fields of "$x.A.B"

    def __str__(self) -> str:
        return ".".join(self.ident)


@dataclass(slots=True)
class FieldNode(Node):
    ident: list[str]  # "A", "B" for ".A.B"

    def __str__(self) -> str:
        return "".join("." + i for i in self.ident)


@dataclass(slots=True)
class ChainNode(Node):
    node: Node  # a parenthesized pipeline or a function
    fields: list[str]

    def __str__(self) -> str:
        head = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return head + "".join("." + f for f in self.fields)


@dataclass(slots=True)
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@dataclass(slots=True)
class PipeNode(Node):
    is_assign: bool = False
    decl: list[VariableNode] = field(default_factory=list)
    cmds: list[CommandNode] = field(default_factory=list)

    def __str__(self) -> str:
        head = ""
        if self.decl:
            head = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return head + " | ".join(str(c) for c in self.cmds)


@dataclass(slots=True)
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@dataclass(slots=True)
class ActionNode(Node):
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(slots=True)
class BranchNode(Node):
    pipe: PipeNode
    list: ListNode
    else_list: ListNode | None

    keyword = ""

    def __str__(self) -> str:
        out = "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            out += "{{else}}" + str(self.else_list)
        return out + "{{end}}"


@dataclass(slots=True)
class IfNode(BranchNode):
    keyword = "if"


@dataclass(slots=True)
class RangeNode(BranchNode):
    keyword = "range"


@dataclass(slots=True)
class WithNode(BranchNode):
    keyword = "with"


@dataclass(slots=True)
class BreakNode(Node):
    def __str__(self) -> str:
        return "{{break}}"


@dataclass(slots=True)
class ContinueNode(Node):
    def __str__(self) -> str:
        return "{{continue}}"


@dataclass(slots=True)
class EndNode(Node):
    """``{{end}}``: only seen by the parser."""

    def __str__(self) -> str:
        return "{{end}}"


@dataclass(slots=True)
class ElseNode(Node):
    """``{{else}}``: only seen by the parser."""

    def __str__(self) -> str:
        return "{{else}}"
