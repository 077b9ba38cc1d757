"""Alembic env: online mode uses the connection handed over in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from contest.storage.migrations import VERSION_TABLE
from contest.storage.schema import metadata

config = context.config

if context.is_offline_mode():
    # `alembic upgrade --sql`: print the DDL for a DBA instead of running it
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
