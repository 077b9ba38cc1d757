"""Go literal syntax: numbers, quoted strings and character constants.

The parser turns number tokens into constants with Go's rules (``0x1F``, ``0o17``, ``017``,
``1_000``, ``1e3``, ``0x1p-2``, ``'a'``, ``1i``), because the same text must give the same value
and the same error as in Go.  Python's ``int(x, 0)`` and ``float(x)`` differ in the details
(leading-zero octal, underscore rules, hex floats), so the rules are spelled out here.
"""

from __future__ import annotations

from dataclasses import dataclass

from contest.golang.strconv import NumError, parse_float, quote, underscore_ok

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1


class LiteralError(ValueError):
    """A literal Go would reject; ``str()`` is Go's message."""


def _parse_uint(s: str) -> int | None:
    """``strconv.ParseUint(s, 0, 64)``; None when it fails."""
    if not s:
        return None
    base = 10
    body = s
    if s[0] == "0":
        if len(s) >= 3 and s[1].lower() == "b":
            base, body = 2, s[2:]
        elif len(s) >= 3 and s[1].lower() == "o":
            base, body = 8, s[2:]
        elif len(s) >= 3 and s[1].lower() == "x":
            base, body = 16, s[2:]
        else:
            base, body = 8, s[1:]
    if "_" in s:
        if not underscore_ok(s):
            return None
        body = body.replace("_", "")
    if not body:
        return 0 if base == 8 and s.strip("_") == "0" else None
    value = 0
    for c in body:
        d = int(c, 36) if c.isascii() and c.isalnum() else 99
        if d >= base:
            return None
        value = value * base + d
    return value if value <= _UINT64_MAX else None


def _parse_int(s: str) -> int | None:
    """``strconv.ParseInt(s, 0, 64)``; None when it fails."""
    if not s:
        return None
    neg = s[0] == "-"
    body = s[1:] if s[0] in "+-" else s
    u = _parse_uint(body)
    if u is None:
        return None
    v = -u if neg else u
    return v if _INT64_MIN <= v <= _INT64_MAX else None


def _float_or_none(s: str) -> float | None:
    """``strconv.ParseFloat(s, 64)`` for the texts the lexer can produce; None when it fails
    (out of range included: Go reports it as an error)."""
    try:
        return parse_float(s)
    except NumError:
        return None


@dataclass(slots=True)
class Number:
    """A number literal, with every interpretation Go's parser attaches to it."""

    text: str
    is_int: bool = False
    is_uint: bool = False
    is_float: bool = False
    is_complex: bool = False
    int64: int = 0
    uint64: int = 0
    float64: float = 0.0
    complex128: complex = 0j

    def simplify_complex(self) -> None:
        self.is_float = self.complex128.imag == 0
        if self.is_float:
            f = self.complex128.real
            self.float64 = f
            self.is_int = f == int(f) and _INT64_MIN <= f <= _INT64_MAX if _finite(f) else False
            if self.is_int:
                self.int64 = int(f)
            self.is_uint = f == int(f) and 0 <= f <= _UINT64_MAX if _finite(f) else False
            if self.is_uint:
                self.uint64 = int(f)


def _finite(f: float) -> bool:
    return f == f and f not in (float("inf"), float("-inf"))


def parse_number(text: str, kind: str) -> Number:
    """Go's ``newNumber``: ``kind`` is "char", "complex" or "number"."""
    n = Number(text)
    if kind == "char":
        value, tail = unquote_char(text[1:], "'")
        if tail != "'":
            raise LiteralError(f"malformed character constant: {text}")
        n.is_int = n.is_uint = n.is_float = True
        n.int64 = n.uint64 = value
        n.float64 = float(value)
        return n
    if kind == "complex":
        try:
            n.complex128 = complex(text.replace("_", "")[:-1] + "j")
        except ValueError:
            raise LiteralError(f"illegal number syntax: {quote(text)}") from None
        n.is_complex = True
        n.simplify_complex()
        return n
    if text.endswith("i"):
        f = _float_or_none(text[:-1])
        if f is not None:
            n.is_complex = True
            n.complex128 = complex(0, f)
            n.simplify_complex()
            return n
    u = _parse_uint(text)
    if u is not None:
        n.is_uint = True
        n.uint64 = u
    i = _parse_int(text)
    if i is not None:
        n.is_int = True
        n.int64 = i
        if i == 0:
            n.is_uint = True
            n.uint64 = 0
    if n.is_int:
        n.is_float = True
        n.float64 = float(n.int64)
    elif n.is_uint:
        n.is_float = True
        n.float64 = float(n.uint64)
    else:
        f = _float_or_none(text)
        if f is not None:
            if not any(c in text for c in ".eEpP"):
                # ParseFloat read it, so it is an integer too large for 64 bits
                raise LiteralError(f"integer overflow: {text}")
            n.is_float = True
            n.float64 = f
            if f == int(f):
                if _INT64_MIN <= f <= _INT64_MAX:
                    n.is_int = True
                    n.int64 = int(f)
                if 0 <= f <= _UINT64_MAX:
                    n.is_uint = True
                    n.uint64 = int(f)
    if not (n.is_int or n.is_uint or n.is_float):
        raise LiteralError(f"illegal number syntax: {quote(text)}")
    return n


# --------------------------------------------------------------------------- quoting


_SIMPLE: dict[str, int] = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
}


def unquote_char(s: str, quote: str) -> tuple[int, str]:
    """Go's ``strconv.UnquoteChar`` for a character constant: the value and the rest of ``s``.

    Only used for character constants, where a ``\\x`` or octal escape is the byte's value.
    """
    value, _, tail = _unquote_one(s, quote)
    return value, tail


def _unquote_one(s: str, quote: str) -> tuple[int, bool, str]:
    """One character of a quoted literal: (value, is_rune, rest).  ``is_rune`` False = a byte."""
    if not s:
        raise LiteralError("invalid syntax")
    c = s[0]
    if c == quote and quote in "'\"":
        raise LiteralError("invalid syntax")
    if c != "\\":
        return ord(c), True, s[1:]
    if len(s) <= 1:
        raise LiteralError("invalid syntax")
    c = s[1]
    s = s[2:]
    if c in _SIMPLE:
        return _SIMPLE[c], True, s
    if c in "xuU":
        n = {"x": 2, "u": 4, "U": 8}[c]
        if len(s) < n:
            raise LiteralError("invalid syntax")
        digits = s[:n]
        if not all(d in "0123456789abcdefABCDEF" for d in digits):
            raise LiteralError("invalid syntax")
        v = int(digits, 16)
        s = s[n:]
        if c == "x":
            return v, False, s
        if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
            raise LiteralError("invalid syntax")
        return v, True, s
    if "0" <= c <= "7":
        if len(s) < 2:
            raise LiteralError("invalid syntax")
        digits = c + s[:2]
        if not all("0" <= d <= "7" for d in digits):
            raise LiteralError("invalid syntax")
        v = int(digits, 8)
        if v > 255:
            raise LiteralError("invalid syntax")
        return v, False, s[2:]
    if c in "'\"":
        if c != quote:
            raise LiteralError("invalid syntax")
        return ord(c), True, s
    raise LiteralError("invalid syntax")


def unquote(text: str) -> str:
    """Go's ``strconv.Unquote`` for a ``"..."`` or raw ```...``` string token.

    Raw bytes from ``\\x`` and octal escapes that do not form UTF-8 are kept as
    ``surrogateescape`` characters, so the text round-trips to Go's bytes.
    """
    if len(text) < 2 or text[0] != text[-1]:
        raise LiteralError("invalid syntax")
    q = text[0]
    body = text[1:-1]
    if q == "`":
        if "`" in body:
            raise LiteralError("invalid syntax")
        return body.replace("\r", "")
    if q != '"' or "\n" in body:
        raise LiteralError("invalid syntax")
    if "\\" not in body and '"' not in body:
        return body
    out: list[str] = []
    raw = bytearray()
    s = body
    while s:
        value, is_rune, s = _unquote_one(s, '"')
        if is_rune:
            if raw:
                out.append(raw.decode("utf-8", "surrogateescape"))
                raw.clear()
            out.append(chr(value))
        else:
            raw.append(value)
    if raw:
        out.append(raw.decode("utf-8", "surrogateescape"))
    return "".join(out)
