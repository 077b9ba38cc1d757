"""Plugin distributions made in a test, as a plugin author ships one: written to a folder, built
and installed with pip into a throw-away ``--target`` folder (never the shared venv), and used by
fresh interpreters that get that folder on their ``PYTHONPATH``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def install(root: Path, name: str, files: Mapping[str, str]) -> Path:
    """Write ``files`` (a ``pyproject.toml`` and modules) into ``root/name``, install it into
    ``root/site``, and return that folder."""
    src = root / name
    src.mkdir(parents=True)
    for rel, text in files.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    site = root / "site"
    proc = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
            "--no-index", "--no-cache-dir", "--disable-pip-version-check", "-q",
            "--target", str(site), str(src),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return site


def environment(site: Path | None) -> dict[str, str]:
    """This process's environment, with ``site`` (only) on PYTHONPATH."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return env


def run(
    args: list[str],
    site: Path | None,
    *,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in a fresh interpreter that sees the distributions in ``site``."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=environment(site),
    )
