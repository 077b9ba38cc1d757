"""Tokens of Go's template syntax.

The lexer follows Go's state machine closely (trim markers, comments, where a field ends, what
counts as a number), because every one of those details decides whether an existing descriptor
parses and what it prints.  It turns the whole text into a list of tokens at once; the list
ends with an EOF token, or with an ERROR token carrying Go's message where Go's lexer stops.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final, NamedTuple

from contest.golang.strconv import format_unicode_char, quote

LEFT_DELIM: Final = "{{"
RIGHT_DELIM: Final = "}}"
LEFT_COMMENT: Final = "/*"
RIGHT_COMMENT: Final = "*/"
SPACE_CHARS: Final = " \t\r\n"


StateFn = Callable[[], "StateFn | None"]


class T(enum.IntEnum):
    """Token types; those after KEYWORD are keywords (Go prints them as ``<name>``)."""

    ERROR = 0
    BOOL = 1
    CHAR = 2
    CHAR_CONSTANT = 3
    COMPLEX = 4
    ASSIGN = 5
    DECLARE = 6
    EOF = 7
    FIELD = 8
    IDENTIFIER = 9
    LEFT_DELIM = 10
    LEFT_PAREN = 11
    NUMBER = 12
    PIPE = 13
    RAW_STRING = 14
    RIGHT_DELIM = 15
    RIGHT_PAREN = 16
    SPACE = 17
    STRING = 18
    TEXT = 19
    VARIABLE = 20
    KEYWORD = 21
    BLOCK = 22
    BREAK = 23
    CONTINUE = 24
    DOT = 25
    DEFINE = 26
    ELSE = 27
    END = 28
    IF = 29
    NIL = 30
    RANGE = 31
    TEMPLATE = 32
    WITH = 33


KEYWORDS: Final[dict[str, T]] = {
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "nil": T.NIL,
    "range": T.RANGE,
    "template": T.TEMPLATE,
    "with": T.WITH,
}


class Token(NamedTuple):
    typ: T
    pos: int  # index of the token's first character in the source
    val: str

    def __str__(self) -> str:
        """As Go's parser names the token in "unexpected X" messages."""
        if self.typ is T.EOF:
            return "EOF"
        if self.typ is T.ERROR:
            return self.val
        if self.typ > T.KEYWORD:
            return f"<{self.val}>"
        if len(self.val.encode("utf-8", "surrogatepass")) > 10:
            return quote(self.val[:10]) + "..."
        return quote(self.val)


def is_alnum(c: str) -> bool:
    """Go's ``isAlphaNumeric``: underscore, Unicode letter or Unicode decimal digit."""
    return c == "_" or c.isalpha() or c.isdecimal()


class _Lexer:
    """Go's lexer state machine; ``run`` returns every token."""

    def __init__(self, text: str, break_ok: bool, continue_ok: bool) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.break_ok = break_ok
        self.continue_ok = continue_ok
        self.tokens: list[Token] = []
        self.failed = False

    # ---- helpers

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        c = self.peek()
        self.pos += 1  # past the end too, so that backup() is symmetric, as in Go
        return c

    def backup(self) -> None:
        self.pos -= 1

    def emit(self, typ: T) -> None:
        self.tokens.append(Token(typ, self.start, self.text[self.start : self.pos]))
        self.start = self.pos

    def ignore(self) -> None:
        self.start = self.pos

    def error(self, msg: str) -> None:
        self.tokens.append(Token(T.ERROR, self.start, msg))
        self.failed = True

    def accept(self, valid: str) -> bool:
        c = self.peek()
        if c and c in valid:
            self.pos += 1
            return True
        return False

    def accept_run(self, valid: str) -> None:
        """Consume the longest run of characters from ``valid``."""
        while self.accept(valid):
            continue

    def has_left_trim(self, i: int) -> bool:
        t = self.text
        return i + 1 < len(t) and t[i] == "-" and t[i + 1] in SPACE_CHARS

    def has_right_trim(self, i: int) -> bool:
        t = self.text
        return 0 <= i and i + 1 < len(t) and t[i] in SPACE_CHARS and t[i + 1] == "-"

    def at_right_delim(self) -> tuple[bool, bool]:
        if self.has_right_trim(self.pos) and self.text.startswith(RIGHT_DELIM, self.pos + 2):
            return True, True
        if self.text.startswith(RIGHT_DELIM, self.pos):
            return True, False
        return False, False

    def at_terminator(self) -> bool:
        c = self.peek()
        if c == "" or c in " \t\r\n.,|:)(":
            return True
        return self.text.startswith(RIGHT_DELIM, self.pos)

    def left_trim_length(self, i: int) -> int:
        t = self.text
        j = i
        while j < len(t) and t[j] in SPACE_CHARS:
            j += 1
        return j - i

    # ---- states

    def run(self) -> list[Token]:
        state: StateFn | None = self.lex_text
        while state is not None and not self.failed:
            state = state()
        return self.tokens

    def lex_text(self) -> StateFn | None:
        t = self.text
        x = t.find(LEFT_DELIM, self.pos)
        if x < 0:
            self.pos = len(t)
            if self.pos > self.start:
                self.emit(T.TEXT)
            self.tokens.append(Token(T.EOF, self.pos, ""))
            return None
        if x > self.pos:
            trim = 0
            if self.has_left_trim(x + len(LEFT_DELIM)):
                segment = t[self.start : x]
                trim = len(segment) - len(segment.rstrip(SPACE_CHARS))
            self.pos = x - trim
            if self.pos > self.start:
                self.emit(T.TEXT)
            self.pos = x
            self.ignore()
        return self.lex_left_delim

    def lex_left_delim(self) -> StateFn | None:
        delim_pos = self.pos
        self.pos += len(LEFT_DELIM)
        trim = self.has_left_trim(self.pos)
        after = 2 if trim else 0
        if self.text.startswith(LEFT_COMMENT, self.pos + after):
            self.pos += after
            self.ignore()
            return self.lex_comment
        self.tokens.append(Token(T.LEFT_DELIM, delim_pos, LEFT_DELIM))
        self.pos += after
        self.ignore()
        self.paren_depth = 0
        return self.lex_inside_action

    def lex_comment(self) -> StateFn | None:
        self.pos += len(LEFT_COMMENT)
        x = self.text.find(RIGHT_COMMENT, self.pos)
        if x < 0:
            self.error("unclosed comment")
            return None
        self.pos = x + len(RIGHT_COMMENT)
        delim, trim = self.at_right_delim()
        if not delim:
            self.error("comment ends before closing delimiter")
            return None
        if trim:
            self.pos += 2
        self.pos += len(RIGHT_DELIM)
        if trim:
            self.pos += self.left_trim_length(self.pos)
        self.ignore()
        return self.lex_text

    def lex_right_delim(self) -> StateFn | None:
        _, trim = self.at_right_delim()
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += len(RIGHT_DELIM)
        self.emit(T.RIGHT_DELIM)
        if trim:
            self.pos += self.left_trim_length(self.pos)
            self.ignore()
        return self.lex_text

    def lex_inside_action(self) -> StateFn | None:
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            self.error("unclosed left paren")
            return None
        c = self.next()
        if c == "":
            self.error("unclosed action")
            return None
        if c in SPACE_CHARS:
            self.backup()
            return self.lex_space
        if c == "=":
            self.emit(T.ASSIGN)
        elif c == ":":
            if self.next() != "=":
                self.error("expected :=")
                return None
            self.emit(T.DECLARE)
        elif c == "|":
            self.emit(T.PIPE)
        elif c == '"':
            return self.lex_quote
        elif c == "`":
            return self.lex_raw_quote
        elif c == "$":
            return self.lex_variable
        elif c == "'":
            return self.lex_char
        elif c == ".":
            nxt = self.peek()
            if nxt != "" and not "0" <= nxt <= "9":
                return self.lex_field
            self.backup()  # a '.' at the end, or before a digit, starts a number
            return self.lex_number
        elif c in "+-" or "0" <= c <= "9":
            self.backup()
            return self.lex_number
        elif is_alnum(c):
            self.backup()
            return self.lex_identifier
        elif c == "(":
            self.paren_depth += 1
            self.emit(T.LEFT_PAREN)
        elif c == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.error("unexpected right paren")
                return None
            self.emit(T.RIGHT_PAREN)
        elif c.isascii() and c.isprintable():
            self.emit(T.CHAR)
        else:
            self.error(f"unrecognized character in action: {format_unicode_char(ord(c))}")
            return None
        return self.lex_inside_action

    def lex_space(self) -> StateFn | None:
        n = 0
        while self.peek() != "" and self.peek() in SPACE_CHARS:
            self.pos += 1
            n += 1
        if self.has_right_trim(self.pos - 1) and self.text.startswith(RIGHT_DELIM, self.pos + 1):
            self.backup()
            if n == 1:
                return self.lex_right_delim
        self.emit(T.SPACE)
        return self.lex_inside_action

    def lex_identifier(self) -> StateFn | None:
        while is_alnum(self.peek()) and self.peek() != "":
            self.pos += 1
        word = self.text[self.start : self.pos]
        if not self.at_terminator():
            self.error(f"bad character {format_unicode_char(ord(self.peek()))}")
            return None
        kw = KEYWORDS.get(word)
        if kw is not None:
            if (kw is T.BREAK and not self.break_ok) or (kw is T.CONTINUE and not self.continue_ok):
                self.emit(T.IDENTIFIER)
            else:
                self.emit(kw)
        elif word in ("true", "false"):
            self.emit(T.BOOL)
        else:
            self.emit(T.IDENTIFIER)
        return self.lex_inside_action

    def lex_field(self) -> StateFn | None:
        return self.lex_field_or_variable(T.FIELD)

    def lex_variable(self) -> StateFn | None:
        if self.at_terminator():
            self.emit(T.VARIABLE)
            return self.lex_inside_action
        return self.lex_field_or_variable(T.VARIABLE)

    def lex_field_or_variable(self, typ: T) -> StateFn | None:
        if self.at_terminator():
            self.emit(T.VARIABLE if typ is T.VARIABLE else T.DOT)
            return self.lex_inside_action
        while self.peek() != "" and is_alnum(self.peek()):
            self.pos += 1
        if not self.at_terminator():
            self.error(f"bad character {format_unicode_char(ord(self.peek()))}")
            return None
        self.emit(typ)
        return self.lex_inside_action

    def lex_char(self) -> StateFn | None:
        while True:
            c = self.next()
            if c == "\\":
                r = self.next()
                if r != "" and r != "\n":
                    continue
                self.error("unterminated character constant")
                return None
            if c == "" or c == "\n":
                self.error("unterminated character constant")
                return None
            if c == "'":
                break
        self.emit(T.CHAR_CONSTANT)
        return self.lex_inside_action

    def lex_number(self) -> StateFn | None:
        if not self.scan_number():
            self.error(f"bad number syntax: {quote(self.text[self.start : self.pos])}")
            return None
        sign = self.peek()
        if sign != "" and sign in "+-":
            if not self.scan_number() or self.text[self.pos - 1] != "i":
                self.error(f"bad number syntax: {quote(self.text[self.start : self.pos])}")
                return None
            self.emit(T.COMPLEX)
            return self.lex_inside_action
        self.emit(T.NUMBER)
        return self.lex_inside_action

    def scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if self.peek() != "" and is_alnum(self.peek()):
            self.pos += 1
            return False
        return True

    def lex_quote(self) -> StateFn | None:
        while True:
            c = self.next()
            if c == "\\":
                r = self.next()
                if r != "" and r != "\n":
                    continue
                self.error("unterminated quoted string")
                return None
            if c == "" or c == "\n":
                self.error("unterminated quoted string")
                return None
            if c == '"':
                break
        self.emit(T.STRING)
        return self.lex_inside_action

    def lex_raw_quote(self) -> StateFn | None:
        x = self.text.find("`", self.pos)
        if x < 0:
            self.error("unterminated raw quoted string")
            return None
        self.pos = x + 1
        self.emit(T.RAW_STRING)
        return self.lex_inside_action


def lex(text: str, *, break_ok: bool = True, continue_ok: bool = True) -> list[Token]:
    """All tokens of ``text``; the last one is EOF or ERROR."""
    return _Lexer(text, break_ok, continue_ok).run()
