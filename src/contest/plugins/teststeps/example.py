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
    ParameterError,
    StepChannels,
    StepContext,
    StepParameters,
    Target,
    TestStep,
    for_each_target,
)

NAME = "Example"
EVENTS = ("ExampleStartedEvent", "ExampleFinishedEvent", "ExampleFailedEvent")


class TargetFailed(Exception):
    """The random roll said this target fails (FailPct)."""


class Example(TestStep):
    """Emits an event per target and fails FailPct percent of them at random."""

    name = NAME
    events = EVENTS

    def __init__(self) -> None:
        self.fail_pct = 0

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        if params.get_one("FailPct").is_empty():
            return
        self.fail_pct = params.get_int("FailPct")
        if not 0 <= self.fail_pct <= 100:
            raise ParameterError(f"FailPct: must be between 0 and 100, got {self.fail_pct}")

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
