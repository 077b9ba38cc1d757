"""The engine sets the garbage collector for jobs itself, wherever a job runs
(``contest.runner.collector``): once per process, at the first run."""

from __future__ import annotations

import gc

from contest.runner import collector
from contest.testing import run_steps
from contest.testing.steps import Noop


async def test_a_run_sets_the_collector_for_jobs_once() -> None:
    await run_steps([(Noop(), "S")], ["T1"])
    assert collector.prepared()
    assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, *collector.OLDER_THRESHOLDS)
    assert gc.get_freeze_count() > 0  # what existed at the first run is out of the scans
    assert gc.isenabled()  # cycles are still collected, only less often

    # a process that chose its own settings after the engine started keeps them
    gc.set_threshold(1000, 10, 10)
    try:
        collector.prepare()
        await run_steps([(Noop(), "S")], ["T1"])
        assert gc.get_threshold() == (1000, 10, 10)
    finally:
        gc.set_threshold(collector.YOUNG_THRESHOLD, *collector.OLDER_THRESHOLDS)
