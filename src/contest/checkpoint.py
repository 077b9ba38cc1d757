"""Step checkpoints: what a running job records as it goes so that a job whose server died is
resumed inside its steps, not only between them.

The stored events already say which targets finished which steps (see
:func:`contest.resume.checkpoint_from_events`), and the variables steps set
(``VariableEmitted``); what they do not say is how far a target inside a step had got. A step
that can pause may say so as it runs: it *opts in* (:meth:`contest.context.StepContext.
keep_checkpoints`) with a function giving, on request, the targets in hand and, for each, the
JSON-able data its pause would save for it, in the state format of
:func:`~contest.stephelpers.for_each_target_with_resume` (which opts in by itself). The job
manager asks every ``checkpoint_period`` (:func:`record`) and stores the job's checkpoint (one
row, replaced, and only when it changed) through a write fenced by the job's lease; the
checkpoint is deleted with the job's final state.

On takeover (:meth:`StoredCheckpoint.steps_of`), a target that the events show inside a step
which checkpointed it resumes there from its data, as after a pause; a target that entered the
step after the last checkpoint, or is inside a step that does not opt in, re-enters the step
from its start (``TargetInterrupted``); a target checkpointed but since finished is dropped
from the state (its ``TargetOut``/``TargetErr`` is stored): no target is seen twice or lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contest.errors import ResumeStateError
from contest.resume import encode_targets_state
from contest.target import Target

__all__ = [
    "CHECKPOINT_VERSION",
    "CheckpointBook",
    "KeptStep",
    "StepSlot",
    "StoredCheckpoint",
    "TargetsInHand",
    "load",
    "record",
]

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1

#: what a step gives when asked: each target in hand and the data its pause would save
TargetsInHand = Callable[[], Iterable[tuple[Target, Any]]]


# --- while the job runs ------------------------------------------------------------------------


class StepSlot:
    """One step's place in its job's :class:`CheckpointBook`, for one attempt of one test: the
    test runner hands it to the step's context and closes it when the step returns."""

    __slots__ = ("_book", "key", "targets", "version")

    def __init__(self, book: CheckpointBook, key: tuple[int, int, str, str]) -> None:
        self._book = book
        self.key = key  # (run, attempt, test name, step label)
        self.version = 0
        self.targets: TargetsInHand | None = None

    def keep(self, version: int, targets: TargetsInHand) -> None:
        self.version = version
        self.targets = targets
        self._book.open[self.key] = self

    def close(self) -> None:
        self._book.open.pop(self.key, None)


@dataclass
class CheckpointBook:
    """The steps of one job that keep checkpoints now, and what was stored last."""

    open: dict[tuple[int, int, str, str], StepSlot] = field(default_factory=dict)
    stored: bytes | None = None  # the last checkpoint stored (nothing is written if unchanged)

    def slot(self, run_id: int, attempt: int, test_name: str, label: str) -> StepSlot:
        return StepSlot(self, (run_id, attempt, test_name, label))

    def snapshot(self) -> bytes | None:
        """The job's checkpoint now: every opted-in step of the newest run and attempt with
        its targets in hand (None: no step keeps one)."""
        slots = [s for s in self.open.values() if s.targets is not None]
        if not slots:
            return None
        run_id, attempt = max(s.key[:2] for s in slots)
        steps = []
        for s in slots:
            if s.key[:2] != (run_id, attempt):
                continue
            assert s.targets is not None
            data = {t.id: d for t, d in s.targets()}
            steps.append({"T": s.key[2], "L": s.key[3], "V": s.version, "D": data})
        doc = {"V": CHECKPOINT_VERSION, "R": run_id, "A": attempt, "S": steps}
        return json.dumps(doc, separators=(",", ":")).encode()


async def record(store: Any, book: CheckpointBook, job_id: int) -> bool:
    """Store the job's checkpoint if it changed since the last one stored; True if written.
    The cost: one JSON encoding of the targets in hand of the opted-in steps per period, and a
    write only when that changed. The store (``store_checkpoint(job_id, blob)``: ``Storage``,
    ``MemoryStore``; a store without it keeps none) fences the write by the job's lease
    (``Storage.store_checkpoint``): a server that lost it raises ``LeaseLost``."""
    save = getattr(store, "store_checkpoint", None)
    if save is None:
        return False
    blob = book.snapshot()
    if blob is None or blob == book.stored:
        return False
    await save(job_id, blob)
    book.stored = blob
    return True


# --- on takeover -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeptStep:
    """One step's checkpoint: its state version and, per target in hand, its data."""

    version: int
    data: Mapping[str, Any]

    def resume_state(self, targets: Collection[Target]) -> bytes:
        """The step's resume state for ``targets`` (all checkpointed by it), as its pause
        would have written it."""
        return encode_targets_state(((t, self.data[t.id]) for t in targets), self.version)


@dataclass(frozen=True)
class StoredCheckpoint:
    """A job's stored checkpoint, read back."""

    run_id: int
    attempt: int
    steps: Mapping[tuple[str, str], KeptStep]  # (test name, step label) -> its checkpoint

    @classmethod
    def decode(cls, blob: bytes) -> StoredCheckpoint:
        try:
            obj = json.loads(blob)
            if not isinstance(obj, dict) or obj.get("V") != CHECKPOINT_VERSION:
                raise ValueError(f"version {obj.get('V') if isinstance(obj, dict) else None}")
            steps = {
                (str(s["T"]), str(s["L"])): KeptStep(int(s["V"]), dict(s["D"])) for s in obj["S"]
            }
            return cls(int(obj["R"]), int(obj["A"]), steps)
        except (ValueError, KeyError, TypeError) as exc:
            raise ResumeStateError(f"invalid checkpoint: {exc}") from exc

    def steps_of(self, run_id: int, attempt: int) -> Mapping[tuple[str, str], KeptStep]:
        """The steps checkpointed in that attempt of that run (none if it is another's)."""
        return self.steps if (run_id, attempt) == (self.run_id, self.attempt) else {}


async def load(store: Any, job_id: int) -> StoredCheckpoint | None:
    """The job's stored checkpoint; None if it has none, its store keeps none, or it cannot be
    read (the job is then resumed as if none was kept: steps re-entered from their start)."""
    read = getattr(store, "job_checkpoint", None)
    if read is None:
        return None
    blob = await read(job_id)
    if blob is None:
        return None
    try:
        return StoredCheckpoint.decode(blob)
    except ResumeStateError as exc:
        log.warning("job %d: its checkpoint is not used: %s", job_id, exc)
        return None
