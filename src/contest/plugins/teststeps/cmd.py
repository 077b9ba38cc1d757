"""``Cmd``: runs a local command per target, on the ConTest server (not on the target).

It runs programs of the server's machine as the server's user: ``contest serve`` refuses a job
with this step unless it was started with ``--allow-local-exec`` (``contest run`` allows it).

Parameters: see :attr:`Cmd.parameters` (``contest plugins Cmd``). ``executable`` is an absolute
path, or a name looked up in the server's PATH when the job is submitted (an unknown name refuses
the job); ``args`` and ``dir`` are templates expanded per target (``{{ .ID }}``,
``{{ StringVar "label.name" }}``, ...); a ``timeout`` stops the command and fails the target with
``timed out after 5m0s``.

Events, per target: ``CmdStart`` ``{"Path", "Args" (the whole argv), "Dir"}``; then, while the
command runs, ``CmdStdout`` / ``CmdStderr`` ``{"Msg": <chunk>}`` when enabled (chunks of at most
64 KiB, at most 1 MiB per stream and target, then one chunk saying how much was dropped; at
least one event per enabled stream, as ConTest always emits one); then ``CmdEnd`` (no payload)
whatever the outcome. ConTest emitted the whole output once, after the end; the shape of each
event is unchanged, so a reader that concatenates ``Msg`` gets the output.

Failure texts are Go's: ``exit status 2``, ``signal: killed``,
``fork/exec /bin/x: permission denied``, ``chdir /x: no such file or directory``,
``failed to expand argument '<arg>': <error>``.

The command runs in its own session and process group (``setsid``). On cancellation or timeout
the whole group gets SIGTERM, then SIGKILL after 2 s, so nothing the command started outlives
the step; a cancelled target is not reported (neither passed nor failed). After a normal exit,
background processes the command left are not touched (a command may start a service for
later steps), but the step does not wait for them.

Pause: not supported (as in ConTest): a pause lets the commands in flight finish (bounded by
``timeout``), and targets not yet started stay before the step.
"""

from __future__ import annotations

from typing import Any

from contest.golang.time import format_duration
from contest.plugins.teststeps._process import (
    CommandFailed,
    Ending,
    OutputLimits,
    resolve_executable,
    run_command,
    spawn_error_text,
)
from contest.teststep import (
    Cancelled,
    EventEmitter,
    Kind,
    Param,
    Parameter,
    ParameterError,
    StepChannels,
    StepContext,
    StepParameters,
    Target,
    TestStep,
    for_each_target,
)

NAME = "Cmd"
EVENT_START = "CmdStart"
EVENT_END = "CmdEnd"
EVENT_STDOUT = "CmdStdout"
EVENT_STDERR = "CmdStderr"
EVENTS = (EVENT_START, EVENT_END, EVENT_STDOUT, EVENT_STDERR)


TIMEOUT = Parameter(
    "timeout",
    Kind.DURATION,
    minimum=0,
    doc='stop the command after this long and fail the target (a Go duration; "0s" or none: '
    "no limit)",
)
ARGS = Parameter("args", many=True, templated=True, doc="the arguments, each expanded per target")
DIR = Parameter("dir", templated=True, doc="the working directory (default: the server's)")
EMIT_STDOUT = Parameter(
    "emit_stdout", Kind.BOOLEAN, default=False, doc="record the output as CmdStdout events"
)
EMIT_STDERR = Parameter(
    "emit_stderr", Kind.BOOLEAN, default=False, doc="record the errors as CmdStderr events"
)


def parse_timeout(params: StepParameters, declared: Parameter = TIMEOUT) -> float | None:
    """An optional, non-negative duration; None when absent or zero (no timeout)."""
    seconds: float | None = declared.read(params)
    return seconds or None


class Cmd(TestStep):
    """Runs a local command per target (templated args, streamed output, timeout)."""

    name = NAME
    events = EVENTS
    runs_local_processes = True  # refused by contest serve without --allow-local-exec
    parameters = (
        Parameter(
            "executable",
            required=True,
            doc="the program: an absolute path, or a name found in the server's PATH",
        ),
        ARGS,
        DIR,
        EMIT_STDOUT,
        EMIT_STDERR,
        TIMEOUT,
    )

    # class attributes so that a test (or a subclass) can shrink them
    limits = OutputLimits()
    kill_grace = 2.0

    def __init__(self) -> None:
        self.executable = ""
        self.args: list[Param] = []
        self.dir = Param('""', "dir")
        self.emit_stdout = False
        self.emit_stderr = False
        self.timeout: float | None = None

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        try:
            self.executable = resolve_executable(str(params.get_one("executable")))
        except LookupError as exc:
            raise ParameterError(f"executable: {exc}") from exc
        self.args = list(params.get("args"))
        self.dir = params.get_one("dir")
        self.emit_stdout = EMIT_STDOUT.read(params)
        self.emit_stderr = EMIT_STDERR.read(params)
        self.timeout = parse_timeout(params)

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async def one(ctx: StepContext, target: Target) -> None:
            args = []
            for arg in self.args:
                try:
                    args.append(arg.expand(target))
                except ParameterError as exc:
                    raise CommandFailed(f"failed to expand argument '{arg}': {exc}") from exc
            try:
                cwd = self.dir.expand(target)
            except ParameterError as exc:
                raise CommandFailed(f"failed to expand argument dir '{self.dir}': {exc}") from exc
            await self._run_one(ctx, ev, target, [self.executable, *args], cwd)

        await for_each_target(ctx, ch, one)

    async def _run_one(
        self, ctx: StepContext, ev: EventEmitter, target: Target, argv: list[str], cwd: str
    ) -> None:
        if ctx.is_cancelled():  # taken just as the job was cancelled: start nothing
            raise Cancelled()
        await ev.emit(EVENT_START, target, {"Path": argv[0], "Args": argv, "Dir": cwd})

        async def out(text: str) -> None:
            await ev.emit(EVENT_STDOUT, target, {"Msg": text})

        async def err(text: str) -> None:
            await ev.emit(EVENT_STDERR, target, {"Msg": text})

        try:
            result = await run_command(
                argv,
                cwd=cwd or None,
                cancelled=ctx.wait_cancelled,
                timeout=self.timeout,
                on_stdout=out if self.emit_stdout else None,
                on_stderr=err if self.emit_stderr else None,
                limits=self.limits,
                kill_grace=self.kill_grace,
            )
        except OSError as exc:
            text = spawn_error_text(exc, argv[0], cwd or None)
            ctx.log.info("target %s: command %s did not start: %s", target.id, argv, text)
            await self._end(ev, target, stdout_seen=False, stderr_seen=False)
            raise CommandFailed(text) from exc

        await self._end(
            ev, target, stdout_seen=result.stdout.chunks > 0, stderr_seen=result.stderr.chunks > 0
        )
        ctx.log.info(
            "target %s: command %s in %r ended (%s, %s) after %.3fs; stdout %d bytes, ...%r; "
            "stderr %d bytes, ...%r",
            target.id,
            argv,
            cwd,
            result.ending.value,
            result.error_text or "exit status 0",
            result.duration,
            result.stdout.total,
            result.stdout.tail_text(),
            result.stderr.total,
            result.stderr.tail_text(),
        )
        if result.ending is Ending.CANCELLED:
            raise Cancelled()
        if result.ending is Ending.TIMED_OUT:
            assert self.timeout is not None
            raise CommandFailed(f"timed out after {format_duration(self.timeout)}")
        if result.error_text is not None:
            raise CommandFailed(result.error_text)
        for pump, event in ((result.stdout, EVENT_STDOUT), (result.stderr, EVENT_STDERR)):
            if pump.sink_error is not None:
                raise CommandFailed(f"cannot emit event {event}: {pump.sink_error}")

    async def _end(
        self, ev: EventEmitter, target: Target, *, stdout_seen: bool, stderr_seen: bool
    ) -> None:
        # ConTest emits one CmdStdout/CmdStderr per enabled stream even when it is empty.
        if self.emit_stdout and not stdout_seen:
            await ev.emit(EVENT_STDOUT, target, {"Msg": ""})
        if self.emit_stderr and not stderr_seen:
            await ev.emit(EVENT_STDERR, target, {"Msg": ""})
        await ev.emit(EVENT_END, target, None)


def load() -> tuple[str, Any, tuple[str, ...]]:
    return NAME, Cmd, EVENTS
