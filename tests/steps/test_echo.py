"""Echo and RandEcho: templated text per target, per-target failures, declared events."""

from __future__ import annotations

import logging
import random

import pytest
from stepkit import names, refused, run_steps, validate, verdicts

from contest.plugins.teststeps import echo as echo_module
from contest.plugins.teststeps import randecho as randecho_module
from contest.plugins.teststeps.echo import Echo
from contest.plugins.teststeps.randecho import RandEcho


async def test_echo_logs_the_expanded_text_and_passes_every_target(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="contest.step")
    out = await run_steps(
        [(Echo(), "S", {"text": ["hello {{ .ID }}"]})], ["T1", "T2"], job_id=7, run_id=3
    )
    assert out.error is None
    assert verdicts(out) == {"T1": None, "T2": None}
    assert names(out, "T1") == ["TargetIn", "TargetOut"]
    logged = {r.getMessage() for r in caplog.records}
    assert "This is job 7, run 3 on target T1 with text 'hello T1'" in logged
    assert "This is job 7, run 3 on target T2 with text 'hello T2'" in logged


async def test_echo_fails_only_the_target_whose_text_cannot_be_expanded() -> None:
    out = await run_steps(
        [(Echo(), "S", {"text": ['{{ if eq .ID "T1" }}{{ StringVar "x.y" }}{{ end }}ok']})],
        ["T1", "T2"],
    )
    assert out.error is None  # LB failed the whole step here
    result = verdicts(out)
    assert result["T2"] is None
    assert "x" in result["T1"]


async def test_echo_and_randecho_refuse_a_missing_text() -> None:
    assert await refused(Echo(), {}) == "text: missing; it is required"
    assert await refused(Echo(), {"text": [""]}) == "text: must not be empty"
    assert await refused(Echo(), {"text": ["{{ .ID"]}) == (
        "text[0]: not a valid template: unclosed action (line 1, column 7)"
    )
    assert await refused(Echo(), {"text": ["hi {{ .Hostname }}"]}) == (
        "text[0]: the template reads .Hostname (line 1, column 7), which a target does not have "
        "(it has ID, FQDN, PrimaryIPv4, PrimaryIPv6, TargetManagerState)"
    )
    assert await refused(Echo(), {"text": ["{{ .Fqdn }}"]}) == (
        "text[0]: the template reads .Fqdn (line 1, column 4), which a target does not have; did "
        'you mean "FQDN"?'
    )
    assert await refused(RandEcho(), {}) == "text: missing; it is required"
    await validate(RandEcho(), {"text": ["{{ not a template, and not expanded"]})


async def test_randecho_flips_a_coin_per_target_with_declared_events() -> None:
    targets = [f"T{i}" for i in range(40)]
    out = await run_steps([(RandEcho(random.Random(1)), "S", {"text": ["x"]})], targets)
    assert out.error is None
    result = verdicts(out)
    passed = [t for t, err in result.items() if err is None]
    failed = [t for t, err in result.items() if err is not None]
    assert passed and failed and len(result) == 40  # the harness's emitter enforces: declared
    assert {result[t] for t in failed} == {"target randomly failed"}
    for t in passed:
        assert names(out, t) == ["TargetIn", "TargetSucceeded", "TargetOut"]
    for t in failed:
        assert names(out, t) == ["TargetIn", "TargetFailed", "TargetErr"]
    # no payloads
    assert {e[3] for e in out.events() if e[2] in ("TargetSucceeded", "TargetFailed")} == {None}


def test_load_and_summaries() -> None:
    assert echo_module.load() == ("Echo", Echo, ())
    assert randecho_module.load() == ("RandEcho", RandEcho, ("TargetSucceeded", "TargetFailed"))
    for cls in (Echo, RandEcho):
        assert cls.__doc__ and "\n" not in cls.__doc__.strip()
