"""docs/deployment.md names only options, verbs and routes that exist, and its defaults are the
code's."""

from __future__ import annotations

import re

from docs_kit import DOCS, run_contest

from contest.client.cli import VERBS
from contest.golang.time import format_duration
from contest.server.openapi import document
from contest.settings import DEFAULT_DB_RETRY, DEFAULT_JOB_LEASE

PAGE = DOCS / "deployment.md"


def test_the_options_it_names_are_contest_serves() -> None:
    text = PAGE.read_text()
    named = set(re.findall(r"`(--[a-z][a-z-]*)", text)) - {"--json"}  # contestcli's
    assert {"--server-id", "--job-lease", "--db"} <= named
    serve = run_contest("serve", "--help")
    assert serve.returncode == 0, serve.stderr
    missing = {
        o for o in named if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", serve.stdout)
    }
    assert not missing, f"named in deployment.md, not in contest serve --help: {sorted(missing)}"


def test_the_verb_route_and_defaults_it_names_exist() -> None:
    text = PAGE.read_text()
    assert "servers" in VERBS and "contestcli servers" in text
    assert "/api/v1/servers" in document()["paths"] and "GET /api/v1/servers" in text
    assert f"| `--job-lease D` | `{format_duration(DEFAULT_JOB_LEASE)}` |" in text
    assert f"| `--db-retry D` | `{format_duration(DEFAULT_DB_RETRY)}` |" in text
    assert "contest_server_heartbeat_age_seconds" in text
