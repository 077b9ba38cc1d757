"""The garbage collector, set for running jobs: the engine's own business, wherever a job runs.

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
"""

from __future__ import annotations

import gc

#: allocations (net of deallocations) of container objects between young collections
YOUNG_THRESHOLD = 50_000
#: young collections between middle ones, and middle ones between full ones (Python's
#: default 10 each; fewer middle and full passes while a job's objects are being promoted)
OLDER_THRESHOLDS = (20, 20)

_prepared = False


def prepare() -> None:
    """Set the collector for jobs, once per process (later calls do nothing)."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    if gc.isenabled():
        gc.collect()  # nothing collectable is frozen: it would never be freed
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


def prepared() -> bool:
    """True once :func:`prepare` has set the collector (for tests and benchmarks)."""
    return _prepared
