"""The job manager: starts, stops, retries, lists and reports on jobs; keeps their locks alive;
takes over the jobs nobody runs (paused ones, and those whose server died: resumed from their
stored events), or with ``--no-resume-jobs`` fails the zombies as ConTest does.

Several servers may share one database (:mod:`contest.storage.fleet`): each manager is an
instance with a unique ID, registered with a heartbeat (every lease/3) that also renews the
lease of each job it runs. A job in a running state whose lease has expired is a zombie (never
"a job of a server with my name": two servers with one name do not fail each other's jobs); a
``stop`` for a job another instance runs is left in the database for its owner, which polls for
it every 0.5 s.

Job states are framework events (``JobStateStarted``... ``JobStateCancelled``); a job's state is
its last one. Each running job has an entry here with its cancel/pause scope and the targets it
holds, whose locks a background task refreshes every 0.9 x lock duration.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Unpack

from contest import __version__, hostpolicy, metrics
from contest.checkpoint import CheckpointBook
from contest.checkpoint import load as load_checkpoint
from contest.checkpoint import record as record_checkpoint
from contest.errors import Cancelled, ContestError
from contest.events import (
    RUN_STARTED,
    TARGET_ACQUIRE_ERR,
    TARGET_ACQUIRED,
    TARGET_ERR,
    TARGET_IN,
    TARGET_INTERRUPTED,
    TARGET_OUT,
    TARGET_RELEASED,
    VARIABLE_EMITTED,
    EventReader,
    EventSink,
    FrameworkEvent,
    FrameworkEventQuery,
    TestEvent,
    TestEventQuery,
    closing_error,
)
from contest.job.build import CLEANUP_SUFFIX, load_job_in_worker, rebuild_job
from contest.job.descriptor import (
    DescriptorError,
    DescriptorValidationError,
    decode_extended_descriptor,
)
from contest.job.follow import Followers
from contest.job.model import Job
from contest.job.runner import DEFAULT_LOCK_DURATION, JobError, JobRunner, NothingAcquired
from contest.job.statusdoc import RunningStatuses, StatusDocument, encoded_status_document
from contest.job.waiting import DEFAULT_WAIT_POLL
from contest.locking import LockerUnavailable, TargetLocker
from contest.logs import bind_job
from contest.redaction import find_secrets, remember_secrets
from contest.registry import PluginRegistry, default_registry
from contest.resume import Checkpoint, PausePayload, TestShape, checkpoint_from_events
from contest.runner import interpreter
from contest.runner.test_runner import DEFAULT_SHUTDOWN_TIMEOUT
from contest.signals import Scope
from contest.storage.errors import LeaseLost, StorageUnavailable
from contest.storage.fleet import (
    STOP,
    ClaimQuery,
    Fleet,
    Instance,
    Orphan,
    ServerInfo,
    ZombieQuery,
    fleet_of,
    new_instance_id,
)
from contest.storage.jobs import ENDED_STATES
from contest.storage.limits import Limits
from contest.storage.models import JobQuery, JobReport, JobRequest, JobState, Report
from contest.target import Target

log = logging.getLogger(__name__)

API_VERSION = 5
_STATUS_JOBS = 8  # rebuilt jobs kept for status requests
_ROUTING_PAGE = 20_000  # routing events read at once for the targets an ended job left inside
DEFAULT_JOB_LEASE = 30.0  # --job-lease
COMMAND_POLL = 0.5  # how often an owner looks for commands other servers left for its jobs
REMOTE_STOP_WAIT = 2.0  # how long a stop of another server's job waits for the owner to take it
CLAIM_PERIOD_MAX = 10.0  # the claim loop runs every lease/3, at most this long apart
CLAIM_BATCH = 20  # jobs claimed in one pass at most (the next pass takes more)
CHECKPOINT_PERIOD_MAX = 10.0  # step checkpoints are stored every lease/3, at most this apart
CHECKPOINT_PERIOD_MIN = 0.2


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

    def mark_draining(self) -> None: ...

    async def servers(self) -> builtins.list[ServerInfo]: ...


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
    epoch: int = 0  # of the job's lease, claimed for this run of it: every write is fenced by it
    claimed_at: float = 0.0  # time.monotonic() of that claim
    lost: bool = False  # the lease was lost: this copy stops and writes nothing more
    ending: bool = False  # writing its final state (or pause), which deletes (lets go) the lease
    book: CheckpointBook = field(default_factory=CheckpointBook)  # its steps' checkpoints
    extended: str | None = None  # its stored extended descriptor (what a status rebuilds from)

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
        wait_poll: float = DEFAULT_WAIT_POLL,
        policy: hostpolicy.HostPolicy | None = None,
        instance: Instance | None = None,
        fleet: Fleet | None = None,
        job_lease: float = DEFAULT_JOB_LEASE,
        single_server: bool = False,
        register: bool = True,
        command_poll: float = COMMAND_POLL,
        checkpoint_period: float | None = None,
    ) -> None:
        """``instance``: this process's identity (default: a unique ID, host-pid-suffix);
        ``fleet``: the servers' shared tables (default: the store's database); ``job_lease``:
        how long a job's lease lasts without a heartbeat; ``single_server``: no other server
        can be live (SQLite under the server's file lock), so zombies are looked for at start-up
        only; ``register``: list this process among the servers (``contest run`` does not: it
        holds leases on its jobs, and serves no API); ``checkpoint_period``: how often the steps'
        checkpoints are stored (default: lease/3, within 0.2 and 10 s; 0: never)."""
        self.store = store
        # what jobs may touch on this machine: the server's flags; the user's own process else
        self.policy = policy or hostpolicy.HostPolicy.unrestricted()
        self.locker = locker
        self.registry = registry or default_registry()
        self.server_id = server_id or socket.gethostname()
        self.instance = instance or Instance(new_instance_id(), self.server_id, version=__version__)
        # a heartbeat that retried longer than its period would only delay the next one
        self.fleet: Fleet = fleet or fleet_of(store, retry_for=job_lease / 3)
        self.job_lease = job_lease
        self.single_server = single_server
        self.register = register
        self.command_poll = command_poll
        if checkpoint_period is None:
            checkpoint_period = min(
                max(job_lease / 3, CHECKPOINT_PERIOD_MIN), CHECKPOINT_PERIOD_MAX
            )
        self.checkpoint_period = checkpoint_period
        self.last_heartbeat: float | None = None  # time.monotonic() of the last one that worked
        self._beat: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._claimer: asyncio.Task[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._stopping = False  # pausing or cancelling every job: this server goes away
        self.resume_jobs = True
        self._draining: asyncio.Future[None] | None = None
        #: SIGUSR1: no new work is claimed (takeover's claim_jobs looks), jobs are handed over
        self.draining = False
        self._registered = False
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
            wait_poll=wait_poll,
        )
        self._refresher: asyncio.Task[None] | None = None
        # a write of a job refused by the storage for a stale lease stops the job's copy here
        on_lost = getattr(store, "on_lease_lost", None)
        if on_lost is not None:
            on_lost(self._on_lease_lost)
        self._status_jobs: dict[int, tuple[str | None, Job]] = {}
        self._running_statuses = RunningStatuses()
        # statuses of runs this process does not write (contest.job.follow)
        self._followers = Followers()

    # --- life cycle ----------------------------------------------------------------------------

    @property
    def instance_id(self) -> str:
        return self.instance.instance_id

    async def start(self, *, resume_jobs: bool = True, sweep_zombies: bool = True) -> None:
        """Register this instance (``InstanceConflict`` if its ID is live elsewhere), start the
        heartbeat and the lock refresher, then take the jobs nobody runs.

        ``resume_jobs`` (``--resume-jobs``, the default): the jobs of a dead server (lease
        lapsed) and the paused jobs nobody owns are claimed and resumed (:meth:`claim_jobs`),
        at start-up and, on a database other servers may share, every lease/3 after. False
        (``--no-resume-jobs``, ConTest's behaviour): zombies are failed (:meth:`_fail_zombies`)
        and paused jobs are left paused. ``sweep_zombies`` False (``contest run``): leave
        other processes' jobs alone."""
        interpreter.prepare()
        if self.register:
            # a row of this ID whose heartbeat stands still is waited for up to a lease (a
            # server of this --server-id killed a moment ago on another host)
            await self.fleet.register(
                self.instance, self.job_lease, wait=self.job_lease + self.job_lease / 3
            )
            self._registered = True
        self.last_heartbeat = time.monotonic()
        metrics.track_heartbeat(self)
        self._beat = asyncio.ensure_future(self._heartbeat_forever())
        self._poller = asyncio.ensure_future(self._poll_commands_forever())
        self.resume_jobs = resume_jobs
        shared = sweep_zombies and not self.single_server
        if shared and not resume_jobs:
            self._sweeper = asyncio.ensure_future(self._sweep_forever())
        self._refresher = asyncio.ensure_future(self._refresh_locks_forever())
        if self.checkpoint_period > 0:
            self._checkpointer = asyncio.ensure_future(self._checkpoint_forever())
        if sweep_zombies and not resume_jobs:
            await self._fail_zombies()
        if resume_jobs:
            await self.claim_jobs()
            if shared:
                self._claimer = asyncio.ensure_future(self._claim_forever())

    def pause_all(self) -> None:
        self._stopping = True  # no more jobs taken: this server is going away
        for entry in self.jobs.values():
            entry.scope.pause.set()

    def cancel_all(self, reason: str = "") -> None:
        """Cancel every job; ``reason`` is recorded in their ``JobStateCancelled`` events."""
        self._stopping = True
        for entry in self.jobs.values():
            entry.cancel(reason)

    def mark_draining(self) -> None:
        """SIGUSR1: the server takes no more requests nor claims work (the list of servers
        shows it draining). On a database other servers may share, its running jobs are handed
        over: each pauses at its next checkpoint (the pause path: ``JobStatePaused`` with its
        resume state) and its lease is let go, so that another server's claim loop resumes it
        (a paused job nobody owns); the server exits once they have paused. On SQLite (one
        server) there is nobody to hand them to: they run to their end, as ConTest's drain."""
        self.draining = True
        if self._registered:
            self._draining = asyncio.ensure_future(self._set_draining())
        if not self.single_server:
            for job_id, entry in self.jobs.items():
                if entry.task is not None and not entry.task.done():
                    log.warning("job %d: draining: pausing it to hand it over", job_id)
                    entry.scope.pause.set()

    async def _set_draining(self) -> None:
        try:
            await self.fleet.set_draining(self.instance_id)
        except Exception as exc:
            log.warning("cannot mark this server draining in the database: %s", exc)

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
        loops = (self._refresher, self._beat, self._poller, self._sweeper, self._claimer,
                 self._checkpointer)  # fmt: skip
        for task in loops:
            if task is not None:
                await _stop_loop(task)
        if self._draining is not None:
            with contextlib.suppress(Exception):  # it logged its failure
                async with asyncio.timeout(self.job_lease / 3):
                    await self._draining
        if self._registered:
            self._registered = False
            try:
                await self.fleet.unregister(self.instance_id)
            except Exception as exc:  # its heartbeat lapses: the others see it gone in a lease
                log.warning("cannot remove this server (%s) from the database: %s",
                            self.instance_id, exc)  # fmt: skip

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
        self._launch(job, None, extended=built.extended_descriptor)
        return job_id

    async def stop(self, job_id: int) -> None:
        """Cancel ``job_id``. A job another instance runs (it holds the job's lease) gets the
        stop through the database: its owner takes it within ``command_poll`` seconds; this
        waits for that (up to 2 s) so that, as ConTest's stop, it returns once the job is
        cancelling."""
        entry = self.jobs.get(job_id)
        if entry is not None and entry.ending and not entry.scope.pause.is_set():
            # its final state is being (or was just) stored: it is not running any more, as a
            # reader of that state may already see (tests/server/test_server_restapi.py,
            # test_stop_and_retry); ConTest's answer for a job that is not running
            raise JobManagerError(f"could not stop job: unknown job ID: {job_id}")
        if entry is not None and entry.task is not None and not entry.task.done():
            entry.cancel("stopped by a stop request")
            await self._state(job_id, JobState.CANCELLING)
            return
        sent = await self.fleet.send_command(job_id, STOP, self.instance_id)
        if sent is None or sent[0] == self.instance_id:
            raise JobManagerError(f"could not stop job: unknown job ID: {job_id}")
        owner, command_id = sent
        log.info("job %d runs on %s: the stop request was left for it", job_id, owner)
        deadline = time.monotonic() + REMOTE_STOP_WAIT
        # the owner is another process: its taking the command shows only in the database
        while time.monotonic() < deadline and await self.fleet.pending_command(command_id):  # noqa: ASYNC110
            await asyncio.sleep(0.05)

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
        for idle in self._followers.drop_idle():  # jobs elsewhere nobody asks about any more
            if idle not in self.jobs:
                self._running_statuses.forget(idle)
        entry = self.jobs.get(job_id)
        if entry is not None and entry.task is not None and not entry.task.done():
            # the job running here is the one its descriptor would rebuild (which for a big one
            # takes a fraction of a second of the loop that runs it), with its request's name;
            # its request is not read again (with a big job's two descriptors, a few ms of the
            # reader's thread per status ask, under twenty pollers: issue 17, perf.py's server
            # section), and it is this instance's (submitted or taken over by it)
            doc = await encoded_status_document(
                entry.job,
                None,
                self.store,
                self._running_statuses,
                self.runner.live,
                self._followers,
            )
            return doc.named(entry.job.name)
        req = self._status_request(job_id, await self.store.get_job(job_id))
        job = await self._status_job(req)
        if req.state not in ENDED_STATES:
            # running elsewhere (another server), or paused: its runs' statuses are followed
            # from the database and shared between requests, as a running job's are here
            return await encoded_status_document(
                job, req, self.store, self._running_statuses, self.runner.live, self._followers
            )
        self._running_statuses.forget(job_id)
        self._followers.forget(job_id)
        return await encoded_status_document(job, req, self.store, None, self.runner.live)

    def _status_request(self, job_id: int, req: JobRequest | None) -> JobRequest:
        if req is None:
            raise JobManagerError(f"could not find job request with id {job_id}")
        self._check_instance(job_id, req)
        return req

    async def request(self, job_id: int) -> JobRequest | None:
        return await self.store.get_job(job_id)

    def running(self, job_id: int) -> bool:
        """True while this manager runs ``job_id`` (neither paused nor ended): it can stop it."""
        entry = self.jobs.get(job_id)
        return entry is not None and entry.task is not None and not entry.task.done()

    async def servers(self) -> builtins.list[ServerInfo]:
        """The live servers of this database, with the jobs each runs (``contestcli servers``)."""
        return await self.fleet.live_servers()

    def heartbeat_age(self) -> float | None:
        """Seconds since this instance's last heartbeat that reached the database."""
        return None if self.last_heartbeat is None else time.monotonic() - self.last_heartbeat

    def holding(self, target_id: str) -> tuple[int, ...]:
        """The jobs of this manager (running or paused) that hold ``target_id``."""
        return tuple(j for j, e in self.jobs.items() if any(t.id == target_id for t in e.targets))

    # --- running jobs --------------------------------------------------------------------------

    def _launch(
        self,
        job: Job,
        resume: PausePayload | None,
        epoch: int | None = None,
        *,
        extended: str | None = None,
    ) -> None:
        """Run ``job`` (from ``resume`` if given); ``epoch``: its lease is already claimed;
        ``extended``: the extended descriptor it was built from, as stored."""
        entry = _Entry(job, Scope(), extended=extended)
        self.jobs[job.id] = entry
        # the job, and every task it starts, runs under this manager's host policy
        entry.task = asyncio.get_running_loop().create_task(
            self._run(entry, resume, epoch), context=hostpolicy.job_context(self.policy)
        )

    async def _run(self, entry: _Entry, resume: PausePayload | None, epoch: int | None) -> None:
        job = entry.job
        bind_job(job.id)  # every log line of this task and the tasks it starts names the job
        try:
            # owned before it is started: a running job always has a lease, so one without
            # is a job of a version before leases (see _find_zombies)
            if epoch is None:
                epoch = await self.fleet.claim(job.id, self.instance_id, self.job_lease)
        except Exception as exc:
            log.error("job %d: cannot claim its lease, not running it: %s", job.id, exc)
            self._forget(entry)
            return
        if epoch is None:
            log.info("job %d is run by another server: not running it here", job.id)
            self._forget(entry)
            return
        self.hold_lease(entry, epoch)
        try:
            await self._run_owned(entry, resume)
        except LeaseLost as exc:
            self._stop_copy(entry, str(exc))
        except asyncio.CancelledError:
            if not entry.lost:
                raise
        if entry.lost:
            # the lease's new owner writes the job's events and its final state, and holds
            # its targets and its place in line: nothing of them is touched here
            log.warning("job %d: this server's copy stopped (lease epoch %d lost)",
                        job.id, entry.epoch)  # fmt: skip
            self._unfence(job.id)
            self._forget(entry)

    def hold_lease(self, entry: _Entry, epoch: int) -> None:
        """This server now holds the lease of ``entry``'s job at ``epoch`` (just claimed): every
        event and state write of the job, and the DB locker's writes for it, are fenced by it
        from now on (``Storage.fence_job``). Whoever claims a job to run it calls this."""
        entry.epoch = epoch
        entry.claimed_at = time.monotonic()
        entry.lost = False
        self._fence(entry.job.id, epoch)

    def _fence(self, job_id: int, epoch: int) -> None:
        fence = getattr(self.store, "fence_job", None)
        if fence is not None:
            fence(job_id, self.instance_id, epoch)

    def _unfence(self, job_id: int) -> None:
        unfence = getattr(self.store, "unfence_job", None)
        if unfence is not None:
            unfence(job_id)

    def _on_lease_lost(self, job_id: int, epoch: int) -> None:
        """The storage refused a write of the job: this server's lease on it is stale."""
        entry = self.jobs.get(job_id)
        if entry is not None and entry.epoch == epoch:
            self._stop_copy(entry, "a write of it was refused: its lease is held elsewhere")

    def _stop_copy(self, entry: _Entry, why: str) -> None:
        """This server lost the job's lease (taken by another server, lapsed, or a write was
        refused): stop its copy here at once, writing nothing (the storage refuses its writes
        from now on). The steps are cancelled; a copy still running half a lease later is
        cancelled outright, so that it is gone within one lease."""
        if entry.lost:
            return
        entry.lost = True
        job_id = entry.job.id
        log.error("job %d: lost its lease (epoch %d): %s; stopping this server's copy of it",
                  job_id, entry.epoch, why)  # fmt: skip
        mark = getattr(self.store, "mark_lost", None)
        if mark is not None:
            mark(job_id, entry.epoch)
        entry.cancel(f"this server lost the job's lease: {why}")
        task = entry.task
        if task is not None and not task.done():
            asyncio.get_running_loop().call_later(
                self.job_lease / 2, lambda: task.done() or task.cancel()
            )

    async def _run_owned(self, entry: _Entry, resume: PausePayload | None) -> None:
        """Run the job whose lease this server holds: every outcome ends with its final state
        or its pause, unless the lease is lost (then :class:`LeaseLost`, nothing written)."""
        job = entry.job
        try:
            await self._state(job.id, JobState.STARTED)
        except LeaseLost:
            raise
        except Exception as exc:
            log.error("job %d: cannot record JobStateStarted, not running it: %s", job.id, exc)
            self._unfence(job.id)
            await self._drop_lease(job.id, paused=True)
            self._forget(entry)
            return
        try:
            payload = await self.runner.run(job, entry.scope, resume, checkpoints=entry.book)
        except Cancelled:
            self._check_held(entry)
            reason = {"Reason": entry.cancel_reason} if entry.cancel_reason else None
            why = f" ({entry.cancel_reason})" if entry.cancel_reason else ""
            await self._close_targets(job.id, f"job {job.id} was cancelled{why}")
            await self._state(job.id, JobState.CANCELLED, reason)
            await self._ended(entry)
            return
        except Exception as exc:
            self._check_held(entry)
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
                    {"Err": _failure(job.id, took, exc, msg)},
                )
            await self._ended(entry)
            return
        self._check_held(entry)
        if payload is None:
            await self._state(job.id, JobState.COMPLETED)
            await self._ended(entry)
            return
        try:
            await self._state(job.id, JobState.PAUSED, payload.to_json_obj())
        except LeaseLost:
            raise
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
            self._unfence(job.id)
            await self._drop_lease(job.id)
            self._forget(entry)
            return
        # paused: keep the entry so that the locks of the held targets stay refreshed; the
        # lease lapses, for whichever server resumes the job to claim (unfenced first: the
        # locks of a paused job are refreshed without a lease)
        self._unfence(job.id)
        await self._drop_lease(job.id, paused=True)
        entry.paused_payload = payload
        entry.done.set()

    def _check_held(self, entry: _Entry) -> None:
        """Before a job's final writes: a copy whose lease was lost while it ran writes none.
        From here on the heartbeat leaves the job alone (its final state deletes its lease:
        not a loss); the writes themselves stay fenced."""
        if entry.lost:
            raise LeaseLost(entry.job.id, entry.epoch, "lost while the job ran")
        entry.ending = True

    async def _ended(self, entry: _Entry) -> None:
        """After the job's final state: its place in line, its lease, its entry."""
        await self._leave_queue(entry.job.id)
        self._unfence(entry.job.id)
        await self._drop_lease(entry.job.id)
        self._forget(entry)

    async def _drop_lease(self, job_id: int, *, paused: bool = False) -> None:
        """After the job's final state (or its pause): forget (or let lapse) its lease. A
        failure is only logged: a lease left behind expires, and is of a job no longer running
        (a final state is stored first) or claimable again (a paused one)."""
        try:
            if paused:
                await self.fleet.release(job_id, self.instance_id)
            else:
                await self.fleet.forget(job_id)
        except Exception as exc:
            log.warning("job %d: cannot drop its lease: %s", job_id, exc)

    def _forget(self, entry: _Entry) -> None:
        self._running_statuses.forget(entry.job.id)
        self._followers.forget(entry.job.id)
        if entry.extended is not None:
            # the job it ran is the one a status of it would rebuild: kept for those, the
            # first status asked after the end does not rebuild a big job on the loop that runs
            # the others (0.1-0.2 s at 10,000 targets: issue 17, benchmarks/perf.py's server
            # section, whose pollers ask as the job ends)
            self._keep_status_job(entry.job.id, (entry.extended, entry.job))
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

    # --- step checkpoints (contest.checkpoint) ---------------------------------------------------

    async def _checkpoint_forever(self) -> None:
        """Every checkpoint period: store the step checkpoints of the jobs running here."""
        while True:
            await asyncio.sleep(self.checkpoint_period)
            await self._checkpoint_once()

    async def _checkpoint_once(self) -> None:
        """Store each running job's checkpoint that changed, fenced by its lease (a copy that
        lost it stops here); a failure is logged, and tried again next period. Jobs that are
        pausing or ending are left alone: their pause, or final state, is what counts."""

        async def one(entry: _Entry) -> None:
            try:
                async with asyncio.timeout(self.job_lease):
                    await record_checkpoint(self.store, entry.book, entry.job.id)
            except LeaseLost as exc:
                if not entry.ending:
                    self._stop_copy(entry, str(exc))
            except Exception as exc:
                log.warning("job %d: cannot store its step checkpoint: %s", entry.job.id, exc)

        await asyncio.gather(
            *(
                one(e)
                for e in list(self.jobs.values())
                if e.epoch and not (e.lost or e.ending or e.task is None or e.task.done())
                and not (e.scope.pause.is_set() or e.scope.cancel.is_set())
            )
        )  # fmt: skip

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
            except LeaseLost as exc:
                self._stop_copy(entry, str(exc))
            except (LockerUnavailable, StorageUnavailable) as exc:
                # the database is away: the locks are in it, where nobody can take them
                # meanwhile; the job is suspended with its events, not aborted (tried again
                # next period, and a lock that did lapse shows as a conflict then)
                log.warning("job %d: cannot refresh its target locks now: %s", entry.job.id, exc)
            except Exception as exc:
                log.error("job %d: lost its target locks (%s): aborting job", entry.job.id, exc)
                entry.cancel(f"lost its target locks: {exc}")

        await asyncio.gather(*(refresh(e) for e in held))

    # --- the fleet: heartbeat, zombies, commands ----------------------------------------------

    async def _heartbeat_forever(self) -> None:
        """Every lease/3: stamp this instance's heartbeat and renew its jobs' leases. A
        heartbeat that fails (the database is down) is retried sooner, with backoff, and never
        ends the server: if it stays down past a lease, the leases lapse."""
        period = self.job_lease / 3
        delay, failures = period, 0
        while True:
            await asyncio.sleep(delay)
            began = time.monotonic()
            try:
                # bounded: a connection that hangs without an error is a failure too
                beat = self.fleet.heartbeat(
                    self.instance, self.job_lease, registered=self._registered
                )
                async with asyncio.timeout(self.job_lease):  # not wait_for: see _stop_loop
                    back = await beat
            except Exception as exc:
                failures += 1
                delay = min(period, 0.1 * 2**failures)
                log.warning("heartbeat failed (%d in a row): %s; retrying in %.2f s",
                            failures, exc, delay)  # fmt: skip
                continue
            if failures:
                log.info("heartbeat reached the database again after %d failures", failures)
            if back:
                log.warning("this server (%s) had been removed from the database as dead (its "
                            "heartbeat lapsed): registered again", self.instance_id)  # fmt: skip
            self.last_heartbeat = time.monotonic()
            delay, failures = period, 0
            try:
                async with asyncio.timeout(self.job_lease):
                    await self._check_leases(began)
            except Exception as exc:
                log.warning("cannot read the leases of this server's jobs: %s", exc)

    async def _check_leases(self, before: float) -> None:
        """After a heartbeat: the running jobs (claimed before ``before``) whose lease is no
        longer this server's at the epoch it claimed (another server holds it, it lapsed, or
        the job ended elsewhere) are lost: their copies here stop, writing nothing more."""
        held = {
            job_id: entry
            for job_id, entry in self.jobs.items()
            if entry.epoch and not entry.lost and not entry.ending and entry.claimed_at < before
            and entry.task is not None and not entry.task.done()
        }  # fmt: skip
        if not held:
            return
        leases = await self.fleet.lease_info(held)
        for job_id, entry in held.items():
            lease = leases.get(job_id)
            if lease is not None and lease.held_by(self.instance_id, entry.epoch):
                continue
            if entry.task is None or entry.task.done() or entry.lost or entry.ending:
                continue  # it ended (or paused) meanwhile: its lease went with it
            if lease is None:
                why = "its lease is gone (the job ended elsewhere)"
            elif lease.owner != self.instance_id or lease.epoch != entry.epoch:
                why = f"{lease.owner} holds its lease now (epoch {lease.epoch})"
            else:
                why = "its lease lapsed (no heartbeat renewed it in time)"
            self._stop_copy(entry, why)

    async def _sweep_forever(self) -> None:
        """On a database other servers may share: look for zombies once a lease (a task of its
        own, so that failing zombies never delays this server's heartbeat)."""
        while True:
            await asyncio.sleep(self.job_lease)
            try:
                await self._fail_zombies()
            except Exception as exc:
                log.error("looking for zombie jobs failed: %s", exc)

    async def _poll_commands_forever(self) -> None:
        """Apply the commands other servers left for this instance's running jobs."""
        while True:
            await asyncio.sleep(self.command_poll)
            if not self.running_jobs():
                continue  # commands are left only for jobs whose lease is held: none here
            try:
                commands = await self.fleet.take_commands(self.instance_id)
            except Exception as exc:
                log.warning("cannot read the commands left for this server: %s", exc)
                continue
            for job_id, command in commands:
                if command != STOP:
                    log.warning("job %d: unknown command %r left for it: ignored", job_id, command)
                    continue
                entry = self.jobs.get(job_id)
                if entry is None or entry.task is None or entry.task.done():
                    continue  # it ended meanwhile
                log.info("job %d: stopped through another server", job_id)
                try:
                    await self.stop(job_id)
                except Exception as exc:
                    log.error("job %d: a stop through another server failed: %s", job_id, exc)

    async def _find_zombies(self) -> builtins.list[int]:
        """WHICH jobs are zombies, and the one place that decides it: the jobs in a running
        state (of this instance tag) whose lease has expired by the database's clock; on a
        single-server database (SQLite under the server's file lock) also those whose owner is
        another registered server, all of which are dead; and, judged as ConTest judged them,
        the running jobs without a lease that carry this server's ID (written by a version
        before leases). Each zombie is claimed before it is returned, so that of two servers
        sweeping at once only one handles it."""
        query = ZombieQuery(
            me=self.instance_id,
            single_server=self.single_server,
            legacy_server_id=self.server_id,
            tags=(self.instance_tag,) if self.instance_tag else (),
        )
        out = []
        for zombie in await self.fleet.zombies(query):
            if zombie.job_id in self.jobs:
                continue
            # a known-dead owner's lease is taken even before it expires (single server)
            dead_owner = zombie.owner if self.single_server else None
            claimed = await self.fleet.claim(
                zombie.job_id, self.instance_id, self.job_lease, take_from=dead_owner
            )
            if claimed is None:
                continue  # another server handles it
            # its writes are fenced by the epoch just claimed (and no longer refused if this
            # server had lost the job's copy earlier)
            fence = getattr(self.store, "fence_job", None)
            if fence is not None:
                fence(zombie.job_id, self.instance_id, claimed)
            log.warning("job %d was run by %s, whose lease has lapsed: a zombie", zombie.job_id,
                        zombie.owner or f"server {zombie.server_id} (no lease)")  # fmt: skip
            out.append(zombie.job_id)
        return out

    async def _prune_servers(self) -> None:
        try:
            await self.fleet.prune_servers(self.instance_id, single_server=self.single_server)
        except Exception as exc:
            log.warning("cannot remove dead servers from the database: %s", exc)

    # --- start-up ------------------------------------------------------------------------------

    async def _fail_zombies(self) -> None:
        """WHEN: at start-up, and once a lease on a database others may share (the sweeper);
        WHICH: :meth:`_find_zombies`; WHAT is done to each: :meth:`_fail_zombie`."""
        ids = await self._find_zombies()
        await self._prune_servers()
        for job_id in ids:
            if job_id in self.jobs:
                continue
            log.warning("job %d was running when its server stopped: failing it", job_id)
            await self._fail_zombie(job_id)

    async def _fail_zombie(self, job_id: int) -> None:
        """What is done to a zombie (a job whose server died while it ran): each target it left
        inside a step gets a closing ``TargetErr``, then the job is failed; with the DB locker
        the event's transaction also deletes the job's locks
        (:func:`contest.storage.jobs.free_targets_of_ended_jobs`), so its targets are free now,
        not when their lease runs out (tests/e2e/test_e2e_dead_jobs.py). Its job lease is ours
        (claimed by :meth:`_find_zombies`) and goes last, as after any final state."""
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
        self._unfence(job_id)
        await self._drop_lease(job_id)

    async def _leave_queue(self, job_id: int) -> None:
        """An ended job gives up any place in the locker's line (a DB locker's rows went with
        the final state's transaction already; other lockers are told here). The job's writes
        are unfenced first: its lease went with its final state too, and a fenced write of a
        job with no lease would be refused as a lost lease. A failure is logged: a place in
        line lapses on its own."""
        self._unfence(job_id)
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
                    event_names=[TARGET_IN, TARGET_OUT, TARGET_ERR, TARGET_INTERRUPTED],
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

    # --- takeover: jobs nobody runs --------------------------------------------------------------

    async def _claim_forever(self) -> None:
        """On a database other servers may share: every lease/3 (at most 10 s apart), take the
        jobs whose server died and the paused jobs nobody owns (a task of its own, so that
        resuming jobs never delays the heartbeat)."""
        period = min(max(self.job_lease / 3, 0.2), CLAIM_PERIOD_MAX)
        while True:
            await asyncio.sleep(period)
            try:
                async with asyncio.timeout(self.job_lease):
                    await self.claim_jobs()
            except Exception as exc:
                log.error("claiming jobs nobody runs failed: %s", exc)

    async def claim_jobs(self) -> builtins.list[int]:
        """One pass of the claim loop: claim (raising each lease's epoch) and resume the jobs
        whose lease lapsed by the database's clock (their server died: resumed from their
        stored events, :meth:`_checkpoint`) and the paused jobs nobody owns (resumed from their
        pause: a clean stop or a drain left them). Nothing while this server drains or stops.
        Returns the jobs resumed here."""
        if self._draining is not None or self._stopping:
            return []
        query = ClaimQuery(
            me=self.instance_id,
            single_server=self.single_server,
            legacy_server_id=self.server_id,
            # ConTest resumes only its own ServerID's paused jobs: kept where one server is all
            # there is (SQLite); servers sharing a database take each other's (a drain)
            paused_server_id=self.server_id if self.single_server else None,
            tags=(self.instance_tag,) if self.instance_tag else (),
            limit=CLAIM_BATCH,
            skip=tuple(self.jobs),
        )
        orphans = await self.fleet.claim_orphans(query, self.job_lease)
        await self._prune_servers()
        resumed = []
        for orphan in orphans:
            entry = self.jobs.get(orphan.job_id)
            if entry is not None:  # started or paused here meanwhile
                if entry.paused_payload is not None:  # paused as this server stops: let go
                    await self._drop_lease(orphan.job_id, paused=True)
                continue
            if self._stopping:  # stopping meanwhile: leave it to the others (or the restart)
                await self._drop_lease(orphan.job_id, paused=True)
                continue
            if await self._resume(orphan):
                resumed.append(orphan.job_id)
        return resumed

    async def _resume(self, orphan: Orphan) -> bool:
        """Resume a claimed job: from its pause, or from where its stored events leave it. A
        job that cannot be resumed (no request, a descriptor the host policy now refuses, a
        broken pause payload) is failed, as ConTest fails a paused job it cannot resume."""
        job_id = orphan.job_id
        # fenced at the epoch just claimed before anything is written for it: what this server
        # writes to resume the job (TargetInterrupted, a failure) must not be checked against
        # an older claim of its own whose lease it lost (an outage longer than the lease)
        self._fence(job_id, orphan.epoch)
        try:
            req = await self.store.get_job(job_id)
            if req is None:
                raise JobManagerError("job request not found")
            if req.extended_descriptor:  # kept out of the logs of this process too
                secrets = await asyncio.to_thread(
                    find_secrets, req.extended_descriptor, self.registry
                )
                remember_secrets(secrets)
            with hostpolicy.using(self.policy):  # refused now if the flags no longer allow
                job = await self._rebuild(req)
            job.requestor = req.requestor
            if req.state == JobState.CANCELLING:
                await self._finish_cancel(job_id, orphan.owner)
                return False
            payload: PausePayload | None
            found = Checkpoint(None)
            if orphan.paused:
                payload = await self._pause_payload(job_id)
                interrupted = 0
            else:
                found = await self._checkpoint(job)
                payload = found.payload
                interrupted = await self._mark_interrupted(found, orphan.owner)
        except Exception as exc:
            log.error("failed to resume job %d: %s", job_id, exc)
            await self._close_targets(job_id, f"job {job_id} could not be resumed")
            await self._state(
                job_id, JobState.FAILED, {"Err": f"failed to resume job {job_id}: {exc}"}
            )
            await self._leave_queue(job_id)
            await self._drop_lease(job_id)
            return False
        if self._stopping:  # stopping meanwhile: its lease lapses for the others (or restart)
            await self._drop_lease(job_id, paused=True)
            return False
        if orphan.paused:
            log.info("resuming job %d", job_id)
        else:
            log.warning("job %d was run by %s, whose lease has lapsed: taking it over (%s, %d "
                        "targets resume in their step from its checkpoint, %d re-enter the "
                        "step they were in)", job_id, orphan.owner, _where(payload),
                        len(found.kept), interrupted)  # fmt: skip
        self._launch(job, payload, orphan.epoch, extended=req.extended_descriptor)
        return True

    async def _finish_cancel(self, job_id: int, owner: str | None) -> None:
        """A job whose server died while cancelling it was stopped: it is not resumed but
        cancelled, as its server would have ended it (closing TargetErrs, JobStateCancelled,
        its targets freed with the state)."""
        why = f"stopped; its server ({owner or 'unknown'}) died while cancelling it"
        log.warning("job %d: %s: cancelled", job_id, why)
        await self._close_targets(job_id, f"job {job_id} was cancelled ({why})")
        await self._state(job_id, JobState.CANCELLED, {"Reason": why})
        await self._leave_queue(job_id)
        await self._drop_lease(job_id)

    async def _pause_payload(self, job_id: int) -> PausePayload:
        events = await self.store.framework_events(
            FrameworkEventQuery(job_id=job_id, event_names=[JobState.PAUSED.event_name])
        )
        if not events:
            raise JobManagerError("no JobStatePaused event")
        latest = max(events, key=lambda e: e.sequence)
        return PausePayload.from_json_obj(latest.payload)

    async def _checkpoint(self, job: Job) -> Checkpoint:
        """Where a job whose server died stood, from its stored events (the runs it started,
        and its last run's acquisition, routing, release and variable events, read a page at
        a time) and its steps' stored checkpoint (:mod:`contest.checkpoint`): see
        :func:`contest.resume.checkpoint_from_events`."""
        runs = await self.store.framework_events(
            FrameworkEventQuery(job_id=job.id, event_names=[RUN_STARTED])
        )
        started = [
            int(e.payload["RunID"])
            for e in runs
            if isinstance(e.payload, dict) and isinstance(e.payload.get("RunID"), int)
        ]
        events: builtins.list[TestEvent] = []
        if started:
            after = 0
            while True:
                page = await self.store.test_events(
                    TestEventQuery(
                        job_id=job.id,
                        run_id=max(started),
                        event_names=[
                            TARGET_ACQUIRED, TARGET_ACQUIRE_ERR, TARGET_RELEASED,
                            TARGET_IN, TARGET_OUT, TARGET_ERR, TARGET_INTERRUPTED,
                            VARIABLE_EMITTED,
                        ],
                        after_sequence=after,
                        limit=_ROUTING_PAGE,
                    )
                )  # fmt: skip
                events.extend(page)
                if len(page) < _ROUTING_PAGE or page[-1].sequence <= after:
                    break
                after = page[-1].sequence
        shapes = [
            TestShape(
                name=jt.name,
                labels=[b.label for b in jt.test.steps],
                cleanup_labels=[b.label for b in jt.test.cleanup_steps],
                cleanup_name=jt.name + CLEANUP_SUFFIX,
                num_retries=jt.num_retries,
            )
            for jt in job.tests
        ]
        stored = await load_checkpoint(self.store, job.id)
        return checkpoint_from_events(
            job.id, shapes, started, events, now=time.time(), stored=stored
        )

    async def _mark_interrupted(self, checkpoint: Checkpoint, owner: str | None) -> int:
        """A ``TargetInterrupted`` for each target that was inside a step when its server
        died: that attempt stays in the events, marked; the target enters the step again."""
        now = time.time()
        pending = []
        for ev in checkpoint.interrupted:
            payload = {"Server": owner or "", "By": self.instance_id}
            ack = self.store.write_test_event(
                TestEvent(ev.header, ev.target, TARGET_INTERRUPTED, payload, now)
            )
            if ack is not None:
                pending.append(ack)
        for ack in pending:
            await ack
        return len(checkpoint.interrupted)

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
        self._keep_status_job(req.job_id, cached)
        return cached[1]

    def _keep_status_job(self, job_id: int, kept: tuple[str | None, Job]) -> None:
        self._status_jobs.pop(job_id, None)
        self._status_jobs[job_id] = kept  # most recently used last
        while len(self._status_jobs) > _STATUS_JOBS:
            del self._status_jobs[next(iter(self._status_jobs))]

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


async def _stop_loop(task: asyncio.Task[None]) -> None:
    """Cancel one of the manager's background loops and wait for it to end, cancelling it
    again until it does: on Python 3.11, ``asyncio.wait_for`` returns the inner result instead
    of raising when the cancellation arrives just as the inner call completes (CPython
    gh-86296), and the loop would go on to its next sleep; a single cancel-and-await then
    never returns (the teardown hang of tests/jobs/test_job_manager_fleet.py)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    if not task.cancelled() and task.exception() is not None:
        log.error("a background loop of the job manager failed: %r", task.exception())


def _failure(job_id: int, took: float, exc: Exception, msg: str) -> str:
    """A failed job's error: ConTest's "Job 3 failed after 1.5s: ..."; for a job that tested
    nothing, its acquisition's error as it is (it failed before it ran: the contract of
    tests/jobs/test_target_wait.py)."""
    if isinstance(exc, NothingAcquired):
        return msg
    return f"Job {job_id} failed after {_go_seconds(took)}: {msg}"


def _where(payload: PausePayload | None) -> str:
    if payload is None:
        return "from its start"
    return f"run {payload.run_id}, test {payload.test_index + 1}, attempt {payload.attempt + 1}"


def _go_seconds(seconds: float) -> str:
    from contest.golang.time import format_duration

    return format_duration(round(seconds, 6))


def state_names(names: Sequence[str]) -> list[JobState]:
    """Job state names as the API gets them (``JobStateCompleted``) -> states."""
    return [JobState.parse(n) for n in names]
