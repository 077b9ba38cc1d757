"""The job runner: runs, tests, attempts; acquire, lock, run, clean up, release; report.

One job, top to bottom::

    for each run (Runs, or forever when 0), after RunInterval between runs:
        RunStarted
        for each test:
            for each attempt (RetryParameters.NumRetries + 1):
                acquire the targets (TargetManager), lock them, waiting in line for targets
                    other jobs hold (TargetsWaiting..TargetsWaitEnded), all bounded by the
                    acquire timeout; TargetAcquired per target -- failure: TargetAcquireErr
                run the test steps (the test runner)
                run the cleanup steps on every acquired target, whatever happened
                release (bounded by the release timeout), TargetReleased per target, unlock
                stop if every target passed every step
        run reporters (stored)
        no target acquired in the whole run: the job fails (JobStateFailed)
    final reporters (stored)

A pause anywhere (between runs, waiting for targets, after acquisition, mid-test, after the test
steps, mid-cleanup, waiting to retry) returns a ``PausePayload``; ``run`` called again with it
continues so that the stored events look exactly like an uninterrupted run's: nothing acquired,
entered, left or released twice. Paused jobs keep their targets locked (the job manager keeps
refreshing the locks).

Failures: ``Cancelled`` when the job is cancelled (targets are still released, bounded by the
release timeout); ``JobError`` when a step misbehaved, acquire or release timed out, or a plugin
crashed (an exception that is not a ``ContestError``), with a message naming the plugin. A
``ContestError`` from a target manager's acquire, or a wait for busy targets that timed out, is an
ordinary failed attempt (retried, then the job moves on to its next test, as ConTest LB does);
but a run in which no target was ever acquired fails the job (``NothingAcquired``: ConTest's job
would complete having tested nothing; docs/migrating-from-contest.md). From a reporter, a
``ContestError`` is a failed report (stored as such).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from contest.checkpoint import CheckpointBook
from contest.context import PluginContext
from contest.errors import Cancelled, ContestError, Paused, StepError
from contest.events import (
    RUN_STARTED,
    TARGET_ACQUIRE_ERR,
    TARGET_ACQUIRED,
    TARGET_RELEASED,
    EventEmitter,
    EventReader,
    EventSink,
    FrameworkEvent,
    TestEventHeader,
    TestEventQuery,
)
from contest.golang.time import format_duration
from contest.job import waiting
from contest.job.build import CLEANUP_SUFFIX
from contest.job.model import Job, JobTest, ReporterBinding
from contest.job.status import (
    LiveRunStatus,
    build_run_statuses,
    job_shape,
    save_run_status,
    save_run_text,
)
from contest.job.waiting import DEFAULT_WAIT_POLL, QueueingLocker, TargetWait
from contest.locking import LockConflict, TargetLocker
from contest.resume import PausePayload
from contest.runner.test_runner import DEFAULT_SHUTDOWN_TIMEOUT, TestRunner, TestRunResult
from contest.signals import Scope
from contest.storage.models import JobReport, Report
from contest.target import Target
from contest.variables import VariableStore

log = logging.getLogger(__name__)

DEFAULT_LOCK_DURATION = 600.0


class JobError(ContestError):
    """The job failed; the message says why (and which plugin, when one is to blame)."""


class NothingAcquired(JobError):
    """A run ended without any target ever acquired: the job tested nothing, so it fails. The
    message is the acquisition's last error (``could not acquire targets within 5m0s: dut1 held
    by job 3``), which the job manager records as the job's error as it is."""


class ReportStore(Protocol):
    async def store_report(self, report: Report) -> None: ...


class _AcquireFailed(Exception):
    """A failed acquisition attempt (retried per RetryParameters)."""


class _WaitPaused(Exception):
    """The job paused while waiting for targets; ``remaining`` seconds of the acquire timeout
    were left."""

    def __init__(self, remaining: float) -> None:
        super().__init__(remaining)
        self.remaining = remaining


@dataclass
class _RunTally:
    """Whether a run acquired any target, and the last acquisition error (the job's error if
    it acquired none)."""

    acquired: bool = False
    error: str | None = None


HoldTargets = Callable[[int, Sequence[Target] | None], None]


@dataclass
class _Attempt:
    """One attempt of one test, as each of its phases needs it."""

    job: Job
    scope: Scope
    run_id: int
    index: int
    number: int
    emitter: EventEmitter
    ctx: PluginContext
    tally: _RunTally
    checkpoints: CheckpointBook | None = None

    @property
    def test(self) -> JobTest:
        return self.job.tests[self.index]

    def paused(self, **kw: Any) -> PausePayload:
        """The payload that resumes this attempt (mid-run, at this test and attempt)."""
        return PausePayload(
            self.job.id, self.run_id, self.index, attempt=self.number, run_started=True, **kw
        )


@dataclass
class _StepsOutcome:
    """What the test steps left for cleanup and release: the states given on resume, each
    target's verdict, the failure that broke the steps, the variables they emitted."""

    test_state: bytes | None = None
    cleanup_state: bytes | None = None
    results: dict[str, str | None] | None = None
    failure: BaseException | None = None
    variables: VariableStore | None = None


def _no_hold(job_id: int, targets: Sequence[Target] | None) -> None:
    return None


class JobRunner:
    """Runs jobs. Stateless between jobs; one instance may run many jobs concurrently."""

    def __init__(
        self,
        *,
        sink: EventSink,
        reader: EventReader,
        reports: ReportStore,
        locker: TargetLocker,
        lock_duration: float = DEFAULT_LOCK_DURATION,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        hold_targets: HoldTargets = _no_hold,
        wait_poll: float = DEFAULT_WAIT_POLL,
    ) -> None:
        self.sink = sink
        self.reader = reader
        self.reports = reports
        self.locker = locker
        self.lock_duration = lock_duration
        self.shutdown_timeout = shutdown_timeout
        self.hold_targets = hold_targets
        self.wait_poll = wait_poll
        #: the statuses of the runs going on here, kept as their events are written (see
        #: :class:`~contest.job.status.LiveRunStatus`), by (job ID, run ID)
        self.live: dict[tuple[int, int], LiveRunStatus] = {}

    # --- the job, top to bottom ----------------------------------------------------------------

    async def run(
        self,
        job: Job,
        scope: Scope,
        resume: PausePayload | None = None,
        *,
        checkpoints: CheckpointBook | None = None,
    ) -> PausePayload | None:
        """Run ``job`` to the end (None), or until paused (the payload to resume from).
        ``checkpoints``: where its steps keep their checkpoints (the job manager's, which
        stores them: :mod:`contest.checkpoint`)."""
        if resume is not None and resume.job_id != job.id:
            raise JobError(f"wrong resume state, job id {resume.job_id} (want {job.id})")
        run_id = resume.run_id if resume else 1
        delay = max(0.0, resume.start_at - time.time()) if resume and resume.start_at else 0.0
        mid_run = resume is not None and resume.run_started
        # a resumed job may have made some of its reports already (its server died between a
        # run's reports and the next run's start): those are not made, nor stored, twice
        reported = await self._reported(job.id) if resume is not None else frozenset()
        while job.runs == 0 or run_id <= job.runs:
            if delay > 0:
                start_at = time.time() + delay
                try:
                    await scope.sleep(delay)
                except Paused:
                    return PausePayload(job.id, run_id, start_at=start_at)
            if scope.cancel.is_set():
                raise Cancelled()
            tally = _RunTally()
            if not mid_run:
                await self._framework_event(job.id, RUN_STARTED, {"RunID": run_id})
            else:  # what the run acquired before the pause is in its events
                tally.acquired = await self._acquired_in_run(job.id, run_id)
            # a run resumed halfway has events written before: its status is read from them
            live = None if mid_run else await self._watch(job, run_id)
            try:
                first_test = resume.test_index if resume is not None and mid_run else 0
                for index in range(first_test, len(job.tests)):
                    payload = await self._run_test(
                        job, scope, run_id, index, resume if mid_run else None, tally, checkpoints
                    )
                    if payload is not None:
                        return payload
                    resume, mid_run = None, False
                await self._run_reports(job, run_id, live, reported)
            finally:
                if live is not None:
                    self._unwatch(job.id, run_id)
            if not tally.acquired and job.tests:
                raise NothingAcquired(tally.error or "no target was acquired")
            resume, mid_run = None, False
            run_id += 1
            delay = job.run_interval
        if job.runs != 0:
            await self._final_reports(job, run_id - 1, reported)
        return None

    async def _acquired_in_run(self, job_id: int, run_id: int) -> bool:
        events = await self.reader.test_events(
            TestEventQuery(job_id=job_id, run_id=run_id, event_names=[TARGET_ACQUIRED], limit=1)
        )
        return bool(events)

    async def _run_test(
        self,
        job: Job,
        scope: Scope,
        run_id: int,
        index: int,
        resume: PausePayload | None,
        tally: _RunTally,
        checkpoints: CheckpointBook | None = None,
    ) -> PausePayload | None:
        """Every attempt of one test; a payload if paused."""
        jt = job.tests[index]
        attempt = resume.attempt if resume else 0
        next_attempt_at = resume.next_attempt_at if resume else None
        while attempt <= jt.num_retries:
            if next_attempt_at is not None:
                try:
                    await scope.sleep(next_attempt_at - time.time())
                except Paused:
                    return PausePayload(
                        job.id,
                        run_id,
                        index,
                        attempt=attempt,
                        next_attempt_at=next_attempt_at,
                        run_started=True,
                    )
                next_attempt_at = None
            outcome = await self._attempt(
                job, scope, run_id, index, attempt, resume, tally, checkpoints
            )
            resume = None
            if isinstance(outcome, PausePayload):
                return outcome
            if outcome:  # every target passed every step
                return None
            attempt += 1
            if attempt <= jt.num_retries and jt.retry_interval > 0:
                next_attempt_at = time.time() + jt.retry_interval
        return None

    async def _attempt(
        self,
        job: Job,
        scope: Scope,
        run_id: int,
        index: int,
        attempt: int,
        resume: PausePayload | None,
        tally: _RunTally,
        checkpoints: CheckpointBook | None = None,
    ) -> PausePayload | bool:
        """One attempt: acquire, test, cleanup, release. True if every target passed."""
        jt = job.tests[index]
        at = _Attempt(
            job,
            scope,
            run_id,
            index,
            attempt,
            EventEmitter(self.sink, TestEventHeader(job.id, run_id, jt.name, "", attempt), None),
            PluginContext(scope=scope, job_id=job.id, run_id=run_id),
            tally,
            checkpoints,
        )
        targets = await self._attempt_targets(at, resume)
        if targets is None:
            return False
        if isinstance(targets, PausePayload):
            return targets
        self.hold_targets(job.id, targets)
        if scope.pause.is_set() and resume is None and not scope.cancel.is_set():
            return at.paused(targets=targets)
        steps = await self._attempt_steps(at, targets, resume)
        if isinstance(steps, PausePayload):
            return steps
        paused = await self._attempt_cleanup(at, targets, resume, steps)
        if paused is not None:
            return paused
        return await self._attempt_release(at, targets, steps)

    async def _attempt_targets(
        self, at: _Attempt, resume: PausePayload | None
    ) -> list[Target] | PausePayload | None:
        """1. The targets: fresh, or the ones we held when we paused; None if the attempt failed
        to get them (``TargetAcquireErr`` emitted), a payload if it paused waiting for them."""
        job, jt, emitter = at.job, at.test, at.emitter
        if resume is not None and resume.targets is not None:
            targets = resume.targets
            try:
                await self.locker.refresh_locks(job.id, self.lock_duration, targets)
            except Exception as exc:
                # the locks lapsed while nobody ran the job (a takeover after its server died):
                # taken again through the line, within the acquire timeout
                error = await self._relock(job.id, jt.acquire_timeout, targets, exc)
                if error is not None:
                    await self._acquire_failed(at, error)
                    return None
        else:
            budget = jt.acquire_timeout
            if resume is not None and resume.wait_remaining is not None:
                # what the paused wait left, but one look at the targets at least (a wait
                # paused at its very end then times out as a wait, naming the holders)
                budget = min(budget, max(resume.wait_remaining, self.wait_poll))
            try:
                targets = await self._acquire(at, budget)
            except _AcquireFailed as exc:
                await self._acquire_failed(at, str(exc))
                return None
            except _WaitPaused as exc:
                return at.paused(wait_remaining=round(exc.remaining, 3))
            await self._emit_each(emitter, TARGET_ACQUIRED, targets)
        if targets:
            at.tally.acquired = True
        else:
            at.tally.error = f"target manager {jt.target_manager_name} returned no targets"
        return targets

    async def _acquire_failed(self, at: _Attempt, error: str) -> None:
        at.tally.error = error
        await self._emit(at.emitter, TARGET_ACQUIRE_ERR, None, {"Error": error})

    async def _relock(
        self, job_id: int, timeout: float, targets: list[Target], cause: Exception
    ) -> str | None:
        """Lock ``targets`` again for a resumed job whose locks could not be refreshed, waiting
        in the locker's line up to ``timeout``; None once locked, else why not."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                got = await self.locker.lock_queued(job_id, self.lock_duration, targets)
                if got.granted:
                    log.warning("job %d: its target locks had lapsed (%s): locked again",
                                job_id, cause)  # fmt: skip
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    held = ", ".join(f"{t} held by job {j}" for t, j in got.blockers.items())
                    return f"could not lock the targets again ({cause}): {held or 'held'}"
                await self.locker.wait_for_release(min(left, 1.0))
        except Exception as exc:
            return f"could not lock the targets again: {exc}"
        finally:
            try:
                await self.locker.leave_queue(job_id)
            except Exception as exc:
                log.warning("job %d: cannot leave the line for targets: %s", job_id, exc)

    async def _attempt_steps(
        self, at: _Attempt, targets: list[Target], resume: PausePayload | None
    ) -> _StepsOutcome | PausePayload:
        """2. The test steps (skipped when we paused after them: in cleanup, or before release);
        a payload if the attempt pauses here."""
        job, scope, jt = at.job, at.scope, at.test
        out = _StepsOutcome(
            test_state=resume.test_state if resume else None,
            cleanup_state=resume.cleanup_state if resume else None,
        )
        if out.cleanup_state is None and (resume is None or resume.test_results is None):
            try:
                result = await TestRunner(self.sink, shutdown_timeout=self.shutdown_timeout).run(
                    jt.test,
                    targets,
                    job_id=job.id,
                    run_id=at.run_id,
                    attempt=at.number,
                    scope=scope,
                    resume_state=out.test_state,
                    checkpoints=at.checkpoints,
                )
                if result.paused:
                    return at.paused(targets=targets, test_state=result.resume_state)
                out.results, out.variables = result.targets, result.variables
            except (Cancelled, StepError, ContestError) as exc:
                out.failure = exc
        else:
            out.results = resume.test_results if resume is not None else None

        # a pause that came while the steps finished their targets (steps that do not pause
        # finish what they hold): stop before release, like ConTest's test runner, which then
        # returns pause; the resumed attempt goes straight to release
        if (
            out.failure is None
            and out.results is not None
            and not jt.test.cleanup_steps  # with cleanup steps, the cleanup runner pauses
            and scope.pause.is_set()
            and not scope.cancel.is_set()
        ):
            return at.paused(targets=targets, test_results=out.results)
        return out

    async def _attempt_cleanup(
        self,
        at: _Attempt,
        targets: list[Target],
        resume: PausePayload | None,
        steps: _StepsOutcome,
    ) -> PausePayload | None:
        """3. Cleanup steps on every acquired target, whatever happened (not after a cancel); a
        payload if the attempt pauses here. A cancel inside becomes the attempt's failure."""
        job, jt = at.job, at.test
        if not jt.test.cleanup_steps or isinstance(steps.failure, Cancelled):
            return None
        try:
            cres = await TestRunner(self.sink, shutdown_timeout=self.shutdown_timeout).run(
                jt.test,
                targets,
                job_id=job.id,
                run_id=at.run_id,
                attempt=at.number,
                scope=at.scope,
                resume_state=steps.cleanup_state,
                steps=jt.test.cleanup_steps,
                test_name=jt.name + CLEANUP_SUFFIX,
                variables=steps.variables,
                checkpoints=at.checkpoints,
            )
            if cres.paused and steps.failure is None:
                return at.paused(
                    targets=targets,
                    test_state=steps.test_state,
                    cleanup_state=cres.resume_state,
                    test_results=steps.results,
                )
        except Cancelled as exc:
            steps.failure = steps.failure or exc
        except ContestError as exc:
            log.warning("job %d: cleanup of test %r failed: %s", job.id, jt.name, exc)
        return None

    async def _attempt_release(
        self, at: _Attempt, targets: list[Target], steps: _StepsOutcome
    ) -> bool:
        """4. Release (also after a cancel or a failure), bounded by the release timeout; then
        the verdict: True if every target passed, Cancelled or JobError if the attempt broke."""
        await self._release(at.ctx, at.job, at.test, targets, at.emitter)
        if isinstance(steps.failure, Cancelled) or at.scope.cancel.is_set():
            raise Cancelled()
        if steps.failure is not None:
            raise JobError(str(steps.failure)) from steps.failure
        if steps.results is None:
            return False
        return len(steps.results) == len(targets) and all(v is None for v in steps.results.values())

    # --- acquire and release ---------------------------------------------------------------------

    async def _acquire(self, at: _Attempt, budget: float) -> list[Target]:
        """Acquire and lock, waiting in line for busy targets; ``_AcquireFailed`` for a failed
        attempt (a wait that timed out included), ``_WaitPaused`` when paused while waiting,
        ``Cancelled``, ``JobError`` for a target manager that hung or crashed.

        ``budget`` (the acquire timeout, or what a paused wait left of it) bounds everything:
        the target manager's call, as in ConTest (``pkg/runner/job_runner.go`` runs Acquire
        under TargetManagerAcquireTimeout), and the waits for busy targets inside it (the
        target manager locks through a :class:`QueueingLocker`) and after it (our own lock).
        """
        job, jt = at.job, at.test
        name = jt.target_manager_name

        async def emit(event: str, payload: dict[str, Any]) -> None:
            await self._emit(at.emitter, event, None, payload)

        wait = TargetWait(
            self.locker,
            scope=at.scope,
            emit=emit,
            deadline=time.monotonic() + budget,
            total=jt.acquire_timeout,
            poll=self.wait_poll,
        )
        queueing = QueueingLocker(self.locker, wait)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives as the call completes (CPython gh-86296)
            async with asyncio.timeout(budget):
                targets = await jt.target_manager.acquire(
                    at.ctx, job.id, jt.acquire_timeout + self.lock_duration, jt.acquire_params,
                    queueing,
                )  # fmt: skip
        except TimeoutError as exc:
            if wait.waiting or wait.outcome == "timeout":  # the budget ran out in line
                await wait.timed_out()
                raise _AcquireFailed(wait.error) from exc
            raise JobError(
                f"target manager acquire timed out after {format_duration(jt.acquire_timeout)}"
            ) from exc
        except Exception as exc:
            self._wait_outcome(wait, exc)
            if isinstance(exc, ContestError):
                raise _AcquireFailed(str(exc)) from exc
            raise JobError(f"target manager {name} crashed in acquire: {exc!r}") from exc
        targets = list(targets)
        seen = set()
        for t in targets:
            if not isinstance(t, Target) or not t.id or t.id in seen:
                raise JobError(f"target manager {name} returned a bad target list: {t!r}")
            seen.add(t.id)
        try:
            try:  # ours already (the target manager locked them): no line to stand in
                await self.locker.lock(job.id, self.lock_duration, targets)
            except LockConflict:
                await queueing.lock(job.id, self.lock_duration, targets)
        except Exception as exc:
            self._wait_outcome(wait, exc)
            raise _AcquireFailed(f"target locking failed: {exc}") from exc
        return targets

    @staticmethod
    def _wait_outcome(wait: TargetWait, exc: BaseException) -> None:
        """Raise what a wait's end means for the attempt, whatever the target manager made of
        it (it may have wrapped the locker's error in its own)."""
        if wait.outcome == "timeout":
            raise _AcquireFailed(wait.error) from exc
        if wait.outcome == "cancelled" or isinstance(exc, Cancelled):
            raise Cancelled() from exc
        if wait.outcome == "paused" or isinstance(exc, Paused):
            raise _WaitPaused(wait.remaining()) from exc

    async def _release(
        self,
        ctx: PluginContext,
        job: Job,
        jt: JobTest,
        targets: list[Target],
        emitter: EventEmitter,
    ) -> None:
        name = jt.target_manager_name
        error: str | None = None
        try:
            async with asyncio.timeout(jt.release_timeout):
                await jt.target_manager.release(ctx, job.id, targets, jt.release_params)
        except TimeoutError:
            error = f"target manager release timed out after {format_duration(jt.release_timeout)}"
        except Exception as exc:
            error = f"Failed to release targets: target manager {name}: {exc}"
        if error is None:
            await self._emit_each(emitter, TARGET_RELEASED, targets)
        self.hold_targets(job.id, None)
        try:
            await self.locker.unlock(job.id, targets)
        except Exception as exc:
            log.warning("job %d: unlocking targets failed: %s", job.id, exc)
        else:
            waiting.released(self.locker, targets)  # the next job of ours in line goes now
        if error is not None:
            raise JobError(error)

    # --- reports -------------------------------------------------------------------------------

    async def _watch(self, job: Job, run_id: int) -> LiveRunStatus | None:
        """Keep run ``run_id``'s status as its events are written, if the sink can show them
        (the SQL storage) and the run has none yet (a run started again after a server died
        halfway has: its status is built from all of them)."""
        watch = getattr(self.sink, "watch_run", None)
        has_events = getattr(self.reader, "has_test_events", None)
        if watch is None or has_events is None:
            return None
        try:
            if await has_events(job.id, run_id):
                return None
        except Exception as exc:
            log.warning("job %d: cannot tell whether run %d has events: %s", job.id, run_id, exc)
            return None
        live = LiveRunStatus(job.id, run_id, job_shape(job))
        watch(job.id, run_id, live.add)
        self.live[(job.id, run_id)] = live
        return live

    def _unwatch(self, job_id: int, run_id: int) -> None:
        self.live.pop((job_id, run_id), None)
        watch = getattr(self.sink, "watch_run", None)
        if watch is not None:
            watch(job_id, run_id, None)

    async def _reported(self, job_id: int) -> frozenset[tuple[int, str]]:
        """(run ID, reporter name) of the reports ``job_id`` has stored (run ID 0: final)."""
        read = getattr(self.reports, "job_report", None)
        if read is None:
            return frozenset()
        report: JobReport = await read(job_id)
        done = {(r.run_id, r.reporter_name) for run in report.run_reports for r in run}
        done.update((0, r.reporter_name) for r in report.final_reports)
        return frozenset(done)

    async def _run_reports(
        self,
        job: Job,
        run_id: int,
        live: LiveRunStatus | None,
        reported: frozenset[tuple[int, str]] = frozenset(),
    ) -> None:
        if job.run_reporters and all((run_id, rb.name) in reported for rb in job.run_reporters):
            return  # made before this job was resumed, with the run's saved status
        # the run is finished: its status never changes again, so it is saved for the status
        # document (which would otherwise build it from every event of the run at each call)
        if not job.run_reporters and not hasattr(self.reports, "store_run_status"):
            return
        status = None
        if live is not None and not live.broken:
            # kept as the events were written: nothing to read back or build; run reporters
            # get it with its events' sequence numbers, read from the database
            try:
                if job.run_reporters:
                    status = await live.with_sequences(self.reader)
                if status is not None or not job.run_reporters:
                    await save_run_text(self.reports, job.id, run_id, await live.text())
            except Exception as exc:  # built from the events below
                log.warning("job %d: the kept status of run %d failed: %s", job.id, run_id, exc)
                status = None
            if not job.run_reporters:
                return
        saved = status is not None
        if status is None:
            try:
                status = (await build_run_statuses(job, self.reader, [run_id]))[0]
            except Exception:
                if job.run_reporters:
                    raise
                log.warning("job %d: building the status of run %d failed", job.id, run_id)
                return
        if not saved:
            await save_run_status(self.reports, status)
        if not job.run_reporters:
            return
        ctx = PluginContext(scope=Scope(), job_id=job.id, run_id=run_id)
        for rb in job.run_reporters:
            if (run_id, rb.name) in reported:
                continue
            await self._report(
                job, rb, run_id, rb.reporter.run_report(ctx, rb.params, status, self.reader)
            )

    async def _final_reports(
        self, job: Job, last_run: int, reported: frozenset[tuple[int, str]] = frozenset()
    ) -> None:
        if all((0, rb.name) in reported for rb in job.final_reporters):
            return  # none, or all made before this job was resumed
        statuses = await build_run_statuses(job, self.reader, list(range(1, last_run + 1)))
        ctx = PluginContext(scope=Scope(), job_id=job.id)
        for rb in job.final_reporters:
            if (0, rb.name) in reported:
                continue
            await self._report(
                job, rb, 0, rb.reporter.final_report(ctx, rb.params, statuses, self.reader)
            )

    async def _report(
        self,
        job: Job,
        rb: ReporterBinding,
        run_id: int,
        call: Awaitable[tuple[bool, Any]],
    ) -> None:
        crash: Exception | None = None
        try:
            success, data = await call
        except ContestError as exc:
            log.warning("job %d: reporter %s: %s", job.id, rb.name, exc)
            success, data = False, None
        except Exception as exc:
            success, data, crash = False, None, exc
        await self.reports.store_report(Report(job.id, run_id, rb.name, success, data))
        if crash is not None:
            raise JobError(f"reporter {rb.name} crashed: {crash!r}") from crash

    # --- events --------------------------------------------------------------------------------

    async def _emit(
        self, emitter: EventEmitter, name: str, target: Target | None, payload: Any = None
    ) -> None:
        pending = emitter.write(name, target, payload)
        if pending is not None:
            await pending

    async def _emit_each(self, emitter: EventEmitter, name: str, targets: list[Target]) -> None:
        """One event per target, in order, sharing commits (not one round trip each)."""
        pending = []
        cancelled: asyncio.CancelledError | None = None
        for i in range(0, len(targets), _WRITES_PER_TURN):
            if i and cancelled is None:
                # let the loop answer the API between slices (10,000 targets' events written
                # at once held it for some 50 ms: benchmarks/perf.py's server section)
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError as exc:
                    cancelled = exc  # the rest still written, as when all were at once
            for t in targets[i : i + _WRITES_PER_TURN]:
                p = emitter.write(name, t)
                if p is not None:
                    pending.append(p)
        if cancelled is not None:
            raise cancelled
        for p in pending:
            await p

    async def _framework_event(self, job_id: int, name: str, payload: Any) -> None:
        pending = self.sink.write_framework_event(
            FrameworkEvent(job_id, name, payload, time.time())
        )
        if pending is not None:
            await pending


#: per-target events a job writes in a row before it lets the loop run other work
_WRITES_PER_TURN = 1_000


__all__ = ["JobError", "JobRunner", "ReportStore", "TestRunResult"]
