"""The status fast paths against a straightforward reference built from the same events.

The reference is the status builder as it was first written (ConTest's ``pkg/runner/job_status.go``
read literally: one query per test, every event as a ``TestEvent``, grouped by label). The fast
paths are the single-pass builder over lean rows, and the snapshot a finished run is saved as.
Equality is byte equality of the status JSON as the server writes it, and equality of the
``RunStatus`` objects reporters get.

Two sources of shapes: random event logs (every odd case the builder must get right: retries,
acquire errors, unknown labels, target-less events, repeated and out-of-order routing events,
step labels that repeat or are empty), and real jobs run by the job runner on every store
(retries, acquire errors, cleanup steps, several runs, a job paused mid-run then resumed).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import gzip
import json
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as hs
from jobkit import Echo, FailFirstCall, ListTM, Recorder, bundle, job_of

from contest.events import (
    ROUTING_EVENTS,
    RUN_STARTED,
    TARGET_ACQUIRE_ERR,
    TARGET_ACQUIRED,
    TARGET_ERR,
    TARGET_IN,
    TARGET_OUT,
    EventReader,
    FrameworkEvent,
    MemoryEventSink,
    TestEvent,
    TestEventHeader,
    TestEventQuery,
)
from contest.golang import json as gojson
from contest.job import follow, statusdoc
from contest.job import status as js
from contest.job.model import Job
from contest.job.runner import JobRunner, NothingAcquired
from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.plugins.teststeps.sleep import Sleep
from contest.resume import PausePayload
from contest.signals import Scope
from contest.status import RunStatus, TargetStatus, TestStatus, TestStepStatus
from contest.storage import JobRequest, Storage, open_storage
from contest.storage.events import decode_json
from contest.target import Target
from contest.testing.databases import (
    Kind,
    open_empty_storage,
    server_available,
    temporary_database,
)
from contest.testing.memstore import MemoryStore

# --- the reference ------------------------------------------------------------------------------


def reference_test_status(
    job_id: int, run_id: int, name: str, steps: Sequence[tuple[str, str]], events: list[TestEvent]
) -> TestStatus:
    last = max((e.header.test_attempt for e in events), default=0)
    events = [e for e in events if e.header.test_attempt == last]
    by_label: dict[str, list[TestEvent]] = {}
    for e in events:
        by_label.setdefault(e.header.step_label, []).append(e)
    ts = TestStatus(job_id, run_id, name)
    latest: dict[str, TargetStatus] = {}
    for step_name, label in steps:
        ss = TestStepStatus(job_id, run_id, name, step_name, label)
        per_target: dict[str, TargetStatus] = {}
        for e in by_label.get(label, ()):
            if e.target is None:
                if e.name not in ROUTING_EVENTS:
                    ss.events.append(e)
                continue
            st = per_target.get(e.target.id)
            if st is None:
                st = TargetStatus(job_id, run_id, name, step_name, label, e.target)
                per_target[e.target.id] = st
            if e.name == TARGET_IN:
                st.in_time = e.emit_time
            elif e.name == TARGET_OUT:
                st.out_time = e.emit_time
            elif e.name == TARGET_ERR:
                st.out_time = e.emit_time
                payload = e.payload
                st.error = str(payload.get("Error", "")) if isinstance(payload, dict) else ""
            elif e.name not in ROUTING_EVENTS:
                st.events.append(e)
        ss.target_statuses = list(per_target.values())
        latest.update(per_target)
        ts.step_statuses.append(ss)
    for e in by_label.get("", ()):
        if e.name == TARGET_ACQUIRED and e.target is not None:
            st = latest.get(e.target.id) or TargetStatus(job_id, run_id, name, "", "", e.target)
            ts.target_statuses.append(st)
        elif e.name == TARGET_ACQUIRE_ERR:
            err = e.payload.get("Error") if isinstance(e.payload, dict) else None
            ts.target_statuses.append(
                TargetStatus(
                    job_id,
                    run_id,
                    name,
                    "",
                    "",
                    e.target or Target(""),
                    in_time=e.emit_time,
                    out_time=e.emit_time,
                    error=err or js.ACQUIRE_FAILED,
                )
            )
    return ts


async def reference_run_statuses(
    job: Any, reader: EventReader, run_ids: Sequence[int]
) -> list[RunStatus]:
    out = []
    for run_id in run_ids:
        rs = RunStatus(job.id, run_id)
        for jt in job.tests:
            events = await reader.test_events(
                TestEventQuery(job_id=job.id, run_id=run_id, test_names=[jt.name])
            )
            steps = [(b.name, b.label) for b in jt.test.steps]
            rs.test_statuses.append(reference_test_status(job.id, run_id, jt.name, steps, events))
        out.append(rs)
    return out


class Hide:
    """``store`` without some of its methods (the status code looks them up by name)."""

    def __init__(self, store: Any, *names: str) -> None:
        self._store = store
        self._hidden = frozenset(names)

    def __getattr__(self, name: str) -> Any:
        if name in self._hidden:
            raise AttributeError(name)
        return getattr(self._store, name)


def plain(store: Any) -> Hide:
    """A store without the fast paths: no lean reads, no saved statuses."""
    return Hide(store, "status_rows", "stored_run_statuses", "store_run_status")


async def reference_document(
    job: Any, req: JobRequest, store: Any, monkeypatch: pytest.MonkeyPatch
) -> bytes:
    with monkeypatch.context() as m:
        m.setattr(statusdoc, "build_run_statuses", reference_run_statuses)
        doc = await statusdoc.job_status_document(job, req, plain(store))
    return gojson.encode(doc)


def encode(rs: RunStatus) -> bytes:
    return gojson.encode(rs.to_json_obj())


# --- random event logs --------------------------------------------------------------------------

EVENT_NAMES = [
    TARGET_IN,
    TARGET_OUT,
    TARGET_ERR,
    "TargetInErr",
    TARGET_ACQUIRED,
    TARGET_ACQUIRE_ERR,
    "TargetReleased",
    "TestError",
    "CmdStdout",
    "VariableEmitted",
]


def random_case(rnd: random.Random) -> tuple[Any, list[TestEvent]]:
    """A job shape (tests and their steps) and a shuffled-in-time event log for run 1."""
    tests = []
    for t in range(rnd.randint(1, 3)):
        labels = [f"s{i}" for i in range(rnd.randint(0, 4))]
        if labels and rnd.random() < 0.15:
            labels.append(rnd.choice(labels))  # a repeated label
        if rnd.random() < 0.05:
            labels.append("")  # an empty one
        steps = [SimpleNamespace(name=f"Step{i % 2}", label=lb) for i, lb in enumerate(labels)]
        tests.append(SimpleNamespace(name=f"Test {t}", test=SimpleNamespace(steps=steps)))
    job = SimpleNamespace(id=7, tests=tests)
    targets = [
        Target("a"),
        Target("b", fqdn="b.example.com", primary_ipv4="10.0.0.2"),
        Target("c", manager_state={"slot": [1, 2], "ok": True}),
        Target("ünï", primary_ipv6="::1"),
    ]
    payloads: list[Any] = [
        None,
        {"Error": "boom"},
        {"Error": 5},
        {"Msg": "line"},
        "text",
        [1, 2.5, None],
        {"nested": {"x": [True, False]}, "f": 0.1},
    ]
    events = []
    when = 1_700_000_000.0
    for jt in tests:
        attempts = rnd.randint(1, 3)
        labels = ["", "", "nolabel", *[s.label for s in jt.test.steps]]
        for attempt in range(attempts):
            for _ in range(rnd.randint(0, 40)):
                label = rnd.choice(labels)
                header = TestEventHeader(job.id, 1, jt.name, label, attempt)
                target = None if rnd.random() < 0.15 else rnd.choice(targets)
                when += rnd.choice([0.000_001, 0.25, 1.0, 1.123_456_789, -0.5])
                events.append(
                    TestEvent(header, target, rnd.choice(EVENT_NAMES), rnd.choice(payloads), when)
                )
        # noise: another run and a cleanup test
        events.append(
            TestEvent(TestEventHeader(job.id, 2, jt.name, "s0", 0), targets[0], TARGET_IN)
        )
        events.append(
            TestEvent(TestEventHeader(job.id, 1, jt.name + " [CLEANUP]", "s0", 9), None, "X")
        )
    return job, events


@pytest.mark.parametrize("seed", range(300))
async def test_builder_and_snapshot_equal_the_reference(seed: int) -> None:
    rnd = random.Random(seed)
    job, events = random_case(rnd)
    sink = MemoryEventSink()
    for e in events:
        sink.write_test_event(e)
    (want,) = await reference_run_statuses(job, sink, [1])
    (got,) = await js.build_run_statuses(job, sink, [1])
    assert got == want  # what reporters get
    want_json = encode(want)
    assert encode(got) == want_json
    data = await js.encode_snapshot(got)
    restored = js.snapshot_json(data, job.id, 1)
    assert restored is not None
    assert gojson.encode(restored) == want_json
    assert restored == want.to_json_obj()
    # rows in another order across labels (as a database returns them): the same status
    run1 = [e for e in sink.test if e.header.run_id == 1]
    rows = sorted(js.rows_of(run1), key=lambda r: (r[0], r[2], r[7]))
    regrouped = js.build_run_status(job.id, 1, js.job_shape(job), rows)
    assert encode(regrouped) == want_json


@pytest.mark.parametrize("seed", range(12))
async def test_lean_reads_build_what_the_reference_builds(sql_store: Storage, seed: int) -> None:
    """The random logs again, stored: the lean read (only the columns and unlabelled events a
    status uses, in the database's order) builds what the reference builds from events."""
    job, events = random_case(random.Random(1000 + seed))
    await asyncio.gather(*(sql_store.write_test_event(e) for e in events))
    (want,) = await reference_run_statuses(job, sql_store, [1])
    (got,) = await js.build_run_statuses(job, sql_store, [1])
    assert got == want
    assert encode(got) == encode(want)
    await sql_store.reset()


async def test_snapshot_of_wrong_run_or_garbage_is_ignored() -> None:
    job, events = random_case(random.Random(1))
    sink = MemoryEventSink()
    for e in events:
        sink.write_test_event(e)
    (rs,) = await js.build_run_statuses(job, sink, [1])
    data = await js.encode_snapshot(rs)
    assert js.snapshot_json(data, job.id, 1) is not None
    assert js.snapshot_json(data, job.id, 2) is None
    assert js.snapshot_json(data, job.id + 1, 1) is None
    assert js.snapshot_json(b"not a snapshot", job.id, 1) is None
    assert js.snapshot_json(b"", job.id, 1) is None
    import zlib

    assert js.snapshot_json(zlib.compress(b'{"v":1,"job":7,"run":1}'), job.id, 1) is None
    assert js.snapshot_json(zlib.compress(b'{"v":99,"job":7,"run":1}'), job.id, 1) is None


async def test_any_status_is_saved_exactly() -> None:
    """A snapshot is the status JSON itself: even a status the builder would not make (parts
    with other coordinates than their place) comes back as it was."""
    target = Target("T", fqdn="t.example.com")
    step = TestStepStatus(3, 4, "U", "Step", "s", [], [TargetStatus(5, 6, "V", "x", "y", target)])
    own = TargetStatus(7, 8, "W", "", "", target, 1.5, 2.5, "err \u2028 <&>")
    rs = RunStatus(1, 1, [TestStatus(1, 2, "T", [step], [own])])
    data = await js.encode_snapshot(rs)
    assert js.snapshot_json(data, 1, 1) == rs.to_json_obj()
    assert js.snapshot_text(data, 1, 1) == encode(rs)[:-1]


#: a version-1 snapshot (the compact layout written before snapshots held the encoded JSON) of
#: the status ``random_case(random.Random(7))`` builds: databases written then still read
SNAPSHOT_V1 = (
    "eAHtV02P2jAQ/SvVnE1kxw4E36pC1a3aFV2iPTTlYMBUtIFs84FYofz3jh1oE9ilbBR6qAoomEkyE783M2/YwQYkI/"
    "AtnoLsEUjytf2dqeSrzlKQ4Q5uBiBBQUH2yykQePtpcIvWqaO3avUQaWcWr9A8SpYrlTzejDYCzzLqmLf7+9YZXhN8"
    "HIPcQRrFGbpnxJ0QiL+DzJJcF7+CfMkpXczW5ksvap676FlKBgXel+nUPmQIAa5eUSBhCONMP+AKUjys8ygi4WRCSj"
    "ND88EYUgKUUtaxn4BSaT+f8RKXurzDWIeJwHUl49LFXXjmTHnzBF97rzYuuj2Ki7ANV8ssWK40Pu6JP953epyJvud7"
    "PeP2nVZznRhY3sdTgzdScZevzQrJMTFulfV0CGdtZqMf1FRHGAI3WxAYqEwZL4GlD6TdPgw3el11MEySOMGoI/UYxW"
    "peXlYgniHScTEmgju+h1sQwmcVaEjovshHlz7l43lunqEMGTgPufCcfs8XzKPMvSbklXqpA28peT37kS8TPa+iv4M1"
    "Eow2JG6LJWEKgSxUlOoJUroASR1WID026Wx2mzRO8VBmd8gvB5z7Tpf6lPdczmukXQFwjqGQ2y73/ZYAx6I/zfHzgN"
    "/pSKu0IeDncrlxHu5h6XHRVh6eg+WCjltPU0zFk/6AlWVbBjb8GPu8TUZyplc0xqbrCFOj3f7fgKaJjtWwerOaj7N5"
    "nGfVajaK5ni2NCe1orWS5F5QtI3Ro62LipHuE1HZF9wFCk1qcN2rZKmmkTbCaNpdRYBemmAngopiZJuNJ3hVpxsVsO"
    "mqR72WX5M27vCqjrYwC/A2aStniaeE6zjVr9IS9rLdXks4B851WgKOqdsMu2ZFwQ/z6R+Glv9zYjl/H8r7ZNa8wtjy"
    "L8yJZpQX5p8VHqlJu+InoP3NOg=="
)


async def test_a_version_1_snapshot_still_reads() -> None:
    job, events = random_case(random.Random(7))
    sink = MemoryEventSink()
    for e in events:
        sink.write_test_event(e)
    (want,) = await reference_run_statuses(job, sink, [1])
    data = base64.b64decode(SNAPSHOT_V1)
    assert js.snapshot_text(data, job.id, 1) == encode(want)[:-1]
    assert js.snapshot_json(data, job.id, 1) == want.to_json_obj()
    assert js.snapshot_text(data, job.id, 2) is None


# --- real jobs on every store -------------------------------------------------------------------

STORE_KINDS = ["memory", "sqlite", "mariadb", "postgresql"]


@pytest.fixture(scope="module")
def database_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A throw-away database of each kind whose server is up, for this module."""
    kinds: tuple[Kind, ...] = ("sqlite", "mariadb", "postgresql")
    with ExitStack() as stack:
        urls: dict[str, str] = {
            kind: stack.enter_context(temporary_database(kind, tmp_path_factory.mktemp(kind)))
            for kind in kinds
            if server_available(kind)
        }
        yield urls


async def _store(kind: str, database_urls: dict[str, str]) -> AsyncIterator[Any]:
    if kind == "memory":
        yield MemoryStore()
        return
    if kind not in database_urls:
        pytest.fail(f"no {kind} server: the tests need it running (see .ci/run)")
    # the module's database is migrated by the first open; then emptied for every test
    s = await open_storage(database_urls[kind])
    await s.close()
    s = await open_empty_storage(database_urls[kind])
    yield s
    await s.close()


@pytest.fixture(params=STORE_KINDS)
async def store(
    request: pytest.FixtureRequest, database_urls: dict[str, str]
) -> AsyncIterator[Any]:
    async for s in _store(request.param, database_urls):
        yield s


@pytest.fixture(params=STORE_KINDS[1:])
async def sql_store(
    request: pytest.FixtureRequest, database_urls: dict[str, str]
) -> AsyncIterator[Storage]:
    async for s in _store(request.param, database_urls):
        yield s


def runner(store: Any, locker: InMemoryLocker | None = None) -> JobRunner:
    return JobRunner(
        sink=store,
        reader=store,
        reports=store,
        locker=locker or InMemoryLocker(),
        lock_duration=5.0,
        shutdown_timeout=3.0,
    )


async def new_job_id(store: Any) -> tuple[int, JobRequest]:
    req = JobRequest(name="status test", requestor="tests", server_id="s", descriptor="{}")
    job_id = await store.store_job(req)
    got = await store.get_job(job_id)
    assert got is not None
    return job_id, got


async def flush(store: Any) -> None:
    if isinstance(store, Storage):
        await store.flush()


async def check_document(
    job: Job, req: JobRequest, store: Any, monkeypatch: pytest.MonkeyPatch, saved_runs: list[int]
) -> bytes:
    """The status document three ways (saved statuses, built from lean reads, the reference)
    is the same, byte for byte; returns it."""
    await flush(store)
    if isinstance(store, Storage):
        assert sorted(await store.stored_run_statuses(job.id)) == saved_runs
    fast = gojson.encode(await statusdoc.job_status_document(job, req, store))
    unsaved = Hide(store, "stored_run_statuses")  # every run built, from lean reads
    built = gojson.encode(await statusdoc.job_status_document(job, req, unsaved))
    ref = await reference_document(job, req, store, monkeypatch)
    assert built == ref
    assert fast == ref
    return fast


async def test_retries_and_cleanup(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id, req = await new_job_id(store)
    rec = Recorder()
    job = job_of(
        [bundle(Echo(), "echo1"), bundle(FailFirstCall(), "flaky"), bundle(Echo(), "echo2")],
        ListTM(["T1", "T2", "T3"]),
        job_id=job_id,
        cleanup=[bundle(Echo(), "cleanup")],
        retries=2,
        reporter=rec,
    )
    assert await runner(store).run(job, Scope()) is None
    saved = [1] if isinstance(store, Storage) else []
    await check_document(job, req, store, monkeypatch, saved)
    # reporters got what the reference builds
    await flush(store)
    (want,) = await reference_run_statuses(job, store, [1])
    assert rec.runs == [want]
    assert rec.finals == [[want]]


@pytest.mark.parametrize("fail", [1, 3])
async def test_acquire_errors(store: Any, monkeypatch: pytest.MonkeyPatch, fail: int) -> None:
    """Acquisition fails in the first attempt (then succeeds), or in every attempt."""
    job_id, req = await new_job_id(store)
    job = job_of(
        [bundle(Echo(), "a"), bundle(Echo(), "b")],
        ListTM(["T1", "T2"], fail=fail),
        job_id=job_id,
        retries=2,
        reporter=Recorder(),
    )
    if fail == 3:  # a run that acquired nothing fails the job, once its run is reported
        with pytest.raises(NothingAcquired):
            await runner(store).run(job, Scope())
    else:
        assert await runner(store).run(job, Scope()) is None
    doc = await check_document(
        job, req, store, monkeypatch, [1] if isinstance(store, Storage) else []
    )
    if fail == 3:
        assert js.ACQUIRE_FAILED.encode() not in doc  # the target manager's own message
        assert b"some error" in doc


async def test_several_runs_without_run_reporters(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every finished run is saved, with or without reporters."""
    job_id, req = await new_job_id(store)
    job = job_of(
        [bundle(Echo(), "a"), bundle(FailFirstCall(), "flaky")],
        ListTM(["T1", "T2"]),
        job_id=job_id,
        runs=3,
    )
    assert await runner(store).run(job, Scope()) is None
    await check_document(
        job, req, store, monkeypatch, [1, 2, 3] if isinstance(store, Storage) else []
    )


def sleep(label: str, seconds: float) -> Any:
    step = Sleep()
    b = bundle(step, label, {"duration": [f"{int(seconds * 1000)}ms"]})
    step.seconds = seconds
    return b


async def test_paused_then_resumed(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs, paused in the middle of the second: run 1 is saved, run 2 is not (it is not
    finished) and is built from its events; after the resume both are saved. The document is
    the reference's at every point."""
    job_id, req = await new_job_id(store)
    shared = [0]

    def make() -> Job:
        return job_of(
            [bundle(Echo(), "a"), sleep("nap", 0.4), bundle(FailFirstCall(shared), "b")],
            ListTM(["T1", "T2", "T3"]),
            job_id=job_id,
            runs=2,
            retries=1,
            reporter=Recorder(),
        )

    locker = InMemoryLocker()
    scope = Scope()
    job = make()
    task = asyncio.ensure_future(runner(store, locker).run(job, scope))
    sql = isinstance(store, Storage)

    async def second_run_started() -> bool:
        await flush(store)
        events = await store.test_events(TestEventQuery(job_id=job_id, run_id=2))
        return any(e.name == TARGET_IN and e.header.step_label == "nap" for e in events)

    for _ in range(500):
        if await second_run_started():
            break
        await asyncio.sleep(0.01)
    scope.pause.set()
    payload = await task
    assert isinstance(payload, PausePayload) and payload.run_id == 2
    await check_document(job, req, store, monkeypatch, [1] if sql else [])

    job = make()
    assert await runner(store, locker).run(job, Scope(), payload) is None
    await check_document(job, req, store, monkeypatch, [1, 2] if sql else [])


async def test_saving_fails_the_job_does_not(
    sql_store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sql_store
    job_id, req = await new_job_id(store)

    async def broken(job_id: int, run_id: int, data: bytes) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "store_run_status", broken)
    job = job_of([bundle(Echo(), "a")], ListTM(["T1"]), job_id=job_id, reporter=Recorder())
    assert await runner(store).run(job, Scope()) is None
    await check_document(job, req, store, monkeypatch, [])


async def test_corrupt_saved_status_is_rebuilt(
    sql_store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sql_store
    job_id, req = await new_job_id(store)
    job = job_of([bundle(Echo(), "a")], ListTM(["T1", "T2"]), job_id=job_id, runs=2)
    assert await runner(store).run(job, Scope()) is None
    await store.store_run_status(job_id, 1, b"garbage")
    await store.store_run_status(job_id, 2, (await store.stored_run_statuses(job_id))[2][:-5])
    await check_document(job, req, store, monkeypatch, [1, 2])


async def test_saved_status_is_what_the_document_shows(
    sql_store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The document of a finished job reads no test event at all."""
    store = sql_store
    job_id, req = await new_job_id(store)
    job = job_of([bundle(Echo(), "a"), bundle(Echo(), "b")], ListTM(["T1", "T2"]), job_id=job_id)
    assert await runner(store).run(job, Scope()) is None
    want = await check_document(job, req, store, monkeypatch, [1])
    no_events = Hide(store, "status_rows", "test_events")
    assert gojson.encode(await statusdoc.job_status_document(job, req, no_events)) == want


# --- through the job manager -------------------------------------------------------------------


def manager_descriptor(runs: int) -> str:
    import json

    return json.dumps(
        {
            "JobName": "status",
            "Runs": runs,
            "RunInterval": "0s",
            "TestDescriptors": [
                {
                    "TargetManagerName": "TargetList",
                    "TargetManagerAcquireParameters": {
                        "Targets": [
                            {"ID": "t1", "FQDN": "t1.example.com"},
                            {"ID": "t2", "PrimaryIPv4": "10.0.0.2"},
                        ]
                    },
                    "TargetManagerReleaseParameters": {},
                    "TestFetcherName": "literal",
                    "TestFetcherFetchParameters": {
                        "TestName": "T",
                        "Steps": [
                            {"name": "Noop", "label": "one", "parameters": {}},
                            {"name": "Noop", "label": "two", "parameters": {}},
                        ],
                    },
                }
            ],
            "Reporting": {
                "RunReporters": [
                    {"name": "TargetSuccess", "parameters": {"SuccessExpression": ">0%"}}
                ]
            },
        }
    )


async def test_job_manager_status(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A submitted job's status through the job manager equals the reference; the manager
    that ran the job asks for it with the job it ran, and one that did not rebuilds it once
    for any number of status requests."""
    from contest.job.manager import JobManager

    jm = JobManager(store, InMemoryLocker(), server_id="status-test")
    await jm.start(resume_jobs=False)
    try:
        job_id = await jm.submit(manager_descriptor(2), "tests")
        assert await jm.wait_all(10.0)
        await flush(store)
        rebuilds: list[int] = []
        real = jm._rebuild

        async def counting(req: JobRequest) -> Job:
            rebuilds.append(req.job_id)
            return await real(req)

        monkeypatch.setattr(jm, "_rebuild", counting)
        first = gojson.encode(await jm.status(job_id))
        assert rebuilds == []  # the job it ran (a big one is a fraction of a second to rebuild)
        jm._status_jobs.clear()  # as a manager that did not run it
        second = gojson.encode(await jm.status(job_id))
        third = gojson.encode(await jm.status(job_id))
        assert first == second == third
        assert rebuilds == [job_id]
        req = await store.get_job(job_id)
        assert req is not None
        job = await real(req)
        assert b'"State":"JobStateCompleted"' in first
        assert first == await reference_document(job, req, store, monkeypatch)
        if isinstance(store, Storage):
            assert sorted(await store.stored_run_statuses(job_id)) == [1, 2]
    finally:
        await jm.close()


def test_go_time_equals_the_plain_formatting() -> None:
    """``go_time`` (tuned: it formats two times per target and step) against the plain way."""
    import datetime as dt

    from contest.golang.time import go_time

    def plain(ts: float | None) -> str:
        if ts is None or ts <= 0:
            return "0001-01-01T00:00:00Z"
        whole = int(ts)
        frac_ns = round((ts - whole) * 1e9)
        if frac_ns >= 1_000_000_000:
            whole, frac_ns = whole + 1, frac_ns - 1_000_000_000
        base = dt.datetime.fromtimestamp(whole, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{base}.{frac_ns:09d}".rstrip("0") + "Z" if frac_ns else base + "Z"

    rnd = random.Random(5)
    values: list[float | None] = [None, 0.0, -1.0, 1e-9, 0.5, 12.000000001, 1_714_523_456.0]
    values += [1_714_523_456.9999999999, 1_714_523_456.25, 1_714_523_456.1]
    values += [rnd.uniform(0, 4e9) for _ in range(20_000)]
    values += [1_714_523_456 + rnd.random() for _ in range(20_000)]
    for v in values:
        assert go_time(v) == plain(v), v


# --- a running run's status, kept as its events are written --------------------------------------


def unsequenced(rs: RunStatus) -> RunStatus:
    """``rs`` with its events' sequence numbers zeroed."""
    out = copy.deepcopy(rs)
    for ts in out.test_statuses:
        for st in ts.target_statuses:
            for e in st.events:
                e.sequence = 0
        for ss in ts.step_statuses:
            for e in ss.events:
                e.sequence = 0
            for st in ss.target_statuses:
                for e in st.events:
                    e.sequence = 0
    return out


@pytest.mark.parametrize("seed", range(12))
async def test_live_status_equals_the_build_from_the_database(
    sql_store: Storage, seed: int
) -> None:
    """The random logs written through the storage with the run watched: at every cut (a
    running run), the kept status is the one built from the database's events and the
    reference's, byte for byte (retries, acquire errors, repeated and empty labels, payloads,
    targets with manager state, times going backwards)."""
    job, events = random_case(random.Random(2000 + seed))
    live = js.LiveRunStatus(job.id, 1, js.job_shape(job))
    sql_store.watch_run(job.id, 1, live.add)
    cuts = sorted({len(events) // 4, len(events) // 2, len(events) - 1, len(events)})
    start = 0
    try:
        for cut in cuts:
            await asyncio.gather(*(sql_store.write_test_event(e) for e in events[start:cut]))
            start = cut
            (built,) = await js.build_run_statuses(job, sql_store, [1])
            (want,) = await reference_run_statuses(job, sql_store, [1])
            text = await (await live.text()).text()
            assert text == js.run_status_bytes(built) == encode(want)[:-1]
            assert unsequenced(live.status()) == unsequenced(want)
            assert await live.with_sequences(sql_store) == want  # until read for reporters
    finally:
        sql_store.watch_run(job.id, 1, None)
        await sql_store.reset()


@pytest.mark.parametrize("seed", range(6))
async def test_live_text_reuses_the_steps_that_did_not_change(seed: int) -> None:
    """Targets going through three steps as a pipeline, the kept text asked for after every
    few events: each time equal to the status built from all the events so far, while the
    steps that did not change in between are reused as they were encoded (and a step error,
    taken the slow way, makes none of them reusable until the next text)."""
    rnd = random.Random(7000 + seed)
    name, labels = "T", ["a", "b", "c"]
    shape = [(name, [(f"step-{label}", label) for label in labels])]
    live = js.LiveRunStatus(9, 1, shape)
    targets = [f"t{i}" for i in range(40)]
    rows: list[tuple[Any, ...]] = []
    clock = [1_714_000_000.0]

    def emit(label: str, tid: str, ev: str, payload: str | None = None) -> None:
        clock[0] += rnd.random()
        row = (9, 1, name, 0, label, tid, '{"ID":' + json.dumps(tid) + "}", ev, payload)
        rows.append((*row, clock[0]))
        live.add(rows[-1])

    for tid in targets:
        emit("", tid, TARGET_ACQUIRED)
    # each target's next move, the targets taken in a random order: the first steps finish
    # (and stay unchanged) while the later ones go on
    place = dict.fromkeys(targets, 0)
    reused = 0
    while any(p < 2 * len(labels) for p in place.values()):
        moving = [t for t, p in place.items() if p < 2 * len(labels)]
        for _ in range(rnd.randint(1, 25)):
            tid = rnd.choice(moving[: max(1, len(moving) // 2)])  # the front ones more
            p = place[tid]
            if p >= 2 * len(labels):
                continue
            label = labels[p // 2]
            if p % 2 and rnd.random() < 0.05:
                emit(label, tid, TARGET_ERR, json.dumps({"Error": f"boom {tid}"}))
            else:
                emit(label, tid, TARGET_OUT if p % 2 else TARGET_IN)
            place[tid] = p + 1
        live._take()  # the rows queued: the steps they change are marked
        writer = live._writer
        clean_before = sum(1 for _, per in live._tests[0].order if writer.clean(per))
        text = await (await live.text()).text()
        reused += clean_before
        built = js.build_run_status(
            9,
            1,
            shape,
            [(r[2], r[3], r[4], Target(r[5]), r[7], decode_json(r[8]), r[9], 0) for r in rows],
        )
        assert text == js.run_status_bytes(built)
    assert reused > 0  # some steps were reused as they were


async def test_live_status_ignores_other_runs_and_unwatched(sql_store: Storage) -> None:
    job, events = random_case(random.Random(7))
    live = js.LiveRunStatus(job.id, 1, js.job_shape(job))
    sql_store.watch_run(job.id, 1, live.add)
    sql_store.watch_run(job.id, 1, None)
    try:
        await asyncio.gather(*(sql_store.write_test_event(e) for e in events))
        empty = js.LiveRunStatus(job.id, 1, js.job_shape(job))
        assert await (await live.text()).text() == await (await empty.text()).text()
    finally:
        await sql_store.reset()


async def test_a_run_with_events_already_is_not_kept(sql_store: Storage) -> None:
    """A run started again after its server died halfway has events from before: its status is
    built from all of them, never kept from the new ones only."""
    job_id, _ = await new_job_id(sql_store)
    job = job_of([bundle(Echo(), "a")], ListTM(["T1"]), job_id=job_id)
    r = runner(sql_store)
    await sql_store.write_test_event(
        TestEvent(TestEventHeader(job_id, 1, job.tests[0].name, "a", 0), Target("T1"), TARGET_IN)
    )
    assert await r._watch(job, 1) is None
    live = await r._watch(job, 2)
    assert live is not None and r.live == {(job_id, 2): live}
    r._unwatch(job_id, 2)
    assert r.live == {}


async def test_running_status_is_kept_and_equals_the_build(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job run by the job runner, looked at while it sleeps in the middle of each attempt of
    each run (the first attempt of run 1 fails and is retried): the document with the kept
    statuses equals the one built from the database's events and the reference's; then paused
    and resumed (a resumed run is built from its events: nothing kept), and finished (saved
    from what was kept, as the reference)."""
    job_id, req = await new_job_id(store)
    shared = [0]
    sql = isinstance(store, Storage)

    def make() -> Job:
        return job_of(
            [bundle(Echo(), "a"), sleep("nap", 0.6), bundle(FailFirstCall(shared), "b")],
            ListTM(["T1", "T2", "T3"]),
            job_id=job_id,
            runs=3,
            retries=1,
        )

    locker = InMemoryLocker()
    scope = Scope()
    job = make()
    r = runner(store, locker)
    task = asyncio.ensure_future(r.run(job, scope))

    async def napping(run_id: int, attempt: int) -> bool:
        await flush(store)
        events = await store.test_events(
            TestEventQuery(job_id=job_id, run_id=run_id, step_labels=["nap"])
        )
        ins = [e for e in events if e.name == TARGET_IN and e.header.test_attempt == attempt]
        return len(ins) == 3

    async def check_running(run_id: int) -> None:
        kept = await statusdoc.encoded_status_document(job, req, store, None, r.live)
        text = b"".join(await kept.body())
        assert ((job_id, run_id) in r.live) == sql
        assert text + b"\n" == await check_document(
            job, req, store, monkeypatch, list(range(1, run_id)) if sql else []
        )
        # as the job manager asks for it (the kept text asked for beside the reads, shared),
        # with a kept status of an ended run besides:
        # the same document, the ended run's from its saved snapshot
        live = dict(r.live)
        if sql and run_id > 1:
            live[(job_id, 1)] = js.LiveRunStatus(job_id, 1, js.job_shape(job))
        shared = await statusdoc.encoded_status_document(
            job, req, store, statusdoc.RunningStatuses(), live
        )
        assert b"".join(await shared.body()) == text
        assert gzip.decompress(b"".join(await shared.body(gzip=True))) == text

    for run_id, attempt in ((1, 0), (1, 1), (2, 0)):
        for _ in range(500):
            if await napping(run_id, attempt):
                break
            await asyncio.sleep(0.01)
        await check_running(run_id)
    scope.pause.set()
    payload = await task
    assert isinstance(payload, PausePayload) and payload.run_id == 2
    assert r.live == {}
    await check_document(job, req, store, monkeypatch, [1] if sql else [])

    job = make()
    r = runner(store, locker)
    task = asyncio.ensure_future(r.run(job, Scope(), payload))
    for _ in range(500):
        if await napping(3, 0):
            break
        await asyncio.sleep(0.01)
    assert (job_id, 2) not in r.live  # resumed halfway: built from its events
    await check_running(3)
    assert await task is None
    assert r.live == {}
    await check_document(job, req, store, monkeypatch, [1, 2, 3] if sql else [])


async def one_target_in(store: Storage) -> tuple[int, JobRequest, Job, str]:
    """A stored job of one Echo step "a", whose run 1 has T1 in that step (at 1.5 s): its ID,
    request, job and test name."""
    job_id, req = await new_job_id(store)
    job = job_of([bundle(Echo(), "a")], ListTM(["T1"]), job_id=job_id)
    name = job.tests[0].name
    await store.write_framework_event(FrameworkEvent(job_id, RUN_STARTED, {"RunID": 1}))
    header = TestEventHeader(job_id, 1, name, "a", 0)
    await store.write_test_event(TestEvent(header, Target("T1"), TARGET_IN, None, 1.5))
    return job_id, req, job, name


async def test_a_kept_status_that_cannot_take_an_event_is_not_used(
    sql_store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sql_store
    job_id, req, job, name = await one_target_in(store)
    live = js.LiveRunStatus(job_id, 1, js.job_shape(job))
    live.add((job_id, 1, name, 0, "a", "T1", "{not JSON", TARGET_IN, None, 1.5))
    assert live.broken
    live.add((job_id, 1, name, 0, "a", "T1", '{"ID":"T1"}', TARGET_IN, None, 1.5))
    kept = await statusdoc.encoded_status_document(job, req, store, None, {(job_id, 1): live})
    want = await reference_document(job, req, store, monkeypatch)
    assert b"".join(await kept.body()) + b"\n" == want
    assert b'"InTime":"1970-01-01T00:00:01.5Z"' in want


async def test_a_kept_status_broken_by_a_row_not_yet_taken_is_not_used(
    sql_store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status request takes no queued row itself (most get a shared text as it is): a row
    that breaks the kept status is found by the text's build, and the document is built from
    the events instead, shared or not."""
    store = sql_store
    job_id, req, job, name = await one_target_in(store)
    want = await reference_document(job, req, store, monkeypatch)
    for running in (None, statusdoc.RunningStatuses()):
        live = js.LiveRunStatus(job_id, 1, js.job_shape(job))
        live.add((job_id, 1, name, 0, "a", "T1", "{not JSON", TARGET_IN, None, 1.5))
        assert not live.given_up  # not taken yet
        doc = await statusdoc.encoded_status_document(job, req, store, running, {(job_id, 1): live})
        assert live.given_up
        assert b"".join(await doc.body()) + b"\n" == want
        with pytest.raises(js.StatusGivenUp):
            await live.text()


# --- a run followed from the database (a process that does not write its events) ------------


class CountingReader:
    """The storage, counting the rows a follower reads."""

    def __init__(self, store: Storage) -> None:
        self.store = store
        self.rows = 0
        self.reads = 0

    async def run_rows_after(self, *args: Any) -> list[tuple[Any, ...]]:
        rows = await self.store.run_rows_after(*args)
        self.rows += len(rows)
        self.reads += 1
        return rows


@pytest.mark.parametrize("seed", range(8))
async def test_followed_status_equals_the_build_at_every_cut(
    sql_store: Storage, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The random logs written in four cuts: at each, a follower that read the earlier cuts
    reads only the new events, and its status is the one built from all of them and the
    reference's, byte for byte; read a few rows a statement (seed 0..3) or many."""
    if seed < 4:
        monkeypatch.setattr(follow, "PAGE", 3)
    job, events = random_case(random.Random(3000 + seed))
    follower = follow.RunFollower(job, 1)
    reader = CountingReader(sql_store)
    cuts = sorted({len(events) // 4, len(events) // 2, len(events) - 1, len(events)})
    start = 0
    try:
        for cut in cuts:
            await asyncio.gather(*(sql_store.write_test_event(e) for e in events[start:cut]))
            before = reader.rows
            text = await (await follower.text(reader)).text()
            new = [e for e in events[start:cut] if e.header.run_id == 1]
            assert reader.rows - before == len(new)  # the run's new events only
            start = cut
            (built,) = await js.build_run_statuses(job, sql_store, [1])
            (want,) = await reference_run_statuses(job, sql_store, [1])
            assert text == js.run_status_bytes(built) == encode(want)[:-1]
        asked = reader.reads
        assert await (await follower.text(reader)).text() == text  # nothing new: one read
        assert reader.reads == asked + 1
    finally:
        await sql_store.reset()


async def test_a_job_running_elsewhere_is_followed(
    sql_store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job run by one storage's job runner (a server), its status asked of another storage
    on the same database (another server) while the job sleeps in each run: the followed
    document equals the one built from the events, and a second ask reads only what came
    since; once the job ended, the saved statuses are read and the followers are of no use."""
    store = sql_store
    job_id, req = await new_job_id(store)
    job = job_of(
        [bundle(Echo(), "a"), sleep("nap", 0.6), bundle(Echo(), "b")],
        ListTM(["T1", "T2", "T3"]),
        job_id=job_id,
        runs=2,
    )
    other = await open_storage(store.url.render_as_string(hide_password=False))
    followers = follow.Followers()
    running = statusdoc.RunningStatuses()
    r = runner(store)
    task = asyncio.ensure_future(r.run(job, Scope()))
    try:
        for run_id in (1, 2):
            for _ in range(500):
                events = await other.test_events(
                    TestEventQuery(job_id=job_id, run_id=run_id, step_labels=["nap"])
                )
                if len([e for e in events if e.name == TARGET_IN]) == 3:
                    break
                await asyncio.sleep(0.01)
            built = await statusdoc.encoded_status_document(job, req, other, None, {})
            followed = await statusdoc.encoded_status_document(
                job, req, other, running, {}, followers
            )
            text = b"".join(await followed.body())
            assert text == b"".join(await built.body())
            assert gzip.decompress(b"".join(await followed.body(gzip=True))) == text
            assert len(followers) == run_id  # one per run not saved yet, kept
        await task
        await store.flush()
        done = await statusdoc.encoded_status_document(job, req, other, running, {}, followers)
        assert b"".join(await done.body()) + b"\n" == await check_document(
            job, req, store, monkeypatch, [1, 2]
        )
    finally:
        if not task.done():
            task.cancel()
        await other.close()


async def test_followers_nobody_asks_for_are_let_go(sql_store: Storage) -> None:
    """A follower holds its run's status: one not asked for in ``idle`` seconds goes (and its
    job is named, for its other kept statuses to go too), as do a job's when it is forgotten."""
    job, events = random_case(random.Random(11))
    other = SimpleNamespace(id=8, tests=job.tests)
    followers = follow.Followers(idle=0.2)
    try:
        await asyncio.gather(*(sql_store.write_test_event(e) for e in events))
        first = followers.of(job, 1)
        await first.text(sql_store)
        assert followers.of(job, 1) is first and len(followers) == 1
        followers.of(other, 1)
        assert followers.drop_idle() == set() and len(followers) == 2
        await asyncio.sleep(0.25)
        await first.text(sql_store)  # asked for: kept
        assert followers.drop_idle() == {8} and len(followers) == 1
        followers.forget(job.id)
        assert len(followers) == 0 and followers.of(job, 1) is not first
    finally:
        await sql_store.reset()


_TEXTS = hs.text(max_size=12) | hs.sampled_from(
    ["", "a", 'q"\\', "\u2028", "é", "\x01\n", "TMS", '"TMS"']
)


@given(
    _TEXTS,
    _TEXTS,
    hs.none() | _TEXTS,
    hs.none() | _TEXTS,
    hs.none() | hs.integers() | hs.dictionaries(_TEXTS, hs.integers(), max_size=2),
)
def test_target_seed(tid: str, fqdn: str, ipv4: str | None, ipv6: str | None, tms: object) -> None:
    """A kept status writes a target as the storage wrote it (``_seed``) only where that is
    the text it would write itself: for any target, the text its writer has is
    ``compact(target.to_json_obj())`` of the target read back, as the kept status reads it."""
    from contest.status import StatusWriter
    from contest.storage.events import encode_target

    original = Target(tid, fqdn=fqdn, primary_ipv4=ipv4, primary_ipv6=ipv6, manager_state=tms)
    text = encode_target(original, 1 << 20)
    target = Target.from_json_obj(json.loads(text))
    writer = StatusWriter()
    js._seed(writer, target, text)
    assert writer.target(target) == gojson.compact(target.to_json_obj())


@given(
    _TEXTS,
    _TEXTS,
    hs.none() | _TEXTS,
    hs.none() | hs.integers() | hs.dictionaries(_TEXTS, hs.integers(), max_size=1),
    hs.booleans(),
)
def test_target_of(tid: str, fqdn: str, ipv4: str | None, tms: object, same_id: bool) -> None:
    """The kept status's target of a row (read without the JSON decoder when it has only an
    ID) is the target the database read makes of the row's JSON, whatever the row's target ID
    says."""
    from contest.storage.events import encode_target

    for original in (
        Target(tid),
        Target(tid, fqdn=fqdn, primary_ipv4=ipv4, manager_state=tms),
    ):
        text = encode_target(original, 1 << 20)
        live = js.LiveRunStatus(1, 1, [])
        got = live._target_of(text, tid if same_id else tid + "x")
        assert got == Target.from_json_obj(json.loads(text))
