"""Where a job whose server died is resumed, read from its stored events
(``contest.resume.checkpoint_from_events``) and its steps' stored checkpoint
(``contest.checkpoint``): the runner's resume state a pause there would have written, the
targets that were inside a step (to be marked ``TargetInterrupted``), those that resume inside
their step from its checkpoint, and the variables steps had set.
The job manager's use of it on every store: tests/jobs/test_job_manager_pause.py; on real
servers killed with ``kill -9``: tests/e2e/test_e2e_takeover.py."""

from __future__ import annotations

from collections import Counter

import pytest

from contest.checkpoint import CheckpointBook, KeptStep, StoredCheckpoint
from contest.errors import ResumeStateError
from contest.events import TestEvent, TestEventHeader
from contest.resume import (
    Phase,
    TestRunState,
    TestShape,
    checkpoint_from_events,
    decode_targets_state,
)
from contest.target import Target

JOB = 7
TESTS = [
    TestShape("T1", ["a", "b", "c"], ["clean"], "T1 [CLEANUP]", num_retries=1),
    TestShape("T2", ["x"]),
]


class Log:
    """Events as the runner stores them, numbered in order."""

    def __init__(self) -> None:
        self.events: list[TestEvent] = []

    def add(
        self, name: str, target: str | None, label: str = "", *, test: str = "T1", run: int = 1,
        attempt: int = 0, payload: object = None,
    ) -> Log:  # fmt: skip
        header = TestEventHeader(JOB, run, test, label, attempt)
        tgt = Target(target) if target is not None else None
        self.events.append(TestEvent(header, tgt, name, payload, 0.0, len(self.events) + 1))
        return self

    def through(self, target: str, *labels: str, test: str = "T1", attempt: int = 0) -> Log:
        for label in labels:
            self.add("TargetIn", target, label, test=test, attempt=attempt)
            self.add("TargetOut", target, label, test=test, attempt=attempt)
        return self


def positions(blob: bytes | None, n_steps: int) -> dict[str, tuple[int, int, str | None]]:
    assert blob is not None
    state = TestRunState.decode(blob, JOB, n_steps)
    return {t: (p.step, p.phase, p.error) for t, p in state.targets.items()}


def test_nothing_ran_starts_afresh_and_a_run_without_tests_starts_its_first() -> None:
    assert checkpoint_from_events(JOB, TESTS, [], [], now=0.0).payload is None
    cp = checkpoint_from_events(JOB, TESTS, [1], [], now=0.0)
    assert cp.payload is not None and cp.interrupted == []
    p = cp.payload
    assert (p.run_id, p.test_index, p.attempt, p.run_started, p.targets) == (1, 0, 0, True, None)


def test_targets_resume_where_their_events_leave_them() -> None:
    log = Log()
    for t in ("t1", "t2", "t3", "t4", "t5"):
        log.add("TargetAcquired", t)
    log.through("t1", "a").add("TargetIn", "t1", "b")  # inside b
    log.add("TargetIn", "t2", "a")  # inside a
    log.add("TargetIn", "t3", "a").add("TargetErr", "t3", "a", payload={"Error": "boom"})
    log.through("t4", "a", "b", "c")  # done
    # t5: acquired, never entered a step
    cp = checkpoint_from_events(JOB, TESTS, [1], log.events, now=0.0)
    p = cp.payload
    assert p is not None
    assert [t.id for t in p.targets or []] == ["t1", "t2", "t3", "t4", "t5"]
    assert (p.run_id, p.test_index, p.attempt, p.cleanup_state, p.test_results) == (
        1, 0, 0, None, None,
    )  # fmt: skip
    assert positions(p.test_state, 3) == {
        "t1": (1, Phase.INIT, None),  # enters b again
        "t3": (0, Phase.END, "boom"),  # failed a: done
        "t4": (2, Phase.END, None),  # passed every step: done
    }  # t2 (inside a) and t5 (in no step yet) start at a, as every target not listed
    assert [(e.target.id, e.header.step_label) for e in cp.interrupted if e.target] == [
        ("t1", "b"),
        ("t2", "a"),
    ]


def test_an_attempt_interrupted_before_is_not_counted_again() -> None:
    log = Log().add("TargetAcquired", "t1").through("t1", "a")
    log.add("TargetIn", "t1", "b").add("TargetInterrupted", "t1", "b")  # a first takeover
    log.add("TargetIn", "t1", "b")  # and its server died too
    cp = checkpoint_from_events(JOB, TESTS, [1], log.events, now=0.0)
    assert cp.payload is not None
    assert positions(cp.payload.test_state, 3) == {"t1": (1, Phase.INIT, None)}
    assert [e.sequence for e in cp.interrupted] == [log.events[-1].sequence]
    # interrupted, not re-entered yet when the second server died: not inside, nothing to mark
    log.events.pop()
    cp = checkpoint_from_events(JOB, TESTS, [1], log.events, now=0.0)
    assert cp.interrupted == []
    assert cp.payload is not None
    assert positions(cp.payload.test_state, 3) == {"t1": (1, Phase.INIT, None)}


def test_in_cleanup_the_test_steps_verdicts_are_kept() -> None:
    log = Log().add("TargetAcquired", "t1").add("TargetAcquired", "t2")
    log.through("t1", "a", "b", "c")
    log.add("TargetIn", "t2", "a").add("TargetErr", "t2", "a", payload={"Error": "bad"})
    log.add("TargetIn", "t1", "clean", test="T1 [CLEANUP]")
    log.through("t2", "clean", test="T1 [CLEANUP]")
    cp = checkpoint_from_events(JOB, TESTS, [1], log.events, now=0.0)
    p = cp.payload
    assert p is not None
    assert p.test_results == {"t1": None, "t2": "bad"}
    assert positions(p.cleanup_state, 1) == {"t2": (0, Phase.END, None)}  # t1 enters it again
    assert [(e.header.test_name, e.target.id) for e in cp.interrupted if e.target] == [
        ("T1 [CLEANUP]", "t1")
    ]


def test_a_released_attempt_goes_on_by_its_verdict() -> None:
    failed = Log().add("TargetAcquired", "t1")
    failed.add("TargetIn", "t1", "a").add("TargetErr", "t1", "a", payload={"Error": "e"})
    failed.add("TargetReleased", "t1")
    p = checkpoint_from_events(JOB, TESTS, [1], failed.events, now=5.0).payload
    assert p is not None  # T1 allows one retry: the next attempt, at once
    assert (p.test_index, p.attempt, p.next_attempt_at, p.targets) == (0, 1, 5.0, None)
    # the retry failed too: the next test
    retry = Log().add("TargetAcquired", "t1", attempt=1).add("TargetReleased", "t1", attempt=1)
    p = checkpoint_from_events(JOB, TESTS, [1], failed.events + retry.events, now=5.0).payload
    assert p is not None and (p.test_index, p.attempt) == (1, 0)
    passed = Log().add("TargetAcquired", "t1").through("t1", "a", "b", "c")
    passed.add("TargetReleased", "t1")
    p = checkpoint_from_events(JOB, TESTS, [1], passed.events, now=5.0).payload
    assert p is not None and (p.test_index, p.attempt, p.run_started) == (1, 0, True)
    # the last test released: the run's reports, then the next run
    last = Log().add("TargetAcquired", "t1", test="T2").through("t1", "x", test="T2")
    last.add("TargetReleased", "t1", test="T2")
    p = checkpoint_from_events(JOB, TESTS, [1], passed.events + last.events, now=5.0).payload
    assert p is not None and (p.run_id, p.test_index) == (1, 2)


def test_the_last_run_started_is_the_one_resumed() -> None:
    old = Log().add("TargetAcquired", "t1").through("t1", "a", "b", "c")
    new = Log().add("TargetAcquired", "t9", run=2)
    cp = checkpoint_from_events(JOB, TESTS, [1, 2], old.events + new.events, now=0.0)
    assert cp.payload is not None
    assert cp.payload.run_id == 2 and [t.id for t in cp.payload.targets or []] == ["t9"]


def test_progress_and_the_web_counts_show_the_final_attempt() -> None:
    """A target whose attempt at a step was interrupted and that entered it again is counted
    once: in the step while inside, passed once out (the live view and the web page)."""
    from contest.progress import RoutingCounts
    from contest.server.web._model import StepShape, step_counts

    log = Log().add("TargetAcquired", "t1").through("t1", "a")
    log.add("TargetIn", "t1", "b").add("TargetInterrupted", "t1", "b").add("TargetIn", "t1", "b")
    counts = RoutingCounts()
    for ev in log.events:
        counts.add(ev)
    (a, b) = counts.rows(1)
    assert (a.in_flight, b.in_flight) == (0, 1)
    web = Counter((e.header.test_name, 0, e.header.step_label, e.name) for e in log.events)
    shapes = [StepShape(label, "sleep") for label in ("a", "b", "c")]
    _, cells = step_counts(dict(web), "T1", 0, shapes, True)
    assert [(c.running, c.passed) for c in cells[:2]] == [(0, 1), (1, 0)]
    log.add("TargetOut", "t1", "b")
    counts.add(log.events[-1])
    web = Counter((e.header.test_name, 0, e.header.step_label, e.name) for e in log.events)
    _, cells = step_counts(dict(web), "T1", 0, shapes, True)
    assert counts.rows(1)[1].in_flight == 0
    assert [(c.running, c.passed) for c in cells[:2]] == [(0, 1), (0, 1)]


# --- with the steps' stored checkpoint (contest.checkpoint) -------------------------------------


def stored(*steps: tuple[str, str, dict[str, object]], run: int = 1, attempt: int = 0):
    """A job checkpoint as the job manager stores it (through a book, encoded and decoded)."""
    book = CheckpointBook()
    for test, label, data in steps:
        items = [(Target(t), d) for t, d in data.items()]
        book.slot(run, attempt, test, label).keep(3, lambda items=items: items)
    blob = book.snapshot()
    assert blob is not None
    return StoredCheckpoint.decode(blob)


def step_state(blob: bytes | None, n_steps: int, k: int) -> dict[str, object]:
    assert blob is not None
    state = TestRunState.decode(blob, JOB, n_steps)
    return {t.id: d for t, d in decode_targets_state(state.step_states[k], 3)}


def test_targets_inside_a_checkpointed_step_resume_there_from_their_data() -> None:
    log = Log()
    for t in ("t1", "t2", "t3", "t4"):
        log.add("TargetAcquired", t)
        log.through(t, "a").add("TargetIn", t, "b")
    log.add("TargetOut", "t3", "b")  # finished b after the checkpoint: not resumed in it
    # t4 entered b after the checkpoint: it enters b again
    kept = stored(("T1", "b", {"t1": 5, "t2": {"at": 2}, "t3": 9}))
    cp = checkpoint_from_events(JOB, TESTS, [1], log.events, now=0.0, stored=kept)
    p = cp.payload
    assert p is not None
    assert positions(p.test_state, 3) == {
        "t1": (1, Phase.RUN, None),  # inside b: b brings it back from its data
        "t2": (1, Phase.RUN, None),
        "t3": (2, Phase.INIT, None),
        "t4": (1, Phase.INIT, None),
    }
    assert step_state(p.test_state, 3, 1) == {"t1": 5, "t2": {"at": 2}}
    assert sorted(cp.kept) == ["t1", "t2"]
    assert [(e.target.id, e.header.step_label) for e in cp.interrupted if e.target] == [("t4", "b")]


def test_a_checkpoint_of_another_attempt_or_step_is_not_used() -> None:
    log = Log().add("TargetAcquired", "t1", attempt=1)
    log.add("TargetIn", "t1", "a", attempt=1)
    for kept in (
        stored(("T1", "a", {"t1": 1}), attempt=0),  # the attempt before
        stored(("T1", "b", {"t1": 1}), attempt=1),  # another step
        stored(("T1 [CLEANUP]", "a", {"t1": 1}), attempt=1),  # another test of that label
    ):
        cp = checkpoint_from_events(JOB, TESTS, [1], log.events, now=0.0, stored=kept)
        assert cp.kept == [] and len(cp.interrupted) == 1


def test_a_cleanup_step_resumes_from_its_checkpoint() -> None:
    log = Log().add("TargetAcquired", "t1").through("t1", "a", "b", "c")
    log.add("TargetIn", "t1", "clean", test="T1 [CLEANUP]")
    kept = stored(("T1 [CLEANUP]", "clean", {"t1": "half"}))
    cp = checkpoint_from_events(JOB, TESTS, [1], log.events, now=0.0, stored=kept)
    assert cp.payload is not None and cp.interrupted == [] and cp.kept == ["t1"]
    assert positions(cp.payload.cleanup_state, 1) == {"t1": (0, Phase.RUN, None)}
    assert step_state(cp.payload.cleanup_state, 1, 0) == {"t1": "half"}


def test_the_variables_steps_set_are_kept() -> None:
    log = Log().add("TargetAcquired", "t1").add("TargetAcquired", "t2")
    log.add("TargetIn", "t1", "a")
    log.add("VariableEmitted", "t1", "a", payload={"Name": "n", "Value": "1"})
    log.add("VariableEmitted", "t1", "a", payload={"Name": "n", "Value": "2"})  # the last wins
    log.add("VariableEmitted", "t1", "a", payload={"Name": "s", "Value": '"x"'})
    cp = checkpoint_from_events(JOB, TESTS, [1], log.events, now=0.0)
    assert cp.payload is not None and cp.payload.test_state is not None
    state = TestRunState.decode(cp.payload.test_state, JOB, 3)
    assert state.targets["t1"].variables == {"a": {"n": 2, "s": "x"}}
    assert "t2" not in state.targets  # in no step, with no variable: where every target starts
    assert len(cp.interrupted) == 1


def test_a_checkpoint_is_a_step_book_of_the_newest_attempt() -> None:
    """The book keeps only the steps of the newest run and attempt, and a closed step's slot
    is gone; a broken checkpoint is refused."""
    book = CheckpointBook()
    assert book.snapshot() is None
    old = book.slot(1, 0, "T1", "a")
    old.keep(1, lambda: [(Target("t1"), 1)])
    new = book.slot(1, 1, "T1", "a")
    new.keep(1, lambda: [(Target("t1"), 2)])
    kept = StoredCheckpoint.decode(book.snapshot() or b"")
    assert (kept.run_id, kept.attempt, kept.steps) == (1, 1, {("T1", "a"): KeptStep(1, {"t1": 2})})
    new.close()
    assert StoredCheckpoint.decode(book.snapshot() or b"").attempt == 0
    old.close()
    assert book.snapshot() is None
    with pytest.raises(ResumeStateError, match="invalid checkpoint"):
        StoredCheckpoint.decode(b'{"V": 99}')
