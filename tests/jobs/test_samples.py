"""ConTest's own sample descriptors (``/work/shared/contest-samples``, read-only): every one that
ConTest accepts is accepted here and, where what it needs exists here, runs to completion
through a job manager on SQLite (with the DB locker, as a server runs); every one ConTest
rejects is rejected with a clear message naming the field.

Verdicts, decided per file from the file itself, ConTest's code and its plugins' sources
(FB's label rule applies: any label of at most 32 bytes; LB's identifier rule is not enforced):

* rejected: both ``lspci.json`` (its step has no label); both ``debug.json`` (a RandEcho without
  ``text``); both ``terminalexpect.json`` (the label "wait for trying boot configuration" has 34
  bytes; FB refuses labels over 32, LB refuses the spaces); LB's ``test-retry.yaml`` as shipped
  (its waitport ``port`` is the template ``[[ .WaitPort]]``, which ConTest's e2e test fills in
  before submitting; filled in, it is accepted and runs).
* accepted but not run here: both ``sshhostname.json`` (SSHCmd to every target's FQDN with the
  key ``/home/user/.ssh/id_rsa``: needs an SSH server on real hosts and that key).
* accepted and run: all the others. Steps-only files (``{"steps": [...]}``) are what the URI
  fetcher reads: they are submitted as ConTest's ``start.json`` uses them, in a job whose test is
  fetched by URI from the file (copied into a working directory laid out like ConTest's
  ``cmds/contest``, with ``hosts.csv`` and ``test_samples/``, which we chdir to, as the server's
  working directory).

Durations shortened for the test (the descriptors are otherwise run as shipped), each in
:data:`SHORTENED` with the reason: waits between runs and retries, ``sleep 60``, SlowEcho's 3 s,
test-resume's sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contest.events import FrameworkEventQuery, TestEvent, TestEventQuery
from contest.job.build import CLEANUP_SUFFIX, load_job
from contest.job.descriptor import DescriptorValidationError
from contest.job.manager import JobManager
from contest.plugins.targetlockers import dblocker
from contest.registry import default_registry
from contest.storage import JobReport, Storage, open_storage
from contest.storage.models import STATE_EVENT_NAMES
from contest.testing.databases import temporary_database

SAMPLES = Path("/work/shared/contest-samples")
SERVER_DIR = "cmds/contest"  # each repo's server working directory in the samples
DESCRIPTORS = "cmds/clients/contestcli/descriptors"

#: ConTest rejects these: (the step the first error is about, start of its message). The path
#: is pinned only to the step (``...Steps[1]``, ``...Steps[1].label`` or one of its
#: ``...Steps[1].parameters``): how a fetched step's
#: path begins is the descriptor module's business. The same problem may be reported again by
#: the step builder.
REJECTED: dict[str, tuple[str, str]] = {
    f"{repo}/{DESCRIPTORS}/fwtesting/lspci.json": (
        "Steps[0]",
        "step has no label, but it is mandatory (step: {Name:sshcmd Label: ",
    )
    for repo in ("fb", "lb")
}
REJECTED |= {
    f"{repo}/{DESCRIPTORS}/debug.json": (
        "Steps[0]",
        "step RandEcho, parameter text: missing; it is required",
    )
    for repo in ("fb", "lb")
}
REJECTED |= {
    f"{repo}/{SERVER_DIR}/test_samples/terminalexpect.json": (
        "Steps[1]",
        "Test step label is too long: 34 > 32",
    )
    for repo in ("fb", "lb")
}
REJECTED["lb/tests/e2e/test-retry.yaml"] = (
    "Steps[1]",
    'step waitport, parameter port[0]: expected an integer, got "[[ .WaitPort]]"',
)

#: ConTest accepts these, but they cannot run here: why.
NOT_RUN: dict[str, str] = {
    f"{repo}/{SERVER_DIR}/test_samples/sshhostname.json": (
        "SSHCmd logs in to every target's FQDN as 'your_username' with the key "
        "/home/user/.ssh/id_rsa: it needs SSH servers on real hosts and that key"
    )
    for repo in ("fb", "lb")
}

#: Not descriptors: the CSV targets of the CSVFileTargetManager samples, and the folder's README.
DATA = {"fb/cmds/contest/hosts.csv", "lb/cmds/contest/hosts.csv", "README.md"}

#: Durations shortened for the test: file name -> [(text, replacement, why)]; each text must
#: occur in the file.
SHORTENED: dict[str, list[tuple[str, str, str]]] = {
    "start-literal.json": [('"RunInterval": "3s"', '"RunInterval": "100ms"', "3 runs, 6 s idle")],
    "start-literal.yaml": [("RunInterval: 3s", "RunInterval: 100ms", "3 runs, 6 s idle")],
    "test-resume.yaml": [
        ("RunInterval: 3s", "RunInterval: 300ms", "2 runs, 3 s idle"),
        ("duration: [2s]", "duration: [300ms]", "4 x 2 s of Sleep"),
        ("args: [2]", "args: [0.3]", "2 x `sleep 2`"),
    ],
    "test-retry.yaml": [('RetryInterval: "10s"', 'RetryInterval: "1s"', "10 s before the retry")],
    "sleep.json": [('"args": ["60"]', '"args": ["0.2"]', "`/bin/sleep 60`")],
    "slowecho.json": [('"sleep": ["3"]', '"sleep": ["0.3"]', "3 s per target")],
}

TERMINAL = {"JobStateCompleted", "JobStateFailed", "JobStateCancelled", "JobStatePauseFailed"}


def rel(path: Path) -> str:
    return str(path.relative_to(SAMPLES))


ALL_FILES = sorted(rel(p) for p in SAMPLES.rglob("*") if p.is_file())
SAMPLE_FILES = [f for f in ALL_FILES if f not in DATA]
ACCEPTED = [f for f in SAMPLE_FILES if f not in REJECTED]
#: test-retry.yaml runs once its port is filled in, as ConTest's e2e test does
RETRY = "lb/tests/e2e/test-retry.yaml"
RUN = [f for f in ACCEPTED if f not in NOT_RUN] + [RETRY]


def fill_in_port(copy: Path, port: int) -> None:
    """What ConTest's e2e test does to test-retry.yaml before submitting it."""
    copy.write_text(copy.read_text().replace("[[ .WaitPort]]", str(port)))


def steps_of(copy: Path) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = json.loads(copy.read_text())["steps"]
    return steps


def hosts_csv() -> dict[str, str]:
    """ID -> FQDN of the working directory's hosts.csv (the first row of a repeated ID)."""
    out: dict[str, str] = {}
    for line in Path("hosts.csv").read_text().splitlines():
        if line.strip():
            tid, fqdn = line.split(",")[:2]
            out.setdefault(tid, fqdn)
    return out


def is_steps_file(text: str) -> bool:
    return "TestDescriptors" not in text and '"steps"' in text


# --- a server's working directory ------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """``workdir(sample)``: a copy of the sample's repo, chdir'ed to its ``cmds/contest``."""

    def make(sample: str) -> Path:
        repo = sample.split("/")[0]
        root = tmp_path / "samples"
        if not (root / repo).exists():
            shutil.copytree(SAMPLES / repo, root / repo)
        cwd = root / repo / SERVER_DIR
        monkeypatch.chdir(cwd)
        return root / sample

    return make


def descriptor_text(copy: Path, *, shorten: bool = False) -> str:
    """The job to submit for a sample: the file itself, or for a steps-only file a job fetching
    it with the URI fetcher (path relative to the working directory, as in ConTest's
    ``start.json``)."""
    text = copy.read_text()
    if shorten:
        for old, new, _why in SHORTENED.get(copy.name, []):
            assert old in text, f"{copy.name}: {old!r} not found to shorten"
            text = text.replace(old, new)
    if not is_steps_file(text):
        return text
    if shorten:
        copy.write_text(text)
    return json.dumps(
        {
            "JobName": f"steps sample {copy.name}",
            "Runs": 1,
            "RunInterval": "1s",
            "Tags": ["samples"],
            "TestDescriptors": [
                {
                    "TargetManagerName": "TargetList",
                    "TargetManagerAcquireParameters": {
                        "Targets": [{"ID": "T1", "FQDN": "localhost"}]
                    },
                    "TargetManagerReleaseParameters": {},
                    "TestFetcherName": "URI",
                    "TestFetcherFetchParameters": {
                        "TestName": copy.stem,
                        "URI": os.path.relpath(copy, Path.cwd()),
                    },
                }
            ],
            "Reporting": {
                "RunReporters": [
                    {"Name": "TargetSuccess", "Parameters": {"SuccessExpression": "=100%"}}
                ]
            },
        }
    )


# --- the verdicts ----------------------------------------------------------------------------


def test_every_sample_has_a_verdict() -> None:
    """The walk: a file added to the folder must be classified here."""
    assert SAMPLES.is_dir(), "the ConTest samples are missing"
    assert set(REJECTED) | set(NOT_RUN) <= set(SAMPLE_FILES)
    assert set(DATA) <= set(ALL_FILES)
    assert len(SAMPLE_FILES) == 27
    assert len(RUN) == 27 - len(REJECTED) - len(NOT_RUN) + 1 == 19


async def test_retry_sample_is_accepted_once_its_port_is_filled_in(
    workdir: Callable[[str], Path],
) -> None:
    copy = workdir(RETRY)
    fill_in_port(copy, 4242)
    _, job, _ = await load_job(descriptor_text(copy), default_registry())
    assert job.tests[0].num_retries == 1 and job.tests[0].retry_interval == 10.0


@pytest.mark.parametrize("sample", ACCEPTED)
async def test_accepted(sample: str, workdir: Callable[[str], Path]) -> None:
    d, job, ext = await load_job(descriptor_text(workdir(sample)), default_registry())
    assert job.tests and len(ext.tests) == len(d.test_descriptors)


@pytest.mark.parametrize("sample", sorted(REJECTED))
async def test_rejected_with_a_clear_message(sample: str, workdir: Callable[[str], Path]) -> None:
    step, message = REJECTED[sample]
    with pytest.raises(DescriptorValidationError) as info:
        await load_job(descriptor_text(workdir(sample)), default_registry())
    first = info.value.errors[0]
    assert first.message.startswith(message), first
    assert first.path.startswith("TestDescriptors[0].") or first.path.startswith(
        "TestStepsDescriptors[0]."
    ), first
    assert re.search(rf"\.(Test)?{re.escape(step)}(\.label|\.parameters\..*)?$", first.path), first
    assert f"{first.path}: {first.message}" in str(info.value)


@pytest.mark.parametrize("sample", sorted(NOT_RUN))
async def test_not_run_here_but_accepted(sample: str, workdir: Callable[[str], Path]) -> None:
    """Accepted, as by ConTest; not run, for the reason in :data:`NOT_RUN`."""
    assert NOT_RUN[sample]
    _, job, _ = await load_job(descriptor_text(workdir(sample)), default_registry())
    assert [b.name for b in job.tests[0].test.steps] == ["SSHCmd"]


# --- running them ----------------------------------------------------------------------------


@dataclass
class Outcome:
    job_id: int
    states: list[str]
    error: str
    events: list[TestEvent]
    report: JobReport
    status: dict[str, Any]

    def log(self, *names: str) -> list[tuple[Any, ...]]:
        """(run, test, attempt, label, target, event, payload) of the events named."""
        return [
            (
                e.header.run_id,
                e.header.test_name,
                e.header.test_attempt,
                e.header.step_label,
                e.target.id if e.target else None,
                e.name,
                e.payload,
            )
            for e in self.events
            if not names or e.name in names
        ]

    def acquired(self, run_id: int, test: str) -> list[str]:
        return [
            e.target.id
            for e in self.events
            if e.name == "TargetAcquired"
            and e.target
            and (e.header.run_id, e.header.test_name) == (run_id, test)
        ]


class Server:
    """A server on one SQLite database: job managers (one per "process") with the DB locker."""

    def __init__(self, store: Storage) -> None:
        self.store = store
        self.managers: list[tuple[JobManager, dblocker.DBLocker]] = []

    async def start(self) -> JobManager:
        locker = dblocker.new(engine=self.store.engine)
        jm = JobManager(self.store, locker, server_id="samples", shutdown_timeout=10.0)
        self.managers.append((jm, locker))
        await jm.start(resume_jobs=True)
        return jm

    async def stop(self, jm: JobManager, *, pause: bool) -> None:
        (jm.pause_all if pause else jm.cancel_all)()
        assert await jm.wait_all(15.0), "jobs did not stop"
        await jm.close()

    async def states(self, job_id: int) -> list[str]:
        events = await self.store.framework_events(
            FrameworkEventQuery(job_id=job_id, event_names=sorted(STATE_EVENT_NAMES))
        )
        return [e.name for e in events]

    async def events(self, job_id: int, **query: Any) -> list[TestEvent]:
        return await self.store.test_events(TestEventQuery(job_id=job_id, **query))

    async def wait(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
            await asyncio.sleep(0.02)

    async def finished(self, job_id: int, timeout: float = 30.0) -> Outcome:
        async def done() -> bool:
            states = await self.states(job_id)
            return bool(states) and states[-1] in TERMINAL

        await self.wait(f"job {job_id} ends", done, timeout)
        jm = self.managers[-1][0]
        status = await jm.status(job_id)
        return Outcome(
            job_id,
            await self.states(job_id),
            status["StateErrMsg"],
            await self.events(job_id),
            await self.store.job_report(job_id),
            status,
        )


@asynccontextmanager
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    with temporary_database("sqlite", tmp_path) as url:
        store = await open_storage(url)
        srv = Server(store)
        try:
            yield srv
        finally:
            for jm, locker in srv.managers:
                jm.cancel_all()
                await jm.wait_all(15.0)
                await jm.close()
                await locker.close()
            await store.close()


async def run_sample(tmp_path: Path, text: str) -> Outcome:
    async with server(tmp_path) as srv:
        jm = await srv.start()
        job_id = await jm.submit(text, "samples")
        return await srv.finished(job_id)


def stdout(run: int, test: str, label: str, target: str, msg: str) -> tuple[Any, ...]:
    return (run, test, 0, label, target, "CmdStdout", {"Msg": msg})


def acquired(run: int, test: str, target: str, attempt: int = 0) -> tuple[Any, ...]:
    return (run, test, attempt, "", target, "TargetAcquired", None)


def released(run: int, test: str, target: str, attempt: int = 0) -> tuple[Any, ...]:
    return (run, test, attempt, "", target, "TargetReleased", None)


def go_title(s: str) -> str:
    """Go's strings.Title on a host name: each letter after a non-letter/digit goes upper."""
    out, prev = [], " "
    for c in s:
        out.append(c.upper() if not (prev.isalnum() or prev == "_") else c)
        prev = c
    return "".join(out)


def test_every_runnable_sample_has_a_check() -> None:
    assert sorted({Path(s).name for s in RUN}) == sorted(CHECKS)


@pytest.mark.parametrize("sample", RUN)
async def test_runs(sample: str, workdir: Callable[[str], Path], tmp_path: Path) -> None:
    copy = workdir(sample)
    await CHECKS[copy.name](copy, tmp_path, sample.split("/")[0])


# --- what each sample must do ------------------------------------------------------------------


async def check_start_literal_json(copy: Path, tmp_path: Path, repo: str) -> None:
    out = await run_sample(tmp_path, descriptor_text(copy, shorten=True))
    assert out.states == ["JobStateStarted", "JobStateCompleted"], out.error
    starts = out.log("CmdStart")
    assert [(e[0], e[4]) for e in starts] == [(1, "1234"), (2, "1234"), (3, "1234")]
    echo = shutil.which("echo")  # resolved at validation, as ConTest's LookPath does
    assert {json.dumps(e[6]["Args"]) for e in starts} == {
        json.dumps([echo, "Title=Example.Org, ToUpper=EXAMPLE.ORG"])
    }
    assert {e[6]["Path"] for e in starts} == {echo}
    assert [(run[0].reporter_name, run[0].success) for run in out.report.run_reports] == [
        ("TargetSuccess", True)
    ] * 3
    assert [[r.reporter_name for r in run] for run in out.report.run_reports] == [
        ["TargetSuccess", "noop"]  # the plugin's name, as ConTest stores it
    ] * 3
    assert [r.reporter_name for r in out.report.final_reports] == ["noop"]
    assert len(out.status["RunStatuses"]) == 3


async def check_start_literal_yaml(copy: Path, tmp_path: Path, repo: str) -> None:
    """CSVFileTargetManager, one shuffled host per run, from the repo's hosts.csv."""
    csv = hosts_csv()
    out = await run_sample(tmp_path, descriptor_text(copy, shorten=True))
    assert out.states == ["JobStateStarted", "JobStateCompleted"], out.error
    for run in (1, 2, 3):
        (target,) = out.acquired(run, "literal test")
        fqdn = csv[target]
        label = "some label" if repo == "fb" else "somelabel"
        assert [e for e in out.log("CmdStdout", "CmdStderr") if e[0] == run] == [
            stdout(
                run,
                "literal test",
                label,
                target,
                f"Title={go_title(fqdn)}, ToUpper={fqdn.upper()}\n",
            ),
            (run, "literal test", 0, label, target, "CmdStderr", {"Msg": ""}),
        ]
        assert [(e[0], e[4]) for e in out.log("TargetReleased") if e[0] == run] == [(run, target)]
    assert all(run[0].success for run in out.report.run_reports)
    assert len(out.report.run_reports) == 3 and len(out.report.final_reports) == 1


async def check_start_json(copy: Path, tmp_path: Path, repo: str) -> None:
    """Two tests, each 2-4 hosts of hosts.csv, steps fetched by URI from test_samples/."""
    ids = set(hosts_csv())
    out = await run_sample(tmp_path, descriptor_text(copy, shorten=True))
    assert out.states == ["JobStateStarted", "JobStateCompleted"], out.error
    for test in ("RackSwitchProvisioning", "RackProvisioning"):
        got = out.acquired(1, test)
        assert len(got) == min(4, len(ids)) and set(got) <= ids
        released_ids = [e[4] for e in out.log("TargetReleased") if e[1] == test]
        assert sorted(released_ids) == sorted(got)
        for tid in got:  # every target went through echo, then randecho passed or failed it
            mine = [
                (e[3], e[5])
                for e in out.log("TargetIn", "TargetOut", "TargetErr")
                if e[1] == test and e[4] == tid
            ]
            assert mine[:3] == [
                ("thefirstrandecho", "TargetIn"),
                ("thefirstrandecho", "TargetOut"),
                ("thesecondrandecho", "TargetIn"),
            ]
            assert mine[3:] in (
                [("thesecondrandecho", "TargetErr")],
                [
                    ("thesecondrandecho", "TargetOut"),
                    ("thethirdrandecho", "TargetIn"),
                    ("thethirdrandecho", "TargetOut"),
                ],
            )
    (run,) = out.report.run_reports
    # the plugin's own name, as ConTest stores it
    assert [r.reporter_name for r in run] == ["TargetSuccess", "noop"]


def simple_log(labels: Callable[[int, int], str]) -> list[tuple[Any, ...]]:
    """ConTest's e2e TestSimple expectation (CmdStdout, TargetAcquired, TargetReleased)."""
    out: list[tuple[Any, ...]] = []
    for run in (1, 2):
        for t in (1, 2):
            test, target = f"Test {t}", f"T{t}"
            out.append(acquired(run, test, target))
            for s in (1, 2):
                out.append(
                    stdout(
                        run, test, labels(t, s), target, f"Test {t}, Step {s}, target {target}\n"
                    )
                )
            out.append(released(run, test, target))
    return out


def labels_of(repo: str) -> Callable[[int, int], str]:
    if repo == "fb":
        return lambda t, s: f"Test {t} Step {s}"
    return lambda t, s: f"Test{t}Step{s}"


async def check_test_simple(copy: Path, tmp_path: Path, repo: str) -> None:
    out = await run_sample(tmp_path, descriptor_text(copy, shorten=True))
    assert out.states == ["JobStateStarted", "JobStateCompleted"], out.error
    assert out.log("CmdStdout", "TargetAcquired", "TargetReleased") == simple_log(labels_of(repo))
    assert [[r.success for r in run] for run in out.report.run_reports] == [[True], [True]]


async def check_test_resume(copy: Path, tmp_path: Path, repo: str) -> None:
    """ConTest's e2e TestPauseResume: the server is stopped (pausing the job) and started again
    (resuming it) at several points, here chosen from the stored events instead of every
    second; the final event log is that of an uninterrupted run, and TargetListWithState's
    token survived every pause (its release fails otherwise)."""
    label = labels_of(repo)
    text = descriptor_text(copy, shorten=True)
    async with server(tmp_path) as srv:
        jm = await srv.start()
        job_id = await jm.submit(text, "samples")

        def inside(run: int, test: str, step_label: str) -> Callable[[], Any]:
            async def check() -> bool:
                events = await srv.events(
                    job_id,
                    run_id=run,
                    test_names=[test],
                    step_labels=[step_label],
                    event_names=["TargetIn"],
                )
                return bool(events)

            return check

        async def run1_reported() -> bool:
            return len((await srv.store.job_report(job_id)).run_reports) == 1

        pauses = [
            ("run 1, in a Sleep step", inside(1, "Test 1", label(1, 2))),
            ("run 1, in `sleep` (cannot pause)", inside(1, "Test 2", label(2, 2))),
            ("between runs", run1_reported),
            ("run 2, in the second Sleep step", inside(2, "Test 1", label(1, 3))),
        ]
        for what, when in pauses:
            await srv.wait(what, when)
            await srv.stop(jm, pause=True)
            jm = await srv.start()
        out = await srv.finished(job_id)
    assert out.states == ["JobStateStarted", "JobStatePaused"] * 4 + [
        "JobStateStarted",
        "JobStateCompleted",
    ], out.error
    expected: list[tuple[Any, ...]] = []
    for run in (1, 2):
        expected += [
            acquired(run, "Test 1", "T1"),
            stdout(run, "Test 1", label(1, 1), "T1", "Test 1, Step 1, target T1\n"),
            stdout(run, "Test 1", label(1, 4), "T1", "Test 1, Step 3, target T1\n"),
            released(run, "Test 1", "T1"),
            acquired(run, "Test 2", "T2"),
            stdout(run, "Test 2", label(2, 1), "T2", "Test 2, Step 1, target T2\n"),
            stdout(run, "Test 2", label(2, 2), "T2", ""),
            stdout(run, "Test 2", label(2, 3), "T2", "Test 2, Step 3, target T2\n"),
            released(run, "Test 2", "T2"),
        ]
    assert out.log("CmdStdout", "TargetAcquired", "TargetReleased") == expected
    assert [[r.success for r in run] for run in out.report.run_reports] == [[True, True]] * 2


async def check_test_retry(copy: Path, tmp_path: Path, repo: str) -> None:
    """ConTest's e2e TestRetries: the port opens only after attempt 0 timed out waiting for it
    (ConTest: after 5 s), so attempt 1 passes."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    fill_in_port(copy, port)
    async with server(tmp_path) as srv:
        jm = await srv.start()
        job_id = await jm.submit(descriptor_text(copy, shorten=True), "samples")

        async def attempt0_failed() -> bool:
            return bool(await srv.events(job_id, event_names=["TargetErr"]))

        await srv.wait("attempt 0 fails in Step2", attempt0_failed)
        listener = await asyncio.start_server(lambda r, w: w.close(), "localhost", port)
        try:
            out = await srv.finished(job_id)
        finally:
            listener.close()
            await listener.wait_closed()
    assert out.states == ["JobStateStarted", "JobStateCompleted"], out.error
    msg = "Test 1, Step 1, target T1\n"
    names = ("CmdStdout", "TargetAcquired", "TargetReleased", "TargetOut", "TargetErr")
    assert out.log(*names) == [
        acquired(1, "Test 1", "T1"),
        stdout(1, "Test 1", "Step1", "T1", msg),
        (1, "Test 1", 0, "Step1", "T1", "TargetOut", None),
        (1, "Test 1", 0, "Step2", "T1", "TargetErr", {"Error": "context deadline exceeded"}),
        released(1, "Test 1", "T1"),
        acquired(1, "Test 1", "T1", 1),
        (1, "Test 1", 1, "Step1", "T1", "CmdStdout", {"Msg": msg}),
        (1, "Test 1", 1, "Step1", "T1", "TargetOut", None),
        (1, "Test 1", 1, "Step2", "T1", "TargetOut", None),
        (1, "Test 1", 1, "Step3", "T1", "CmdStdout", {"Msg": msg}),
        (1, "Test 1", 1, "Step3", "T1", "TargetOut", None),
        released(1, "Test 1", "T1", 1),
    ]
    (run,) = out.report.run_reports
    assert (run[0].reporter_name, run[0].success) == ("TargetSuccess", True)


async def check_test_variables(copy: Path, tmp_path: Path, repo: str) -> None:
    out = await run_sample(tmp_path, descriptor_text(copy, shorten=True))
    assert out.states == ["JobStateStarted", "JobStateCompleted"], out.error
    assert out.log("CmdStdout", "TargetAcquired", "TargetReleased") == [
        acquired(1, "Test 1", "T1"),
        stdout(1, "Test 1", "cmdstep", "T1", "Hello\n"),
        released(1, "Test 1", "T1"),
    ]


async def check_with_cleanup(copy: Path, tmp_path: Path, repo: str) -> None:
    out = await run_sample(tmp_path, descriptor_text(copy, shorten=True))
    assert out.states == ["JobStateStarted", "JobStateCompleted"], out.error
    test, cleanup = "Literal test", "Literal test [CLEANUP]"
    names = ("TargetAcquired", "TargetIn", "TargetOut", "TargetReleased", "CmdStart")
    assert [e[1:6] for e in out.log(*names)] == [
        (test, 0, "", "1234", "TargetAcquired"),
        (test, 0, "echoStep", "1234", "TargetIn"),
        (test, 0, "echoStep", "1234", "CmdStart"),
        (test, 0, "echoStep", "1234", "TargetOut"),
        (cleanup, 0, "echoCleanup", "1234", "TargetIn"),
        (cleanup, 0, "echoCleanup", "1234", "CmdStart"),
        (cleanup, 0, "echoCleanup", "1234", "TargetOut"),
        (test, 0, "", "1234", "TargetReleased"),
    ]
    assert out.log("CmdStart")[1][6]["Args"] == ["/bin/echo", "THIS IS A CLEANUP STEP"]
    assert [[r.success for r in run] for run in out.report.run_reports] == [[True]]


async def check_steps_file(copy: Path, tmp_path: Path, repo: str) -> None:
    """A steps-only file, fetched by URI, on target T1: every step saw it (RandEcho may fail
    it: then the steps after it do not)."""
    steps = steps_of(copy)
    out = await run_sample(tmp_path, descriptor_text(copy, shorten=True))
    assert out.states == ["JobStateStarted", "JobStateCompleted"], out.error
    seen = [(e[3], e[5]) for e in out.log("TargetIn", "TargetOut", "TargetErr")]
    want: list[tuple[str, str]] = []
    for step in steps:
        want += [(step["label"], "TargetIn"), (step["label"], "TargetOut")]
        if step["name"] == "randecho" and (step["label"], "TargetErr") in seen:
            want[-1] = (step["label"], "TargetErr")
            break
    assert seen == want
    assert [e[5] for e in out.log("TargetAcquired", "TargetReleased")] == [
        "TargetAcquired",
        "TargetReleased",
    ]
    (run,) = out.report.run_reports
    assert run[0].success is (want[-1][1] == "TargetOut")


CHECKS: dict[str, Callable[[Path, Path, str], Any]] = {
    "start-literal.json": check_start_literal_json,
    "start-literal.yaml": check_start_literal_yaml,
    "start.json": check_start_json,
    "start-literal-with-cleanup.json": check_with_cleanup,
    "test-simple.yaml": check_test_simple,
    "test-resume.yaml": check_test_resume,
    "test-retry.yaml": check_test_retry,
    "test-variables.yaml": check_test_variables,
    "randecho.json": check_steps_file,
    "sleep.json": check_steps_file,
    "slowecho.json": check_steps_file,
}


# --- started together ----------------------------------------------------------------------------

#: every LB sample that runs without more set-up than the working directory (test-retry needs a
#: port listening, in its own check): several share target 1234 (the start-literal ones and
#: start.json's hosts.csv), the steps files share T1
TOGETHER = [
    f"lb/{DESCRIPTORS}/start-literal.json",
    f"lb/{DESCRIPTORS}/start-literal.yaml",
    f"lb/{DESCRIPTORS}/start-literal-with-cleanup.json",
    f"lb/{DESCRIPTORS}/start.json",
    "lb/tests/e2e/test-simple.yaml",
    "lb/tests/e2e/test-variables.yaml",
    "lb/tests/e2e/test-resume.yaml",
    f"lb/{SERVER_DIR}/test_samples/randecho.json",
    f"lb/{SERVER_DIR}/test_samples/sleep.json",
    f"lb/{SERVER_DIR}/test_samples/slowecho.json",
]


async def test_samples_started_together_all_complete_with_every_target_tested(
    workdir: Callable[[str], Path], tmp_path: Path
) -> None:
    """Issue 10: ConTest's samples submitted at once to one server used to "complete" having
    tested nothing when another held their targets (TargetAcquireErr); now each waits its turn:
    every job completes, every test of every run acquired its targets, and every target it
    acquired went into its first step and was released; no target was held by two jobs at
    once."""
    assert set(TOGETHER) <= set(RUN)
    texts = [descriptor_text(workdir(sample), shorten=True) for sample in TOGETHER]
    async with server(tmp_path) as srv:
        jm = await srv.start()
        ids = [await jm.submit(text, "samples") for text in texts]
        outcomes = [await srv.finished(job_id, 90.0) for job_id in ids]
    holds: dict[str, list[tuple[float, float, int]]] = {}
    for sample, out in zip(TOGETHER, outcomes, strict=True):
        assert out.states == ["JobStateStarted", "JobStateCompleted"], (sample, out.error)
        assert out.log("TargetAcquireErr") == [], sample
        runs = {e.header.run_id for e in out.events}
        for run in runs:
            tests = {e.header.test_name for e in out.events if e.header.run_id == run}
            for test in {t for t in tests if not t.endswith(CLEANUP_SUFFIX)}:
                got = out.acquired(run, test)
                assert got, (sample, run, test)
                entered = {
                    e.target.id
                    for e in out.events
                    if e.name == "TargetIn"
                    and e.target
                    and (e.header.run_id, e.header.test_name) == (run, test)
                }
                assert set(got) <= entered, (sample, run, test)
        since: dict[str, float] = {}
        for e in out.events:
            if e.name == "TargetAcquired" and e.target:
                since[e.target.id] = e.emit_time
            elif e.name == "TargetReleased" and e.target:
                holds.setdefault(e.target.id, []).append(
                    (since.pop(e.target.id), e.emit_time, out.job_id)
                )
    # the start-literal samples all name 1234 (start.json may take it too, or other hosts)
    assert "1234" in holds and len({j for _, _, j in holds["1234"]}) >= 2
    for tid, spans in holds.items():
        spans.sort()
        for (_, released, a), (acquired, _, b) in itertools.pairwise(spans):
            assert acquired >= released, f"{tid}: job {b} took it before job {a} released it"
