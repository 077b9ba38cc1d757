"""The templates and the few formats they share (times in UTC, durations, payloads)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from markupsafe import Markup

from contest.storage.models import JobState

#: longest payload text a page shows in full; beyond it, the REST API has the rest
PAYLOAD_SHOWN = 4000

_STATE_CLASSES = {
    JobState.UNKNOWN: "queued",
    JobState.STARTED: "running",
    JobState.COMPLETED: "passed",
    JobState.FAILED: "failed",
    JobState.PAUSED: "paused",
    JobState.PAUSE_FAILED: "failed",
    JobState.CANCELLING: "cancelling",
    JobState.CANCELLED: "cancelled",
    JobState.CANCELLATION_FAILED: "failed",
}
#: cell state -> (symbol, words); the symbol says it without colour, the words to screen readers
CELL_LOOK = {
    "none": ("·", "not reached"),
    "waiting": ("…", "waiting"),
    "running": ("▶", "running"),
    "passed": ("✓", "passed"),
    "failed": ("✗", "failed"),
}


def when(ts: float | None) -> str:
    """A Unix time as ``2024-05-01 12:00:03`` (UTC), or an empty string."""
    if not ts:
        return ""
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(ts: float | None) -> str:
    if not ts:
        return ""
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="milliseconds")


def duration(seconds: float | None) -> str:
    """``850ms``, ``4.2s``, ``3m05s``, ``2h07m``."""
    if seconds is None:
        return ""
    s = max(seconds, 0.0)
    if s < 1:
        return f"{s * 1000:.0f}ms"
    if s < 60:
        return f"{s:.1f}s"
    whole = int(s)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def state_name(state: JobState) -> str:
    """``JobStateCompleted`` -> ``Completed``."""
    return state.event_name.removeprefix("JobState")


def state_class(state: JobState) -> str:
    return _STATE_CLASSES[state]


def pretty(value: Any, limit: int = PAYLOAD_SHOWN) -> str:
    """A payload as indented JSON, cut at ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    if len(text) > limit:
        return f"{text[:limit]}\n… ({len(text) - limit} more characters)"
    return text


def path_part(text: str) -> str:
    """One URL path segment (a target ID may hold ``/``, ``?`` or spaces)."""
    return quote(text, safe="")


def query(params: dict[str, Any]) -> str:
    """A query string of the non-empty parameters."""
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def cell_title(cell: Any) -> str:
    """The hover text of a grid cell: its state, times and error."""
    parts = [CELL_LOOK[cell.state][1]]
    if cell.entered:
        parts.append(f"in {when(cell.entered)}")
    if cell.left:
        parts.append(f"out {when(cell.left)}")
        if cell.entered:
            parts.append(f"({duration(cell.left - cell.entered)})")
    if cell.error:
        first = cell.error.splitlines()[0] if cell.error.strip() else cell.error
        parts.append(f"— {first[:300]}")
    return " ".join(parts)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("contest.server.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        iso=iso,
        duration=duration,
        state_name=state_name,
        state_class=state_class,
        pretty=pretty,
        path_part=path_part,
        cell_title=cell_title,
    )
    env.globals.update(query=query, CELL_LOOK=CELL_LOOK, Markup=Markup)
    return env
