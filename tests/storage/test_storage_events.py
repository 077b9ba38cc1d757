"""Events in SQL: round trip, every filter, ordering, paging, read-your-writes."""

from __future__ import annotations

import asyncio
import time

import pytest

from contest.events import FrameworkEvent, FrameworkEventQuery
from contest.events import TestEvent as TEvent
from contest.events import TestEventHeader as Header
from contest.events import TestEventQuery as TQuery
from contest.storage import Storage
from contest.target import Target

H1 = Header(job_id=1, run_id=1, test_name="ATest", step_label="first")
H2 = Header(job_id=1, run_id=2, test_name="BTest", step_label="second", test_attempt=1)
H3 = Header(job_id=2, run_id=1, test_name="ATest [CLEANUP]", step_label="first")
T1 = Target("t1", fqdn="t1.example.com", primary_ipv4="10.0.0.1", manager_state={"token": "x"})
T2 = Target("T2", primary_ipv6="::1")


async def write_all(storage: Storage, events: list[TEvent]) -> None:
    await asyncio.gather(*(storage.write_test_event(e) for e in events))


def names(events: list[TEvent]) -> list[str]:
    return [e.name for e in events]


@pytest.fixture
async def sample(storage: Storage) -> list[TEvent]:
    """Nine events over three headers, two targets and three emit times."""
    base = 1_700_000_000.0
    evs = [
        TEvent(H1, T1, "TargetIn", None, base),
        TEvent(H1, T1, "StepOutput", {"line": "hello", "n": 1}, base + 1),
        TEvent(H1, T2, "TargetIn", None, base + 1),
        TEvent(H1, None, "StepNote", "just text", base + 2),
        TEvent(H2, T1, "TargetIn", None, base + 10),
        TEvent(H2, T1, "TargetErr", {"Error": "boom"}, base + 11),
        TEvent(H3, T2, "TargetIn", None, base + 20),
        TEvent(H3, T2, "TargetOut", [1, 2.5, True, None], base + 21),
        TEvent(H2, T2, "TargetOut", 42, base + 30),
    ]
    await write_all(storage, evs)
    return evs


async def test_round_trip_keeps_everything(storage: Storage, sample: list[TEvent]) -> None:
    got = await storage.test_events(TQuery())
    assert len(got) == len(sample)
    for want, have in zip(sample, got, strict=True):
        assert have.header == want.header
        assert have.target == want.target  # FQDN, IPs and manager state survive
        assert have.name == want.name
        assert have.payload == want.payload
        assert have.emit_time == want.emit_time  # full float precision, not seconds
    seqs = [e.sequence for e in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[0] > 0


async def test_events_of_one_step_share_their_header(
    storage: Storage, sample: list[TEvent]
) -> None:
    got = await storage.test_events(TQuery(job_id=1, run_id=1))
    assert len(got) == 4
    assert all(e.header is got[0].header for e in got)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (TQuery(job_id=1), 7),
        (TQuery(job_id=3), 0),
        (TQuery(run_id=2), 3),
        (TQuery(test_names=["ATest"]), 4),
        (TQuery(test_names=["ATest", "ATest [CLEANUP]"]), 6),
        (TQuery(test_names=["atest"]), 0),  # exact, case-sensitive, on every DB
        (TQuery(step_labels=["second"]), 3),
        (TQuery(target_ids=["t1"]), 4),
        (TQuery(target_ids=["T2", "t1"]), 8),
        (TQuery(target_ids=[]), 0),
        (TQuery(event_names=["TargetIn"]), 4),
        (TQuery(event_names=["TargetIn", "TargetOut"]), 6),
        (TQuery(test_attempt=1), 3),
        (TQuery(test_attempt=0), 6),
        (TQuery(emitted_after=1_700_000_010.0), 5),  # inclusive
        (TQuery(emitted_before=1_700_000_010.0), 4),  # exclusive
        (TQuery(emitted_after=1_700_000_001.0, emitted_before=1_700_000_011.0), 4),
        (TQuery(job_id=1, event_names=["TargetIn"], target_ids=["t1"]), 2),
        (TQuery(job_id=1, run_id=2, test_names=["BTest"], step_labels=["second"]), 3),
    ],
)
async def test_filters(
    storage: Storage, sample: list[TEvent], query: TQuery, expected: int
) -> None:
    got = await storage.test_events(query)
    want = [e for e in sample if query.matches(e)]
    assert len(got) == expected == len(want)
    assert [(e.header, e.name, e.emit_time) for e in got] == [
        (e.header, e.name, e.emit_time) for e in want
    ]


async def test_paging_by_sequence(storage: Storage, sample: list[TEvent]) -> None:
    seen: list[TEvent] = []
    after = None
    while page := await storage.test_events(TQuery(after_sequence=after, limit=4)):
        assert len(page) <= 4
        seen += page
        after = page[-1].sequence
    assert names(seen) == names(sample)
    first2 = await storage.test_events(TQuery(job_id=1, limit=2))
    assert names(first2) == ["TargetIn", "StepOutput"]


async def test_order_is_write_order_across_concurrent_writers(storage: Storage) -> None:
    """Rows are numbered in the order of the write calls, however many tasks write."""
    header = Header(7, 1, "Order", "s")
    order: list[str] = []

    async def writer(w: int) -> None:
        for i in range(20):
            name = f"W{chr(65 + w)}E{chr(65 + i)}"
            order.append(name)  # the call below fixes the place, before any await
            await storage.write_test_event(TEvent(header, None, name))
            if i % 3 == w % 3:
                await asyncio.sleep(0)

    await asyncio.gather(*(writer(w) for w in range(10)))
    got = await storage.test_events(TQuery(job_id=7))
    assert names(got) == order


async def test_reads_see_writes_not_yet_awaited(storage: Storage) -> None:
    pending = [storage.write_test_event(TEvent(H1, T1, f"E{chr(65 + i)}")) for i in range(5)] + [
        storage.write_framework_event(FrameworkEvent(1, "RunStarted", {"RunID": 1}))
    ]
    assert len(await storage.test_events(TQuery(job_id=1))) == 5
    assert len(await storage.framework_events(FrameworkEventQuery(job_id=1))) == 1
    assert all(p.done() for p in pending)  # type: ignore[attr-defined]
    await asyncio.gather(*pending)


async def test_emit_time_defaults_to_now(storage: Storage) -> None:
    before = time.time()
    ev = TEvent(H1, None, "NoTime")
    fw = FrameworkEvent(1, "NoTime")
    await storage.write_test_event(ev)
    await storage.write_framework_event(fw)
    got = await storage.test_events(TQuery(event_names=["NoTime"]))
    got_fw = await storage.framework_events(FrameworkEventQuery(event_names=["NoTime"]))
    assert before <= got[0].emit_time <= time.time()
    assert got[0].emit_time == ev.emit_time and got_fw[0].emit_time == fw.emit_time


async def test_unicode_and_big_values(storage: Storage) -> None:
    target = Target(
        "zielrechner-\u00fc\u4e2d", manager_state={"emoji": "\U0001f600", "k": "v" * 500}
    )
    payload = {
        "text": "gr\u00fc\u00df \u4e2d\u6587 \U0001f600 \\ ' \" % \x00",
        "big": "x" * 3_000_000,
    }
    await storage.write_test_event(TEvent(H1, target, "Unicode", payload, 1.5))
    (got,) = await storage.test_events(TQuery(target_ids=[target.id]))
    assert got.target == target and got.payload == payload


# --- framework events -----------------------------------------------------------------------


async def test_framework_events_round_trip_and_filters(storage: Storage) -> None:
    base = 1_800_000_000.0
    evs = [
        FrameworkEvent(1, "JobStateStarted", None, base),
        FrameworkEvent(1, "RunStarted", {"RunID": 1}, base + 1),
        FrameworkEvent(2, "JobStateStarted", None, base + 2),
        FrameworkEvent(1, "JobStatePaused", {"V": 1, "J": 1, "TT": [{"ID": "t"}]}, base + 3),
        FrameworkEvent(2, "JobStateFailed", {"Err": "no targets"}, base + 10),
    ]
    await asyncio.gather(*(storage.write_framework_event(e) for e in evs))
    got = await storage.framework_events(FrameworkEventQuery())
    assert [(e.job_id, e.name, e.payload, e.emit_time) for e in got] == [
        (e.job_id, e.name, e.payload, e.emit_time) for e in evs
    ]
    assert [e.sequence for e in got] == sorted(e.sequence for e in got)
    for q, n in [
        (FrameworkEventQuery(job_id=1), 3),
        (FrameworkEventQuery(job_id=1, event_names=["JobStatePaused", "RunStarted"]), 2),
        (FrameworkEventQuery(event_names=["JobStateStarted"]), 2),
        (FrameworkEventQuery(event_names=[]), 0),
        (FrameworkEventQuery(emitted_after=base + 2), 3),
        (FrameworkEventQuery(emitted_before=base + 2), 2),
        (FrameworkEventQuery(emitted_after=base + 1, emitted_before=base + 10), 3),
        (FrameworkEventQuery(after_sequence=got[2].sequence), 2),
        (FrameworkEventQuery(after_sequence=got[0].sequence, limit=2), 2),
    ]:
        res = await storage.framework_events(q)
        assert len(res) == n, q
        assert [e.sequence for e in res] == [e.sequence for e in got if q.matches(e)][:n]
