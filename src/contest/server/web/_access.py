"""Who is asking, as far as the pages care: may they stop and retry this job?

The access guard (:mod:`contest.server.guard`) puts the principal in the ASGI scope; the pages
read only that, through :mod:`contest.server.auth`: a submitter may stop and retry its own jobs,
an admin anyone's, a viewer none. A request without one comes from an app built without the
guard (in-process tests): its caller may do anything, as with ConTest's open API.
"""

from __future__ import annotations

from starlette.requests import Request

from contest.server.auth import Role, may_control, principal_of

#: the requestor of a job started from a page on a server without tokens
WEB_REQUESTOR = "contest-web"


def may_change(request: Request) -> bool:
    """True if the caller's role may stop and retry jobs at all (its own, at least)."""
    return principal_of(request.scope).may(Role.SUBMITTER)


def may_change_job(request: Request, requestor: str) -> bool:
    """True if the caller may stop and retry the job ``requestor`` started."""
    return may_control(principal_of(request.scope), requestor)


def requestor(request: Request) -> str:
    """The requestor of a job the caller starts from a page: the token's name, when there are
    tokens (the guard checked it), else the pages' own name."""
    principal = principal_of(request.scope)
    return principal.name if principal.authenticated else WEB_REQUESTOR
