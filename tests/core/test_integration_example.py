"""ConTest's runner integration test (``tests/integ/plugins/testrunner_test.go``): three ``Example``
steps built from the registry, five targets."""

from __future__ import annotations

import asyncio

from contest.bundle import Test, new_step_bundle
from contest.events import MemoryEventSink
from contest.registry import default_registry
from contest.runner.test_runner import TestRunner
from contest.signals import Scope
from contest.target import Target
from contest.testing import event_tuples


async def test_85_three_example_steps_five_targets() -> None:
    reg = default_registry()
    bundles = [await new_step_bundle(reg, "Example", f"Step{i}", {}) for i in (1, 2, 3)]
    targets = [Target(f"00{i}", fqdn=f"host00{i}.example.com") for i in range(1, 6)]
    sink = MemoryEventSink()
    runner = TestRunner(sink, shutdown_timeout=3)
    result = await asyncio.wait_for(
        runner.run(Test("SimpleTest", bundles), targets, job_id=1, run_id=1, scope=Scope()), 5
    )
    assert result.targets == {t.id: None for t in targets}
    assert not result.paused
    for t in targets:
        assert event_tuples(sink.test, target=t.id) == [
            (label, t.id, name, None)
            for label in ("Step1", "Step2", "Step3")
            for name in ("TargetIn", "ExampleStartedEvent", "ExampleFinishedEvent", "TargetOut")
        ]
    for ev in sink.test:
        assert (ev.header.job_id, ev.header.run_id, ev.header.test_name) == (1, 1, "SimpleTest")
