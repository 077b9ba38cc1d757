"""The plugin registry (ConTest's ``pkg/pluginregistry/pluginregistry_test.go``) and the event
emitter's declared-events check (``pkg/event/testevent/test_test.go``)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
from core_kit import Emits, target_events

from contest.bundle import BundleError, StepParameterProblems, new_step_bundle
from contest.errors import EventNotAllowed
from contest.events import (
    FRAMEWORK_TEST_EVENTS,
    EventEmitter,
    MemoryEventSink,
)
from contest.events import TestEvent as _Event
from contest.events import TestEventHeader as _Header
from contest.plugins.teststeps import example, sleep
from contest.registry import PluginRegistry, RegistryError, default_registry
from contest.target import Target
from contest.testing import run_steps
from contest.testing import steps as kit
from contest.teststep import TestStep


def factory() -> TestStep:
    return kit.Noop()


# --- registration rules ------------------------------------------------------------------------


def test_81_event_names() -> None:
    reg = PluginRegistry()
    reg.register_test_step("Good", factory, ["AStepEventName"])
    with pytest.raises(RegistryError) as info:
        reg.register_test_step("Bad", factory, ["Event which does not validate"])
    msg = str(info.value)
    assert msg.startswith("could not register TestStep Bad: event name")
    assert "Event which does not validate" in msg and "does not comply with events api" in msg
    # not ConTest's quirk: a failed registration leaves nothing behind
    assert reg.find("teststeps", "Bad") is None
    reg.register_test_step("Bad", factory, ["Fine"])


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("A" * 32, True),
        ("A" * 33, False),
        ("abcXYZ", True),
        ("abc1", False),
        ("a_b", False),
        ("", False),
        ("Événement", False),
    ],
)
def test_81b_event_name_rule(name: str, ok: bool) -> None:
    reg = PluginRegistry()
    if ok:
        reg.register_test_step("S", factory, [name])
        assert reg.test_step("S").events == frozenset({name})
    else:
        with pytest.raises(RegistryError, match="does not comply with events api"):
            reg.register_test_step("S", factory, [name])


def test_names_are_case_insensitive_and_unique() -> None:
    reg = PluginRegistry()
    p = reg.register_test_step("MyStep", factory, ["Ev"], source="pkg.one:load (one)")
    assert reg.test_step("mystep") is p
    assert reg.test_step("MYSTEP") is p
    assert reg.find("teststeps", "MyStep") is p
    with pytest.raises(RegistryError) as info:
        reg.register_test_step("MYSTEP", factory, [], source="pkg.two:load (two)")
    msg = str(info.value)
    assert "already registered" in msg
    assert "pkg.one:load (one)" in msg and "pkg.two:load (two)" in msg
    # the same name in another kind is a different plugin
    reg.register("reporters", "MyStep", factory)
    with pytest.raises(RegistryError, match="is not registered"):
        reg.test_step("Other")


def test_load_functions_return_name_factory_events() -> None:
    name, fac, events = example.load()
    assert name == "Example" and list(events) == list(example.EVENTS)
    assert isinstance(fac(), TestStep)
    name, fac, events = sleep.load()
    assert name == "Sleep" and tuple(events) == ()
    name, fac, events = kit.load_test()
    assert name == "Test" and "TestStartedEvent" in events


BUILTINS = [
    "Example",
    "Sleep",
    "Test",
    "Noop",
    "Fail",
    "Crash",
    "Panic",
    "Hanging",
    "NoReturn",
    "Channels",
    "BadTargets",
    "SlowEcho",
    "readmeta",
]


def test_entry_point_discovery() -> None:
    reg = PluginRegistry()
    reg.load_entry_points()
    for name in BUILTINS:
        plugin = reg.test_step(name.upper())
        assert plugin.name == name
        assert isinstance(plugin.factory(), TestStep)
        assert plugin.source  # where it came from
    assert reg.test_step("example").events == frozenset(example.EVENTS)
    # loading twice: every name is already there, each entry point reports its error
    errors = reg.load_entry_points()
    assert any("already registered" in e for e in errors)


def test_entry_points_are_the_discovery_path() -> None:
    groups = {ep.name for ep in importlib.metadata.entry_points(group="contest.teststeps")}
    assert {"example", "sleep", "test", "noop"} <= groups


def test_default_registry() -> None:
    reg = default_registry()
    assert reg is default_registry()
    names = {p.name for p in reg.plugins("teststeps")}
    assert set(BUILTINS) <= names


# --- bundles -----------------------------------------------------------------------------------


async def test_bundle_validates_on_the_instance_that_runs() -> None:
    reg = default_registry()
    b = await new_step_bundle(reg, "test", "Step 1", {"FailTargets": ["T1"]})
    assert isinstance(b.step, kit.TestStepFixture)
    assert b.step.fail_targets == {"T1"}  # parsed by validate, kept on the instance
    assert b.allowed_events == frozenset(kit.TestStepFixture.events)
    with pytest.raises(BundleError, match='unknown step "NoSuch"'):
        await new_step_bundle(reg, "NoSuch", "x", {})
    with pytest.raises(BundleError, match='unknown step "slep"; did you mean "Sleep"'):
        await new_step_bundle(reg, "slep", "x", {})
    with pytest.raises(StepParameterProblems) as info:
        await new_step_bundle(reg, "slowecho", "x", {"text": ["hi"], "slep": ["1"]})
    assert str(info.value) == (
        'step SlowEcho, parameter slep: unknown parameter; did you mean "sleep"?; '
        "step SlowEcho, parameter sleep: missing; it is required"
    )
    assert [p.path for p in info.value.problems] == ["slep", "sleep"]
    # a step's own refusal keeps ConTest's words
    with pytest.raises(BundleError, match="could not validate parameters for test step test: "):
        await new_step_bundle(reg, "test", "x", {"DelayTargets": ["T1"]})
    with pytest.raises(BundleError, match="step has no label, but it is mandatory"):
        await new_step_bundle(reg, "noop", "", {})
    with pytest.raises(BundleError, match="too long"):
        await new_step_bundle(reg, "noop", "x" * 33, {})
    await new_step_bundle(reg, "noop", "x" * 32, {})


# --- 82: declared events are enforced -------------------------------------------------------------


HEADER = _Header(1, 1, "SimpleTest", "Step1")


async def test_82_unrestricted_and_restricted_emitters() -> None:
    sink = MemoryEventSink()
    free = EventEmitter(sink, HEADER, None)
    await free.emit("Declared")
    await free.emit("Undeclared")
    restricted = EventEmitter(sink, HEADER, frozenset({"Declared"}))
    await restricted.emit("Declared")
    with pytest.raises(EventNotAllowed, match="not allowed to emit unregistered event Undeclared"):
        await restricted.emit("Undeclared")
    assert [e.name for e in sink.test] == ["Declared", "Undeclared", "Declared"]


async def test_82b_framework_events_exempt() -> None:
    sink = MemoryEventSink()
    restricted = EventEmitter(sink, HEADER, frozenset())
    for name in sorted(FRAMEWORK_TEST_EVENTS):
        await restricted.emit(name)
    assert {e.name for e in sink.test} == set(FRAMEWORK_TEST_EVENTS)


async def test_82c_runner_enforces_declared_events() -> None:
    """An undeclared event fails the target that emitted it; the runner's own events are
    recorded although the step declares none of them."""
    ok = await run_steps([(Emits("Declared"), "S")], ["T1"])
    assert ok.error is None
    assert ok.events(target="T1") == target_events(
        "S", "T1", "TargetIn", ("Declared", {"n": "Declared"}), "TargetOut"
    )
    bad = await run_steps([(Emits("Declared", "Sneaky"), "S")], ["T1"])
    assert bad.error is None
    events = bad.events(target="T1")
    assert events[:2] == target_events("S", "T1", "TargetIn", ("Declared", {"n": "Declared"}))
    assert events[2][2] == "TargetErr"
    assert "is not allowed to emit unregistered event Sneaky" in events[2][3]["Error"]
    assert all(e[2] != "Sneaky" for e in bad.events())
    # Noop declares nothing, yet its TargetIn/TargetOut are there
    noop = await run_steps([(kit.Noop(), "N")], ["T1"])
    assert noop.events(target="T1") == target_events("N", "T1", "TargetIn", "TargetOut")


class _FieldsSink(MemoryEventSink):
    """A sink whose class takes events by their fields (as the SQL storage does)."""

    def __init__(self) -> None:
        super().__init__()
        self.by_fields: list[str] = []

    def write_test_fields(
        self, header: Any, target: Any, name: str, payload: Any, emit_time: float
    ) -> None:
        self.by_fields.append(name)
        self.write_test_event(_Event(header, target, name, payload, emit_time))


async def test_the_emitter_writes_by_fields_only_where_the_sinks_class_says_so() -> None:
    from contest.progress import ProgressStore

    header = _Header(1, 1, "T", "s")
    sink = _FieldsSink()
    await EventEmitter(sink, header, None).emit("TargetIn", Target("a"))
    assert sink.by_fields == ["TargetIn"] and [e.name for e in sink.test] == ["TargetIn"]
    # a wrapper forwarding what it lacks keeps seeing every event it watches
    inner = _FieldsSink()
    wrapped = ProgressStore(inner)
    wrapped.progress.run = 1
    await EventEmitter(wrapped, header, None).emit("TargetIn", Target("a"))
    assert inner.by_fields == [] and [e.name for e in inner.test] == ["TargetIn"]
    assert wrapped.progress.rows()[0].in_flight == 1
