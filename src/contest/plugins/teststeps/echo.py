"""``Echo``: logs a text per target, and passes every target.

Parameters: ``text`` (required): a template expanded per target (``"hello {{ .ID }}"``), as in
LB; it is checked at submission, so a broken template refuses the job. Events: none. A target
whose text cannot be expanded (say, ``{{ StringVar "s.v" }}`` before step ``s`` set ``v``)
fails with the expansion error; LB failed the whole step instead, and so every target.

Pause: not supported; there is nothing to wait for. Cancellation: the target is not reported
(LB's hand-written loop could block writing a result nobody read any more).
"""

from __future__ import annotations

from typing import Any

from contest.teststep import (
    EventEmitter,
    Parameter,
    StepChannels,
    StepContext,
    StepParameters,
    Target,
    TestStep,
    for_each_target,
)

NAME = "Echo"
EVENTS: tuple[str, ...] = ()


class Echo(TestStep):
    """Logs a templated text per target; every target passes."""

    name = NAME
    events = EVENTS
    parameters = (
        Parameter("text", required=True, templated=True, doc="the text to log for each target"),
    )

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        text = params.get_one("text")

        async def one(ctx: StepContext, target: Target) -> None:
            output = text.expand(target)
            ctx.log.info(
                "This is job %d, run %d on target %s with text '%s'",
                ctx.job_id,
                ctx.run_id,
                target.id,
                output,
            )

        await for_each_target(ctx, ch, one)


def load() -> tuple[str, Any, tuple[str, ...]]:
    return NAME, Echo, EVENTS
