"""Several servers on one database: servers, job_leases, job_commands.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# frozen copies of the schema's types: a revision must not change when schema.py does
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
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
        "servers",
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("listen", sa.String(255), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("heartbeat_at", sa.Double(), nullable=False),
        sa.Column("lease", sa.Double(), nullable=False),
        sa.Column("draining", sa.Boolean(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("instance_id", name="pk_servers"),
        **OPTS,
    )
    op.create_table(
        "job_leases",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_job_leases"),
        **OPTS,
    )
    op.create_index("ix_job_leases_owner", "job_leases", ["owner"])
    op.create_index("ix_job_leases_expires_at", "job_leases", ["expires_at"])
    op.create_table(
        "job_commands",
        sa.Column("command_id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("command", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("command_id", name="pk_job_commands"),
        sqlite_autoincrement=True,
        **OPTS,
    )
    op.create_index("ix_job_commands_job_id", "job_commands", ["job_id"])


def downgrade() -> None:
    op.drop_table("job_commands")
    op.drop_table("job_leases")
    op.drop_table("servers")
