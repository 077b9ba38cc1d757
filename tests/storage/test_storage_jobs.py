"""Job requests, tags, states (from framework events), listing, reports, big descriptors."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from contest.events import FrameworkEvent, FrameworkEventQuery
from contest.storage import JobReport, JobRequest, JobState, ParameterTooLong, Report, Storage


def request(name: str = "job", **kw: object) -> JobRequest:
    fields: dict[str, object] = {
        "name": name,
        "requestor": "alice",
        "server_id": "server-1",
        "descriptor": json.dumps({"JobName": name, "Runs": 1}),
        "extended_descriptor": json.dumps({"JobName": name, "TestStepsDescriptors": []}),
    }
    fields.update(kw)
    return JobRequest(**fields)  # type: ignore[arg-type]


async def set_state(storage: Storage, job_id: int, state: JobState, when: float = 0.0) -> None:
    await storage.write_framework_event(FrameworkEvent(job_id, state.event_name, None, when))


async def test_store_and_get(storage: Storage) -> None:
    before = time.time()
    req = request("n\u00e4me", tags=("tests", "integ", "tests"), requestor="b\u00f6b")
    job_id = await storage.store_job(req)
    got = await storage.get_job(job_id)
    assert got is not None
    assert got.job_id == job_id > 0
    assert (got.name, got.requestor, got.server_id) == ("n\u00e4me", "b\u00f6b", "server-1")
    assert (got.descriptor, got.extended_descriptor) == (req.descriptor, req.extended_descriptor)
    assert got.tags == ("integ", "tests")  # distinct, sorted
    assert before <= got.request_time <= time.time()
    assert got.state is JobState.UNKNOWN and got.state_time is None
    assert await storage.get_job(job_id + 1000) is None
    assert await storage.job_state(job_id + 1000) is None


async def test_ids_ascend_and_request_time_is_kept(storage: Storage) -> None:
    ids = [await storage.store_job(request(f"j{i}", request_time=1000.25 + i)) for i in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    got = await storage.get_job(ids[1])
    assert got is not None and got.request_time == 1001.25


async def test_extended_descriptor_may_be_missing(storage: Storage) -> None:
    job_id = await storage.store_job(request(extended_descriptor=None))
    got = await storage.get_job(job_id)
    assert got is not None and got.extended_descriptor is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "n" * 65}, "Job name is too long: 65 > 64"),
        ({"requestor": "r" * 33}, "Requestor name is too long: 33 > 32"),
        ({"requestor": "\u00e4" * 17}, "Requestor name is too long: 34 > 32"),
        ({"server_id": "s" * 65}, "Server ID is too long: 65 > 64"),
        ({"tags": ("ok", "t" * 65)}, "Tag is too long: 65 > 64"),
    ],
)
async def test_job_limits(storage: Storage, fields: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterTooLong, match=message):
        await storage.store_job(request(**fields))
    assert await storage.list_jobs() == []


async def test_state_follows_state_events(storage: Storage) -> None:
    job_id = await storage.store_job(request())
    await set_state(storage, job_id, JobState.STARTED, 10.0)
    assert await storage.job_state(job_id) is JobState.STARTED
    # several in one batch: the last written wins; other events leave the state alone
    acks = [
        storage.write_framework_event(FrameworkEvent(job_id, "JobStatePaused", {"V": 1}, 11.0)),
        storage.write_framework_event(FrameworkEvent(job_id, "RunStarted", {"RunID": 1}, 12.0)),
        storage.write_framework_event(FrameworkEvent(job_id, "JobStateCompleted", None, 13.0)),
        storage.write_framework_event(FrameworkEvent(job_id, "SomethingElse", None, 14.0)),
    ]
    await asyncio.gather(*acks)
    got = await storage.get_job(job_id)
    assert got is not None and got.state is JobState.COMPLETED and got.state_time == 13.0


@pytest.fixture
async def four_jobs(storage: Storage) -> list[int]:
    """tests+integ/alice/server-1 Completed, tests/bob/server-1 Failed, integ/alice/server-2
    Paused, (none)/alice/server-1 Unknown."""
    a = await storage.store_job(request("a", tags=("tests", "integ")))
    b = await storage.store_job(request("b", tags=("tests",), requestor="bob"))
    c = await storage.store_job(request("c", tags=("integ",), server_id="server-2"))
    d = await storage.store_job(request("d"))
    for job, state in ((a, JobState.COMPLETED), (b, JobState.FAILED), (c, JobState.PAUSED)):
        await set_state(storage, job, JobState.STARTED)
        storage.write_framework_event(FrameworkEvent(job, state.event_name))  # not awaited
    return [a, b, c, d]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, "abcd"),
        ({"states": [JobState.COMPLETED, JobState.FAILED]}, "ab"),
        ({"states": ["JobStatePaused", "JobStateUnknown"]}, "cd"),
        ({"states": [JobState.UNKNOWN]}, "d"),
        ({"states": [int(JobState.STARTED)]}, ""),
        ({"states": []}, ""),
        ({"tags": ["tests"]}, "ab"),
        ({"tags": ["tests", "integ"]}, "a"),
        ({"tags": ["tests", "integ", "no_such_tag"]}, ""),
        ({"tags": ["integ"], "states": [JobState.PAUSED]}, "c"),
        ({"server_id": "server-1"}, "abd"),
        ({"server_id": "server-1", "states": [JobState.PAUSED]}, ""),
        ({"requestor": "alice"}, "acd"),
        ({"requestor": "bob", "tags": ["tests"]}, "b"),
        ({"limit": 2}, "ab"),
        ({"order": "desc"}, "dcba"),
        ({"order": "desc", "limit": 1, "requestor": "alice"}, "d"),
    ],
)
async def test_list_jobs(
    storage: Storage, four_jobs: list[int], filters: dict[str, object], expected: str
) -> None:
    ids = dict(zip("abcd", four_jobs, strict=True))
    got = await storage.list_jobs(**filters)  # type: ignore[arg-type]
    assert got == [ids[c] for c in expected]


async def test_list_jobs_rejects_bad_arguments(storage: Storage) -> None:
    with pytest.raises(ValueError, match="order"):
        await storage.list_jobs(order="sideways")
    with pytest.raises(ValueError, match="unknown job state"):
        await storage.list_jobs(states=["JobStateBogus"])


async def test_real_size_job_is_stored_whole(storage: Storage) -> None:
    """20,000 targets: MiBs of descriptor, extended descriptor and resume state, all whole
    (ConTest's 64 KiB TEXT column refuses ~500 targets on MySQL)."""
    targets = [
        {
            "ID": f"host{i:05d}",
            "FQDN": f"host{i:05d}.dc1.example.com",
            "PrimaryIPv4": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
        }
        for i in range(20_000)
    ]
    descriptor = json.dumps(
        {
            "JobName": "big",
            "Runs": 1,
            "Tags": ["big"],
            "TestDescriptors": [
                {
                    "TargetManagerName": "TargetList",
                    "TargetManagerAcquireParameters": {"Targets": targets},
                    "TargetManagerReleaseParameters": {},
                    "TestFetcherName": "literal",
                    "TestFetcherFetchParameters": {"Steps": []},
                }
            ],
        }
    )
    extended = json.dumps({"JobDescriptor": json.loads(descriptor), "Steps": [targets]})
    assert len(descriptor) > 1_500_000 and len(extended) > 3_000_000
    job_id = await storage.store_job(
        request("big", descriptor=descriptor, extended_descriptor=extended, tags=("big",))
    )
    resume = {"V": 1, "J": job_id, "R": 1, "TT": targets, "TRS": {"Targets": targets}}
    await storage.write_framework_event(FrameworkEvent(job_id, "JobStatePaused", resume))
    got = await storage.get_job(job_id)
    assert got is not None
    assert got.descriptor == descriptor and got.extended_descriptor == extended
    assert got.state is JobState.PAUSED
    (paused,) = await storage.framework_events(FrameworkEventQuery(job_id=job_id))
    assert paused.payload == resume


# --- reports --------------------------------------------------------------------------------


async def test_reports(storage: Storage) -> None:
    job_id = await storage.store_job(request())
    reps = [
        Report(job_id, 2, "TargetSuccess", False, {"Achieved": "0%"}, 20.0),
        Report(job_id, 1, "TargetSuccess", True, {"Achieved": "100%"}, 10.0),
        Report(job_id, 1, "Noop", None, "I did nothing", 11.0),
        Report(job_id, 0, "Final", True, [1, 2, {"x": None}], 30.0),
        Report(job_id, 0, "AFinal", False, None, 31.0),
    ]
    for r in reps:
        await storage.store_report(r)
    got = await storage.job_report(job_id)
    assert got == JobReport(
        job_id,
        run_reports=[[reps[2], reps[1]], [reps[0]]],
        final_reports=[reps[4], reps[3]],
    )
    assert await storage.job_report(job_id + 1) == JobReport(job_id + 1)


async def test_reports_order_by_name_in_code_points_on_every_database(storage: Storage) -> None:
    """Capitals first, whatever the database's collation (PostgreSQL's follows its locale):
    the order docs/migrating-from-contest.md promises ("Run reports' order")."""
    job_id = await storage.store_job(request())
    for name in ("noop", "alpha", "TargetSuccess", "Zeta", "noop"):
        await storage.store_report(Report(job_id, 1, name, True, name, 1.0))
        await storage.store_report(Report(job_id, 0, name, True, name, 1.0))
    got = await storage.job_report(job_id)
    expected = ["TargetSuccess", "Zeta", "alpha", "noop", "noop"]
    assert [r.reporter_name for r in got.run_reports[0]] == expected
    assert [r.reporter_name for r in got.final_reports] == expected


async def test_report_limits_and_time(storage: Storage) -> None:
    with pytest.raises(ParameterTooLong, match="Reporter name is too long: 33 > 32"):
        await storage.store_report(Report(1, 1, "R" * 33, True))
    with pytest.raises(ValueError, match="run ID"):
        await storage.store_report(Report(1, -1, "R", True))
    before = time.time()
    await storage.store_report(Report(1, 1, "R", True))
    (rep,) = (await storage.job_report(1)).run_reports[0]
    assert before <= rep.report_time <= time.time()


async def test_reset_empties_everything(storage: Storage) -> None:
    job_id = await storage.store_job(request())
    await set_state(storage, job_id, JobState.STARTED)
    await storage.store_report(Report(job_id, 1, "R", True))
    await storage.reset()
    assert await storage.list_jobs() == []
    assert await storage.framework_events(FrameworkEventQuery()) == []
    assert await storage.job_report(job_id) == JobReport(job_id)


async def test_values_at_the_limit_fit_and_beyond_are_refused(storage: Storage) -> None:
    """All quotes: the worst case for MySQL, where quoting doubles the statement."""
    limit = storage.limits.descriptor
    worst = '"' * limit
    job_id = await storage.store_job(request(descriptor=worst, extended_descriptor=worst))
    got = await storage.get_job(job_id)
    assert got is not None and got.descriptor == worst and got.extended_descriptor == worst
    with pytest.raises(ParameterTooLong, match=f"Job descriptor is too long: {limit + 1} > "):
        await storage.store_job(request(descriptor=worst + "x"))
    payload = "\\\\" * ((storage.limits.event_payload - 2) // 2)  # JSON: "\\\\..." -> 4x quoted
    await storage.write_framework_event(FrameworkEvent(job_id, "Big", payload[: len(payload) // 2]))
    (ev,) = await storage.framework_events(FrameworkEventQuery(job_id=job_id))
    assert ev.payload == payload[: len(payload) // 2]
