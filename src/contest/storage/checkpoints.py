"""The ``job_checkpoints`` table: one row per running job that keeps step checkpoints (see
:mod:`contest.checkpoint`; the storage sees an opaque blob)."""

from __future__ import annotations

import time
from collections.abc import Collection

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from contest.storage.schema import job_checkpoints


async def save(conn: AsyncConnection, job_id: int, data: str) -> None:
    """Replace the job's checkpoint (a delete and an insert: the same SQL on every database).
    Only the holder of the job's lease writes it, one write at a time, each fenced by the lease
    in this transaction (``Storage.store_checkpoint``)."""
    await conn.execute(delete(job_checkpoints).where(job_checkpoints.c.job_id == job_id))
    await conn.execute(
        insert(job_checkpoints).values(job_id=job_id, data=data, saved_at=time.time())
    )


async def load(conn: AsyncConnection, job_id: int) -> str | None:
    row = (
        await conn.execute(select(job_checkpoints.c.data).where(job_checkpoints.c.job_id == job_id))
    ).first()
    return None if row is None else str(row[0])


async def forget(conn: AsyncConnection, job_ids: Collection[int]) -> None:
    """Delete the checkpoints of jobs that just ended (in the transaction of their final
    states)."""
    ids = sorted(set(job_ids))
    if ids:
        await conn.execute(delete(job_checkpoints).where(job_checkpoints.c.job_id.in_(ids)))
