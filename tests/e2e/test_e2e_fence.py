"""Fencing, database outages and drain (issue 12, items 4 to 6) with real ``contest serve``
processes and real databases:

* a server frozen (SIGSTOP) for two of its 2 s leases loses its job: the lease lapses and is
  claimed by the other server (the test raises the owner and epoch in the lease row, as a
  claim does, and the claim is not held up by the frozen server's transactions); SIGCONT: the
  frozen server stops its copy and writes nothing more for the job (PostgreSQL and MariaDB);
* SIGUSR1 on a shared database hands the owner's job over: paused at its next checkpoint, its
  lease let go, the server exits; the paused job is unowned and a restarted server completes
  it (PostgreSQL);
* a private PostgreSQL instance the test starts on its own port is stopped (``pg_ctl stop -m
  fast``) for 8 s, four times the server's ``--db-retry 2s``, while a job runs: the job is
  suspended, then completes once the database is back, each target-step's events exactly
  once.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2ekit import ServerProcess, literal_job, start_all
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contest.storage import open_storage
from contest.storage.fleet import db_now
from contest.storage.schema import framework_events, job_leases, test_events

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def stepping_job(prefix: str, steps: int, seconds: str, targets: int = 2) -> dict[str, Any]:
    """A job writing events all along: ``steps`` short sleeps on ``targets`` targets."""
    return literal_job(
        name=f"job-{prefix}",
        targets=[{"ID": f"{prefix}{i}"} for i in range(targets)],
        steps=[
            {"name": "sleep", "label": f"s{i:02d}", "parameters": {"duration": [seconds]}}
            for i in range(steps)
        ],
        success="=100%",
    )


def sql(url: str, work: Any, write: bool = False) -> Any:
    """Run ``work(conn)`` on the database (the storage's driver and retry)."""

    async def run() -> Any:
        store = await open_storage(url, migrate_schema=False, retry_for=5.0)
        try:
            if write:
                return await store.run_write(work, "test write")
            return await store.run_read(work, "test read")
        finally:
            await store.close()

    return asyncio.run(run())


def event_count(url: str, job_id: int) -> int:
    async def work(conn: AsyncConnection) -> int:
        t = (
            await conn.execute(
                select(func.count()).select_from(test_events).where(test_events.c.job_id == job_id)
            )
        ).scalar_one()
        f = (
            await conn.execute(
                select(func.count())
                .select_from(framework_events)
                .where(framework_events.c.job_id == job_id)
            )
        ).scalar_one()
        return int(t) + int(f)

    return int(sql(url, work))


def lease_row(url: str, job_id: int) -> Any:
    async def work(conn: AsyncConnection) -> Any:
        stmt = select(
            job_leases.c.owner,
            job_leases.c.epoch,
            (job_leases.c.expires_at - db_now()).label("left"),
        ).where(job_leases.c.job_id == job_id)
        return (await conn.execute(stmt)).first()

    return sql(url, work)


def job_states(url: str, job_id: int) -> list[str]:
    async def work(conn: AsyncConnection) -> list[str]:
        fe = framework_events
        stmt = (
            select(fe.c.event_name)
            .where(fe.c.job_id == job_id, fe.c.event_name.like("JobState%"))
            .order_by(fe.c.sequence)
        )
        return [str(r[0]) for r in (await conn.execute(stmt)).all()]

    return list(sql(url, work))


def target_ins(url: str, job_id: int) -> Counter[tuple[str, str]]:
    async def work(conn: AsyncConnection) -> Counter[tuple[str, str]]:
        te = test_events
        stmt = select(te.c.step_label, te.c.target_id).where(
            te.c.job_id == job_id, te.c.event_name == "TargetIn"
        )
        return Counter((str(r[0]), str(r[1])) for r in (await conn.execute(stmt)).all())

    return Counter(sql(url, work))


def wait_until(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def activity(url: str) -> str:
    """The other sessions on the test's database and what they wait for (for a failure's
    message)."""

    async def work(conn: AsyncConnection) -> str:
        if conn.dialect.name == "postgresql":
            query = text(
                "SELECT pid, state, wait_event_type, wait_event, now() - xact_start,"
                " pg_blocking_pids(pid), left(query, 200) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        else:  # the server is shared: only this database's connections
            query = text(
                "SELECT p.id, p.command, p.time, p.state, t.trx_state, t.trx_started,"
                " left(p.info, 200) FROM information_schema.processlist p"
                " LEFT JOIN information_schema.innodb_trx t ON t.trx_mysql_thread_id = p.id"
                " WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID()"
            )
        return "\n".join(str(tuple(row)) for row in await conn.execute(query))

    return str(sql(url, work))


def instance_of(server: ServerProcess) -> str:
    assert server.proc is not None
    mine = [s for s in server.get("/api/v1/servers").json()["servers"]
            if s["pid"] == server.proc.pid]  # fmt: skip
    assert len(mine) == 1, mine
    return str(mine[0]["instance_id"])


async def _prune_servers(conn: AsyncConnection, me: str) -> int:
    """The pruning of a claim pass (``SqlFleet.prune_servers``), in the test's transaction."""
    from contest.storage.fleet import prune_dead_servers

    return await prune_dead_servers(conn, me, single_server=False)


def test_a_frozen_server_that_lost_its_job_writes_nothing_more_for_it(
    shared_db: str, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    a, b = start_all(
        server_factory(tmp_path, shared_db, "--job-lease", "2s", server_id="", name="a"),
        # the other server takes no job over (the test claims the lease as its claim loop
        # would, at the moment it chooses) and its own lease is long: its sweep stays out of
        # the way
        server_factory(
            tmp_path, shared_db, "--job-lease", "60s", "--no-resume-jobs", server_id="", name="b"
        ),
    )
    b_instance = instance_of(b)
    job_id = a.submit(stepping_job("f", steps=200, seconds="100ms"))
    wait_until("events flowing", lambda: event_count(shared_db, job_id) > 20, 30)
    owner, epoch, _ = lease_row(shared_db, job_id)
    assert (owner, epoch) == (instance_of(a), 1)

    a.send(signal.SIGSTOP)
    try:
        # two leases frozen: the lease lapses by the database's clock
        time.sleep(4.0)
        wait_until("the lease lapsed", lambda: lease_row(shared_db, job_id).left < 0, 10)

        # as the other server's claim pass does: first prune the dead servers (a has not
        # stamped its heartbeat for a lease), which ends their database sessions on
        # PostgreSQL (frozen halfway through sending a statement, a session holds its share
        # lock on the lease row whatever its idle-transaction timeout)
        prune = sql(shared_db, lambda c: _prune_servers(c, b_instance), write=True)
        assert prune == 1

        async def claim(conn: AsyncConnection) -> int:  # as the other server's claim does
            # bounded: a transaction the frozen server left open is ended by the database
            # within half a lease (its sessions' idle-transaction timeout, set by contest
            # serve), so its share lock on the lease row cannot hold the claim up longer
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SET LOCAL lock_timeout = '5s'"))
            else:
                await conn.execute(text("SET SESSION innodb_lock_wait_timeout = 5"))
            done = await conn.execute(
                update(job_leases)
                .where(job_leases.c.job_id == job_id, job_leases.c.expires_at < db_now())
                .values(owner=b_instance, epoch=job_leases.c.epoch + 1, expires_at=db_now() + 3600)
            )
            return int(done.rowcount)

        try:
            claimed_rows = sql(shared_db, claim, write=True)
        except Exception as exc:
            raise AssertionError(f"the claim was held up: {exc}\n{activity(shared_db)}") from exc
        assert claimed_rows == 1
        claimed = event_count(shared_db, job_id)
    finally:
        a.send(signal.SIGCONT)
    # it stops its copy within a lease, and writes nothing more for the job
    stopped = f"job {job_id}: this server's copy stopped"
    wait_until("the frozen server stopped its copy", lambda: stopped in a.output(), 2.0 + 1.0)
    # a lease: twenty of its 0.1 s steps (a copy still running writes every step) and three
    # heartbeats (every lease/3)
    time.sleep(2.0)
    assert event_count(shared_db, job_id) == claimed
    assert a.proc is not None and a.proc.poll() is None  # alive and well
    assert a.state(job_id) == "JobStateStarted"  # no final state from the server that lost it
    assert lease_row(shared_db, job_id)[:2] == (b_instance, 2)
    mine = [s for s in b.get("/api/v1/servers").json()["servers"] if s["pid"] == a.proc.pid]
    assert mine and mine[0]["jobs"] == []
    assert "lost its lease (epoch 1)" in a.output()


def test_sigusr1_hands_the_job_over_to_another_server(
    pg_db: str, tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    """SIGUSR1 on a shared database: the owner pauses the job at its next checkpoint, lets its
    lease go and exits; the other server's claim loop resumes the paused job and completes it."""
    a, b = start_all(
        *(server_factory(tmp_path, pg_db, "--job-lease", "2s", server_id="", name=n) for n in "ab")
    )
    job_id = a.submit(stepping_job("d", steps=30, seconds="200ms"))
    wait_until("events flowing", lambda: event_count(pg_db, job_id) > 10, 30)
    a.send(signal.SIGUSR1)
    assert a.wait(30) == 0  # paused at its next checkpoint, handed over, exited
    assert "draining: pausing it to hand it over" in a.output()
    assert b.wait_state(job_id, "JobStateCompleted", "JobStateFailed", timeout=60) == (
        "JobStateCompleted"
    )
    states = job_states(pg_db, job_id)
    assert states == ["JobStateStarted", "JobStatePaused", "JobStateStarted", "JobStateCompleted"]
    assert "lost its lease" not in b.output()  # its own final state is not a lost lease
    # every step of every target ran once: the pause came at a checkpoint, nothing re-ran
    assert all(n == 1 for n in target_ins(pg_db, job_id).values())
    assert b.stop() == 0


# --- a database outage ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_postgres(*cmd: str) -> list[str]:
    if os.geteuid() != 0:
        return list(cmd)
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture
def private_pg() -> Iterator[tuple[str, Any, Any]]:
    """A PostgreSQL instance of the test's own (initdb, pg_ctl) on a free port: its URL, and
    functions to stop and start it."""
    folder = Path(tempfile.mkdtemp(prefix="contest-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    port = free_port()
    subprocess.run(
        as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"),
        check=True,
        capture_output=True,
        timeout=120,
    )
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"

    def start() -> None:
        subprocess.run(
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                        str(folder / "pg.log"), "-w", "-t", "60", "start"),
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip

    def stop() -> None:
        subprocess.run(
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"),
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip

    start()
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", stop, start
    finally:
        subprocess.run(
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
            capture_output=True, timeout=90,
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


RETRY = 2.0
OUTAGE = 4 * RETRY
LEASE = 60.0


def test_a_database_outage_suspends_the_job_which_completes_after(
    private_pg: tuple[str, Any, Any], tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    url, stop_db, start_db = private_pg
    # the lease outlasts the outage; the outage outlasts the storage's retry window (2 s) four
    # times over, so every write the job makes meanwhile gives up its retries and is held
    server = server_factory(
        tmp_path,
        url,
        "--job-lease",
        f"{LEASE:g}s",
        "--db-retry",
        f"{RETRY:g}s",
        server_id="",
        name="s",
    ).start()
    steps, targets = 24, 3
    job_id = server.submit(stepping_job("o", steps=steps, seconds="250ms", targets=targets))
    wait_until("events flowing", lambda: event_count(url, job_id) > 8, 30)
    stop_db()
    down = time.monotonic()
    time.sleep(OUTAGE)
    start_db()
    assert time.monotonic() - down >= OUTAGE
    state = wait_until(
        "the job ended",
        lambda: (s := server.state(job_id)) in ("JobStateCompleted", "JobStateFailed") and s,
        90,
    )
    assert state == "JobStateCompleted", server.output()
    out = server.output()
    assert "holding them" in out and "the database is back after" in out

    async def routing(conn: AsyncConnection) -> list[tuple[str, str, str]]:
        rows = await conn.execute(
            select(
                test_events.c.step_label, test_events.c.target_id, test_events.c.event_name
            ).where(
                test_events.c.job_id == job_id,
                test_events.c.event_name.in_(
                    ["TargetIn", "TargetOut", "TargetErr", "TargetInterrupted"]
                ),
            )
        )
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    seen = Counter(sql(url, routing))
    # an outage longer than the lease lets it lapse: the server, back, takes its own job over
    # (the targets inside a step then enter it again after a TargetInterrupted)
    interrupted = {(label, t) for label, t, name in seen if name == "TargetInterrupted"}
    assert not interrupted or OUTAGE > LEASE * 2 / 3, out  # its heartbeat: every lease/3
    expected = {
        (f"s{i:02d}", f"o{t}", name)
        for i in range(steps)
        for t in range(targets)
        for name in ("TargetIn", "TargetOut")
    }
    assert set(seen) - {k for k in seen if k[2] == "TargetInterrupted"} == expected, out
    # events exactly once for every target-step that was not interrupted
    again = [k for k, n in seen.items() if n != 1 and (k[0], k[1]) not in interrupted]
    assert not again, (again, out)
    assert server.stop() == 0
