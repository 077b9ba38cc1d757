"""Big answers (status documents) sent in pieces, and gzipped for clients that accept it.

A status document can be hundreds of megabytes, kept as the parts it was encoded in (each run's
status); they go out in pieces of about :data:`SEND_PIECE` bytes, so the transport's buffer and
the copies made on the way stay that small and the client reads while the server writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

SEND_PIECE = 1024 * 1024


def pieces(parts: Sequence[bytes], size: int = SEND_PIECE) -> Iterator[bytes]:
    """``parts``, in order, cut (the big ones) and joined (the small ones) into pieces of about
    ``size`` bytes."""
    pending: list[bytes] = []
    held = 0
    for part in parts:
        view = memoryview(part)
        for i in range(0, len(view), size):
            piece = view[i : i + size].tobytes() if len(view) > size else part
            pending.append(piece)
            held += len(piece)
            if held >= size:
                yield b"".join(pending)
                pending, held = [], 0
    if pending:
        yield b"".join(pending)


def accepts_gzip(accept_encoding: str) -> bool:
    """Does an ``Accept-Encoding`` header accept gzip (``gzip``, not with ``q=0``)?"""
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip"):
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False
