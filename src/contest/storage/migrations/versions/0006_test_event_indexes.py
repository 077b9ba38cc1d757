"""Test events: indexes that an event batch writes near each other.

A job's targets move through a step together, so one batch of events holds one row per
target: an index led by the target took each batch all over its tree, and on SQLite cost more
than the rows themselves. The target joins the run/test/step index instead, where a batch's
rows land side by side (a target's events in a job are found by seeking each step, see
contest.storage.events.step_keys). What still looks a target up across jobs (the web view's
page of a target: the jobs that acquired it, its last failure) reads two partial indexes, of
the ``TargetAcquired`` and ``TargetErr`` rows only, on SQLite and PostgreSQL; MariaDB and
MySQL have no partial index: theirs covers every row, by target and event name (so that a
target's last failure is the end of one range). The index on ``emit_time`` served no query
(every read names its job).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_STEPS = ["job_id", "run_id", "test_name", "step_label"]
_PARTIAL = {
    "ix_test_events_target_id_acquired": "TargetAcquired",
    "ix_test_events_target_id_failed": "TargetErr",
}


def _partial_indexes() -> bool:
    return op.get_bind().dialect.name in ("sqlite", "postgresql")


def upgrade() -> None:
    op.create_index(
        "ix_test_events_job_id_run_id_test_name_step_label_target_id",
        "test_events",
        [*_STEPS, "target_id"],
    )
    op.drop_index("ix_test_events_job_id_run_id_test_name_step_label", table_name="test_events")
    op.drop_index("ix_test_events_emit_time", table_name="test_events")
    if _partial_indexes():
        for name, event in _PARTIAL.items():
            where = sa.text(f"event_name = '{event}'")
            op.create_index(
                name, "test_events", ["target_id"], sqlite_where=where, postgresql_where=where
            )
    else:
        op.create_index(
            "ix_test_events_target_id_event_name", "test_events", ["target_id", "event_name"]
        )
    op.drop_index("ix_test_events_target_id", table_name="test_events")


def downgrade() -> None:
    op.create_index("ix_test_events_target_id", "test_events", ["target_id"])
    if _partial_indexes():
        for name in _PARTIAL:
            op.drop_index(name, table_name="test_events")
    else:
        op.drop_index("ix_test_events_target_id_event_name", table_name="test_events")
    op.create_index("ix_test_events_emit_time", "test_events", ["emit_time"])
    op.create_index("ix_test_events_job_id_run_id_test_name_step_label", "test_events", _STEPS)
    op.drop_index(
        "ix_test_events_job_id_run_id_test_name_step_label_target_id", table_name="test_events"
    )
