"""docs/security.md names only options and commands that exist."""

from __future__ import annotations

import re

from docs_kit import DOCS, run_contest

PAGE = DOCS / "security.md"


def test_the_options_it_names_are_contest_serves() -> None:
    text = PAGE.read_text()
    named = set(re.findall(r"`(--[a-z][a-z-]*)", text))
    assert {"--auth-file", "--allow-local-exec", "--secrets-dir", "--allow-fetch-url"} <= named
    serve = run_contest("serve", "--help")
    assert serve.returncode == 0, serve.stderr
    missing = {
        o for o in named if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", serve.stdout)
    }
    missing -= {"--role", "--token"}  # contest token's and contestcli's
    assert not missing, f"named in security.md, not in contest serve --help: {sorted(missing)}"


def test_the_token_commands_it_shows_exist() -> None:
    commands = re.findall(r"^ *contest token (\w+)", PAGE.read_text(), re.MULTILINE)
    assert set(commands) == {"create", "list", "revoke"}
    for command in commands:
        proc = run_contest("token", command, "--help")
        assert proc.returncode == 0 and "--auth-file" in proc.stdout, proc.stderr
