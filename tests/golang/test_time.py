"""Go duration parsing and formatting, checked against values and messages Go itself produces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contest.golang.time import (
    HOUR,
    MAX_DURATION_NS,
    MICROSECOND,
    MILLISECOND,
    MIN_DURATION_NS,
    MINUTE,
    NANOSECOND,
    SECOND,
    DurationError,
    duration_from_json,
    format_duration,
    format_duration_ns,
    go_quote,
    go_time,
    go_times,
    parse_duration,
    parse_duration_ns,
    seconds_to_ns,
)

# (input, nanoseconds): the cases of Go's own time.ParseDuration tests, plus the brief's.
PARSE_OK = [
    ("0", 0),
    ("5s", 5 * SECOND),
    ("30s", 30 * SECOND),
    ("1478s", 1478 * SECOND),
    ("-5s", -5 * SECOND),
    ("+5s", 5 * SECOND),
    ("-0", 0),
    ("+0", 0),
    ("5.0s", 5 * SECOND),
    ("5.6s", 5 * SECOND + 600 * MILLISECOND),
    ("5.s", 5 * SECOND),
    (".5s", 500 * MILLISECOND),
    ("1.0s", 1 * SECOND),
    ("1.00s", 1 * SECOND),
    ("1.004s", 1 * SECOND + 4 * MILLISECOND),
    ("1.0040s", 1 * SECOND + 4 * MILLISECOND),
    ("100.00100s", 100 * SECOND + 1 * MILLISECOND),
    ("10ns", 10 * NANOSECOND),
    ("11us", 11 * MICROSECOND),
    ("12µs", 12 * MICROSECOND),  # U+00B5
    ("12μs", 12 * MICROSECOND),  # U+03BC
    ("13ms", 13 * MILLISECOND),
    ("14s", 14 * SECOND),
    ("15m", 15 * MINUTE),
    ("16h", 16 * HOUR),
    ("3h30m", 3 * HOUR + 30 * MINUTE),
    ("10.5s4m", 4 * MINUTE + 10 * SECOND + 500 * MILLISECOND),
    ("-2m3.4s", -(2 * MINUTE + 3 * SECOND + 400 * MILLISECOND)),
    ("1h2m3s4ms5us6ns", HOUR + 2 * MINUTE + 3 * SECOND + 4 * MILLISECOND + 5 * MICROSECOND + 6),
    ("39h9m14.425s", 39 * HOUR + 9 * MINUTE + 14 * SECOND + 425 * MILLISECOND),
    ("52763797000ns", 52763797000 * NANOSECOND),
    ("0.3333333333333333333h", 20 * MINUTE),
    ("9007199254740993ns", (1 << 53) + 1),
    ("9223372036854775807ns", MAX_DURATION_NS),
    ("9223372036854775.807us", MAX_DURATION_NS),
    ("9223372036s854ms775us807ns", MAX_DURATION_NS),
    ("-9223372036854775808ns", MIN_DURATION_NS),
    ("-9223372036854775.808us", MIN_DURATION_NS),
    ("-9223372036s854ms775us808ns", MIN_DURATION_NS),
    ("-2562047h47m16.854775808s", MIN_DURATION_NS),
    ("0.100000000000000000000h", 6 * MINUTE),
    ("0.830103483285477580700h", 49 * MINUTE + 48 * SECOND + 372539827 * NANOSECOND),
    ("300ms", 300 * MILLISECOND),
    ("-1.5h", -(HOUR + 30 * MINUTE)),
    ("2h45m", 2 * HOUR + 45 * MINUTE),
    ("1m30s", 90 * SECOND),
    ("1us", MICROSECOND),
    ("1µs", MICROSECOND),
]


@pytest.mark.parametrize(("text", "ns"), PARSE_OK)
def test_parse_ok(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns
    assert parse_duration(text) == ns / SECOND


# (input, Go's error message)
PARSE_ERRORS = [
    ("", 'time: invalid duration ""'),
    ("3", 'time: missing unit in duration "3"'),
    ("5", 'time: missing unit in duration "5"'),
    ("-", 'time: invalid duration "-"'),
    ("s", 'time: invalid duration "s"'),
    (".", 'time: invalid duration "."'),
    ("-.", 'time: invalid duration "-."'),
    (".s", 'time: invalid duration ".s"'),
    ("+.s", 'time: invalid duration "+.s"'),
    ("x", 'time: invalid duration "x"'),
    ("1d", 'time: unknown unit "d" in duration "1d"'),
    ("5d", 'time: unknown unit "d" in duration "5d"'),
    ("1e3s", 'time: unknown unit "e" in duration "1e3s"'),
    (" 5s", 'time: invalid duration " 5s"'),
    ("5s ", 'time: unknown unit "s " in duration "5s "'),
    ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
    ("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
    ("9223372036854ms775us808ns", 'time: invalid duration "9223372036854ms775us808ns"'),
    ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
    ("3000000h", 'time: invalid duration "3000000h"'),
    ("100000000000000000000s", 'time: invalid duration "100000000000000000000s"'),
    # Go's own quoting: non-ASCII and control bytes as \xNN, quote and backslash escaped.
    ("3.5µd", 'time: unknown unit "\\xc2\\xb5d" in duration "3.5\\xc2\\xb5d"'),
    ('1"', 'time: unknown unit "\\"" in duration "1\\""'),
    ("\x01s", 'time: invalid duration "\\x01s"'),
]


@pytest.mark.parametrize(("text", "message"), PARSE_ERRORS)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration_ns(text)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


FORMAT = [
    (0, "0s"),
    (1 * NANOSECOND, "1ns"),
    (1100 * NANOSECOND, "1.1µs"),
    (2200 * MICROSECOND, "2.2ms"),
    (3300 * MILLISECOND, "3.3s"),
    (4 * MINUTE + 5 * SECOND, "4m5s"),
    (4 * MINUTE + 5001 * MILLISECOND, "4m5.001s"),
    (5 * HOUR + 6 * MINUTE + 7001 * MILLISECOND, "5h6m7.001s"),
    (8 * MINUTE + 1 * NANOSECOND, "8m0.000000001s"),
    (MAX_DURATION_NS, "2562047h47m16.854775807s"),
    (MIN_DURATION_NS, "-2562047h47m16.854775808s"),
    (90 * SECOND, "1m30s"),
    (HOUR, "1h0m0s"),
    (500 * MILLISECOND, "500ms"),
    (-1 * SECOND, "-1s"),
]


@pytest.mark.parametrize(("ns", "text"), FORMAT)
def test_format_ns(ns: int, text: str) -> None:
    assert format_duration_ns(ns) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(90, "1m30s"), (1.5, "1.5s"), (0, "0s"), (0.5, "500ms"), (0.3, "300ms"), (300.0, "5m0s")],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_out_of_range() -> None:
    with pytest.raises(DurationError):
        format_duration_ns(MAX_DURATION_NS + 1)
    with pytest.raises(DurationError):
        format_duration(1e10)
    with pytest.raises(DurationError):
        format_duration(float("nan"))


@given(st.integers(min_value=MIN_DURATION_NS, max_value=MAX_DURATION_NS))
def test_round_trip_ns(ns: int) -> None:
    assert parse_duration_ns(format_duration_ns(ns)) == ns


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_round_trip_seconds(ns: int) -> None:
    """Below ~11 days a float of seconds keeps every nanosecond through a round trip."""
    text = format_duration_ns(ns)
    assert seconds_to_ns(parse_duration(text)) == ns
    assert format_duration(parse_duration(text)) == text


def test_go_quote() -> None:
    assert go_quote("abc") == '"abc"'
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("é\n") == '"\\xc3\\xa9\\x0a"'


def test_json_values() -> None:
    """Only quoted strings are durations, as with ConTest's xjson.Duration."""
    assert duration_from_json("1m30s") == 90.0
    for value, shown in [(5, "number 5"), (1.5, "number 1.5"), (None, "null"), (True, "bool")]:
        with pytest.raises(DurationError, match="not a properly double-quoted string") as info:
            duration_from_json(value)
        assert shown in str(info.value)
    with pytest.raises(DurationError, match='unknown unit "d"'):
        duration_from_json("2d")


# --- go_time and go_times -------------------------------------------------------------------------

#: times whose fraction is at an edge: none, one nanosecond, rounding up to the next second
#: (a carry), trailing zeros to trim, and the zero time's cases (none, zero, negative)
EDGE_TIMES: list[float | None] = [
    None,
    0.0,
    -1.0,
    -0.5,
    1e-9,
    0.5,
    1.0,
    12.000000001,
    1_714_523_456.0,
    1_714_523_456.9999999999,
    1_714_523_456.99999999,
    1_714_523_456.25,
    1_714_523_456.1,
    1_714_523_456.000001,
    1_714_523_457.0,
    951_782_400.0,  # 2000-02-29T00:00:00Z
    1_679_792_400.5,  # 2023-03-26T01:00:00.5Z: the hour Europe's clocks skip (times are UTC)
    1_698_541_200.75,  # 2023-10-29T01:00:00.75Z: the hour Europe's clocks repeat
    4_102_444_799.999999,  # 2099-12-31T23:59:59.999999Z
]


def test_go_times_edges() -> None:
    """``go_times`` is ``go_time`` of each, in order: the edges, and each edge after another
    (its second remembered from the time before: the same, the next, an earlier one)."""
    assert go_time(None) == go_time(0.0) == go_time(-1.0) == "0001-01-01T00:00:00Z"
    assert go_time(1_714_523_456.25) == "2024-05-01T00:30:56.25Z"
    assert go_time(1_714_523_456.0) == "2024-05-01T00:30:56Z"
    assert go_time(1_714_523_456.9999999999) == "2024-05-01T00:30:57Z"
    assert go_times(EDGE_TIMES) == [go_time(t) for t in EDGE_TIMES]
    pairs = [t for a in EDGE_TIMES for b in EDGE_TIMES for t in (a, b)]
    assert go_times(pairs) == [go_time(t) for t in pairs]
    assert go_times([]) == []


_FRACTIONS = st.one_of(
    st.floats(0, 1, exclude_max=True),
    st.integers(0, 999_999_999).map(lambda ns: ns / 1e9),  # nanoseconds, some with zeros
    st.integers(0, 999).map(lambda ms: ms / 1e3),
    st.sampled_from([0.0, 0.5, 0.9999999995, 0.99999999949, 1e-9, 5e-10, 4.9e-10]),
)
_TIMES = st.one_of(
    st.none(),
    st.floats(-1e3, 0),
    st.floats(0, 4e9, exclude_min=True),
    st.builds(lambda s, f: s + f, st.integers(1, 4_000_000_000), _FRACTIONS),
)


@given(st.lists(_TIMES, max_size=40), st.integers(1_000_000_000, 2_000_000_000), st.data())
def test_go_times_is_go_time_of_each(
    times: list[float | None], base: int, data: st.DataObject
) -> None:
    """Random times (and runs of times within a few seconds, as a step's statuses have them:
    the second's text is remembered between them) give ``go_time``'s texts."""
    near = data.draw(st.lists(st.builds(lambda d, f: base + d + f, st.integers(-2, 2), _FRACTIONS)))
    for ts in (times, near, times + near):
        assert go_times(ts) == [go_time(t) for t in ts]
