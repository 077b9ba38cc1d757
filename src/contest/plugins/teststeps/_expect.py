"""An expect matcher over a rolling buffer: one reader feeds it, any number of waiters match.

Why not one reader per waiter: bytes read by one reader are gone for the others, so several
targets waiting on one console (ConTest's TerminalExpect, which started one line reader per
target on a shared hook) race for the bytes and each sees only part of the output. Here one
reader calls :meth:`RollingBuffer.feed`, and every waiter matches against the same bytes from
its own cursor (an absolute offset, see :meth:`RollingBuffer.mark`), so every waiter sees every
byte that arrived after its mark.

Matching is on bytes, as they come, not line by line: a prompt without a newline
(``login: ``) matches as soon as it is printed. A pattern is a ``bytes`` substring or a compiled
``bytes`` regex. Only the last ``size`` bytes are kept; a waiter whose cursor fell out of the
window matches against what is left (the reader never waits for slow waiters).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

Pattern = bytes | re.Pattern[bytes]


class StreamClosed(Exception):
    """The stream ended (or failed) before the pattern appeared."""


@dataclass(frozen=True, slots=True)
class Match:
    start: int  # absolute offsets in the stream
    end: int
    data: bytes  # what matched


class RollingBuffer:
    """The last ``size`` bytes of a stream, addressed by absolute offset."""

    __slots__ = ("_closed", "_data", "_error", "_size", "_start", "_waiters")

    def __init__(self, size: int = 64 * 1024) -> None:
        if size <= 0:
            raise ValueError("size must be positive")
        self._size = size
        self._data = bytearray()
        self._start = 0  # absolute offset of _data[0]
        self._closed = False
        self._error: BaseException | None = None
        self._waiters: set[asyncio.Future[None]] = set()

    @property
    def size(self) -> int:
        return self._size

    @property
    def start(self) -> int:
        return self._start

    @property
    def end(self) -> int:
        return self._start + len(self._data)

    @property
    def closed(self) -> bool:
        return self._closed

    def mark(self) -> int:
        """A cursor at the end of what has been seen: match only what comes after it."""
        return self.end

    def text(self, since: int = 0) -> str:
        """What the window holds from ``since`` on, decoded (for logs and failure texts)."""
        return bytes(self._data[max(0, since - self._start) :]).decode("utf-8", "replace")

    def feed(self, data: bytes) -> None:
        if not data or self._closed:
            return
        self._data += data
        extra = len(self._data) - self._size
        if extra > 0:
            del self._data[:extra]
            self._start += extra
        self._wake()

    def close(self, error: BaseException | None = None) -> None:
        """The stream ended (``error`` None) or failed; every waiter is told."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def find(self, pattern: Pattern, since: int) -> Match | None:
        """The first match starting at or after ``since`` (or the window's start), if any."""
        base = max(since, self._start) - self._start
        if isinstance(pattern, bytes):
            i = self._data.find(pattern, base)
            if i < 0:
                return None
            return Match(self._start + i, self._start + i + len(pattern), pattern)
        m = pattern.search(self._data, base)
        if m is None:
            return None
        return Match(self._start + m.start(), self._start + m.end(), m.group(0))

    async def expect(self, pattern: Pattern, since: int) -> Match:
        """Wait until ``pattern`` appears after ``since``. Raises ``StreamClosed`` if the stream
        ends first. No timeout of its own: the caller bounds it (and cancels it)."""
        if isinstance(pattern, bytes) and not pattern:
            return Match(max(since, self._start), max(since, self._start), b"")
        scanned = since  # for a substring: where a new match can start at the earliest
        loop = asyncio.get_running_loop()
        while True:
            found = self.find(pattern, scanned)
            if found is not None:
                return found
            if isinstance(pattern, bytes):
                # the next match can only overlap the last len-1 bytes seen
                scanned = max(since, self.end - len(pattern) + 1)
            if self._closed:
                why = f": {self._error}" if self._error is not None else ""
                raise StreamClosed(f"stream closed before a match{why}")
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.add(fut)
            try:
                await fut
            finally:
                self._waiters.discard(fut)
