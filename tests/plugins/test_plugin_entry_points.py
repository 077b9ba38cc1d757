"""The built-in target managers, fetchers and reporters are found through their entry points,
under ConTest's names, case-insensitively (as descriptors spell them in every way)."""

from __future__ import annotations

import importlib.metadata

import pytest

from contest.registry import KINDS, PluginRegistry
from contest.reporter import Reporter
from contest.targetmanager import TargetManager
from contest.testfetcher import TestFetcher

EXPECTED = {
    "targetmanagers": ("TargetList", "CSVFileTargetManager", "TargetListWithState"),
    "testfetchers": ("literal", "URI"),
    "reporters": ("TargetSuccess", "noop"),
}
BASES: dict[str, type] = {
    "targetmanagers": TargetManager,
    "testfetchers": TestFetcher,
    "reporters": Reporter,
}


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    reg = PluginRegistry()
    for kind in EXPECTED:
        for ep in importlib.metadata.entry_points(group=KINDS[kind]):
            name, factory = ep.load()()
            reg.register(kind, name, factory, source=ep.value)
    return reg


@pytest.mark.parametrize(
    ("kind", "name"), [(kind, name) for kind, names in EXPECTED.items() for name in names]
)
def test_registered_under_contest_names(registry: PluginRegistry, kind: str, name: str) -> None:
    for spelling in (name, name.lower(), name.upper()):
        plugin = registry.get(kind, spelling)
        assert plugin.name == name
        assert isinstance(plugin.factory(), BASES[kind])


def test_sample_spellings(registry: PluginRegistry) -> None:
    # as ConTest's sample descriptors write them
    assert registry.get("reporters", "Noop").name == "noop"
    assert registry.get("testfetchers", "Literal").name == "literal"
    assert registry.get("targetmanagers", "targetlist").name == "TargetList"
