"""The line for busy targets: target_waits, target_wait_tickets.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# frozen copies of the schema's options: a revision must not change when schema.py does
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
        "target_waits",
        sa.Column("target_id", sa.String(512), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("ticket", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("target_id", "job_id", name="pk_target_waits"),
        **OPTS,
    )
    op.create_index("ix_target_waits_job_id", "target_waits", ["job_id"])
    op.create_index("ix_target_waits_expires_at", "target_waits", ["expires_at"])
    tickets = op.create_table(
        "target_wait_tickets",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_ticket", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_target_wait_tickets"),
        **OPTS,
    )
    op.bulk_insert(tickets, [{"id": 1, "last_ticket": 0}])


def downgrade() -> None:
    op.drop_table("target_wait_tickets")
    op.drop_table("target_waits")
