"""Comparison expressions: ConTest's ``pkg/lib/comparison/comparison_test.go`` and
Go's number rules."""

from __future__ import annotations

import math

import pytest

from contest.comparison import (
    ComparisonError,
    ComparisonType,
    format_go_2f,
    parse_expression,
    parse_go_float,
)
from contest.golang.strconv import quote as strconv_quote

RHS = "could not extract right hand side of the expression: "
PCT = ComparisonType.PERCENTAGE
VAL = ComparisonType.VALUE


@pytest.mark.parametrize(
    ("text", "op", "kind"),
    [
        (">=80%", ">=", PCT),
        (">80%", ">", PCT),
        ("<80%", "<", PCT),
        ("<=80%", "<=", PCT),
        ("=80%", "=", PCT),
        (">=80", ">=", VAL),
        (">80", ">", VAL),
        ("<80", "<", VAL),
        ("<=80", "<=", VAL),
        ("=80", "=", VAL),
    ],
)
def test_operators_and_types(text: str, op: str, kind: ComparisonType) -> None:
    e = parse_expression(text)
    assert (e.op, e.type, e.rhs) == (op, kind, 80.0)
    assert str(e) == text


def test_type_names_are_gos() -> None:
    assert str(PCT) == "comparison_percentage"
    assert str(VAL) == "comparison_value"


def test_string_is_the_original_expression() -> None:
    assert str(parse_expression("=100%")) == "=100%"
    assert str(parse_expression(">=80=")) == ">=80="


@pytest.mark.parametrize("text", ["deadbeef", "", "80%", " >80", "!=5", "≥80"])
def test_not_supported(text: str) -> None:
    with pytest.raises(ComparisonError) as info:
        parse_expression(text)
    assert str(info.value) == f"expression {text} not supported"


def test_operator_characters_are_trimmed_from_both_ends() -> None:
    assert parse_expression(">=80=").rhs == 80.0  # Go's strings.Trim with ">=" as a set
    assert parse_expression(">=80>").rhs == 80.0
    assert parse_expression("==5").op == "="
    assert parse_expression("==5").rhs == 5.0
    assert parse_expression("<<3").op == "<"
    assert parse_expression(">80%%").type is PCT  # every trailing % goes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "=>80",
            RHS + 'strconv.ParseFloat: parsing ">80": invalid syntax',
        ),
        (
            "> 80",
            RHS + 'strconv.ParseFloat: parsing " 80": invalid syntax',
        ),
        (
            ">",
            'could not extract right hand side of the expression: strconv.ParseFloat: parsing "": '
            "invalid syntax",
        ),
        (
            ">abc%",
            'could not extract percentage from expression: strconv.ParseFloat: parsing "abc": '
            "invalid syntax",
        ),
        (
            ">%",
            'could not extract percentage from expression: strconv.ParseFloat: parsing "": '
            "invalid syntax",
        ),
        (
            ">80 %",
            'could not extract percentage from expression: strconv.ParseFloat: parsing "80 ": '
            "invalid syntax",
        ),
        (
            ">1e400",
            "could not extract right hand side of the expression: strconv.ParseFloat: parsing "
            '"1e400": value out of range',
        ),
        (
            ">%80",
            RHS + 'strconv.ParseFloat: parsing "%80": invalid syntax',
        ),
    ],
)
def test_bad_numbers(text: str, message: str) -> None:
    with pytest.raises(ComparisonError) as info:
        parse_expression(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("expr", "success", "total", "passed", "text"),
    [
        ("=100%", 2, 2, True, "100.00% = 100.00%"),
        (">80%", 1, 2, False, "50.00% is not > 80.00%"),
        (">0%", 1, 2, True, "50.00% > 0.00%"),
        (">=50%", 1, 2, True, "50.00% >= 50.00%"),
        ("<50%", 1, 2, False, "50.00% is not < 50.00%"),
        ("<=50%", 1, 2, True, "50.00% <= 50.00%"),
        (">=80%", 2, 3, False, "66.67% is not >= 80.00%"),
        (">=66.66%", 2, 3, True, "66.67% >= 66.66%"),
        (">=2", 2, 3, True, "2.00 >= 2.00"),
        ("=3", 2, 3, False, "2.00 is not = 3.00"),
        ("<1", 0, 3, True, "0.00 < 1.00"),
        (">0", 0, 0, False, "0.00 is not > 0.00"),  # value mode does not need a total
        (">inf", 5, 5, False, "5.00 is not > +Inf"),
        (">-inf%", 0, 1, True, "0.00% > -Inf%"),
        ("=nan", 1, 1, False, "1.00 is not = NaN"),
        (">0.125", 0, 1, False, "0.00 is not > 0.12"),  # %.2f rounds half to even, like Go
    ],
)
def test_evaluate_success(expr: str, success: int, total: int, passed: bool, text: str) -> None:
    r = parse_expression(expr).evaluate_success(success, total)
    assert r.passed is passed
    assert r.expr == text
    assert str(r) == text


def test_result_sides() -> None:
    r = parse_expression(">80%").evaluate_success(1, 2)
    assert (r.lhs, r.rhs, r.op, r.type) == ("50.00%", "80.00%", ">", PCT)
    v = parse_expression(">=1").evaluate_success(1, 2)
    assert (v.lhs, v.rhs) == ("1.00", "1.00")


def test_percentage_of_zero_targets_is_an_error() -> None:
    with pytest.raises(ComparisonError, match=r"^cannot evaluate success rate if total is 0$"):
        parse_expression(">80%").evaluate_success(0, 0)


def test_evaluate_takes_fractions() -> None:
    assert parse_expression(">=1.5").evaluate(1.5).expr == "1.50 >= 1.50"
    assert parse_expression(">90%").evaluate(83.3333).expr == "83.33% is not > 90.00%"


# --- Go's strconv.ParseFloat --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("80", 80.0),
        ("+80", 80.0),
        ("-1.5", -1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e2", 100.0),
        ("1E+2", 100.0),
        ("1e-400", 0.0),  # underflow is no error in Go
        ("0x1p4", 16.0),
        ("0X1.8P1", 3.0),
        ("0x_1p0", 1.0),
        ("1_000", 1000.0),
        ("1_000.5_0", 1000.5),
        ("inf", math.inf),
        ("+Inf", math.inf),
        ("-infinity", -math.inf),
        ("INFINITY", math.inf),
    ],
)
def test_parse_go_float_accepts(text: str, value: float) -> None:
    assert parse_go_float(text) == value


def test_parse_go_float_nan() -> None:
    assert math.isnan(parse_go_float("nan"))
    assert math.isnan(parse_go_float("NaN"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 1",
        "1 ",
        "+nan",
        "-nan",
        "infin",
        "infx",
        "1__0",
        "_1",
        "1_",
        "1._5",
        "0x10",  # a hexadecimal float needs its p exponent
        "0x",
        "1e",
        "1e+",
        "e5",
        ".",
        "1.2.3",
        "١٢",  # Arabic-Indic digits: Python's float takes them, Go does not
        "1,5",
    ],
)
def test_parse_go_float_rejects(text: str) -> None:
    with pytest.raises(ComparisonError) as info:
        parse_go_float(text)
    assert str(info.value) == f"strconv.ParseFloat: parsing {strconv_quote(text)}: invalid syntax"


def test_parse_go_float_range() -> None:
    for text in ("1e309", "-1e400", "0x1p1024"):
        with pytest.raises(ComparisonError, match="value out of range"):
            parse_go_float(text)


def test_strconv_quote() -> None:
    assert strconv_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert strconv_quote("\n\t\x01\x7f") == '"\\n\\t\\x01\\x7f"'
    assert strconv_quote("é ü") == '"é ü"'
    assert strconv_quote("\u00a0\u200b") == '"\\u00a0\\u200b"'


def test_format_go_2f() -> None:
    assert format_go_2f(2 / 3 * 100) == "66.67"
    assert format_go_2f(math.inf) == "+Inf"
    assert format_go_2f(-math.inf) == "-Inf"
    assert format_go_2f(math.nan) == "NaN"
    assert format_go_2f(-0.0) == "-0.00"
