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
from contest.golang.strconv import NumError, parse_float

__all__ = [
    "OPERATORS",
    "ComparisonError",
    "ComparisonType",
    "Expression",
    "Result",
    "format_go_2f",
    "parse_expression",
    "parse_go_float",
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


def parse_go_float(s: str) -> float:
    """Go's ``strconv.ParseFloat(s, 64)``, its error as a :class:`ComparisonError`."""
    try:
        return parse_float(s)
    except NumError as exc:
        raise ComparisonError(str(exc)) from None


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
