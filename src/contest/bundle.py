"""A test as the runner sees it: a name and its steps, each a plugin instance with its label,
parameters and declared events (ConTest's ``TestStepBundle``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contest.context import StepContext
from contest.errors import ContestError, ParameterError
from contest.params import StepParameters
from contest.paramspec import ParameterProblems, Problem, declared
from contest.registry import PluginRegistry
from contest.signals import Scope
from contest.suggest import hint
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


class StepParameterProblems(BundleError):
    """A step's parameters break its declaration: every problem, each with its path under the
    step's ``parameters`` (``duration[0]``, ``emit_stdot``)."""

    def __init__(self, step_name: str, problems: Sequence[Problem]) -> None:
        self.step_name = step_name
        self.problems = list(problems)
        super().__init__("; ".join(f"step {step_name}, parameter {p}" for p in self.problems))


async def validate_step(step: TestStep, ctx: StepContext, params: StepParameters) -> None:
    """What a submission checks of one step: its declared parameters (if it declares them;
    :class:`ParameterProblems` lists every problem), then its own ``validate_parameters``."""
    decl = declared(type(step))
    if decl is not None:
        problems = decl.check_step(params)
        if problems:
            raise ParameterProblems(problems)
    await step.validate_parameters(ctx, params)


def _unknown_step(registry: PluginRegistry, name: str) -> BundleError:
    if not name:
        return BundleError("the step has no name")
    known = [p.name for p in registry.plugins("teststeps")]
    return BundleError(
        f'unknown step "{name}"{hint(name, known, " (contest plugins lists the steps)")}'
    )


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

    Errors name the step; a step's own refusal keeps ConTest's text ("could not validate
    parameters for test step ..."), a declared parameter's refusal is a
    :class:`StepParameterProblems` with every problem.
    """
    plugin = registry.find("teststeps", name)
    if plugin is None:
        raise _unknown_step(registry, name)
    try:
        step = plugin.factory()
    except Exception as exc:
        raise BundleError(f"could not create step {plugin.name}: {exc}") from exc
    params = parameters if isinstance(parameters, StepParameters) else StepParameters(parameters)
    ctx = StepContext(scope=Scope(), step_label=label)
    try:
        await validate_step(step, ctx, params)
    except ParameterProblems as exc:
        raise StepParameterProblems(plugin.name, exc.problems) from exc
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
