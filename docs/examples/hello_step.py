"""``Hello``: greets every target with a text of your choosing.

Parameters: ``text`` (required): a template, expanded per target (``"hi {{ .ID }}"``).
Events: ``Greeted`` per target, payload ``{"text": <the expanded text>}``.
Pause: not supported (a greeting is quick): the targets in hand are finished first.
"""

from __future__ import annotations

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

NAME = "Hello"
EVENTS = ("Greeted",)


class Hello(TestStep):
    """Greets every target with a templated text."""

    name = NAME
    events = EVENTS
    # checked at submission: present, one value, a template that parses and reads only fields a
    # target has; and documented by `contest plugins Hello`
    parameters = (
        Parameter("text", required=True, templated=True, doc="the greeting, for each target"),
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

        async def greet(ctx: StepContext, target: Target) -> None:
            # an expansion error (say, a StringVar nobody set) raises: it fails this target only
            greeting = text.expand(target)
            ctx.log.info("greeting %s", target.id)
            await ev.emit("Greeted", target, {"text": greeting})

        await for_each_target(ctx, ch, greet)


def load() -> tuple[str, type[Hello], tuple[str, ...]]:
    return NAME, Hello, EVENTS
