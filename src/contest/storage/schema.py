"""Every table of contest's SQL storage, as SQLAlchemy Core objects.

One :data:`metadata` describes the schema at the newest migration; the Alembic history in
``contest.storage.migrations`` builds the same tables (a test compares the two on every
database). Other modules (the DB-backed target locker, the job manager) import the ``Table``
objects from here rather than spelling SQL by hand.

Choices that hold for every table, and why:

* Times are ``DOUBLE`` unix seconds, not ``TIMESTAMP``: MySQL's ``TIMESTAMP`` has one-second
  resolution and a 2038 end, and comparing floats is the same on all three databases.
* Big texts (descriptors, payloads, report data) are ``LONGTEXT`` on MySQL/MariaDB: ConTest's
  ``TEXT`` (64 KiB) refuses a TargetList job of a few hundred targets. PostgreSQL's and SQLite's
  ``TEXT`` are unbounded already.
* MySQL/MariaDB tables use ``utf8mb4`` with the binary collation, so names and IDs compare
  exactly (case-sensitively), as they do on PostgreSQL and SQLite.
* Auto-increment keys are ``BIGINT`` except on SQLite, where only ``INTEGER PRIMARY KEY`` is the
  rowid alias (``AUTOINCREMENT`` there, so a sequence number is never reused).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects import mysql

# column widths; the write path checks these before a value reaches the database
JOB_NAME_MAX = 64
REQUESTOR_MAX = 32
SERVER_ID_MAX = 64
TAG_MAX = 64
TEST_NAME_MAX = 64  # ConTest limits test names to 32; cleanup names add " [CLEANUP]"
STEP_LABEL_MAX = 32
EVENT_NAME_MAX = 32
REPORTER_NAME_MAX = 32
TARGET_ID_MAX = 512

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: auto-increment key type: BIGINT, but INTEGER on SQLite (the rowid alias)
AutoId = BigInteger().with_variant(Integer(), "sqlite")
#: unbounded text: LONGTEXT on MySQL/MariaDB, TEXT elsewhere
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")

#: table options for MySQL/MariaDB (ignored by the other dialects)
MYSQL_OPTS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mariadb_engine": "InnoDB",
    "mariadb_charset": "utf8mb4",
    "mariadb_collate": "utf8mb4_bin",
}

# --- target locks: first, because the DB-backed locker depends on it --------------------------

target_locks = Table(
    "target_locks",
    metadata,
    # one row per locked target; the locker inserts/updates/deletes rows itself
    Column("target_id", String(TARGET_ID_MAX), primary_key=True),
    Column("job_id", BigInteger, nullable=False),
    Column("expires_at", Double, nullable=False),  # unix seconds: lease end
    Column("created_at", Double, nullable=False),  # unix seconds: first lock, kept on extend
    Index(None, "job_id"),
    Index(None, "expires_at"),
    **MYSQL_OPTS,
)

target_waits = Table(
    "target_waits",
    metadata,
    # The line for busy targets (DBLocker.lock_queued): one row per target a waiting job asks
    # for. ``ticket`` is the job's place, the same on all its rows, from target_wait_tickets;
    # a row is live while the locker's clock is <= ``expires_at`` (renewed by each call).
    Column("target_id", String(TARGET_ID_MAX), primary_key=True),
    Column("job_id", BigInteger, primary_key=True),
    Column("ticket", BigInteger, nullable=False),
    Column("expires_at", Double, nullable=False),  # unix seconds: the place lapses after this
    Index(None, "job_id"),
    Index(None, "expires_at"),
    **MYSQL_OPTS,
)

target_wait_tickets = Table(
    "target_wait_tickets",
    metadata,
    # One row (id 1): the last ticket handed out. A job joining the line locks it first and
    # takes the next number, so joiners are numbered in commit order and none is granted past
    # an earlier joiner that has not committed yet (DBLocker's docstring says why jobs already
    # in line need not lock it).
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_ticket", BigInteger, nullable=False),
    **MYSQL_OPTS,
)

# --- jobs --------------------------------------------------------------------------------------

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", AutoId, primary_key=True, autoincrement=True),
    Column("name", String(JOB_NAME_MAX), nullable=False),
    Column("requestor", String(REQUESTOR_MAX), nullable=False),
    Column("server_id", String(SERVER_ID_MAX), nullable=False),
    Column("request_time", Double, nullable=False),  # unix seconds
    Column("descriptor", LongText, nullable=False),  # the descriptor as submitted (JSON)
    Column("extended_descriptor", LongText, nullable=True),  # descriptor + fetched steps
    # last job-state event's number (0 = Unknown, no state event yet); kept in step with
    # framework_events by the event writer so listing by state is a plain query
    Column("state", SmallInteger, nullable=False, server_default="0"),
    Column("state_time", Double, nullable=True),  # emit time of that state event
    Index(None, "state", "job_id"),
    Index(None, "server_id", "state"),
    Index(None, "requestor"),
    **MYSQL_OPTS,
)

job_tags = Table(
    "job_tags",
    metadata,
    Column("job_id", BigInteger, primary_key=True),
    Column("tag", String(TAG_MAX), primary_key=True),
    Index(None, "tag", "job_id"),
    **MYSQL_OPTS,
)

# --- events ------------------------------------------------------------------------------------

# the databases with partial indexes, and the others (ddl_if takes a tuple of names too, which
# its annotation does not say)
_PARTIAL: Any = ("sqlite", "postgresql")
_WHOLE: Any = ("mysql", "mariadb")


def _targets_of(name: str, event: str) -> Index:
    """The partial index by target of the test events named ``event``."""
    where = text(f"event_name = '{event}'")
    return Index(
        f"ix_test_events_target_id_{name}",
        "target_id",
        sqlite_where=where,
        postgresql_where=where,
    ).ddl_if(dialect=_PARTIAL)


test_events = Table(
    "test_events",
    metadata,
    # the event's place in the total order of test events (per table, not across tables)
    Column("sequence", AutoId, primary_key=True, autoincrement=True),
    Column("job_id", BigInteger, nullable=False),
    Column("run_id", Integer, nullable=False),
    Column("test_name", String(TEST_NAME_MAX), nullable=False),
    Column("test_attempt", Integer, nullable=False, server_default="0"),
    Column("step_label", String(STEP_LABEL_MAX), nullable=False),  # "" for acquire/release
    Column("target_id", String(TARGET_ID_MAX), nullable=True),  # NULL: no target
    Column("target", LongText, nullable=True),  # the whole target as JSON (FQDN, IPs, TMS)
    Column("event_name", String(EVENT_NAME_MAX), nullable=False),
    Column("payload", LongText, nullable=True),  # JSON text; NULL: no payload
    Column("emit_time", Double, nullable=False),  # unix seconds
    # a job's targets move through a step together, so a batch holds a row per target: an
    # index led by the target takes a batch all over its tree (migration 0006). A target's
    # events in a job are found by seeking each step of this one (events.step_keys)...
    Index(None, "job_id", "run_id", "test_name", "step_label", "target_id"),
    Index(None, "job_id", "event_name"),
    # ...and across jobs (the web view's page of a target) through these, of two events only
    # where the database has partial indexes; MariaDB and MySQL index every row's target
    _targets_of("acquired", "TargetAcquired"),
    _targets_of("failed", "TargetErr"),
    Index(None, "target_id", "event_name").ddl_if(dialect=_WHOLE),
    sqlite_autoincrement=True,
    **MYSQL_OPTS,
)

framework_events = Table(
    "framework_events",
    metadata,
    Column("sequence", AutoId, primary_key=True, autoincrement=True),
    Column("job_id", BigInteger, nullable=False),
    Column("event_name", String(EVENT_NAME_MAX), nullable=False),
    Column("payload", LongText, nullable=True),  # JSON text; NULL: no payload
    Column("emit_time", Double, nullable=False),
    Index(None, "job_id", "event_name"),
    Index(None, "emit_time"),
    sqlite_autoincrement=True,
    **MYSQL_OPTS,
)

# --- reports -----------------------------------------------------------------------------------

reports = Table(
    "reports",
    metadata,
    Column("report_id", AutoId, primary_key=True, autoincrement=True),
    Column("job_id", BigInteger, nullable=False),
    Column("run_id", Integer, nullable=False),  # 0: a final report; n > 0: run n
    Column("reporter_name", String(REPORTER_NAME_MAX), nullable=False),
    Column("success", Boolean, nullable=True),
    Column("data", LongText, nullable=True),  # JSON text
    Column("report_time", Double, nullable=False),
    Index(None, "job_id", "run_id", "reporter_name"),
    **MYSQL_OPTS,
)

# --- finished runs' statuses -----------------------------------------------------------------

run_statuses = Table(
    "run_statuses",
    metadata,
    # The status of a finished run (every test's last attempt), saved by the job runner once
    # the run's tests are done: a finished run's events never change, so the status document
    # reads it back instead of rebuilding it from every event of the run. Opaque to storage
    # (``contest.job.status`` makes the bytes: zlib-compressed JSON), kept as base64 text (the
    # MySQL driver cannot send bytes parameters with current PyMySQL) in chunks, so that no
    # row outgrows a MySQL packet. Absent for unfinished runs (running, paused, cancelled,
    # failed) and for runs finished by older versions: those are built from their events.
    Column("job_id", BigInteger, primary_key=True),
    Column("run_id", Integer, primary_key=True),
    Column("chunk", Integer, primary_key=True),  # 0, 1, ...: the pieces of ``data``, in order
    Column("data", LongText, nullable=False),
    **MYSQL_OPTS,
)


# --- bookkeeping -------------------------------------------------------------------------------

commit_markers = Table(
    "commit_markers",
    metadata,
    # One row per write transaction, inserted in that transaction. When the connection drops
    # while COMMIT is in flight the writer cannot know whether it committed; on reconnect it
    # looks for its token here and replays the transaction only if it is absent, so a retry
    # never duplicates rows. Rows older than the retry budget are deleted now and then.
    Column("token", String(32), primary_key=True),
    Column("committed_at", Double, nullable=False),
    Index(None, "committed_at"),
    **MYSQL_OPTS,
)


# --- several servers on one database -----------------------------------------------------------

#: the widest host name the servers table keeps (a Linux host name is at most 64 bytes; an FQDN
#: up to 253)
HOST_MAX = 255
#: an instance ID: ``--server-id`` (64 bytes at most, as ConTest's) or host-pid-suffix
INSTANCE_ID_MAX = 64

servers = Table(
    "servers",
    metadata,
    # One row per live ``contest serve`` process (see contest.storage.fleet): its identity, how
    # to reach it, and its heartbeat. Times are the DATABASE's clock (unix seconds), so servers
    # whose clocks disagree still agree on whose heartbeat has lapsed. The row is deleted on a
    # clean stop; a killed server's row stays until its heartbeat is seen to have lapsed.
    Column("instance_id", String(INSTANCE_ID_MAX), primary_key=True),
    Column("server_id", String(SERVER_ID_MAX), nullable=False),  # ConTest's ServerID it shows
    Column("host", String(HOST_MAX), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(64), nullable=False),
    Column("listen", String(HOST_MAX), nullable=False),  # "" for a process that serves no API
    Column("started_at", Double, nullable=False),
    Column("heartbeat_at", Double, nullable=False),
    Column("lease", Double, nullable=False),  # its --job-lease: live while heartbeat + lease > now
    Column("draining", Boolean, nullable=False, server_default="0"),
    **MYSQL_OPTS,
)

job_leases = Table(
    "job_leases",
    metadata,
    # Which instance runs a job now. Claimed before the job's JobStateStarted, renewed by its
    # owner's heartbeat (every lease/3), let lapse on pause, deleted once the job's final state
    # is stored. A job in a running state whose lease has expired (by the database's clock) is
    # a zombie. ``epoch`` grows by one at every claim of the job: the fencing token.
    Column("job_id", BigInteger, primary_key=True),
    Column("owner", String(INSTANCE_ID_MAX), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("expires_at", Double, nullable=False),
    Index(None, "owner"),
    Index(None, "expires_at"),
    **MYSQL_OPTS,
)

job_commands = Table(
    "job_commands",
    metadata,
    # A request (``stop``) received by a server that does not run the job, for the job's owner:
    # the owner polls for the commands of its jobs (every 0.5 s), deletes and applies them.
    Column("command_id", AutoId, primary_key=True, autoincrement=True),
    Column("job_id", BigInteger, nullable=False),
    Column("command", String(16), nullable=False),
    Column("requested_by", String(INSTANCE_ID_MAX), nullable=False),
    Column("requested_at", Double, nullable=False),
    Index(None, "job_id"),
    sqlite_autoincrement=True,
    **MYSQL_OPTS,
)

job_checkpoints = Table(
    "job_checkpoints",
    metadata,
    # A running job's step checkpoints (contest.checkpoint): the per-target state of the steps
    # that keep one, replaced by its owner every checkpoint period when it changed (a write
    # fenced by the job's lease), read by the server taking the job over, deleted in the
    # transaction storing the job's final state (as its lease).
    Column("job_id", BigInteger, primary_key=True),
    Column("data", LongText, nullable=False),  # the checkpoint's JSON
    Column("saved_at", Double, nullable=False),  # unix seconds, the owner's clock (for people)
    **MYSQL_OPTS,
)
