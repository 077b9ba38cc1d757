"""``Example``: the smallest useful step, without pause support.

Parameters: ``FailPct`` (optional integer 0-100): the chance, per target, of failing it.
Events: ``ExampleStartedEvent``, then ``ExampleFinishedEvent`` or ``ExampleFailedEvent``, per
target, without payload. Pause: not supported; targets in flight finish first.
"""

from __future__ import annotations

import random
from typing import Any

from contest.teststep import (
    EventEmitter,
    Kind,
    Parameter,
    StepChannels,
    StepContext,
    StepParameters,
    Target,
    TestStep,
    for_each_target,
)

NAME = "Example"
EVENTS = ("ExampleStartedEvent", "ExampleFinishedEvent", "ExampleFailedEvent")


FAIL_PCT = Parameter(
    "FailPct",
    Kind.INTEGER,
    default=0,
    minimum=0,
    maximum=100,
    doc="the chance, in percent, that a target fails",
)


class TargetFailed(Exception):
    """The random roll said this target fails (FailPct)."""


class Example(TestStep):
    """Emits an event per target and fails FailPct percent of them at random."""

    name = NAME
    events = EVENTS
    parameters = (FAIL_PCT,)

    def __init__(self) -> None:
        self.fail_pct = 0

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        self.fail_pct = FAIL_PCT.read(params)

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async def one(ctx: StepContext, target: Target) -> None:
            await ev.emit("ExampleStartedEvent", target)
            if self.fail_pct and random.randint(0, 100) <= self.fail_pct:
                await ev.emit("ExampleFailedEvent", target)
                raise TargetFailed("target failed")
            await ev.emit("ExampleFinishedEvent", target)

        await for_each_target(ctx, ch, one)


def load() -> tuple[str, Any, tuple[str, ...]]:
    return NAME, Example, EVENTS
