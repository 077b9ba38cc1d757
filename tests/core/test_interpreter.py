"""The engine sets the interpreter for jobs itself (the garbage collector; the GIL's switch
interval, except in a server), wherever a job runs (``contest.runner.interpreter``): once per
process, at the first run."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from contest.runner import interpreter
from contest.testing import run_steps
from contest.testing.steps import Noop


async def test_a_run_sets_the_collector_for_jobs_once() -> None:
    await run_steps([(Noop(), "S")], ["T1"])
    assert interpreter.prepared()
    assert gc.get_threshold() == (interpreter.YOUNG_THRESHOLD, *interpreter.OLDER_THRESHOLDS)
    assert gc.get_freeze_count() > 0  # what existed at the first run is out of the scans
    assert gc.isenabled()  # cycles are still collected, only less often

    # a process that chose its own settings after the engine started keeps them
    gc.set_threshold(1000, 10, 10)
    try:
        interpreter.prepare()
        await run_steps([(Noop(), "S")], ["T1"])
        assert gc.get_threshold() == (1000, 10, 10)
    finally:
        gc.set_threshold(interpreter.YOUNG_THRESHOLD, *interpreter.OLDER_THRESHOLDS)


def _switch_interval_after(code: str) -> float:
    """The switch interval of a fresh process (this one was set by earlier tests) after
    ``code``, which may prepare the interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", f"import sys\nfrom contest.runner import interpreter\n{code}\n"
         "print(sys.getswitchinterval())"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("", 0.005),  # Python's own
        ("interpreter.prepare()", interpreter.SWITCH_INTERVAL),  # a process that runs jobs
        ("interpreter.prepare(serving=True)", 0.005),  # a server keeps Python's
        ("interpreter.prepare(serving=True); interpreter.prepare()", 0.005),  # the first wins
        ("sys.setswitchinterval(0.002); interpreter.prepare()", 0.002),  # its own, kept
        (
            "import asyncio\nfrom contest.testing import run_steps\n"
            "from contest.testing.steps import Noop\n"
            "asyncio.run(run_steps([(Noop(), 'S')], ['T1']))",
            interpreter.SWITCH_INTERVAL,  # the step harness, as `contest run`
        ),
    ],
)
def test_the_switch_interval_is_short_where_jobs_run_and_no_api_is_served(
    code: str, expected: float
) -> None:
    assert _switch_interval_after(code) == pytest.approx(expected)
