"""Go's ``strconv`` conversions that fmt and the parser rely on: quoting and float formatting.

``%q``, error messages (``unexpected "x" in operand``) and ``%#U`` quote like Go's
``strconv.Quote``; ``%v`` of a float64 is ``strconv.FormatFloat(f, 'g', -1, 64)``, whose
shortest form switches to an exponent from 1e+06 on (so a template prints ``1e+06``, not
``1000000``, exactly as Go does).
"""

from __future__ import annotations

import math
import struct
from typing import Final

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
