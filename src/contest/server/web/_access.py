"""Who is asking, as far as the pages care: may they stop and retry jobs?

The server's authentication middleware puts a principal in the ASGI scope
(``scope["contest.principal"]``, with a ``role`` among viewer < submitter < admin); the pages
read only that. A request without one comes from the open API of a server started without
authentication, which ConTest's API always is: its caller may do anything, as an admin.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

PRINCIPAL_KEY = "contest.principal"
ROLES = ("viewer", "submitter", "admin")
#: the least role that may stop or retry a job
CHANGE_ROLE = "submitter"
WEB_REQUESTOR = "contest-web"
_REQUESTOR = re.compile(r"[ -~]{1,32}")  # ConTest's requestor limit, printable ASCII


def _rank(role: Any) -> int:
    name = getattr(role, "name", role)
    if isinstance(name, str) and name.lower() in ROLES:
        return ROLES.index(name.lower())
    return 0  # a role we do not know gets the least


def may_change(request: Request) -> bool:
    """True if the caller may stop and retry jobs."""
    principal = request.scope.get(PRINCIPAL_KEY)
    if principal is None:
        return True
    return _rank(getattr(principal, "role", None)) >= ROLES.index(CHANGE_ROLE)


def requestor(request: Request) -> str:
    """The requestor of a job the caller starts from a page: their name, when it is one."""
    principal = request.scope.get(PRINCIPAL_KEY)
    name = getattr(principal, "name", None)
    if isinstance(name, str) and _REQUESTOR.fullmatch(name):
        return name
    return WEB_REQUESTOR
