"""``Sleep``: waits a while per target, and pauses and resumes without losing time.

Parameters: see :attr:`Sleep.parameters`. Events: none. Pause: supported. Each target's deadline
is absolute; on pause the step saves it, and on resume it sleeps only what is left (a deadline
already past finishes at once). Cancellation ends every wait at once.
"""

from __future__ import annotations

import time
from typing import Any

from contest.teststep import (
    EventEmitter,
    Kind,
    Parameter,
    StepChannels,
    StepContext,
    StepParameters,
    TargetWithData,
    TestStep,
    for_each_target_with_resume,
)

NAME = "Sleep"
STATE_VERSION = 1


DURATION = Parameter(
    "duration",
    Kind.DURATION,
    required=True,
    minimum=0,
    doc='how long each target waits, a Go duration ("2s", "1m30s")',
)


class Sleep(TestStep):
    """Waits a while per target; a pause saves each target's deadline, so no time is lost."""

    name = NAME
    parameters = (DURATION,)
    supports_pause = True

    def __init__(self) -> None:
        self.seconds = 0.0

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        self.seconds = DURATION.read(params)

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        seconds = self.seconds

        async def one(ctx: StepContext, twd: TargetWithData) -> None:
            if twd.data is None:  # a new target: its deadline (ms since the epoch) starts now
                twd.data = int((time.time() + seconds) * 1000)
            left = twd.data / 1000 - time.time()
            if left > 0:
                await ctx.sleep(left)  # raises Paused: twd.data is saved as it is

        await for_each_target_with_resume(ctx, ch, resume_state, STATE_VERSION, one)


def load() -> tuple[str, Any, tuple[str, ...]]:
    return NAME, Sleep, ()
