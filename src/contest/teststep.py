"""The step plugin contract: everything a step author needs, importable from one module.

A step is a class with a ``name``, the ``events`` it may emit, the ``parameters`` it takes,
``validate_parameters`` and ``run``. The runner creates one instance per step of a test,
validates its parameters on that instance, then calls ``run`` once per test run with the step's
channels::

    class Hello(TestStep):
        name = "Hello"
        events = ("Greeted",)
        parameters = (Parameter("text", required=True, templated=True, doc="what to say"),)

        async def run(self, ctx, ch, params, ev, resume_state):
            async def greet(ctx, target):
                await ev.emit("Greeted", target, {"text": params.get_one("text").expand(target)})
            await for_each_target(ctx, ch, greet)

See ``docs/plugin-guide.md`` for the whole story (pause, resume, cancellation).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar

from contest.channels import StepChannels, StepInput, StepOutput, StepResult
from contest.context import StepContext
from contest.errors import (
    Cancelled,
    EventNotAllowed,
    ParameterError,
    Paused,
    StepClosedChannels,
    StepCrashed,
    StepError,
    StepLostTargets,
    StepPausedWithoutRequest,
    StepReturnedDuplicateResult,
    StepReturnedEarly,
    StepReturnedNoTarget,
    StepReturnedUnexpectedResult,
    StepsNeverReturned,
)
from contest.events import EventEmitter
from contest.params import Param, StepParameters, register_function, unregister_function
from contest.paramspec import Kind, Parameter, ParameterProblems, Parameters, declared
from contest.stephelpers import TargetWithData, for_each_target, for_each_target_with_resume
from contest.target import Target


class TestStep(abc.ABC):
    """The base of every step plugin. One instance per step of a test; ``run`` is called once
    per test run, never concurrently, so an instance may keep what ``validate_parameters``
    parsed."""

    __test__ = False  # not a pytest test class, whatever its name says

    name: ClassVar[str]
    events: ClassVar[Sequence[str]] = ()
    #: True if the step starts processes on the server's machine (``Cmd``, ``GatherCmd``): such
    #: a step is refused by ``contest serve`` unless it runs with ``--allow-local-exec``. A step
    #: that does so only for some parameters overrides :meth:`uses_local_processes` instead.
    runs_local_processes: ClassVar[bool] = False
    #: The parameters the step takes, as :class:`Parameter` declarations (a tuple, or a
    #: :class:`Parameters` for options such as ``others``). The framework checks a descriptor's
    #: parameters against them before ``validate_parameters`` runs, and documents the step from
    #: them. ``None``: not declared; ``validate_parameters`` alone checks them.
    parameters: ClassVar[Parameters | Sequence[Parameter] | None] = None
    #: Whether a pause with targets in flight makes the step raise ``Paused`` with their state
    #: (and a resumed step finish them), rather than finish them first. Shown in the reference
    #: and held to by the conformance suite (``contest.testing.conformance``).
    supports_pause: ClassVar[bool] = False
    #: Parameters that hold secrets, never shown by the API nor logged (``password`` always
    #: is, at any depth). A dotted name reaches into a parameter's JSON value:
    #: ``"bag.transport.options.password"``. Derived from the declaration (the parameters
    #: declared ``Parameter(..., secret=True)``, one place for "secret"); a step without a
    #: declaration may list them here.
    secret_parameters: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "parameters" in cls.__dict__:
            decl = declared(cls)  # a declaration of the wrong shape fails at import, here
            cls.parameters = decl
            if decl is not None:
                if "secret_parameters" in cls.__dict__:
                    raise TypeError(
                        f"{cls.__name__}: declare secret parameters with Parameter(..., "
                        "secret=True), not in secret_parameters as well"
                    )
                cls.secret_parameters = decl.secret_names()

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        """Check the parameters; raise ``ParameterError`` naming the bad one. Default: accept."""

    def uses_local_processes(self) -> bool:
        """Whether this step, as its parameters were validated, starts processes on the
        server's machine (asked after ``validate_parameters``). Default: the class's
        ``runs_local_processes``."""
        return self.runs_local_processes

    @abc.abstractmethod
    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        """Take targets from ``ch.input`` until it ends; report each on ``ch.output``."""


__all__ = [
    "Cancelled",
    "EventEmitter",
    "EventNotAllowed",
    "Kind",
    "Param",
    "Parameter",
    "ParameterError",
    "ParameterProblems",
    "Parameters",
    "Paused",
    "StepChannels",
    "StepClosedChannels",
    "StepContext",
    "StepCrashed",
    "StepError",
    "StepInput",
    "StepLostTargets",
    "StepOutput",
    "StepParameters",
    "StepPausedWithoutRequest",
    "StepResult",
    "StepReturnedDuplicateResult",
    "StepReturnedEarly",
    "StepReturnedNoTarget",
    "StepReturnedUnexpectedResult",
    "StepsNeverReturned",
    "Target",
    "TargetWithData",
    "TestStep",
    "for_each_target",
    "for_each_target_with_resume",
    "register_function",
    "unregister_function",
]
