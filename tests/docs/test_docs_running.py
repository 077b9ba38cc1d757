"""docs/running.md names only options the commands have, and their exit statuses."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from docs_kit import DOCS, run_contest

import contest.cli as contest_cli
import contest.client.cli as client_cli
from contest.client.transport import DEFAULT_ADDR
from contest.settings import DEFAULT_DB_URL, DEFAULT_LISTEN

PAGE = DOCS / "running.md"


def section(title: str) -> str:
    """The text under a ``## title`` heading, up to the next ``##`` heading."""
    text = PAGE.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def documented_options(text: str) -> set[str]:
    """The options in the first column of the section's tables."""
    options = set()
    for cell in re.findall(r"^\| ([^|]*(?:\\\|[^|]*)*) \|", text, re.MULTILINE):
        options.update(re.findall(r"`(--?[A-Za-z][a-z-]*)", cell))
    return options


def help_text(*args: str) -> str:
    if args[0] == "contestcli":
        proc = subprocess.run(
            [sys.executable, "-m", "contest.client.cli", "--help"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    else:
        proc = run_contest(*args, "--help")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize(
    ("title", "command"),
    [
        ("`contest run`", ("run",)),
        ("`contest serve`", ("serve",)),
        ("`contestcli`", ("contestcli",)),
        ("Events", ("events",)),
    ],
)
def test_documented_options_exist(title: str, command: tuple[str, ...]) -> None:
    options = documented_options(section(title))
    assert options
    usage = help_text(*command)
    missing = {o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", usage)}
    assert not missing, f"{title}: documented but not in --help: {sorted(missing)}"


def exit_statuses(text: str) -> set[int]:
    table = text[text.index("| Status | When |") :]
    return {int(s) for s in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}


def test_exit_statuses_are_the_commands() -> None:
    run = section("`contest run`")
    assert exit_statuses(run) == {
        contest_cli.EXIT_OK, contest_cli.EXIT_JOB_FAILED, contest_cli.EXIT_UNREACHABLE
    }  # fmt: skip
    cli = section("`contestcli`")
    assert exit_statuses(cli) == {
        client_cli.EXIT_OK,
        client_cli.EXIT_FAILED,
        client_cli.EXIT_UNREACHABLE,
        client_cli.EXIT_USAGE,
        client_cli.EXIT_INTERRUPTED,
    }


def test_defaults_are_the_code() -> None:
    text = PAGE.read_text()
    assert f"| `--db URL` | `{DEFAULT_DB_URL}` |" in text
    assert f"| `--listen HOST:PORT` | `{DEFAULT_LISTEN}` |" in text
    assert f"| `-a`, `--addr` | `{DEFAULT_ADDR}` |" in text
    assert f"| `-r`, `--requestor` | `{client_cli.DEFAULT_REQUESTOR}` |" in text
