"""JSON written the way ConTest's Go server writes it, so its clients read the same bytes.

Go has two writers in play and they differ:

* the success envelope goes through ``json.Encoder`` with ``SetEscapeHTML(false)``: compact, the
  text as it is (UTF-8), ``U+2028``/``U+2029`` escaped, and a trailing newline;
* the 400 ``{"Msg"}`` body goes through ``json.Marshal``: the same, but ``<``, ``>`` and ``&`` are
  escaped as ``\\u003c``, ``\\u003e``, ``\\u0026``, and there is no trailing newline.

Python's ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` matches Go for everything
else we write (control characters, ``\\b``/``\\f`` as modern Go writes them, key order = insertion
order, which the status document builds in Go's field order).
"""

from __future__ import annotations

import json
from typing import Any

from contest.job.descriptor_validation import go_strconv_quote as strconv_quote

_LINE_SEPARATORS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029"})
_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_LINE_SEPARATORS)


def encode(value: Any) -> bytes:
    """``json.Encoder`` with HTML escaping off: compact, newline-terminated."""
    return (_compact(value) + "\n").encode("utf-8", "replace")


def marshal(value: Any) -> bytes:
    """``json.Marshal``: compact, HTML-escaped, no trailing newline."""
    return _compact(value).translate(_HTML).encode("utf-8", "replace")


def encode_indent(value: Any, indent: str = " ") -> str:
    """``json.Encoder`` with ``SetIndent("", indent)`` and HTML escaping off (what contestcli
    prints): Go puts no space before a colon, one after, and ends with a newline."""
    text = json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False)
    return text.translate(_LINE_SEPARATORS) + "\n"


class GoNumError(ValueError):
    """What Go's ``strconv.ParseInt`` returns; ``str()`` is Go's message."""


_MAX_UINT64 = (1 << 64) - 1


def parse_int64(s: str, func: str = "ParseInt") -> int:
    """Go's ``strconv.ParseInt(s, 10, 64)``: an optional sign and decimal digits, nothing else.

    Go scans left to right and stops at the first problem, so ``"99999999999999999999x"`` is out
    of range rather than a syntax error; so do we.
    """

    def fail(why: str) -> GoNumError:
        return GoNumError(f"strconv.{func}: parsing {strconv_quote(s)}: {why}")

    body = s[1:] if s[:1] in ("+", "-") else s
    if not body:
        raise fail("invalid syntax")
    n = 0
    for ch in body:
        if not ("0" <= ch <= "9"):
            raise fail("invalid syntax")
        n = n * 10 + (ord(ch) - 48)
        if n > _MAX_UINT64:
            raise fail("value out of range")
    if s[:1] == "-":
        if n > 1 << 63:
            raise fail("value out of range")
        return -n
    if n >= 1 << 63:
        raise fail("value out of range")
    return n
