"""Local commands for the command steps (``Cmd``, ``GatherCmd``): spawn, stream, stop.

Why a module of its own: the two steps must agree on the things that are easy to get wrong.

* **Process groups.** A command runs in a new session (``setsid``, as ConTest does), so it leads
  its own process group and signals sent to the server's group do not reach it. Stopping a
  command signals the *group* — ``SIGTERM``, a grace period, then ``SIGKILL`` — so the shells'
  children and grandchildren go too; killing only the direct child (what ConTest does through its
  context) leaves ``sh -c 'sleep 30'``'s ``sleep`` running.
* **Bounded, streamed output.** Output is read as it comes and handed on in chunks of at most
  :attr:`OutputLimits.chunk_size` bytes, coalesced for at most
  :attr:`OutputLimits.flush_interval` so a chatty command does not make one event per line;
  past :attr:`OutputLimits.cap` bytes the rest is read and counted but dropped, and one
  :func:`truncation_marker` chunk says how much. Memory stays bounded whatever the command
  prints. The pipes are our own (``os.pipe``) so we can close them: a background process that
  inherited stdout cannot keep a finished command's step waiting for EOF.
* **ConTest's failure texts.** Go's ``os/exec`` texts (``exit status 1``, ``signal: killed``,
  ``fork/exec /bin/x: no such file or directory``) are what users grep for, so
  :func:`exit_error_text` and :func:`spawn_error_text` produce them.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import enum
import errno as errno_mod
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contest import hostpolicy

_log = logging.getLogger("contest.step.process")

ChunkSink = Callable[[str], Awaitable[None]]
"""Receives each chunk of output, decoded as UTF-8 (invalid bytes replaced)."""

# Go's names for the Linux signals (what ``exec.ExitError`` prints after "signal: ").
_GO_SIGNAL_NAMES = {
    1: "hangup",
    2: "interrupt",
    3: "quit",
    4: "illegal instruction",
    5: "trace/breakpoint trap",
    6: "aborted",
    7: "bus error",
    8: "floating point exception",
    9: "killed",
    10: "user defined signal 1",
    11: "segmentation fault",
    12: "user defined signal 2",
    13: "broken pipe",
    14: "alarm clock",
    15: "terminated",
    16: "stack fault",
    17: "child exited",
    18: "continued",
    19: "stopped (signal)",
    20: "stopped",
    21: "stopped (tty input)",
    22: "stopped (tty output)",
    23: "urgent I/O condition",
    24: "CPU time limit exceeded",
    25: "file size limit exceeded",
    26: "virtual timer expired",
    27: "profiling timer expired",
    28: "window changed",
    29: "I/O possible",
    30: "power failure",
    31: "bad system call",
}


class CommandFailed(Exception):
    """A command step's verdict on a target: the text is what ``TargetErr`` shows."""


# --- texts --------------------------------------------------------------------------------------


def exit_error_text(returncode: int) -> str | None:
    """Go's ``ExitError`` text for a return code (None for success): ``exit status 2``,
    ``signal: killed``."""
    if returncode == 0:
        return None
    if returncode > 0:
        return f"exit status {returncode}"
    signum = -returncode
    return "signal: " + _GO_SIGNAL_NAMES.get(signum, f"signal {signum}")


def _errno_text(exc: OSError) -> str:
    """Go prints errno texts in lower case ("no such file or directory")."""
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return text[:1].lower() + text[1:]


def spawn_error_text(exc: OSError, path: str, cwd: str | None) -> str:
    """Go's texts for a command that could not start: ``chdir <dir>: ...`` when the working
    directory is the problem, ``fork/exec <path>: ...`` otherwise."""
    if (
        cwd
        and exc.filename == cwd
        and exc.errno in (errno_mod.ENOENT, errno_mod.ENOTDIR, errno_mod.EACCES)
    ):
        return f"chdir {cwd}: {_errno_text(exc)}"
    return f"fork/exec {path}: {_errno_text(exc)}"


def resolve_executable(name: str) -> str:
    """An absolute path as is; a name with a slash made absolute; a bare name looked up in the
    server's PATH (as ConTest does at validation, so a typo refuses the job, not every target).

    Raises ``LookupError`` with ConTest's text when the name is not found.
    """
    if os.path.isabs(name):
        return name
    if os.sep in name:
        if not (os.path.isfile(name) and os.access(name, os.X_OK)):
            raise LookupError(
                f"cannot find '{name}' executable in PATH: exec: {json.dumps(name)}: "
                "no such executable file"
            )
        return os.path.abspath(name)
    found = shutil.which(name)
    if found is None:
        raise LookupError(
            f"cannot find '{name}' executable in PATH: exec: {json.dumps(name)}: "
            "executable file not found in $PATH"
        )
    return os.path.abspath(found)


def truncation_marker(kept: int, dropped: int) -> str:
    """The chunk that ends a truncated stream (its own event, so a reader concatenating chunks
    sees exactly where the output stops)."""
    return f"\n[contest: output truncated: {dropped} more bytes dropped after the first {kept}]\n"


# --- output -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """How output is cut up. The defaults keep one command's events of one stream under about
    1 MiB in 16 events or more, and show output within a quarter of a second."""

    chunk_size: int = 64 * 1024
    cap: int = 1024 * 1024
    flush_interval: float = 0.25
    head_size: int = 10240  # kept for failure reports (GatherCmd's payload)
    tail_size: int = 4096  # kept for the log line at the end


class OutputPump:
    """Reads one stream to its end and hands it on in bounded chunks (see the module text).

    ``sink`` None: nothing is handed on, but the head and tail are still kept for the log.
    """

    def __init__(
        self, reader: asyncio.StreamReader, sink: ChunkSink | None, limits: OutputLimits
    ) -> None:
        self._reader = reader
        self._sink = sink
        self._limits = limits
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = bytearray()
        self.total = 0  # bytes read
        self.kept = 0  # bytes handed on (or that would have been, without a sink)
        self.chunks = 0  # chunks handed on
        self.head = bytearray()
        self.tail = bytearray()
        self.sink_error: BaseException | None = None

    @property
    def dropped(self) -> int:
        return self.total - self.kept

    async def run(self) -> None:
        """Read until EOF (or until the pipe is closed under us), then flush and mark."""
        loop = asyncio.get_running_loop()
        limits = self._limits
        deadline: float | None = None  # when the oldest pending byte must be handed on
        while True:
            try:
                if deadline is None:
                    data = await self._reader.read(limits.chunk_size)
                else:
                    async with asyncio.timeout_at(deadline):
                        data = await self._reader.read(limits.chunk_size)
            except TimeoutError:
                await self._flush()
                deadline = None
                continue
            if not data:
                break
            self._take(data)
            while len(self._pending) >= limits.chunk_size:
                await self._flush(limits.chunk_size)
            if self._pending and deadline is None:
                deadline = loop.time() + limits.flush_interval
            elif not self._pending:
                deadline = None
        await self._flush(final=True)
        if self.dropped:
            await self._hand_on(truncation_marker(self.kept, self.dropped))

    def _take(self, data: bytes) -> None:
        limits = self._limits
        self.total += len(data)
        if len(self.head) < limits.head_size:
            self.head += data[: limits.head_size - len(self.head)]
        self.tail += data
        if len(self.tail) > limits.tail_size:
            del self.tail[: len(self.tail) - limits.tail_size]
        room = limits.cap - self.kept
        if room > 0:
            keep = data[:room]
            self.kept += len(keep)
            if self._sink is not None:
                self._pending += keep

    async def _flush(self, size: int | None = None, *, final: bool = False) -> None:
        if size is None:
            piece = bytes(self._pending)
            self._pending.clear()
        else:
            piece = bytes(self._pending[:size])
            del self._pending[:size]
        text = self._decoder.decode(piece, final=final)
        if text:
            await self._hand_on(text)

    async def _hand_on(self, text: str) -> None:
        """Give ``text`` to the sink. If the sink fails, keep the error for the caller and stop
        handing on, but keep reading: a pump that stops reading blocks the command on a full
        pipe."""
        if self._sink is None:
            return
        try:
            await self._sink(text)
        except Exception as exc:
            _log.error("cannot hand on output: %s", exc)
            self.sink_error = exc
            self._sink = None
            self._pending.clear()
            return
        self.chunks += 1

    def head_text(self) -> str:
        return self.head.decode("utf-8", "replace")

    def tail_text(self) -> str:
        return self.tail.decode("utf-8", "replace")


# --- processes --------------------------------------------------------------------------------


class Ending(enum.Enum):
    """Why :func:`run_command` stopped waiting."""

    EXITED = "exited"
    TIMED_OUT = "timed out"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class CommandResult:
    ending: Ending
    returncode: int | None  # None if the leader could not be reaped (it is then abandoned)
    pid: int
    stdout: OutputPump
    stderr: OutputPump
    duration: float = 0.0
    stopped_group: bool = False  # whether we had to signal the group

    @property
    def error_text(self) -> str | None:
        """Go's text for how the process ended (None: exit status 0)."""
        if self.returncode is None:
            return "signal: killed"
        return exit_error_text(self.returncode)


def signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False if nothing is left in it (or it is not ours any more)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


@dataclass(slots=True)
class _Pipes:
    fds: list[int] = field(default_factory=list)

    def pipe(self) -> tuple[int, int]:
        r, w = os.pipe()
        self.fds += [r, w]
        return r, w

    def close(self, fd: int) -> None:
        if fd in self.fds:
            self.fds.remove(fd)
            os.close(fd)

    def close_all(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()

    async def reader(self, fd: int) -> tuple[asyncio.StreamReader, asyncio.ReadTransport]:
        """A stream on the read end ``fd``; the transport owns (and closes) the fd from now."""
        self.fds.remove(fd)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=256 * 1024)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        return reader, transport


async def stop_group(proc: asyncio.subprocess.Process, grace: float, reap: float = 5.0) -> None:
    """Stop the process and everything in its group: SIGTERM to the group, up to ``grace``
    seconds for the leader to go, then SIGKILL to the group (what ignored SIGTERM goes too).
    Waits at most ``reap`` more seconds for the leader (a process in an uninterruptible sleep
    cannot be killed; it is then left behind with a warning)."""
    pgid = proc.pid
    if proc.returncode is None:
        signal_group(pgid, signal.SIGTERM)
        signal_group(pgid, signal.SIGCONT)  # a stopped process must run to see SIGTERM
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
    signal_group(pgid, signal.SIGKILL)
    if proc.returncode is None:
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), reap)
        except TimeoutError:
            _log.warning("process %d did not die after SIGKILL; leaving it", pgid)


async def run_command(
    argv: Sequence[str],
    *,
    cwd: str | None,
    cancelled: Callable[[], Awaitable[None]],
    timeout: float | None,
    on_stdout: ChunkSink | None,
    on_stderr: ChunkSink | None,
    limits: OutputLimits,
    kill_grace: float = 2.0,
    drain_delay: float = 1.0,
) -> CommandResult:
    """Run ``argv`` in a new session and wait for it, for ``timeout``, or for ``cancelled()``.

    The output streams are read while the command runs. On a timeout or cancellation the whole
    process group is stopped (:func:`stop_group`). After a normal exit, background processes the
    command left behind are left alone (a command may start a service for later steps, as with
    ConTest), but if they still hold the output pipes, we stop reading after ``drain_delay``.

    Raises ``OSError`` if the command cannot start (see :func:`spawn_error_text`). If the calling
    task is cancelled, the group is killed at once (SIGKILL) before the cancellation propagates.
    """
    # refused at submission already without --allow-local-exec; this catches a job resumed by
    # a server started without it, and any path around the job builder
    hostpolicy.current().check_local_exec(f"the command {argv[0]!r}")
    pipes = _Pipes()
    out_r, out_w = pipes.pipe()
    err_r, err_w = pipes.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            cwd=cwd or None,
            start_new_session=True,
        )
    except BaseException:
        pipes.close_all()
        raise
    started = time.monotonic()
    pipes.close(out_w)
    pipes.close(err_w)
    transports: list[asyncio.ReadTransport] = []
    tasks: list[asyncio.Task[None]] = []
    waiters: list[asyncio.Future[Any]] = []
    try:
        out_reader, t1 = await pipes.reader(out_r)
        transports.append(t1)
        err_reader, t2 = await pipes.reader(err_r)
        transports.append(t2)
        stdout = OutputPump(out_reader, on_stdout, limits)
        stderr = OutputPump(err_reader, on_stderr, limits)
        tasks = [asyncio.ensure_future(stdout.run()), asyncio.ensure_future(stderr.run())]

        exited = asyncio.ensure_future(proc.wait())
        cancel_wait = asyncio.ensure_future(cancelled())
        waiters = [exited, cancel_wait]
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            ending = Ending.EXITED
        elif cancel_wait.done():
            ending = Ending.CANCELLED
        else:
            ending = Ending.TIMED_OUT
        stopped = False
        if ending is not Ending.EXITED:
            await stop_group(proc, kill_grace)
            stopped = True
        # the output: to EOF, unless someone else still holds the pipes
        _done, pending = await asyncio.wait(tasks, timeout=drain_delay)
        if pending:
            _log.info(
                "process %d: output still open %.1fs after the end; not reading on",
                proc.pid,
                drain_delay,
            )
            for t in transports:
                t.close()  # the pumps see EOF, flush and mark
            await asyncio.wait(tasks, timeout=drain_delay)
        return CommandResult(
            ending, proc.returncode, proc.pid, stdout, stderr, time.monotonic() - started, stopped
        )
    except BaseException:
        # our task was cancelled (or something broke): nothing we started may outlive us
        signal_group(proc.pid, signal.SIGKILL)
        raise
    finally:
        for w in waiters:
            w.cancel()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                _log.error("process %d: reading output failed: %r", proc.pid, task.exception())
            task.cancel()
        for t in transports:
            t.close()
        pipes.close_all()
