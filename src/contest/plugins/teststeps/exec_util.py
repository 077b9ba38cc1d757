"""Helpers shared by the command-running steps (``SSHCmd``, ``Exec``): Go-style booleans,
parameter checks that name the parameter, secrets from files or the environment, output tails,
and :func:`run_bounded`, which gives every per-target job a time limit and an end on
cancellation.

Why :func:`run_bounded`: ``for_each_target`` does not interrupt a target function on cancel (it
waits for it), so each function must notice the cancel signal itself, stop what it started and
say so. Running the work as a task and cancelling that task puts all the clean-up (killing a
local process group, killing the remote process) in one place: the ``except CancelledError`` of
whoever started the thing, as asyncio intends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Coroutine
from typing import Any, TypeVar

from contest import hostpolicy
from contest.context import StepContext
from contest.errors import Cancelled, ParameterError
from contest.golang.strconv import parse_bool
from contest.golang.time import format_duration, parse_duration
from contest.params import Param
from contest.redaction import remember_secrets

T = TypeVar("T")


# How long stopping what a target started may take on cancel or time-out; well inside the
# runner's shutdown bound (30 s in ConTest, 3 s in the test harness).
CLEANUP_TIMEOUT = 2.0

# Output kept in event payloads and error messages (the tail: errors usually come last).
EVENT_OUTPUT_LIMIT = 64 * 1024
ERROR_OUTPUT_LIMIT = 300


class TargetTimeout(Exception):
    """A per-target time limit expired; the message is the target's failure."""


def is_template(param: Param) -> bool:
    """Whether the value has template actions (so it can only be checked per target)."""
    return not param.template().is_constant


def check_template(name: str, param: Param) -> None:
    """Parse the template now, so a syntax error refuses the job at submission."""
    try:
        param.template()
    except ParameterError as exc:
        raise ParameterError(f"{name}: {exc}") from exc


def bool_param(name: str, param: Param, default: bool = False) -> bool:
    """A Go-style boolean parameter (``true``, ``1``, ``F``...); empty means ``default``."""
    if param.is_empty():
        return default
    try:
        return parse_bool(str(param))
    except ValueError as exc:
        raise ParameterError(f"{name}: {exc}") from exc


def duration_seconds(name: str, text: str, *, allow_zero: bool = True) -> float:
    """A Go duration in seconds, refused with the parameter's name if bad or negative."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ParameterError(f"{name}: {exc}") from exc
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ParameterError(f"{name}: must be positive, got {text}")
    return seconds


def port_number(name: str, text: str) -> int:
    try:
        port = int(text, 10)
    except ValueError as exc:
        raise ParameterError(f"{name}: not an integer: {text!r}") from exc
    if not 1 <= port <= 65535:
        raise ParameterError(f"{name}: not in range 1-65535: {port}")
    return port


async def read_password_file(name: str, path: str) -> str:
    """A password kept in a file: its first line (so an editor's final newline is harmless).
    The file must be one the server may read (see :mod:`contest.hostpolicy`): read in a thread,
    size-capped, a regular file."""
    data = await hostpolicy.read_secret_file(name, path)
    text = data.decode("utf-8", "replace")
    password = text.splitlines()[0] if text else ""
    remember_secrets([password])  # never in a log line
    return password


def read_secret_env(name: str, variable: str) -> str:
    """A password kept in an environment variable of the server (``CONTEST_SECRET_*`` only,
    on a server)."""
    password = hostpolicy.read_secret_env(name, variable)
    remember_secrets([password])  # never in a log line
    return password


def server_file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be read by the server now, or None. Only looks (never opens: a FIFO
    would block, a device might act on being opened)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot read {str(path)!r}: {exc.strerror}"
    if not stat.S_ISREG(mode):
        return f"{str(path)!r} is not a regular file"
    if not os.access(path, os.R_OK):
        return f"cannot read {str(path)!r}: Permission denied"
    return None


def check_secret_file(ctx: StepContext, name: str, param: Param) -> None:
    """At submission: a secret file named outright (not a template) must be one the server may
    read, or the job is refused; a missing one is only warned about (see
    :func:`warn_later_failure`). Templates are checked per target, when expanded."""
    if param.is_empty() or is_template(param):
        return
    path = hostpolicy.current().secret_path(name, str(param))
    problem = server_file_problem(path)
    if problem:
        warn_later_failure(ctx, name, problem)


def check_secret_env(ctx: StepContext, name: str, param: Param) -> None:
    """At submission: a password variable named outright must be one the server may read."""
    if param.is_empty() or is_template(param):
        return
    variable = str(param)
    hostpolicy.current().check_secret_env(name, variable)
    if variable not in os.environ:
        warn_later_failure(ctx, name, f"{variable!r} is not set")


def warn_later_failure(ctx: StepContext, name: str, problem: str) -> None:
    """Something of the server's that a parameter names is missing at submission.

    Not a refusal: ConTest accepts such jobs (its samples name placeholder key files), and the
    file or variable may well be provisioned before the run; each target then fails with the
    parameter's name if it is still missing."""
    ctx.log.warning(
        "%s: %s; the targets will fail unless this is fixed before they run", name, problem
    )


def tail_text(data: bytes | str, limit: int) -> str:
    """The last ``limit`` characters, marked when cut."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters cut]..." + text[-limit:]


def one_line_tail(data: bytes | str) -> str:
    """The end of an output, on one line, for an error message."""
    text = tail_text(data, ERROR_OUTPUT_LIMIT).strip()
    return " | ".join(line for line in text.splitlines() if line.strip())


async def run_bounded(
    ctx: StepContext,
    coro: Coroutine[Any, Any, T],
    timeout: float | None,
    timeout_message: str,
) -> T:
    """Run ``coro`` until it ends, the step is cancelled, or ``timeout`` seconds pass.

    On cancel or time-out the work is cancelled and waited for (its own clean-up kills what it
    started), then ``Cancelled`` or :class:`TargetTimeout` (with ``timeout_message``) is raised.
    If our own task is cancelled, the work is cancelled the same way first.
    """
    work: asyncio.Task[T] = asyncio.ensure_future(coro)
    watch = asyncio.ensure_future(ctx.wait_cancelled())
    try:
        await asyncio.wait(
            (work, watch),
            timeout=timeout if timeout and timeout > 0 else None,
            return_when=asyncio.FIRST_COMPLETED,
        )
    except asyncio.CancelledError:
        await _stop(work)
        raise
    finally:
        watch.cancel()
    if work.done():
        return work.result()
    await _stop(work)
    if ctx.is_cancelled():
        raise Cancelled()
    raise TargetTimeout(timeout_message)


async def _stop(work: asyncio.Task[Any]) -> None:
    """Cancel the work and give its clean-up a bounded time (plus a little: it bounds itself)."""
    work.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(asyncio.shield(work), CLEANUP_TIMEOUT * 2)


def format_seconds(seconds: float) -> str:
    """Go's spelling of a duration (``10m0s``), as ConTest's messages have it."""
    return format_duration(seconds)
