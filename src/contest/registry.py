"""The plugin registry: every kind of plugin, found through Python entry points.

Built-in plugins register exactly as a third-party package does, through the ``contest.*``
entry-point groups, so the built-ins prove the public path works. Each entry point names a
module-level ``load`` function: test steps return ``(name, factory, events)``, the other kinds
``(name, factory)``. Names are case-insensitive and unique per kind.

A name is never taken twice: the built-ins (distribution ``contest-py``) are registered first,
and a later plugin with a name already taken is refused with an error naming both distributions.
Every refusal is kept in :attr:`PluginRegistry.load_errors`, so ``contest plugins`` can say so
and fail.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import re
import threading
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from contest.errors import ContestError
from contest.events import is_valid_event_name

log = logging.getLogger(__name__)

KINDS = {
    "teststeps": "contest.teststeps",
    "targetmanagers": "contest.targetmanagers",
    "testfetchers": "contest.testfetchers",
    "reporters": "contest.reporters",
    "targetlockers": "contest.targetlockers",
}
# ConTest's words for the kinds, in its messages
_KIND_NAMES = {
    "teststeps": "TestStep",
    "targetmanagers": "TargetManager",
    "testfetchers": "TestFetcher",
    "reporters": "Reporter",
    "targetlockers": "TargetLocker",
}


class RegistryError(ContestError):
    """A plugin cannot be registered (unknown kind, empty or taken name, invalid event name,
    ``load()`` of the wrong shape), or a plugin looked up is not registered."""


#: The distribution whose plugins are the built-ins: loaded first, so none can be replaced.
BUILTIN_DISTRIBUTION = "contest-py"

#: What ``load()`` must return, per kind, for the error that says so.
_LOAD_SHAPES = {
    "teststeps": "(name, factory, events)",
    "targetmanagers": "(name, factory)",
    "testfetchers": "(name, factory)",
    "reporters": "(name, factory)",
    "targetlockers": "(name, factory)",
}


_RST_ROLE = re.compile(r":[\w:]+:`([^`]*)`")
_RST_LITERAL = re.compile(r"``([^`]*)``|`([^`]*)`")
_SENTENCE = re.compile(r"(.*?[^.][.!?])(?:\s|$)")


def clean_summary(doc: str | None) -> str:
    """A docstring's first sentence on one line, without reStructuredText markup:
    ``"``Sleep``: waits ``duration`` per\ntarget. More."`` gives ``"Sleep: waits duration per
    target."``."""
    if not doc:
        return ""
    paragraph = inspect.cleandoc(doc).split("\n\n", 1)[0]
    text = " ".join(paragraph.split())
    text = _RST_ROLE.sub(r"\1", text)
    text = _RST_LITERAL.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)
    m = _SENTENCE.match(text)
    return m.group(1) if m else text


@dataclass(slots=True)
class Plugin:
    kind: str
    name: str  # as the plugin spells it
    factory: Callable[..., Any]
    events: frozenset[str] = frozenset()
    source: str = ""  # the entry point, for messages: "module:load"
    distribution: str = ""  # the distribution that declared it ("contest-py" for built-ins)
    _cls: type | None = None

    @property
    def cls(self) -> type:
        """The class of what the factory makes: the factory itself when it is a class, else the
        class its return annotation names, else (a factory without one) the class of what one
        call makes."""
        if self._cls is None:
            self._cls = _made_class(self.factory)
        return self._cls

    @property
    def origin(self) -> str:
        """Where the plugin comes from, for messages: ``contest-py (contest.plugins...:load)``."""
        if self.distribution and self.source:
            return f"{self.distribution} ({self.source})"
        return self.distribution or self.source or "code"

    @property
    def summary(self) -> str:
        """The first sentence of the plugin class's docstring, on one line, without markup."""
        try:
            cls = self.cls
        except Exception:
            return clean_summary(getattr(self.factory, "__doc__", None))
        doc = cls.__doc__ if "__doc__" in cls.__dict__ else None
        return clean_summary(doc or getattr(self.factory, "__doc__", None))


def _made_class(factory: Callable[..., Any]) -> type:
    if isinstance(factory, type):
        return factory
    try:
        made = typing.get_type_hints(factory).get("return")
    except Exception:  # an annotation that does not resolve: look at an instance
        made = None
    if isinstance(made, type):
        return made
    return type(factory())


@dataclass
class PluginRegistry:
    _plugins: dict[str, dict[str, Plugin]] = field(default_factory=lambda: {k: {} for k in KINDS})
    #: One message per entry point that could not be registered (kept for ``contest plugins``).
    load_errors: list[str] = field(default_factory=list)

    def register(
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        events: Iterable[str] = (),
        source: str = "",
        distribution: str = "",
    ) -> Plugin:
        if kind not in KINDS:
            raise RegistryError(f"unknown plugin kind {kind!r}")
        what = _KIND_NAMES[kind]
        where = f"{distribution} ({source})" if distribution and source else source
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{what} from {where or '?'} has an empty name")
        if not callable(factory):
            raise RegistryError(
                f"{what} {name} from {where or '?'}: the factory must be callable (a class, or a "
                f"function making an instance), got {type(factory).__name__}"
            )
        key = name.lower()
        existing = self._plugins[kind].get(key)
        if existing is not None:
            raise RegistryError(
                f"{what}s {name} already registered (by {existing.origin}; "
                f"again by {where or name}): the second one is not registered"
            )
        if isinstance(events, str):
            raise RegistryError(
                f"could not register {what} {name}: events must be a list of names, not a string"
            )
        evs = frozenset(events)
        for ev in evs:
            if not isinstance(ev, str) or not is_valid_event_name(ev):
                raise RegistryError(
                    f"could not register {what} {name}: event name {ev!r} does not comply with "
                    "events api (letters only, at most 32 characters)"
                )
        plugin = Plugin(kind, name, factory, evs, source, distribution)
        self._plugins[kind][key] = plugin
        return plugin

    def register_test_step(
        self, name: str, factory: Callable[..., Any], events: Iterable[str] = (), source: str = ""
    ) -> Plugin:
        return self.register("teststeps", name, factory, events, source)

    def get(self, kind: str, name: str) -> Plugin:
        plugin = self._plugins[kind].get(name.lower())
        if plugin is None:
            raise RegistryError(f"{_KIND_NAMES[kind]} {name!r} is not registered")
        return plugin

    def find(self, kind: str, name: str) -> Plugin | None:
        return self._plugins[kind].get(name.lower())

    def test_step(self, name: str) -> Plugin:
        return self.get("teststeps", name)

    def plugins(self, kind: str) -> list[Plugin]:
        return sorted(self._plugins[kind].values(), key=lambda p: p.name.lower())

    def load_entry_points(
        self, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None
    ) -> list[str]:
        """Register every plugin the installed distributions declare (or the ``entry_points``
        given); returns the errors, one per entry point that failed, and keeps them in
        :attr:`load_errors` (the others are still registered).

        The built-ins (distribution ``contest-py``) are registered first, then the others by
        distribution and entry-point name: a third-party plugin taking a built-in's name is the
        one refused, whatever the names sort as.
        """
        if entry_points is None:
            entry_points = [
                ep
                for group in KINDS.values()
                for ep in importlib.metadata.entry_points(group=group)
            ]
        groups = {group: kind for kind, group in KINDS.items()}
        ordered = sorted(
            (ep for ep in entry_points if ep.group in groups),
            key=lambda ep: (
                list(KINDS.values()).index(ep.group),
                _dist_name(ep) != BUILTIN_DISTRIBUTION,
                _dist_name(ep),
                ep.name,
            ),
        )
        errors = []
        for ep in ordered:
            kind = groups[ep.group]
            dist = _dist_name(ep)
            try:
                loaded = ep.load()()
                name, factory, events = _unpack(kind, loaded, ep.value)
                self.register(kind, name, factory, events, ep.value, dist)
            except Exception as exc:
                message = f"{ep.group} {ep.name} from {dist} ({ep.value}): {exc}"
                log.error("cannot load plugin entry point %s", message)
                errors.append(message)
        self.load_errors.extend(errors)
        return errors


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = ep.dist
    return dist.name if dist is not None else "?"


def _unpack(kind: str, loaded: Any, where: str) -> tuple[Any, Any, Iterable[str]]:
    """``load()``'s result, checked: the tuple the kind needs, or an error saying what it
    must be."""
    shape = _LOAD_SHAPES[kind]
    size = 3 if kind == "teststeps" else 2
    if not isinstance(loaded, tuple | list) or len(loaded) != size:
        got = f"a {len(loaded)}-tuple" if isinstance(loaded, tuple | list) else _what(loaded)
        raise RegistryError(f"load() must return {shape}, got {got}")
    if not isinstance(loaded[0], str):
        raise RegistryError(
            f"load() must return {shape} with name a string, got {_what(loaded[0])}"
        )
    if size == 3:
        return loaded[0], loaded[1], loaded[2]
    return loaded[0], loaded[1], ()


def _what(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__}"
    return type(value).__name__


_default: PluginRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> PluginRegistry:
    """The process-wide registry, filled from entry points on first use."""
    global _default
    with _default_lock:
        if _default is None:
            reg = PluginRegistry()
            reg.load_entry_points()
            _default = reg
        return _default
