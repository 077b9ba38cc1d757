"""SSHCmd against real sshd processes on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from sshtestlib import (
    PASSWORD,
    errors,
    marker,
    names,
    payloads,
    sshcmd_params,
    target_for,
    wait_gone,
    wait_running,
)

from contest.bundle import validate_step
from contest.context import StepContext
from contest.errors import Cancelled, ParameterError
from contest.params import StepParameters
from contest.plugins.teststeps.sshcmd import EVENTS, SSHCmd, load
from contest.signals import Scope
from contest.target import Target
from contest.testing import run_steps
from contest.testing.sshd import SshdFarm, pids_matching


async def run1(farm: SshdFarm, params: dict, targets=None, **kw):  # type: ignore[no-untyped-def]
    targets = targets if targets is not None else [target_for(farm.servers[0])]
    return await run_steps([(SSHCmd(), "ssh", params)], targets, **kw)


def test_load() -> None:
    name, cls, events = load()
    assert name == "SSHCmd" and cls is SSHCmd and events == EVENTS


async def test_stdout_stderr_and_exit_status_kept_apart(farm: SshdFarm) -> None:
    params = sshcmd_params(
        farm,
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; exit 3",
        emit_stdout="true",
        emit_stderr="true",
    )
    outcome = await run1(farm, params)
    assert outcome.error is None
    assert errors(outcome) == {"T0": "Process exited with status 3; stderr: to-err"}
    assert payloads(outcome, "T0", "SSHCmdStdout") == [{"Msg": "to-out\n"}]
    assert payloads(outcome, "T0", "SSHCmdStderr") == [{"Msg": "to-err\n"}]
    assert payloads(outcome, "T0", "SSHCmdEnd") == [
        {"ExitStatus": 3, "Signal": None, "ExpectMatched": None}
    ]
    start = payloads(outcome, "T0", "SSHCmdStart")[0]
    srv = farm.servers[0]
    assert start["Host"] == srv.address and start["Port"] == srv.port
    assert start["Command"] == "sh -c 'echo to-out; echo to-err >&2; exit 3'"
    assert names(outcome, "T0") == [
        "TargetIn", "SSHCmdStart", "SSHCmdStdout", "SSHCmdStderr", "SSHCmdEnd", "TargetErr",
    ]  # fmt: skip


async def test_arguments_are_words_not_shell(farm: SshdFarm) -> None:
    # as ConTest's shell-quoted join: "$HOME; x" reaches echo as it is
    params = sshcmd_params(farm, "echo", "$HOME; x", "{{ .ID }}", emit_stdout="1")
    outcome = await run1(farm, params)
    assert errors(outcome) == {}
    assert payloads(outcome, "T0", "SSHCmdStdout") == [{"Msg": "$HOME; x T0\n"}]


async def test_expect_match_and_mismatch(farm: SshdFarm) -> None:
    ok = await run1(farm, sshcmd_params(farm, "echo", "hello", "world", expect="hel+o w"))
    assert errors(ok) == {} and ok.result is not None
    assert ok.result.targets == {"T0": None}
    assert payloads(ok, "T0", "SSHCmdEnd")[0]["ExpectMatched"] is True

    bad = await run1(farm, sshcmd_params(farm, "echo", "goodbye", expect="hel+o"))
    target = target_for(farm.servers[0])
    assert errors(bad) == {"T0": f"match for hel+o not found for target {target}"}
    assert payloads(bad, "T0", "SSHCmdEnd")[0] == {
        "ExitStatus": 0, "Signal": None, "ExpectMatched": False,
    }  # fmt: skip


async def test_expect_match_stops_a_long_command(farm: SshdFarm) -> None:
    m = marker()
    params = sshcmd_params(farm, "sh", "-c", f"echo ready; exec sleep {m}", expect="^ready$")
    params["expect"] = ["(?m)^ready$"]
    t0 = time.monotonic()
    outcome = await run1(farm, params)
    assert errors(outcome) == {}
    assert time.monotonic() - t0 < 10
    assert await wait_gone(f"sleep {m}") == []


async def test_pinned_host_key_and_known_hosts(farm: SshdFarm) -> None:
    srv = farm.servers[1]
    target = target_for(srv)
    pinned = sshcmd_params(farm, "true", known_hosts=None, host_key=srv.host_public_key)
    assert errors(await run1(farm, pinned, [target])) == {}
    # the known_hosts file of the farm knows every server
    assert errors(await run1(farm, sshcmd_params(farm, "true"), [target])) == {}


async def test_wrong_host_key_is_refused(farm: SshdFarm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    srv, other = farm.servers[0], farm.servers[1]
    pinned = sshcmd_params(farm, "true", known_hosts=None, host_key=other.host_public_key)
    err = errors(await run1(farm, pinned))["T0"]
    assert "Host key is not trusted" in err and srv.address in err

    # a known_hosts file that has another key for this address and port
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[{srv.address}]:{srv.port} {other.host_public_key}\n")
    err = errors(await run1(farm, sshcmd_params(farm, "true", known_hosts=str(wrong))))["T0"]
    assert "Host key is not trusted" in err and str(wrong) in err


async def test_insecure_ignore_host_key(farm: SshdFarm) -> None:
    params = sshcmd_params(farm, "true", known_hosts=None, insecure_ignore_host_key="true")
    assert errors(await run1(farm, params)) == {}


async def test_timeout_kills_the_command(farm: SshdFarm) -> None:
    m = marker()
    params = sshcmd_params(farm, "sleep", m, timeout="{{ if .FQDN }}700ms{{ end }}")
    t0 = time.monotonic()
    outcome = await run1(farm, params)
    assert errors(outcome) == {"T0": "timed out after 700ms"}
    assert time.monotonic() - t0 < 5
    assert await wait_gone(f"sleep {m}") == []


async def test_cancel_kills_the_remote_command_and_reports_cancelled(farm: SshdFarm) -> None:
    m = marker()
    targets = [target_for(s) for s in farm.servers]
    params = sshcmd_params(farm, "sh", "-c", f"sleep {m}; echo never")
    scope = Scope()

    async def cancel_when_running() -> None:
        try:
            assert len(await wait_running(f"sleep {m}", len(targets))) == len(targets)
        finally:
            scope.cancel.set()

    canceller = asyncio.ensure_future(cancel_when_running())
    t0 = time.monotonic()
    outcome = await run1(farm, params, targets, scope=scope)
    await canceller
    assert isinstance(outcome.error, Cancelled)
    assert time.monotonic() - t0 < 8
    assert all(n not in ("TargetOut", "TargetErr") for t in targets for n in names(outcome, t.id))
    assert await wait_gone(f"sleep {m}") == []


async def test_cancel_without_posix_shell_is_still_cancelled(farm: SshdFarm) -> None:
    # without the pid trick only the SSH signal is sent (ignored for root logins): the step must
    # still end in time and say Cancelled; the orphan is cleaned up here.
    m = marker()
    params = sshcmd_params(farm, "sleep", m, posix_shell="false")
    outcome = await run1(farm, params, cancel_after=0.5)
    assert isinstance(outcome.error, Cancelled)
    for pid in pids_matching(f"sleep {m}"):
        os.kill(pid, signal.SIGKILL)


async def test_password_from_file_and_env(pw_farm: SshdFarm, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pw_file = tmp_path / "pw"
    pw_file.write_text(PASSWORD + "\n")
    monkeypatch.setenv("CONTEST_TEST_SSH_PASSWORD", PASSWORD)
    base = {"private_key_file": None, "emit_stdout": "true"}
    for extra in (
        {"password_file": str(pw_file)},
        {"password_env": "CONTEST_TEST_SSH_PASSWORD"},
        {"password": PASSWORD},
    ):
        outcome = await run1(pw_farm, sshcmd_params(pw_farm, "echo", "in", **base, **extra))
        assert errors(outcome) == {}, extra
        assert payloads(outcome, "T0", "SSHCmdStdout") == [{"Msg": "in\n"}]
    wrong = await run1(
        pw_farm, sshcmd_params(pw_farm, "true", private_key_file=None, password="nope")
    )
    assert "authentication failed" in errors(wrong)["T0"]


async def test_skip_if_empty_host(farm: SshdFarm) -> None:
    no_fqdn = Target("T9")
    skipped = await run1(farm, sshcmd_params(farm, "false", skip_if_empty_host="true"), [no_fqdn])
    assert skipped.result is not None and skipped.result.targets == {"T9": None}
    assert names(skipped, "T9") == ["TargetIn", "TargetOut"]
    failed = await run1(farm, sshcmd_params(farm, "false"), [no_fqdn])
    assert errors(failed) == {"T9": "host value is empty"}


async def test_connection_refused_and_constant_port(farm: SshdFarm) -> None:
    srv = farm.servers[0]
    ok = await run1(farm, sshcmd_params(farm, "true", host=srv.address, port=str(srv.port)))
    assert errors(ok) == {}
    closed = await run1(farm, sshcmd_params(farm, "true", host="127.0.0.1", port="1"))
    assert errors(closed)["T0"].startswith("cannot connect to SSH server 127.0.0.1:1")


async def test_fifty_targets_each_with_its_own_sshd(farm50: SshdFarm) -> None:
    targets = [target_for(s, f"T{i}") for i, s in enumerate(farm50.servers)]
    params = sshcmd_params(farm50, "echo", "hi", "{{ .ID }}", expect="hi T[0-9]+", emit_stdout="1")
    t0 = time.monotonic()
    outcome = await run1(farm50, params, targets)
    took = time.monotonic() - t0
    assert outcome.error is None
    assert outcome.result is not None
    assert outcome.result.targets == {t.id: None for t in targets}
    for t in targets:
        assert payloads(outcome, t.id, "SSHCmdStdout") == [{"Msg": f"hi {t.id}\n"}]
    assert took < 20, took


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host": None}, "host: missing; it is required"),
        ({"user": None}, "user: missing; it is required"),
        ({"executable": None}, "executable: missing; it is required"),
        ({"port": "70000"}, "port[0]: must be at most 65535, got 70000"),
        ({"port": "ssh"}, 'port[0]: expected an integer, got "ssh"'),
        ({"timeout": "5x"}, 'timeout[0]: expected a duration such as "30s" or "1m30s", got "5x"'),
        ({"timeout": "0s"}, "timeout: must be positive"),
        ({"expect": "("}, "expect: malformed regular expression"),
        ({"skip_if_empty_host": "yes"}, "skip_if_empty_host[0]: expected a boolean"),
        ({"password": "a", "password_env": "B"}, "password_env: give only one of"),
        ({"host_key": "ssh-ed25519 notbase64"}, "host_key[0]: not an SSH public key"),
        ({"insecure_ignore_host_key": "true"}, "insecure_ignore_host_key: conflicts"),
        ({"args": ["{{ .ID "]}, "args[0]: not a valid template: unclosed action"),
        ({"host": "{{ .Hostname }}"}, "host[0]: the template reads .Hostname (line 1, column 4)"),
        ({"hots": "x"}, 'hots: unknown parameter; did you mean "host"?'),
        ({"user": ["a", "b"]}, "user: takes one value, got 2"),
    ],
)
async def test_parameters_are_checked_at_submission(
    farm: SshdFarm, change: dict, message: str
) -> None:
    params = StepParameters.from_values(sshcmd_params(farm, "true", **change))
    with pytest.raises(ParameterError) as info:
        await validate_step(SSHCmd(), StepContext(scope=Scope()), params)
    assert message in str(info.value)


def test_the_password_is_declared_secret() -> None:
    assert SSHCmd.secret_parameters == frozenset({"password"})


async def test_missing_server_files_fail_the_targets_with_the_parameter_name(
    farm: SshdFarm, caplog: pytest.LogCaptureFixture
) -> None:
    """Accepted at submission (with a warning), as ConTest accepts them; each target fails."""
    cases = [
        ({"password_file": "/nonexistent/pw"}, "password_file: cannot read '/nonexistent/pw'"),
        ({"password_env": "CONTEST_SURELY_UNSET_VAR"}, "password_env: environment variable"),
        ({"private_key_file": "/nonexistent/key"}, "cannot read private key at /nonexistent/key"),
        ({"known_hosts": "/nonexistent/kh"}, "known_hosts file '/nonexistent/kh': known_hosts: "),
    ]
    for change, message in cases:
        caplog.clear()
        outcome = await run1(farm, sshcmd_params(farm, "true", **change))
        assert outcome.error is None
        assert message in errors(outcome)["T0"], change
        name = next(iter(change))
        assert any(r.getMessage().startswith(f"{name}: ") for r in caplog.records), change


async def test_lost_connection_fails_the_target_and_kills_the_command(farm: SshdFarm) -> None:
    """Without a terminal a command outlives its connection; the step reconnects to kill it."""
    srv = farm.servers[2]
    m = marker()
    run = asyncio.ensure_future(run1(farm, sshcmd_params(farm, "sleep", m), [target_for(srv)]))
    assert await wait_running(f"sleep {m}") != []
    await asyncio.sleep(0.1)
    assert srv.kill_sessions() > 0
    outcome = await run
    assert errors(outcome) == {"T2": "lost the SSH connection before the command ended"}
    assert await wait_gone(f"sleep {m}") == []
