"""``SSHCmd``: runs a command on each target over SSH and judges it by exit status and output.

Parameters: see :attr:`SSHCmd.parameters` (``contest plugins SSHCmd``); the declaration checks
names, counts, types and templates at submission, so a bad job is refused with the parameter's
name (a misspelt ``private_key_file`` would otherwise only show up as a failed login). Templated
values are checked again once expanded. Files and environment variables of the server that a
parameter names are only warned about at submission when missing (ConTest accepts such jobs, and
they may be provisioned before the run); a target fails naming them if they still are.

* ``host``: if it expands to an empty string the target fails ("host value is empty"), or passes
  without running anything when ``skip_if_empty_host`` is true.
* ``port``: ConTest ignored an explicit port; this one works.
* ``password``, ``password_file``, ``password_env``: at most one of the three, so that secrets
  need not sit in job descriptors.
* ``executable`` and ``args`` run as separate words, as ConTest's shell-quoted command line did.
* ``expect``: the target passes as soon as stdout matches (the command is then stopped); a
  command that exits 0 without a match fails with "match for <re> not found for target <target>".
* ``timeout`` (default ``10m``): then the target fails with "timed out after <d>".
* Host keys are checked by default against the server user's ``~/.ssh/known_hosts``; another
  file (``known_hosts``) or pinned keys (``host_key``) may be given, or
  ``insecure_ignore_host_key`` accepts any key, as ConTest always did. A key that does not match
  refuses the connection.
* ``posix_shell`` (default true): the target has ``/bin/sh``, so the step can learn the remote
  pid and kill the command for real (see ``exec_ssh``); set false for a target without one (a
  switch CLI), where a stopped command is only sent a KILL signal, which OpenSSH ignores for root
  logins.

Events (per target): ``SSHCmdStart`` ``{"Host", "Port", "User", "Command"}`` once the command
is started; ``SSHCmdEnd`` ``{"ExitStatus", "Signal", "ExpectMatched"}`` when it ended or was
stopped by an ``expect`` match (``ExpectMatched`` is null without ``expect``);
``SSHCmdStdout`` / ``SSHCmdStderr`` ``{"Msg"}`` (the last 64 KiB) when enabled. Exit status,
stdout and stderr are kept apart throughout: a failing command's error reads
"Process exited with status N" followed by the end of its stderr.

Per target, one SSH connection is opened and used for everything (the command, the kill);
targets run concurrently. Pause: not supported (targets in flight finish first). Cancellation:
the command and everything it started on the target are killed within about two seconds, and the
step reports ``Cancelled``, not success.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import re
from collections.abc import Sequence
from typing import Any

from contest.errors import Cancelled
from contest.plugins.teststeps.exec_ssh import (
    DEFAULT_PORT,
    ExitInfo,
    HostKeyPolicy,
    RemoteCommand,
    SSHEndpoint,
    SSHError,
    connect,
    parse_public_key,
)
from contest.plugins.teststeps.exec_util import (
    CLEANUP_TIMEOUT,
    EVENT_OUTPUT_LIMIT,
    TargetTimeout,
    check_secret_env,
    check_secret_file,
    duration_seconds,
    format_seconds,
    is_template,
    one_line_tail,
    port_number,
    read_password_file,
    read_secret_env,
    run_bounded,
    tail_text,
)
from contest.teststep import (
    EventEmitter,
    Kind,
    Parameter,
    ParameterError,
    StepChannels,
    StepContext,
    StepParameters,
    Target,
    TestStep,
    for_each_target,
)

NAME = "SSHCmd"
EV_START = "SSHCmdStart"
EV_END = "SSHCmdEnd"
EV_STDOUT = "SSHCmdStdout"
EV_STDERR = "SSHCmdStderr"
EVENTS = (EV_START, EV_END, EV_STDOUT, EV_STDERR)

DEFAULT_TIMEOUT = "10m"
MAX_STDOUT_KEPT = 16 * 1024 * 1024  # for expect matching; older output is dropped beyond this
SEARCH_OVERLAP = 64 * 1024


def _bool(name: str, doc: str, default: bool = False) -> Parameter:
    return Parameter(name, Kind.BOOLEAN, default=default, doc=doc)


PORT = Parameter(
    "port",
    Kind.INTEGER,
    default=DEFAULT_PORT,
    minimum=1,
    maximum=65535,
    templated=True,
    doc="the SSH port",
)
TIMEOUT = Parameter(
    "timeout",
    Kind.DURATION,
    default=DEFAULT_TIMEOUT,
    templated=True,
    doc="for connecting and running together; the target then fails and the command is killed",
)
SKIP_IF_EMPTY_HOST = _bool(
    "skip_if_empty_host", "a target whose host expands to nothing passes without running"
)
INSECURE = _bool(
    "insecure_ignore_host_key",
    "accept any host key (as ConTest always did); conflicts with known_hosts and host_key",
)
EMIT_STDOUT = _bool("emit_stdout", "record the output's end as an SSHCmdStdout event")
EMIT_STDERR = _bool("emit_stderr", "record the errors' end as an SSHCmdStderr event")
POSIX_SHELL = _bool(
    "posix_shell",
    "the target has /bin/sh, so a stopped command is killed for real (false: a switch CLI)",
    default=True,
)

PARAMETERS = (
    Parameter("host", required=True, templated=True, doc="the target's address"),
    PORT,
    Parameter("user", required=True, templated=True, doc="the user to log in as"),
    Parameter(
        "private_key_file", templated=True, doc="an unencrypted private key file on the server"
    ),
    Parameter(
        "password",
        templated=True,
        secret=True,
        doc="the password (better: password_file or password_env)",
    ),
    Parameter(
        "password_file",
        templated=True,
        doc="a file on the server whose first line is the password",
    ),
    Parameter(
        "password_env", templated=True, doc="an environment variable of the server holding it"
    ),
    Parameter("executable", required=True, templated=True, doc="the command to run"),
    Parameter("args", many=True, templated=True, doc="its arguments, each a separate word"),
    Parameter("expect", doc="a regular expression: the target passes as soon as stdout matches it"),
    TIMEOUT,
    SKIP_IF_EMPTY_HOST,
    Parameter(
        "known_hosts",
        templated=True,
        doc="a known_hosts file (default: the server user's ~/.ssh/known_hosts)",
    ),
    Parameter(
        "host_key",
        many=True,
        templated=True,
        doc='pinned public host keys ("ssh-ed25519 AAAA...")',
    ),
    INSECURE,
    EMIT_STDOUT,
    EMIT_STDERR,
    POSIX_SHELL,
)


class SSHCmdError(Exception):
    """The target's failure (the message is what ``TargetErr`` shows)."""


class SSHCmd(TestStep):
    """Runs a command on each target over SSH, judged by its exit status and its output."""

    name = NAME
    events = EVENTS
    parameters = PARAMETERS

    def __init__(self) -> None:
        self.expect: re.Pattern[str] | None = None
        self.skip_if_empty_host = False
        self.insecure = False
        self.emit_stdout = False
        self.emit_stderr = False
        self.posix_shell = True

    # --- validation -----------------------------------------------------------------------------

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        # names, counts, types, ranges and templates are checked by the declaration first
        for i, key in enumerate(params.get("host_key")):
            if not is_template(key):
                try:
                    parse_public_key(str(key))
                except ValueError as exc:
                    raise ParameterError(f"host_key[{i}]: {exc}") from exc

        timeout = params.get_one("timeout")
        if not timeout.is_empty() and not is_template(timeout):
            duration_seconds("timeout", str(timeout), allow_zero=False)

        secrets = [
            n
            for n in ("password", "password_file", "password_env")
            if not params.get_one(n).is_empty()
        ]
        if len(secrets) > 1:
            raise ParameterError(f"{secrets[1]}: give only one of {', '.join(secrets)}")
        for name in ("password_file", "private_key_file", "known_hosts"):
            check_secret_file(ctx, name, params.get_one(name))
        check_secret_env(ctx, "password_env", params.get_one("password_env"))
        known = params.get_one("known_hosts")

        expect = params.get_one("expect")
        self.expect = None
        if not expect.is_empty():
            try:
                self.expect = re.compile(str(expect))
            except re.error as exc:
                raise ParameterError(f"expect: malformed regular expression: {exc}") from exc
        self.skip_if_empty_host = SKIP_IF_EMPTY_HOST.read(params)
        self.insecure = INSECURE.read(params)
        if self.insecure and (params.get("host_key") or not known.is_empty()):
            raise ParameterError(
                "insecure_ignore_host_key: conflicts with host_key/known_hosts (which keys count?)"
            )
        self.emit_stdout = EMIT_STDOUT.read(params)
        self.emit_stderr = EMIT_STDERR.read(params)
        self.posix_shell = POSIX_SHELL.read(params)

    # --- run ------------------------------------------------------------------------------------

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async def one(ctx: StepContext, target: Target) -> None:
            await self._target(ctx, ev, params, target)

        await for_each_target(ctx, ch, one)
        if ctx.is_cancelled():
            raise Cancelled()

    @staticmethod
    def _expand(params: StepParameters, name: str, target: Target) -> str:
        try:
            return params.get_one(name).expand(target)
        except ParameterError as exc:
            raise SSHCmdError(f"cannot expand {name} parameter: {exc}") from exc

    async def _password(self, params: StepParameters, target: Target) -> str:
        try:
            if not params.get_one("password_file").is_empty():
                path = self._expand(params, "password_file", target)
                return await read_password_file("password_file", path)
            if not params.get_one("password_env").is_empty():
                var = self._expand(params, "password_env", target)
                return read_secret_env("password_env", var)
        except ParameterError as exc:
            raise SSHCmdError(str(exc)) from exc
        return self._expand(params, "password", target)

    async def _target(
        self, ctx: StepContext, ev: EventEmitter, params: StepParameters, target: Target
    ) -> None:
        host = self._expand(params, "host", target)
        if not host:
            if self.skip_if_empty_host:
                ctx.log.info("target %s: host is empty, skipped", target.id)
                return
            raise SSHCmdError("host value is empty")
        try:
            port_text = (
                self._expand(params, "port", target)
                if not params.get_one("port").is_empty()
                else str(DEFAULT_PORT)
            )
            port = port_number("port", port_text)
            timeout_text = self._expand(params, "timeout", target) or DEFAULT_TIMEOUT
            timeout = duration_seconds("timeout", timeout_text, allow_zero=False)
        except ParameterError as exc:
            raise SSHCmdError(str(exc)) from exc
        policy = HostKeyPolicy(
            known_hosts=self._expand(params, "known_hosts", target),
            host_keys=tuple(self._expand_list(params, "host_key", target)),
            insecure=self.insecure,
        )
        ep = SSHEndpoint(
            host=host,
            port=port,
            user=self._expand(params, "user", target),
            private_key_file=self._expand(params, "private_key_file", target),
            password=await self._password(params, target),
            host_key_policy=policy,
            connect_timeout=timeout,
        )
        argv = [
            self._expand(params, "executable", target),
            *self._expand_list(params, "args", target),
        ]
        try:
            await run_bounded(
                ctx,
                self._execute(ctx, ev, target, ep, argv),
                timeout,
                f"timed out after {format_seconds(timeout)}",
            )
        except TargetTimeout as exc:
            raise SSHCmdError(str(exc)) from exc
        except SSHError as exc:
            raise SSHCmdError(str(exc)) from exc

    @staticmethod
    def _expand_list(params: StepParameters, name: str, target: Target) -> list[str]:
        out = []
        for i, p in enumerate(params.get(name)):
            try:
                out.append(p.expand(target))
            except ParameterError as exc:
                raise SSHCmdError(f"cannot expand {name}[{i}] parameter '{p}': {exc}") from exc
        return out

    async def _execute(
        self,
        ctx: StepContext,
        ev: EventEmitter,
        target: Target,
        ep: SSHEndpoint,
        argv: Sequence[str],
    ) -> None:
        conn = await connect(ep)
        try:
            out = _Output(self.expect)
            err = _Output(None)
            cmd = RemoteCommand(
                conn,
                argv,
                posix_shell=self.posix_shell,
                on_stdout=out.feed,
                on_stderr=err.feed,
                reconnect=lambda: connect(ep),
            )
            ctx.log.debug("running on %s: %s", ep.address, cmd.command_line)
            await ev.emit(
                EV_START,
                target,
                {"Host": ep.host, "Port": ep.port, "User": ep.user, "Command": cmd.command_line},
            )
            result = await _run_until_match(cmd, out)
            await self._report(ctx, ev, target, cmd, result, out, err)
        finally:
            conn.close()

    async def _report(
        self,
        ctx: StepContext,
        ev: EventEmitter,
        target: Target,
        cmd: RemoteCommand,
        result: ExitInfo | None,
        out: _Output,
        err: _Output,
    ) -> None:
        matched = None if self.expect is None else out.matched
        if self.emit_stdout:
            await ev.emit(EV_STDOUT, target, {"Msg": tail_text(out.text, EVENT_OUTPUT_LIMIT)})
        if self.emit_stderr:
            await ev.emit(EV_STDERR, target, {"Msg": tail_text(err.text, EVENT_OUTPUT_LIMIT)})
        await ev.emit(
            EV_END,
            target,
            {
                "ExitStatus": result.status if result else None,
                "Signal": result.signal if result else None,
                "ExpectMatched": matched,
            },
        )
        ctx.log.info(
            "stdout of %r on %s: %r", cmd.command_line, target.id, tail_text(out.text, 4096)
        )
        if result is None:  # stopped on an expect match
            return
        if result.signal is not None or result.status != 0:
            ctx.log.warning(
                "stderr of %r on %s: %r", cmd.command_line, target.id, tail_text(err.text, 4096)
            )
            what = (
                f"Process killed by signal {result.signal}"
                if result.signal
                else f"Process exited with status {result.status}"
            )
            stderr = one_line_tail(err.text)
            raise SSHCmdError(f"{what}; stderr: {stderr}" if stderr else what)
        if self.expect is None:
            ctx.log.warning("no expectations specified")
            return
        if not out.matched:
            raise SSHCmdError(f"match for {self.expect.pattern} not found for target {target}")


class _Output:
    """One output stream, decoded as it comes; watches stdout for the ``expect`` pattern."""

    def __init__(self, expect: re.Pattern[str] | None) -> None:
        self.expect = expect
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""
        self.matched = False
        self.match_seen: asyncio.Event | None = None  # set by _run_until_match

    def feed(self, data: bytes) -> None:
        # search only the new text and some before it: a chatty command must not cost a search
        # of everything so far per chunk (a match longer than the overlap is not expected)
        start = max(0, len(self.text) - SEARCH_OVERLAP)
        self.text += self._decoder.decode(data)
        if len(self.text) > MAX_STDOUT_KEPT:
            cut = len(self.text) - MAX_STDOUT_KEPT
            self.text = self.text[cut:]
            start = max(0, start - cut)
        if self.expect is not None and not self.matched and self.expect.search(self.text, start):
            self.matched = True
            if self.match_seen is not None:
                self.match_seen.set()


async def _run_until_match(cmd: RemoteCommand, out: _Output) -> ExitInfo | None:
    """The command's exit, or None if stdout matched ``expect`` first (the command is then
    killed: it is ours, and ConTest's abandoned commands ran on forever)."""
    out.match_seen = asyncio.Event()
    work = asyncio.ensure_future(cmd.run())
    match = asyncio.ensure_future(out.match_seen.wait())
    try:
        await asyncio.wait((work, match), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        await _cancel(work)
        raise
    finally:
        match.cancel()
    if work.done():
        return work.result()
    await _cancel(work)
    return None


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(asyncio.shield(task), CLEANUP_TIMEOUT * 2)


def load() -> tuple[str, Any, tuple[str, ...]]:
    return NAME, SSHCmd, EVENTS


__all__ = ["EVENTS", "NAME", "SSHCmd", "load"]
