"""Job-manager fixtures: a job manager over every kind of store, with both target lockers.

``jm_env`` is parametrized over :data:`STORES`: the in-memory store with the in-memory locker,
and SQLite, MariaDB and PostgreSQL storage, each with the DB locker on the same database (as a
server runs it); SQLite also with the in-memory locker (as ``contest run`` does). Each SQL kind
has one throw-away database for the whole session (``contest.testing.databases``), emptied
before every test (jobs, events, reports and target locks), and dropped at the end.

Everything the tests need besides the store is on :class:`JobEnv`: job managers (stopped at
teardown), ConTest's integration descriptors, polling for job states, a target's event log and
the lock check ConTest's job manager suite makes. The test modules import nothing from here
(``tests/jobs`` is not a package): they get it all through the fixtures.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from contest.events import FrameworkEvent, FrameworkEventQuery, TestEventQuery
from contest.job.manager import JobManager
from contest.locking import TargetLocker
from contest.plugins.targetlockers import dblocker
from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.registry import PluginRegistry, default_registry
from contest.storage import JobReport, JobState, Storage, open_storage
from contest.storage.models import STATE_EVENT_NAMES
from contest.testing.databases import Kind, server_available, temporary_database
from contest.testing.memstore import MemoryStore

#: (store, locker) pairs every job-manager catalog test runs on
STORES: list[tuple[str, str]] = [
    ("memory", "inmemory"),
    ("sqlite", "inmemory"),
    ("sqlite", "dblocker"),
    ("mariadb", "dblocker"),
    ("postgresql", "dblocker"),
]
SERVER_ID = "jm-test-server"
#: ConTest's integration descriptors use these two targets
TARGETS = ("id1", "id2")
#: a job ID no test job ever gets, for probing locks (ConTest's ``fakeJobID``)
PROBE_JOB = 987_654_321


# --- one database per kind per session -------------------------------------------------------


def _database(kind: Kind, factory: pytest.TempPathFactory) -> Iterator[str]:
    if not server_available(kind):
        pytest.fail(f"no {kind} server: the tests need it running (see .ci/run)")
    with temporary_database(kind, factory.mktemp(f"jobs-{kind}")) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _database("sqlite", tmp_path_factory)


@pytest.fixture(scope="session")
def mariadb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _database("mariadb", tmp_path_factory)


@pytest.fixture(scope="session")
def postgresql_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _database("postgresql", tmp_path_factory)


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each kind of SQL test database in turn (not emptied: the user does that)."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


# --- descriptors -------------------------------------------------------------------------------


def step(name: str, label: str | None, **params: Any) -> dict[str, Any]:
    """One literal step; each parameter value becomes a one-element list (``"x"`` -> ``["x"]``)
    unless it is a list already."""
    out: dict[str, Any] = {"name": name}
    if label is not None:
        out["label"] = label
    out["parameters"] = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    return out


def descriptor(
    steps: Sequence[Any],
    *,
    test_name: str = "IntegrationTest",
    runs: int = 1,
    run_interval: str = "1s",
    extra_tags: Sequence[str] = (),
    cleanup: Sequence[Any] | None = None,
    targets: Sequence[str] = TARGETS,
    target_manager: str = "TargetList",
    run_reporters: Sequence[dict[str, Any]] | None = None,
    final_reporters: Sequence[dict[str, Any]] | None = None,
) -> str:
    """A job as ConTest's job manager integration suite writes them: TargetList with ``id1`` and
    ``id2`` (with a ``Name`` Go ignores), the literal fetcher, version 1.0, the tag
    ``integration_testing``, the run reporter TargetSuccess ``>0%`` (and the obsolete top-level
    ``ReporterName``/``ReporterParameters`` the suite still carries, which Go ignores)."""
    td: dict[str, Any] = {
        "TargetManagerName": target_manager,
        "TargetManagerAcquireParameters": {
            "Targets": [
                {"ID": t, "Name": f"hostname{i}.example.com"} for i, t in enumerate(targets, 1)
            ]
        },
        "TargetManagerReleaseParameters": {},
        "TestFetcherName": "literal",
        "TestFetcherFetchParameters": {"Steps": list(steps), "TestName": test_name},
    }
    if cleanup is not None:
        td["CleanupFetcherName"] = "literal"
        td["CleanupFetcherFetchParameters"] = {
            "Steps": list(cleanup),
            "TestName": "IntegrationTest: cleanup",
        }
    reporting: dict[str, Any] = {
        "RunReporters": list(run_reporters)
        if run_reporters is not None
        else [{"Name": "TargetSuccess", "Parameters": {"SuccessExpression": ">0%"}}]
    }
    if final_reporters:
        reporting["FinalReporters"] = list(final_reporters)
    return json.dumps(
        {
            "JobName": "test job",
            "Version": "1.0",
            "ReporterName": "TargetSuccess",
            "ReporterParameters": {"SuccessExpression": ">10%"},
            "Runs": runs,
            "RunInterval": run_interval,
            "Tags": ["integration_testing", *extra_tags],
            "TestDescriptors": [td],
            "Reporting": reporting,
        },
        indent=2,
    )


# --- the environment -----------------------------------------------------------------------------


@dataclass
class JobEnv:
    """A store, a locker and the job managers a test makes on them."""

    kind: str
    locker_kind: str
    store: Any  # Storage | MemoryStore
    locker: TargetLocker
    registry: PluginRegistry = field(default_factory=default_registry)
    managers: list[JobManager] = field(default_factory=list)
    lockers: list[TargetLocker] = field(default_factory=list)

    # descriptors, for the tests (which cannot import this module)
    step = staticmethod(step)
    descriptor = staticmethod(descriptor)
    TARGETS = TARGETS
    SERVER_ID = SERVER_ID

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.locker_kind}"

    # --- managers --------------------------------------------------------------------------

    def restarted_locker(self) -> TargetLocker:
        """The locker a restarted server would have: a new DBLocker on the same database, or
        the same in-memory locker (whose locks live as long as the process)."""
        if self.locker_kind == "dblocker":
            locker = dblocker.new(engine=self.store.engine)
            self.lockers.append(locker)
            return locker
        return self.locker

    def manager(
        self,
        *,
        locker: TargetLocker | None = None,
        server_id: str = SERVER_ID,
        instance_tag: str | None = None,
        registry: PluginRegistry | None = None,
        wait_poll: float = 0.05,
        lock_duration: float = 60.0,
        shutdown_timeout: float = 3.0,
        **fleet: Any,
    ) -> JobManager:
        """``fleet``: the job manager's fleet options (``job_lease``, ``instance``...)."""
        jm = JobManager(
            self.store,
            locker or self.locker,
            registry=registry or self.registry,
            server_id=server_id,
            instance_tag=instance_tag,
            wait_poll=wait_poll,
            lock_duration=lock_duration,
            shutdown_timeout=shutdown_timeout,
            **fleet,
        )
        self.managers.append(jm)
        return jm

    async def started(self, *, resume_jobs: bool = False, **kw: Any) -> JobManager:
        jm = self.manager(**kw)
        await jm.start(resume_jobs=resume_jobs)
        return jm

    async def pause_and_exit(self, jm: JobManager, timeout: float = 3.0) -> None:
        """What a paused server does: pause every job, wait for them, stop refreshing."""
        jm.pause_all()
        assert await jm.wait_all(timeout), f"jobs did not pause within {timeout} s"
        await jm.close()

    async def cancel_and_exit(self, jm: JobManager, timeout: float = 2.0) -> None:
        jm.cancel_all()
        assert await jm.wait_all(timeout), f"jobs did not stop within {timeout} s"
        await jm.close()

    async def shutdown(self) -> None:
        for jm in self.managers:
            jm.cancel_all()
            await jm.wait_all(10.0)
            await jm.close()
        for locker in self.lockers:
            await locker.close()

    # --- states and events -------------------------------------------------------------------

    async def flush(self) -> None:
        if isinstance(self.store, Storage):
            await self.store.flush()

    async def state_events(self, job_id: int) -> list[FrameworkEvent]:
        return await self.store.framework_events(
            FrameworkEventQuery(job_id=job_id, event_names=sorted(STATE_EVENT_NAMES))
        )

    async def states(self, job_id: int) -> list[str]:
        """The names of the job's state events, in order."""
        return [e.name for e in await self.state_events(job_id)]

    async def events_named(self, job_id: int, name: str) -> list[FrameworkEvent]:
        return await self.store.framework_events(
            FrameworkEventQuery(job_id=job_id, event_names=[name])
        )

    async def wait_for(self, job_id: int, state: JobState | str, timeout: float = 5.0) -> None:
        """Until the job has a ``state`` event (fails after ``timeout`` with what it has)."""
        name = state.event_name if isinstance(state, JobState) else state
        deadline = time.monotonic() + timeout
        while True:
            names = await self.states(job_id)
            if name in names:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job_id}: no {name} within {timeout} s; its states: {names}"
                )
            await asyncio.sleep(0.02)

    async def wait_until(self, what: str, check: Any, timeout: float = 5.0) -> None:
        """Until ``await check()`` is true."""
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s: {what}")
            await asyncio.sleep(0.02)

    async def target_log(
        self, job_id: int, target_id: str, test_names: Sequence[str] | None = None
    ) -> list[tuple[int, str, int, str, str]]:
        """(run, test name, attempt, step label, event) of one target's events, as ConTest's
        ``GetTestEventsAsString`` lists them."""
        events = await self.store.test_events(
            TestEventQuery(
                job_id=job_id,
                test_names=list(test_names) if test_names is not None else None,
                target_ids=[target_id],
            )
        )
        return [
            (
                e.header.run_id,
                e.header.test_name,
                e.header.test_attempt,
                e.header.step_label,
                e.name,
            )
            for e in events
        ]

    async def report(self, job_id: int) -> JobReport:
        report: JobReport = await self.store.job_report(job_id)
        return report

    # --- locks -------------------------------------------------------------------------------

    async def locked(self, target_ids: Sequence[str] = TARGETS) -> list[str]:
        """Which of the targets some job holds: try-lock them all as a job of nobody's, give
        back what we got (ConTest's ``verifyTargetLockStatus``)."""
        probe = self.restarted_locker()
        got = await probe.try_lock(PROBE_JOB, 1.0, list(target_ids), len(target_ids))
        if got:
            await probe.unlock(PROBE_JOB, got)
        return [t for t in target_ids if t not in got]


def _make_env(kind: str, locker_kind: str, store: Any) -> JobEnv:
    if locker_kind == "dblocker":
        locker: TargetLocker = dblocker.new(engine=store.engine)
    else:
        locker = InMemoryLocker()
    env = JobEnv(kind, locker_kind, store, locker)
    env.lockers.append(locker)
    return env


@pytest.fixture(params=STORES, ids=[f"{s}-{lk}" for s, lk in STORES])
async def jm_env(request: pytest.FixtureRequest) -> AsyncIterator[JobEnv]:
    """A clean store and locker of each kind; the managers made on it are stopped afterwards."""
    kind, locker_kind = request.param
    if kind == "memory":
        store: Any = MemoryStore()
    else:
        url = request.getfixturevalue(f"{kind}_url")
        store = await open_storage(url)
        await store.reset()
    env = _make_env(kind, locker_kind, store)
    if locker_kind == "dblocker":
        assert isinstance(env.locker, dblocker.DBLocker)
        await env.locker.reset_all_locks()
    try:
        yield env
    finally:
        try:
            await env.shutdown()
        finally:
            await store.close()


@pytest.fixture
async def jm(jm_env: JobEnv) -> JobManager:
    """A started job manager (no resume) over ``jm_env``."""
    return await jm_env.started()
