"""Errors of the step contract and of the test runner.

The step errors keep ConTest's message texts (users grep logs for them, and ConTest's tests check
them), including the spelling "paniced".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class ContestError(Exception):
    """Base of every error raised by contest itself."""


class Paused(Exception):
    """Raised by a step (or by ``StepContext.sleep``) to pause.

    ``state`` is what the step wants back on resume: bytes, str, or any JSON-able value. It is given
    back to the next ``run`` as ``resume_state`` bytes.
    """

    def __init__(self, state: Any = None) -> None:
        super().__init__("paused")
        self.state = state


class Cancelled(Exception):
    """Raised when the job is cancelled; a step may raise it, or let CancelledError propagate."""

    def __init__(self, msg: str = "cancelled") -> None:
        super().__init__(msg)


class ParameterError(ContestError):
    """A step, fetcher, target manager or reporter got a parameter it cannot use."""


class EventNotAllowed(ContestError):
    """A step emitted an event it did not declare."""


class ResumeStateError(ContestError):
    """A resume state cannot be used: bad JSON, wrong version, or another job's state."""


# --- the runner's step errors ------------------------------------------------------------------


class StepError(ContestError):
    """A step broke the contract; the test fails (and, in a job, the job fails)."""

    def __init__(self, label: str, message: str) -> None:
        super().__init__(message)
        self.label = label


class StepReturnedUnexpectedResult(StepError):
    def __init__(self, label: str, target_id: str) -> None:
        super().__init__(label, f"test step {label} returned unexpected result for {target_id}")
        self.target_id = target_id


class StepReturnedDuplicateResult(StepError):
    def __init__(self, label: str, target_id: str) -> None:
        super().__init__(label, f"test step {label} returned duplicate result for {target_id}")
        self.target_id = target_id


class StepReturnedNoTarget(StepError):
    def __init__(self, label: str) -> None:
        super().__init__(label, f"test step {label} returned nil result")


class StepLostTargets(StepError):
    def __init__(self, label: str, target_ids: Sequence[str]) -> None:
        super().__init__(label, f"test step {label} lost targets [{' '.join(target_ids)}]")
        self.target_ids = list(target_ids)


class StepsNeverReturned(StepError):
    def __init__(self, labels: Iterable[str]) -> None:
        self.labels = list(labels)
        super().__init__(
            self.labels[0] if self.labels else "",
            f"test step [{', '.join(self.labels)}] did not return",
        )


class StepCrashed(StepError):
    """An exception escaped ``run`` (ConTest's "paniced" and "returned an error" cases)."""

    def __init__(self, label: str, error: BaseException, trace: str = "") -> None:
        detail = f"{error}" or type(error).__name__
        super().__init__(label, f"test step {label} paniced, trace: {detail!r}")
        self.error = error
        self.trace = trace


class StepClosedChannels(StepError):
    def __init__(self, label: str) -> None:
        super().__init__(label, f"test step {label} closed output channels (api violation)")


class StepPausedWithoutRequest(StepError):
    def __init__(self, label: str) -> None:
        super().__init__(label, f"test step {label} paused, but no pause was requested")


class StepCancelledWithoutRequest(StepError):
    def __init__(self, label: str) -> None:
        super().__init__(
            label, f"test step {label} returned cancelled, but no cancel was requested"
        )


class StepReturnedEarly(StepError):
    """The step returned while targets were still waiting to enter it (LB: "step runner was
    stopped"); ConTest FB hangs here."""

    def __init__(self, label: str, target_ids: Sequence[str]) -> None:
        shown = " ".join(target_ids[:10]) + (" ..." if len(target_ids) > 10 else "")
        super().__init__(
            label, f"test step {label} returned before taking all its targets [{shown}]"
        )
        self.target_ids = list(target_ids)


class EventWriteError(StepError):
    """The runner could not store one of its own events (TargetIn, TargetOut, TargetErr)."""

    def __init__(self, label: str, what: str, error: BaseException) -> None:
        super().__init__(label, f"failed to report {what}: {error}")
        self.error = error
