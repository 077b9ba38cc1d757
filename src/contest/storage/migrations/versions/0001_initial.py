"""Initial schema: jobs, job_tags, test_events, framework_events, reports, target_locks,
commit_markers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# frozen copies of the schema's types: a revision must not change when schema.py does
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
OPTS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mariadb_engine": "InnoDB",
    "mariadb_charset": "utf8mb4",
    "mariadb_collate": "utf8mb4_bin",
}


def upgrade() -> None:
    op.create_table(
        "target_locks",
        sa.Column("target_id", sa.String(512), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("target_id", name="pk_target_locks"),
        **OPTS,
    )
    op.create_index("ix_target_locks_job_id", "target_locks", ["job_id"])
    op.create_index("ix_target_locks_expires_at", "target_locks", ["expires_at"])

    op.create_table(
        "jobs",
        sa.Column("job_id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("requestor", sa.String(32), nullable=False),
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("request_time", sa.Double(), nullable=False),
        sa.Column("descriptor", LONG_TEXT, nullable=False),
        sa.Column("extended_descriptor", LONG_TEXT, nullable=True),
        sa.Column("state", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("state_time", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name="pk_jobs"),
        **OPTS,
    )
    op.create_index("ix_jobs_state_job_id", "jobs", ["state", "job_id"])
    op.create_index("ix_jobs_server_id_state", "jobs", ["server_id", "state"])
    op.create_index("ix_jobs_requestor", "jobs", ["requestor"])

    op.create_table(
        "job_tags",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "tag", name="pk_job_tags"),
        **OPTS,
    )
    op.create_index("ix_job_tags_tag_job_id", "job_tags", ["tag", "job_id"])

    op.create_table(
        "test_events",
        sa.Column("sequence", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("test_name", sa.String(64), nullable=False),
        sa.Column("test_attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("step_label", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(512), nullable=True),
        sa.Column("target", LONG_TEXT, nullable=True),
        sa.Column("event_name", sa.String(32), nullable=False),
        sa.Column("payload", LONG_TEXT, nullable=True),
        sa.Column("emit_time", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name="pk_test_events"),
        sqlite_autoincrement=True,
        **OPTS,
    )
    op.create_index(
        "ix_test_events_job_id_run_id_test_name_step_label",
        "test_events",
        ["job_id", "run_id", "test_name", "step_label"],
    )
    op.create_index("ix_test_events_job_id_event_name", "test_events", ["job_id", "event_name"])
    op.create_index("ix_test_events_target_id", "test_events", ["target_id"])
    op.create_index("ix_test_events_emit_time", "test_events", ["emit_time"])

    op.create_table(
        "framework_events",
        sa.Column("sequence", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("event_name", sa.String(32), nullable=False),
        sa.Column("payload", LONG_TEXT, nullable=True),
        sa.Column("emit_time", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name="pk_framework_events"),
        sqlite_autoincrement=True,
        **OPTS,
    )
    op.create_index(
        "ix_framework_events_job_id_event_name", "framework_events", ["job_id", "event_name"]
    )
    op.create_index("ix_framework_events_emit_time", "framework_events", ["emit_time"])

    op.create_table(
        "reports",
        sa.Column("report_id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("reporter_name", sa.String(32), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("data", LONG_TEXT, nullable=True),
        sa.Column("report_time", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("report_id", name="pk_reports"),
        **OPTS,
    )
    op.create_index(
        "ix_reports_job_id_run_id_reporter_name", "reports", ["job_id", "run_id", "reporter_name"]
    )

    op.create_table(
        "commit_markers",
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("committed_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("token", name="pk_commit_markers"),
        **OPTS,
    )
    op.create_index("ix_commit_markers_committed_at", "commit_markers", ["committed_at"])


def downgrade() -> None:
    for table in (
        "commit_markers",
        "reports",
        "framework_events",
        "test_events",
        "job_tags",
        "jobs",
        "target_locks",
    ):
        op.drop_table(table)
