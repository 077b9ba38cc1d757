"""Reading a job descriptor file for the commands: its text (UTF-8, or one clear line saying it
is not), and whether it is YAML (by its name, else by its content)."""

from __future__ import annotations

import sys
from pathlib import Path

YAML_SUFFIXES = (".yaml", ".yml")


class DescriptorFileError(Exception):
    """The file cannot be read, or is not UTF-8 text; the message is one line, for the user."""


def decode(data: bytes, name: str) -> str:
    """``data`` as text; a descriptor is UTF-8 (a BOM is allowed), anything else is refused
    with where the first bad byte is, rather than guessed at."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DescriptorFileError(
            f"{name}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}, "
            f"line {line}): save the descriptor as UTF-8"
        ) from None


def read_bytes(path: str) -> bytes:
    """The file's bytes (``-``: stdin)."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DescriptorFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_text(path: str) -> str:
    """The file's text (``-``: stdin), checked as :func:`decode` does."""
    return decode(read_bytes(path), "stdin" if path == "-" else path)


def looks_like_yaml(path: str | None, text: str) -> bool:
    """YAML by the file's extension; without one of YAML's, by content: a document whose first
    significant character does not open a JSON value (``{``, ``[``, ``"``...) is YAML."""
    if path and path.lower().endswith(YAML_SUFFIXES):
        return True
    if path and path.lower().endswith(".json"):
        return False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        first = stripped[0]
        if first == "#":
            return True  # a comment: JSON has none
        return not (first in '{["' or first.isdigit() or (first == "-" and stripped[1:2].isdigit()))
    return False
