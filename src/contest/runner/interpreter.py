"""The interpreter, set for running jobs: the engine's own business, wherever a job runs.

Two settings: the garbage collector's, and how soon a thread holding the GIL lets another in.

The garbage collector
---------------------

A job keeps many long-lived objects (per target: its record, its task, futures and events in
flight; per step: channels and emitters). With Python's default thresholds (700, 10, 10) the
young generation fills up every few hundred allocations and each collection promotes what
survives, so a 10,000-target job sets off thousands of collections and, as the old generation
grows by a quarter, full ones that walk every object of the process, none of which is garbage:
measured on a 10,000 x 5 job on SQLite, collection was a third of the wall time (the job ran
1.8 times faster with collection off; ``benchmarks/jobs.py`` shows the figure).

So the engine, the first time it runs anything (:class:`~contest.job.manager.JobManager` at
start, :class:`~contest.runner.test_runner.TestRunner` at each run, which also covers the
benchmarks and the step harness), does two things once per process:

* **freezes** what exists then (modules, classes, the plugin registry, the server's objects:
  hundreds of thousands of objects that live as long as the process) into the permanent
  generation, after one full collection so that no garbage is frozen with them: later full
  collections walk only what came after;
* **raises the young threshold** to :data:`YOUNG_THRESHOLD` allocations, so that a
  collection happens per few thousand target-steps rather than per few dozen, and the
  objects of a finished target-step are freed by reference counting before a collection
  ever sees them.

Cycles are still collected (the collector is never switched off), only less often; memory
held by young garbage cycles is bounded by the threshold. A process that wants other settings
calls ``gc.set_threshold`` after the engine started: :func:`prepare` never changes them again.

The switch interval
-------------------
A job's events are written by the database driver's thread (aiosqlite's, for SQLite), mostly
in SQLite's C code, which runs without the GIL; but between two calls into the driver the
thread needs the GIL for a moment (a statement's parameters, its answer for the loop), and
with Python's default switch interval it waits up to 5 ms for the event loop, busy moving
targets, to let go. So the two took turns rather than working side by side: a batch's few
statements waited longer for the GIL than they ran. With :data:`SWITCH_INTERVAL` (0.5 ms) a
1,000 x 50 Noop job on SQLite ran 10-30% faster (the median of 4-5 interleaved runs, three
times: docs/performance.md).

A process that serves the API keeps Python's default (``prepare(serving=True)``, what
``contest serve`` does): there the same setting made the API's answers slower under pollers
(the server's own answers within 250 ms fell from 88-91% to 66-73% in paired runs), the
readers' threads and the loop trading the GIL ten times as often. And a process that set its
own interval before the engine started keeps it.
"""

from __future__ import annotations

import gc
import sys

#: allocations (net of deallocations) of container objects between young collections
YOUNG_THRESHOLD = 50_000
#: young collections between middle ones, and middle ones between full ones (Python's
#: default 10 each; fewer middle and full passes while a job's objects are being promoted)
OLDER_THRESHOLDS = (20, 20)

#: seconds a thread holding the GIL keeps it once another asks, in a process that only runs
#: jobs (Python's default, kept by a server: 5 ms)
SWITCH_INTERVAL = 0.0005
_DEFAULT_SWITCH_INTERVAL = 0.005

_prepared = False


def prepare(*, serving: bool = False) -> None:
    """Set the interpreter for jobs, once per process (later calls do nothing): the collector,
    and the switch interval unless ``serving`` (a process that answers the API)."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    if not serving and sys.getswitchinterval() == _DEFAULT_SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)
    if gc.isenabled():
        gc.collect()  # nothing collectable is frozen: it would never be freed
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


def prepared() -> bool:
    """True once :func:`prepare` has set the interpreter (for tests and benchmarks)."""
    return _prepared
