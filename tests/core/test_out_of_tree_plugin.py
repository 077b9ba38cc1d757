"""A step shipped by another distribution: written only against ``contest.teststep``, declared
through a ``contest.teststeps`` entry point, installed with pip (into a throw-away folder, not
the shared venv), found by the registry and run by the harness in a fresh interpreter."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import distkit

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "contest-hello-step"
version = "0.1.0"
description = "An out-of-tree ConTest step"

[project.entry-points."contest.teststeps"]
hello = "contest_hello_step:load"

[tool.setuptools]
py-modules = ["contest_hello_step"]
"""

MODULE = '''\
"""Hello: greets every target, with a templated text."""

from contest.teststep import (
    EventEmitter,
    ParameterError,
    StepChannels,
    StepContext,
    StepParameters,
    Target,
    TestStep,
    for_each_target,
)

NAME = "Hello"
EVENTS = ("Greeted",)


class Hello(TestStep):
    name = NAME
    events = EVENTS

    def __init__(self):
        self.validated = False

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        if params.get_one("text").is_empty():
            raise ParameterError("text: missing")
        self.validated = True

    async def run(self, ctx: StepContext, ch: StepChannels, params: StepParameters,
                  ev: EventEmitter, resume_state) -> None:
        assert self.validated
        text = params.get_one("text")

        async def greet(ctx: StepContext, target: Target) -> None:
            if target.id == "Tbad":
                raise RuntimeError("no greeting for " + target.id)
            await ev.emit("Greeted", target, {"text": text.expand(target)})

        await for_each_target(ctx, ch, greet)


def load():
    return NAME, Hello, EVENTS
'''

CHECK = """\
import asyncio, json
from contest.bundle import BundleError, new_step_bundle
from contest.registry import PluginRegistry
from contest.testing import run_steps

reg = PluginRegistry()
errors = reg.load_entry_points()
plugin = reg.test_step("HELLO")


async def main():
    try:
        await new_step_bundle(reg, "hello", "Greet", {})
        bad_params = None
    except BundleError as exc:
        bad_params = str(exc)
    bundle = await new_step_bundle(reg, "hello", "Greet", {"text": ["hi {{ .ID }}"]})
    out = await run_steps([bundle], ["T1", "Tbad"])
    return {
        "name": plugin.name,
        "source": plugin.origin,
        "events": sorted(plugin.events),
        "hello_errors": [e for e in errors if "hello" in e.lower()],
        "bad_params": bad_params,
        "error": None if out.error is None else repr(out.error),
        "targets": out.result.targets if out.result else None,
        "T1": out.events(target="T1"),
    }

print(json.dumps(asyncio.run(main())))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("oot")
    site = distkit.install(
        root, "src", {"pyproject.toml": PYPROJECT, "contest_hello_step.py": MODULE}
    )
    assert list(site.glob("contest_hello_step-*.dist-info")), list(site.iterdir())
    try:
        yield site
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_python(code: str, site: Path | None) -> subprocess.CompletedProcess[str]:
    return distkit.run(["-c", code], site, timeout=60)


def test_out_of_tree_step_is_found_and_runs(installed: Path) -> None:
    proc = run_python(CHECK, installed)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["name"] == "Hello"
    assert "contest_hello_step:load" in got["source"]
    assert "contest-hello-step" in got["source"]
    assert got["events"] == ["Greeted"]
    assert got["hello_errors"] == []
    assert got["bad_params"] == "could not validate parameters for test step hello: text: missing"
    assert got["error"] is None
    assert got["targets"] == {"T1": None, "Tbad": "no greeting for Tbad"}
    assert got["T1"] == [
        ["Greet", "T1", "TargetIn", None],
        ["Greet", "T1", "Greeted", {"text": "hi T1"}],
        ["Greet", "T1", "TargetOut", None],
    ]


def test_without_the_distribution_the_step_is_unknown() -> None:
    code = textwrap.dedent("""\
        from contest.registry import PluginRegistry
        reg = PluginRegistry()
        reg.load_entry_points()
        print(reg.find("teststeps", "hello") is None)
    """)
    proc = run_python(code, None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
