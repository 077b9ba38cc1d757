"""Where the project's shared test data lives (ConTest's sample descriptors).

The repository sits beside a ``shared/`` folder (in development and in CI alike); the
``CONTEST_SHARED_DIR`` environment variable points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path:
    env = os.environ.get("CONTEST_SHARED_DIR")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "contest-samples").is_dir():
            return parent / "shared"
    raise FileNotFoundError(
        "no shared/ folder with contest-samples/ above the package; set CONTEST_SHARED_DIR"
    )


def samples_dir() -> Path:
    """ConTest's own sample descriptors (``shared/contest-samples``)."""
    return shared_dir() / "contest-samples"
