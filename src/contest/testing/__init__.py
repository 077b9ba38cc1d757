"""The conformance kit: misbehaving steps, ConTest's ``Test`` step, and a harness that runs a
test on given targets and returns its events as plain tuples, so that plugin authors can test
their own steps the way contest tests its runner."""

from contest.testing.harness import EventTuple, RunOutcome, event_tuples, run_steps

__all__ = ["EventTuple", "RunOutcome", "event_tuples", "run_steps"]
