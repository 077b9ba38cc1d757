"""``variables`` (LB): sets step variables per target, for later steps to read.

Parameters: every parameter is a variable. Its name must be an identifier (a letter, then
letters, digits or ``_``), it takes exactly one value, and the value is any JSON value (string,
number, bool, object, list), kept as typed JSON and not templated. All of this is checked at
submission.

Per target, each value is stored under (target, this step's label, name). A later step reads it
with ``ctx.variables.get(target.id, "<label>", "<name>")`` (the decoded JSON value), or from a
parameter template with ``{{ StringVar "<label>.<name>" }}`` (strings) or
``{{ IntVar "<label>.<name>" }}`` (integers). The runner records a ``VariableEmitted`` event
``{"Name", "Value": "<json text>"}`` for each; the step declares no events of its own.

Pause: not supported, nothing to wait for; the variables themselves are part of the runner's
resume state, so they survive a pause.
"""

from __future__ import annotations

import json
from typing import Any

from contest.teststep import (
    EventEmitter,
    Kind,
    Parameter,
    ParameterError,
    Parameters,
    StepChannels,
    StepContext,
    StepParameters,
    Target,
    TestStep,
    for_each_target,
)
from contest.variables import RawJSON, is_identifier

NAME = "variables"
EVENTS: tuple[str, ...] = ()


class Variables(TestStep):
    """Sets each parameter as a typed step variable of every target (read with StringVar/IntVar)."""

    name = NAME
    events = EVENTS
    parameters = Parameters(
        others=Parameter(
            "<variable>",
            Kind.JSON,
            doc="any parameter name (an identifier) sets the variable of that name to its one "
            "value, any JSON value, not templated",
        )
    )

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        values: dict[str, str] = {}
        for name, ps in params.items():
            if not is_identifier(name):
                raise ParameterError(
                    f"invalid variable name: '{name}': must be a letter followed by letters, "
                    "digits or underscores"
                )
            if len(ps) != 1:
                raise ParameterError(
                    f"invalid number of parameter '{name}' values: {len(ps)} (expected 1)"
                )
            try:
                json.loads(ps[0].raw)
            except ValueError as exc:
                raise ParameterError(f"{name}: invalid json '{ps[0].raw}': {exc}") from exc
            values[name] = ps[0].raw
        self.values = values

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        variables = ctx.variables
        if variables is None:
            raise RuntimeError("variables: the runner gave this step no variable store")
        values = self.values

        async def one(ctx: StepContext, target: Target) -> None:
            for name, raw in values.items():
                ctx.log.debug("target %s: variable %s = %s", target.id, name, raw)
                variables.add(target.id, name, RawJSON(raw))

        await for_each_target(ctx, ch, one)


def load() -> tuple[str, Any, tuple[str, ...]]:
    return NAME, Variables, EVENTS
