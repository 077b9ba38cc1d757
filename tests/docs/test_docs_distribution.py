"""The guide's own example, end to end, as a plugin author would ship it.

A distribution is built in a temp folder from docs/examples/hello_step.py and the
``pyproject.toml`` the guide shows, installed with pip into a throw-away ``--target`` folder (not
the shared venv), and then, in fresh interpreters with that folder on PYTHONPATH: ``contest
plugins`` lists the step, ``contest validate`` accepts the guide's job descriptor and ``contest
run`` runs it to success. The events stored in the run's database are the step's.

(tests/core/test_out_of_tree_plugin.py checks the registry and harness with a step of its own;
this one checks the guide's words and the command line.)
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from docs_kit import DOCS, blocks, run_contest

import distkit
from contest.events import TestEventQuery
from contest.storage import open_storage

GUIDE = DOCS / "plugin-guide.md"
HELLO = DOCS / "examples" / "hello_step.py"


def _guide_block(kind: str) -> tuple[str, str]:
    (b,) = [b for b in blocks(GUIDE) if b.kind == kind]
    assert b.arg is not None
    return b.arg, b.text


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("contest-hello")
    name, pyproject = _guide_block("file")
    assert name == "pyproject.toml"
    site = distkit.install(
        root, "contest-hello", {"pyproject.toml": pyproject, "hello_step.py": HELLO.read_text()}
    )
    assert (site / "hello_step.py").exists()
    assert list(site.glob("contest_hello-0.1.0.dist-info"))
    try:
        yield site
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_contest_plugins_lists_the_step(installed: Path) -> None:
    proc = run_contest("plugins", pythonpath=installed)
    assert proc.returncode == 0, proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines()]
    hello = [line for line in lines if line[:1] == ["Hello"]]
    assert hello == [
        ["Hello", "Greets", "every", "target", "with", "a", "templated", "text.", "[events:",
         "Greeted]"]
    ]  # fmt: skip
    assert "hello" not in proc.stderr.lower()  # no registration error


def test_the_guide_job_validates_and_runs(installed: Path, tmp_path: Path) -> None:
    name, text = _guide_block("descriptor")
    (tmp_path / name).write_text(text)

    proc = run_contest("validate", name, cwd=tmp_path, pythonpath=installed)
    assert (proc.returncode, proc.stdout) == (0, f"{name}: ok\n"), proc.stderr

    db = tmp_path / "x.db"
    proc = run_contest(
        "run", name, "--db", f"sqlite:///{db}", "--json", cwd=tmp_path, pythonpath=installed
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # stdout: JSON progress lines (--json), then the job's summary as JSON
    summary = json.loads(proc.stdout[proc.stdout.index("{\n") :])
    assert summary["State"] == "JobStateCompleted"
    assert [(r["Reporter"], r["Success"]) for r in summary["Reports"]] == [("TargetSuccess", True)]

    async def greetings() -> list[tuple[str | None, object]]:
        store = await open_storage(f"sqlite:///{db}")
        try:
            events = await store.test_events(
                TestEventQuery(job_id=summary["JobID"], event_names=["Greeted"])
            )
        finally:
            await store.close()
        return sorted((e.target.id if e.target else None, e.payload) for e in events)

    assert asyncio.run(greetings()) == [
        ("dut1", {"text": "hi dut1 (DUT1.EXAMPLE.ORG)"}),
        ("dut2", {"text": "hi dut2 (DUT2.EXAMPLE.ORG)"}),
    ]


def test_without_the_distribution_the_job_is_refused(tmp_path: Path) -> None:
    name, text = _guide_block("descriptor")
    (tmp_path / name).write_text(text)
    proc = run_contest("validate", name, cwd=tmp_path)
    assert proc.returncode == 1
    assert 'unknown step "hello" (contest plugins lists the steps)' in proc.stdout


def test_the_packages_own_tests_pass_the_conformance_suite(installed: Path, tmp_path: Path) -> None:
    """The guide's test module, with the guide's pytest set-up, run by pytest in a fresh
    interpreter against the installed distribution: the third-party step passes every case."""
    config_name, config = _guide_block("test-config")
    test_name, test = _guide_block("package-test")
    (tmp_path / config_name).write_text(config)
    (tmp_path / test_name).write_text(test)
    proc = distkit.run(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", test_name], installed, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "8 passed" in proc.stdout, proc.stdout  # seven cases and the events test
