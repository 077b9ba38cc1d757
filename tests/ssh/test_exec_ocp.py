"""The OCP Test & Validation stream parser of the Exec step, fed the way a process writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contest.plugins.teststeps.exec_ocp import OCPParser

RUN_START = {
    "testRunArtifact": {"testRunStart": {"name": "mem", "version": "1.0", "parameters": {}}},
    "sequenceNumber": 1,
    "timestamp": "t1",
}
STEP_START = {
    "testStepArtifact": {"testStepId": "0", "testStepStart": {"name": "dimms"}},
    "sequenceNumber": 2,
    "timestamp": "t2",
}
STEP_LOG = {
    "testStepArtifact": {"testStepId": "0", "log": {"severity": "INFO", "text": "héllo"}},
    "sequenceNumber": 3,
    "timestamp": "t3",
}
MEASUREMENT = {
    "testStepArtifact": {"testStepId": "0", "measurement": {"name": "n", "value": 4}},
    "sequenceNumber": 4,
    "timestamp": "t4",
}
STEP_END = {
    "testStepArtifact": {"testStepId": "0", "testStepEnd": {"status": "COMPLETE"}},
    "sequenceNumber": 5,
    "timestamp": "t5",
}
RUN_LOG = {
    "testRunArtifact": {"log": {"severity": "WARNING", "text": "w"}},
    "sequenceNumber": 6,
    "timestamp": "t6",
}


def run_end(status: str = "COMPLETE", result: str = "PASS") -> dict[str, Any]:
    return {
        "testRunArtifact": {"testRunEnd": {"status": status, "result": result}},
        "sequenceNumber": 7,
        "timestamp": "t7",
    }


EXPECTED = [
    ("TestStart", {"sequenceNumber": 1, "timestamp": "t1", "name": "mem", "version": "1.0"}),
    ("StepStart", {"sequenceNumber": 2, "timestamp": "t2", "stepId": "0", "name": "dimms"}),
    (
        "StepLog",
        {
            "sequenceNumber": 3,
            "timestamp": "t3",
            "stepId": "0",
            "severity": "INFO",
            "text": "héllo",
        },
    ),
    (
        "StepEnd",
        {"sequenceNumber": 5, "timestamp": "t5", "stepId": "0", "name": "", "status": "COMPLETE"},
    ),
    ("TestLog", {"sequenceNumber": 6, "timestamp": "t6", "severity": "WARNING", "text": "w"}),
    (
        "TestEnd",
        {"sequenceNumber": 7, "timestamp": "t7", "status": "COMPLETE", "result": "PASS"},
    ),
]


def stream(*objs: Any, indent: int | None = None) -> bytes:
    return "\n".join(json.dumps(o, indent=indent, ensure_ascii=False) for o in objs).encode()


async def parse(data: bytes, chunk: int = 0) -> tuple[OCPParser, list[tuple[str, Any]]]:
    events: list[tuple[str, Any]] = []

    async def emit(name: str, payload: dict[str, Any]) -> None:
        events.append((name, payload))

    parser = OCPParser(emit)
    if chunk:
        for i in range(0, len(data), chunk):
            await parser.feed(data[i : i + chunk])
    else:
        await parser.feed(data)
    await parser.finish()
    return parser, events


ALL = (RUN_START, STEP_START, STEP_LOG, MEASUREMENT, STEP_END, RUN_LOG, run_end())


@pytest.mark.parametrize("chunk", [0, 1, 7, 4096])
async def test_events_whatever_the_chunking(chunk: int) -> None:
    parser, events = await parse(stream(*ALL), chunk)
    assert events == EXPECTED
    assert parser.verdict() is None and not parser.stopped


async def test_pretty_printed_and_concatenated_objects() -> None:
    data = stream(RUN_START, indent=2) + stream(run_end()) + b"  \n"
    parser, events = await parse(data, 3)
    assert [n for n, _ in events] == ["TestStart", "TestEnd"]
    assert parser.verdict() is None


async def test_keys_match_case_insensitively_like_go() -> None:
    obj = {"TestRunArtifact": {"TESTRUNEND": {"Status": "COMPLETE", "result": "PASS"}}}
    parser, events = await parse(stream(obj))
    assert events == [
        ("TestEnd", {"sequenceNumber": 0, "timestamp": "", "status": "COMPLETE", "result": "PASS"})
    ]
    assert parser.verdict() is None


@pytest.mark.parametrize(
    ("objs", "verdict"),
    [
        ((RUN_START,), "did not see a complete run"),
        ((RUN_START, run_end(result="FAIL")), "test failed"),
        ((RUN_START, run_end(status="ERROR")), "did not see a complete run"),
        ((RUN_START, run_end(result="NOT_APPLICABLE")), "test failed"),
        ((), "did not see a complete run"),
    ],
)
async def test_verdicts(objs: tuple[Any, ...], verdict: str) -> None:
    parser, _ = await parse(stream(*objs))
    assert parser.verdict() == verdict


@pytest.mark.parametrize(
    "bad",
    [
        b"starting tests...\n",
        b'{"testRunArtifact": {"testRunEnd": {"status": "COMPLETE", "result": "PASS"}}',  # no end
        b'{"sequenceNumber": "1"}\n',
        b'{"testRunArtifact": [1]}\n',
        b"[1, 2]\n",
        b'{"a": tru}\n',
    ],
)
async def test_parsing_stops_at_the_first_bad_value(bad: bytes) -> None:
    data = stream(RUN_START) + b"\n" + bad + stream(run_end())
    parser, events = await parse(data, 5)
    assert [n for n, _ in events] == ["TestStart"]
    assert parser.stopped
    assert parser.verdict() == "did not see a complete run"


async def test_braces_inside_strings_do_not_confuse_the_scanner() -> None:
    log = {"testRunArtifact": {"log": {"severity": "INFO", "text": 'a } { " \\" ] ['}}}
    parser, events = await parse(stream(log, run_end()), 2)
    assert events[0][1]["text"] == 'a } { " \\" ] ['
    assert parser.verdict() is None
