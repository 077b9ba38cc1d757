"""What a job may make the server touch on its own machine: local programs, secret files and
variables, test files and URLs.

A job descriptor comes from whoever may submit one, and the server runs it as its own user. So
what a job can reach on the server's host is the operator's choice, made with ``contest serve``'s
flags and kept in one :class:`HostPolicy`:

* ``--allow-local-exec``: steps that run programs of the server's machine (``Cmd``,
  ``GatherCmd``, ``Exec`` local, any step declaring ``runs_local_processes``) are refused without
  it, at submission (and at resume);
* ``--secrets-dir DIR``: password, key and known_hosts files are read only from under ``DIR``
  (without it, none at all), and password variables only if named ``CONTEST_SECRET_*``;
* ``--fetch-root DIR``: files a job names for its tests or targets (the ``URI`` fetcher, the CSV
  target manager) are read only from under ``DIR`` (default: the server's working folder, where
  ConTest resolved relative paths);
* ``--allow-fetch-url PREFIX``: ``http(s)`` test documents only from these prefixes (none by
  default).

``contest run`` is the user's own process working on the user's own files: it runs under
:meth:`HostPolicy.unrestricted`.

Every read of a file a job names is capped in size, refuses what is not a regular file
(``/dev/zero``, a FIFO that would block forever) and runs in a worker thread, never on the event
loop.

The policy in force is :func:`current`: the job manager sets it (a context variable) for the
submissions it builds and the jobs it runs, and every task a job starts inherits it; outside of
those, the process-wide policy applies, which ``contest serve`` sets to its own while it runs
(:func:`serving`), so that nothing the server runs falls back to an open policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from contest.errors import ParameterError

__all__ = [
    "MAX_KNOWN_HOSTS_BYTES",
    "MAX_SECRET_BYTES",
    "SECRET_ENV_PREFIX",
    "HostAccessError",
    "HostPolicy",
    "current",
    "job_context",
    "read_capped",
    "read_secret_env",
    "read_secret_file",
    "serving",
    "using",
]

#: Password variables a server reads (``password_env``): only these, never ``HOME`` or ``PATH``.
SECRET_ENV_PREFIX = "CONTEST_SECRET_"
#: A password or a private key is a few kilobytes; anything bigger is a mistake or an attack.
MAX_SECRET_BYTES = 64 * 1024
#: known_hosts files list a whole fleet: allow more, still bounded.
MAX_KNOWN_HOSTS_BYTES = 8 * 1024 * 1024


class HostAccessError(ParameterError):
    """A job asked for something of the server's machine that the server does not allow, or a
    file it named cannot be read safely; the message names the parameter and, when a flag would
    allow it, the flag."""


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """What jobs may touch on this machine (see the module docstring).

    ``confined`` off (``contest run``, and a job manager built without a policy) allows
    everything; on (``contest serve``) it applies the directories and prefixes given.
    """

    confined: bool = False
    allow_local_exec: bool = True
    secrets_dir: Path | None = None
    fetch_root: Path | None = None
    fetch_urls: tuple[str, ...] = ()

    @classmethod
    def unrestricted(cls) -> HostPolicy:
        """The user's own process (``contest run``): local programs, any file, any URL."""
        return cls()

    @classmethod
    def server(
        cls,
        *,
        allow_local_exec: bool = False,
        secrets_dir: str | os.PathLike[str] | None = None,
        fetch_root: str | os.PathLike[str] | None = None,
        fetch_urls: tuple[str, ...] | list[str] = (),
    ) -> HostPolicy:
        """``contest serve``'s policy; the directories are resolved now (symbolic links
        included), so a later ``chdir`` or a swapped link cannot widen them."""
        root = Path(os.path.realpath(fetch_root if fetch_root else os.getcwd()))
        secrets = Path(os.path.realpath(secrets_dir)) if secrets_dir else None
        prefixes = tuple(_url_prefix(u) for u in fetch_urls)
        return cls(True, allow_local_exec, secrets, root, prefixes)

    # --- local programs ---------------------------------------------------------------------

    def check_local_exec(self, what: str) -> None:
        """Refuse ``what`` (a step, named with its label) unless local programs are allowed."""
        if not self.allow_local_exec:
            raise HostAccessError(
                f"{what} runs programs on the server's machine: refused, as this server was "
                "not started with --allow-local-exec"
            )

    # --- secrets ----------------------------------------------------------------------------

    def secret_path(self, param: str, path: str) -> Path:
        """Where the secret file ``path`` (parameter ``param``) may be read, or refuse it.

        Confined, a relative path is taken under the secrets directory and the real path
        (links resolved, ``..`` applied) must stay under it."""
        if not path:
            raise HostAccessError(f"{param}: no file given")
        if not self.confined:
            return Path(path)
        if self.secrets_dir is None:
            raise HostAccessError(
                f"{param}: this server reads no secret files (start contest serve with "
                "--secrets-dir DIR and put the file under DIR)"
            )
        return _under(self.secrets_dir, path, param, "--secrets-dir")

    def check_secret_env(self, param: str, variable: str) -> None:
        if not variable:
            raise HostAccessError(f"{param}: no variable given")
        if self.confined and not variable.startswith(SECRET_ENV_PREFIX):
            raise HostAccessError(
                f"{param}: this server reads only environment variables named "
                f"{SECRET_ENV_PREFIX}*, not {variable!r}"
            )

    # --- fetching ---------------------------------------------------------------------------

    def fetch_path(self, param: str, path: str) -> Path:
        """Where a test or target file a job names may be read, or refuse it; confined, a
        relative path is taken under the fetch root (by default the server's working folder,
        as ConTest resolves it)."""
        if not path:
            raise HostAccessError(f"{param}: no file given")
        if not self.confined:
            return Path(path)
        assert self.fetch_root is not None
        return _under(self.fetch_root, path, param, "--fetch-root")

    def check_fetch_url(self, param: str, url: str) -> None:
        """Refuse an ``http(s)`` URL that no ``--allow-fetch-url`` prefix covers."""
        if not self.confined:
            return
        if not self.fetch_urls:
            raise HostAccessError(
                f"{param}: this server fetches no URLs (start contest serve with "
                f"--allow-fetch-url PREFIX to allow {url!r})"
            )
        if not any(_url_allowed(url, prefix) for prefix in self.fetch_urls):
            raise HostAccessError(
                f"{param}: {url!r} is under none of the server's --allow-fetch-url prefixes "
                f"({', '.join(self.fetch_urls)})"
            )


def _under(root: Path, path: str, param: str, flag: str) -> Path:
    joined = os.path.join(root, path)  # an absolute path replaces the root
    real = os.path.realpath(joined)
    if os.path.commonpath([real, root]) != str(root):
        raise HostAccessError(f"{param}: {path!r} is not under the server's {flag} {str(root)!r}")
    return Path(real)


def _url_prefix(prefix: str) -> str:
    """A ``--allow-fetch-url`` prefix, checked and normalised (``ValueError`` if unusable)."""
    try:
        url = httpx.URL(prefix)
    except httpx.InvalidURL as exc:
        raise ValueError(f"--allow-fetch-url {prefix!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"--allow-fetch-url {prefix!r}: expected http(s)://HOST[:PORT][/PATH]")
    if url.userinfo or url.query or url.fragment:
        raise ValueError(f"--allow-fetch-url {prefix!r}: no user, query or fragment allowed")
    return str(url.copy_with(path=url.path or "/"))


def _url_allowed(url_text: str, prefix_text: str) -> bool:
    """Same scheme, host and port, and a path under the prefix's: ``https://h/tests`` covers
    ``https://h/tests/a.json`` and ``https://h/tests``, not ``https://h/tests-other`` nor
    ``https://h.evil.example/tests``. Dot segments are resolved before comparing (httpx does),
    and a path with an encoded dot segment is refused outright."""
    try:
        url = httpx.URL(url_text)
        prefix = httpx.URL(prefix_text)
    except httpx.InvalidURL:
        return False
    if (url.scheme, url.host, url.port) != (prefix.scheme, prefix.host, prefix.port):
        return False
    if url.userinfo:
        return False
    if "%2e" in url.raw_path.decode("ascii", "replace").lower():
        return False
    base = prefix.path
    if base.endswith("/"):
        return url.path.startswith(base) or url.path == base.rstrip("/")
    return url.path == base or url.path.startswith(base + "/")


# --- the policy in force --------------------------------------------------------------------

_process_policy = HostPolicy.unrestricted()
_current: contextvars.ContextVar[HostPolicy | None] = contextvars.ContextVar(
    "contest_host_policy", default=None
)


def current() -> HostPolicy:
    """The policy of the job (or submission) the calling task belongs to, else the process's."""
    policy = _current.get()
    return policy if policy is not None else _process_policy


@contextlib.contextmanager
def serving(policy: HostPolicy) -> Iterator[None]:
    """A server's whole life under ``policy``: the process's policy while the block runs (for
    anything no job manager scoped), and the current context's (inherited by every task and
    thread the block starts); both restored after it."""
    global _process_policy
    previous = _process_policy
    _process_policy = policy
    try:
        with using(policy):
            yield
    finally:
        _process_policy = previous


@contextlib.contextmanager
def using(policy: HostPolicy) -> Iterator[None]:
    """Run the block (and the tasks and threads it starts) under ``policy``."""
    token = _current.set(policy)
    try:
        yield
    finally:
        _current.reset(token)


def job_context(policy: HostPolicy) -> contextvars.Context:
    """A copy of the current context with ``policy`` in force: a job's task is created in it."""
    ctx = contextvars.copy_context()
    ctx.run(_current.set, policy)
    return ctx


# --- reading what a job names ---------------------------------------------------------------


def read_capped(path: str | os.PathLike[str], limit: int) -> bytes:
    """A regular file's bytes, at most ``limit`` of them; ``OSError`` (with ``strerror`` saying
    why) otherwise.

    Opened without blocking (a FIFO would wait for a writer forever) and checked before any
    read: a device (``/dev/zero``, ``/dev/urandom``) is refused, never read. Blocking: call it
    in a thread (see :func:`read_secret_file`)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes")
    return b"".join(chunks)


async def read_secret_file(param: str, path: str, *, limit: int = MAX_SECRET_BYTES) -> bytes:
    """A secret file a job names (``password_file``, ``private_key_file``, ``known_hosts``),
    if the policy in force allows it; read in a thread, at most ``limit`` bytes."""
    real = current().secret_path(param, path)
    try:
        return await asyncio.to_thread(read_capped, real, limit)
    except OSError as exc:
        raise HostAccessError(f"{param}: cannot read {path!r}: {exc.strerror or exc}") from None


def read_secret_env(param: str, variable: str) -> str:
    """A password kept in an environment variable of the server, if the policy allows it."""
    current().check_secret_env(param, variable)
    value = os.environ.get(variable)
    if value is None:
        raise HostAccessError(f"{param}: environment variable {variable!r} is not set")
    return value
