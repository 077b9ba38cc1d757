"""contest-py: ConTest, the system-testing framework, in Python.

A job runs tests against targets; each test is a pipeline of steps (plugins) that every target walks
through on its own; every move is an event.

The public faces, for plugin authors and tools (everything else is the implementation and may
change; docs/architecture.md draws the layers):

* :mod:`contest.teststep` -- the step contract: everything a step author needs;
* :mod:`contest.targetmanager`, :mod:`contest.testfetcher`, :mod:`contest.reporter`,
  :mod:`contest.locking` -- the contracts of the other plugin kinds (see :mod:`contest.plugins`);
* :mod:`contest.testing` -- the conformance kit: run steps the way the runner does, the fixture
  steps and target managers, the target-locker conformance suite;
* :mod:`contest.job.descriptor` -- job descriptors: read, check and write them as ConTest does;
* :mod:`contest.golang` -- Go's behaviour users see (durations, quoting, JSON into structs).
"""

__version__ = "0.1.0"
