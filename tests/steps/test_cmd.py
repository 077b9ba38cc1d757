"""Cmd against real processes: events, Go's failure texts, streaming and truncation, timeout,
cancellation (the whole process group goes), and refusal of bad parameters at submission."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from stepkit import (
    live_group_members,
    names,
    payloads,
    refused,
    run_steps,
    step_events,
    validate,
    verdicts,
    wait_group_gone,
)

from contest.errors import Cancelled
from contest.plugins.teststeps import cmd as cmd_module
from contest.plugins.teststeps._process import OutputLimits, truncation_marker
from contest.plugins.teststeps.cmd import Cmd
from contest.target import Target

SH = shutil.which("sh") or "/bin/sh"
SH_ABS = os.path.abspath(SH)


def sh(script: str, **extra: list[object]) -> dict[str, list[object]]:
    return {"executable": [SH], "args": ["-c", script], **extra}


async def test_runs_per_target_with_templated_args_and_reports_the_events() -> None:
    out = await run_steps(
        [
            (
                Cmd(),
                "S",
                {"executable": ["echo"], "args": ["hello", "{{ .ID }}"], "emit_stdout": [True]},
            )
        ],
        ["T1", "T2"],
    )
    assert out.error is None
    assert verdicts(out) == {"T1": None, "T2": None}
    echo = shutil.which("echo")
    for tid in ("T1", "T2"):
        assert names(out, tid) == ["TargetIn", "CmdStart", "CmdStdout", "CmdEnd", "TargetOut"]
        assert payloads(out, "CmdStart", tid) == [
            {"Path": echo, "Args": [echo, "hello", tid], "Dir": ""}
        ]
        assert payloads(out, "CmdStdout", tid) == [{"Msg": f"hello {tid}\n"}]
        assert payloads(out, "CmdEnd", tid) == [None]


async def test_dir_is_templated_and_output_events_are_only_there_when_asked(
    tmp_path: Path,
) -> None:
    (tmp_path / "T1").mkdir()
    out = await run_steps(
        [
            (
                Cmd(),
                "S",
                {"executable": ["pwd"], "dir": [f"{tmp_path}/{{{{ .ID }}}}"], "emit_stderr": ["t"]},
            )
        ],
        ["T1"],
    )
    assert verdicts(out) == {"T1": None}
    assert payloads(out, "CmdStart", "T1")[0]["Dir"] == f"{tmp_path}/T1"
    assert payloads(out, "CmdStdout") == []  # emit_stdout not set
    assert payloads(out, "CmdStderr") == [{"Msg": ""}]  # set: one event even if empty


async def test_non_zero_exit_fails_with_gos_text_and_streams_stderr() -> None:
    out = await run_steps(
        [
            (
                Cmd(),
                "S",
                sh("echo out; echo err >&2; exit 3", emit_stdout=[True], emit_stderr=[True]),
            )
        ],
        ["T1"],
    )
    assert out.error is None
    assert verdicts(out) == {"T1": "exit status 3"}
    assert payloads(out, "CmdStdout") == [{"Msg": "out\n"}]
    assert payloads(out, "CmdStderr") == [{"Msg": "err\n"}]
    assert names(out, "T1")[-2:] == ["CmdEnd", "TargetErr"]


async def test_death_by_signal_and_failures_to_start_have_gos_texts(tmp_path: Path) -> None:
    missing = tmp_path / "nothere"
    out = await run_steps([(Cmd(), "S", sh("kill -9 $$"))], ["T1"])
    assert verdicts(out) == {"T1": "signal: killed"}

    out = await run_steps([(Cmd(), "S", {"executable": [str(missing)]})], ["T1"])
    assert verdicts(out) == {"T1": f"fork/exec {missing}: no such file or directory"}
    assert names(out, "T1") == ["TargetIn", "CmdStart", "CmdEnd", "TargetErr"]

    out = await run_steps([(Cmd(), "S", {"executable": ["true"], "dir": [str(missing)]})], ["T1"])
    assert verdicts(out) == {"T1": f"chdir {missing}: no such file or directory"}

    script = tmp_path / "noexec"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    out = await run_steps([(Cmd(), "S", {"executable": [str(script)]})], ["T1"])
    assert verdicts(out) == {"T1": f"fork/exec {script}: permission denied"}


async def test_a_bad_template_value_fails_that_target_with_cmds_text() -> None:
    out = await run_steps(
        [(Cmd(), "S", {"executable": ["echo"], "args": ['{{ StringVar "nostep.x" }}']})],
        ["T1"],
    )
    assert out.error is None
    err = verdicts(out)["T1"]
    assert err.startswith("failed to expand argument '{{ StringVar \"nostep.x\" }}': ")
    assert "nostep" in err
    assert names(out, "T1") == ["TargetIn", "TargetErr"]  # nothing was started


async def test_output_is_streamed_while_the_command_runs() -> None:
    out = await run_steps(
        [(Cmd(), "S", sh("echo first; sleep 0.8; echo second", emit_stdout=[True]))], ["T1"]
    )
    assert verdicts(out) == {"T1": None}
    chunks = step_events(out, "CmdStdout", "T1")
    assert [c.payload["Msg"] for c in chunks] == ["first\n", "second\n"]
    end = step_events(out, "CmdEnd", "T1")[0]
    assert end.emit_time - chunks[0].emit_time > 0.5  # the first line came long before the end


class SmallCmd(Cmd):
    limits = OutputLimits(chunk_size=1000, cap=5000, flush_interval=0.05)


async def test_output_comes_in_bounded_chunks_up_to_a_cap_then_a_marker() -> None:
    out = await run_steps(
        [
            (
                SmallCmd(),
                "S",
                sh(
                    "yes abcdefghi | head -c 20000; echo done >&2; exit 1",
                    emit_stdout=[True],
                    emit_stderr=[True],
                ),
            )
        ],
        ["T1"],
    )
    assert verdicts(out) == {"T1": "exit status 1"}
    msgs = [p["Msg"] for p in payloads(out, "CmdStdout", "T1")]
    *chunks, marker = msgs
    assert all(len(c.encode()) <= 1000 for c in chunks)
    assert "".join(chunks) == ("abcdefghi\n" * 2000)[:5000]
    assert marker == truncation_marker(5000, 15000)
    assert "15000 more bytes dropped" in marker
    assert payloads(out, "CmdStderr", "T1") == [{"Msg": "done\n"}]  # capped per stream


async def test_timeout_stops_the_whole_process_group() -> None:
    t0 = time.monotonic()
    out = await run_steps(
        [(Cmd(), "S", sh("echo $$; sleep 30 & sleep 30", emit_stdout=[True], timeout=["300ms"]))],
        ["T1"],
    )
    assert time.monotonic() - t0 < 3
    assert verdicts(out) == {"T1": "timed out after 300ms"}
    pgid = int(payloads(out, "CmdStdout", "T1")[0]["Msg"])
    assert await wait_group_gone(pgid) == []


async def test_cancel_kills_the_process_group_and_reports_no_pass() -> None:
    t0 = time.monotonic()
    out = await run_steps(
        [(Cmd(), "S", sh("echo $$; sleep 30 & sleep 30", emit_stdout=[True]))],
        ["T1", "T2"],
        cancel_after=0.5,
    )
    assert time.monotonic() - t0 < 3
    assert isinstance(out.error, Cancelled)
    for tid in ("T1", "T2"):
        assert "TargetOut" not in names(out, tid)
        assert "TargetErr" not in names(out, tid)
        pgid = int(payloads(out, "CmdStdout", tid)[0]["Msg"])
        assert await wait_group_gone(pgid) == [], f"{tid}: group {pgid} still has processes"


async def test_a_command_ignoring_sigterm_is_killed_after_the_grace() -> None:
    class QuickKill(Cmd):
        kill_grace = 0.3

    out = await run_steps(
        [
            (
                QuickKill(),
                "S",
                sh(
                    "trap '' TERM; echo $$; sleep 30 & while :; do sleep 0.05; done",
                    emit_stdout=[True],
                    timeout=["200ms"],
                ),
            )
        ],
        ["T1"],
    )
    assert verdicts(out) == {"T1": "timed out after 200ms"}
    pgid = int(payloads(out, "CmdStdout", "T1")[0]["Msg"])
    assert await wait_group_gone(pgid) == []


async def test_background_process_holding_the_pipe_does_not_hold_the_step() -> None:
    t0 = time.monotonic()
    out = await run_steps([(Cmd(), "S", sh("echo $$; sleep 20 &", emit_stdout=[True]))], ["T1"])
    try:
        assert verdicts(out) == {"T1": None}
        assert time.monotonic() - t0 < 3
    finally:
        pgid = int(payloads(out, "CmdStdout", "T1")[0]["Msg"])
        if live_group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)


async def test_many_targets_run_concurrently() -> None:
    t0 = time.monotonic()
    out = await run_steps(
        [(Cmd(), "S", {"executable": ["sleep"], "args": ["0.5"]})],
        [f"T{i}" for i in range(20)],
    )
    assert out.error is None
    assert set(verdicts(out).values()) == {None}
    assert time.monotonic() - t0 < 3  # not 20 * 0.5 s


async def test_parameters_are_checked_at_submission() -> None:
    step = Cmd()
    await validate(
        step,
        {
            "executable": ["sh"],
            "args": ["-c", "{{ .ID }}"],
            "timeout": ["1m"],
            "emit_stdout": ["1"],
            "emit_stderr": [False],
        },
    )
    assert step.executable == SH_ABS
    assert step.timeout == 60.0
    assert step.emit_stdout is True and step.emit_stderr is False

    assert await refused(Cmd(), {}) == "executable: missing; it is required"
    assert await refused(Cmd(), {"executable": ["a", "b"]}) == "executable: takes one value, got 2"
    msg = await refused(Cmd(), {"executable": ["no-such-binary-xyz"]})
    assert msg.startswith("executable: cannot find 'no-such-binary-xyz' executable in PATH")
    assert await refused(Cmd(), {"executable": ["echo"], "args": ["ok", "{{ .ID "]}) == (
        "args[1]: not a valid template: unclosed action (line 1, column 8)"
    )
    assert await refused(Cmd(), {"executable": ["echo"], "dir": ["{{ if }}"]}) == (
        "dir[0]: not a valid template: missing value for if (line 1, column 7)"
    )
    assert await refused(Cmd(), {"executable": ["echo"], "args": ["{{ .Hostname }}"]}) == (
        "args[0]: the template reads .Hostname (line 1, column 4), which a target does not have "
        "(it has ID, FQDN, PrimaryIPv4, PrimaryIPv6, TargetManagerState)"
    )
    msg = await refused(Cmd(), {"executable": ["echo"], "emit_stdout": ["yes"]})
    assert msg == 'emit_stdout[0]: expected a boolean (true, false, 1, 0, t, f), got "yes"'
    assert await refused(Cmd(), {"executable": ["echo"], "timeout": ["5"]}) == (
        'timeout[0]: expected a duration such as "30s" or "1m30s", got "5"'
    )
    assert await refused(Cmd(), {"executable": ["echo"], "timeout": ["-1s"]}) == (
        "timeout[0]: must be at least 0 seconds, got -1s"
    )
    assert await refused(Cmd(), {"executable": ["echo"], "emit_stdot": [True]}) == (
        'emit_stdot: unknown parameter; did you mean "emit_stdout"?'
    )
    # all at once
    assert await refused(Cmd(), {"timeout": ["x"], "dri": ["/"]}) == (
        'timeout[0]: expected a duration such as "30s" or "1m30s", got "x"; dri: unknown '
        'parameter; did you mean "dir"?; executable: missing; it is required'
    )


async def test_go_bool_and_load() -> None:
    for text, want in (("T", True), ("False", False), ("1", True), ("f", False)):
        step = Cmd()
        await validate(step, {"executable": ["echo"], "emit_stdout": [text]})
        assert step.emit_stdout is want
    name, cls, events = cmd_module.load()
    assert (name, cls) == ("Cmd", Cmd)
    assert events == ("CmdStart", "CmdEnd", "CmdStdout", "CmdStderr")
    assert Cmd.__doc__ and "\n" not in Cmd.__doc__.strip()


async def test_targets_are_copied_into_templates_with_all_fields() -> None:
    out = await run_steps(
        [
            (
                Cmd(),
                "S",
                {
                    "executable": ["echo"],
                    "args": ["{{ .FQDN }}", "{{ ToUpper .ID }}"],
                    "emit_stdout": [True],
                },
            )
        ],
        [Target("t1", fqdn="host.example")],
    )
    assert payloads(out, "CmdStdout", "t1") == [{"Msg": "host.example T1\n"}]


async def test_no_process_is_left_when_the_step_task_itself_is_cancelled() -> None:
    """If the runner abandons the step (task cancellation, not the cancel signal), the group
    is killed on the way out too."""
    from contest.plugins.teststeps._process import run_command

    pids: list[str] = []

    async def grab(text: str) -> None:
        pids.append(text)

    never = asyncio.Event()
    task = asyncio.ensure_future(
        run_command(
            [SH, "-c", "echo $$; sleep 30"],
            cwd=None,
            cancelled=never.wait,
            timeout=None,
            on_stdout=grab,
            on_stderr=None,
            limits=OutputLimits(flush_interval=0.01),
        )
    )
    for _ in range(200):
        if pids:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_group_gone(int(pids[0])) == []
