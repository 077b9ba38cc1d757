"""docs/plugin-guide.md cannot drift from the code.

Every code block of the guide carries a marker saying what it is: a full example (exactly the
content of its file in docs/examples/), an excerpt (consecutive lines of the named file), a sketch
(Python that must at least parse), the distribution's ``pyproject.toml`` or a job descriptor (both
used by test_docs_distribution.py), or a fragment. The step errors table is checked against the
runner's error classes, and every relative link against the tree.
"""

from __future__ import annotations

import ast
import re
import textwrap
import tomllib

import pytest
import yaml
from docs_kit import DOCS, ROOT, Block, blocks, is_excerpt

from contest import errors

GUIDE = DOCS / "plugin-guide.md"
EXAMPLES = DOCS / "examples"
KINDS = {
    "example",
    "excerpt",
    "sketch",
    "file",
    "descriptor",
    "fragment",
    "test-config",
    "package-test",
}


def guide_blocks() -> list[Block]:
    return blocks(GUIDE)


def test_every_block_says_what_it_is() -> None:
    for b in guide_blocks():
        assert b.kind in KINDS, f"{b.where('plugin-guide.md')}: no marker, or an unknown one"
        if b.lang == "python":
            assert b.kind in {"example", "excerpt", "sketch", "package-test"}, b.where(
                "plugin-guide.md"
            )


def test_full_examples_are_exactly_their_files() -> None:
    seen = set()
    for b in guide_blocks():
        if b.kind != "example":
            continue
        assert b.arg, b.where("plugin-guide.md")
        path = ROOT / b.arg
        assert path.parent == EXAMPLES, f"{b.arg}: full examples live in docs/examples/"
        assert b.text == path.read_text(), f"{b.where('plugin-guide.md')} differs from {b.arg}"
        seen.add(path.name)
    # and every example module is shown in full
    assert seen == {p.name for p in EXAMPLES.glob("*.py")}


def test_excerpts_are_taken_from_their_files() -> None:
    excerpts = [b for b in guide_blocks() if b.kind == "excerpt"]
    assert excerpts
    for b in excerpts:
        assert b.arg, b.where("plugin-guide.md")
        source = (ROOT / b.arg).read_text()
        assert is_excerpt(b.text, source), f"{b.where('plugin-guide.md')} is not in {b.arg}"


def test_sketches_are_python() -> None:
    for b in guide_blocks():
        if b.kind == "sketch":
            ast.parse(textwrap.dedent(b.text), filename=b.where("plugin-guide.md"))


def test_the_pyproject_declares_the_hello_entry_point() -> None:
    (toml,) = [b for b in guide_blocks() if b.kind == "file" and b.arg == "pyproject.toml"]
    data = tomllib.loads(toml.text)
    assert data["project"]["entry-points"]["contest.teststeps"] == {"hello": "hello_step:load"}
    assert data["tool"]["setuptools"]["py-modules"] == ["hello_step"]


def test_the_descriptor_uses_the_hello_step() -> None:
    (job,) = [b for b in guide_blocks() if b.kind == "descriptor"]
    doc = yaml.safe_load(job.text)
    steps = doc["TestDescriptors"][0]["TestFetcherFetchParameters"]["Steps"]
    assert [s["name"] for s in steps] == ["hello"]


# The step errors table: each message as the runner words it, with the table's placeholders.
ERRORS = [
    errors.StepReturnedUnexpectedResult("<label>", "<id>"),
    errors.StepReturnedDuplicateResult("<label>", "<id>"),
    errors.StepReturnedNoTarget("<label>"),
    errors.StepLostTargets("<label>", ["<id>", "..."]),
    errors.StepReturnedEarly("<label>", ["<id>", "..."]),
    errors.StepClosedChannels("<label>"),
    errors.StepCrashed("<label>", RuntimeError("<message>")),
    errors.StepPausedWithoutRequest("<label>"),
    errors.StepCancelledWithoutRequest("<label>"),
    errors.StepsNeverReturned(["<label>", "..."]),
]


def test_the_step_errors_table_quotes_the_runner() -> None:
    text = GUIDE.read_text()
    rows = re.findall(r"^\| [^|]+ \| `(test step [^`]+)` \|$", text, re.MULTILINE)
    assert rows == [str(e) for e in ERRORS]


@pytest.mark.parametrize("doc", sorted(p.name for p in DOCS.glob("*.md")))
def test_relative_links_resolve(doc: str) -> None:
    text = (DOCS / doc).read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (DOCS / target).exists(), f"{doc}: broken link {target}"
