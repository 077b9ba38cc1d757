"""Several servers on one database: who is live, which instance runs which job, which jobs are
zombies, and the commands one server leaves for another.

The database is the only coordination between servers (no other service):

* ``servers``: one row per live instance, with a heartbeat stamped by the DATABASE's clock, so
  that hosts whose clocks disagree still agree on whose heartbeat has lapsed (ConTest's DB
  locker stamps its leases with each server's own clock and so needs synchronised clocks).
* ``job_leases``: the owner of each running job, renewed by the owner's heartbeat for all its
  jobs in one statement; a job in a running state whose lease has expired is a zombie, which
  a live server claims (:meth:`SqlFleet.claim_orphans`, ``FOR UPDATE SKIP LOCKED``) to resume
  it. The epoch grows at every claim: the fencing token writes are checked against.
* ``job_commands``: a ``stop`` received by a server that does not run the job, which the owner
  polls for.

:class:`SqlFleet` keeps them in the storage's database; :class:`MemoryFleet` keeps the same
rules in memory, for the in-memory store of tests and the conformance kit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy import (
    Double,
    and_,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from contest.errors import ContestError
from contest.storage.models import JobState
from contest.storage.retry import RetryPolicy, Transactor
from contest.storage.schema import (
    INSTANCE_ID_MAX,
    job_commands,
    job_leases,
    job_tags,
    jobs,
    servers,
)

log = logging.getLogger(__name__)

#: the job states a job has while some process runs it (ConTest's zombie states)
RUNNING_STATES = (JobState.STARTED, JobState.CANCELLING)
STOP = "stop"


class InstanceConflict(ContestError):
    """Another live process has this instance ID (``--server-id``)."""


# --- the database's clock ----------------------------------------------------------------------


class db_now(FunctionElement[float]):
    """The database's clock as unix seconds (a DOUBLE), in the statement that uses it."""

    type = Double()
    inherit_cache = True
    name = "contest_db_now"


@compiles(db_now)
def _now_sqlite(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite has no server: its clock is the host's, the one host every process on the file shares
    return "((julianday('now') - 2440587.5) * 86400.0)"


@compiles(db_now, "postgresql")
def _now_pg(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM statement_timestamp()) AS DOUBLE PRECISION)"


@compiles(db_now, "mysql")
@compiles(db_now, "mariadb")
def _now_mysql(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "(UNIX_TIMESTAMP(NOW(6)) + 0E0)"


# --- identity ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One process's identity and how to reach it."""

    instance_id: str
    server_id: str  # ConTest's ServerID: what jobs.server_id and the form API's ServerID say
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    version: str = ""
    listen: str = ""


def new_instance_id(host: str | None = None, pid: int | None = None) -> str:
    """``host-<pid>-<4 hex>``: unique among the processes of one database (the pid tells the
    processes of one host apart, the random suffix a restart that got the same pid), cut to the
    column's width by shortening the host name."""
    host = host or socket.gethostname()
    suffix = f"-{pid if pid is not None else os.getpid()}-{secrets.token_hex(2)}"
    return host[: INSTANCE_ID_MAX - len(suffix)] + suffix


@dataclass(frozen=True)
class ServerInfo:
    """A live server as ``contestcli servers`` lists it."""

    instance_id: str
    server_id: str
    host: str
    pid: int
    version: str
    listen: str
    started_at: float
    heartbeat_at: float
    heartbeat_age: float  # seconds, by the database's clock
    lease: float
    draining: bool
    jobs: tuple[int, ...] = ()

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "server_id": self.server_id,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "listen": self.listen,
            "started_at": self.started_at,
            "heartbeat_at": self.heartbeat_at,
            "heartbeat_age": round(self.heartbeat_age, 3),
            "lease": self.lease,
            "draining": self.draining,
            "jobs": list(self.jobs),
        }


@dataclass(frozen=True)
class LeaseInfo:
    """A job's lease as the database has it: its owner, its epoch, and whether it is live
    (unexpired by the database's clock)."""

    owner: str
    epoch: int
    live: bool

    def held_by(self, me: str, epoch: int) -> bool:
        return self.live and self.owner == me and self.epoch == epoch


@dataclass(frozen=True)
class Zombie:
    """A job in a running state that nobody runs: its lease expired (or its owner is known
    dead), or it has no lease and carries this server's ID (a job of a version before leases)."""

    job_id: int
    owner: str | None  # the instance that ran it (None: a job of a version before leases)
    server_id: str  # the ServerID stored with the job


@dataclass(frozen=True)
class ZombieQuery:
    """Where to look for zombies: ``me`` is the sweeping instance; ``single_server`` says no
    other server can be live (SQLite under its file lock), so every other registered server
    is dead; ``legacy_server_id`` claims the lease-less running jobs of that ServerID (jobs of
    versions before leases, judged as ConTest judged them); ``tags``: only jobs with them
    (``--instance-tag``)."""

    me: str
    single_server: bool = False
    legacy_server_id: str | None = None
    tags: Collection[str] = ()


@dataclass(frozen=True)
class ClaimQuery:
    """Which jobs nobody runs a server may take (:meth:`Fleet.claim_orphans`): running jobs whose
    lease lapsed (or, ``single_server``, held by another registered server: all dead), paused
    jobs whose lease lapsed or is gone (a clean pause or a drain left them), and lease-less
    running jobs of ``legacy_server_id`` (a version before leases). ``paused_server_id``: only
    the paused jobs of that ServerID (ConTest's rule, kept on SQLite); ``limit``: at most that
    many in one pass. A lapsed lease of ``me`` is taken too: a server restarted with its
    ``--server-id`` is the same instance, and its dead predecessor's jobs are orphans."""

    me: str
    single_server: bool = False
    legacy_server_id: str | None = None
    paused_server_id: str | None = None
    tags: Collection[str] = ()
    limit: int = 20
    skip: Collection[int] = ()  # the jobs the claiming instance runs or holds paused


@dataclass(frozen=True)
class Orphan:
    """A job this instance just claimed (lease epoch ``epoch``) to resume: ``paused`` from its
    pause, else from its stored events; ``owner``: the instance that ran it (None: none)."""

    job_id: int
    epoch: int
    owner: str | None
    paused: bool


class Fleet(Protocol):
    """What the job manager needs to share a database with other servers."""

    async def register(self, me: Instance, lease: float, *, wait: float) -> None: ...

    async def heartbeat(self, me: Instance, lease: float, *, registered: bool = True) -> bool: ...

    async def unregister(self, me: str) -> None: ...

    async def set_draining(self, me: str) -> None: ...

    async def claim(
        self, job_id: int, me: str, lease: float, *, take_from: str | None = None
    ) -> int | None: ...

    async def release(self, job_id: int, me: str) -> None: ...

    async def lease_info(self, job_ids: Collection[int]) -> dict[int, LeaseInfo]: ...

    async def forget(self, job_id: int) -> None: ...

    async def zombies(self, query: ZombieQuery) -> list[Zombie]: ...

    async def claim_orphans(self, query: ClaimQuery, lease: float) -> list[Orphan]: ...

    async def prune_servers(self, me: str, *, single_server: bool) -> int: ...

    async def send_command(self, job_id: int, command: str, me: str) -> tuple[str, int] | None: ...

    async def pending_command(self, command_id: int) -> bool: ...

    async def take_commands(self, me: str) -> list[tuple[int, str]]: ...

    async def live_servers(self) -> list[ServerInfo]: ...


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def _conflict(me: Instance, host: str, pid: int, age: float) -> InstanceConflict:
    return InstanceConflict(
        f"server ID {me.instance_id!r} is in use by a live server (host {host}, pid {pid}, "
        f"heartbeat {age:.1f} s ago): give each server its own --server-id, or none (each "
        "then gets a unique one)"
    )


# --- SQL ---------------------------------------------------------------------------------------


class SqlFleet:
    """The fleet tables of a :class:`~contest.storage.Storage`'s database.

    Its own transactor, with a retry budget of ``retry_for`` (short: a heartbeat that cannot
    reach the database is retried by its caller, not held for the storage's 30 s), sharing the
    storage's write lock (SQLite: one writer per process)."""

    def __init__(self, storage: Any, *, retry_for: float = 5.0) -> None:
        # a job's final state deletes its lease in its own transaction (see forget_ended_jobs)
        storage.forget_job_leases_at_job_end()
        self.engine = storage.engine
        self.dialect = self.engine.dialect.name
        base: Transactor = storage.transactor
        self.tx = Transactor(
            self.engine,
            RetryPolicy(retry_for=retry_for),
            write_lock=base.write_lock,
            sqlite=self.dialect == "sqlite",
        )

    async def _write(self, work: Any, what: str) -> Any:
        return await self.tx.write(work, what)

    async def _read(self, work: Any, what: str) -> Any:
        return await self.tx.read(work, what)

    # --- servers -------------------------------------------------------------------------------

    async def register(self, me: Instance, lease: float, *, wait: float) -> None:
        """Insert this instance's row. A row with the same ID is taken over when its process
        is dead (its heartbeat lapsed, or it was on this host and its pid is gone), and the
        leases it held expire at once (the jobs of a dead process are zombies); while its
        heartbeat moves on, the ID is refused (:class:`InstanceConflict`). A row whose
        heartbeat is fresh but stands still is waited for, up to ``wait`` seconds (a server
        killed on another host a moment ago)."""
        deadline = time.monotonic() + wait
        first: float | None = None
        while True:
            row = await self._read(lambda c: _server_row(c, me.instance_id), "reading a server")
            if row is None:
                if await self._write(
                    lambda c: _insert_server(c, self.dialect, me, lease), "registering"
                ):
                    return
                continue  # raced with another process of this ID: look again
            age = float(row.now - row.heartbeat_at)
            dead = age > float(row.lease) or (
                row.host == me.host and row.pid != me.pid and not _pid_alive(int(row.pid))
            )
            if dead:
                await self._write(lambda c: _take_over_server(c, me, lease), "registering")
                return
            if first is None:
                first = float(row.heartbeat_at)
            elif float(row.heartbeat_at) != first or time.monotonic() >= deadline:
                raise _conflict(me, row.host, int(row.pid), age)
            await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    async def heartbeat(self, me: Instance, lease: float, *, registered: bool = True) -> bool:
        """Stamp this instance's heartbeat and renew every lease it holds (one statement each,
        one transaction). True if its row was gone and was put back: the others judged it dead
        after a heartbeat lapsed (a database outage, a frozen process) and removed it."""

        async def work(conn: AsyncConnection) -> bool:
            back = False
            if registered:
                stamped = await conn.execute(
                    update(servers)
                    .where(servers.c.instance_id == me.instance_id)
                    .values(heartbeat_at=db_now(), lease=lease)
                )
                if not stamped.rowcount:
                    back = await _insert_server(conn, self.dialect, me, lease)
            # a lapsed lease is not renewed: it is lost (its job may be claimed by another
            # server at any moment); the job manager sees it with lease_info() and stops its copy
            await conn.execute(
                update(job_leases)
                .where(job_leases.c.owner == me.instance_id, job_leases.c.expires_at >= db_now())
                .values(expires_at=db_now() + lease)
            )
            return back

        return await self._write(work, "heartbeat")  # type: ignore[no-any-return]

    async def unregister(self, me: str) -> None:
        await self._write(
            lambda c: c.execute(delete(servers).where(servers.c.instance_id == me)),
            "unregistering",
        )

    async def set_draining(self, me: str) -> None:
        await self._write(
            lambda c: c.execute(
                update(servers).where(servers.c.instance_id == me).values(draining=True)
            ),
            "marking a server draining",
        )

    # --- leases --------------------------------------------------------------------------------

    async def claim(
        self, job_id: int, me: str, lease: float, *, take_from: str | None = None
    ) -> int | None:
        """Own ``job_id`` for ``lease`` seconds: its new epoch, or None while another instance
        (other than ``take_from``, known dead) holds an unexpired lease on it. Of two claims at
        once, one wins: the update locks the row, and the other's condition fails after."""
        return await self._write(  # type: ignore[no-any-return]
            lambda c: _claim(c, self.dialect, job_id, me, lease, take_from), "claim"
        )

    async def release(self, job_id: int, me: str) -> None:
        """Let the lease lapse now (the job paused): whoever resumes it claims it afresh."""
        await self._write(
            lambda c: c.execute(
                update(job_leases)
                .where(job_leases.c.job_id == job_id, job_leases.c.owner == me)
                .values(expires_at=db_now())
            ),
            "releasing a lease",
        )

    async def lease_info(self, job_ids: Collection[int]) -> dict[int, LeaseInfo]:
        """The leases of ``job_ids`` (a job without one is left out), read by the heartbeat to
        find the jobs whose lease this server lost."""
        ids = sorted(set(job_ids))
        if not ids:
            return {}

        async def work(conn: AsyncConnection) -> dict[int, LeaseInfo]:
            stmt = select(
                job_leases.c.job_id,
                job_leases.c.owner,
                job_leases.c.epoch,
                (job_leases.c.expires_at >= db_now()).label("live"),
            ).where(job_leases.c.job_id.in_(ids))
            rows = (await conn.execute(stmt)).all()
            return {
                int(r.job_id): LeaseInfo(str(r.owner), int(r.epoch), bool(r.live)) for r in rows
            }

        return await self._read(work, "reading leases")  # type: ignore[no-any-return]

    async def forget(self, job_id: int) -> None:
        """The job has its final state: its lease and the commands left for it went in the
        transaction that stored it (:func:`forget_ended_jobs`); nothing more to do."""

    async def zombies(self, query: ZombieQuery) -> list[Zombie]:
        """The zombies, in one statement: a job cannot end (and drop its lease) between
        reading its state and reading its lease."""
        return await self._read(lambda c: _zombies(c, query), "looking for zombies")  # type: ignore[no-any-return]

    async def claim_orphans(self, query: ClaimQuery, lease: float) -> list[Orphan]:
        """Claim the jobs nobody runs (:class:`ClaimQuery`), in one transaction: the rows are
        read ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB/MySQL, so servers claiming
        at once each take other jobs instead of queueing on the same rows; each claim is then
        the conditional update of :meth:`claim` (one winner even without row locks, SQLite)."""
        return await self._write(  # type: ignore[no-any-return]
            lambda c: _claim_orphans(c, self.dialect, query, lease), "claiming jobs"
        )

    async def prune_servers(self, me: str, *, single_server: bool) -> int:
        """Delete the rows of dead servers: heartbeat lapsed, or (``single_server``) any other
        than ``me``. Their leases expire on their own. Returns how many.

        On PostgreSQL their database sessions are ended first (:func:`_end_sessions_of`)."""
        return await self._write(  # type: ignore[no-any-return]
            lambda c: prune_dead_servers(c, me, single_server=single_server),
            "removing dead servers",
        )

    # --- commands ------------------------------------------------------------------------------

    async def send_command(self, job_id: int, command: str, me: str) -> tuple[str, int] | None:
        """Leave ``command`` for the owner of ``job_id``: (the owner's instance ID, the
        command's ID), or None when no instance holds a live lease on it (nobody runs it)."""
        return await self._write(lambda c: _send(c, job_id, command, me), "sending a command")  # type: ignore[no-any-return]

    async def pending_command(self, command_id: int) -> bool:
        async def work(conn: AsyncConnection) -> bool:
            stmt = select(job_commands.c.command_id).where(job_commands.c.command_id == command_id)
            return (await conn.execute(stmt)).first() is not None

        return await self._read(work, "reading a command")  # type: ignore[no-any-return]

    async def take_commands(self, me: str) -> list[tuple[int, str]]:
        """The commands left for this instance's jobs, deleted as they are taken. Looked for
        with a read (polled every 0.5 s, it must not take SQLite's write lock each time); the
        ones this call deletes are the ones it returns."""

        async def look(conn: AsyncConnection) -> list[Any]:
            stmt = (
                select(job_commands.c.command_id, job_commands.c.job_id, job_commands.c.command)
                .join(job_leases, job_leases.c.job_id == job_commands.c.job_id)
                .where(job_leases.c.owner == me)
                .order_by(job_commands.c.command_id)
            )
            return list((await conn.execute(stmt)).all())

        rows = await self._read(look, "looking for commands")
        if not rows:
            return []

        async def take(conn: AsyncConnection) -> list[tuple[int, str]]:
            taken = []
            for r in rows:  # one by one: only what this call deletes is applied
                gone = await conn.execute(
                    delete(job_commands).where(job_commands.c.command_id == r.command_id)
                )
                if gone.rowcount:
                    taken.append((int(r.job_id), str(r.command)))
            return taken

        return await self._write(take, "taking commands")  # type: ignore[no-any-return]

    # --- listing -------------------------------------------------------------------------------

    async def live_servers(self) -> list[ServerInfo]:
        return await self._read(_live_servers, "listing servers")  # type: ignore[no-any-return]


async def prune_dead_servers(conn: AsyncConnection, me: str, *, single_server: bool) -> int:
    """:meth:`SqlFleet.prune_servers` in ``conn``'s transaction."""
    dead = servers.c.heartbeat_at + servers.c.lease < db_now()
    if single_server:
        dead = or_(dead, servers.c.instance_id != me)
    if conn.dialect.name == "postgresql":
        gone = (await conn.execute(select(servers.c.instance_id).where(dead))).scalars()
        await _end_sessions_of(conn, [str(g) for g in gone if g != me])
    return int((await conn.execute(delete(servers).where(dead))).rowcount or 0)


async def _end_sessions_of(conn: AsyncConnection, instances: list[str]) -> None:
    """End the PostgreSQL sessions of servers whose heartbeat lapsed (each server names its
    sessions after its instance: ``application_name``, see ``open_storage``'s
    ``session_name``). A frozen server's transaction is ended by the database once it idles
    half a lease (``idle_in_transaction_session_timeout``), but not one frozen halfway
    through sending a statement: that session waits for the rest for as long as the server
    stays frozen, holding its fencing share lock on the lease rows, and no claim could take
    the lease meanwhile. A server thawed later finds its connections closed; its writes are
    refused by the fencing anyway. Lacking the right to end them (another database role, not
    a member of pg_signal_backend) is logged, not raised: they end when their server dies."""
    if not instances:
        return
    names = [i[:63] for i in instances]  # PostgreSQL keeps 63 bytes of an application_name
    try:
        async with conn.begin_nested():  # a refusal must not abort the pruning transaction
            ended = (
                await conn.execute(
                    text(
                        "SELECT pid, application_name, pg_terminate_backend(pid)"
                        " FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND application_name = ANY(:names)"
                    ),
                    {"names": names},
                )
            ).all()
    except Exception as exc:
        log.warning("cannot end the database sessions of dead servers %s: %s", names, exc)
        return
    for pid, name, _ in ended:
        log.warning("ended database session %s of server %s, whose heartbeat lapsed (frozen "
                    "or cut off)", pid, name)  # fmt: skip


async def forget_ended_jobs(conn: AsyncConnection, job_ids: Collection[int]) -> None:
    """Delete the leases of jobs that just ended, and the commands left for them: run by the
    event flush in the transaction storing their final states (``Storage._jobs_ended``)."""
    ids = sorted(set(job_ids))
    if ids:
        await conn.execute(delete(job_leases).where(job_leases.c.job_id.in_(ids)))
        await conn.execute(delete(job_commands).where(job_commands.c.job_id.in_(ids)))


async def _server_row(conn: AsyncConnection, instance_id: str) -> Any:
    stmt = select(servers, db_now().label("now")).where(servers.c.instance_id == instance_id)
    return (await conn.execute(stmt)).first()


async def _insert_server(conn: AsyncConnection, dialect: str, me: Instance, lease: float) -> bool:
    """Insert the instance's row unless one of its ID exists (two processes of one ID starting
    at once: one gets it, the other looks again); True if inserted."""
    added = await conn.execute(
        _insert_ignoring_duplicates(dialect, servers).values(
            instance_id=me.instance_id,
            server_id=me.server_id,
            host=me.host,
            pid=me.pid,
            version=me.version,
            listen=me.listen,
            started_at=db_now(),
            heartbeat_at=db_now(),
            lease=lease,
            draining=False,
        )
    )
    return bool(added.rowcount)


async def _take_over_server(conn: AsyncConnection, me: Instance, lease: float) -> None:
    await conn.execute(
        update(servers)
        .where(servers.c.instance_id == me.instance_id)
        .values(
            server_id=me.server_id,
            host=me.host,
            pid=me.pid,
            version=me.version,
            listen=me.listen,
            started_at=db_now(),
            heartbeat_at=db_now(),
            lease=lease,
            draining=False,
        )
    )
    # the dead process's jobs: their leases lapse now, and the sweep finds them
    await conn.execute(
        update(job_leases)
        .where(job_leases.c.owner == me.instance_id)
        .values(expires_at=db_now() - 1.0)
    )


def _insert_ignoring_duplicates(dialect: str, table: Any) -> Any:
    if dialect == "postgresql":
        return pg_dialect.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite_dialect.insert(table).on_conflict_do_nothing()
    return mysql_dialect.insert(table).prefix_with("IGNORE")


async def _claim(
    conn: AsyncConnection,
    dialect: str,
    job_id: int,
    me: str,
    lease: float,
    take_from: str | None,
) -> int | None:
    free = or_(job_leases.c.owner == me, job_leases.c.expires_at < db_now())
    if take_from is not None:
        free = or_(free, job_leases.c.owner == take_from)
    taken = await conn.execute(
        update(job_leases)
        .where(job_leases.c.job_id == job_id, free)
        .values(owner=me, epoch=job_leases.c.epoch + 1, expires_at=db_now() + lease)
    )
    if not taken.rowcount:
        added = await conn.execute(
            _insert_ignoring_duplicates(dialect, job_leases).values(
                job_id=job_id, owner=me, epoch=1, expires_at=db_now() + lease
            )
        )
        if not added.rowcount:
            return None  # another instance holds it
        return 1
    epoch = (
        await conn.execute(select(job_leases.c.epoch).where(job_leases.c.job_id == job_id))
    ).scalar_one()
    return int(epoch)


async def _zombies(conn: AsyncConnection, q: ZombieQuery) -> list[Zombie]:
    now = db_now()
    lapsed = job_leases.c.expires_at < now
    if q.single_server:
        # no other server can be live: the leases of every other registered server are dead
        others = select(servers.c.instance_id).where(servers.c.instance_id != q.me)
        lapsed = or_(lapsed, job_leases.c.owner.in_(others))
    legacy: ColumnElement[bool] = literal(False)
    if q.legacy_server_id is not None:
        legacy = and_(job_leases.c.job_id.is_(None), jobs.c.server_id == q.legacy_server_id)
    stmt = (
        select(jobs.c.job_id, jobs.c.server_id, job_leases.c.owner)
        .select_from(jobs.outerjoin(job_leases, job_leases.c.job_id == jobs.c.job_id))
        .where(
            jobs.c.state.in_([int(s) for s in RUNNING_STATES]),
            or_(and_(job_leases.c.job_id.is_not(None), lapsed), legacy),
        )
        .order_by(jobs.c.job_id)
    )
    for tag in sorted(set(q.tags)):
        stmt = stmt.where(exists().where(job_tags.c.job_id == jobs.c.job_id, job_tags.c.tag == tag))
    rows = (await conn.execute(stmt)).all()
    return [Zombie(int(r.job_id), r.owner, str(r.server_id)) for r in rows]


def _with_tags(stmt: Any, tags: Collection[str]) -> Any:
    for tag in sorted(set(tags)):
        stmt = stmt.where(exists().where(job_tags.c.job_id == jobs.c.job_id, job_tags.c.tag == tag))
    return stmt


def _without(stmt: Any, skip: Collection[int]) -> Any:
    return stmt.where(jobs.c.job_id.not_in(sorted(skip))) if skip else stmt


def _skip_locked(stmt: Any, dialect: str, of: Any) -> Any:
    if dialect == "postgresql":  # of the table whose rows it claims (not an outer join's side)
        return stmt.with_for_update(skip_locked=True, of=of)
    if dialect in ("mysql", "mariadb"):  # MariaDB 10.6+, MySQL 8
        return stmt.with_for_update(skip_locked=True)
    return stmt  # SQLite: one writer at a time anyway


async def _claim_orphans(
    conn: AsyncConnection, dialect: str, q: ClaimQuery, lease: float
) -> list[Orphan]:
    now = db_now()
    running = [int(s) for s in RUNNING_STATES]
    lapsed = job_leases.c.expires_at < now
    if q.single_server:
        others = select(servers.c.instance_id).where(servers.c.instance_id != q.me)
        lapsed = or_(lapsed, job_leases.c.owner.in_(others))
    crashed = (
        select(jobs.c.job_id, job_leases.c.owner)
        .select_from(jobs.join(job_leases, job_leases.c.job_id == jobs.c.job_id))
        .where(jobs.c.state.in_(running), lapsed)
        .order_by(jobs.c.job_id)
        .limit(q.limit)
    )
    crashed = _skip_locked(_without(_with_tags(crashed, q.tags), q.skip), dialect, job_leases)
    rows = (await conn.execute(crashed)).all()
    out: list[Orphan] = []
    for r in rows:
        epoch = await _claim(conn, dialect, int(r.job_id), q.me, lease, str(r.owner))
        if epoch is not None:
            out.append(Orphan(int(r.job_id), epoch, str(r.owner), paused=False))
    if len(out) >= q.limit:
        return out
    paused = jobs.c.state == int(JobState.PAUSED)
    if q.paused_server_id is not None:
        paused = and_(paused, jobs.c.server_id == q.paused_server_id)
    free = or_(job_leases.c.job_id.is_(None), job_leases.c.expires_at < now)
    legacy: ColumnElement[bool] = literal(False)
    if q.legacy_server_id is not None:
        legacy = and_(
            jobs.c.state.in_(running),
            job_leases.c.job_id.is_(None),
            jobs.c.server_id == q.legacy_server_id,
        )
    idle = (
        select(jobs.c.job_id, jobs.c.state, job_leases.c.owner)
        .select_from(jobs.outerjoin(job_leases, job_leases.c.job_id == jobs.c.job_id))
        .where(or_(and_(paused, free), legacy))
        .order_by(jobs.c.job_id)
        .limit(q.limit - len(out))
    )
    idle = _skip_locked(_without(_with_tags(idle, q.tags), q.skip), dialect, jobs)
    rows = (await conn.execute(idle)).all()
    for r in rows:
        epoch = await _claim(conn, dialect, int(r.job_id), q.me, lease, None)
        if epoch is not None:
            is_paused = int(r.state) == int(JobState.PAUSED)
            out.append(Orphan(int(r.job_id), epoch, r.owner, paused=is_paused))
    return out


async def _send(
    conn: AsyncConnection, job_id: int, command: str, me: str
) -> tuple[str, int] | None:
    owner = (
        await conn.execute(
            select(job_leases.c.owner).where(
                job_leases.c.job_id == job_id, job_leases.c.expires_at >= db_now()
            )
        )
    ).scalar_one_or_none()
    if owner is None:
        return None
    result = await conn.execute(
        insert(job_commands).values(
            job_id=job_id, command=command, requested_by=me, requested_at=db_now()
        )
    )
    pk = result.inserted_primary_key
    assert pk is not None
    return str(owner), int(pk[0])


async def _live_servers(conn: AsyncConnection) -> list[ServerInfo]:
    now = db_now().label("now")
    rows = (
        await conn.execute(
            select(servers, now)
            .where(servers.c.heartbeat_at + servers.c.lease >= db_now())
            .order_by(servers.c.started_at, servers.c.instance_id)
        )
    ).all()
    running = (
        await conn.execute(
            select(job_leases.c.job_id, job_leases.c.owner)
            .join(jobs, jobs.c.job_id == job_leases.c.job_id)
            .where(
                jobs.c.state.in_([int(s) for s in RUNNING_STATES]),
                job_leases.c.expires_at >= db_now(),
            )
            .order_by(job_leases.c.job_id)
        )
    ).all()
    by_owner: dict[str, list[int]] = {}
    for r in running:
        by_owner.setdefault(str(r.owner), []).append(int(r.job_id))
    return [
        ServerInfo(
            instance_id=r.instance_id,
            server_id=r.server_id,
            host=r.host,
            pid=int(r.pid),
            version=r.version,
            listen=r.listen,
            started_at=float(r.started_at),
            heartbeat_at=float(r.heartbeat_at),
            heartbeat_age=max(0.0, float(r.now) - float(r.heartbeat_at)),
            lease=float(r.lease),
            draining=bool(r.draining),
            jobs=tuple(by_owner.get(r.instance_id, ())),
        )
        for r in rows
    ]


# --- in memory ---------------------------------------------------------------------------------


@dataclass
class _Lease:
    owner: str
    epoch: int
    expires_at: float


class MemoryFleet:
    """:class:`SqlFleet`'s rules over dicts, for a store that is not SQL (one process: the
    clock is this process's)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.servers: dict[str, ServerInfo] = {}
        self.leases: dict[int, _Lease] = {}
        self.commands: list[tuple[int, int, str]] = []  # (command_id, job_id, command)
        self._next_command = 1

    async def register(self, me: Instance, lease: float, *, wait: float) -> None:
        deadline = time.monotonic() + wait
        first: float | None = None
        while True:
            row = self.servers.get(me.instance_id)
            now = time.time()
            if row is None or now - row.heartbeat_at > row.lease:
                break
            if first is None:
                first = row.heartbeat_at
            elif row.heartbeat_at != first or time.monotonic() >= deadline:
                raise _conflict(me, row.host, row.pid, now - row.heartbeat_at)
            await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
        now = time.time()
        self.servers[me.instance_id] = ServerInfo(
            me.instance_id, me.server_id, me.host, me.pid, me.version, me.listen,
            now, now, 0.0, lease, False,
        )  # fmt: skip
        for held in self.leases.values():
            if held.owner == me.instance_id:
                held.expires_at = now - 1.0

    async def heartbeat(self, me: Instance, lease: float, *, registered: bool = True) -> bool:
        now = time.time()
        row = self.servers.get(me.instance_id)
        back = registered and row is None
        if back:
            row = ServerInfo(
                me.instance_id, me.server_id, me.host, me.pid, me.version, me.listen,
                now, now, 0.0, lease, False,
            )  # fmt: skip
        if registered and row is not None:
            self.servers[me.instance_id] = replace(row, heartbeat_at=now, lease=lease)
        for held in self.leases.values():
            if held.owner == me.instance_id and held.expires_at >= now:
                held.expires_at = now + lease
        return back

    async def unregister(self, me: str) -> None:
        self.servers.pop(me, None)

    async def set_draining(self, me: str) -> None:
        row = self.servers.get(me)
        if row is not None:
            self.servers[me] = replace(row, draining=True)

    async def claim(
        self, job_id: int, me: str, lease: float, *, take_from: str | None = None
    ) -> int | None:
        now = time.time()
        held = self.leases.get(job_id)
        if held is None:
            self.leases[job_id] = _Lease(me, 1, now + lease)
            return 1
        if held.owner not in (me, take_from) and held.expires_at >= now:
            return None
        held.owner, held.epoch, held.expires_at = me, held.epoch + 1, now + lease
        return held.epoch

    async def release(self, job_id: int, me: str) -> None:
        held = self.leases.get(job_id)
        if held is not None and held.owner == me:
            held.expires_at = time.time()

    async def lease_info(self, job_ids: Collection[int]) -> dict[int, LeaseInfo]:
        now = time.time()
        return {
            j: LeaseInfo(h.owner, h.epoch, h.expires_at >= now)
            for j in job_ids
            if (h := self.leases.get(j)) is not None
        }

    async def forget(self, job_id: int) -> None:
        self.leases.pop(job_id, None)
        self.commands = [c for c in self.commands if c[1] != job_id]

    async def zombies(self, query: ZombieQuery) -> list[Zombie]:
        now = time.time()
        out = []
        ids = await self.store.list_jobs(states=list(RUNNING_STATES), tags=list(query.tags) or None)
        for job_id in ids:
            req = await self.store.get_job(job_id)
            held = self.leases.get(job_id)
            if held is None:
                if req is not None and req.server_id == query.legacy_server_id:
                    out.append(Zombie(job_id, None, req.server_id))
                continue
            dead = query.single_server and held.owner != query.me and held.owner in self.servers
            if held.expires_at < now or dead:
                out.append(Zombie(job_id, held.owner, req.server_id if req else ""))
        return out

    async def claim_orphans(self, query: ClaimQuery, lease: float) -> list[Orphan]:
        now = time.time()
        out: list[Orphan] = []
        tags = list(query.tags) or None
        for job_id in await self.store.list_jobs(states=list(RUNNING_STATES), tags=tags):
            held = self.leases.get(job_id)
            if len(out) >= query.limit:
                break
            if held is None:  # a job of a version before leases: judged by its ServerID
                req = await self.store.get_job(job_id)
                if req is not None and req.server_id == query.legacy_server_id:
                    epoch = await self.claim(job_id, query.me, lease)
                    if epoch is not None:
                        out.append(Orphan(job_id, epoch, None, paused=False))
                continue
            if job_id in query.skip:
                continue
            dead = query.single_server and held.owner in self.servers
            if held.expires_at < now or dead:
                owner = held.owner
                epoch = await self.claim(job_id, query.me, lease, take_from=owner)
                if epoch is not None:
                    out.append(Orphan(job_id, epoch, owner, paused=False))
        for job_id in await self.store.list_jobs(states=[JobState.PAUSED], tags=tags):
            held = self.leases.get(job_id)
            if len(out) >= query.limit:
                break
            if (held is not None and held.expires_at >= now) or job_id in query.skip:
                continue
            if query.paused_server_id is not None:
                req = await self.store.get_job(job_id)
                if req is None or req.server_id != query.paused_server_id:
                    continue
            epoch = await self.claim(job_id, query.me, lease)
            if epoch is not None:
                out.append(Orphan(job_id, epoch, held.owner if held else None, paused=True))
        return out

    async def prune_servers(self, me: str, *, single_server: bool) -> int:
        now = time.time()
        dead = [
            i for i, row in self.servers.items()
            if row.heartbeat_at + row.lease < now or (single_server and i != me)
        ]  # fmt: skip
        for instance_id in dead:
            del self.servers[instance_id]
        return len(dead)

    async def send_command(self, job_id: int, command: str, me: str) -> tuple[str, int] | None:
        held = self.leases.get(job_id)
        if held is None or held.expires_at < time.time():
            return None
        command_id = self._next_command
        self._next_command += 1
        self.commands.append((command_id, job_id, command))
        return held.owner, command_id

    async def pending_command(self, command_id: int) -> bool:
        return any(c[0] == command_id for c in self.commands)

    async def take_commands(self, me: str) -> list[tuple[int, str]]:
        mine = [c for c in self.commands if (h := self.leases.get(c[1])) and h.owner == me]
        self.commands = [c for c in self.commands if c not in mine]
        return [(job_id, command) for _, job_id, command in mine]

    async def live_servers(self) -> list[ServerInfo]:
        now = time.time()
        out = []
        for row in sorted(self.servers.values(), key=lambda s: (s.started_at, s.instance_id)):
            if row.heartbeat_at + row.lease < now:
                continue
            jobs_of = tuple(
                sorted(
                    j for j, h in self.leases.items()
                    if h.owner == row.instance_id and h.expires_at >= now
                )
            )  # fmt: skip
            out.append(replace(row, heartbeat_age=now - row.heartbeat_at, jobs=jobs_of))
        return out


def fleet_of(store: Any, *, retry_for: float = 5.0) -> Fleet:
    """The fleet a store's database keeps: :class:`SqlFleet` for SQL storage (its operations
    retried across a lost connection for ``retry_for`` seconds), else one :class:`MemoryFleet`
    per store (kept on it, so a restarted manager sees the same one)."""
    if hasattr(store, "engine") and hasattr(store, "transactor"):
        return SqlFleet(store, retry_for=retry_for)
    fleet = getattr(store, "_contest_fleet", None)
    if fleet is None:
        fleet = MemoryFleet(store)
        target = getattr(store, "_store", store)  # a ProgressStore delegates to its store
        target._contest_fleet = fleet
    return fleet
