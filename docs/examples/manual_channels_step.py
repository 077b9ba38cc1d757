"""``Throttled``: runs a local command per target, at most ``max_parallel`` at a time.

It reads and reports targets itself instead of using a for-each-target helper, because it takes a
target only when a slot is free (the helpers start every target at once). It kills its commands
when the job is cancelled.

Parameters: ``executable`` (required) and ``args`` (any number): templates, expanded per target;
``max_parallel`` (optional integer, default 4).
Events: ``CommandStarted`` (payload ``{"argv": [...], "pid": <pid>}``) and ``CommandEnded``
(payload ``{"exit_code": <code>}``) per target. A non-zero exit code fails the target.
Pause: not supported: the commands in flight finish, and the runner sends no new target.
POSIX only (the command runs in its own process group, which is killed on cancel).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from contest.teststep import (
    Cancelled,
    EventEmitter,
    Kind,
    Parameter,
    StepChannels,
    StepContext,
    StepParameters,
    StepResult,
    Target,
    TestStep,
)

NAME = "Throttled"
EVENTS = ("CommandStarted", "CommandEnded")
MAX_PARALLEL = Parameter(
    "max_parallel", Kind.INTEGER, default=4, minimum=1, doc="commands running at once, at most"
)


class Throttled(TestStep):
    """Runs a local command per target, at most max_parallel at a time; kills them on cancel."""

    name = NAME
    events = EVENTS
    parameters = (
        Parameter("executable", required=True, templated=True, doc="the program to run"),
        Parameter("args", many=True, templated=True, doc="its arguments"),
        MAX_PARALLEL,
    )

    def __init__(self) -> None:
        self.max_parallel = 4

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        self.max_parallel = MAX_PARALLEL.read(params)

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        slots = asyncio.Semaphore(self.max_parallel)
        tasks: set[asyncio.Task[None]] = set()

        async def one(target: Target) -> None:
            error: Exception | str | None
            try:
                error = await self.command(ctx, ev, params, target)
            except Exception as exc:  # a template that fails for this target, a missing binary
                error = exc
            finally:
                slots.release()
            if not ctx.is_cancelled():  # once cancelled, the job needs no results
                await ch.output.put(StepResult(target, error))

        try:
            while True:
                await slots.acquire()  # take a target only when it can start at once
                target = await ch.input.get()  # None once the input is closed
                if target is None:
                    break
                task = asyncio.create_task(one(target))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(set(tasks))  # every target taken is reported before we return
        finally:
            for task in tasks:  # only if we are abandoned ourselves: stop the commands too
                task.cancel()
        if ctx.is_cancelled():
            raise Cancelled()

    async def command(
        self, ctx: StepContext, ev: EventEmitter, params: StepParameters, target: Target
    ) -> str | None:
        """Run the command for one target: None if it exited 0, else the failure message."""
        argv = [p.expand(target) for p in [params.get_one("executable"), *params.get("args")]]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killed with its children
        )
        await ev.emit("CommandStarted", target, {"argv": argv, "pid": proc.pid})
        exited = asyncio.ensure_future(proc.wait())
        cancelled = asyncio.ensure_future(ctx.wait_cancelled())
        try:
            await asyncio.wait({exited, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
            if proc.returncode is None:  # cancelled (or abandoned): kill it, then reap it
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await exited
        if ctx.is_cancelled():
            return "cancelled"  # not reported: the job is dead
        await ev.emit("CommandEnded", target, {"exit_code": proc.returncode})
        return None if proc.returncode == 0 else f"exit code {proc.returncode}"


def load() -> tuple[str, type[Throttled], tuple[str, ...]]:
    return NAME, Throttled, EVENTS
