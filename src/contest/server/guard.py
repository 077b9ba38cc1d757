"""The access guard in front of every request: host and origin checks, authentication, roles,
and the browser login.

In order, for every HTTP request:

1. **Host.** A browser sends the name it used in ``Host``. A page of another site that
   rebinds its own name to this server's address (DNS rebinding) therefore shows that foreign
   name: refused. Accepted: the server's names (``localhost``, the machine's host name and FQDN,
   the ``--listen`` host, every ``--public-url`` host), a loopback address, or the address the
   connection came in on (an IP address cannot be rebound). Any port is accepted: DNS
   rebinding is about names, and a proxy in front may use another port.
2. **Origin.** A request that may change something (any method but GET, HEAD, OPTIONS) from a
   browser page of another site carries that site's ``Origin`` (or ``Sec-Fetch-Site:
   cross-site``): refused. A browser request authenticated by the login cookie must carry its
   ``Origin`` for such methods (ConTest's Go client and ``contestcli`` send a bearer token and
   no ``Origin``).
3. **Who.** With a token file, ``Authorization: Bearer TOKEN`` or the cookie set by ``/login``
   names the principal; missing or wrong: 401. Without one (loopback, ConTest's open API), every
   request is the anonymous admin.
4. **May they.** GET/HEAD/OPTIONS and the form API's reads (``/status``, ``/list``,
   ``/version``, POSTed as ConTest does) need a viewer; anything else a submitter: 403 below.
   Stopping and retrying another principal's job (admins only) is checked by the APIs, which
   know whose job it is (see :func:`contest.server.auth.may_control`).

Refusals use the surface's own shape: ``{"error": ...}`` JSON under ``/api/`` (and
``/openapi.json``, ``/healthz``, ``/metrics``), ConTest's ``{"Msg": ...}`` for the form API,
and a browser asking for a page without being logged in is sent to ``/login``.

``/login`` (GET: a form; POST: a token) sets an ``HttpOnly``, ``SameSite=Strict`` cookie
(``Secure`` under TLS) holding the token; ``POST /logout`` clears it. ``/healthz`` answers
without a token, for probes and load balancers.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import logging
import socket
import urllib.parse
from dataclasses import dataclass, field

from contest.golang import json as gojson
from contest.server._asgi import BodyTooLarge, Receive, Scope, Send, read_body
from contest.server.auth import ANONYMOUS, PRINCIPAL_KEY, Principal, Role, TokenFile

log = logging.getLogger(__name__)

COOKIE = "contest_token"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
OPEN_PATHS = frozenset({"/healthz"})
JSON_PREFIXES = ("/api/",)
JSON_PATHS = frozenset({"/api", "/openapi.json", "/healthz", "/metrics"})
#: ConTest's form verbs that only read; POST is how ConTest asks for them.
FORM_READS = frozenset({"/status", "/list", "/version"})
FORM_VERBS = frozenset({"/start", "/stop", "/retry", *FORM_READS})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_LOGIN_BODY = 16 * 1024


@dataclass(frozen=True)
class Access:
    """How the server admits requests (built by ``contest serve`` from its flags).

    ``tokens`` None is the open API (anonymous admin). ``own_names`` are the host names
    (lowercase, no trailing dot) a ``Host`` may carry besides IP addresses of this server;
    ``public_origins`` (``https://contest.example.org``) are origins of the server as users
    reach it through a proxy. ``tls``: the cookie is ``Secure``.
    """

    tokens: TokenFile | None = None
    own_names: frozenset[str] = frozenset()
    public_origins: frozenset[str] = frozenset()
    tls: bool = False

    @classmethod
    def for_server(
        cls,
        *,
        tokens: TokenFile | None,
        listen_host: str,
        public_urls: tuple[str, ...] | list[str] = (),
        tls: bool = False,
    ) -> Access:
        names = {"localhost", socket.gethostname(), socket.getfqdn()}
        if listen_host and not _is_ip(listen_host):
            names.add(listen_host)
        origins = set()
        for url in public_urls:
            origin = _origin_of(url)
            if origin is None:
                raise ValueError(f"--public-url {url!r}: expected http(s)://HOST[:PORT][/PATH]")
            origins.add(origin)
            names.add(origin[1])
        return cls(
            tokens=tokens,
            own_names=frozenset(_fold_host(n) for n in names if n),
            public_origins=frozenset(_origin_text(o) for o in origins),
            tls=tls,
        )


@dataclass
class Guard:
    """Admits or refuses each request before any routing (see the module docstring).
    ``access`` None (an app built in-process by tests or a library user) admits everything
    as the anonymous admin."""

    access: Access | None
    _refreshing: asyncio.Task[None] | None = field(default=None, init=False)

    async def admit(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """True with ``scope`` carrying the principal: route the request. False: the guard
        has answered it (a refusal, or the login page)."""
        access = self.access
        if access is None:  # keeps a principal an outer layer put there (tests do)
            scope.setdefault(PRINCIPAL_KEY, ANONYMOUS)
            return True
        headers = _headers(scope)
        method: str = scope.get("method", "GET")
        path: str = scope.get("path", "/")
        if not self._own_host(access, headers.get("host"), scope):
            await _refuse(send, scope, 403, "this server does not answer to that host name")
            return False
        unsafe = method not in SAFE_METHODS
        if unsafe and not self._same_origin(access, headers, scope):
            await _refuse(send, scope, 403, "cross-origin request refused")
            return False
        if path in (LOGIN_PATH, LOGOUT_PATH):
            await self._login(access, scope, receive, send, headers)
            return False
        principal, by_cookie = await self._authenticate(access, headers)
        if principal is None:
            if path in OPEN_PATHS and method in SAFE_METHODS:
                scope[PRINCIPAL_KEY] = Principal("anonymous", Role.VIEWER, authenticated=False)
                return True
            if method in ("GET", "HEAD") and _wants_html(headers) and not _is_json_path(path):
                query = scope.get("query_string", b"").decode("latin-1")
                target = path + (f"?{query}" if query else "")
                await _redirect(send, f"{LOGIN_PATH}?{urllib.parse.urlencode({'next': target})}")
                return False
            why = "a token is required" if "authorization" not in headers else "invalid token"
            await _refuse(send, scope, 401, f"authentication required: {why}")
            return False
        if unsafe and by_cookie and "origin" not in headers:
            if headers.get("sec-fetch-site") != "same-origin":
                await _refuse(send, scope, 403, "a request with the login cookie needs Origin")
                return False
        needed = required_role(method, path)
        if not principal.may(needed):
            await _refuse(
                send, scope, 403, f"{principal.name} is a {principal.role}: this needs a {needed}"
            )
            return False
        scope[PRINCIPAL_KEY] = principal
        return True

    # --- checks -----------------------------------------------------------------------------

    @staticmethod
    def _own_host(access: Access, host: str | None, scope: Scope) -> bool:
        if host is None:
            return True  # HTTP/1.0 without Host: no browser sends that
        name = _fold_host(_host_of(host))
        if not name:
            return False
        if _is_ip(name):
            address = ipaddress.ip_address(name)
            if address.is_loopback:
                return True
            server = scope.get("server")
            local = server[0] if server else None
            return local is not None and _same_ip(address, local)
        return name in access.own_names

    @staticmethod
    def _same_origin(access: Access, headers: dict[str, str], scope: Scope) -> bool:
        site = headers.get("sec-fetch-site")
        if site in ("cross-site", "same-site"):
            return False
        origin = headers.get("origin")
        if origin is None:
            return True
        parsed = _origin_of(origin)
        if parsed is None:
            return False  # "null" (a sandboxed page, a file), or garbage
        if _origin_text(parsed) in access.public_origins:
            return True
        host = headers.get("host")
        if host is None:
            return False
        scheme = scope.get("scheme", "http")
        own = _origin_of(f"{scheme}://{host}")
        return own is not None and own == parsed

    async def _authenticate(
        self, access: Access, headers: dict[str, str]
    ) -> tuple[Principal | None, bool]:
        tokens = access.tokens
        if tokens is None:
            return ANONYMOUS, False
        await self._refresh(tokens)
        auth = headers.get("authorization")
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer":
                return None, False
            return tokens.verify(token.strip()), False
        token = _cookie(headers.get("cookie", ""), COOKIE)
        if token:
            return tokens.verify(token), True
        return None, False

    async def _refresh(self, tokens: TokenFile) -> None:
        """Look at the token file at most once a second, in a thread; concurrent requests
        wait for the same look."""
        if not tokens.needs_refresh():
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(asyncio.to_thread(tokens.refresh))
        await asyncio.shield(self._refreshing)

    # --- the login page ---------------------------------------------------------------------

    async def _login(
        self,
        access: Access,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
    ) -> None:
        method = scope.get("method", "GET")
        path = scope.get("path")
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        next_path = _safe_next(query.get("next", ["/"])[0])
        if path == LOGOUT_PATH:
            if method != "POST":
                await _respond(send, 405, "text/plain; charset=utf-8", b"use POST", [])
                return
            await _redirect(send, LOGIN_PATH, [(b"set-cookie", _cookie_header("", access, 0))])
            return
        if access.tokens is None:  # open API: nothing to log in to
            await _redirect(send, next_path)
            return
        if method in ("GET", "HEAD"):
            await _page(send, 200, _login_page(next_path, ""))
            return
        if method != "POST":
            await _respond(send, 405, "text/plain; charset=utf-8", b"use GET or POST", [])
            return
        try:
            body = await read_body(receive, MAX_LOGIN_BODY)
        except BodyTooLarge:
            body = b""
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        next_path = _safe_next(form.get("next", [next_path])[0])
        token = form.get("token", [""])[0].strip()
        await self._refresh(access.tokens)
        principal = access.tokens.verify(token) if token else None
        if principal is None:
            await _page(send, 401, _login_page(next_path, "That token is not valid."))
            return
        log.info("login of %s (%s)", principal.name, principal.role)
        await _redirect(send, next_path, [(b"set-cookie", _cookie_header(token, access, None))])


def required_role(method: str, path: str) -> Role:
    """The least role a request needs (before any question of whose job it is)."""
    if method in SAFE_METHODS or path in FORM_READS:
        return Role.VIEWER
    return Role.SUBMITTER


# --- helpers ----------------------------------------------------------------------------------


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers, names lower-case; a repeated header keeps its first value (a second
    ``Host`` or ``Origin`` cannot override the one checked)."""
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _host_of(value: str) -> str:
    """The host of a ``Host`` header or an authority (``[::1]:8080`` -> ``::1``)."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else ""
    host, sep, port = value.rpartition(":")
    if sep and ":" not in host and (port.isdigit() or port == ""):
        return host
    return value


def _fold_host(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _same_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address, local: str) -> bool:
    try:
        other = ipaddress.ip_address(local.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(other, ipaddress.IPv6Address) and other.ipv4_mapped is not None:
        other = other.ipv4_mapped
    return address == other


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin or URL, default ports filled in; None if it is not
    an http(s) origin."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, _fold_host(parts.hostname), port or _DEFAULT_PORTS[scheme]


def _origin_text(origin: tuple[str, str, int]) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}:{port}"


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return urllib.parse.unquote(value.strip().strip('"'))
    return ""


def _cookie_header(token: str, access: Access, max_age: int | None) -> bytes:
    parts = [f"{COOKIE}={urllib.parse.quote(token, safe='')}", "Path=/", "HttpOnly"]
    parts.append("SameSite=Strict")
    if access.tls:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts).encode("latin-1")


def _safe_next(target: str) -> str:
    """Where to go after logging in: a path of this server only (never ``//host``)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _wants_html(headers: dict[str, str]) -> bool:
    return "text/html" in headers.get("accept", "")


def _is_json_path(path: str) -> bool:
    return path in JSON_PATHS or path.startswith(JSON_PREFIXES)


async def _respond(
    send: Send, status: int, content_type: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, scope: Scope, status: int, message: str) -> None:
    """A refusal in the shape of the surface asked: REST JSON, or ConTest's form-API body."""
    path = scope.get("path", "/")
    extra = [(b"www-authenticate", b'Bearer realm="contest"')] if status == 401 else []
    if path in FORM_VERBS or (scope.get("method") == "POST" and not _is_json_path(path)):
        body = gojson.marshal({"Msg": message})
        await _respond(send, status, "text/plain; charset=utf-8", body, extra)
        return
    body = json.dumps({"error": message}).encode()
    await _respond(send, status, "application/json", body, extra)


async def _redirect(
    send: Send, location: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    extra = [(b"location", location.encode("latin-1", "replace")), *(headers or [])]
    await _respond(send, 303, "text/plain; charset=utf-8", b"", extra)


async def _page(send: Send, status: int, text: str) -> None:
    await _respond(send, status, "text/html; charset=utf-8", text.encode(), [])


def _login_page(next_path: str, error: str) -> str:
    problem = f'<p class="error">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>contest: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:28em;margin:4em auto}}
input[type=password]{{width:100%;box-sizing:border-box;padding:.4em}}
.error{{color:#b00}}</style></head>
<body><h1>Log in</h1>{problem}
<form method="post" action="{LOGIN_PATH}">
<input type="hidden" name="next" value="{html.escape(next_path)}">
<p><label for="token">Token (from <code>contest token create</code>)</label><br>
<input type="password" id="token" name="token" autocomplete="current-password" autofocus></p>
<p><button type="submit">Log in</button></p></form></body></html>
"""
