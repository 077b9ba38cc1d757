"""The plugin registry: every kind of plugin, found through Python entry points.

Built-in plugins register exactly as a third-party package does, through the ``contest.*``
entry-point groups, so the built-ins prove the public path works. Each entry point names a
module-level ``load`` function: test steps return ``(name, factory, events)``, the other kinds
``(name, factory)``. Names are case-insensitive and unique per kind.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
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
    """A plugin cannot be registered (unknown kind, empty or taken name, invalid event name),
    or a plugin looked up is not registered."""


@dataclass(slots=True)
class Plugin:
    kind: str
    name: str  # as the plugin spells it
    factory: Callable[..., Any]
    events: frozenset[str] = frozenset()
    source: str = ""  # where it came from, for messages

    @property
    def summary(self) -> str:
        """The first line of the plugin's docstring (its factory's, or its class's)."""
        doc = (getattr(self.factory, "__doc__", None) or "").strip()
        if not doc and not isinstance(self.factory, type):
            try:  # a factory function: the class of what it makes says what it is
                doc = (type(self.factory()).__doc__ or "").strip()
            except Exception:
                doc = ""
        return doc.splitlines()[0] if doc else ""


@dataclass
class PluginRegistry:
    _plugins: dict[str, dict[str, Plugin]] = field(default_factory=lambda: {k: {} for k in KINDS})

    def register(
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        events: Iterable[str] = (),
        source: str = "",
    ) -> Plugin:
        if kind not in KINDS:
            raise RegistryError(f"unknown plugin kind {kind!r}")
        what = _KIND_NAMES[kind]
        if not name:
            raise RegistryError(f"{what} from {source or '?'} has an empty name")
        key = name.lower()
        existing = self._plugins[kind].get(key)
        if existing is not None:
            raise RegistryError(
                f"{what}s {name} already registered (by {existing.source or existing.name}; "
                f"again by {source or name})"
            )
        evs = frozenset(events)
        for ev in evs:
            if not is_valid_event_name(ev):
                raise RegistryError(
                    f"could not register {what} {name}: event name {ev!r} does not comply with "
                    "events api (letters only, at most 32 characters)"
                )
        plugin = Plugin(kind, name, factory, evs, source)
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

    def load_entry_points(self) -> list[str]:
        """Register every plugin the installed distributions declare; returns the errors
        (one per entry point that failed; the others are still registered)."""
        errors = []
        for kind, group in KINDS.items():
            for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
                source = f"{ep.value} ({ep.dist.name if ep.dist else '?'})"
                try:
                    loaded = ep.load()()
                    if kind == "teststeps":
                        name, factory, events = loaded
                    else:
                        name, factory = loaded
                        events = ()
                    self.register(kind, name, factory, events, source)
                except Exception as exc:
                    log.error("cannot load plugin entry point %s: %s", source, exc)
                    errors.append(f"{group} {ep.name}: {exc}")
        return errors


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
