"""``GatherCmd`` (LB): one local command for all the targets of the step, run once they are in.

A *gather* step: it holds every target it receives until its input ends (no target can reach it
any more), then runs the command once, on the ConTest server, and reports the outcome on every
target it holds: all pass, or all fail with the command's failure text. Typical use: a setup
that needs the whole set of machines at once (a switch configuration, a lab reservation).
Like ``Cmd``, ``contest serve`` refuses it unless started with ``--allow-local-exec``.

Parameters: see :attr:`GatherCmd.parameters`. ``binary`` is an absolute path, or a name looked
up in the server's PATH when the job is submitted; ``args`` are expanded once, at submission, with
an empty target and no step variables (template functions work; target fields are empty), as in
ConTest; a ``timeout`` stops the command and fails every target with ``timed out after <d>``.

Events, on the first target only (one command, one record): ``GatherCmdStart``
``{"Path", "Args"}``; ``GatherCmdEnd`` with no payload on success, else
``{"ExitCode": n, "Err": "stdout: ...\\nstderr: ..."}`` (the first 10240 bytes; ``ExitCode`` -1
if a signal ended it) or ``{"ExitCode": 0, "Err": "unknown error: <why>"}`` if it did not
start. Failure texts are Go's (``exit status 1``, ``fork/exec ...``).

Fixed from ConTest: a failure is reported on each target (ConTest returned it as a step error
and then handed every target on as *passed*); a pause while targets are being gathered saves
the targets held so far in the resume state, and resume gathers on from there (ConTest forgot
them); cancellation kills the command's whole process group and reports no target.

Pause: once the command runs, a pause lets it finish (it is not restarted on resume: a setup
run twice may not be safe) and the targets are reported as usual.
"""

from __future__ import annotations

import json
from typing import Any

from contest.errors import ResumeStateError
from contest.golang.time import format_duration
from contest.plugins.teststeps._process import (
    CommandFailed,
    CommandResult,
    Ending,
    OutputLimits,
    resolve_executable,
    run_command,
    spawn_error_text,
)
from contest.plugins.teststeps.cmd import TIMEOUT, parse_timeout
from contest.teststep import (
    Cancelled,
    EventEmitter,
    Parameter,
    ParameterError,
    Paused,
    StepChannels,
    StepContext,
    StepParameters,
    StepResult,
    Target,
    TestStep,
)

NAME = "GatherCmd"
EVENT_START = "GatherCmdStart"
EVENT_END = "GatherCmdEnd"
EVENTS = (EVENT_START, EVENT_END)
STATE_VERSION = 1
ERR_LIMIT = 10240  # bytes of "stdout: ...\nstderr: ..." in GatherCmdEnd, as ConTest


def _encode_state(held: list[Target]) -> bytes:
    return json.dumps(
        {"V": STATE_VERSION, "T": [t.to_json_obj() for t in held]}, separators=(",", ":")
    ).encode()


def _decode_state(state: bytes | None) -> list[Target]:
    if not state:
        return []
    try:
        obj = json.loads(state)
        if not isinstance(obj, dict) or obj.get("V") != STATE_VERSION:
            raise ValueError(f"want version {STATE_VERSION}")
        return [Target.from_json_obj(t) for t in obj.get("T") or []]
    except (ValueError, TypeError) as exc:
        raise ResumeStateError(f"GatherCmd: invalid resume state: {exc}") from exc


def _err_payload(result: CommandResult) -> str:
    text = f"stdout: {result.stdout.head_text()}\nstderr: {result.stderr.head_text()}"
    return text.encode()[:ERR_LIMIT].decode("utf-8", "ignore")


class GatherCmd(TestStep):
    """Runs one local command once all targets have arrived; its outcome is every target's."""

    name = NAME
    events = EVENTS
    runs_local_processes = True  # refused by contest serve without --allow-local-exec
    supports_pause = True  # while gathering: the targets held so far are saved
    parameters = (
        Parameter(
            "binary",
            required=True,
            doc="the program: an absolute path, or a name found in the server's PATH",
        ),
        Parameter(
            "args",
            many=True,
            templated=True,
            doc="the arguments, expanded once at submission (target fields are empty)",
        ),
        TIMEOUT,
    )

    limits = OutputLimits(head_size=ERR_LIMIT)
    kill_grace = 2.0

    def __init__(self) -> None:
        self.binary = ""
        self.args: list[str] = []
        self.timeout: float | None = None

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        try:
            self.binary = resolve_executable(str(params.get_one("binary")))
        except LookupError as exc:
            raise ParameterError(f"binary: {exc}") from exc
        self.args = []
        for i, arg in enumerate(params.get("args")):
            try:
                self.args.append(arg.expand(Target(""), None))
            except ParameterError as exc:
                raise ParameterError(
                    f"args[{i}]: failed to expand argument: {arg} -> {exc}"
                ) from exc
        self.timeout = parse_timeout(params)

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        held = _decode_state(resume_state)
        async for target in ch.input:
            held.append(target)
        if ctx.is_cancelled():
            raise Cancelled()
        if ctx.is_paused():
            # the input ended because of the pause, so this may not be every target: gather on
            # after resume (the runner does not hand these targets over again)
            ctx.log.info("GatherCmd: paused while gathering, holding %d targets", len(held))
            raise Paused(_encode_state(held))
        if not held:
            return
        error = await self._run_command(ctx, ev, held[0])
        for target in held:
            if ctx.is_cancelled():
                raise Cancelled()
            await ch.output.put(StepResult(target, None if error is None else CommandFailed(error)))

    async def _run_command(self, ctx: StepContext, ev: EventEmitter, first: Target) -> str | None:
        """Run the command; the failure text, or None on success."""
        argv = [self.binary, *self.args]
        await ev.emit(EVENT_START, first, {"Path": self.binary, "Args": argv})
        try:
            result = await run_command(
                argv,
                cwd=None,
                cancelled=ctx.wait_cancelled,
                timeout=self.timeout,
                on_stdout=None,
                on_stderr=None,
                limits=self.limits,
                kill_grace=self.kill_grace,
            )
        except OSError as exc:
            text = spawn_error_text(exc, self.binary, None)
            await ev.emit(EVENT_END, first, {"ExitCode": 0, "Err": f"unknown error: {text}"})
            return text
        ctx.log.info(
            "GatherCmd: %s ended (%s, %s) after %.3fs; stdout ...%r; stderr ...%r",
            argv,
            result.ending.value,
            result.error_text or "exit status 0",
            result.duration,
            result.stdout.tail_text(),
            result.stderr.tail_text(),
        )
        error = result.error_text
        if result.ending is Ending.TIMED_OUT:
            assert self.timeout is not None
            error = f"timed out after {format_duration(self.timeout)}"
        if error is None:
            await ev.emit(EVENT_END, first, None)
        else:
            rc = result.returncode
            exit_code = -1 if rc is None or rc < 0 else rc
            await ev.emit(EVENT_END, first, {"ExitCode": exit_code, "Err": _err_payload(result)})
        if result.ending is Ending.CANCELLED:
            raise Cancelled()
        return error


def load() -> tuple[str, Any, tuple[str, ...]]:
    return NAME, GatherCmd, EVENTS
