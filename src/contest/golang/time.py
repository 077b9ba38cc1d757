"""Go durations: ``time.ParseDuration`` and ``Duration.String()``, to the byte.

ConTest descriptors, flags and step parameters spell durations the Go way (``"300ms"``,
``"1m30s"``, ``"-1.5h"``), and ConTest writes them back the Go way (``"1m30s"``, ``"0s"``). Users
already have such files and scripts that grep ConTest's error texts, so both directions follow Go
exactly: the grammar, the units (``ns us µs μs ms s m h``), the overflow rules (a duration is an
int64 count of nanoseconds), and the error messages (``time: invalid duration "x"``,
``time: missing unit in duration "5"``, ``time: unknown unit "d" in duration "5d"``).

Python code mostly wants seconds as a float (``asyncio.sleep``), so :func:`parse_duration` and
:func:`format_duration` work in seconds; :func:`parse_duration_ns` and
:func:`format_duration_ns` work in exact integer nanoseconds, as Go does.

JSON numbers are **not** durations. ConTest's descriptor fields use ``xjson.Duration``, whose
decoder only accepts a double-quoted string and fails on ``5`` with "not a properly double-quoted
string"; :func:`duration_from_json` does the same (with a clearer message). Accepting numbers as
nanoseconds, as a plain Go ``time.Duration`` would, would silently turn a YAML ``RunInterval: 30``
into 30 ns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

__all__ = [
    "HOUR",
    "MAX_DURATION_NS",
    "MICROSECOND",
    "MILLISECOND",
    "MINUTE",
    "MIN_DURATION_NS",
    "NANOSECOND",
    "SECOND",
    "ZERO_TIME",
    "DurationError",
    "duration_from_json",
    "format_duration",
    "format_duration_ns",
    "go_quote",
    "go_time",
    "go_times",
    "parse_duration",
    "parse_duration_ns",
    "seconds_to_ns",
]

NANOSECOND: Final = 1
MICROSECOND: Final = 1000 * NANOSECOND
MILLISECOND: Final = 1000 * MICROSECOND
SECOND: Final = 1000 * MILLISECOND
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE

#: The range of Go's ``time.Duration`` (an int64 of nanoseconds).
MAX_DURATION_NS: Final = (1 << 63) - 1
MIN_DURATION_NS: Final = -(1 << 63)

_UNITS: Final[dict[bytes, int]] = {
    b"ns": NANOSECOND,
    b"us": MICROSECOND,
    "µs".encode(): MICROSECOND,  # U+00B5 micro sign
    "μs".encode(): MICROSECOND,  # U+03BC greek small letter mu
    b"ms": MILLISECOND,
    b"s": SECOND,
    b"m": MINUTE,
    b"h": HOUR,
}

_LIMIT: Final = 1 << 63
_DIGITS: Final = frozenset(b"0123456789")


class DurationError(ValueError):
    """A string is not a Go duration; the message is Go's, word for word."""


def go_quote(data: str | bytes) -> str:
    """Quote like the Go ``time`` package does in its error messages.

    Go's ``time`` package cannot use ``strconv.Quote`` and has its own small quoting: every byte of
    a non-ASCII or control character is written as ``\\xNN``, ``"`` and ``\\`` are escaped, the rest
    is kept. Matching it keeps our error texts identical to ConTest's.
    """
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    out = ['"']
    for byte in raw:
        if byte >= 0x80 or byte < 0x20:
            out.append(f"\\x{byte:02x}")
        elif byte in (0x22, 0x5C):  # " and \
            out.append("\\" + chr(byte))
        else:
            out.append(chr(byte))
    out.append('"')
    return "".join(out)


def _invalid(orig: bytes) -> DurationError:
    return DurationError("time: invalid duration " + go_quote(orig))


def _leading_int(s: bytes) -> tuple[int, bytes] | None:
    """Consume ``[0-9]*``; ``None`` on int64 overflow (Go's ``leadingInt``)."""
    x = 0
    i = 0
    while i < len(s) and s[i] in _DIGITS:
        if x > _LIMIT // 10:
            return None
        x = x * 10 + (s[i] - 0x30)
        if x > _LIMIT:
            return None
        i += 1
    return x, s[i:]


def _leading_fraction(s: bytes) -> tuple[int, float, bytes]:
    """Consume ``[0-9]*`` after a dot; stops gaining precision on overflow instead of failing."""
    x = 0
    scale = 1.0
    overflow = False
    i = 0
    while i < len(s) and s[i] in _DIGITS:
        if not overflow:
            if x > (_LIMIT - 1) // 10:
                overflow = True
            else:
                y = x * 10 + (s[i] - 0x30)
                if y > _LIMIT:
                    overflow = True
                else:
                    x = y
                    scale *= 10
        i += 1
    return x, scale, s[i:]


def parse_duration_ns(s: str | bytes) -> int:
    """Parse a Go duration string into integer nanoseconds, exactly as ``time.ParseDuration``.

    A duration is a possibly signed sequence of decimal numbers, each with an optional fraction
    and a mandatory unit: ``"300ms"``, ``"-1.5h"``, ``"2h45m"``. ``"0"`` alone needs no unit.
    Raises :class:`DurationError` with Go's message.
    """
    orig = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else bytes(s)
    rest = orig
    neg = False
    if rest[:1] in (b"-", b"+"):
        neg = rest[:1] == b"-"
        rest = rest[1:]
    if rest == b"0":
        return 0
    if not rest:
        raise _invalid(orig)
    total = 0
    while rest:
        if not (rest[0] == 0x2E or rest[0] in _DIGITS):  # '.' or a digit
            raise _invalid(orig)
        before = len(rest)
        lead = _leading_int(rest)
        if lead is None:
            raise _invalid(orig)
        value, rest = lead
        pre = before != len(rest)
        frac, scale, post = 0, 1.0, False
        if rest[:1] == b".":
            rest = rest[1:]
            before = len(rest)
            frac, scale, rest = _leading_fraction(rest)
            post = before != len(rest)
        if not pre and not post:
            raise _invalid(orig)
        i = 0
        while i < len(rest) and rest[i] != 0x2E and rest[i] not in _DIGITS:
            i += 1
        if i == 0:
            raise DurationError("time: missing unit in duration " + go_quote(orig))
        unit_name, rest = rest[:i], rest[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise DurationError(
                "time: unknown unit " + go_quote(unit_name) + " in duration " + go_quote(orig)
            )
        if value > _LIMIT // unit:
            raise _invalid(orig)
        value *= unit
        if frac > 0:
            # Go computes the fractional part in float64 and truncates; so do we.
            value += int(float(frac) * (float(unit) / scale))
            if value > _LIMIT:
                raise _invalid(orig)
        total += value
        if total > _LIMIT:
            raise _invalid(orig)
    if neg:
        return -total
    if total > MAX_DURATION_NS:
        raise _invalid(orig)
    return total


def parse_duration(s: str | bytes) -> float:
    """Parse a Go duration string into seconds (see :func:`parse_duration_ns`)."""
    return parse_duration_ns(s) / SECOND


def _fmt_frac(v: int, prec: int) -> tuple[str, int]:
    """Split ``v`` into ``v // 10**prec`` and its fraction text, trailing zeros dropped."""
    scale = 10**prec
    digits = f"{v % scale:0{prec}d}".rstrip("0")
    return ("." + digits if digits else ""), v // scale


def format_duration_ns(ns: int) -> str:
    """Format integer nanoseconds like Go's ``Duration.String()``: ``1h0m0s``, ``1.5s``, ``0s``.

    Below one second the unit shrinks (``500ms``, ``1.5µs``, ``7ns``); from one second up it is
    ``[<h>h][<m>m]<s>[.<frac>]s``, never days, as days can have different lengths.
    """
    if not MIN_DURATION_NS <= ns <= MAX_DURATION_NS:
        raise DurationError(f"duration {ns}ns is out of range")
    u = -ns if ns < 0 else ns
    if u == 0:
        return "0s"
    if u < SECOND:
        if u < MICROSECOND:
            frac, whole, unit = "", u, "ns"
        elif u < MILLISECOND:
            frac, whole = _fmt_frac(u, 3)
            unit = "µs"  # U+00B5, as Go writes it
        else:
            frac, whole = _fmt_frac(u, 6)
            unit = "ms"
        text = f"{whole}{frac}{unit}"
    else:
        frac, whole = _fmt_frac(u, 9)
        text = f"{whole % 60}{frac}s"
        minutes = whole // 60
        if minutes > 0:
            text = f"{minutes % 60}m{text}"
            hours = minutes // 60
            if hours > 0:
                text = f"{hours}h{text}"
    return "-" + text if ns < 0 else text


def seconds_to_ns(seconds: float) -> int:
    """Convert seconds to integer nanoseconds through the float's shortest decimal form.

    Going through ``repr`` makes ``0.3`` exactly 300 ms (``0.3 * 1e9`` is not an integer), so a
    value read with :func:`parse_duration` formats back to the text it came from.
    """
    exact = Decimal(repr(float(seconds)))
    if not exact.is_finite():
        raise DurationError(f"{seconds!r} seconds is not a duration")
    result = int((exact * SECOND).quantize(Decimal(1), ROUND_HALF_EVEN))
    if not MIN_DURATION_NS <= result <= MAX_DURATION_NS:
        raise DurationError(f"{seconds!r} seconds is out of the range of a Go duration")
    return result


def format_duration(seconds: float) -> str:
    """Format seconds as Go's ``Duration.String()`` does (``90`` -> ``1m30s``)."""
    return format_duration_ns(seconds_to_ns(seconds))


def duration_from_json(value: Any) -> float:
    """Read a duration from a decoded JSON/YAML value the way ConTest's descriptors do: in seconds.

    Only a string in Go syntax is a duration. Anything else (a number, ``null``, a list) fails, as
    it does in ConTest, whose ``xjson.Duration`` reports "not a properly double-quoted string"; the
    message keeps those words and adds what was expected.
    """
    if isinstance(value, str):
        return parse_duration(value)
    shown = "null" if value is None else type(value).__name__
    if isinstance(value, bool):
        shown = "bool"
    elif isinstance(value, int | float):
        shown = f"number {value!r}"
    raise DurationError(
        "not a properly double-quoted string: a duration must be a quoted Go duration "
        f'such as "30s" or "1m30s", got {shown}'
    )


# --- time.Time -----------------------------------------------------------------------------------

ZERO_TIME = "0001-01-01T00:00:00Z"


_SECONDS: dict[int, str] = {}  # whole second -> "YYYY-MM-DDTHH:MM:SS" (a job's events share few)


def _second(whole: int) -> str:
    """The whole second ``whole`` (Unix time) as ``YYYY-MM-DDTHH:MM:SS`` in UTC, remembered."""
    base = _SECONDS.get(whole)
    if base is None:
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        base = _SECONDS[whole] = dt.datetime.fromtimestamp(whole, tz=dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%S"
        )
    return base


def go_time(ts: float | None) -> str:
    """A Unix time as Go's RFC3339Nano in UTC (trailing zeros of the fraction trimmed)."""
    if ts is None or ts <= 0:
        return ZERO_TIME
    whole = int(ts)
    frac_ns = round((ts - whole) * 1e9)
    if frac_ns >= 1_000_000_000:
        whole, frac_ns = whole + 1, frac_ns - 1_000_000_000
    base = _second(whole)
    if frac_ns:
        # %-formatting: a third faster than the format spec
        return base + "." + ("%09d" % frac_ns).rstrip("0") + "Z"  # noqa: UP031
    return base + "Z"


def go_times(stamps: Iterable[float | None]) -> list[str]:
    """:func:`go_time` of each of ``stamps``, in one go: a run's status writes two times per
    target and step (``InTime``, ``OutTime``), and one call each with its second looked up was
    most of the cost of writing a target status. Here the second's text is looked up only
    when the second changes (the times of a step's statuses come in runs of the same second),
    and the fraction is written without a call per time; the texts are :func:`go_time`'s to
    the character (``tests/golang/test_go_time.py`` compares them on random times)."""
    out: list[str] = []
    append = out.append
    last = -1  # the whole second of ``base`` (the times written are > 0)
    base = ""  # "YYYY-MM-DDTHH:MM:SS." of ``last``
    for ts in stamps:
        if ts is None or ts <= 0:
            append(ZERO_TIME)
            continue
        whole = int(ts)
        frac_ns = round((ts - whole) * 1e9)
        if frac_ns >= 1_000_000_000:
            whole, frac_ns = whole + 1, frac_ns - 1_000_000_000
        if whole != last:
            base = _second(whole) + "."
            last = whole
        if frac_ns:
            # 1_000_000_000 + frac_ns is "1" and the nine digits of the fraction; the text
            # ends with a non-zero digit before the rstrip, so only the fraction is trimmed
            append(base + str(1_000_000_000 + frac_ns)[1:].rstrip("0") + "Z")
        else:
            append(base[:-1] + "Z")
    return out


def parse_go_time(text: object) -> float | None:
    """A time as Go's encoding/json writes a ``time.Time`` (RFC 3339, any fraction, any
    offset) as a Unix time; None for Go's zero time, a missing or an unreadable one (status
    documents of ConTest's servers hold both)."""
    if not isinstance(text, str) or not text or text.startswith("0001-01-01"):
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
