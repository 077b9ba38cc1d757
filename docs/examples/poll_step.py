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

from contest.golang.time import parse_duration
from contest.teststep import (
    EventEmitter,
    ParameterError,
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


def _duration(params: StepParameters, name: str, default: str) -> float:
    raw = params.get_one(name)
    try:
        seconds = parse_duration(str(raw) if not raw.is_empty() else default)
    except ValueError as exc:
        raise ParameterError(f"{name}: {exc}") from exc
    if seconds < 0:
        raise ParameterError(f"{name}: must not be negative, got {raw}")
    return seconds


class Poll(TestStep):
    """Starts a (simulated) outside job per target and polls it until done; resumable."""

    name = NAME
    events = EVENTS

    def __init__(self) -> None:
        self.service = SimulatedService()
        self.duration = 0.0
        self.poll_interval = 1.0

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        if params.get_one("duration").is_empty():
            raise ParameterError("duration: missing required parameter")
        self.duration = _duration(params, "duration", "0s")
        self.poll_interval = _duration(params, "poll_interval", "1s")

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
