"""Target managers: TargetList, CSVFileTargetManager and the test-only TargetListWithState
(ConTest's ``plugins/targetmanagers/``), with ConTest's sample ``hosts.csv`` files."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from contest.context import PluginContext
from contest.errors import ContestError, ParameterError
from contest.golang.json import loads_json
from contest.golang.unmarshal import GoStruct
from contest.locking import LockConflict
from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.plugins.targetmanagers import csvfile, targetlist
from contest.plugins.targetmanagers.csvfile import AcquireError, CSVFileTargetManager
from contest.plugins.targetmanagers.targetlist import TargetList
from contest.signals import Scope
from contest.target import Target
from contest.testing import targetmanagers as tlws
from contest.testing.paths import samples_dir
from contest.testing.targetmanagers import TargetListWithState, TargetStateMismatch

SAMPLES = samples_dir()
LB_HOSTS = SAMPLES / "lb/cmds/contest/hosts.csv"
FB_HOSTS = SAMPLES / "fb/cmds/contest/hosts.csv"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def locker(clock: Clock) -> InMemoryLocker:
    return InMemoryLocker(clock=clock)


@pytest.fixture
def ctx() -> PluginContext:
    return PluginContext(scope=Scope(), job_id=1, run_id=1)


def ids(targets: list[Target]) -> list[str]:
    return [t.id for t in targets]


async def free(locker: InMemoryLocker, job_id: int, target_ids: list[str]) -> bool:
    """Whether another job can lock all of them (i.e. nobody holds them)."""
    try:
        await locker.lock(job_id, 1, target_ids)
    except LockConflict:
        return False
    await locker.unlock(job_id, target_ids)
    return True


# --- TargetList ---------------------------------------------------------------------------------


def test_targetlist_validate() -> None:
    ap = TargetList().validate_acquire_parameters(
        {
            "Targets": [
                {"ID": "id1", "FQDN": "id1.example.org"},
                {"id": "id2", "primaryipv4": "10.0.0.2", "PRIMARYIPV6": "2001:DB8::2", "Name": "x"},
                {"ID": "id3", "TMS": {"slot": 3}},
            ],
            "Unknown": 1,
        }
    )
    assert ap.targets == (
        Target("id1", "id1.example.org"),
        Target("id2", "", "10.0.0.2", "2001:db8::2"),
        Target("id3", manager_state={"slot": 3}),
    )


@pytest.mark.parametrize("params", [None, {}, {"Targets": None}, {"Targets": []}, "null", "{}"])
def test_targetlist_no_targets(params: Any) -> None:
    assert TargetList().validate_acquire_parameters(params).targets == ()


def test_targetlist_accepts_raw_text_and_trees() -> None:
    text = '{"targets": [{"ID": "a"}], "TARGETS": [{"ID": "b"}]}'  # the later key wins, as in Go
    tm = TargetList()
    assert ids(list(tm.validate_acquire_parameters(text).targets)) == ["b"]
    assert ids(list(tm.validate_acquire_parameters(loads_json(text)).targets)) == ["b"]
    assert ids(list(tm.validate_acquire_parameters(text.encode()).targets)) == ["b"]


def test_targetlist_null_field_keeps_earlier_value() -> None:
    ap = TargetList().validate_acquire_parameters('{"Targets": [{"ID": "a", "id": null}]}')
    assert ids(list(ap.targets)) == ["a"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"Targets": [{"ID": "a"}, {"ID": ""}]}, "Targets[1].ID: invalid target with empty ID"),
        ({"Targets": [{"ID": " \t"}]}, "Targets[0].ID: invalid target with empty ID"),
        ({"Targets": [{"FQDN": "x"}]}, "Targets[0].ID: invalid target with empty ID"),
        ({"Targets": [None]}, "Targets[0].ID: invalid target with empty ID"),
        (
            {"Targets": [{"ID": "a"}, {"ID": "b"}, {"ID": "a"}]},
            "Targets[2].ID: duplicate target ID 'a' (also Targets[0])",
        ),
        (
            {"Targets": [{"ID": 5}]},
            "Targets[0].ID: json: cannot unmarshal number 5 into Go struct field "
            "AcquireParameters.Targets.ID of type string",
        ),
        (
            {"Targets": "id1"},
            "Targets: json: cannot unmarshal string into Go struct field "
            "AcquireParameters.Targets of type []*target.Target",
        ),
        (
            {"Targets": ["id1"]},
            "Targets[0]: json: cannot unmarshal string into Go struct field "
            "AcquireParameters.Targets of type target.Target",
        ),
        (
            [{"ID": "a"}],
            "json: cannot unmarshal array into Go value of type targetlist.AcquireParameters",
        ),
        (
            {"Targets": [{"ID": "a", "PrimaryIPv4": "1.2.3"}]},
            "Targets[0].PrimaryIPv4: invalid IP address: 1.2.3",
        ),
        (
            {"Targets": [{"ID": "a", "PrimaryIPv6": "fe80::1%eth0"}]},
            "Targets[0].PrimaryIPv6: invalid IP address: fe80::1%eth0",
        ),
        (
            {"Targets": [{"ID": "a", "PrimaryIPv4": 17}]},
            "Targets[0].PrimaryIPv4: json: cannot unmarshal number 17 into Go struct field "
            "AcquireParameters.Targets.PrimaryIPv4 of type net.IP",
        ),
    ],
)
def test_targetlist_invalid(params: Any, message: str) -> None:
    with pytest.raises(ParameterError) as info:
        TargetList().validate_acquire_parameters(params)
    assert str(info.value) == message


def test_targetlist_invalid_json_text() -> None:
    with pytest.raises(ParameterError, match="invalid JSON parameters"):
        TargetList().validate_acquire_parameters('{"Targets": [')


def test_targetlist_ip_forms() -> None:
    ap = TargetList().validate_acquire_parameters(
        {
            "Targets": [
                {"ID": "a", "PrimaryIPv4": "", "PrimaryIPv6": None},
                {"ID": "b", "PrimaryIPv4": "::ffff:10.1.2.3", "PrimaryIPv6": "2001:0db8:0::1"},
            ]
        }
    )
    assert ap.targets[0] == Target("a")
    assert ap.targets[1] == Target("b", "", "10.1.2.3", "2001:db8::1")  # Go prints them so


@pytest.mark.parametrize("params", [None, {}, {"anything": [1, 2]}, "{}", "null"])
def test_targetlist_release_parameters(params: Any) -> None:
    assert TargetList().validate_release_parameters(params) == targetlist.ReleaseParameters()


@pytest.mark.parametrize("params", [[], "x", 5, '"text"'])
def test_targetlist_release_parameters_must_be_an_object(params: Any) -> None:
    with pytest.raises(ParameterError):
        TargetList().validate_release_parameters(params)


async def test_targetlist_acquire_locks_all(
    ctx: PluginContext, locker: InMemoryLocker, clock: Clock
) -> None:
    tm = TargetList()
    ap = tm.validate_acquire_parameters({"Targets": [{"ID": "id1"}, {"ID": "id2"}]})
    got = await tm.acquire(ctx, 7, 30.0, ap, locker)
    assert ids(got) == ["id1", "id2"]
    assert got[0] is not ap.targets[0]  # copies: the parameters serve every run
    assert not await free(locker, 8, ["id1"])
    assert not await free(locker, 8, ["id2"])
    clock.now += 30.0  # the lease is the lock timeout: held up to its end...
    assert not await free(locker, 8, ["id1"])
    clock.now += 0.001  # ...and free after it
    assert await free(locker, 8, ["id1", "id2"])
    await tm.release(ctx, 7, got, targetlist.ReleaseParameters())


async def test_targetlist_acquire_is_all_or_nothing(
    ctx: PluginContext, locker: InMemoryLocker
) -> None:
    await locker.lock(9, 60, ["id2"])
    tm = TargetList()
    with pytest.raises(LockConflict):
        await tm.acquire(
            ctx,
            7,
            60,
            tm.validate_acquire_parameters({"Targets": [{"ID": "id1"}, {"ID": "id2"}]}),
            locker,
        )
    assert await free(locker, 8, ["id1"])  # nothing was locked


async def test_targetlist_acquire_validates_raw_parameters(
    ctx: PluginContext, locker: InMemoryLocker
) -> None:
    got = await TargetList().acquire(ctx, 7, 60, {"Targets": [{"ID": "x"}]}, locker)
    assert ids(got) == ["x"]
    assert await TargetList().acquire(ctx, 7, 60, None, locker) == []


# --- CSVFileTargetManager: parameters -----------------------------------------------------------


START_JSON_PARAMS = {
    "FileURI": "hosts.csv",
    "MinNumberDevices": 2,
    "MaxNumberDevices": 4,
    "HostPrefixes": [],
}


def test_csv_validate_sample_parameters() -> None:
    ap = CSVFileTargetManager().validate_acquire_parameters(START_JSON_PARAMS)
    assert ap == csvfile.AcquireParameters(
        file_uri="hosts.csv", path="hosts.csv", min_number_devices=2, max_number_devices=4
    )


def test_csv_validate_every_field_case_insensitive() -> None:
    ap = CSVFileTargetManager().validate_acquire_parameters(
        '{"fileuri": "file:///srv/hosts%20a.csv", "minnumberdevices": 1, '
        '"MAXNUMBERDEVICES": 1, "hostprefixes": [" compute ", "gpu"], "shuffle": true, "x": 1}'
    )
    assert ap.path == "/srv/hosts a.csv"
    assert (ap.min_number_devices, ap.max_number_devices) == (1, 1)
    assert ap.host_prefixes == ("compute", "gpu")
    assert ap.shuffle is True


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("hosts.csv", "hosts.csv"),
        ("./dir/hosts.csv", "./dir/hosts.csv"),
        ("/abs/hosts.csv", "/abs/hosts.csv"),
        ("file:///abs/hosts.csv", "/abs/hosts.csv"),
        ("FILE:///abs/hosts.csv", "/abs/hosts.csv"),
        ("file://localhost/abs/hosts.csv", "/abs/hosts.csv"),
        ("file:hosts.csv", "hosts.csv"),
        ("hosts.csv?ignored#too", "hosts.csv"),
    ],
)
def test_csv_file_uris(uri: str, path: str) -> None:
    params = {"FileURI": uri, "MinNumberDevices": 1, "MaxNumberDevices": 1}
    assert CSVFileTargetManager().validate_acquire_parameters(params).path == path


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "FileURI: file URI not specified in acquire parameters"),
        (None, "FileURI: file URI not specified in acquire parameters"),
        ({"FileURI": None}, "FileURI: file URI not specified in acquire parameters"),
        ({"FileURI": ""}, "FileURI: file URI not specified in acquire parameters"),
        (
            {"FileURI": "http://example.org/hosts.csv"},
            "FileURI: unsupported scheme: 'http', only 'file' or empty string are accepted",
        ),
        (
            {"FileURI": "file://server/hosts.csv"},
            "FileURI: unsupported host 'server', only 'localhost' or empty string are accepted",
        ),
        ({"FileURI": "file://localhost"}, "FileURI: file URI 'file://localhost' names no file"),
        (
            {"FileURI": "hosts.csv", "HostPrefixes": ["a", "  "]},
            "HostPrefixes[1]: Host prefix cannot be empty string if specified",
        ),
        (
            {"FileURI": "hosts.csv", "HostPrefixes": [None]},
            "HostPrefixes[0]: Host prefix cannot be empty string if specified",
        ),
        (
            {"FileURI": "hosts.csv", "HostPrefixes": "compute"},
            "HostPrefixes: json: cannot unmarshal string into Go struct field "
            "AcquireParameters.HostPrefixes of type []string",
        ),
        (
            {"FileURI": "hosts.csv", "HostPrefixes": [1]},
            "HostPrefixes[0]: json: cannot unmarshal number into Go struct field "
            "AcquireParameters.HostPrefixes of type string",
        ),
        (
            {"FileURI": 5},
            "FileURI: json: cannot unmarshal number 5 into Go struct field "
            "AcquireParameters.FileURI of type string",
        ),
        (
            {"FileURI": "hosts.csv", "MinNumberDevices": -1},
            "MinNumberDevices: json: cannot unmarshal number -1 into Go struct field "
            "AcquireParameters.MinNumberDevices of type uint32",
        ),
        (
            '{"FileURI": "hosts.csv", "MaxNumberDevices": 1.0}',
            "MaxNumberDevices: json: cannot unmarshal number 1.0 into Go struct field "
            "AcquireParameters.MaxNumberDevices of type uint32",
        ),
        (
            {"FileURI": "hosts.csv", "MaxNumberDevices": 2**32},
            "MaxNumberDevices: json: cannot unmarshal number 4294967296 into Go struct field "
            "AcquireParameters.MaxNumberDevices of type uint32",
        ),
        (
            {"FileURI": "hosts.csv", "MinNumberDevices": "2"},
            "MinNumberDevices: json: cannot unmarshal string into Go struct field "
            "AcquireParameters.MinNumberDevices of type uint32",
        ),
        (
            {"FileURI": "hosts.csv", "Shuffle": "yes"},
            "Shuffle: json: cannot unmarshal string into Go struct field "
            "AcquireParameters.Shuffle of type bool",
        ),
        (
            {"FileURI": "hosts.csv", "MinNumberDevices": 3, "MaxNumberDevices": 2},
            "MaxNumberDevices: must be at least MinNumberDevices (2 < 3): "
            "no acquire could ever succeed",
        ),
        (
            "[]",
            "json: cannot unmarshal array into Go value of type csvtargetmanager.AcquireParameters",
        ),
    ],
)
def test_csv_invalid_parameters(params: Any, message: str) -> None:
    with pytest.raises(ParameterError) as info:
        CSVFileTargetManager().validate_acquire_parameters(params)
    assert str(info.value) == message


def test_csv_release_parameters() -> None:
    tm = CSVFileTargetManager()
    assert tm.validate_release_parameters({}) == csvfile.ReleaseParameters()
    assert tm.validate_release_parameters(None) == csvfile.ReleaseParameters()
    with pytest.raises(ParameterError):
        tm.validate_release_parameters([])


# --- CSVFileTargetManager: acquire --------------------------------------------------------------


def csv_params(path: Path | str, **kw: Any) -> dict[str, Any]:
    return {"FileURI": str(path), "MinNumberDevices": 1, "MaxNumberDevices": 100, **kw}


async def acquire_csv(
    ctx: PluginContext,
    locker: InMemoryLocker,
    params: dict[str, Any],
    job_id: int = 1,
    tm: CSVFileTargetManager | None = None,
) -> list[Target]:
    tm = tm or CSVFileTargetManager()
    return await tm.acquire(ctx, job_id, 60, tm.validate_acquire_parameters(params), locker)


async def test_csv_sample_start_json_lb(
    ctx: PluginContext, locker: InMemoryLocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(LB_HOSTS.parent)  # ConTest reads FileURI relative to the server's CWD
    got = await acquire_csv(ctx, locker, START_JSON_PARAMS)
    assert got == [
        Target("1234", "compute1234", "172.16.5.6"),
        Target("2345", "storage2345", "10.10.10.123"),
        Target("3456", "machinelearning3456", "192.168.123.231"),
        Target("10", "uselesshost10", "10.0.0.10"),
    ]
    assert not await free(locker, 2, ["1234"])
    assert await free(locker, 2, ["20", "30"])  # only MaxNumberDevices were locked


async def test_csv_sample_start_json_fb_repeated_ids(
    ctx: PluginContext,
    locker: InMemoryLocker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(FB_HOSTS.parent)
    got = await acquire_csv(ctx, locker, START_JSON_PARAMS)
    # 1234 appears twice: the first row wins, and the device is one target
    assert got == [
        Target("1234", "compute1234", "172.16.5.6"),
        Target("2345", "storage2345", "10.10.10.123"),
        Target("10", "uselesshost10", "10.0.0.10"),
    ]
    assert "repeats target IDs ['1234']" in caplog.text


async def test_csv_host_prefixes(ctx: PluginContext, locker: InMemoryLocker) -> None:
    got = await acquire_csv(ctx, locker, csv_params(LB_HOSTS, HostPrefixes=["compute", "machine"]))
    assert ids(got) == ["1234", "3456"]


async def test_csv_host_matching_two_prefixes_is_taken_once(
    ctx: PluginContext, locker: InMemoryLocker
) -> None:
    got = await acquire_csv(ctx, locker, csv_params(LB_HOSTS, HostPrefixes=["use", "useless"]))
    assert ids(got) == ["10", "20", "30"]


async def test_csv_prefix_looks_at_first_label_only(
    ctx: PluginContext, locker: InMemoryLocker, tmp_path: Path
) -> None:
    f = tmp_path / "hosts.csv"
    f.write_text("a,web1.compute.example,,\nb,compute2.example,,\nc,,10.0.0.3,\n")
    got = await acquire_csv(ctx, locker, csv_params(f, HostPrefixes=["compute"]))
    assert ids(got) == ["b"]  # "a" has compute in a later label; "c" has no FQDN at all


async def test_csv_not_enough_hosts(ctx: PluginContext, locker: InMemoryLocker) -> None:
    with pytest.raises(AcquireError) as info:
        await acquire_csv(ctx, locker, csv_params(LB_HOSTS, MinNumberDevices=7))
    assert str(info.value) == f"not enough hosts found in CSV file '{LB_HOSTS}', want 7, got 6"


async def test_csv_try_lock_skips_held_targets(ctx: PluginContext, locker: InMemoryLocker) -> None:
    await locker.lock(9, 600, ["1234", "2345"])
    got = await acquire_csv(
        ctx, locker, csv_params(LB_HOSTS, MinNumberDevices=2, MaxNumberDevices=3)
    )
    assert ids(got) == ["3456", "10", "20"]


async def test_csv_cannot_lock_enough_unlocks_what_it_got(
    ctx: PluginContext, locker: InMemoryLocker
) -> None:
    await locker.lock(9, 600, ["1234", "2345", "3456", "10", "20"])
    with pytest.raises(AcquireError) as info:
        await acquire_csv(ctx, locker, csv_params(LB_HOSTS, MinNumberDevices=2, MaxNumberDevices=4))
    assert str(info.value).startswith("can't lock enough targets")
    # given a locker that does not wait (not through a job), it tells what stood in the way
    assert "want at least 2 of the 6 found" in str(info.value)
    assert await free(locker, 3, ["30"])  # nothing kept


async def test_csv_acquire_error_is_a_contest_error(
    ctx: PluginContext, locker: InMemoryLocker
) -> None:
    # the job runner treats a ContestError from acquire as a failed attempt (retried), not a crash
    with pytest.raises(ContestError):
        await acquire_csv(ctx, locker, csv_params("/nonexistent/hosts.csv"))


async def test_csv_missing_file(ctx: PluginContext, locker: InMemoryLocker) -> None:
    with pytest.raises(AcquireError) as info:
        await acquire_csv(ctx, locker, csv_params("/nonexistent/hosts.csv"))
    assert str(info.value) == (
        "cannot read CSV file '/nonexistent/hosts.csv': No such file or directory"
    )


async def test_csv_shuffle(ctx: PluginContext, locker: InMemoryLocker) -> None:
    tm = CSVFileTargetManager(rng=random.Random(42))
    got = await acquire_csv(ctx, locker, csv_params(LB_HOSTS, Shuffle=True), tm=tm)
    expected = ["1234", "2345", "3456", "10", "20", "30"]
    random.Random(42).shuffle(expected)
    assert ids(got) == expected
    assert ids(got) != sorted(ids(got), key=["1234", "2345", "3456", "10", "20", "30"].index)


async def test_csv_shuffle_then_limit(ctx: PluginContext, locker: InMemoryLocker) -> None:
    seen = set()
    tm = CSVFileTargetManager(rng=random.Random(1))
    for job in range(1, 9):
        got = await acquire_csv(
            ctx, locker, csv_params(LB_HOSTS, MaxNumberDevices=1, Shuffle=True), job, tm
        )
        assert len(got) == 1
        seen.add(got[0].id)
        await locker.unlock(job, got)
    assert len(seen) > 1  # not always the first row


async def test_csv_zero_devices(ctx: PluginContext, locker: InMemoryLocker) -> None:
    got = await acquire_csv(
        ctx, locker, csv_params(LB_HOSTS, MinNumberDevices=0, MaxNumberDevices=0)
    )
    assert got == []


async def test_csv_lease_is_the_lock_timeout(
    ctx: PluginContext, locker: InMemoryLocker, clock: Clock
) -> None:
    tm = CSVFileTargetManager()
    ap = tm.validate_acquire_parameters(csv_params(LB_HOSTS, MaxNumberDevices=1))
    await tm.acquire(ctx, 1, 5.0, ap, locker)
    clock.now += 5.001
    assert await free(locker, 2, ["1234"])


async def test_csv_file_is_read_at_each_acquire(
    ctx: PluginContext, locker: InMemoryLocker, tmp_path: Path
) -> None:
    f = tmp_path / "hosts.csv"
    f.write_text("a,,,\n")
    tm = CSVFileTargetManager()
    ap = tm.validate_acquire_parameters(csv_params(f))
    assert ids(await tm.acquire(ctx, 1, 60, ap, locker)) == ["a"]
    f.write_text("b,,,\n")
    assert ids(await tm.acquire(ctx, 2, 60, ap, locker)) == ["b"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("\n\na,h.example, 10.0.0.1 ,\n\n", [Target("a", "h.example", "10.0.0.1")]),
        ("\r\na,,,2001:db8::1\r\n", [Target("a", primary_ipv6="2001:db8::1")]),
        ('"a,1","h",,\n', [Target("a,1", "h")]),
        ("\ufeffa,,,\n", [Target("a")]),
        ("a,,::ffff:10.0.0.1,10.0.0.2", [Target("a", "", "10.0.0.1", "10.0.0.2")]),
        (" a , b ,,", [Target("a", "b")]),
    ],
)
async def test_csv_format(
    ctx: PluginContext,
    locker: InMemoryLocker,
    tmp_path: Path,
    content: str,
    expected: list[Target],
) -> None:
    f = tmp_path / "hosts.csv"
    f.write_text(content, encoding="utf-8")
    assert await acquire_csv(ctx, locker, csv_params(f)) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "a,b,,\nd,e,f\n",
            "malformed input file, need 4 entries per record (ID, FQDN, IPv4, IPv6), got 3 "
            "(file '{f}', line 2)",
        ),
        (
            "a,b,c,d,e\n",
            "malformed input file, need 4 entries per record (ID, FQDN, IPv4, IPv6), got 5 "
            "(file '{f}', line 1)",
        ),
        ("a,,,\n ,b,,\n", "invalid empty string for host ID (file '{f}', line 2)"),
        ("a,,1.2.3,\n", "invalid non-empty IPv4 address \"1.2.3\" (file '{f}', line 1)"),
        (
            "a,,2001:db8::1,\n",
            "invalid non-empty IPv4 address \"2001:db8::1\" (file '{f}', line 1)",
        ),
        ("a,,,zz::1\n", "invalid non-empty IPv6 address \"zz::1\" (file '{f}', line 1)"),
    ],
)
async def test_csv_malformed(
    ctx: PluginContext, locker: InMemoryLocker, tmp_path: Path, content: str, message: str
) -> None:
    f = tmp_path / "hosts.csv"
    f.write_text(content)
    with pytest.raises(AcquireError) as info:
        await acquire_csv(ctx, locker, csv_params(f))
    assert str(info.value) == message.format(f=f)
    assert await free(locker, 2, ["a"])  # nothing locked


async def test_csv_bad_quoting(ctx: PluginContext, locker: InMemoryLocker, tmp_path: Path) -> None:
    f = tmp_path / "hosts.csv"
    f.write_text('a,,,\n"b"x,,,\n')
    with pytest.raises(AcquireError, match=r"cannot parse CSV file '.*' \(line 2\)"):
        await acquire_csv(ctx, locker, csv_params(f))


# --- TargetListWithState ------------------------------------------------------------------------


async def test_tlws_stamps_and_checks_tokens(ctx: PluginContext, locker: InMemoryLocker) -> None:
    tm = TargetListWithState(max_delay=0)
    ap = tm.validate_acquire_parameters({"Targets": [{"ID": "T1"}, {"ID": "T2", "TMS": 1}]})
    got = await tm.acquire(ctx, 42, 60, ap, locker)
    assert [t.manager_state for t in got] == [{"token": "42-T1"}, {"token": "42-T2"}]
    assert [t.to_json_obj()["TMS"] for t in got] == [{"token": "42-T1"}, {"token": "42-T2"}]
    assert ap.targets[0].manager_state is None  # the parameters are not changed
    assert not await free(locker, 2, ["T1"])
    tm.validate_release_parameters(["anything"])  # anything goes
    await tm.release(ctx, 42, got, None)


async def test_tlws_state_through_storage(ctx: PluginContext, locker: InMemoryLocker) -> None:
    tm = TargetListWithState(max_delay=0)
    got = await tm.acquire(ctx, 42, 60, {"Targets": [{"ID": "T1"}]}, locker)
    stored = Target.from_json_obj(json.loads(got[0].to_json()))  # as a resumed job reads it
    await tm.release(ctx, 42, [stored], None)
    raw = Target("T1", manager_state='{"token":"42-T1"}')  # raw JSON text is fine too
    await tm.release(ctx, 42, [raw], None)


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        (None, "null"),
        ({"token": "41-T1"}, '{"token":"41-T1"}'),
        ({"token": "42-T2"}, '{"token":"42-T2"}'),
        ("garbage", '"garbage"'),
    ],
)
async def test_tlws_mismatch(ctx: PluginContext, state: Any, shown: str) -> None:
    tm = TargetListWithState(max_delay=0)
    with pytest.raises(TargetStateMismatch) as info:
        await tm.release(ctx, 42, [Target("T1", manager_state=state)], None)
    assert str(info.value) == (
        f'state mismatch for target T1: expected {{"token":"42-T1"}}, got {shown}'
    )


async def test_tlws_random_delay(ctx: PluginContext, locker: InMemoryLocker) -> None:
    import time

    tm = TargetListWithState(max_delay=0.05, rng=random.Random(3))
    expected = random.Random(3).uniform(0, 0.05)
    start = time.monotonic()
    await tm.acquire(ctx, 1, 60, {"Targets": [{"ID": "a"}]}, locker)
    assert time.monotonic() - start >= expected * 0.9
    assert tlws.MAX_ACQUIRE_DELAY == 0.2
    assert TargetListWithState().max_delay == 0.2


async def test_tlws_lock_conflict(ctx: PluginContext, locker: InMemoryLocker) -> None:
    await locker.lock(9, 60, ["a"])
    with pytest.raises(LockConflict):
        await TargetListWithState(max_delay=0).acquire(
            ctx, 1, 60, {"Targets": [{"ID": "a"}]}, locker
        )


def test_tlws_rejects_blank_ids() -> None:
    with pytest.raises(ParameterError, match="invalid target with empty ID"):
        TargetListWithState().validate_acquire_parameters({"Targets": [{"ID": ""}]})


@pytest.mark.parametrize(
    "item",
    [
        '{"ID": "a"}',
        '{"ID": "a", "FQDN": "a.example.com"}',
        '{"FQDN": "f", "ID": "a"}',
        '{"ID": "a", "ID": "b"}',
        '{"id": "a"}',
        '{"ID": 5}',
        '{"ID": null}',
        '{"ID": "a", "Other": 1}',
        '{"ID": "a", "PrimaryIPv4": "10.0.0.1"}',
        '{"ID": "\\u00e9t\\u00e9"}',
        "{}",
        "null",
        '"a"',
    ],
)
def test_the_plain_target_shortcut_reads_what_the_decoder_reads(item: str) -> None:
    """``{"ID", "FQDN"}`` targets are read without the general decoder; anything else goes to
    it; both ways give the same target, or the same error."""
    params = loads_json(f'{{"Targets": [{item}]}}')

    def general() -> Any:
        s = GoStruct(params, "targetlist.AcquireParameters")
        (element,) = s.array("Targets", "[]*target.Target")
        return targetlist.decode_target(s.nested(element, "target.Target", "Targets", "Targets[0]"))

    try:
        want: Any = general()
    except ParameterError as exc:
        want = str(exc)
    (element,) = GoStruct(params, "x").array("Targets", "[]*target.Target")
    fast = targetlist._plain_target(element)
    assert fast is None or fast == want
    try:
        got: Any = targetlist.decode_targets(params, "targetlist.AcquireParameters")
    except ParameterError as exc:
        got = str(exc)
    if isinstance(want, Target) and want.id:
        assert got == (want,)
