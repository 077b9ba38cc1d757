"""The transports of the ``Exec`` step: where and how its binary runs.

* :class:`LocalTransport`: on the ConTest server itself, in a new session, so that stopping it
  (cancel, time quota) kills the whole process group, not only the direct child. Only usable
  when the server allows it (``Exec`` checks; see ``allow_local_execution``).
* :class:`SSHTransport`: on the target over one SSH connection: synchronously
  (:class:`~contest.plugins.teststeps.exec_ssh.RemoteCommand`), or detached
  (:class:`~contest.plugins.teststeps.exec_ssh.DetachedCommand`) when ``async`` is set; with
  ``send_binary`` the binary is copied over SFTP first (mode 0500) and removed afterwards.

Every transport's :meth:`execute` streams stdout and stderr to callbacks, returns the
:class:`ExitInfo`, raises :class:`TransportError` when the binary could not be run at all, and,
when its task is cancelled, kills what it started before re-raising.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import os
import signal
import stat
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncssh

from contest.plugins.teststeps.exec_ssh import (
    CONNECTION_ERRORS,
    DetachedCommand,
    ExitInfo,
    OutputCallback,
    RemoteCommand,
    SSHEndpoint,
    SSHError,
    connect,
    deliver,
    quote_command,
)
from contest.plugins.teststeps.exec_util import CLEANUP_TIMEOUT

# after the process exits, how long its pipes may stay open (a child that kept them) before the
# rest of its process group is killed
PIPE_GRACE = 1.0

Log = logging.Logger | logging.LoggerAdapter[Any]


class TransportError(Exception):
    """The binary could not be run (not found, not executable, cannot connect...)."""


def check_binary(path: str) -> None:
    """ConTest's checks on a binary of the server: it exists, is a regular file, and carries
    the execute bit for us (owner, group or other, as it applies)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise TransportError("no such file") from exc
    if not stat.S_ISREG(st.st_mode):
        raise TransportError("not a file")
    if st.st_uid == os.getuid():
        ok = st.st_mode & 0o500 == 0o500
    elif st.st_gid == os.getgid():
        ok = st.st_mode & 0o050 == 0o050
    else:
        ok = st.st_mode & 0o005 == 0o005
    if not ok:
        raise TransportError("provided binary is not executable")


class Transport(abc.ABC):
    @abc.abstractmethod
    def describe(self, path: str, args: Sequence[str]) -> str:
        """The command line, for events and logs."""

    @abc.abstractmethod
    async def execute(
        self,
        path: str,
        args: Sequence[str],
        on_stdout: OutputCallback | None,
        on_stderr: OutputCallback | None,
    ) -> ExitInfo: ...


class LocalTransport(Transport):
    def describe(self, path: str, args: Sequence[str]) -> str:
        return quote_command([path, *args])

    async def execute(
        self,
        path: str,
        args: Sequence[str],
        on_stdout: OutputCallback | None,
        on_stderr: OutputCallback | None,
    ) -> ExitInfo:
        check_binary(path)
        try:
            proc = await asyncio.create_subprocess_exec(
                path,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise TransportError(f"failed to start process: {exc}") from exc
        assert proc.stdout is not None and proc.stderr is not None
        pumps = asyncio.ensure_future(
            asyncio.gather(_pump(proc.stdout, on_stdout), _pump(proc.stderr, on_stderr))
        )
        try:
            rc = await proc.wait()
            try:
                await asyncio.wait_for(asyncio.shield(pumps), PIPE_GRACE)
            except TimeoutError:
                _killpg(proc.pid)  # something it started still holds the pipes
                await asyncio.wait_for(pumps, CLEANUP_TIMEOUT)
        except BaseException:
            _killpg(proc.pid)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(proc.wait(), CLEANUP_TIMEOUT)
            pumps.cancel()
            raise
        if rc < 0:
            return ExitInfo(None, signal.Signals(-rc).name.removeprefix("SIG"))
        return ExitInfo(rc)


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _pump(reader: asyncio.StreamReader, cb: OutputCallback | None) -> None:
    while True:
        data = await reader.read(65536)
        if not data:
            return
        await deliver(cb, data)


@dataclass(slots=True)
class DetachedOptions:
    remote_quota: float | None = None
    poll_interval: float = 1.0
    reconnect_timeout: float = 600.0


class SSHTransport(Transport):
    def __init__(
        self,
        endpoint: SSHEndpoint,
        *,
        send_binary: bool = False,
        posix_shell: bool = True,
        detached: DetachedOptions | None = None,
        log: Log | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.send_binary = send_binary
        self.posix_shell = posix_shell
        self.detached = detached
        self.log: Log = log or logging.getLogger(__name__)

    def describe(self, path: str, args: Sequence[str]) -> str:
        return quote_command([path, *args])

    async def _connect(self) -> asyncssh.SSHClientConnection:
        return await connect(self.endpoint)

    async def execute(
        self,
        path: str,
        args: Sequence[str],
        on_stdout: OutputCallback | None,
        on_stderr: OutputCallback | None,
    ) -> ExitInfo:
        if self.send_binary:
            check_binary(path)
        try:
            conn = await self._connect()
        except SSHError as exc:
            raise TransportError(str(exc)) from exc
        try:
            if self.detached is not None:
                return await self._detached(conn, path, args, on_stdout, on_stderr)
            return await self._sync(conn, path, args, on_stdout, on_stderr)
        finally:
            conn.close()

    async def _sync(
        self,
        conn: asyncssh.SSHClientConnection,
        path: str,
        args: Sequence[str],
        on_stdout: OutputCallback | None,
        on_stderr: OutputCallback | None,
    ) -> ExitInfo:
        remote = path
        if self.send_binary:
            remote = f"/tmp/exec_bin_{uuid.uuid4()}"
            await _send_file(conn, path, remote)
        try:
            cmd = RemoteCommand(
                conn,
                [remote, *args],
                posix_shell=self.posix_shell,
                on_stdout=on_stdout,
                on_stderr=on_stderr,
                reconnect=self._connect,
            )
            try:
                return await cmd.run()
            except SSHError as exc:
                raise TransportError(str(exc)) from exc
        finally:
            if self.send_binary:
                await _remove_file(conn, remote, self.log)

    async def _detached(
        self,
        conn: asyncssh.SSHClientConnection,
        path: str,
        args: Sequence[str],
        on_stdout: OutputCallback | None,
        on_stderr: OutputCallback | None,
    ) -> ExitInfo:
        opts = self.detached or DetachedOptions()
        argv = [path, *args]
        prepare = None
        if self.send_binary:
            # next to the command's directory, so that its clean-up removes it too
            remote = f"/tmp/contest-exec-{uuid.uuid4().hex}.bin"
            argv[0] = remote

            async def prepare_fn(c: asyncssh.SSHClientConnection) -> None:
                await _send_file(c, path, remote)

            prepare = prepare_fn
        cmd = DetachedCommand(
            self._connect,
            argv,
            remote_quota=opts.remote_quota,
            poll_interval=opts.poll_interval,
            reconnect_timeout=opts.reconnect_timeout,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            log=self.log,
            prepare=prepare,
        )
        if self.send_binary:
            cmd.dir = argv[0].removesuffix(".bin")
        try:
            return await cmd.run(conn)
        except SSHError as exc:
            raise TransportError(str(exc)) from exc


async def _send_file(conn: asyncssh.SSHClientConnection, local: str, remote: str) -> None:
    try:
        async with conn.start_sftp_client() as sftp:
            await sftp.put(local, remote)
            await sftp.chmod(remote, 0o500)
    except CONNECTION_ERRORS as exc:
        raise TransportError(f"cannot send binary to remote ssh: {exc}") from exc


async def _remove_file(conn: asyncssh.SSHClientConnection, remote: str, log: Log) -> None:
    """Best effort and bounded: the binary we copied must not stay, but clean-up never hangs."""

    async def remove() -> None:
        async with conn.start_sftp_client() as sftp:
            await sftp.remove(remote)

    try:
        await asyncio.wait_for(remove(), CLEANUP_TIMEOUT)
    except Exception as exc:
        log.warning("failed to clean up remote file %s: %r", remote, exc)
