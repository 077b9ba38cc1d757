"""docs/steps.md is the reference of the built-in plugins, generated from their declarations
(``contest plugins --markdown``): it fails here the moment a declaration changes and the file was
not regenerated. And the reference says what a user needs: every built-in plugin, every declared
parameter with its documentation, each step's events and pause support."""

from __future__ import annotations

import importlib.metadata

from docs_kit import DOCS, run_contest

from contest import reference
from contest.paramspec import declared
from contest.registry import BUILTIN_DISTRIBUTION, KINDS, PluginRegistry

STEPS_MD = DOCS / "steps.md"


def builtins() -> PluginRegistry:
    """The plugins of contest-py's own distribution only (the test venv also has the fixture
    distribution, which docs/steps.md must not list)."""
    reg = PluginRegistry()
    errors = reg.load_entry_points(
        importlib.metadata.distribution(BUILTIN_DISTRIBUTION).entry_points
    )
    assert errors == []
    return reg


def test_steps_md_is_generated_from_the_declarations() -> None:
    want = reference.markdown(builtins())
    assert STEPS_MD.read_text() == want, (
        "docs/steps.md is stale: regenerate it with `contest plugins --markdown > docs/steps.md`"
    )


def test_the_command_writes_the_same_file() -> None:
    proc = run_contest("plugins", "--markdown")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == STEPS_MD.read_text()


def test_every_builtin_plugin_and_declared_parameter_is_in_it() -> None:
    text = STEPS_MD.read_text()
    reg = builtins()
    for kind in KINDS:
        for plugin in reg.plugins(kind):
            assert f"\n### {plugin.name}\n" in text, plugin.name
            for _title, _key, decl in reference.parameter_sets(plugin):
                for row in reference.rows(decl) if decl is not None else ():
                    assert f"| `{row.name}` |" in text, (plugin.name, row.name)
    # every built-in step declares its parameters, and documents each one
    for plugin in reg.plugins("teststeps"):
        decl = declared(plugin.cls)
        assert decl is not None, f"{plugin.name} declares no parameters"
        for row in reference.rows(decl):
            assert row.doc or "." in row.name, (plugin.name, row.name)
    for kind in ("targetmanagers", "testfetchers", "reporters"):
        for plugin in reg.plugins(kind):
            for title, _key, decl in reference.parameter_sets(plugin):
                assert decl is not None, f"{plugin.name}: {title} not declared"


def test_the_fixture_steps_are_not_built_in() -> None:
    names = {p.name for kind in KINDS for p in builtins().plugins(kind)}
    for fixture in ("Crash", "Panic", "Hanging", "NoReturn", "BadTargets", "Noop", "Test",
                    "TargetListWithState"):  # fmt: skip
        assert fixture not in names
    assert "### Crash" not in STEPS_MD.read_text()
