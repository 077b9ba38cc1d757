"""Go's ``fmt`` printer, for the value kinds templates see.

Templates print every value the way Go's ``fmt.Fprint`` does, and ``printf``/``print``/
``println`` are Go's ``Sprintf``/``Sprint``/``Sprintln`` (see ``printf``).  Existing descriptors
depend on those exact spellings (``1e+06`` for a large float, ``[a b]`` for a list,
``%!d(string=x)`` for a bad verb), so this module re-implements what ``fmt`` does for str, int,
float, complex, bool, None, bytes, list and dict, with widths, precisions and flags.

Go strings are bytes; ours are ``str`` where any byte that is not valid UTF-8 is kept as a
``surrogateescape`` character, so byte-oriented verbs (``%x``, ``%q``) see Go's bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from contest.golang.strconv import (
    LDIGITS,
    UDIGITS,
    can_backquote,
    format_float,
    format_float_v,
    is_print,
    quote,
    quote_rune,
)

from .values import MISSING, GoFuncError, Kind, go_type_name, kind_of, to_go_bytes

_MAX_DEPTH: Final = 100  # nesting of lists/dicts we agree to print
MAX_PRINT: Final = 16 << 20  # characters one print operation may produce (widths are cheap)


class NilArg:
    """Marks a nil top-level argument (Go's ``arg == nil``)."""


NIL: Final = NilArg()


class Printer:
    """One ``fmt`` print operation: Go's ``pp`` and ``fmt`` state in one object."""

    __slots__ = (
        "buf",
        "minus",
        "plus",
        "plus_v",
        "prec",
        "prec_present",
        "sharp",
        "sharp_v",
        "size",
        "space",
        "wid",
        "wid_present",
        "zero",
    )

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.size = 0
        self.clear_flags()

    def clear_flags(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.plus_v = self.sharp_v = False
        self.wid = self.prec = 0
        self.wid_present = self.prec_present = False

    def text(self) -> str:
        return "".join(self.buf)

    # ---- padding

    def grow(self, n: int) -> None:
        """Account for ``n`` more characters; refuse to build absurdly large output."""
        self.size += n
        if self.size > MAX_PRINT:
            raise GoFuncError(f"formatted output exceeds {MAX_PRINT} characters")

    def write_padding(self, n: int) -> None:
        if n > 0:
            self.grow(n)
            self.buf.append(("0" if self.zero and not self.minus else " ") * n)

    def pad(self, s: str) -> None:
        self.grow(len(s))
        if not self.wid_present or self.wid == 0:
            self.buf.append(s)
            return
        width = self.wid - len(s)
        if not self.minus:
            self.write_padding(width)
            self.buf.append(s)
        else:
            self.buf.append(s)
            self.write_padding(width)

    def truncate(self, s: str) -> str:
        if self.prec_present and self.prec < len(s):
            return s[: self.prec]
        return s

    # ---- entry points

    def print_arg(self, arg: Any, verb: str) -> None:
        if arg is None or arg is NIL or arg is MISSING:
            if verb in "Tv":
                self.pad("<nil>")
            else:
                self.bad_verb(verb, NIL)
            return
        if verb == "T":
            self.fmt_s(go_type_name(arg))
            return
        if verb == "p":
            self.bad_verb(verb, arg)
            return
        self.print_value(arg, verb, 0)

    def print_value(self, v: Any, verb: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise GoFuncError("value nests too deeply to print")
        k = kind_of(v)
        if k is Kind.STRING:
            self.fmt_string(v, verb)
        elif k is Kind.INT:
            self.fmt_integer(int(v), verb)
        elif k is Kind.BOOL:
            if verb in "tv":
                self.pad("true" if v else "false")
            else:
                self.bad_verb(verb, v)
        elif k is Kind.FLOAT:
            self.fmt_float(float(v), verb)
        elif k is Kind.COMPLEX:
            self.fmt_complex(complex(v), verb)
        elif k is Kind.LIST:
            self.fmt_list(v, verb, depth)
        elif k is Kind.MAP:
            self.fmt_map(v, verb, depth)
        elif k is Kind.BYTES:
            self.fmt_bytes(bytes(v), verb)
        elif k is Kind.INVALID:
            self.buf.append("<nil>")
        else:
            self.fmt_stringer(v, verb)

    def print_elem(self, v: Any, verb: str, depth: int) -> None:
        """An element of a list or a value of a map: an ``interface{}`` in Go."""
        if v is None or v is MISSING:
            self.buf.append("interface {}(nil)" if self.sharp_v else "<nil>")
        else:
            self.print_value(v, verb, depth)

    def bad_verb(self, verb: str, v: Any) -> None:
        self.buf.append("%!" + verb + "(")
        if v is NIL:
            self.buf.append("<nil>")
        else:
            self.buf.append(go_type_name(v) + "=")
            self.print_value(v, "v", 0)
        self.buf.append(")")

    # ---- kinds

    def fmt_stringer(self, v: Any, verb: str) -> None:
        """Objects we do not know print through ``str()``, as Go prints a ``fmt.Stringer``."""
        if verb not in "vsxXq":
            self.bad_verb(verb, v)
            return
        try:
            s = str(v)
        except Exception as exc:
            self.buf.append(f"%!{verb}(PANIC=String method: {exc})")
            return
        self.fmt_string(s, verb)

    def fmt_string(self, s: str, verb: str) -> None:
        if verb == "v":
            if self.sharp_v:
                self.fmt_q(s)
            else:
                self.fmt_s(s)
        elif verb == "s":
            self.fmt_s(s)
        elif verb == "x":
            self.fmt_sx(to_go_bytes(s), LDIGITS)
        elif verb == "X":
            self.fmt_sx(to_go_bytes(s), UDIGITS)
        elif verb == "q":
            self.fmt_q(s)
        else:
            self.bad_verb(verb, s)

    def fmt_s(self, s: str) -> None:
        self.pad(self.truncate(s))

    def fmt_q(self, s: str) -> None:
        s = self.truncate(s)
        if self.sharp and can_backquote(s):
            self.pad("`" + s + "`")
        else:
            self.pad(quote(s, ascii_only=self.plus))

    def fmt_sx(self, b: bytes, digits: str) -> None:
        length = len(b)
        if self.prec_present and self.prec < length:
            length = self.prec
        width = 2 * length
        if width > 0:
            if self.space:
                if self.sharp:
                    width *= 2
                width += length - 1
            elif self.sharp:
                width += 2
        else:
            if self.wid_present:
                self.write_padding(self.wid)
            return
        if self.wid_present and self.wid > width and not self.minus:
            self.write_padding(self.wid - width)
        out = []
        if self.sharp:
            out.append("0" + digits[16])
        for i in range(length):
            if self.space and i > 0:
                out.append(" ")
                if self.sharp:
                    out.append("0" + digits[16])
            c = b[i]
            out.append(digits[c >> 4] + digits[c & 0xF])
        self.buf.append("".join(out))
        if self.wid_present and self.wid > width and self.minus:
            self.write_padding(self.wid - width)

    def fmt_integer(self, v: int, verb: str) -> None:
        if verb in "vd":
            self.fmt_int(v, 10, verb, LDIGITS)
        elif verb == "b":
            self.fmt_int(v, 2, verb, LDIGITS)
        elif verb in "oO":
            self.fmt_int(v, 8, verb, LDIGITS)
        elif verb == "x":
            self.fmt_int(v, 16, verb, LDIGITS)
        elif verb == "X":
            self.fmt_int(v, 16, verb, UDIGITS)
        elif verb == "c":
            self.pad(chr(_valid_rune(v)))
        elif verb == "q":
            self.pad(quote_rune(_valid_rune(v), ascii_only=self.plus))
        elif verb == "U":
            self.fmt_unicode(v)
        else:
            self.bad_verb(verb, v)

    def fmt_int(self, v: int, base: int, verb: str, digits: str) -> None:
        negative = v < 0
        a = -v if negative else v
        prec = 0
        if self.prec_present:
            prec = self.prec
            if prec == 0 and a == 0:
                old = self.zero
                self.zero = False
                self.write_padding(self.wid)
                self.zero = old
                return
        elif self.zero and not self.minus and self.wid_present:
            prec = self.wid
            if negative or self.plus or self.space:
                prec -= 1
        if base == 10:
            s = decimal(a)
        elif base == 16:
            s = format(a, "x" if digits is LDIGITS else "X")
        elif base == 8:
            s = format(a, "o")
        else:
            s = format(a, "b")
        if len(s) < prec:
            s = "0" * (prec - len(s)) + s
        if self.sharp:
            if base == 2:
                s = "0b" + s
            elif base == 8:
                if s[0] != "0":
                    s = "0" + s
            elif base == 16:
                s = "0" + digits[16] + s
        if verb == "O":
            s = "0o" + s
        if negative:
            s = "-" + s
        elif self.plus:
            s = "+" + s
        elif self.space:
            s = " " + s
        old = self.zero
        self.zero = False
        self.pad(s)
        self.zero = old

    def fmt_unicode(self, v: int) -> None:
        u = v & ((1 << 64) - 1)
        prec = 4
        if self.prec_present and self.prec > 4:
            prec = self.prec
        s = format(u, "X")
        if len(s) < prec:
            s = "0" * (prec - len(s)) + s
        s = "U+" + s
        if self.sharp and u <= 0x10FFFF and is_print(u):
            s += " '" + chr(u) + "'"
        old = self.zero
        self.zero = False
        self.pad(s)
        self.zero = old

    def fmt_float(self, v: float, verb: str) -> None:
        if verb == "v":
            self.fmt_float_as(v, "g", -1)
        elif verb in "bgGxX":
            self.fmt_float_as(v, verb, -1)
        elif verb in "feEF":
            self.fmt_float_as(v, "f" if verb == "F" else verb, 6)
        else:
            self.bad_verb(verb, v)

    def fmt_float_as(self, v: float, verb: str, prec: int) -> None:
        if self.prec_present:
            prec = self.prec
        num = format_float(v, verb, prec)
        if num[0] not in "+-":
            num = "+" + num
        if self.space and num[0] == "+" and not self.plus:
            num = " " + num[1:]
        if num[1] in "IN":
            old = self.zero
            self.zero = False
            if num[1] == "N" and not self.space and not self.plus:
                num = num[1:]
            self.pad(num)
            self.zero = old
            return
        if self.sharp and verb != "b":
            num = _sharp_float(num, verb, prec)
        if self.plus or num[0] != "+":
            if self.zero and not self.minus and self.wid_present and self.wid > len(num):
                self.buf.append(num[0])
                self.write_padding(self.wid - len(num))
                self.buf.append(num[1:])
                return
            self.pad(num)
            return
        self.pad(num[1:])

    def fmt_complex(self, v: complex, verb: str) -> None:
        if verb not in "vbgGxXfFeE":
            self.bad_verb(verb, v)
            return
        old_plus = self.plus
        self.buf.append("(")
        self.fmt_float(v.real, verb)
        self.plus = True
        self.fmt_float(v.imag, verb)
        self.buf.append("i)")
        self.plus = old_plus

    def fmt_list(self, v: Sequence[Any], verb: str, depth: int) -> None:
        if self.sharp_v:
            self.buf.append("[]interface {}{")
            sep = ", "
        else:
            self.buf.append("[")
            sep = " "
        for i, e in enumerate(v):
            if i:
                self.buf.append(sep)
            self.print_elem(e, verb, depth + 1)
        self.buf.append("}" if self.sharp_v else "]")

    def fmt_map(self, v: Mapping[Any, Any], verb: str, depth: int) -> None:
        if self.sharp_v:
            self.buf.append(go_type_name(v) + "{")
        else:
            self.buf.append("map[")
        for i, key in enumerate(sorted_keys(v)):
            if i:
                self.buf.append(", " if self.sharp_v else " ")
            self.print_elem(key, verb, depth + 1)
            self.buf.append(":")
            self.print_elem(v[key], verb, depth + 1)
        self.buf.append("}" if self.sharp_v else "]")

    def fmt_bytes(self, b: bytes, verb: str) -> None:
        if verb in "vd":
            if self.sharp_v:
                self.buf.append("[]byte{" + ", ".join(f"0x{c:x}" for c in b) + "}")
                return
            self.buf.append("[")
            for i, c in enumerate(b):
                if i:
                    self.buf.append(" ")
                self.fmt_int(c, 10, verb, LDIGITS)
            self.buf.append("]")
        elif verb == "s":
            self.fmt_s(b.decode("utf-8", "surrogateescape"))
        elif verb == "x":
            self.fmt_sx(b, LDIGITS)
        elif verb == "X":
            self.fmt_sx(b, UDIGITS)
        elif verb == "q":
            self.fmt_q(b.decode("utf-8", "surrogateescape"))
        else:
            self.buf.append("[")
            for i, c in enumerate(b):
                if i:
                    self.buf.append(" ")
                self.fmt_integer(c, verb)
            self.buf.append("]")


def decimal(a: int) -> str:
    try:
        return str(a)
    except ValueError:  # Python refuses ints of more than 4300 digits
        raise GoFuncError("integer too large to print") from None


def _valid_rune(v: int) -> int:
    if v < 0 or v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
        return 0xFFFD
    return v


def _sharp_float(num: str, verb: str, prec: int) -> str:
    """The ``#`` flag on floats: always a decimal point, and %g keeps its trailing zeros."""
    digits = 0
    if verb in "vgGx":
        digits = 6 if prec == -1 else prec
    tail = ""
    has_dot = False
    saw_nonzero = False
    i = 1
    while i < len(num):
        c = num[i]
        if c == ".":
            has_dot = True
        elif c in "pP" or (c in "eE" and verb not in "xX"):
            tail = num[i:]
            num = num[:i]
            break
        else:
            if c != "0":
                saw_nonzero = True
            if saw_nonzero:
                digits -= 1
        i += 1
    if not has_dot:
        if len(num) == 2 and num[1] == "0":
            digits -= 1
        num += "."
    if digits > 0:
        num += "0" * digits
    return num + tail


def sorted_keys(m: Mapping[Any, Any]) -> list[Any]:
    """Map keys in Go's ``fmtsort`` order (one kind of key: by value; mixed: kind first)."""
    keys = list(m)
    try:
        if all(type(k) is str for k in keys):
            return sorted(keys)
        return sorted(keys, key=_key_rank)
    except TypeError:
        return keys


def _key_rank(k: Any) -> tuple[int, Any]:
    kind = kind_of(k)
    if kind is Kind.FLOAT and k != k:
        return (int(kind), -math.inf)
    if kind in (Kind.BOOL, Kind.INT, Kind.FLOAT, Kind.STRING):
        return (int(kind), k)
    if kind is Kind.COMPLEX:
        return (int(kind), (k.real, k.imag))
    return (int(kind), str(k))


def format_v(v: Any) -> str:
    """``%v`` of one value, as ``fmt.Fprint`` writes it when a template prints a value."""
    t = type(v)
    if t is str:
        return v  # type: ignore[no-any-return]
    if t is int:
        return decimal(v)
    if t is bool:
        return "true" if v else "false"
    if t is float:
        return format_float_v(v)
    if v is None:
        return "<nil>"
    p = Printer()
    p.print_arg(v, "v")
    return p.text()


def format_verb(verb: str, v: Any) -> str:
    """One value with a bare verb (``%s``, ``%q``...), for callers outside printf."""
    p = Printer()
    p.print_arg(v, verb)
    return p.text()
