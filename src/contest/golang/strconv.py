"""Go's ``strconv``: quoting, float formatting, and parsing numbers with Go's grammar and errors.

Quoting: templates' ``%q``, their error messages (``unexpected "x" in operand``) and ``%#U``,
ConTest's validation messages (``"a bad one" is not a valid tag``) and every ``strconv`` error
(``strconv.Atoi: parsing "x": invalid syntax``) show text as Go's ``strconv.Quote`` does.

Formatting: ``%v`` of a float64 is ``strconv.FormatFloat(f, 'g', -1, 64)``, whose shortest form
switches to an exponent from 1e+06 on (so a template prints ``1e+06``, not ``1000000``).

Parsing: ``ParseFloat`` (comparison expressions, template literals) and ``ParseInt``/``Atoi``
(job IDs in the form API, descriptor versions) accept exactly what Go accepts and fail with Go's
words, because users' scripts and descriptors were written against ConTest.
"""

from __future__ import annotations

import math
import struct
from typing import Final

__all__ = [
    "NumError",
    "atoi",
    "can_backquote",
    "format_float",
    "format_float_v",
    "format_unicode_char",
    "is_print",
    "parse_bool",
    "parse_float",
    "parse_int64",
    "quote",
    "quote_rune",
    "shortest_digits",
    "underscore_ok",
]

LDIGITS: Final = "0123456789abcdefx"
UDIGITS: Final = "0123456789ABCDEFX"


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


# --------------------------------------------------------------------------- strconv parsing


class NumError(ValueError):
    """Go's ``*strconv.NumError``; ``str()`` is Go's message, word for word."""


def _num_error(func: str, s: str, why: str) -> NumError:
    return NumError(f"strconv.{func}: parsing {quote(s)}: {why}")


_MAX_UINT64: Final = (1 << 64) - 1


def parse_int64(s: str, func: str = "ParseInt") -> int:
    """Go's ``strconv.ParseInt(s, 10, 64)``: an optional sign and decimal digits, nothing else.

    Go scans left to right and stops at the first problem, so ``"99999999999999999999x"`` is out
    of range rather than a syntax error; so do we. ``func`` names the Go function in the error.
    """

    def fail(why: str) -> NumError:
        return _num_error(func, s, why)

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


def atoi(s: str) -> int:
    """Go's ``strconv.Atoi`` on a 64-bit platform (``ParseInt(s, 10, 0)`` named ``Atoi``)."""
    return parse_int64(s, "Atoi")


_DEC_DIGITS: Final = frozenset("0123456789")
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")


def underscore_ok(s: str) -> bool:
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
    if underscores and not underscore_ok(s[:i]):
        return None
    return i, hexa


def parse_float(s: str) -> float:
    """Go's ``strconv.ParseFloat(s, 64)``: its grammar, its rounding, its error texts.

    Python's ``float`` differs in ways a user would notice: it accepts surrounding blanks and
    ``+nan``, rejects hexadecimal floats, and turns ``1e400`` into ``inf`` instead of failing.
    """
    special = _special(s)
    if special is not None:
        value, n = special
        if n != len(s):
            raise _num_error("ParseFloat", s, "invalid syntax")
        return value
    read = _read_float(s)
    if read is None or read[0] != len(s):
        raise _num_error("ParseFloat", s, "invalid syntax")
    clean = s.replace("_", "")
    if read[1]:
        try:
            return float.fromhex(clean)
        except OverflowError:
            raise _num_error("ParseFloat", s, "value out of range") from None
    value = float(clean)
    if math.isinf(value):
        raise _num_error("ParseFloat", s, "value out of range")
    return value


_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(s: str) -> bool:
    """Go's ``strconv.ParseBool`` (ConTest's boolean step parameters: ``"t"``, ``"1"``, ...)."""
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise _num_error("ParseBool", s, "invalid syntax")
