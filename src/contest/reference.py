"""The plugin reference, written from the plugins themselves: their summaries, declared
parameters, events and pause support.

``contest plugins`` lists every registered plugin by kind (:func:`listing`), ``contest plugins
NAME`` shows one (:func:`describe`), and ``docs/steps.md`` is :func:`markdown` of the built-ins, so
the documentation of a parameter is its declaration's ``doc`` and nothing else (a test fails when
the file is stale).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from contest.events import TARGET_ERR, TARGET_IN, TARGET_OUT
from contest.paramspec import Parameter, Parameters, declared
from contest.registry import BUILTIN_DISTRIBUTION, KINDS, Plugin, PluginRegistry, clean_summary

__all__ = ["KIND_TITLES", "describe", "listing", "markdown", "parameter_sets", "rows"]

#: Each kind, as a heading says it.
KIND_TITLES = {
    "teststeps": "Test steps",
    "targetmanagers": "Target managers",
    "testfetchers": "Test fetchers",
    "reporters": "Reporters",
    "targetlockers": "Target lockers",
}
_KIND_ONE = {
    "teststeps": "test step",
    "targetmanagers": "target manager",
    "testfetchers": "test fetcher",
    "reporters": "reporter",
    "targetlockers": "target locker",
}
#: Where each kind declares its parameters: (class attribute, what they are, descriptor key).
_DECLARATIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "teststeps": (("parameters", "Parameters", "parameters"),),
    "targetmanagers": (
        ("acquire_parameters", "Acquire parameters", "TargetManagerAcquireParameters"),
        ("release_parameters", "Release parameters", "TargetManagerReleaseParameters"),
    ),
    "testfetchers": (("fetch_parameters", "Fetch parameters", "TestFetcherFetchParameters"),),
    "reporters": (
        ("run_parameters", "Run reporter parameters", "Parameters"),
        ("final_parameters", "Final reporter parameters", "Parameters"),
    ),
    "targetlockers": (),
}
_PAUSE_YES = "supported: a pause saves the targets in flight, and the resumed step finishes them"
_PAUSE_NO = "not supported: a pause lets the targets in flight finish first"


@dataclass(frozen=True)
class Row:
    """One parameter as the reference shows it (nested fields have dotted names)."""

    name: str
    type: str
    need: str  # "required", "default: 22", or ""
    notes: str  # "templated", "secret"
    doc: str


def parameter_sets(plugin: Plugin) -> list[tuple[str, str, Parameters | None]]:
    """``(title, descriptor key, declaration or None)`` for each parameter set of the plugin."""
    return [
        (title, key, declared(plugin.cls, attribute))
        for attribute, title, key in _DECLARATIONS[plugin.kind]
    ]


def rows(params: Parameters, prefix: str = "") -> Iterator[Row]:
    """The parameters, nested fields after their object (``bag.bin.path``)."""
    for p in params:
        yield _row(p, prefix + p.name)
        if p.field_set is not None:
            yield from rows(p.field_set, f"{prefix}{p.name}{'[]' if p.many else ''}.")
    if params.others is not None:
        yield _row(params.others, prefix + params.others.name)


def _row(p: Parameter, name: str) -> Row:
    if p.required:
        need = "required"
    elif p.default is not None:
        need = f"default: {_value(p.default)}"
    else:
        need = ""
    notes = ", ".join(n for n, on in (("templated", p.templated), ("secret", p.secret)) if on)
    doc = p.doc
    bounds = []
    if p.minimum is not None:
        bounds.append(f">= {_number(p.minimum)}")
    if p.maximum is not None:
        bounds.append(f"<= {_number(p.maximum)}")
    if bounds:
        doc = f"{doc} ({', '.join(bounds)})" if doc else ", ".join(bounds)
    return Row(name, p.type_text, need, notes, doc)


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return str(v)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _details(plugin: Plugin) -> str:
    """The class docstring past its first sentence, if it says more."""
    try:
        doc = plugin.cls.__doc__ if "__doc__" in plugin.cls.__dict__ else None
    except Exception:
        return ""
    if not doc:
        return ""
    text = inspect.cleandoc(doc)
    summary = clean_summary(doc)
    paragraphs = text.split("\n\n")
    rest = paragraphs[1:]
    first = " ".join(paragraphs[0].split())
    if len(first) > len(summary) + 1:
        rest.insert(0, first)
    return "\n\n".join(" ".join(p.split()) for p in rest if p.strip())


# --- text: contest plugins -----------------------------------------------------------------------


def listing(registry: PluginRegistry) -> str:
    """Every plugin by kind, with its summary (and a step's events)."""
    lines: list[str] = []
    for kind in KINDS:
        lines.append(f"{kind}:")
        for p in registry.plugins(kind):
            events = f"  [events: {', '.join(sorted(p.events))}]" if p.events else ""
            lines.append(f"  {p.name:<24} {_summary(p)}{events}")
    return "\n".join(lines) + "\n"


def _summary(plugin: Plugin) -> str:
    try:
        return plugin.summary
    except Exception as exc:  # a plugin whose factory fails still gets listed
        return f"(cannot be made: {exc})"


def describe(plugin: Plugin) -> str:
    """One plugin in full: what it is, its parameters, events and pause support."""
    out = [
        f"{plugin.name}: {_KIND_ONE[plugin.kind]} from {plugin.origin}",
        "",
        _summary(plugin),
    ]
    details = _details(plugin)
    if details:
        out += ["", details]
    for title, key, decl in parameter_sets(plugin):
        out += ["", f"{title} ({key}):"]
        if decl is None:
            out.append("  not declared: the plugin checks them itself")
            continue
        table = list(rows(decl))
        if not table:
            out.append("  none")
            continue
        out += _text_table(table)
    if plugin.kind == "teststeps":
        own = ", ".join(sorted(plugin.events)) or "none"
        out += [
            "",
            f"Events: {own} (and the runner's own: {TARGET_IN}, {TARGET_OUT}, {TARGET_ERR})",
            f"Pause: {_PAUSE_YES if getattr(plugin.cls, 'supports_pause', False) else _PAUSE_NO}",
        ]
    return "\n".join(out) + "\n"


def _text_table(table: Sequence[Row]) -> list[str]:
    cells = [(r.name, r.type, ", ".join(x for x in (r.need, r.notes) if x), r.doc) for r in table]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    return [
        "  " + "  ".join(c[i].ljust(widths[i]) for i in range(3)) + ("  " + c[3] if c[3] else "")
        for c in cells
    ]


# --- markdown: docs/steps.md ---------------------------------------------------------------------


def markdown(
    registry: PluginRegistry, distributions: Iterable[str] = (BUILTIN_DISTRIBUTION,)
) -> str:
    """The reference of the plugins of ``distributions`` (the built-ins), as docs/steps.md."""
    wanted = set(distributions)
    out = [
        "# Built-in plugins",
        "",
        "<!-- Generated from the plugins' declarations by `contest plugins --markdown`; do not "
        "edit. tests/docs/test_docs_reference.py fails when this file is stale. -->",
        "",
        "Every step, target manager, test fetcher, reporter and target locker that contest-py "
        "ships, with the parameters each declares. `contest plugins NAME` shows the same for any "
        "installed plugin, and `contest schema` turns it into a JSON Schema for editors. Names "
        'are case-insensitive. A step parameter is a list of values (`"args": ["-c", '
        '"true"]`); "templated" values are Go templates expanded per target '
        "(`{{ .FQDN }}`); the parameters of the other kinds are JSON objects whose keys match "
        "in any case.",
    ]
    for kind in KINDS:
        plugins = [p for p in registry.plugins(kind) if p.distribution in wanted]
        if not plugins:
            continue
        out += ["", f"## {KIND_TITLES[kind]}", ""]
        out.append(", ".join(f"[{p.name}](#{_anchor(p.name)})" for p in plugins))
        for p in plugins:
            out += _md_plugin(p)
    return "\n".join(out) + "\n"


def _anchor(name: str) -> str:
    return name.lower()


def _md_plugin(plugin: Plugin) -> list[str]:
    out = ["", f"### {plugin.name}", "", _summary(plugin)]
    details = _details(plugin)
    if details:
        out += ["", details]
    for title, key, decl in parameter_sets(plugin):
        out += ["", f"{title} (`{key}`):", ""]
        if decl is None:
            out.append("Not declared: the plugin checks them itself.")
            continue
        table = list(rows(decl))
        if not table:
            out.append("None.")
            continue
        out += [
            "| Name | Type | Required / default | Notes | Description |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| `{r.name}` | {_cell(r.type)} | {_cell(r.need)} | {r.notes} | {_cell(r.doc)} |"
            for r in table
        ]
    if plugin.kind == "teststeps":
        events = ", ".join(f"`{e}`" for e in sorted(plugin.events)) or "none"
        pause = _PAUSE_YES if getattr(plugin.cls, "supports_pause", False) else _PAUSE_NO
        out += ["", f"Events: {events}.", "", f"Pause: {pause}."]
    source = inspect.getmodule(plugin.cls)
    if source is not None and source.__name__.startswith("contest."):
        path = "../src/" + source.__name__.replace(".", "/") + ".py"
        out += ["", f"Source: [`{source.__name__}`]({path})"]
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
