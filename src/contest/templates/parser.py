"""Recursive-descent parser from tokens to a parse tree, with Go's checks and messages.

The parser decides at parse time what Go decides at parse time: unknown functions, undefined
variables, misplaced ``{{else}}``/``{{end}}``/``{{break}}``, empty pipelines, literals that are
not commands.  ``{{define}}``, ``{{template}}`` and ``{{block}}`` are refused here with a clear
message: step parameters are single templates and cannot include others.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, NoReturn

from contest.golang.strconv import quote

from .errors import line_col, syntax_error
from .lexer import T, Token, lex
from .literals import LiteralError, parse_number, unquote
from .nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    ElseNode,
    EndNode,
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

BUILTIN_NAMES: Final = frozenset(
    {
        "and",
        "call",
        "html",
        "index",
        "slice",
        "js",
        "len",
        "not",
        "or",
        "print",
        "printf",
        "println",
        "urlquery",
        "eq",
        "ge",
        "gt",
        "le",
        "lt",
        "ne",
    }
)

MAX_DEPTH: Final = 64  # nesting of control structures and parentheses

_OPERAND_START: Final = frozenset(
    {
        T.BOOL,
        T.CHAR_CONSTANT,
        T.COMPLEX,
        T.DOT,
        T.FIELD,
        T.IDENTIFIER,
        T.NUMBER,
        T.NIL,
        T.RAW_STRING,
        T.STRING,
        T.VARIABLE,
        T.LEFT_PAREN,
    }
)

_UNSUPPORTED: Final = {T.DEFINE: "define", T.TEMPLATE: "template", T.BLOCK: "block"}


class _ParseFailure(Exception):
    def __init__(self, pos: int, detail: str) -> None:
        super().__init__(detail)
        self.pos = pos
        self.detail = detail


class Parser:
    """One parse of one template text."""

    def __init__(self, text: str, name: str, funcs: Collection[str]) -> None:
        self.text = text
        self.name = name
        self.funcs = frozenset(funcs) | BUILTIN_NAMES
        self.tokens = lex(
            text, break_ok="break" not in self.funcs, continue_ok="continue" not in self.funcs
        )
        self.i = 0
        self.far = 0  # furthest token read: Go reports errors at the line of this token
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.depth = 0

    # ---- token access

    def next(self) -> Token:
        i = min(self.i, len(self.tokens) - 1)
        self.i = i + 1
        self.far = max(self.far, i)
        return self.tokens[i]

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> Token:
        i = min(self.i, len(self.tokens) - 1)
        self.far = max(self.far, i)
        return self.tokens[i]

    def next_non_space(self) -> Token:
        tok = self.next()
        while tok.typ is T.SPACE:
            tok = self.next()
        return tok

    def peek_non_space(self) -> Token:
        tok = self.next_non_space()
        self.backup()
        return tok

    # ---- errors

    def fail(self, detail: str, pos: int | None = None) -> NoReturn:
        if pos is None:
            pos = self.tokens[min(self.far, len(self.tokens) - 1)].pos
        raise _ParseFailure(pos, detail)

    def unexpected(self, tok: Token, context: str) -> NoReturn:
        if tok.typ is T.ERROR:
            extra = ""
            line = line_col(self.text, tok.pos)[0]
            if self.action_line and self.action_line != line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if tok.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            self.fail(f"{tok}{extra}", tok.pos)
        self.fail(f"unexpected {tok} in {context}", tok.pos)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail("max depth exceeded")

    # ---- grammar

    def parse(self) -> ListNode:
        try:
            return self._parse()
        except _ParseFailure as f:
            raise syntax_error(self.name, self.text, f.pos, f.detail) from None
        except RecursionError:
            raise syntax_error(self.name, self.text, 0, "max depth exceeded") from None

    def _parse(self) -> ListNode:
        root = ListNode(self.peek().pos)
        while self.peek().typ is not T.EOF:
            n = self.text_or_action()
            if isinstance(n, (EndNode, ElseNode)):
                self.fail(f"unexpected {n}")
            root.nodes.append(n)
        return root

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.typ is T.TEXT:
            return TextNode(tok.pos, tok.val)
        if tok.typ is T.LEFT_DELIM:
            self.action_line = line_col(self.text, tok.pos)[0]
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(tok, "input")

    def action(self) -> Node:
        tok = self.next_non_space()
        typ = tok.typ
        if typ in _UNSUPPORTED:
            self.fail(
                f"{{{{{_UNSUPPORTED[typ]}}}}} is not supported: a step parameter is a single "
                "template and cannot define or include others",
                tok.pos,
            )
        if typ is T.BREAK or typ is T.CONTINUE:
            return self.loop_control(tok)
        if typ is T.ELSE:
            return self.else_control()
        if typ is T.END:
            return EndNode(self.expect(T.RIGHT_DELIM, "end").pos)
        if typ is T.IF:
            pipe, lst, els = self.parse_control("if")
            return IfNode(pipe.pos, pipe, lst, els)
        if typ is T.RANGE:
            pipe, lst, els = self.parse_control("range")
            return RangeNode(pipe.pos, pipe, lst, els)
        if typ is T.WITH:
            pipe, lst, els = self.parse_control("with")
            return WithNode(pipe.pos, pipe, lst, els)
        self.backup()
        tok = self.peek()
        return ActionNode(tok.pos, self.pipeline("command", T.RIGHT_DELIM))

    def loop_control(self, kw: Token) -> Node:
        name = kw.val
        tok = self.next_non_space()
        if tok.typ is not T.RIGHT_DELIM:
            self.unexpected(tok, f"{{{{{name}}}}}")
        if self.range_depth == 0:
            self.fail(f"{{{{{name}}}}} outside {{{{range}}}}")
        return BreakNode(kw.pos) if kw.typ is T.BREAK else ContinueNode(kw.pos)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ is T.IF or peek.typ is T.WITH:
            # "{{else if ...": the "if" is left for parse_control to pick up
            return ElseNode(peek.pos)
        return ElseNode(self.expect(T.RIGHT_DELIM, "else").pos)

    def expect(self, typ: T, context: str) -> Token:
        tok = self.next_non_space()
        if tok.typ is not typ:
            self.unexpected(tok, context)
        return tok

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ is not T.EOF:
            n = self.text_or_action()
            if isinstance(n, (EndNode, ElseNode)):
                return lst, n
            lst.nodes.append(n)
        self.fail("unexpected EOF")

    def parse_control(self, context: str) -> tuple[PipeNode, ListNode, ListNode | None]:
        self.enter()
        mark = len(self.vars)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        if context == "range":
            self.range_depth += 1
        lst, nxt = self.item_list()
        if context == "range":
            self.range_depth -= 1
        else_list: ListNode | None = None
        if isinstance(nxt, ElseNode):
            follow = self.peek().typ
            if context == "if" and follow is T.IF:
                self.next()
                p, l2, e2 = self.parse_control("if")
                else_list = ListNode(nxt.pos, [IfNode(p.pos, p, l2, e2)])
            elif context == "with" and follow is T.WITH:
                self.next()
                p, l2, e2 = self.parse_control("with")
                else_list = ListNode(nxt.pos, [WithNode(p.pos, p, l2, e2)])
            else:
                else_list, end = self.item_list()
                if not isinstance(end, EndNode):
                    self.fail(f"expected end; found {end}")
        del self.vars[mark:]
        self.depth -= 1
        return pipe, lst, else_list

    def pipeline(self, context: str, end: T) -> PipeNode:
        pipe = PipeNode(self.peek_non_space().pos)
        while True:  # declarations: "$x :=", "$x =", "$i, $e :=" (range only)
            v = self.peek_non_space()
            if v.typ is not T.VARIABLE:
                break
            save = self.i
            self.next()
            nxt = self.peek_non_space()
            if nxt.typ is T.ASSIGN or nxt.typ is T.DECLARE:
                pipe.is_assign = nxt.typ is T.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
            elif nxt.typ is T.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue  # the second variable of a range
                    self.fail("range can only initialize variables")
                self.fail(f"too many declarations in {context}")
            else:
                self.i = save
            break
        while True:
            tok = self.next_non_space()
            if tok.typ is end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.fail(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                self.fail(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ is T.SPACE:
                continue
            if tok.typ is T.RIGHT_DELIM or tok.typ is T.RIGHT_PAREN:
                self.backup()
            elif tok.typ is not T.PIPE:
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.fail("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ is T.FIELD:
            chain_pos = self.peek().pos
            fields: list[str] = []
            while self.peek().typ is T.FIELD:
                fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(chain_pos, node.ident + fields)
            if isinstance(node, VariableNode):
                return VariableNode(chain_pos, node.ident + fields)
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                self.fail(f"unexpected . after term {quote(str(node))}")
            return ChainNode(chain_pos, node, fields)
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        typ = tok.typ
        if typ is T.IDENTIFIER:
            if tok.val not in self.funcs:
                self.fail(f"function {quote(tok.val)} not defined", tok.pos)
            return IdentifierNode(tok.pos, tok.val)
        if typ is T.DOT:
            return DotNode(tok.pos)
        if typ is T.NIL:
            return NilNode(tok.pos)
        if typ is T.VARIABLE:
            return self.use_var(tok)
        if typ is T.FIELD:
            return FieldNode(tok.pos, [tok.val[1:]])
        if typ is T.BOOL:
            return BoolNode(tok.pos, tok.val == "true")
        if typ is T.CHAR_CONSTANT or typ is T.COMPLEX or typ is T.NUMBER:
            kind = {T.CHAR_CONSTANT: "char", T.COMPLEX: "complex"}.get(typ, "number")
            try:
                return NumberNode(tok.pos, parse_number(tok.val, kind))
            except LiteralError as exc:
                self.fail(str(exc), tok.pos)
        if typ is T.LEFT_PAREN:
            self.enter()
            pipe = self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
            self.depth -= 1
            return pipe
        if typ is T.STRING or typ is T.RAW_STRING:
            try:
                return StringNode(tok.pos, tok.val, unquote(tok.val))
            except LiteralError as exc:
                self.fail(str(exc), tok.pos)
        self.backup()
        return None

    def use_var(self, tok: Token) -> VariableNode:
        if tok.val not in self.vars:
            self.fail(f"undefined variable {quote(tok.val)}", tok.pos)
        return VariableNode(tok.pos, [tok.val])


def parse_tree(text: str, name: str, funcs: Collection[str]) -> ListNode:
    """Parse ``text``; raises TemplateSyntaxError with Go's message."""
    return Parser(text, name, funcs).parse()
