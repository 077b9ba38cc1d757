"""``RandEcho``: passes or fails each target at random, on a fair coin.

Parameters: ``text`` (required, not templated; only logged). Events, per target, no payload:
``TargetSucceeded`` (the target passes) or ``TargetFailed`` (it fails with
``target randomly failed``). ConTest emitted both without declaring them; they are declared
here, so the runner's check on declared events lets them through. Pause: not supported (nothing
to wait for).
"""

from __future__ import annotations

import random
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

NAME = "RandEcho"
EVENT_SUCCEEDED = "TargetSucceeded"
EVENT_FAILED = "TargetFailed"
EVENTS = (EVENT_SUCCEEDED, EVENT_FAILED)


class RandomlyFailed(Exception):
    """The coin came up "fail" for this target."""


class RandEcho(TestStep):
    """Passes or fails each target on a fair coin (a demo of failures and events)."""

    name = NAME
    events = EVENTS

    parameters = (Parameter("text", required=True, doc="a text to log (not templated)"),)

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng if rng is not None else random.Random()

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        text = str(params.get_one("text"))

        async def one(ctx: StepContext, target: Target) -> None:
            if self.rng.randrange(2) == 0:
                await ev.emit(EVENT_SUCCEEDED, target)
                ctx.log.info("Run: target %s succeeded: %s", target, text)
                return
            await ev.emit(EVENT_FAILED, target)
            ctx.log.info("Run: target %s failed: %s", target, text)
            raise RandomlyFailed("target randomly failed")

        await for_each_target(ctx, ch, one)


def load() -> tuple[str, Any, tuple[str, ...]]:
    return NAME, RandEcho, EVENTS
