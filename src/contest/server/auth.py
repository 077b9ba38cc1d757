"""Who is asking: roles, principals, and the token file that ``contest serve --auth-file`` reads.

A token is made by ``contest token create NAME --role viewer|submitter|admin --auth-file FILE``:
32 random bytes, shown once (``ct_`` and 43 URL-safe characters), never stored. The file keeps
one JSON object per line::

    {"id": "3f2a9c1d", "name": "ci", "role": "submitter", "salt": "<32 hex>",
     "sha256": "<64 hex>", "created": "2024-05-01T12:00:00Z"}

``sha256`` is SHA-256 of the salt's bytes then the token's: a token holds 256 random bits, so
nothing can be guessed from its hash, and a slow hash (which protects guessable passwords) would
only slow every request down. Digests are compared in constant time (``hmac.compare_digest``).

Roles are ordered: a viewer reads (status, list, events, reports, the pages); a submitter also
starts jobs and stops or retries its own (the jobs whose requestor is its token's name); an
admin stops and retries any. Several tokens may share a name (to rotate one without downtime);
``contest token revoke`` takes a name (all its tokens) or an id.

The server notices a changed file within a second (``contest token create/revoke`` need no
restart); a file it cannot read or parse any more refuses every token until it is fixed.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

__all__ = [
    "ANONYMOUS",
    "PRINCIPAL_KEY",
    "AuthFileError",
    "Principal",
    "Role",
    "TokenEntry",
    "TokenFile",
    "may_control",
    "principal_of",
]

#: Where the ASGI scope carries the principal (the web pages and the APIs read it there).
PRINCIPAL_KEY = "contest.principal"
TOKEN_PREFIX = "ct_"
#: A token's name becomes the requestor of its jobs: ConTest's 32-byte limit, no blanks or
#: control characters, nothing a log or a page could misread.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,31}")
#: How often the server looks at the token file's modification time.
RELOAD_INTERVAL = 1.0


class Role(enum.IntEnum):
    """What a principal may do; a higher role may do everything a lower one may."""

    VIEWER = 1
    SUBMITTER = 2
    ADMIN = 3

    def __str__(self) -> str:
        return self.name.lower()

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}: viewer, submitter or admin") from None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from. ``authenticated`` is False only for :data:`ANONYMOUS`."""

    name: str
    role: Role
    authenticated: bool = True

    def may(self, role: Role) -> bool:
        return self.role >= role


#: The principal of every request when the server has no ``--auth-file``: ConTest's open API,
#: where the requestor is whatever the client says.
ANONYMOUS = Principal("anonymous", Role.ADMIN, authenticated=False)


def principal_of(scope: MutableMapping[str, Any]) -> Principal:
    """The principal the access guard put in the scope (anonymous if there is no guard)."""
    principal = scope.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else ANONYMOUS


def may_control(principal: Principal, requestor: str) -> bool:
    """Whether ``principal`` may stop or retry a job requested by ``requestor``."""
    if principal.may(Role.ADMIN):
        return True
    return principal.may(Role.SUBMITTER) and principal.name == requestor


class AuthFileError(Exception):
    """The token file cannot be read, parsed or written; the message says which and why."""


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One line of the token file: a token's hash, never the token."""

    id: str
    name: str
    role: Role
    salt: str
    sha256: str
    created: str

    def matches(self, token: str) -> bool:
        digest = _digest(self.salt, token)
        return hmac.compare_digest(digest, self.sha256)

    def to_line(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "name": self.name,
                "role": str(self.role),
                "salt": self.salt,
                "sha256": self.sha256,
                "created": self.created,
            },
            separators=(", ", ": "),
        )

    @classmethod
    def from_obj(cls, obj: Any) -> TokenEntry:
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        fields = ("id", "name", "role", "salt", "sha256", "created")
        missing = [f for f in fields if not isinstance(obj.get(f), str)]
        if missing:
            raise ValueError(f"missing or not a string: {', '.join(missing)}")
        if not NAME_RE.fullmatch(obj["name"]):
            raise ValueError(f"bad name {obj['name']!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", obj["sha256"]):
            raise ValueError("sha256 is not 64 hex digits")
        return cls(
            obj["id"], obj["name"], Role.parse(obj["role"]), obj["salt"], obj["sha256"],
            obj["created"],
        )  # fmt: skip


def _digest(salt: str, token: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + token.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ValueError(
            f"token name {name!r}: 1 to 32 characters, letters, digits and . _ @ - (it becomes "
            "the requestor of the jobs started with the token)"
        )
    return name


class TokenFile:
    """The token file: written by ``contest token``, read (and re-read when changed) by the
    server."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._entries: list[TokenEntry] = []
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._broken: str | None = None

    # --- reading ----------------------------------------------------------------------------

    def entries(self) -> list[TokenEntry]:
        """Every entry; ``AuthFileError`` naming the line that is wrong. A missing file has
        none (``token create`` makes it)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AuthFileError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        return _parse(text, self.path)

    def load(self) -> None:
        """Read the file now (the server's start: a file that is wrong stops it)."""
        stamp = self._stat()
        if stamp is None:
            raise AuthFileError(
                f"{self.path}: no such file (create a token first: contest token create NAME "
                f"--role admin --auth-file {self.path})"
            )
        self._entries = self.entries()
        self._stamp = stamp
        self._checked = time.monotonic()
        self._broken = None

    def refresh(self) -> None:
        """Re-read the file if it changed since the last look (at most once a second).
        Blocking (a stat, sometimes a read): the guard calls it in a thread."""
        now = time.monotonic()
        if now - self._checked < RELOAD_INTERVAL:
            return
        self._checked = now
        stamp = self._stat()
        if stamp == self._stamp:
            return
        try:
            if stamp is None:
                raise AuthFileError(f"{self.path}: the file is gone")
            entries = self.entries()
        except AuthFileError as exc:
            if self._broken != str(exc):
                log.error("token file unusable, refusing every token until fixed: %s", exc)
            self._broken = str(exc)
            self._entries = []
            self._stamp = stamp
            return
        if self._broken is not None:
            log.warning("token file %s is usable again", self.path)
        self._broken = None
        self._entries = entries
        self._stamp = stamp
        log.info("token file %s reloaded: %d token(s)", self.path, len(entries))

    def needs_refresh(self) -> bool:
        return time.monotonic() - self._checked >= RELOAD_INTERVAL

    def verify(self, token: str) -> Principal | None:
        """The principal of ``token``, or None. Every entry is compared (no early exit that
        would tell, by its timing, how far down the file a token is)."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        found: TokenEntry | None = None
        for entry in self._entries:
            if entry.matches(token) and found is None:
                found = entry
        return Principal(found.name, found.role) if found is not None else None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError:
            return (-1, -1, -1)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    # --- writing (contest token) ------------------------------------------------------------

    def create(self, name: str, role: Role) -> tuple[TokenEntry, str]:
        """A new token for ``name``: its entry is appended to the file (made, mode 0600, if
        missing); the token itself is returned, to be shown once."""
        check_name(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        entry = TokenEntry(
            id=secrets.token_hex(4),
            name=name,
            role=role,
            salt=salt,
            sha256=_digest(salt, token),
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        with self._locked("a") as f:
            f.write(entry.to_line() + "\n")
        return entry, token

    def revoke(self, name_or_id: str) -> list[TokenEntry]:
        """Remove every token of that name, or the one with that id; the removed entries."""
        with self._locked("r+") as f:
            entries = _parse(f.read(), self.path)
            gone = [e for e in entries if name_or_id in (e.name, e.id)]
            if gone:
                kept = [e for e in entries if e not in gone]
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.writelines(e.to_line() + "\n" for e in kept)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)  # readers see the old file or the new one, whole
        return gone

    @contextlib.contextmanager
    def _locked(self, mode: str) -> Iterator[IO[str]]:
        """The file opened and exclusively locked; reopened if another writer replaced it
        while we waited for the lock (``revoke`` writes a new file)."""
        while True:
            try:
                flags = os.O_CREAT | (os.O_APPEND | os.O_WRONLY if mode == "a" else os.O_RDWR)
                fd = os.open(self.path, flags, 0o600)
            except OSError as exc:
                raise AuthFileError(f"cannot open {self.path}: {exc.strerror or exc}") from None
            f = os.fdopen(fd, mode, encoding="utf-8")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    yield f
                    return
            finally:
                f.close()


def _parse(text: str, path: Path) -> list[TokenEntry]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            out.append(TokenEntry.from_obj(json.loads(line)))
        except ValueError as exc:
            raise AuthFileError(f"{path}, line {number}: {exc}") from None
    return out
