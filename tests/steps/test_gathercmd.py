"""GatherCmd against real processes: one run for all targets, failure on every target (never a
pass), pause while gathering keeps the targets, cancellation kills the group."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from stepkit import names, payloads, refused, run_steps, validate, verdicts, wait_group_gone

from contest.errors import Cancelled
from contest.plugins.teststeps import gathercmd as gathercmd_module
from contest.plugins.teststeps.gathercmd import GatherCmd
from contest.testing.steps import TestStepFixture

SH = shutil.which("sh") or "/bin/sh"
TARGETS = ["T1", "T2", "T3"]


def sh(script: str, **extra: list[object]) -> dict[str, list[object]]:
    return {"binary": [SH], "args": ["-c", script], **extra}


async def test_runs_once_for_all_targets_after_the_last_one_arrived(tmp_path: Path) -> None:
    log = tmp_path / "runs"
    out = await run_steps(
        [
            (TestStepFixture(), "Before", {"DelayTargets": ["T3=400"]}),
            (GatherCmd(), "S", sh(f"date +%s.%N >> {log}; echo hi")),
        ],
        TARGETS,
    )
    assert out.error is None
    assert verdicts(out) == {"T1": None, "T2": None, "T3": None}
    assert len(log.read_text().splitlines()) == 1  # once, not per target
    # only when T3 (delayed in the step before) was in: every target entered before the start
    starts = [e for e in out.sink.test if e.name == "GatherCmdStart"]
    ins = [e for e in out.sink.test if e.name == "TargetIn" and e.header.step_label == "S"]
    assert len(starts) == 1 and len(ins) == 3
    assert all(i.sequence < starts[0].sequence for i in ins)
    # the events go to one target only
    first = starts[0].target
    assert first is not None
    assert payloads(out, "GatherCmdStart", first.id) == [
        {"Path": SH, "Args": [SH, "-c", f"date +%s.%N >> {log}; echo hi"]}
    ]
    assert payloads(out, "GatherCmdEnd", first.id) == [None]
    others = [t for t in TARGETS if t != first.id]
    for tid in others:
        assert names(out, tid, label="S") == ["TargetIn", "TargetOut"]


async def test_a_failure_fails_every_target_and_reports_the_output() -> None:
    out = await run_steps([(GatherCmd(), "S", sh("echo out; echo err >&2; exit 3"))], TARGETS)
    assert out.error is None  # not a step error, as in ConTest: a verdict on each target
    assert verdicts(out) == {t: "exit status 3" for t in TARGETS}
    assert payloads(out, "GatherCmdEnd") == [{"ExitCode": 3, "Err": "stdout: out\n\nstderr: err\n"}]


async def test_a_command_that_cannot_start_fails_every_target(tmp_path: Path) -> None:
    missing = tmp_path / "nothere"
    out = await run_steps([(GatherCmd(), "S", {"binary": [str(missing)]})], ["T1", "T2"])
    text = f"fork/exec {missing}: no such file or directory"
    assert verdicts(out) == {"T1": text, "T2": text}
    assert payloads(out, "GatherCmdEnd") == [{"ExitCode": 0, "Err": f"unknown error: {text}"}]


async def test_the_err_payload_is_cut_at_10240_bytes() -> None:
    out = await run_steps(
        [(GatherCmd(), "S", sh("yes 0123456789 | head -c 50000; exit 1"))], ["T1"]
    )
    (payload,) = payloads(out, "GatherCmdEnd")
    assert payload["ExitCode"] == 1
    assert len(payload["Err"].encode()) == 10240
    assert payload["Err"].startswith("stdout: 0123456789\n")


async def test_timeout_fails_every_target_and_stops_the_group() -> None:
    t0 = time.monotonic()
    out = await run_steps(
        [(GatherCmd(), "S", sh("echo $$; sleep 30 & sleep 30", timeout=["300ms"]))],
        ["T1", "T2"],
    )
    assert time.monotonic() - t0 < 3
    assert verdicts(out) == {"T1": "timed out after 300ms", "T2": "timed out after 300ms"}
    (end,) = payloads(out, "GatherCmdEnd")
    assert end["ExitCode"] == -1
    pgid = int(end["Err"].split("\n")[0].removeprefix("stdout: "))
    assert await wait_group_gone(pgid) == []


async def test_cancel_kills_the_command_and_reports_no_target(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    t0 = time.monotonic()
    out = await run_steps(
        [(GatherCmd(), "S", sh(f"echo $$ > {pidfile}; sleep 30 & sleep 30"))],
        ["T1", "T2"],
        cancel_after=0.5,
    )
    assert time.monotonic() - t0 < 3
    assert isinstance(out.error, Cancelled)
    assert verdicts(out) == {}
    assert await wait_group_gone(int(pidfile.read_text())) == []


async def test_pause_while_gathering_keeps_the_targets_for_resume(tmp_path: Path) -> None:
    log = tmp_path / "runs"
    steps = lambda: [  # noqa: E731 - fresh instances per run, as a resumed job makes
        (TestStepFixture(), "Before", {"DelayTargets": ["T2=600"]}),
        (GatherCmd(), "S", sh(f"echo run >> {log}")),
    ]
    first = await run_steps(steps(), ["T1", "T2"], pause_after=0.3)
    assert first.error is None
    assert first.resume_state is not None
    assert not log.exists()  # not run on a partial set
    assert verdicts(first) == {}  # T1 is held, not reported (ConTest reported it as passed)

    second = await run_steps(steps(), ["T1", "T2"], resume_state=first.resume_state)
    assert second.error is None
    assert verdicts(second) == {"T1": None, "T2": None}
    assert log.read_text() == "run\n"
    # T1 was brought back by the step itself, not handed over again
    assert [e[1] for e in second.events(label="S") if e[2] == "TargetIn"] == ["T2"]


async def test_no_targets_no_command(tmp_path: Path) -> None:
    log = tmp_path / "runs"
    out = await run_steps(
        [
            (TestStepFixture(), "Before", {"FailTargets": ["T1,T2"]}),
            (GatherCmd(), "S", sh(f"echo run >> {log}")),
        ],
        ["T1", "T2"],
    )
    assert out.error is None
    assert not log.exists()


async def test_parameters_are_checked_and_args_expanded_at_submission() -> None:
    step = GatherCmd()
    await validate(
        step,
        {"binary": ["echo"], "args": ['{{ ToUpper "abc" }}', "x{{ .ID }}y"], "timeout": ["2s"]},
    )
    assert step.args == ["ABC", "xy"]  # an empty target: its fields are empty
    assert step.timeout == 2.0
    assert await refused(GatherCmd(), {}) == "binary: missing; it is required"
    assert (await refused(GatherCmd(), {"binary": ["no-such-binary-xyz"]})).startswith(
        "binary: cannot find 'no-such-binary-xyz' executable in PATH"
    )
    assert await refused(GatherCmd(), {"binary": ["echo"], "args": ["ok", "{{ .ID "]}) == (
        "args[1]: not a valid template: unclosed action (line 1, column 8)"
    )
    # parsed, but expanded at submission without step variables (as ConTest does)
    assert await refused(GatherCmd(), {"binary": ["echo"], "args": ['{{ IntVar "a.b" }}']}) == (
        'args[0]: failed to expand argument: {{ IntVar "a.b" }} -> template: args:1:4: '
        'executing "args" at <IntVar>: "IntVar" is not a defined function'
    )
    assert await refused(GatherCmd(), {"binary": ["echo"], "timeout": ["soon"]}) == (
        'timeout[0]: expected a duration such as "30s" or "1m30s", got "soon"'
    )


def test_load() -> None:
    assert gathercmd_module.load() == ("GatherCmd", GatherCmd, ("GatherCmdStart", "GatherCmdEnd"))
