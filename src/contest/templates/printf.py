"""Go's ``fmt.Sprintf``, ``Sprint`` and ``Sprintln``: the format-string machinery.

Flags, widths and precisions (also as ``*`` arguments), explicit argument indexes (``%[2]d``)
and Go's inline error forms (``%!d(MISSING)``, ``%!(EXTRA int=2)``, ``%!(NOVERB)``,
``%!d(BADINDEX)``) follow ``fmt`` exactly; formatting each value is ``gofmt.Printer``'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .gofmt import Printer
from .values import MISSING, Kind, go_type_name, kind_of

_TOO_LARGE: Final = 1_000_000  # fmt stops reading a width or precision beyond this


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
    p = Printer()
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
    p = Printer()
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
    p = Printer()
    for n, a in enumerate(args):
        if n:
            p.buf.append(" ")
        p.print_arg(a, "v")
    p.buf.append("\n")
    return p.text()
