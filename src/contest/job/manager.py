"""The job manager: starts, stops, retries, lists and reports on jobs; keeps their locks alive;
on start-up fails this server's zombie jobs and resumes its paused ones.

Job states are framework events (``JobStateStarted``... ``JobStateCancelled``); a job's state is
its last one. Each running job has an entry here with its cancel/pause scope and the targets it
holds, whose locks a background task refreshes every 0.9 x lock duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Unpack

from contest import hostpolicy
from contest.errors import Cancelled, ContestError
from contest.events import (
    TARGET_ERR,
    TARGET_IN,
    TARGET_OUT,
    EventReader,
    EventSink,
    FrameworkEvent,
    FrameworkEventQuery,
    TestEvent,
    TestEventQuery,
    closing_error,
)
from contest.job.build import load_job_in_worker, rebuild_job
from contest.job.descriptor import (
    DescriptorError,
    DescriptorValidationError,
    decode_extended_descriptor,
)
from contest.job.model import Job
from contest.job.runner import DEFAULT_LOCK_DURATION, JobError, JobRunner
from contest.job.statusdoc import RunningStatuses, StatusDocument, encoded_status_document
from contest.locking import TargetLocker
from contest.logs import bind_job
from contest.redaction import find_secrets, remember_secrets
from contest.registry import PluginRegistry, default_registry
from contest.resume import PausePayload
from contest.runner import collector
from contest.runner.test_runner import DEFAULT_SHUTDOWN_TIMEOUT
from contest.signals import Scope
from contest.storage.limits import Limits
from contest.storage.models import JobQuery, JobReport, JobRequest, JobState, Report
from contest.target import Target

log = logging.getLogger(__name__)

API_VERSION = 5
_STATUS_JOBS = 8  # rebuilt jobs kept for status requests
_ROUTING_PAGE = 20_000  # routing events read at once for the targets an ended job left inside


class JobManagerError(ContestError):
    """A job cannot be found, stopped, resumed or rebuilt: unknown job ID, a job of another
    instance, or a stored job lacking its request, pause event or extended descriptor."""


class SubmissionWithdrawn(ContestError):
    """The caller withdrew a submission before its job was stored: there is no job."""


class SubmitTicket:
    """Lets a caller that gives up waiting (ConTest's ``--process-timeout``) withdraw a
    submission, so that it is never told "no job" about a job that then runs: before the job is
    stored, :meth:`withdraw` drops it; once it is being stored, :meth:`withdraw` says no and the
    caller waits for the job's ID. Used on the event loop only (no lock needed)."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = "open"

    def withdraw(self) -> bool:
        """True if the submission will create no job; False if its job is (being) stored."""
        if self._state == "open":
            self._state = "withdrawn"
        return self._state == "withdrawn"

    def commit(self) -> bool:
        """Called by the job manager just before it stores the job; False if withdrawn."""
        if self._state == "open":
            self._state = "committed"
        return self._state == "committed"


class JobStore(EventSink, EventReader, Protocol):
    """What the job manager needs from storage (``contest.storage.Storage``,
    ``contest.testing.memstore.MemoryStore``)."""

    async def store_job(self, request: JobRequest) -> int: ...

    async def get_job(self, job_id: int) -> JobRequest | None: ...

    async def list_jobs(self, **query: Unpack[JobQuery]) -> list[int]: ...

    async def store_report(self, report: Report) -> None: ...

    async def job_report(self, job_id: int) -> JobReport: ...


class JobService(Protocol):
    """The job manager as the server sees it: the form API's and the REST API's verbs, the
    store they read through, and the signal handling's pause and cancel. :class:`JobManager`
    is the one implementation; a test may hand the server a fake of it."""

    server_id: str
    store: JobStore
    instance_tag: str | None

    registry: PluginRegistry

    async def submit(
        self, descriptor: str | bytes, requestor: str, *, ticket: SubmitTicket | None = None
    ) -> int: ...

    async def stop(self, job_id: int) -> None: ...

    async def status(self, job_id: int) -> dict[str, Any]: ...

    async def status_document(self, job_id: int) -> StatusDocument: ...

    async def retry(
        self, job_id: int, requestor: str, *, ticket: SubmitTicket | None = None
    ) -> int: ...

    async def list(self, **query: Unpack[JobQuery]) -> list[int]: ...

    async def request(self, job_id: int) -> JobRequest | None: ...

    def running(self, job_id: int) -> bool: ...

    def holding(self, target_id: str) -> tuple[int, ...]: ...

    def pause_all(self) -> None: ...

    def cancel_all(self, reason: str = "") -> None: ...

    def running_jobs(self) -> Sequence[int]: ...


@dataclass
class _Entry:
    job: Job
    scope: Scope
    task: asyncio.Task[None] | None = None
    targets: list[Target] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    paused_payload: PausePayload | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str = ""  # said by JobStateCancelled (the failure summary shows it)

    def cancel(self, reason: str) -> None:
        if not self.scope.cancel.is_set():
            self.cancel_reason = reason
        self.scope.cancel.set()


class JobManager:
    """One per server process (or per ``contest run``)."""

    def __init__(
        self,
        store: JobStore,
        locker: TargetLocker,
        *,
        registry: PluginRegistry | None = None,
        server_id: str | None = None,
        instance_tag: str | None = None,
        lock_duration: float = DEFAULT_LOCK_DURATION,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        policy: hostpolicy.HostPolicy | None = None,
    ) -> None:
        self.store = store
        # what jobs may touch on this machine: the server's flags; the user's own process else
        self.policy = policy or hostpolicy.HostPolicy.unrestricted()
        self.locker = locker
        self.registry = registry or default_registry()
        self.server_id = server_id or socket.gethostname()
        self.instance_tag = instance_tag
        self.lock_duration = lock_duration
        self.jobs: dict[int, _Entry] = {}
        self.runner = JobRunner(
            sink=store,
            reader=store,
            reports=store,
            locker=locker,
            lock_duration=lock_duration,
            shutdown_timeout=shutdown_timeout,
            hold_targets=self._hold,
        )
        self._refresher: asyncio.Task[None] | None = None
        self._status_jobs: dict[int, tuple[str | None, Job]] = {}
        self._running_statuses = RunningStatuses()

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self, *, resume_jobs: bool = True) -> None:
        """Start the lock refresher, fail zombies, resume paused jobs (in that order)."""
        collector.prepare()
        self._refresher = asyncio.ensure_future(self._refresh_locks_forever())
        await self._fail_zombies()
        if resume_jobs:
            await self._resume_paused()

    def pause_all(self) -> None:
        for entry in self.jobs.values():
            entry.scope.pause.set()

    def cancel_all(self, reason: str = "") -> None:
        """Cancel every job; ``reason`` is recorded in their ``JobStateCancelled`` events."""
        for entry in self.jobs.values():
            entry.cancel(reason)

    def running_jobs(self) -> Sequence[int]:
        """The jobs this manager runs now (see :meth:`running`)."""
        return [job_id for job_id in self.jobs if self.running(job_id)]

    async def wait_all(self, timeout: float | None = None) -> bool:
        """Wait for every running job to end or pause; False on timeout."""
        tasks = [e.task for e in self.jobs.values() if e.task is not None and not e.task.done()]
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        return not pending

    async def close(self) -> None:
        """Stop refreshing; refresh the locks of paused jobs once more first, so they last one
        lock duration after we exit (the time a restart has to resume them)."""
        self._running_statuses.close()
        await self._refresh_once()
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher

    # --- the API's verbs -----------------------------------------------------------------------

    async def submit(
        self, descriptor: str | bytes, requestor: str, *, ticket: SubmitTicket | None = None
    ) -> int:
        """Validate, store and start a job. ``DescriptorValidationError`` lists every problem;
        nothing is stored then, nor when ``ticket`` was withdrawn before the job was stored
        (``SubmissionWithdrawn``).

        Decoding, validation and fetching run in a worker thread (see ``load_job_in_worker``):
        a 50,000-target descriptor takes seconds, which the event loop running the jobs and
        answering requests must not wait for. The stored descriptor, which the API serves, has
        its secrets redacted; the extended descriptor keeps them, to resume and retry the job.
        """
        limit = Limits().descriptor
        if len(descriptor) > limit:
            raise DescriptorValidationError(
                [DescriptorError("", f"the job descriptor is larger than {limit} bytes")]
            )
        built = await load_job_in_worker(descriptor, self.registry, self.policy)
        if ticket is not None and not ticket.commit():
            log.info(
                "a submission of %s was withdrawn (its caller stopped waiting): no job", requestor
            )
            raise SubmissionWithdrawn("the submission was withdrawn before its job was stored")
        desc, job = built.descriptor, built.job
        tags = list(desc.tags)
        if self.instance_tag:
            tags.append(self.instance_tag)
        job_id = await self.store.store_job(
            JobRequest(
                name=desc.job_name,
                requestor=requestor,
                server_id=self.server_id,
                descriptor=built.shown_descriptor,
                extended_descriptor=built.extended_descriptor,
                tags=tuple(dict.fromkeys(tags)),
            )
        )
        job.id = job_id
        job.requestor = requestor
        self._launch(job, None)
        return job_id

    async def stop(self, job_id: int) -> None:
        entry = self.jobs.get(job_id)
        if entry is None or entry.task is None or entry.task.done():
            raise JobManagerError(f"could not stop job: unknown job ID: {job_id}")
        entry.cancel("stopped by a stop request")
        await self._state(job_id, JobState.CANCELLING)

    async def retry(
        self, job_id: int, requestor: str, *, ticket: SubmitTicket | None = None
    ) -> int:
        """A new job from the descriptor of ``job_id``: the complete one, kept in its extended
        descriptor (the stored descriptor has its secrets redacted)."""
        req = await self.store.get_job(job_id)
        if req is None:
            raise JobManagerError(f"could not find job request with id {job_id}")
        self._check_instance(job_id, req)
        text = req.descriptor
        if req.extended_descriptor:
            ext_text = req.extended_descriptor
            text = await asyncio.to_thread(
                lambda: decode_extended_descriptor(ext_text).descriptor.to_json(indent=None)
            )
        return await self.submit(text, requestor, ticket=ticket)

    async def list(self, **query: Unpack[JobQuery]) -> list[int]:
        """The jobs ``query`` asks for; with an instance tag, only this instance's."""
        tags = list(query.get("tags") or [])
        if self.instance_tag and self.instance_tag not in tags:
            tags.append(self.instance_tag)
        mine = query.copy()
        mine["tags"] = tags or None
        return await self.store.list_jobs(**mine)

    async def status(self, job_id: int) -> dict[str, Any]:
        """ConTest's status document for ``job_id``, as a JSON value."""
        return await (await self.status_document(job_id)).json_value()

    async def status_document(self, job_id: int) -> StatusDocument:
        """ConTest's status document for ``job_id``, as the bytes to send."""
        req = await self.store.get_job(job_id)
        if req is None:
            raise JobManagerError(f"could not find job request with id {job_id}")
        self._check_instance(job_id, req)
        entry = self.jobs.get(job_id)
        if entry is not None and entry.task is not None and not entry.task.done():
            # the job running here is the one its descriptor would rebuild (which for a big one
            # takes a fraction of a second of the loop that runs it)
            job = entry.job
            running: RunningStatuses | None = self._running_statuses
        else:
            job = await self._status_job(req)
            running = None
            self._running_statuses.forget(job_id)
        return await encoded_status_document(job, req, self.store, running)

    async def request(self, job_id: int) -> JobRequest | None:
        return await self.store.get_job(job_id)

    def running(self, job_id: int) -> bool:
        """True while this manager runs ``job_id`` (neither paused nor ended): it can stop it."""
        entry = self.jobs.get(job_id)
        return entry is not None and entry.task is not None and not entry.task.done()

    def holding(self, target_id: str) -> tuple[int, ...]:
        """The jobs of this manager (running or paused) that hold ``target_id``."""
        return tuple(j for j, e in self.jobs.items() if any(t.id == target_id for t in e.targets))

    # --- running jobs --------------------------------------------------------------------------

    def _launch(self, job: Job, resume: PausePayload | None) -> None:
        entry = _Entry(job, Scope())
        self.jobs[job.id] = entry
        # the job, and every task it starts, runs under this manager's host policy
        entry.task = asyncio.get_running_loop().create_task(
            self._run(entry, resume), context=hostpolicy.job_context(self.policy)
        )

    async def _run(self, entry: _Entry, resume: PausePayload | None) -> None:
        job = entry.job
        bind_job(job.id)  # every log line of this task and the tasks it starts names the job
        try:
            await self._state(job.id, JobState.STARTED)
        except Exception as exc:
            log.error("job %d: cannot record JobStateStarted, not running it: %s", job.id, exc)
            self._forget(entry)
            return
        try:
            payload = await self.runner.run(job, entry.scope, resume)
        except Cancelled:
            reason = {"Reason": entry.cancel_reason} if entry.cancel_reason else None
            why = f" ({entry.cancel_reason})" if entry.cancel_reason else ""
            await self._close_targets(job.id, f"job {job.id} was cancelled{why}")
            await self._state(job.id, JobState.CANCELLED, reason)
            await self._leave_queue(job.id)
            self._forget(entry)
            return
        except Exception as exc:
            took = time.time() - entry.started
            if isinstance(exc, JobError | ContestError):
                msg = str(exc)
            else:
                log.exception("job %d crashed", job.id)
                msg = f"{type(exc).__name__}: {exc}"
            if entry.scope.pause.is_set():
                await self._close_targets(job.id, f"job {job.id} failed pausing")
                await self._state(
                    job.id, JobState.PAUSE_FAILED, {"Err": f"Job {job.id} failed pausing: {msg}"}
                )
            else:
                await self._close_targets(job.id, f"job {job.id} failed")
                await self._state(
                    job.id,
                    JobState.FAILED,
                    {"Err": f"Job {job.id} failed after {_go_seconds(took)}: {msg}"},
                )
            await self._leave_queue(job.id)
            self._forget(entry)
            return
        if payload is None:
            await self._state(job.id, JobState.COMPLETED)
            await self._leave_queue(job.id)
            self._forget(entry)
            return
        try:
            await self._state(job.id, JobState.PAUSED, payload.to_json_obj())
        except Exception as exc:
            await self._close_targets(job.id, f"job {job.id} failed pausing")
            await self._state(
                job.id, JobState.PAUSE_FAILED, {"Err": f"Job {job.id} failed pausing: {exc}"}
            )
            await self._leave_queue(job.id)
            # it will not be resumed: the targets it paused with are released (a DB locker's
            # rows went with the state; other lockers are told)
            if entry.targets:
                try:
                    await self.locker.unlock(job.id, entry.targets)
                except Exception as unlock_exc:
                    log.warning("job %d: cannot unlock its targets: %s", job.id, unlock_exc)
            self._forget(entry)
            return
        # paused: keep the entry so that the locks of the held targets stay refreshed
        entry.paused_payload = payload
        entry.done.set()

    def _forget(self, entry: _Entry) -> None:
        self._running_statuses.forget(entry.job.id)
        entry.done.set()
        if self.jobs.get(entry.job.id) is entry:
            del self.jobs[entry.job.id]

    def _hold(self, job_id: int, targets: Sequence[Target] | None) -> None:
        entry = self.jobs.get(job_id)
        if entry is not None:
            entry.targets = list(targets or [])

    async def _state(self, job_id: int, state: JobState, payload: Any = None) -> None:
        pending = self.store.write_framework_event(
            FrameworkEvent(job_id, state.event_name, payload, time.time())
        )
        if pending is not None:
            await pending

    # --- locks ---------------------------------------------------------------------------------

    async def _refresh_locks_forever(self) -> None:
        while True:
            await asyncio.sleep(0.9 * self.lock_duration)
            await self._refresh_once()

    async def _refresh_once(self) -> None:
        held = [e for e in self.jobs.values() if e.targets and not e.scope.cancel.is_set()]

        async def refresh(entry: _Entry) -> None:
            try:
                await self.locker.refresh_locks(entry.job.id, self.lock_duration, entry.targets)
            except Exception as exc:
                log.error("job %d: lost its target locks (%s): aborting job", entry.job.id, exc)
                entry.cancel(f"lost its target locks: {exc}")

        await asyncio.gather(*(refresh(e) for e in held))

    # --- start-up ------------------------------------------------------------------------------

    async def _fail_zombies(self) -> None:
        ids = await self.list(
            states=[JobState.STARTED, JobState.CANCELLING], server_id=self.server_id
        )
        for job_id in ids:
            if job_id in self.jobs:
                continue
            log.warning("job %d was running when this server stopped: failing it", job_id)
            await self._fail_zombie(job_id)

    async def _fail_zombie(self, job_id: int) -> None:
        """What is done to a zombie (a job whose server died while it ran): each target it left
        inside a step gets a closing ``TargetErr``, then the job is failed; with the DB locker
        the event's transaction also deletes the job's locks
        (:func:`contest.storage.jobs.free_targets_of_ended_jobs`), so its targets are free now,
        not when their lease runs out (tests/e2e/test_e2e_dead_jobs.py)."""
        req = await self.store.get_job(job_id)
        server = req.server_id if req is not None else self.server_id
        await self._close_targets(
            job_id, f"the server ({server}) stopped", f": job {job_id} failed as a zombie"
        )
        await self._state(
            job_id,
            JobState.FAILED,
            {
                "Err": f"Job {job_id} was zombieed: the server ({server}) stopped "
                "while it was running and could not pause it"
            },
        )
        await self._leave_queue(job_id)

    async def _leave_queue(self, job_id: int) -> None:
        """An ended job gives up any place in the locker's line (CONTRACTS.md, "Job end frees
        targets": the locker's API until its table's rows go in the final state's
        transaction). A failure is logged: a place in line lapses on its own."""
        try:
            await self.locker.leave_queue(job_id)
        except Exception as exc:
            log.warning("job %d: cannot leave the line for targets: %s", job_id, exc)

    async def _close_targets(self, job_id: int, cause: str, after: str = "") -> None:
        """Just before a job's final state (other than completed: a completed job left no
        target inside a step), a ``TargetErr`` for each target it left inside a step (its
        ``Error`` is :func:`contest.events.closing_error`, which summaries show as "not
        finished"). The job is ended all the same if this fails (and its DB locks are deleted
        with its state)."""
        try:
            closed = await self._close_open_targets(job_id, cause, after)
        except Exception as exc:
            log.error("job %d: cannot close the targets left in its steps: %s", job_id, exc)
        else:
            if closed:
                log.info("job %d: %d targets were inside a step when it ended", job_id, closed)

    async def _close_open_targets(self, job_id: int, cause: str, tail: str) -> int:
        """A ``TargetErr`` for each target the ended job left inside a step (``TargetIn`` with
        no ``TargetOut``/``TargetErr`` after it, in any run, test or attempt), naming the
        cause, so that no status, progress or web page shows it "in" that step forever (Go
        ConTest's test runner writes nothing for them: its statuses show them in for good).
        Reads the job's routing events a page at a time; returns how many targets it
        closed."""
        open_: dict[tuple[int, str, int, str, str], TestEvent] = {}
        after = 0
        while True:
            page = await self.store.test_events(
                TestEventQuery(
                    job_id=job_id,
                    event_names=[TARGET_IN, TARGET_OUT, TARGET_ERR],
                    after_sequence=after,
                    limit=_ROUTING_PAGE,
                )
            )
            for ev in page:
                if ev.target is None:
                    continue
                h = ev.header
                key = (h.run_id, h.test_name, h.test_attempt, h.step_label, ev.target.id)
                if ev.name == TARGET_IN:
                    open_[key] = ev
                else:
                    open_.pop(key, None)
            if len(page) < _ROUTING_PAGE or page[-1].sequence <= after:
                break  # the last page (or a store without sequence numbers: no paging)
            after = page[-1].sequence
        now = time.time()
        pending = []
        for ev in open_.values():
            assert ev.target is not None
            why = closing_error(cause, ev.header.step_label, tail)
            ack = self.store.write_test_event(
                TestEvent(ev.header, ev.target, TARGET_ERR, {"Error": why}, now)
            )
            if ack is not None:
                pending.append(ack)
        for ack in pending:
            await ack
        return len(open_)

    async def _resume_paused(self) -> None:
        for job_id in await self.list(states=[JobState.PAUSED], server_id=self.server_id):
            if job_id in self.jobs:
                continue
            try:
                req = await self.store.get_job(job_id)
                if req is None:
                    raise JobManagerError("job request not found")
                events = await self.store.framework_events(
                    FrameworkEventQuery(job_id=job_id, event_names=[JobState.PAUSED.event_name])
                )
                if not events:
                    raise JobManagerError("no JobStatePaused event")
                latest = max(events, key=lambda e: e.sequence)
                payload = PausePayload.from_json_obj(latest.payload)
                if req.extended_descriptor:  # kept out of the logs of this process too
                    secrets = await asyncio.to_thread(
                        find_secrets, req.extended_descriptor, self.registry
                    )
                    remember_secrets(secrets)
                with hostpolicy.using(self.policy):  # refused now if the flags no longer allow
                    job = await self._rebuild(req)
                job.requestor = req.requestor
            except Exception as exc:
                log.error("failed to resume job %d: %s", job_id, exc)
                await self._close_targets(job_id, f"job {job_id} could not be resumed")
                await self._state(
                    job_id, JobState.FAILED, {"Err": f"failed to resume job {job_id}: {exc}"}
                )
                await self._leave_queue(job_id)
                continue
            log.info("resuming job %d", job_id)
            self._launch(job, payload)

    async def _status_job(self, req: JobRequest) -> Job:
        """The job rebuilt for ``status``: a job's extended descriptor never changes and it
        rebuilds the same way each time (a 10,000-target job takes 0.2 s), so the last few are
        kept, by job ID, with the descriptor they came from. Only statuses read them: running
        a job always rebuilds it."""
        cached = self._status_jobs.pop(req.job_id, None)
        if cached is None or cached[0] != req.extended_descriptor:
            # a status runs nothing: it is built whatever the server's flags are now
            with hostpolicy.using(hostpolicy.HostPolicy.unrestricted()):
                job = await self._rebuild(req)
            cached = (req.extended_descriptor, job)
        self._status_jobs[req.job_id] = cached  # most recently used last
        while len(self._status_jobs) > _STATUS_JOBS:
            del self._status_jobs[next(iter(self._status_jobs))]
        return cached[1]

    async def _rebuild(self, req: JobRequest) -> Job:
        if not req.extended_descriptor:
            raise JobManagerError(f"job {req.job_id} has no extended descriptor")
        ext = decode_extended_descriptor(req.extended_descriptor)
        return await rebuild_job(ext, self.registry, req.job_id)

    def _check_instance(self, job_id: int, req: JobRequest) -> None:
        if self.instance_tag and self.instance_tag not in req.tags:
            raise JobManagerError(
                f'job {job_id} belongs to a different instance, this is "{self.instance_tag}"'
            )


def _go_seconds(seconds: float) -> str:
    from contest.golang.time import format_duration

    return format_duration(round(seconds, 6))


def state_names(names: Sequence[str]) -> list[JobState]:
    """Job state names as the API gets them (``JobStateCompleted``) -> states."""
    return [JobState.parse(n) for n in names]
