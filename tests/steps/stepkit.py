"""Helpers for the built-in step tests: parameters, validation, events, and process checks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

from contest.bundle import validate_step
from contest.context import StepContext
from contest.events import TestEvent
from contest.params import StepParameters
from contest.signals import Scope
from contest.testing import run_steps
from contest.testing.harness import RunOutcome
from contest.teststep import ParameterError, TestStep

__all__ = ["RunOutcome", "run_steps"]


async def validate(step: TestStep, params: Mapping[str, Sequence[Any]]) -> None:
    """The declared checks, then ``validate_parameters``, with decoded JSON values, as a job
    submission does."""
    await validate_step(
        step, StepContext(scope=Scope(), step_label="S"), StepParameters.from_values(params)
    )


async def refused(step: TestStep, params: Mapping[str, Sequence[Any]]) -> str:
    """The text of the ``ParameterError`` the parameters are refused with."""
    try:
        await validate(step, params)
    except ParameterError as exc:
        return str(exc)
    raise AssertionError(f"parameters accepted: {params}")


def names(out: RunOutcome, target: str | None = None, label: str | None = None) -> list[str]:
    return [e[2] for e in out.events(target=target, label=label)]


def step_events(out: RunOutcome, name: str, target: str | None = None) -> list[TestEvent]:
    return [
        e
        for e in out.sink.test
        if e.name == name and (target is None or (e.target is not None and e.target.id == target))
    ]


def payloads(out: RunOutcome, name: str, target: str | None = None) -> list[Any]:
    return [e.payload for e in step_events(out, name, target)]


def verdicts(out: RunOutcome, label: str = "S") -> dict[str, Any]:
    """target id -> None (passed) or the error text, from TargetOut/TargetErr of the step."""
    result: dict[str, Any] = {}
    for _label, tid, name, payload in out.events(label=label):
        if name == "TargetOut":
            result[str(tid)] = None
        elif name == "TargetErr":
            result[str(tid)] = payload["Error"]
    return result


def live_group_members(pgid: int) -> list[int]:
    """The pids in process group ``pgid`` that are not zombies (a zombie is dead, but ``kill``
    still finds it, and in a container nobody may reap it)."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            alive.append(int(entry))
    return alive


async def wait_group_gone(pgid: int, within: float = 2.0) -> list[int]:
    """Poll until nothing live is left in the group; what is left after ``within``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        left = live_group_members(pgid)
        if not left or loop.time() >= deadline:
            return left
        await asyncio.sleep(0.02)
