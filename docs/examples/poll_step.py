"""``Poll``: starts a long job per target on an outside service and polls it until it is done.

It stands for any step that waits on something slow outside contest (a provisioning system, a CI
build, a firmware flash), and shows how such a step survives a pause: the job's token is saved per
target, and a resumed step goes on polling the same job instead of starting another.

Parameters: ``duration`` (required, Go duration such as ``"30s"``: how long the simulated job
takes), ``poll_interval`` (optional Go duration, default ``"1s"``).
Events: ``PollJobStarted`` (payload ``{"job": <token>}``) when a target's job is started,
``PollJobDone`` (payload ``{"job": <token>, "polls": <number of polls>}``) when it is done.
Pause: supported; each target's token and poll count are kept in the resume state.
"""

from __future__ import annotations

import time

from contest.teststep import (
    EventEmitter,
    Kind,
    Parameter,
    StepChannels,
    StepContext,
    StepParameters,
    Target,
    TargetWithData,
    TestStep,
    for_each_target_with_resume,
)

NAME = "Poll"
EVENTS = ("PollJobStarted", "PollJobDone")
STATE_VERSION = 1  # bump it when the shape of the per-target data changes


class SimulatedService:
    """Stands in for the outside service's API. A token names the job and when it ends, so a
    job outlives this process, as a real service's would."""

    def start(self, target: Target, seconds: float) -> str:
        return f"{target.id}@{int((time.time() + seconds) * 1000)}"

    def is_done(self, token: str) -> bool:
        _, _, ends_ms = token.rpartition("@")
        return time.time() * 1000 >= int(ends_ms)


DURATION = Parameter(
    "duration", Kind.DURATION, required=True, minimum=0, doc="how long the simulated job takes"
)
POLL_INTERVAL = Parameter(
    "poll_interval", Kind.DURATION, default="1s", minimum=0, doc="how often to ask the service"
)


class Poll(TestStep):
    """Starts a (simulated) outside job per target and polls it until done; resumable."""

    name = NAME
    events = EVENTS
    parameters = (DURATION, POLL_INTERVAL)
    supports_pause = True  # a pause saves each target's job token; the resumed step polls on

    def __init__(self) -> None:
        self.service = SimulatedService()
        self.duration = 0.0
        self.poll_interval = 1.0

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        # the declarations checked them already; read() gives seconds, or the default
        self.duration = DURATION.read(params)
        self.poll_interval = POLL_INTERVAL.read(params)

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        async def one(ctx: StepContext, twd: TargetWithData) -> None:
            if twd.data is None:  # a new target: start its job, and note the token at once
                token = self.service.start(twd.target, self.duration)
                twd.data = {"job": token, "polls": 0}
                await ev.emit("PollJobStarted", twd.target, {"job": token})
            # else: resumed after a pause; twd.data is what we stored before pausing
            while not self.service.is_done(twd.data["job"]):
                await ctx.sleep(self.poll_interval)  # raises Paused on pause, Cancelled on cancel
                twd.data["polls"] += 1
            await ev.emit("PollJobDone", twd.target, twd.data)

        await for_each_target_with_resume(ctx, ch, resume_state, STATE_VERSION, one)


def load() -> tuple[str, type[Poll], tuple[str, ...]]:
    return NAME, Poll, EVENTS
