"""``literal``: the test's steps are written in the job descriptor.

Fetch parameters: ``{"TestName": "<name>", "Steps": [{"name", "label", "parameters"}, ...]}``,
decoded with Go's rules exactly as the descriptor's own fields are (keys case-insensitive, unknown
keys refused, parameter values kept as JSON text; see :func:`contest.job.descriptor.decode_steps`).
``TestName`` is required unless the fetcher reads cleanup steps (``require_name=False``).

Whether the steps make sense (labels present and unique, plugins registered, parameters accepted)
is checked by the job builder, as for any fetcher; here only their shape is.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contest.context import PluginContext
from contest.errors import ParameterError
from contest.job.descriptor import decode_fetch_parameters
from contest.paramspec import Kind, Parameter, Parameters
from contest.testfetcher import TestFetcher

if TYPE_CHECKING:
    from contest.job.descriptor import StepDescriptor

NAME = "literal"


@dataclass(frozen=True)
class FetchParameters:
    """The validated parameters: the test's name (may be empty for cleanups) and its steps."""

    test_name: str = ""
    steps: list[StepDescriptor] = field(default_factory=list)


class Literal(TestFetcher):
    """Steps from the descriptor itself."""

    name = NAME
    fetch_parameters = Parameters(
        Parameter("TestName", doc="the test's name (required, except for cleanup steps)"),
        Parameter("Steps", Kind.STEPS, doc="the steps: name, label, parameters"),
        go_struct=True,
    )

    def validate_fetch_parameters(self, params: Any, require_name: bool = True) -> FetchParameters:
        # ``None`` is JSON null (or no parameters at all): an empty test, refused for want of a
        # name rather than with Go's "unexpected end of JSON input"
        decoded, errors = decode_fetch_parameters("null" if params is None else params)
        if errors:
            raise ParameterError("; ".join(str(e) for e in errors))
        if require_name and decoded.test_name == "":
            raise ParameterError("TestName: test name cannot be empty for fetch parameters")
        return FetchParameters(decoded.test_name, list(decoded.steps))

    async def fetch(self, ctx: PluginContext, params: Any) -> tuple[str, list[StepDescriptor]]:
        fp = params
        if not isinstance(fp, FetchParameters):
            fp = self.validate_fetch_parameters(params, require_name=False)
        # copies: the job keeps what was fetched, and the parameters may serve again
        return fp.test_name, copy.deepcopy(fp.steps)


def new() -> Literal:
    return Literal()


def load() -> tuple[str, Callable[[], TestFetcher]]:
    """Entry point of the ``contest.testfetchers`` group."""
    return NAME, new
