"""The Exec step: local transport, SSH (synchronous and detached) against real sshd on loopback."""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from sshtestlib import (
    errors,
    marker,
    names,
    payloads,
    ssh_options,
    target_for,
    wait_gone,
    wait_running,
)

from contest import hostpolicy
from contest.bundle import validate_step
from contest.context import StepContext
from contest.errors import Cancelled, ParameterError
from contest.hostpolicy import HostPolicy
from contest.params import StepParameters
from contest.plugins.teststeps.exec import EVENTS, Exec, load
from contest.plugins.teststeps.variables import Variables
from contest.signals import Scope
from contest.target import Target
from contest.testing import RunOutcome, run_steps
from contest.testing.sshd import SshdFarm, pids_matching

OCP_LINES = [
    {"schemaVersion": {"major": 2, "minor": 0}, "sequenceNumber": 0, "timestamp": "t0"},
    {
        "testRunArtifact": {"testRunStart": {"name": "mem", "version": "2"}},
        "sequenceNumber": 1,
        "timestamp": "t1",
    },
    {
        "testStepArtifact": {"testStepId": "0", "testStepStart": {"name": "dimms"}},
        "sequenceNumber": 2,
        "timestamp": "t2",
    },
    {
        "testStepArtifact": {"testStepId": "0", "log": {"severity": "INFO", "text": "8 DIMMs"}},
        "sequenceNumber": 3,
        "timestamp": "t3",
    },
    {
        "testStepArtifact": {"testStepId": "0", "testStepEnd": {"status": "COMPLETE"}},
        "sequenceNumber": 4,
        "timestamp": "t4",
    },
]


def run_end(result: str) -> dict[str, Any]:
    return {
        "testRunArtifact": {"testRunEnd": {"status": "COMPLETE", "result": result}},
        "sequenceNumber": 5,
        "timestamp": "t5",
    }


OCP_EVENTS = ["TestStart", "StepStart", "StepLog", "StepEnd", "TestEnd"]


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def ocp_script(tmp_path: Path, result: str = "PASS", before: str = "", code: int = 0) -> str:
    lines = "\n".join(json.dumps(o) for o in [*OCP_LINES, run_end(result)])
    return script(tmp_path, "ocp.sh", f"{before}\ncat <<'EOF'\n{lines}\nEOF\nexit {code}\n")


def bag(path: str, *args: str, proto: str = "local", **top: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"bin": {"path": path, "args": list(args)}, "transport": {"proto": proto}}
    b.update(top)
    return b


def ssh_bag(farm: SshdFarm, path: str, *args: str, options: Any = None, **top: Any) -> Any:
    b = bag(path, *args, proto="ssh", **top)
    b["transport"]["options"] = options if options is not None else ssh_options(farm)
    return b


async def run_exec(b: dict[str, Any], targets: list[Target], **kw: Any) -> RunOutcome:
    return await run_steps([(Exec(), "exec", {"bag": [b]})], targets, **kw)


def remote_dirs() -> set[str]:
    return set(glob.glob("/tmp/contest-exec-*")) | set(glob.glob("/tmp/exec_bin_*"))


def test_load() -> None:
    name, cls, events = load()
    assert name == "Exec" and cls is Exec and events == EVENTS
    assert set(EVENTS) == {"TestStart", "TestEnd", "TestLog", "StepStart", "StepEnd", "StepLog"}


# --- local ------------------------------------------------------------------------------------


async def test_local_exit_codes_and_exitcode_map(tmp_path: Path) -> None:
    path = script(tmp_path, "exit.sh", 'echo "out $1"; echo "err $1" >&2; exit "$1"\n')
    b = bag(path, "{{ .TargetManagerState.code }}", exitcode_map={"3": "DIMM {{ .ID }} missing"})
    targets = [Target(f"T{c}", manager_state={"code": c}) for c in (0, 3, 4)]
    outcome = await run_exec(b, targets)
    assert outcome.error is None
    assert errors(outcome) == {
        "T3": "exit code mapped error: DIMM T3 missing",
        "T4": "process exited with non-zero code: 4; stderr: err 4",
    }
    assert names(outcome, "T0") == ["TargetIn", "TestStart", "TestEnd", "TargetOut"]
    assert payloads(outcome, "T0", "TestStart") == [{"cmd": f"{path} 0"}]
    assert payloads(outcome, "T0", "TestEnd") == [{"exitCode": 0}]
    assert payloads(outcome, "T4", "TestEnd") == [{"exitCode": 4}]


async def test_local_execution_is_refused_at_run_time_by_a_server_without_the_option(
    tmp_path: Path,
) -> None:
    """Job building refuses it at submission (tests/e2e/test_e2e_hostaccess.py); a job resumed
    by a server that lost --allow-local-exec still runs nothing here: the target fails."""
    path = script(tmp_path, "ok.sh", "touch ran\n")
    step = Exec()
    await step.validate_parameters(
        StepContext(scope=Scope()), StepParameters.from_values({"bag": [bag(path)]})
    )
    assert step.uses_local_processes()
    with hostpolicy.using(HostPolicy.server(allow_local_exec=False)):
        outcome = await run_steps([(step, "exec", {"bag": [bag(path)]})], ["T1"], validate=False)
    assert errors(outcome) == {
        "T1": "step Exec (label 'exec') runs programs on the server's machine: refused, as this "
        "server was not started with --allow-local-exec"
    }
    assert not (tmp_path / "ran").exists()


async def test_send_binary_counts_as_local_execution(farm: SshdFarm) -> None:
    """It ships a file of the server to the target: /etc/shadow would do as a "binary"."""
    step = Exec()
    b = ssh_bag(farm, "/bin/true", options={**ssh_options(farm), "send_binary": True})
    await step.validate_parameters(
        StepContext(scope=Scope()), StepParameters.from_values({"bag": [b]})
    )
    assert step.uses_local_processes()
    plain = Exec()
    await plain.validate_parameters(
        StepContext(scope=Scope()), StepParameters.from_values({"bag": [ssh_bag(farm, "true")]})
    )
    assert not plain.uses_local_processes()


async def test_local_time_quota_kills_the_process_group() -> None:
    m1, m2 = marker(), marker()
    b = bag("/bin/sh", "-c", f"sleep {m1} & exec sleep {m2}", constraints={"time_quota": "400ms"})
    t0 = time.monotonic()
    outcome = await run_exec(b, ["T1"])
    assert errors(outcome) == {"T1": "exceeded time quota of 400ms"}
    assert time.monotonic() - t0 < 5
    assert payloads(outcome, "T1", "TestEnd") == [{"exitCode": None}]
    assert await wait_gone(f"sleep {m1}") == [] and await wait_gone(f"sleep {m2}") == []


async def test_local_cancel() -> None:
    m = marker()
    scope = Scope()

    async def cancel() -> None:
        await wait_running(f"/bin/sleep {m}")
        scope.cancel.set()

    canceller = asyncio.ensure_future(cancel())
    outcome = await run_exec(bag("/bin/sleep", m), ["T1"], scope=scope)
    await canceller
    assert isinstance(outcome.error, Cancelled)
    assert "TargetOut" not in names(outcome, "T1") and "TargetErr" not in names(outcome, "T1")
    assert await wait_gone(f"sleep {m}") == []


async def test_local_ocp_output(tmp_path: Path) -> None:
    outcome = await run_exec(bag(ocp_script(tmp_path), ocp_output=True), ["T1"])
    assert errors(outcome) == {}
    assert names(outcome, "T1") == ["TargetIn", *OCP_EVENTS, "TargetOut"]
    assert payloads(outcome, "T1", "StepLog") == [
        {
            "sequenceNumber": 3,
            "timestamp": "t3",
            "stepId": "0",
            "severity": "INFO",
            "text": "8 DIMMs",
        }
    ]
    assert payloads(outcome, "T1", "TestEnd") == [
        {"sequenceNumber": 5, "timestamp": "t5", "status": "COMPLETE", "result": "PASS"}
    ]


@pytest.mark.parametrize(
    ("result", "code", "message"),
    [
        ("FAIL", 0, "test failed"),
        ("PASS", 5, "process exited with non-zero code: 5"),
        ("PASS", 3, "exit code mapped error: three"),
    ],
)
async def test_local_ocp_verdicts(tmp_path: Path, result: str, code: int, message: str) -> None:
    b = bag(ocp_script(tmp_path, result, code=code), ocp_output=True, exitcode_map={"3": "three"})
    outcome = await run_exec(b, ["T1"])
    assert errors(outcome) == {"T1": message}
    assert names(outcome, "T1")[1:-1] == OCP_EVENTS


async def test_local_ocp_stops_at_garbage(tmp_path: Path) -> None:
    path = script(
        tmp_path,
        "g.sh",
        f"echo '{json.dumps(OCP_LINES[1])}'\necho 'Segmentation fault'\n"
        f"echo '{json.dumps(run_end('PASS'))}'\n",
    )
    outcome = await run_exec(bag(path, ocp_output=True), ["T1"])
    assert errors(outcome) == {"T1": "did not see a complete run"}
    assert names(outcome, "T1") == ["TargetIn", "TestStart", "TargetErr"]


# --- ssh, synchronous ---------------------------------------------------------------------------


async def test_ssh_streams_exit_code_and_ocp(farm: SshdFarm, tmp_path: Path) -> None:
    srv = farm.servers[0]
    b = ssh_bag(farm, "/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 3")
    outcome = await run_exec(b, [target_for(srv)])
    assert errors(outcome) == {"T0": "process exited with non-zero code: 3; stderr: to-err"}
    assert payloads(outcome, "T0", "TestStart") == [
        {"cmd": "/bin/sh -c 'echo to-out; echo to-err >&2; exit 3'"}
    ]
    # stdout carries only the command's output (no pid line): the OCP stream parses cleanly
    ocp = await run_exec(ssh_bag(farm, ocp_script(tmp_path), ocp_output=True), [target_for(srv)])
    assert errors(ocp) == {}
    assert names(ocp, "T0")[1:-1] == OCP_EVENTS


async def test_ssh_send_binary(farm: SshdFarm, tmp_path: Path) -> None:
    before = remote_dirs()
    options = ssh_options(farm, send_binary=True)
    b = ssh_bag(farm, ocp_script(tmp_path), options=options, ocp_output=True)
    targets = [target_for(s) for s in farm.servers]
    outcome = await run_exec(b, targets)
    assert errors(outcome) == {}
    for t in targets:
        assert names(outcome, t.id)[1:-1] == OCP_EVENTS
    assert remote_dirs() == before  # the copies are gone


async def test_ssh_host_keys(farm: SshdFarm, tmp_path: Path) -> None:
    srv, other = farm.servers[0], farm.servers[1]
    pinned = ssh_options(farm, known_hosts=None, host_key=other.host_public_key)
    outcome = await run_exec(ssh_bag(farm, "/bin/true", options=pinned), [target_for(srv)])
    assert "Host key is not trusted" in errors(outcome)["T0"]
    right = ssh_options(farm, known_hosts=None, host_key=[srv.host_public_key])
    assert (
        errors(await run_exec(ssh_bag(farm, "/bin/true", options=right), [target_for(srv)])) == {}
    )
    insecure = ssh_options(farm, known_hosts=None, insecure_ignore_host_key=True)
    outcome = await run_exec(ssh_bag(farm, "/bin/true", options=insecure), [target_for(srv)])
    assert errors(outcome) == {}


async def test_ssh_time_quota_and_cancel_kill_the_remote_command(farm: SshdFarm) -> None:
    srv = farm.servers[0]
    m = marker()
    b = ssh_bag(farm, "/bin/sleep", m, constraints={"time_quota": "500ms"})
    outcome = await run_exec(b, [target_for(srv)])
    assert errors(outcome) == {"T0": "exceeded time quota of 500ms"}
    assert await wait_gone(f"sleep {m}") == []

    m = marker()
    scope = Scope()

    async def cancel() -> None:
        await wait_running(f"/bin/sleep {m}")
        scope.cancel.set()

    canceller = asyncio.ensure_future(cancel())
    outcome = await run_exec(ssh_bag(farm, "/bin/sleep", m), [target_for(srv)], scope=scope)
    await canceller
    assert isinstance(outcome.error, Cancelled)
    assert await wait_gone(f"sleep {m}") == []


# --- ssh, detached -----------------------------------------------------------------------------

DETACHED = {"poll_interval": "100ms", "reconnect_timeout": "20s"}


async def test_detached_runs_and_cleans_up(farm: SshdFarm, tmp_path: Path) -> None:
    before = remote_dirs()
    ok = ssh_bag(farm, ocp_script(tmp_path), options=ssh_options(farm, **{"async": DETACHED}))
    ok["ocp_output"] = True
    outcome = await run_exec(ok, [target_for(farm.servers[0])])
    assert errors(outcome) == {}
    assert names(outcome, "T0")[1:-1] == OCP_EVENTS

    code = ssh_bag(
        farm,
        "/bin/sh",
        "-c",
        "echo err >&2; exit 3",
        options=ssh_options(farm, send_binary=False, **{"async": DETACHED}),
        exitcode_map={"3": "three"},
    )
    outcome = await run_exec(code, [target_for(farm.servers[1])])
    assert errors(outcome) == {"T1": "exit code mapped error: three"}
    assert remote_dirs() == before


async def test_detached_send_binary(farm: SshdFarm, tmp_path: Path) -> None:
    before = remote_dirs()
    options = ssh_options(farm, send_binary=True, **{"async": DETACHED})
    b = ssh_bag(farm, ocp_script(tmp_path), options=options, ocp_output=True)
    outcome = await run_exec(b, [target_for(farm.servers[2])])
    assert errors(outcome) == {}
    assert remote_dirs() == before


async def test_detached_survives_a_dropped_connection(
    farm: SshdFarm, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Cut the connection while the command runs, keep the server down for a while: the
    command goes on, and the step reconnects and collects its output and exit status."""
    caplog.set_level(logging.INFO)
    srv = farm.servers[1]
    m = f"1.{marker()[3:]}"  # sleeps ~1.5 s
    path = ocp_script(tmp_path, before=f"sleep {m}")
    b = ssh_bag(farm, path, options=ssh_options(farm, **{"async": DETACHED}), ocp_output=True)
    run = asyncio.ensure_future(run_exec(b, [target_for(srv)]))
    assert await wait_running(f"sleep {m}") != []
    await asyncio.sleep(0.3)  # the start is over, the step is polling
    assert srv.kill_sessions() > 0  # every connection to this server dies now
    await asyncio.to_thread(srv.restart, 0.3)
    assert pids_matching(f"sleep {m}", exact=True) != []  # still running on the "target"
    outcome = await run
    assert errors(outcome) == {}
    assert names(outcome, "T1")[1:-1] == OCP_EVENTS
    assert any("lost" in r.getMessage() for r in caplog.records)


async def test_detached_cancel_kills_the_remote_command(farm: SshdFarm) -> None:
    before = remote_dirs()
    m = marker()
    scope = Scope()

    async def cancel() -> None:
        await wait_running(f"/bin/sleep {m}")
        await asyncio.sleep(0.2)  # polling by now
        scope.cancel.set()

    options = ssh_options(farm, **{"async": DETACHED})
    canceller = asyncio.ensure_future(cancel())
    t0 = time.monotonic()
    outcome = await run_exec(
        ssh_bag(farm, "/bin/sleep", m, options=options), [target_for(farm.servers[0])], scope=scope
    )
    await canceller
    assert isinstance(outcome.error, Cancelled)
    assert time.monotonic() - t0 < 8
    assert await wait_gone(f"sleep {m}") == []
    assert remote_dirs() == before


async def test_detached_remote_time_quota(farm: SshdFarm) -> None:
    m = marker()
    options = ssh_options(farm, **{"async": {**DETACHED, "time_quota": "1s"}})
    outcome = await run_exec(
        ssh_bag(farm, "/bin/sleep", m, options=options), [target_for(farm.servers[0])]
    )
    assert errors(outcome) == {"T0": "exceeded the remote time quota of 1s"}
    assert await wait_gone(f"sleep {m}") == []


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b["bin"].pop("path"), "bag[0].bin.path: missing; it is required"),
        (lambda b: b["bin"].update(args="x"), "bag.bin.args: must be a list"),
        (lambda b: b["bin"].update(args=[1]), "bag.bin.args[0]: must be a string"),
        (
            lambda b: b["bin"].update(args=["{{ .ID "]),
            "bag[0].bin.args[0]: not a valid template: unclosed action",
        ),
        (lambda b: b.update(bins={}), 'bag[0].bins: unknown key; did you mean "bin"?'),
        (
            lambda b: b["transport"].update(proto="telnet"),
            'bag[0].transport.proto: expected one of local, ssh, got "telnet"',
        ),
        (
            lambda b: b.update(constraints={"time_quota": 5}),
            'bag[0].constraints.time_quota: expected a duration such as "30s" or "1m30s" (quoted)',
        ),
        (
            lambda b: b.update(constraints={"time_quota": "5d"}),
            'bag[0].constraints.time_quota: expected a duration such as "30s" or "1m30s", got "5d"',
        ),
        (lambda b: b.update(ocp_output="maybe"), "bag[0].ocp_output: expected a boolean"),
        (lambda b: b.update(exitcode_map={"x": "y"}), "bag.exitcode_map.x: not an exit code"),
        (lambda b: b.update(exitcode_map={"1": 2}), "bag.exitcode_map.1: must be a string"),
        (
            lambda b: b["transport"]["options"].pop("host"),
            "bag[0].transport.options.host: missing; it is required",
        ),
        (
            lambda b: b["transport"]["options"].update(port=0),
            "bag[0].transport.options.port: must be at least 1, got 0",
        ),
        (
            lambda b: b["transport"]["options"].update(port="x"),
            'bag[0].transport.options.port: expected an integer, got "x"',
        ),
        (
            lambda b: b["transport"]["options"].update(user=None),
            "bag[0].transport.options.user: must not be empty",
        ),
        (lambda b: b["transport"]["options"].update(timeout="1"), "options.timeout"),
        (
            lambda b: b["transport"]["options"].update(idfile="k"),
            'options.idfile: unknown key; did you mean "identity_file"?',
        ),
        (
            lambda b: b["transport"]["options"].update(password="a", password_env="B"),
            "options.password_env: give only one",
        ),
        (
            lambda b: b["transport"]["options"].update(insecure_ignore_host_key=True),
            "options.insecure_ignore_host_key: conflicts",
        ),
        (lambda b: b["transport"]["options"].update(host_key="nope"), "options.host_key[0]"),
        (
            lambda b: b["transport"]["options"].update({"async": {"time_quota": 1}}),
            "options.async.time_quota",
        ),
        (
            lambda b: b["transport"]["options"].update({"async": {"agnet": "x"}}),
            'options.async.agnet: unknown key; did you mean "agent"?',
        ),
        (
            lambda b: b["transport"]["options"].update({"async": {}, "posix_shell": False}),
            "options.posix_shell: the detached mode (async) needs /bin/sh",
        ),
    ],
)
async def test_bag_is_checked_at_submission(farm: SshdFarm, mutate: Any, message: str) -> None:
    b = ssh_bag(farm, "/nonexistent/bin")
    mutate(b)
    params = StepParameters.from_values({"bag": [b]})
    with pytest.raises(ParameterError) as info:
        await validate_step(Exec(), StepContext(scope=Scope()), params)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "bag: missing; it is required"),
        ({"bag": [{}, {}]}, "bag: takes one value, got 2"),
        ({"bag": ["{}"]}, 'bag[0]: expected an object, got "{}"'),
        ({"bag": [{"bin": {"path": "/x"}}], "extra": [1]}, "extra: unknown parameter; known: bag"),
    ],
)
async def test_step_parameters_are_checked(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ParameterError) as info:
        await validate_step(Exec(), StepContext(scope=Scope()), StepParameters.from_values(params))
    assert message in str(info.value)


async def test_agent_is_accepted_and_ignored(farm: SshdFarm) -> None:
    options = ssh_options(farm, **{"async": {"agent": "/opt/exec_agent", "time_quota": "20s"}})
    params = StepParameters.from_values({"bag": [ssh_bag(farm, "/bin/true", options=options)]})
    step = Exec()
    await step.validate_parameters(StepContext(scope=Scope()), params)
    assert step.config is not None and step.config.ssh is not None
    assert step.config.ssh.detached is not None
    assert step.config.ssh.detached.remote_quota == 20


async def test_missing_binaries_fail_the_targets(
    farm: SshdFarm, caplog: pytest.LogCaptureFixture
) -> None:
    local = await run_exec(bag("/nonexistent/bin"), ["T1"])
    assert errors(local) == {"T1": "no such file"}
    options = ssh_options(farm, send_binary=True)
    sent = await run_exec(
        ssh_bag(farm, "/nonexistent/bin", options=options), [target_for(farm.servers[0])]
    )
    assert errors(sent) == {"T0": "no such file"}
    assert any(r.getMessage().startswith("bag.bin.path: no such file") for r in caplog.records)
    missing = await run_exec(ssh_bag(farm, "/nonexistent/bin"), [target_for(farm.servers[0])])
    assert errors(missing)["T0"].startswith("process exited with non-zero code: 127")


async def test_step_variables_reach_every_string_of_the_bag(farm: SshdFarm) -> None:
    """ConTest LB dropped the step variables in Exec (StringVar/IntVar undefined); not here."""
    b = bag(
        "/bin/sh",
        "-c",
        'exit "$0"',
        '{{ IntVar "vars.code" }}',
        exitcode_map={"3": '{{ StringVar "vars.msg" }} on {{ .ID }}'},
    )
    outcome = await run_steps(
        [
            (Variables(), "vars", {"code": [3], "msg": ["DIMM missing"]}),
            (Exec(), "exec", {"bag": [b]}),
        ],
        ["T1"],
    )
    assert errors(outcome) == {"T1": "exit code mapped error: DIMM missing on T1"}
