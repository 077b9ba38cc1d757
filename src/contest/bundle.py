"""A test as the runner sees it: a name and its steps, each a plugin instance with its label,
parameters and declared events (ConTest's ``TestStepBundle``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contest.context import StepContext
from contest.errors import ContestError, ParameterError
from contest.params import StepParameters
from contest.registry import PluginRegistry
from contest.signals import Scope
from contest.teststep import TestStep

MAX_LABEL_LEN = 32


class BundleError(ContestError):
    """A test step of the descriptor cannot be built: unknown step, invalid parameters, or a
    missing or too long label."""


@dataclass(slots=True)
class TestStepBundle:
    __test__ = False

    step: TestStep
    label: str
    parameters: StepParameters = field(default_factory=StepParameters)
    allowed_events: frozenset[str] | None = None  # None: no check (tests building bundles by hand)

    @property
    def name(self) -> str:
        return (
            type(self.step).name if hasattr(type(self.step), "name") else type(self.step).__name__
        )


@dataclass(slots=True)
class Test:
    __test__ = False

    name: str
    steps: Sequence[TestStepBundle]
    cleanup_steps: Sequence[TestStepBundle] = ()


async def new_step_bundle(
    registry: PluginRegistry,
    name: str,
    label: str,
    parameters: StepParameters | Mapping[str, Sequence[Any]],
    *,
    check_label: bool = True,
) -> TestStepBundle:
    """Instantiate a step, validate its parameters on that same instance, check its label
    (unless the caller has: the job builder validates descriptors, labels included, first).

    Errors keep ConTest's texts, each naming the step.
    """
    try:
        plugin = registry.test_step(name)
        step = plugin.factory()
    except Exception as exc:
        raise BundleError(f"could not get the desired TestStep ({name}): {exc}") from exc
    params = parameters if isinstance(parameters, StepParameters) else StepParameters(parameters)
    ctx = StepContext(scope=Scope(), step_label=label)
    try:
        await step.validate_parameters(ctx, params)
    except ParameterError as exc:
        raise BundleError(f"could not validate parameters for test step {name}: {exc}") from exc
    except Exception as exc:
        raise BundleError(
            f"could not validate parameters for test step {name}: {type(exc).__name__}: {exc}"
        ) from exc
    if check_label and not label:
        raise BundleError(f"step has no label, but it is mandatory (step: {name})")
    if check_label and len(label) > MAX_LABEL_LEN:
        raise BundleError(f"step label {label!r} is too long: {len(label)} > {MAX_LABEL_LEN}")
    return TestStepBundle(step, label, params, plugin.events)
