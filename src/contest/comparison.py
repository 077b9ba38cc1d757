"""Comparison expressions (ConTest's ``pkg/lib/comparison``): ``>=80%``, ``<3``, ``=100%``.

The ``TargetSuccess`` reporter judges a test with them: how many of its targets passed, either as
a percentage of all targets (``%`` suffix) or as a plain count. Descriptors written for ConTest
carry such expressions and users read the verdicts ConTest prints, so parsing and the texts follow
ConTest exactly, quirks included:

* the operator is the first of ``>=``, ``<=``, ``<``, ``>``, ``=`` that prefixes the expression;
* the operator's *characters* are then stripped from **both** ends (Go's ``strings.Trim`` with the
  operator as a character set), so ``>=80=`` reads as ``>= 80`` and ``==5`` as ``= 5``;
* a trailing run of ``%`` selects percentage mode; the number is read by Go's
  ``strconv.ParseFloat`` (``1e2``, ``0x1p4``, ``1_000``, ``inf`` are numbers; `` 80`` is not);
* a verdict reads ``50.00% is not > 80.00%`` or ``100.00% = 100.00%``: both sides with two
  decimals, as Go's ``%.2f`` writes them (``+Inf``, ``NaN``).
"""

from __future__ import annotations

import enum
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from contest.errors import ContestError

__all__ = [
    "OPERATORS",
    "ComparisonError",
    "ComparisonType",
    "Expression",
    "Result",
    "format_go_2f",
    "parse_expression",
    "parse_go_float",
    "strconv_quote",
]


class ComparisonError(ContestError, ValueError):
    """An expression that cannot be parsed, or a success rate that cannot be computed."""


class ComparisonType(enum.Enum):
    """Absolute count (``>3``) or percentage of the total (``>3%``); values are Go's names."""

    VALUE = "comparison_value"
    PERCENTAGE = "comparison_percentage"

    def __str__(self) -> str:
        return self.value


#: The operators in the order ConTest tries them (a prefix match: ``>=`` before ``>``).
OPERATORS: Final[tuple[str, ...]] = (">=", "<=", "<", ">", "=")

_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
    ">": operator.gt,
    "=": operator.eq,
}


# --- Go's strconv, as far as comparison expressions need it -----------------------------------


def strconv_quote(s: str) -> str:
    """Go's ``strconv.Quote``, which ``strconv.NumError`` uses to show the input.

    Printable characters stay (Go's ``unicode.IsPrint`` and Python's ``str.isprintable`` agree:
    letters, marks, numbers, punctuation, symbols and the ASCII space); the rest is escaped.
    """
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:  # not valid UTF-8: Go would show U+FFFD
            out.append("\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_SHORT_ESCAPES: Final = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}

_DEC_DIGITS = frozenset("0123456789")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _syntax_error(s: str) -> ComparisonError:
    return ComparisonError(f"strconv.ParseFloat: parsing {strconv_quote(s)}: invalid syntax")


def _range_error(s: str) -> ComparisonError:
    return ComparisonError(f"strconv.ParseFloat: parsing {strconv_quote(s)}: value out of range")


def _special(s: str) -> tuple[float, int] | None:
    """Go's ``special``: ``inf``/``infinity`` (optionally signed) or unsigned ``nan``."""
    if not s:
        return None
    sign, n_sign, rest = 1.0, 0, s
    if s[0] in "+-":
        sign, n_sign, rest = (-1.0 if s[0] == "-" else 1.0), 1, s[1:]
    elif s[0] in "nN":
        return (math.nan, 3) if s[:3].lower() == "nan" else None
    if rest[:1] not in ("i", "I"):
        return None
    n = 0
    for a, b in zip(rest.lower(), "infinity", strict=False):
        if a != b:
            break
        n += 1
    if 3 < n < 8:
        n = 3
    if n in (3, 8):
        return sign * math.inf, n_sign + n
    return None


def _underscore_ok(s: str) -> bool:
    """Go's ``underscoreOK``: underscores only between digits (or after a base prefix)."""
    saw = "^"
    i = 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i, saw, hexa = 2, "0", s[1].lower() == "x"
    while i < len(s):
        ch = s[i]
        if ch in _DEC_DIGITS or (hexa and ch in _HEX_DIGITS):
            saw = "0"
        elif ch == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


def _read_float(s: str) -> tuple[int, bool] | None:
    """Go's ``readFloat`` syntax check: where the number ends and whether it is hexadecimal."""
    i, n = 0, len(s)
    if i < n and s[i] in "+-":
        i += 1
    hexa = False
    digits = _DEC_DIGITS
    exp_char = "e"
    if i + 2 < n and s[i] == "0" and s[i + 1] in "xX":
        hexa, digits, exp_char = True, _HEX_DIGITS, "p"
        i += 2
    saw_dot = saw_digits = underscores = False
    while i < n:
        ch = s[i]
        if ch == "_":
            underscores = True
        elif ch == ".":
            if saw_dot:
                break
            saw_dot = True
        elif ch in digits:
            saw_digits = True
        else:
            break
        i += 1
    if not saw_digits:
        return None
    if i < n and s[i].lower() == exp_char:
        i += 1
        if i < n and s[i] in "+-":
            i += 1
        if i >= n or s[i] not in _DEC_DIGITS:
            return None
        while i < n and (s[i] in _DEC_DIGITS or s[i] == "_"):
            underscores = underscores or s[i] == "_"
            i += 1
    elif hexa:
        return None  # a hexadecimal float must have a p exponent
    if underscores and not _underscore_ok(s[:i]):
        return None
    return i, hexa


def parse_go_float(s: str) -> float:
    """Go's ``strconv.ParseFloat(s, 64)``: its grammar, its rounding, its error texts.

    Python's ``float`` differs in ways a user would notice: it accepts surrounding blanks and
    ``+nan``, rejects hexadecimal floats, and turns ``1e400`` into ``inf`` instead of failing.
    """
    special = _special(s)
    if special is not None:
        value, n = special
        if n != len(s):
            raise _syntax_error(s)
        return value
    read = _read_float(s)
    if read is None or read[0] != len(s):
        raise _syntax_error(s)
    clean = s.replace("_", "")
    if read[1]:
        try:
            return float.fromhex(clean)
        except OverflowError:
            raise _range_error(s) from None
    value = float(clean)
    if math.isinf(value):
        raise _range_error(s)
    return value


def format_go_2f(value: float) -> str:
    """Go's ``fmt.Sprintf("%.2f", value)`` (``+Inf``, ``-Inf`` and ``NaN`` included)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.2f}"


# --- expressions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """The verdict of one evaluation; ``expr`` is the text ConTest shows
    (``80.00% >= 80.00%`` or ``50.00% is not > 80.00%``)."""

    passed: bool
    expr: str
    lhs: str
    rhs: str
    type: ComparisonType
    op: str

    def __str__(self) -> str:
        return self.expr


@dataclass(frozen=True)
class Expression:
    """A parsed expression; ``str()`` gives the text it was parsed from."""

    expr: str
    type: ComparisonType
    op: str
    rhs: float
    _compare: Callable[[float, float], bool] = field(repr=False, compare=False, default=operator.eq)

    def __str__(self) -> str:
        return self.expr

    def compare(self, lhs: float) -> bool:
        return self._compare(lhs, self.rhs)

    def evaluate(self, lhs: float) -> Result:
        """Judge an already computed left-hand side (a count, or a percentage in 0..100).

        ``TargetSuccess``'s final report uses it with averages, which are not whole counts.
        """
        unit = "%" if self.type is ComparisonType.PERCENTAGE else ""
        lhs_text = format_go_2f(lhs) + unit
        rhs_text = format_go_2f(self.rhs) + unit
        passed = self.compare(lhs)
        verb = "" if passed else "is not "
        text = f"{lhs_text} {verb}{self.op} {rhs_text}"
        return Result(passed, text, lhs_text, rhs_text, self.type, self.op)

    def evaluate_success(self, success: int, total: int) -> Result:
        """ConTest's ``EvaluateSuccess``: ``success`` targets passed out of ``total``."""
        if self.type is ComparisonType.PERCENTAGE:
            if total == 0:
                raise ComparisonError("cannot evaluate success rate if total is 0")
            return self.evaluate(success / total * 100)
        return self.evaluate(float(success))


def parse_expression(expression: str) -> Expression:
    """Parse ``<op><number>[%]``; raise :class:`ComparisonError` with ConTest's message.

    Unknown operator: ``expression <e> not supported``; a bad number: ``could not extract
    percentage from expression: <strconv error>`` or ``could not extract right hand side of the
    expression: <strconv error>``.
    """
    for op in OPERATORS:
        if not expression.startswith(op):
            continue
        trimmed = expression.strip(op)
        if trimmed.endswith("%"):
            try:
                rhs = parse_go_float(trimmed.rstrip("%"))
            except ComparisonError as exc:
                raise ComparisonError(
                    f"could not extract percentage from expression: {exc}"
                ) from None
            return Expression(expression, ComparisonType.PERCENTAGE, op, rhs, _COMPARE[op])
        try:
            rhs = parse_go_float(trimmed)
        except ComparisonError as exc:
            raise ComparisonError(
                f"could not extract right hand side of the expression: {exc}"
            ) from None
        return Expression(expression, ComparisonType.VALUE, op, rhs, _COMPARE[op])
    raise ComparisonError(f"expression {expression} not supported")
