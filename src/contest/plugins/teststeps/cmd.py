"""``Cmd``: runs a local command per target, on the ConTest server (not on the target).

It runs programs of the server's machine as the server's user: ``contest serve`` refuses a job
with this step unless it was started with ``--allow-local-exec`` (``contest run`` allows it).

Parameters:

* ``executable`` (required, one string, not templated): an absolute path, or a name looked up in
  the server's PATH when the job is submitted (an unknown name refuses the job).
* ``args`` (optional list): the arguments, each a template expanded per target
  (``{{ .ID }}``, ``{{ StringVar "label.name" }}``, ...).
* ``dir`` (optional, templated): the working directory; the server's own if empty.
* ``emit_stdout`` / ``emit_stderr`` (optional, Go booleans ``true/false/1/0/t/f``, default
  false): stream the output as events.
* ``timeout`` (optional Go duration, e.g. ``"5m"``; empty or ``"0s"``: none): the command is
  stopped and the target fails with ``timed out after 5m0s``.

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

from contest.golang.strconv import parse_bool as parse_go_bool
from contest.golang.time import DurationError, format_duration, parse_duration
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
    Param,
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


def parse_timeout(params: StepParameters, name: str = "timeout") -> float | None:
    """An optional, non-negative Go duration; None when absent or zero (no timeout)."""
    raw = params.get_one(name)
    if raw.is_empty():
        return None
    try:
        seconds = parse_duration(str(raw))
    except DurationError as exc:
        raise ParameterError(f"{name}: {exc}") from exc
    if seconds < 0:
        raise ParameterError(f"{name}: must not be negative, got {raw}")
    return seconds or None


def check_template(param: Param, label: str) -> None:
    """Parse a templated parameter now, so a broken template refuses the job at submission
    rather than failing every target at run time."""
    try:
        param.template()
    except ParameterError as exc:
        raise ParameterError(f"{label}: {exc}") from exc


class Cmd(TestStep):
    """Runs a local command per target (templated args, streamed output, timeout)."""

    name = NAME
    events = EVENTS
    runs_local_processes = True  # refused by contest serve without --allow-local-exec

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
        executable = params.get("executable")
        if len(executable) != 1 or executable[0].is_empty():
            raise ParameterError(
                "invalid or missing 'executable' parameter, must be exactly one string"
            )
        try:
            self.executable = resolve_executable(str(executable[0]))
        except LookupError as exc:
            raise ParameterError(f"executable: {exc}") from exc
        self.args = list(params.get("args"))
        for i, arg in enumerate(self.args):
            check_template(arg, f"args[{i}]")
        dirs = params.get("dir")
        if len(dirs) > 1:
            raise ParameterError(f"dir: at most one value, got {len(dirs)}")
        self.dir = params.get_one("dir")
        check_template(self.dir, "dir")
        self.emit_stdout = self._bool(params, "emit_stdout")
        self.emit_stderr = self._bool(params, "emit_stderr")
        self.timeout = parse_timeout(params)

    @staticmethod
    def _bool(params: StepParameters, name: str) -> bool:
        raw = params.get_one(name)
        if raw.is_empty():
            return False
        try:
            return parse_go_bool(str(raw))
        except ValueError as exc:
            raise ParameterError(f"invalid non-boolean `{name}` parameter: {exc}") from exc

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
