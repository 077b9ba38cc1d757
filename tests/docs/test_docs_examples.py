"""The guide's three example steps (docs/examples/), run through ``contest.testing.run_steps`` on
real targets: their events, their failures, pause and resume, cancellation.

``test_hello_greets_every_target`` is quoted in docs/plugin-guide.md ("Testing your step").
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from hello_step import Hello
from manual_channels_step import Throttled
from poll_step import STATE_VERSION, Poll

from contest.events import MemoryEventSink, TestEvent
from contest.signals import Scope, Signal
from contest.testing import EventTuple, run_steps
from contest.teststep import Cancelled, ParameterError, Target


class SignalAfter(MemoryEventSink):
    """Keeps the events, and sets ``signal`` once ``count`` events named ``name`` are written:
    a pause or a cancel at a known point of the run, not after a guessed delay."""

    def __init__(self, signal: Signal, name: str, count: int) -> None:
        super().__init__()
        self.signal, self.name, self.count = signal, name, count

    def write_test_event(self, event: TestEvent) -> None:
        super().write_test_event(event)
        if event.name == self.name:
            self.count -= 1
            if self.count == 0:
                self.signal.set()


# --- hello_step: a declared event with a templated parameter --------------------------------------


async def test_hello_greets_every_target() -> None:
    outcome = await run_steps(
        [(Hello(), "greet", {"text": ["hi {{ .ID }}"]})],
        ["T1", "T2"],
    )
    assert outcome.error is None
    assert outcome.events(target="T1") == [
        ("greet", "T1", "TargetIn", None),
        ("greet", "T1", "Greeted", {"text": "hi T1"}),
        ("greet", "T1", "TargetOut", None),
    ]


async def test_hello_expands_the_template_with_each_target() -> None:
    targets = [
        Target("T1", fqdn="t1.example.org"),
        Target("T2", fqdn="t2.example.org", primary_ipv4="10.0.0.2"),
    ]
    text = "{{ .ID }} at {{ .FQDN | ToUpper }}{{ if .PrimaryIPv4 }} ({{ .PrimaryIPv4 }}){{ end }}"
    outcome = await run_steps([(Hello(), "greet", {"text": [text]})], targets)
    assert outcome.error is None
    assert outcome.result is not None and outcome.result.targets == {"T1": None, "T2": None}
    greeted = {t: p["text"] for _, t, name, p in outcome.events() if name == "Greeted"}
    assert greeted == {"T1": "T1 at T1.EXAMPLE.ORG", "T2": "T2 at T2.EXAMPLE.ORG (10.0.0.2)"}


async def test_hello_fails_only_the_target_whose_text_cannot_be_expanded() -> None:
    # a StringVar nobody set: the expansion raises in the per-target function
    text = '{{ if eq .ID "T2" }}{{ StringVar "setup.greeting" }}{{ else }}hi{{ end }}'
    outcome = await run_steps([(Hello(), "greet", {"text": [text]})], ["T1", "T2"])
    assert outcome.error is None
    assert outcome.result is not None
    assert outcome.result.targets["T1"] is None
    error = outcome.result.targets["T2"]
    assert error is not None and "step 'setup' didn't emit any variables yet" in error
    assert outcome.events(target="T2") == [
        ("greet", "T2", "TargetIn", None),
        ("greet", "T2", "TargetErr", {"Error": error}),
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "text: missing; it is required"),
        ({"text": [""]}, "text: must not be empty"),
        (
            {"text": ["hi {{ .ID "]},
            "text[0]: not a valid template: unclosed action (line 1, column 11)",
        ),
        (
            {"text": ["hi {{ .Name }}"]},
            "text[0]: the template reads .Name (line 1, column 7), which a target does not have "
            "(it has ID, FQDN, PrimaryIPv4, PrimaryIPv6, TargetManagerState)",
        ),
        ({"text": ["hi"], "txet": ["x"]}, 'txet: unknown parameter; did you mean "text"?'),
    ],
)
async def test_hello_refuses_bad_parameters(params: dict[str, list[str]], message: str) -> None:
    # run_steps validates first, as a job submission does, and raises what validation raised
    with pytest.raises(ParameterError) as info:
        await run_steps([(Hello(), "greet", params)], ["T1"])
    assert str(info.value) == message


# --- poll_step: for_each_target_with_resume, pause and resume ------------------------------------

POLL = {"duration": ["600ms"], "poll_interval": ["50ms"]}


async def test_poll_pauses_and_resumes_the_same_outside_jobs() -> None:
    targets = [Target("T1"), Target("T2", fqdn="t2.example.org")]
    first = await run_steps([(Poll(), "poll", POLL)], targets, pause_after=0.25)
    assert first.error is None
    assert first.result is not None and first.result.targets == {}  # nothing finished yet
    assert first.resume_state is not None
    started = {t: p["job"] for _, t, name, p in first.events() if name == "PollJobStarted"}
    assert set(started) == {"T1", "T2"}
    # the step's own state, inside the runner's: each target with its token and its polls
    step_state = json.loads(first.resume_state)["SRS"][0]["json"]
    assert step_state["V"] == STATE_VERSION
    saved = {e["Target"]["ID"]: e["Data"] for e in step_state["TWD"]}
    assert {t: d["job"] for t, d in saved.items()} == started
    assert all(d["polls"] >= 1 for d in saved.values())

    # a new instance (as after a server restart), the same targets, the saved state
    second = await run_steps(
        [(Poll(), "poll", POLL)], targets, resume_state=first.resume_state, sink=first.sink
    )
    assert second.error is None
    assert second.result is not None and second.result.targets == {"T1": None, "T2": None}
    for tid in ("T1", "T2"):
        names = [name for _, _, name, _ in second.events(target=tid)]
        # handed over once, started once, polled on after the resume, then done
        assert names == ["TargetIn", "PollJobStarted", "PollJobDone", "TargetOut"]
        done = next(p for _, _, name, p in second.events(target=tid) if name == "PollJobDone")
        assert done["job"] == started[tid]
        assert done["polls"] > saved[tid]["polls"]


async def test_poll_runs_to_the_end_without_a_pause() -> None:
    outcome = await run_steps(
        [(Poll(), "poll", {"duration": ["100ms"], "poll_interval": ["20ms"]})], ["T1"]
    )
    assert outcome.error is None
    assert [name for _, _, name, _ in outcome.events(target="T1")] == [
        "TargetIn",
        "PollJobStarted",
        "PollJobDone",
        "TargetOut",
    ]


async def test_poll_refuses_a_resume_state_of_another_version() -> None:
    first = await run_steps([(Poll(), "poll", POLL)], ["T1"], pause_after=0.1)
    assert first.resume_state is not None
    state = json.loads(first.resume_state)
    state["SRS"][0]["json"]["V"] = STATE_VERSION + 1
    second = await run_steps(
        [(Poll(), "poll", POLL)], ["T1"], resume_state=json.dumps(state).encode()
    )
    assert second.error is not None
    assert "incompatible resume state: want 1, got 2" in str(second.error)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "duration: missing; it is required"),
        ({"duration": ["5"]}, 'duration[0]: expected a duration such as "30s" or "1m30s", got "5"'),
        (
            {"duration": ["1s"], "poll_interval": ["-1s"]},
            "poll_interval[0]: must be at least 0 seconds, got -1s",
        ),
    ],
)
async def test_poll_refuses_bad_parameters(params: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ParameterError) as info:
        await run_steps([(Poll(), "poll", params)], ["T1"])
    assert message in str(info.value)


# --- manual_channels_step: the channels by hand, a concurrency limit, cancellation ---------------


def _max_in_flight(events: list[EventTuple]) -> int:
    running = peak = 0
    for _, _, name, _ in events:
        if name == "CommandStarted":
            running += 1
            peak = max(peak, running)
        elif name == "CommandEnded":
            running -= 1
    return peak


async def test_throttled_runs_at_most_max_parallel_commands() -> None:
    params: dict[str, list[Any]] = {
        "executable": ["sh"],
        "args": ["-c", "sleep 0.2; test {{ .ID }} != bad"],
        "max_parallel": [2],
    }
    targets = ["T1", "bad", "T3", "T4", "T5"]
    outcome = await run_steps([(Throttled(), "cmd", params)], targets)
    assert outcome.error is None
    assert outcome.result is not None
    assert outcome.result.targets == {
        "T1": None,
        "bad": "exit code 1",
        "T3": None,
        "T4": None,
        "T5": None,
    }
    assert _max_in_flight(outcome.events()) == 2
    assert [name for _, _, name, _ in outcome.events(target="bad")] == [
        "TargetIn",
        "CommandStarted",
        "CommandEnded",
        "TargetErr",
    ]
    started = [p for _, t, name, p in outcome.events(target="T3") if name == "CommandStarted"]
    assert started[0]["argv"] == ["sh", "-c", "sleep 0.2; test T3 != bad"]


async def test_throttled_fails_a_target_whose_command_cannot_start() -> None:
    params = {"executable": ["/nonexistent/{{ .ID }}"]}
    outcome = await run_steps([(Throttled(), "cmd", params)], ["T1"])
    assert outcome.error is None
    assert outcome.result is not None
    error = outcome.result.targets["T1"]
    assert error is not None and "/nonexistent/T1" in error


async def test_throttled_kills_its_commands_when_the_job_is_cancelled() -> None:
    params: dict[str, list[Any]] = {"executable": ["sleep"], "args": ["30"], "max_parallel": [2]}
    scope = Scope()
    sink = SignalAfter(scope.cancel, "CommandStarted", 2)  # cancel once both commands run
    began = time.monotonic()
    outcome = await run_steps(
        [(Throttled(), "cmd", params)], ["T1", "T2", "T3"], scope=scope, sink=sink
    )
    assert time.monotonic() - began < 3  # not the 30 s of the commands, nor the shutdown timeout
    assert isinstance(outcome.error, Cancelled)
    events = outcome.events()
    pids = [p["pid"] for _, _, name, p in events if name == "CommandStarted"]
    assert len(pids) == 2  # the third target never got a slot
    for pid in pids:  # killed and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # once cancelled, no target is reported, and no step error is recorded
    assert {name for _, _, name, _ in events} == {"TargetIn", "CommandStarted"}


async def test_throttled_finishes_commands_in_flight_on_pause_and_resumes_the_others() -> None:
    params: dict[str, list[Any]] = {"executable": ["sleep"], "args": ["0.4"], "max_parallel": [2]}
    targets = ["T1", "T2", "T3", "T4"]
    scope = Scope()
    sink = SignalAfter(scope.pause, "CommandStarted", 2)  # pause once both slots are taken
    first = await run_steps([(Throttled(), "cmd", params)], targets, scope=scope, sink=sink)
    assert first.error is None
    assert first.result is not None and first.result.targets == {"T1": None, "T2": None}
    assert first.resume_state is not None
    second = await run_steps(
        [(Throttled(), "cmd", params)], targets, resume_state=first.resume_state
    )
    assert second.error is None
    assert second.result is not None
    assert second.result.targets == {t: None for t in targets}
    assert {t for _, t, name, _ in second.events() if name == "TargetIn"} == {"T3", "T4"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "executable: missing; it is required"),
        ({"executable": ["true"], "max_parallel": [0]}, "max_parallel[0]: must be at least 1"),
        ({"executable": ["true"], "max_parallel": ["x"]}, "max_parallel[0]: expected an integer"),
        ({"executable": ["echo"], "args": ["{{ .ID"]}, "args[0]: not a valid template"),
    ],
)
async def test_throttled_refuses_bad_parameters(params: dict[str, list[Any]], message: str) -> None:
    with pytest.raises(ParameterError) as info:
        await run_steps([(Throttled(), "cmd", params)], ["T1"])
    assert message in str(info.value)
