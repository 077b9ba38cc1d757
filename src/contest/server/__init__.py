"""The contest server: ConTest's HTTP API (byte-compatible), a REST API beside it, and the
signal semantics of ConTest's server.

* :func:`serve` runs ``contest serve`` (see :mod:`contest.server.lifecycle`);
* :func:`create_app` builds the ASGI application over a job manager (tests use it in-process).

Both are imported on first use, so that importing this package does not pay for loading uvicorn
and Starlette.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contest.server.app import ContestApp
    from contest.server.guard import Access
    from contest.settings import ServeSettings

__all__ = ["create_app", "serve"]


def serve(settings: ServeSettings) -> int:
    """Run ``contest serve`` with ``settings``; the process exit status."""
    from contest.server.lifecycle import serve as _serve

    return _serve(settings)


def create_app(
    jobs: Any, server_id: str, *, process_timeout: float = 3.0, access: Access | None = None
) -> ContestApp:
    """The ASGI application (form API + REST API) over a job manager; ``access`` (see
    :mod:`contest.server.guard`) checks hosts, origins, tokens and roles."""
    from contest.server.app import create_app as _create_app

    return _create_app(jobs, server_id, process_timeout=process_timeout, access=access)
