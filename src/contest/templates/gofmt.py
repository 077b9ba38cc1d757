"""Go's ``fmt`` and ``strconv`` quoting, for the value kinds templates see.

Templates print every value the way Go's ``fmt.Fprint`` does, and ``printf``/``print``/
``println`` are Go's ``Sprintf``/``Sprint``/``Sprintln``.  Existing descriptors depend on those
exact spellings (``1e+06`` for a large float, ``[a b]`` for a list, ``%!d(string=x)`` for a bad
verb), so this module re-implements the parts of ``fmt`` that apply to str, int, float, complex,
bool, None, bytes, list and dict, including widths, precisions, flags and argument indexes.

Go strings are bytes; ours are ``str`` where any byte that is not valid UTF-8 is kept as a
``surrogateescape`` character, so byte-oriented verbs (``%x``, ``%q``) see Go's bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .values import (
    MISSING,
    GoFuncError,
    Kind,
    go_type_name,
    kind_of,
    to_go_bytes,
)

LDIGITS: Final = "0123456789abcdefx"
UDIGITS: Final = "0123456789ABCDEFX"
_TOO_LARGE: Final = 1_000_000  # fmt refuses widths and precisions beyond this
_MAX_DEPTH: Final = 100  # nesting of lists/dicts we agree to print
MAX_PRINT: Final = 16 << 20  # characters one print operation may produce (widths are cheap)


class _NilArg:
    """Marks a nil top-level argument (Go's ``arg == nil``)."""


_NIL: Final = _NilArg()


# --------------------------------------------------------------------------- strconv quoting


def is_print(cp: int) -> bool:
    """Go's ``strconv.IsPrint``: letters, marks, numbers, punctuation, symbols and ASCII space."""
    if cp < 0x80:
        return 0x20 <= cp < 0x7F
    if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
        return False
    return chr(cp).isprintable()


_SIMPLE_ESCAPES: Final = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def _escaped_rune(cp: int, quote: str, ascii_only: bool) -> str:
    if cp == ord(quote) or cp == 0x5C:
        return "\\" + chr(cp)
    if ascii_only:
        if cp < 0x80 and is_print(cp):
            return chr(cp)
    elif is_print(cp):
        return chr(cp)
    esc = _SIMPLE_ESCAPES.get(cp)
    if esc is not None:
        return esc
    if cp < 0x20 or cp == 0x7F:
        return f"\\x{cp:02x}"
    if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
        cp = 0xFFFD
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def quote(s: str, ascii_only: bool = False) -> str:
    """Go's ``strconv.Quote`` (``QuoteToASCII`` with ``ascii_only``)."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:  # a byte that was not valid UTF-8
            out.append(f"\\x{cp - 0xDC00:02x}")
        else:
            out.append(_escaped_rune(cp, '"', ascii_only))
    out.append('"')
    return "".join(out)


def quote_rune(cp: int, ascii_only: bool = False) -> str:
    """Go's ``strconv.QuoteRune`` (``QuoteRuneToASCII`` with ``ascii_only``)."""
    if cp < 0 or cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
        cp = 0xFFFD
    return "'" + _escaped_rune(cp, "'", ascii_only) + "'"


def can_backquote(s: str) -> bool:
    """Go's ``strconv.CanBackquote``."""
    for ch in s:
        cp = ord(ch)
        if cp >= 0x80:
            if cp == 0xFEFF or 0xD800 <= cp <= 0xDFFF:
                return False
        elif (cp < 0x20 and cp != 9) or cp == 0x60 or cp == 0x7F:
            return False
    return True


def format_unicode_char(cp: int) -> str:
    """``%#U``: ``U+0023 '#'`` (the quoted character only when printable)."""
    if is_print(cp):
        return f"U+{cp:04X} '{chr(cp)}'"
    return f"U+{cp:04X}"


# --------------------------------------------------------------------------- strconv floats


def shortest_digits(a: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of ``a >= 0`` and the decimal point position.

    ``a == 0.d1d2...dn * 10**dp``.  Python's ``repr`` and Go's ``strconv`` both pick the shortest
    digit string that reads back to the same float, closest to the exact value.
    """
    r = repr(a)
    if "e" in r:
        mant, e = r.split("e")
        exp = int(e)
    else:
        mant, exp = r, 0
    if "." in mant:
        ip, fp = mant.split(".")
    else:
        ip, fp = mant, ""
    digits = ip + fp
    dp = len(ip) + exp
    stripped = digits.lstrip("0")
    dp -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    if not digits:
        dp = 0
    return digits, dp


def _fmt_e(digits: str, dp: int, prec: int, ch: str) -> str:
    out = digits[0] if digits else "0"
    if prec > 0:
        frac = digits[1 : 1 + prec]
        out += "." + frac + "0" * (prec - len(frac))
    exp = dp - 1 if digits else 0
    sign = "-" if exp < 0 else "+"
    return f"{out}{ch}{sign}{abs(exp):02d}"


def _fmt_f(digits: str, dp: int, prec: int) -> str:
    if dp > 0:
        m = min(len(digits), dp)
        out = digits[:m] + "0" * (dp - m)
    else:
        out = "0"
    if prec > 0:
        frac = []
        for i in range(1, prec + 1):
            j = dp + i - 1
            frac.append(digits[j] if 0 <= j < len(digits) else "0")
        out += "." + "".join(frac)
    return out


def _float_bits(v: float) -> tuple[bool, int, int]:
    """Sign, mantissa (with the implicit bit) and unbiased exponent, as strconv splits them."""
    bits = struct.unpack(">Q", struct.pack(">d", v))[0]
    neg = bits >> 63 == 1
    exp = (bits >> 52) & 0x7FF
    mant = bits & ((1 << 52) - 1)
    if exp == 0:
        exp += 1
    else:
        mant |= 1 << 52
    return neg, mant, exp - 1023


def _fmt_b(v: float) -> str:
    neg, mant, exp = _float_bits(v)
    exp -= 52
    return f"{'-' if neg else ''}{mant}p{'+' if exp >= 0 else ''}{exp}"


def _fmt_x(v: float, prec: int, fmt: str) -> str:
    neg, mant, exp = _float_bits(v)
    mask = (1 << 64) - 1
    if mant == 0:
        exp = 0
    mant = (mant << 8) & mask  # leading 1 at bit 60
    while mant != 0 and mant & (1 << 60) == 0:
        mant = (mant << 1) & mask
        exp -= 1
    if 0 <= prec < 15:
        shift = prec * 4
        extra = (mant << shift) & ((1 << 60) - 1)
        mant >>= 60 - shift
        if extra | (mant & 1) > 1 << 59:
            mant += 1
        mant = (mant << (60 - shift)) & mask
        if mant & (1 << 61):
            mant >>= 1
            exp += 1
    hexd = LDIGITS if fmt == "x" else UDIGITS
    out = ["-" if neg else "", "0", fmt, "01"[(mant >> 60) & 1]]
    mant = (mant << 4) & mask
    if prec < 0 and mant != 0:
        out.append(".")
        while mant != 0:
            out.append(hexd[(mant >> 60) & 15])
            mant = (mant << 4) & mask
    elif prec > 0:
        out.append(".")
        for _ in range(prec):
            out.append(hexd[(mant >> 60) & 15])
            mant = (mant << 4) & mask
    out.append("p" if fmt == "x" else "P")
    out.append("-" if exp < 0 else "+")
    out.append(f"{abs(exp):02d}")
    return "".join(out)


def format_float(v: float, fmt: str, prec: int) -> str:
    """Go's ``strconv.FormatFloat(v, fmt, prec, 64)`` for fmt in ``beEfgGxX``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if fmt == "b":
        return _fmt_b(v)
    if fmt in "xX":
        return _fmt_x(v, prec, fmt)
    neg = math.copysign(1.0, v) < 0
    a = -v if neg else v
    sign = "-" if neg else ""
    if prec < 0:
        digits, dp = shortest_digits(a)
        nd = len(digits)
        if fmt in "eE":
            return sign + _fmt_e(digits, dp, max(nd - 1, 0), fmt)
        if fmt == "f":
            return sign + _fmt_f(digits, dp, max(nd - dp, 0))
        exp = dp - 1
        if exp < -4 or exp >= 6:  # Go uses 6 here for the shortest form, whatever nd is
            return sign + _fmt_e(digits, dp, nd - 1, "e" if fmt == "g" else "E")
        return sign + _fmt_f(digits, dp, max(nd - dp, 0))
    if fmt in "gG" and prec == 0:
        prec = 1
    return sign + format(a, f".{prec}{fmt}")


def format_float_v(v: float) -> str:
    """``%v`` of a float64, the common case, without a printer."""
    if v != v or v in (math.inf, -math.inf):
        return format_float(v, "g", -1)
    if v == int(v) and abs(v) < 1e6:
        return str(int(v)) if v or math.copysign(1.0, v) > 0 else "-0"
    return format_float(v, "g", -1)


# --------------------------------------------------------------------------- the printer


class _Printer:
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
        if arg is None or arg is _NIL or arg is MISSING:
            if verb in "Tv":
                self.pad("<nil>")
            else:
                self.bad_verb(verb, _NIL)
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
        if v is _NIL:
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
            s = _decimal(a)
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


def _decimal(a: int) -> str:
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


# --------------------------------------------------------------------------- Sprintf & co.


def _parse_num(s: str, i: int, end: int) -> tuple[int, bool, int]:
    """Go's ``parsenum``: digits at ``s[i:end]``; an absurd number counts as no number."""
    num = 0
    isnum = False
    while i < end and "0" <= s[i] <= "9":
        if num > _TOO_LARGE:
            return 0, False, end
        num = num * 10 + ord(s[i]) - 48
        isnum = True
        i += 1
    return num, isnum, i


def _int_from_arg(args: Sequence[Any], n: int) -> tuple[int, bool, int]:
    if n >= len(args):
        return 0, False, n
    a = args[n]
    num, ok = 0, False
    if kind_of(a) is Kind.INT:
        num, ok = int(a), True
    if ok and not -_TOO_LARGE <= num <= _TOO_LARGE:
        num, ok = 0, False
    return num, ok, n + 1


def sprintf(format_: str, args: Sequence[Any]) -> str:
    """Go's ``fmt.Sprintf``."""
    p = _Printer()
    buf = p.buf
    end = len(format_)
    argnum = 0
    after_index = False
    reordered = False
    i = 0
    while i < end:
        good_argnum = True
        j = format_.find("%", i)
        if j < 0:
            buf.append(format_[i:])
            break
        if j > i:
            buf.append(format_[i:j])
        i = j + 1
        p.clear_flags()
        simple = False
        while i < end:
            c = format_[i]
            if c == "#":
                p.sharp = True
            elif c == "0":
                p.zero = not p.minus
            elif c == "+":
                p.plus = True
            elif c == "-":
                p.minus = True
                p.zero = False
            elif c == " ":
                p.space = True
            else:
                if "a" <= c <= "z" and argnum < len(args):
                    if c == "v":
                        p.sharp_v, p.sharp = p.sharp, False
                        p.plus_v, p.plus = p.plus, False
                    p.print_arg(args[argnum], c)
                    argnum += 1
                    i += 1
                    simple = True
                break
            i += 1
        if simple:
            continue

        # argument index, width, precision
        argnum, i, after_index, ok_idx, re = _arg_number(format_, i, argnum, len(args))
        good_argnum &= ok_idx
        reordered |= re
        if i < end and format_[i] == "*":
            i += 1
            p.wid, p.wid_present, argnum = _int_from_arg(args, argnum)
            if not p.wid_present:
                buf.append("%!(BADWIDTH)")
            if p.wid < 0:
                p.wid = -p.wid
                p.minus = True
                p.zero = False
            after_index = False
        else:
            p.wid, p.wid_present, i = _parse_num(format_, i, end)
            if after_index and p.wid_present:
                good_argnum = False
        if i + 1 < end and format_[i] == ".":
            i += 1
            if after_index:
                good_argnum = False
            argnum, i, after_index, ok_idx, re = _arg_number(format_, i, argnum, len(args))
            good_argnum &= ok_idx
            reordered |= re
            if i < end and format_[i] == "*":
                i += 1
                p.prec, p.prec_present, argnum = _int_from_arg(args, argnum)
                if p.prec < 0:
                    p.prec, p.prec_present = 0, False
                if not p.prec_present:
                    buf.append("%!(BADPREC)")
                after_index = False
            else:
                p.prec, p.prec_present, i = _parse_num(format_, i, end)
                if not p.prec_present:
                    p.prec, p.prec_present = 0, True
        if not after_index:
            argnum, i, after_index, ok_idx, re = _arg_number(format_, i, argnum, len(args))
            good_argnum &= ok_idx
            reordered |= re
        if i >= end:
            buf.append("%!(NOVERB)")
            break
        verb = format_[i]
        i += 1
        if verb == "%":
            buf.append("%")
        elif not good_argnum:
            buf.append(f"%!{verb}(BADINDEX)")
        elif argnum >= len(args):
            buf.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":
                p.sharp_v, p.sharp = p.sharp, False
                p.plus_v, p.plus = p.plus, False
            p.print_arg(args[argnum], verb)
            argnum += 1
    if not reordered and argnum < len(args):
        p.clear_flags()
        buf.append("%!(EXTRA ")
        for n, a in enumerate(args[argnum:]):
            if n:
                buf.append(", ")
            if a is None or a is MISSING:
                buf.append("<nil>")
            else:
                buf.append(go_type_name(a) + "=")
                p.print_arg(a, "v")
        buf.append(")")
    return p.text()


def _arg_number(s: str, i: int, argnum: int, nargs: int) -> tuple[int, int, bool, bool, bool]:
    """Go's ``argNumber``: an explicit ``[n]``; returns (argnum, i, found, good, reordered)."""
    if i >= len(s) or s[i] != "[":
        return argnum, i, False, True, False
    # parseArgNumber
    if len(s) - i < 3:
        return argnum, i + 1, False, False, True
    for j in range(i + 1, len(s)):
        if s[j] == "]":
            width, ok, newi = _parse_num(s, i + 1, j)
            if not ok or newi != j:
                return argnum, j + 1, False, False, True
            index = width - 1
            if 0 <= index < nargs:
                return index, j + 1, True, True, True
            return argnum, j + 1, True, False, True
    return argnum, i + 1, False, False, True


def sprint(args: Sequence[Any]) -> str:
    """Go's ``fmt.Sprint``: a space between operands when neither is a string."""
    p = _Printer()
    prev_string = False
    for n, a in enumerate(args):
        is_string = kind_of(a) is Kind.STRING
        if n > 0 and not is_string and not prev_string:
            p.buf.append(" ")
        p.print_arg(a, "v")
        prev_string = is_string
    return p.text()


def sprintln(args: Sequence[Any]) -> str:
    """Go's ``fmt.Sprintln``: spaces between all operands and a final newline."""
    p = _Printer()
    for n, a in enumerate(args):
        if n:
            p.buf.append(" ")
        p.print_arg(a, "v")
    p.buf.append("\n")
    return p.text()


def format_v(v: Any) -> str:
    """``%v`` of one value, as ``fmt.Fprint`` writes it when a template prints a value."""
    t = type(v)
    if t is str:
        return v  # type: ignore[no-any-return]
    if t is int:
        return _decimal(v)
    if t is bool:
        return "true" if v else "false"
    if t is float:
        return format_float_v(v)
    if v is None:
        return "<nil>"
    p = _Printer()
    p.print_arg(v, "v")
    return p.text()


def format_verb(verb: str, v: Any) -> str:
    """One value with a bare verb (``%s``, ``%q``...), for callers outside printf."""
    p = _Printer()
    p.print_arg(v, verb)
    return p.text()
