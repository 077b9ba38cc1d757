"""Saved statuses of finished runs (``run_statuses``): opaque bytes, as base64 text in chunks.

What the bytes mean is :mod:`contest.job.status`'s business; here they are only stored and
read back whole. Text rather than a binary column: aiomysql cannot send ``bytes`` parameters
with current PyMySQL, and base64 needs no quoting, so a chunk's size in a MySQL statement is
its length. A run's chunks are replaced together in one transaction, so a reader sees all of a
run's chunks or none of them.
"""

from __future__ import annotations

import base64
import binascii

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from contest.storage.schema import run_statuses

#: a chunk never exceeds this many characters (the storage lowers it for a small MySQL packet)
CHUNK_MAX = 1024 * 1024


def split(data: bytes, chunk: int) -> list[str]:
    """``data`` as base64 pieces of at most ``chunk`` characters (one piece, maybe empty, at
    least)."""
    text = base64.b64encode(data).decode("ascii")
    return [text[i : i + chunk] for i in range(0, len(text), chunk)] or [""]


async def save(conn: AsyncConnection, job_id: int, run_id: int, chunks: list[str]) -> None:
    t = run_statuses
    await conn.execute(delete(t).where(t.c.job_id == job_id, t.c.run_id == run_id))
    for i, piece in enumerate(chunks):  # one row a statement: each stays below the packet size
        await conn.execute(insert(t).values(job_id=job_id, run_id=run_id, chunk=i, data=piece))


async def load(conn: AsyncConnection, job_id: int) -> dict[int, bytes]:
    """Run ID -> the saved bytes, for every run of the job that has them (whole and
    readable)."""
    t = run_statuses
    rows = await conn.execute(
        select(t.c.run_id, t.c.chunk, t.c.data)
        .where(t.c.job_id == job_id)
        .order_by(t.c.run_id, t.c.chunk)
    )
    pieces: dict[int, list[str]] = {}
    broken: set[int] = set()
    for run_id, chunk, data in rows:
        got = pieces.setdefault(int(run_id), [])
        if chunk != len(got):  # a gap: not written by save()
            broken.add(int(run_id))
        got.append(data)
    out = {}
    for run_id, texts in pieces.items():
        if run_id in broken:
            continue
        try:
            out[run_id] = base64.b64decode("".join(texts), validate=True)
        except (binascii.Error, ValueError):
            continue
    return out
