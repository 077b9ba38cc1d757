"""Strict descriptors, through the job builder (what /start and ``contest validate`` use): every
unknown key and every parameter a plugin does not take is refused with its path, at submission,
all at once; the errors they would cause further on are not repeated."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from contest.job.build import load_job
from contest.job.descriptor import DescriptorValidationError
from contest.registry import default_registry

GOOD: dict[str, Any] = {
    "JobName": "strict",
    "Runs": 1,
    "TestDescriptors": [
        {
            "TargetManagerName": "TargetList",
            "TargetManagerAcquireParameters": {"Targets": [{"ID": "T1", "FQDN": "h1"}]},
            "TargetManagerReleaseParameters": {},
            "TestFetcherName": "literal",
            "TestFetcherFetchParameters": {
                "TestName": "t",
                "Steps": [{"name": "echo", "label": "e", "parameters": {"text": ["{{ .FQDN }}"]}}],
            },
        }
    ],
    "Reporting": {
        "RunReporters": [{"Name": "TargetSuccess", "Parameters": {"SuccessExpression": "=100%"}}],
        "FinalReporters": [
            {"Name": "TargetSuccess", "Parameters": {"AverageSuccessExpression": ">50%"}}
        ],
    },
}
TD = "TestDescriptors[0]"
STEPS = f"{TD}.TestFetcherFetchParameters.Steps"


async def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        await load_job(json.dumps(doc), default_registry())
    except DescriptorValidationError as exc:
        return [(e.path, e.message) for e in exc.errors]
    return []


def td(d: dict[str, Any]) -> dict[str, Any]:
    test: dict[str, Any] = d["TestDescriptors"][0]
    return test


def target(d: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = td(d)["TargetManagerAcquireParameters"]["Targets"][0]
    return first


def step(d: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = td(d)["TestFetcherFetchParameters"]["Steps"][0]
    return first


def changed(edit: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    edit(doc)
    return doc


async def test_the_good_one_passes() -> None:
    assert await problems(GOOD) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: target(d).update(FQDNN="x"),
            [
                (
                    f"{TD}.TargetManagerAcquireParameters.Targets[0].FQDNN",
                    "target manager TargetList, Targets[0].FQDNN: unknown key; did you mean "
                    '"FQDN"?',
                )
            ],
        ),
        (
            lambda d: td(d).update(TargetManagerReleaseParameters={"Force": True}),
            [
                (
                    f"{TD}.TargetManagerReleaseParameters.Force",
                    "target manager TargetList, Force: unknown key",
                )
            ],
        ),
        (
            lambda d: target(d).update(ID=7),
            [
                (
                    f"{TD}.TargetManagerAcquireParameters.Targets[0].ID",
                    "target manager TargetList, Targets[0].ID: expected a string, got 7",
                )
            ],
        ),
        (
            lambda d: td(d).update(
                TestFetcherName="URI",
                TestFetcherFetchParameters={"TestName": "t", "Uri": "x.json", "Timeout": "5s"},
            ),
            [
                (
                    f"{TD}.TestFetcherFetchParameters.Timeout",
                    "test fetcher URI, Timeout: unknown key; known: TestName, URI",
                )
            ],
        ),
        (
            lambda d: d["Reporting"]["RunReporters"][0].update(
                Parameters={"SuccesExpression": "=1"}
            ),
            [
                (
                    "Reporting.RunReporters[0].parameters.SuccesExpression",
                    "reporter TargetSuccess, SuccesExpression: unknown key; did you mean "
                    '"SuccessExpression"?',
                ),
                (
                    "Reporting.RunReporters[0].parameters.SuccessExpression",
                    "reporter TargetSuccess, SuccessExpression: missing; it is required",
                ),
            ],
        ),
        (
            lambda d: d["Reporting"]["FinalReporters"][0].update(Name="TargetSucess"),
            [
                (
                    "Reporting.FinalReporters[0].name",
                    "reporter 'TargetSucess' is not registered; did you mean \"TargetSuccess\"?",
                )
            ],
        ),
        (
            lambda d: td(d).update(TargetManagerName="TargetLst"),
            [
                (
                    f"{TD}.TargetManagerName",
                    "target manager 'TargetLst' is not registered; did you mean \"TargetList\"?",
                )
            ],
        ),
        (
            lambda d: step(d).update(parameters={"text": ["{{ .Hostname }}"]}),
            [
                (
                    f"{STEPS}[0].parameters.text[0]",
                    "step Echo, parameter text[0]: the template reads .Hostname (line 1, column "
                    "4), which "
                    "a target does not have (it has ID, FQDN, PrimaryIPv4, PrimaryIPv6, "
                    "TargetManagerState)",
                )
            ],
        ),
        (
            lambda d: step(d).update(name="", nmae="echo"),
            [(f"{STEPS}[0].nmae", 'unknown key "nmae" in a test step; did you mean "name"?')],
        ),
        (
            lambda d: step(d).update(name="ehco"),
            [(f"{STEPS}[0]", 'unknown step "ehco"; did you mean "Echo"?')],
        ),
    ],
)
async def test_refused_with_the_path(edit: Any, expected: list[tuple[str, str]]) -> None:
    assert await problems(changed(edit)) == expected


async def test_a_misspelt_key_does_not_hide_the_other_steps_problems() -> None:
    def edit(d: dict[str, Any]) -> None:
        steps = d["TestDescriptors"][0]["TestFetcherFetchParameters"]["Steps"]
        steps.append({"nmae": "sleep", "label": "s", "parameters": {"duration": ["1s"]}})
        steps.append({"name": "sleep", "label": "t", "parameters": {"duration": ["soon"]}})

    assert await problems(changed(edit)) == [
        (f"{STEPS}[1].nmae", 'unknown key "nmae" in a test step; did you mean "name"?'),
        (
            f"{STEPS}[2].parameters.duration[0]",
            'step Sleep, parameter duration[0]: expected a duration such as "30s" or "1m30s", '
            'got "soon"',
        ),
    ]
