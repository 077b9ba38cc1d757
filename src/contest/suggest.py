"""Did-you-mean: the known name closest to a misspelt one, for error messages.

Every refusal of an unknown name (a descriptor key, a step parameter, a plugin) offers the
nearest known one, so ``nmae`` is answered with ``did you mean "name"?`` rather than a list to
read through. Case is ignored when comparing (descriptor keys match case-insensitively anyway).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean", "hint"]


def closest(word: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known name most like ``word`` (ignoring case), or None when none is close."""
    by_folded: dict[str, str] = {}
    for name in known:
        by_folded.setdefault(name.casefold(), name)
    match = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=cutoff)
    return by_folded[match[0]] if match else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``'; did you mean "name"?'`` for the closest known name, else the known names listed
    (``'; known: a, b, c'``), else ``""``. Meant to end a message."""
    names = sorted(set(known), key=str.casefold)
    best = closest(word, names)
    if best is not None:
        return f'; did you mean "{best}"?'
    if names and len(names) <= 30:
        return f"; known: {', '.join(names)}"
    return ""


def hint(word: str, known: Iterable[str], otherwise: str) -> str:
    """``'; did you mean "name"?'`` for the closest known name, else ``otherwise`` (for long or
    changing lists, such as the installed plugins, which a message should not spell out)."""
    best = closest(word, known)
    return f'; did you mean "{best}"?' if best is not None else otherwise
