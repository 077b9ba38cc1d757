"""Go's strconv, checked against the outputs Go's documentation and its own tests give."""

from __future__ import annotations

import math

import pytest

from contest.golang.strconv import (
    NumError,
    atoi,
    format_float,
    parse_float,
    parse_int64,
    quote,
    quote_rune,
)


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        # the example of strconv.Quote's documentation
        ('"Fran & Freddie\'s Diner\t☺"', '"\\"Fran & Freddie\'s Diner\\t☺\\""'),
        # strconv's quote_test.go
        ("\a\b\f\r\n\t\v", '"\\a\\b\\f\\r\\n\\t\\v"'),
        ("\\", '"\\\\"'),
        ("abc\xffdef", '"abcÿdef"'),  # U+00FF is printable
        ("\u263a", '"☺"'),
        ("\U0010ffff", '"\\U0010ffff"'),
        ("\x04", '"\\x04"'),
        ("\x7f", '"\\x7f"'),
        ("\u00a0\u200b", '"\\u00a0\\u200b"'),  # a no-break space and a zero width space
        ("abc\udcffdef", '"abc\\xffdef"'),  # the byte 0xff, not valid UTF-8
    ],
)
def test_quote(text: str, quoted: str) -> None:
    assert quote(text) == quoted


def test_quote_to_ascii_and_runes() -> None:
    assert quote("\u263a", ascii_only=True) == '"\\u263a"'
    assert quote_rune(ord("☺")) == "'☺'"
    assert quote_rune(ord("'")) == "'\\''"
    assert quote_rune(0xD800) == "'�'"  # an invalid rune is shown as U+FFFD


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e23", 1e23),
        ("0x1Fp-2", 7.75),
        ("+Inf", math.inf),
        ("-Infinity", -math.inf),
        ("1_000.5", 1000.5),
        (".5e1", 5.0),
    ],
)
def test_parse_float(text: str, value: float) -> None:
    assert parse_float(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'strconv.ParseFloat: parsing "": invalid syntax'),
        ("1e", 'strconv.ParseFloat: parsing "1e": invalid syntax'),
        ("0x10", 'strconv.ParseFloat: parsing "0x10": invalid syntax'),
        ("1e309", 'strconv.ParseFloat: parsing "1e309": value out of range'),
    ],
)
def test_parse_float_errors(text: str, message: str) -> None:
    with pytest.raises(NumError) as info:
        parse_float(text)
    assert str(info.value) == message


def test_parse_int_and_atoi() -> None:
    assert parse_int64("-9223372036854775808") == -(1 << 63)
    assert atoi("+42") == 42
    for text, func, why in [
        ("9223372036854775808", parse_int64, 'ParseInt: parsing "9223372036854775808": value out'),
        ("12a", atoi, 'Atoi: parsing "12a": invalid syntax'),
        (" 1", atoi, 'Atoi: parsing " 1": invalid syntax'),
        ("0x10", atoi, 'Atoi: parsing "0x10": invalid syntax'),
        # Go stops at the first problem: the overflow comes before the stray letter
        ("99999999999999999999x", atoi, 'Atoi: parsing "99999999999999999999x": value out'),
    ]:
        with pytest.raises(NumError) as info:
            func(text)
        assert str(info.value).startswith("strconv." + why), text


@pytest.mark.parametrize(
    ("value", "fmt", "prec", "text"),
    [
        (1e6, "g", -1, "1e+06"),
        (123456.0, "g", -1, "123456"),
        (1e-5, "g", -1, "1e-05"),
        (3.1415926535, "E", -1, "3.1415926535E+00"),
        (1234.5678, "f", 2, "1234.57"),
        (1.0, "b", -1, "4503599627370496p-52"),
        (1.0, "x", -1, "0x1p+00"),
        (-0.0, "g", -1, "-0"),
        (math.inf, "g", -1, "+Inf"),
    ],
)
def test_format_float(value: float, fmt: str, prec: int, text: str) -> None:
    assert format_float(value, fmt, prec) == text
