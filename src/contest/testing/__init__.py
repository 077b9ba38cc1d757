"""The conformance kit: misbehaving steps, ConTest's ``Test`` step, and a harness that runs a
test on given targets and returns its events as plain tuples, so that plugin authors can test
their own steps the way contest tests its runner.

Its modules, all for tests only (production code never imports this package):

* :mod:`contest.testing.harness` -- :func:`run_steps` and the event tuples (re-exported here);
* :mod:`contest.testing.conformance` -- the conformance suite every step must pass (targets in
  and out once, pause with and without targets in flight and resume, cancellation within a
  bound, no output after returning, declared events only);
* :mod:`contest.testing.steps` -- ConTest's ``Test`` step and the misbehaving fixture steps
  (``Crash``, ``Panic``, ``Hanging``, ``NoReturn``, ...): classes for tests, not plugins of an
  installation (contest's own tests register them through ``tests/fixture-plugins``);
* :mod:`contest.testing.targetmanagers` -- ``TargetListWithState``;
* :mod:`contest.testing.lockers` -- the conformance suite every ``TargetLocker`` must pass;
* :mod:`contest.testing.memstore` -- an in-memory job store for the job manager;
* :mod:`contest.testing.databases`, :mod:`contest.testing.sshd`, :mod:`contest.testing.paths` --
  throw-away databases, a private OpenSSH server, the sample descriptors' location.
"""

from contest.testing.harness import EventTuple, RunOutcome, event_tuples, run_steps

__all__ = ["EventTuple", "RunOutcome", "event_tuples", "run_steps"]
