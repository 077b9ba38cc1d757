"""The SSH layer shared by ``SSHCmd`` and ``Exec``: connect with a verified host key, run a command
with stdout, stderr and exit status kept apart, kill it for real, and a detached mode that
outlives a dropped connection.

Why the remote pid, and how we get it
-------------------------------------
ConTest stops a remote command by sending the SSH ``signal`` request. OpenSSH honours it only
for privilege-separated sessions, which a root login is not (its log says "session signalling
requires privilege separation"), and closing the channel does not stop a command without a
terminal either: the command keeps running on the target. So, unless a target has no POSIX shell
(``posix_shell: false``), a command is started as::

    exec /bin/sh -c 'echo <marker> $$; exec "$@"' sh <executable> <args...>

``sshd`` makes each session's shell a session leader, and ``exec`` keeps its pid, so the pid we
read from the marker line (which is removed from stdout) is the session id of everything the
command starts. Stopping it is ``pkill -KILL -s <pid>`` plus ``kill -KILL -<pid>`` over the same
connection; the ``signal`` request is sent as well, for servers where that works. If the
connection itself is lost, the command lives on for the same reason, so one new connection is
tried to kill it. The arguments are passed as separate words, so the command line means what
ConTest's shell-quoted join meant.

Detached mode
-------------
For long commands on flaky links, :class:`DetachedCommand` starts the command in its own session
on the target (``setsid``), with stdout, stderr and the exit status going to files in
``/tmp/contest-exec-<id>``, then polls those files over the connection; when the connection
drops it reconnects and carries on polling where it was. Only ``/bin/sh`` and the usual tools
(``mkdir``, ``cat``, ``wc``, ``tail``, ``head``, ``kill``, optionally ``setsid``, ``pkill``)
are needed on the target, no agent. A remote time quota is enforced on the target itself by a
watchdog in the command's session, so the command cannot outlive it even if we never come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import shlex
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from contest import hostpolicy
from contest.hostpolicy import HostAccessError
from contest.plugins.teststeps.exec_util import CLEANUP_TIMEOUT, format_seconds

DEFAULT_PORT = 22
KEEPALIVE_INTERVAL = 10.0  # SSH-level keep-alives (ConTest sent "CONT" signals every 5 s)
KEEPALIVE_COUNT_MAX = 3
OP_TIMEOUT = 30.0  # one poll or clean-up command on a live connection
MIN_POLL_INTERVAL = 0.05
START_TIMEOUT = 30.0  # a detached command that has not written its pid by then never will

OutputCallback = Callable[[bytes], Awaitable[None] | None]

# what a dropped or failed connection looks like, from asyncssh or the socket underneath
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncssh.Error,
    asyncio.TimeoutError,
    EOFError,
)


class SSHError(Exception):
    """A target-level SSH failure (connect, authenticate, transfer, lost command); the message
    becomes the target's error."""


def join_host_port(host: str, port: int) -> str:
    """Go's ``net.JoinHostPort``: IPv6 literals in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def quote_command(argv: Sequence[str]) -> str:
    """The shell-quoted command line (what ConTest sends, and what the logs show)."""
    return " ".join(shlex.quote(a) for a in argv)


def parse_public_key(text: str) -> asyncssh.SSHKey:
    """A pinned host key, as in ``known_hosts`` or ``*.pub`` (``ssh-ed25519 AAAA... [comment]``);
    a leading host pattern, as ``ssh-keyscan`` prints, is skipped."""
    words = text.split()
    if len(words) >= 3 and not words[0].startswith(("ssh-", "ecdsa-", "sk-")):
        text = " ".join(words[1:])
    try:
        return asyncssh.import_public_key(text.strip())
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(f"not an SSH public key: {exc}") from exc


@dataclass(slots=True)
class HostKeyPolicy:
    """How the server's host key is checked: pinned keys, else a known_hosts file, else the
    server user's ``~/.ssh/known_hosts``; or not at all, when explicitly asked."""

    known_hosts: str = ""
    host_keys: tuple[str, ...] = ()
    insecure: bool = False

    async def for_asyncssh(self) -> Any:
        if self.insecure:
            return None
        if self.host_keys:
            return ([parse_public_key(k) for k in self.host_keys], [], [])
        if self.known_hosts:
            # read as a secret file: under --secrets-dir on a server, capped, off the loop
            try:
                data = await hostpolicy.read_secret_file(
                    "known_hosts", self.known_hosts, limit=hostpolicy.MAX_KNOWN_HOSTS_BYTES
                )
                return asyncssh.import_known_hosts(data.decode("utf-8", "replace"))
            except HostAccessError as exc:
                raise SSHError(f"known_hosts file {self.known_hosts!r}: {exc}") from exc
            except (ValueError, asyncssh.Error) as exc:
                raise SSHError(f"known_hosts file {self.known_hosts!r} is unusable: {exc}") from exc
        return ()  # asyncssh: ~/.ssh/known_hosts, the operator's own

    def describe(self) -> str:
        if self.host_keys:
            return "the pinned host_key"
        if self.known_hosts:
            return self.known_hosts
        return "~/.ssh/known_hosts (set known_hosts, host_key or insecure_ignore_host_key)"


@dataclass(slots=True)
class SSHEndpoint:
    """Where and how to log in; every field already expanded for one target."""

    host: str
    port: int = DEFAULT_PORT
    user: str = ""
    private_key_file: str = ""
    password: str = ""
    host_key_policy: HostKeyPolicy = field(default_factory=HostKeyPolicy)
    connect_timeout: float | None = None

    @property
    def address(self) -> str:
        return join_host_port(self.host, self.port)


async def connect(ep: SSHEndpoint) -> asyncssh.SSHClientConnection:
    """Open one authenticated connection, or raise :class:`SSHError` saying why not.

    Nothing is taken from the server user's SSH set-up but the default known_hosts file: no
    ``~/.ssh/config``, no default identities, no agent; a job says how it logs in.
    """
    client_keys: list[asyncssh.SSHKey] | None = None
    if ep.private_key_file:
        try:
            # a secret file: under --secrets-dir on a server, capped, read off the loop
            key = await hostpolicy.read_secret_file("private key", ep.private_key_file)
            client_keys = [asyncssh.import_private_key(key)]
        except (HostAccessError, asyncssh.KeyImportError, ValueError) as exc:
            raise SSHError(f"cannot read private key at {ep.private_key_file}: {exc}") from exc
    known_hosts = await ep.host_key_policy.for_asyncssh()
    try:
        return await asyncssh.connect(
            ep.host,
            ep.port,
            username=ep.user or (),
            client_keys=client_keys,
            password=ep.password or None,
            known_hosts=known_hosts,
            agent_path=None,
            config=None,
            connect_timeout=ep.connect_timeout or None,
            keepalive_interval=KEEPALIVE_INTERVAL,
            keepalive_count_max=KEEPALIVE_COUNT_MAX,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise SSHError(
            f"cannot connect to SSH server {ep.address}: {exc}; checked against "
            f"{ep.host_key_policy.describe()}"
        ) from exc
    except asyncssh.PermissionDenied as exc:
        raise SSHError(
            f"cannot connect to SSH server {ep.address}: authentication failed for user "
            f"{ep.user!r}: {exc}"
        ) from exc
    except TimeoutError as exc:
        raise SSHError(
            f"cannot connect to SSH server {ep.address}: timed out after "
            f"{format_seconds(ep.connect_timeout or 0)}"
        ) from exc
    except (OSError, asyncssh.Error) as exc:
        raise SSHError(f"cannot connect to SSH server {ep.address}: {exc}") from exc


@dataclass(slots=True)
class ExitInfo:
    """How a command ended: an exit status, or the signal that killed it."""

    status: int | None
    signal: str | None = None

    def describe(self) -> str:
        if self.signal:
            return f"killed by signal {self.signal}"
        return f"exited with status {self.status}"


async def deliver(cb: OutputCallback | None, data: bytes) -> None:
    if cb is not None and data:
        pending = cb(data)
        if pending is not None:
            await pending


async def run_script(
    conn: asyncssh.SSHClientConnection, script: str, *args: str, timeout: float = OP_TIMEOUT
) -> asyncssh.SSHCompletedProcess:
    """Run a POSIX sh script on the target with literal arguments (``$1``...), bytes out."""
    command = "exec /bin/sh -c " + shlex.quote(script) + " sh " + quote_command(args)
    async with asyncio.timeout(timeout):
        return await conn.run(command, check=False, stdin=asyncssh.DEVNULL, encoding=None)


_KILL_SCRIPT = """
p=$1
pkill -KILL -s "$p" 2>/dev/null
kill -s KILL -- "-$p" 2>/dev/null
kill -s KILL "$p" 2>/dev/null
true
"""


class _MarkerFilter:
    """Takes the ``<marker> <pid>`` line out of stdout; what comes before it (a chatty login
    script) and after it is the command's."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.pid: int | None = None
        self.done = False
        self._buf = b""
        self.pid_seen = asyncio.Event()

    def feed(self, data: bytes) -> bytes:
        if self.done:
            return data
        self._buf += data
        at = self._buf.find(self.marker)
        if at < 0:
            # hold back only what could be the start of the marker
            keep = len(self.marker) + 32
            if len(self._buf) > 64 * 1024:
                out, self._buf = self._buf[:-keep], self._buf[-keep:]
                return out
            return b""
        end = self._buf.find(b"\n", at)
        if end < 0:
            return b""
        line = self._buf[at + len(self.marker) : end].strip()
        with contextlib.suppress(ValueError):
            self.pid = int(line)
        out = self._buf[:at] + self._buf[end + 1 :]
        self._buf = b""
        self.done = True
        self.pid_seen.set()
        return out

    def flush(self) -> bytes:
        out, self._buf = self._buf, b""
        self.done = True
        self.pid_seen.set()
        return out


class RemoteCommand:
    """One command on one connection: output streamed to callbacks, killable.

    :meth:`run` returns the :class:`ExitInfo`; if the task running it is cancelled, it kills the
    remote command (see the module docstring) before re-raising, within a bounded time. If the
    connection is lost, the command would live on (no terminal, so no hang-up signal): with a
    ``reconnect`` function, one new connection is tried to kill it.
    """

    def __init__(
        self,
        conn: asyncssh.SSHClientConnection,
        argv: Sequence[str],
        *,
        posix_shell: bool = True,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        reconnect: Callable[[], Awaitable[asyncssh.SSHClientConnection]] | None = None,
    ) -> None:
        self.conn = conn
        self.reconnect = reconnect
        self.argv = list(argv)
        self.posix_shell = posix_shell
        self.on_stdout = on_stdout
        self.on_stderr = on_stderr
        self.command_line = quote_command(self.argv)
        self._filter = _MarkerFilter(f"contest-pid-{uuid.uuid4().hex}".encode())
        self._proc: asyncssh.SSHClientProcess[bytes] | None = None

    @property
    def remote_pid(self) -> int | None:
        return self._filter.pid

    def _wire_command(self) -> str:
        if not self.posix_shell:
            return self.command_line
        script = f'echo {self._filter.marker.decode()} $$; exec "$@"'
        return f"exec /bin/sh -c {shlex.quote(script)} sh {self.command_line}"

    async def run(self) -> ExitInfo:
        try:
            self._proc = await self.conn.create_process(
                self._wire_command(), stdin=asyncssh.DEVNULL, encoding=None
            )
        except CONNECTION_ERRORS as exc:
            raise SSHError(f"cannot start command on the SSH server: {exc}") from exc
        if not self.posix_shell:
            self._filter.flush()
        proc = self._proc
        # The readers run on their own: if we are cancelled right after the start, they must go
        # on reading to catch the pid line that the kill needs.
        pumps = asyncio.ensure_future(
            asyncio.gather(
                self._pump(proc.stdout, self._stdout_chunk), self._pump(proc.stderr, self.on_stderr)
            )
        )
        try:
            await asyncio.shield(pumps)
            rest = self._filter.flush()
            await deliver(self.on_stdout, rest)
            await proc.wait_closed()
        except BaseException:
            await self.kill()
            pumps.cancel()
            raise
        signal = proc.exit_signal[0] if proc.exit_signal else None
        status = proc.exit_status
        if signal is None and (status is None or status < 0):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._kill_pid(), CLEANUP_TIMEOUT)
            raise SSHError("lost the SSH connection before the command ended")
        return ExitInfo(None if signal else status, signal)

    async def _stdout_chunk(self, data: bytes) -> None:
        await deliver(self.on_stdout, self._filter.feed(data))

    @staticmethod
    async def _pump(reader: asyncssh.SSHReader[bytes], cb: OutputCallback | None) -> None:
        while True:
            try:
                data = await reader.read(65536)
            except CONNECTION_ERRORS:
                return
            if not data:
                return
            await deliver(cb, data)

    async def kill(self) -> None:
        """Kill the remote command and everything in its session; bounded, never raises."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._kill(proc), CLEANUP_TIMEOUT)
        with contextlib.suppress(Exception):
            proc.close()

    async def _kill(self, proc: asyncssh.SSHClientProcess[bytes]) -> None:
        if proc.exit_status is not None or proc.exit_signal is not None:
            return
        with contextlib.suppress(Exception):
            proc.send_signal("KILL")
        if self.posix_shell and not self._filter.done:
            # the pid is the first thing the command prints: give it a moment
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._filter.pid_seen.wait(), CLEANUP_TIMEOUT / 4)
        with contextlib.suppress(Exception):
            await self._kill_pid()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait_closed(), CLEANUP_TIMEOUT / 2)

    async def _kill_pid(self) -> None:
        """Kill the remote session by pid, on our connection or, if it is gone, a new one."""
        pid = self._filter.pid
        if pid is None or pid <= 1:
            return
        try:
            await run_script(self.conn, _KILL_SCRIPT, str(pid), timeout=CLEANUP_TIMEOUT)
            return
        except CONNECTION_ERRORS:
            if self.reconnect is None:
                raise
        conn = await self.reconnect()
        try:
            await run_script(conn, _KILL_SCRIPT, str(pid), timeout=CLEANUP_TIMEOUT)
        finally:
            conn.close()


# --- detached mode ---------------------------------------------------------------------------

# $1 dir, $2 remote quota in seconds ("" = none), then the command. Prints the wrapper's pid.
_START_SCRIPT = r"""
d=$1; q=$2; shift 2
mkdir -m 700 "$d" || exit 90
cd "$d" || exit 90
s=; command -v setsid >/dev/null 2>&1 && s=setsid
$s /bin/sh -c '
echo $$ > pid.tmp && mv pid.tmp pid
q=$1; shift
w=
if [ -n "$q" ]; then
  ( trap "kill \$sp 2>/dev/null; exit 0" TERM
    sleep "$q" & sp=$!
    wait $sp || exit 0
    echo quota > killed
    pkill -KILL -s $$ 2>/dev/null; kill -s KILL -- -$$ 2>/dev/null ) >/dev/null 2>&1 &
  w=$!
fi
"$@" >stdout 2>stderr </dev/null
echo $? > exit.tmp && mv exit.tmp exit
[ -n "$w" ] && kill $w 2>/dev/null
exit 0
' contest-exec "$q" "$@" </dev/null >/dev/null 2>&1 &
i=0
while [ ! -f pid ] && [ $i -lt 200 ]; do sleep 0.05 2>/dev/null || sleep 1; i=$((i+1)); done
cat pid 2>/dev/null
"""

# $1 dir, $2 stdout offset, $3 stderr offset. First line: "<state> <code> <outsize> <errsize>";
# then the new stdout bytes on stdout and the new stderr bytes on stderr.
_POLL_SCRIPT = r"""
d=$1
if [ ! -d "$d" ]; then echo "absent - 0 0"; exit 0; fi
cd "$d" || exit 91
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  if [ -r "/proc/$1/stat" ]; then
    case "$(cat "/proc/$1/stat" 2>/dev/null)" in *") Z "*) return 1 ;; esac
  fi
  return 0
}
if [ -f exit ]; then st="exit $(cat exit)"
elif [ -f killed ]; then st="quota -"
elif [ ! -f pid ]; then st="starting -"
elif alive "$(cat pid)"; then st="running -"
elif [ -f exit ]; then st="exit $(cat exit)"
else st="lost -"
fi
o=$(wc -c < stdout 2>/dev/null) || o=0
e=$(wc -c < stderr 2>/dev/null) || e=0
o=$((o + 0)); e=$((e + 0))
echo "$st $o $e"
if [ "$o" -gt "$2" ]; then tail -c +$(($2 + 1)) stdout 2>/dev/null | head -c $((o - $2)); fi
if [ "$e" -gt "$3" ]; then tail -c +$(($3 + 1)) stderr 2>/dev/null | head -c $((e - $3)) >&2; fi
exit 0
"""

# $1 dir, $2 "kill" to stop a command still running. Removes the directory (and a binary we
# sent, kept as <dir>.bin).
_CLEANUP_SCRIPT = r"""
d=$1
if [ "$2" = kill ] && [ -f "$d/pid" ] && [ ! -f "$d/exit" ]; then
  p=$(cat "$d/pid")
  if [ -n "$p" ] && [ "$p" -gt 1 ] && kill -0 "$p" 2>/dev/null; then
    pkill -KILL -s "$p" 2>/dev/null
    kill -s KILL -- "-$p" 2>/dev/null
    kill -s KILL "$p" 2>/dev/null
  fi
fi
rm -rf "$d" "$d.bin"
true
"""

_HEADER = re.compile(rb"^(\w+) (-|-?\d+) (\d+) (\d+)$")


class RemoteQuotaExceeded(SSHError):
    """A detached command ran past its remote time quota and was killed on the target."""


class DetachedCommand:
    """A command that runs on the target independently of our connection; see the module doc.

    ``connector`` opens a new connection (raising :class:`SSHError`); the first one is opened by
    :meth:`run`, later ones whenever the current one fails, with back-off, for at most
    ``reconnect_timeout`` seconds in a row. ``remote_quota`` (seconds, or None) is enforced on
    the target. Cancelling the task running :meth:`run` kills the remote command (reconnecting
    once if need be) and removes its files. ``prepare`` runs on the first connection before the
    start (to copy the binary to ``<dir>.bin``, which the clean-up removes as well).
    """

    def __init__(
        self,
        connector: Callable[[], Awaitable[asyncssh.SSHClientConnection]],
        argv: Sequence[str],
        *,
        remote_quota: float | None = None,
        poll_interval: float = 1.0,
        reconnect_timeout: float = 600.0,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        prepare: Callable[[asyncssh.SSHClientConnection], Awaitable[None]] | None = None,
    ) -> None:
        self.connector = connector
        self.prepare = prepare
        self.argv = list(argv)
        self.command_line = quote_command(self.argv)
        self.remote_quota = remote_quota
        self.poll_interval = max(poll_interval, MIN_POLL_INTERVAL)
        self.reconnect_timeout = reconnect_timeout
        self.on_stdout = on_stdout
        self.on_stderr = on_stderr
        self.log = log or logging.getLogger(__name__)
        self.dir = f"/tmp/contest-exec-{uuid.uuid4().hex}"
        self.remote_pid: int | None = None
        self.reconnects = 0
        self._conn: asyncssh.SSHClientConnection | None = None
        self._out_off = 0
        self._err_off = 0
        self.needs_cleanup = False

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 1.0)

    def _drop(self, exc: BaseException) -> None:
        self.log.warning("connection for %s lost: %s", self.command_line, exc)
        if self._conn is not None:
            self._conn.abort()
            self._conn = None

    async def _connection(self) -> asyncssh.SSHClientConnection:
        """The live connection, or a new one, retried with back-off until the deadline."""
        if self._conn is not None:
            return self._conn
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_timeout
        delay = 0.1
        while True:
            try:
                self._conn = await self.connector()
                self.reconnects += 1
                return self._conn
            except SSHError as exc:
                if loop.time() + delay > deadline:
                    raise SSHError(
                        f"lost the connection to the target for more than "
                        f"{format_seconds(self.reconnect_timeout)}: {exc}"
                    ) from exc
                self.log.info("reconnecting in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def run(self, conn: asyncssh.SSHClientConnection | None = None) -> ExitInfo:
        """Start the command (on ``conn`` if given, else on a new connection) and follow it to
        its end; the connection is closed at the end."""
        self._conn = conn if conn is not None else await self.connector()
        try:
            if self.prepare is not None:
                self.needs_cleanup = True
                await self.prepare(self._conn)
            return await self._run()
        except BaseException:
            await self._cleanup(kill=True)
            raise
        finally:
            await self.close()

    async def _run(self) -> ExitInfo:
        await self._start()
        interval = MIN_POLL_INTERVAL
        loop = asyncio.get_running_loop()
        start_deadline = loop.time() + START_TIMEOUT
        while True:
            conn = await self._connection()
            try:
                state, code = await self._poll(conn)
            except CONNECTION_ERRORS as exc:
                self._drop(exc)
                continue
            if state == "exit":
                await self._cleanup(kill=False)
                return ExitInfo(code)
            if state == "quota":
                raise RemoteQuotaExceeded(
                    f"exceeded the remote time quota of {format_seconds(self.remote_quota or 0)}"
                )
            if state == "absent":
                raise SSHError("the detached command did not start on the target")
            if state == "lost":
                raise SSHError("the detached command vanished from the target (rebooted?)")
            if state == "starting" and loop.time() > start_deadline:
                raise SSHError("the detached command did not start on the target")
            await asyncio.sleep(interval)
            interval = min(interval * 2, self.poll_interval)

    async def _start(self) -> None:
        self.needs_cleanup = True  # from now on, clean-up has something to remove
        quota = "" if not self.remote_quota else str(max(1, math.ceil(self.remote_quota)))
        conn = await self._connection()
        try:
            done = await run_script(conn, _START_SCRIPT, self.dir, quota, *self.argv)
        except CONNECTION_ERRORS as exc:
            # it may or may not have started: polling finds out
            self._drop(exc)
            return
        if done.exit_status is None:  # the connection went away under the script
            self._drop(ConnectionResetError("connection lost while starting"))
            return
        if done.exit_status != 0:
            err = done.stderr if isinstance(done.stderr, bytes) else b""
            raise SSHError(
                f"cannot start the detached command (status {done.exit_status}): "
                f"{err.decode(errors='replace').strip()}"
            )
        out = done.stdout if isinstance(done.stdout, bytes) else b""
        with contextlib.suppress(ValueError):
            self.remote_pid = int(out.strip() or b"0") or None
        self.log.debug("detached %s as pid %s in %s", self.command_line, self.remote_pid, self.dir)

    async def _poll(self, conn: asyncssh.SSHClientConnection) -> tuple[str, int | None]:
        done = await run_script(
            conn, _POLL_SCRIPT, self.dir, str(self._out_off), str(self._err_off)
        )
        out = done.stdout if isinstance(done.stdout, bytes) else b""
        err = done.stderr if isinstance(done.stderr, bytes) else b""
        if done.exit_status is None:
            raise ConnectionResetError("connection lost while polling")
        header, _, data = out.partition(b"\n")
        m = _HEADER.match(header)
        if done.exit_status != 0 or m is None:
            raise SSHError(
                f"cannot poll the detached command (status {done.exit_status}): "
                f"{err.decode(errors='replace').strip()}"
            )
        state = m.group(1).decode()
        code = None if m.group(2) == b"-" else int(m.group(2))
        if data:
            self._out_off += len(data)
            await deliver(self.on_stdout, data)
        if err:
            self._err_off += len(err)
            await deliver(self.on_stderr, err)
        return state, code

    async def _cleanup(self, *, kill: bool) -> None:
        """Remove the files (and kill the command if asked); bounded, never raises."""
        if not self.needs_cleanup:
            return

        async def clean() -> None:
            if self._conn is None:
                self._conn = await self.connector()
            await run_script(
                self._conn,
                _CLEANUP_SCRIPT,
                self.dir,
                "kill" if kill else "",
                timeout=CLEANUP_TIMEOUT,
            )

        try:
            await asyncio.wait_for(clean(), CLEANUP_TIMEOUT)
            self.needs_cleanup = False
        except Exception as exc:  # best effort; the reason is logged
            self.log.warning("cannot clean up %s on the target: %r", self.dir, exc)
