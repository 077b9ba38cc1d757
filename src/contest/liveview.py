"""The live view of a running job, for ``contest run`` and ``contestcli --wait``: a table of
targets per step (in flight, passed, failed) and the elapsed time when the output is a terminal,
one JSON object per update otherwise; while the job waits for targets other jobs hold, what it
waits for (``waiting for dut1, dut2 (held by job 3)``)."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


def render(progress: dict[str, Any], title: str = "") -> Group:
    """``progress`` is ``Progress.to_json_obj()``'s shape."""
    table = Table(expand=False, show_edge=False, pad_edge=False)
    table.add_column("test")
    table.add_column("step")
    table.add_column("in flight", justify="right")
    table.add_column("passed", justify="right", style="green")
    table.add_column("failed", justify="right", style="red")
    for row in progress.get("Steps", []):
        table.add_row(
            row["Test"], row["Step"], str(row["InFlight"]), str(row["Passed"]), str(row["Failed"])
        )
    head = Text(
        f"{title}  {progress.get('State', '')}  run {progress.get('Run', 0)}  "
        f"{progress.get('Elapsed', 0):.1f}s",
        style="bold",
    )
    waiting = progress.get("Waiting")
    if isinstance(waiting, dict) and waiting.get("Text"):
        # what the job waits for: other jobs' targets (contest.targetwait writes the text)
        return Group(head, Text(str(waiting["Text"]), style="yellow"), table)
    return Group(head, table)


class LiveView:
    """Use as a context manager; call ``update(progress)`` as often as you like."""

    def __init__(
        self, title: str = "", out: TextIO | None = None, *, json_lines: bool = False
    ) -> None:
        self.title = title
        self.out = out or sys.stdout
        self.tty = self.out.isatty() and not json_lines
        self._live: Live | None = None
        self._last: str | None = None

    def __enter__(self) -> LiveView:
        if self.tty:
            self._live = Live(
                render({}, self.title), console=Console(file=self.out), refresh_per_second=4
            )
            self._live.__enter__()
        return self

    def update(self, progress: dict[str, Any]) -> None:
        if self._live is not None:
            self._live.update(render(progress, self.title))
            return
        line = json.dumps({k: v for k, v in progress.items() if k != "Elapsed"}, sort_keys=True)
        if line != self._last:  # one line per change, not per poll
            self._last = line
            self.out.write(json.dumps(progress) + "\n")
            self.out.flush()

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
