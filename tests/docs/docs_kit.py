"""Reading the fenced blocks of the Markdown docs, with the marker comment that says what each
block is and how it is checked.

A marker is an HTML comment on the line just before the opening fence::

    <!-- example: docs/examples/hello_step.py -->
    ```python
    ...
    ```

The marker's kind is the word before the colon; its argument (a path, a file name), the rest.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import distkit

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^```([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*([\w-]+)\s*(?::\s*(.*?))?\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, text (with its final newline), marker and line number."""

    lang: str
    text: str
    kind: str | None
    arg: str | None
    line: int  # of the opening fence, 1-based

    def where(self, doc: str) -> str:
        return f"{doc}:{self.line} ({self.lang} block, marker {self.kind!r})"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order."""
    lines = path.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start = i
        marker = _MARKER.match(lines[i - 1]) if i > 0 else None
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        assert i < len(lines), f"{path}:{start + 1}: unclosed code block"
        text = "\n".join(body) + "\n" if body else ""
        out.append(
            Block(
                lang=m.group(1),
                text=text,
                kind=marker.group(1) if marker else None,
                arg=marker.group(2) if marker else None,
                line=start + 1,
            )
        )
        i += 1
    return out


def is_excerpt(block: str, source: str) -> bool:
    """Whether ``block`` is a run of consecutive lines of ``source``, indentation aside (a
    method shown on its own is dedented)."""
    want = textwrap.dedent(block).splitlines()
    have = source.splitlines()
    n = len(want)
    if n == 0:
        return False
    for i in range(len(have) - n + 1):
        if textwrap.dedent("\n".join(have[i : i + n])).splitlines() == want:
            return True
    return False


def run_contest(
    *args: str,
    cwd: Path | None = None,
    pythonpath: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``contest ARGS`` (as ``python -m contest.cli``) in a fresh interpreter."""
    return distkit.run(["-m", "contest.cli", *args], pythonpath, cwd=cwd, timeout=timeout)


def validate_output(stdout: str) -> dict[str, str]:
    """``contest validate``'s output split per file: name -> its lines (header included)."""
    out: dict[str, str] = {}
    name = None
    for line in stdout.splitlines(keepends=True):
        if not line.startswith(" "):
            name = line.split(":", 1)[0]
            out[name] = ""
        assert name is not None, stdout
        out[name] += line
    return out
