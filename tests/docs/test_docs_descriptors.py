"""docs/job-descriptors.md: every descriptor on the page goes through ``contest validate``.

Blocks marked ``valid: NAME`` must pass, ``invalid: NAME`` must not, and a block marked
``output: NAME`` is exactly what ``contest validate NAME`` prints. ``file: NAME`` blocks are the
files the descriptors read (a CSV file, a fetcher's steps). All run in one ``contest validate``,
in a temp folder holding those files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from docs_kit import DOCS, Block, blocks, run_contest, validate_output

PAGE = DOCS / "job-descriptors.md"
KINDS = {"valid", "invalid", "output", "file", "fragment"}


@pytest.fixture(scope="module")
def page() -> list[Block]:
    return blocks(PAGE)


@pytest.fixture(scope="module")
def validated(page: list[Block], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("descriptors")
    names = []
    for b in page:
        if b.kind in {"valid", "invalid", "file"}:
            assert b.arg, b.where(PAGE.name)
            path = folder / b.arg
            path.parent.mkdir(parents=True, exist_ok=True)
            assert not path.exists(), f"{b.arg} is written twice"
            path.write_text(b.text)
            if b.kind != "file":
                names.append(b.arg)
    proc = run_contest("validate", *names, cwd=folder)
    assert proc.returncode == (1 if any(b.kind == "invalid" for b in page) else 0), proc.stderr
    out = validate_output(proc.stdout)
    assert sorted(out) == sorted(names), proc.stdout
    return out


def test_every_block_says_what_it_is(page: list[Block]) -> None:
    for b in page:
        assert b.kind in KINDS, f"{b.where(PAGE.name)}: no marker, or an unknown one"


def test_the_page_has_descriptors_of_both_kinds(page: list[Block]) -> None:
    kinds = [b.kind for b in page]
    assert kinds.count("valid") >= 3 and "invalid" in kinds
    assert {b.lang for b in page if b.kind == "valid"} == {"json", "yaml"}


def test_valid_descriptors_pass(page: list[Block], validated: dict[str, str]) -> None:
    for b in page:
        if b.kind == "valid":
            assert validated[b.arg or ""] == f"{b.arg}: ok\n", b.where(PAGE.name)


def test_invalid_descriptors_fail_as_shown(page: list[Block], validated: dict[str, str]) -> None:
    shown = {b.arg: b.text for b in page if b.kind == "output"}
    for b in page:
        if b.kind == "invalid":
            assert b.arg is not None and b.arg in shown, f"{b.where(PAGE.name)}: no output shown"
            assert validated[b.arg] == shown[b.arg]
    assert set(shown) <= {b.arg for b in page if b.kind == "invalid"}


def test_fragments_and_files_parse(page: list[Block]) -> None:
    for b in page:
        if b.kind in {"fragment", "file"} and b.lang == "json":
            json.loads(b.text)
        if b.lang == "yaml":
            yaml.safe_load(b.text)


def test_descriptor_files_parse_as_their_format(page: list[Block]) -> None:
    for b in page:
        if b.kind in {"valid", "invalid"}:
            assert Path(b.arg or "").suffix.lstrip(".") == b.lang, b.where(PAGE.name)
