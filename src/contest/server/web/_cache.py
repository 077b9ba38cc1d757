"""What the pages remember between requests, so that looking again costs little.

* A job's shape: its extended descriptor never changes, and a 10,000-target one is a megabyte
  of JSON; each is read and parsed once.
* A run's counts (routing events by test, attempt, step and name): counting a 10,000-target run
  takes the database a fifth of a second; later requests count only the events stored since.
  Counts are kept with the event number they go up to, so a request drawn at an older snapshot
  (a live stream opened by an older page) counts afresh rather than see the future.

Both are bounded (the least recently used go first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from contest.server.web import _queries as Q
from contest.server.web._model import Counts, JobShape, job_shape

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)


class Memory:
    def __init__(self, shapes: int = 64, runs: int = 256) -> None:
        self._shapes: LRU[int, JobShape] = LRU(shapes)
        self._counts: LRU[tuple[int, int], tuple[int, Counts]] = LRU(runs)

    async def shape(self, conn: Any, job_id: int) -> JobShape:
        shape = self._shapes.get(job_id)
        if shape is None:
            shape = job_shape(await Q.extended_descriptor(conn, job_id))
            self._shapes.put(job_id, shape)
        return shape

    async def counts(
        self, conn: Any, runs: Sequence[tuple[int, int]], upto: int
    ) -> dict[tuple[int, int], Counts]:
        """The counts of each ``(job, run)`` up to event ``upto`` (copies: callers change them)."""
        out: dict[tuple[int, int], Counts] = {}
        fresh: list[tuple[int, int]] = []
        newer: dict[int, list[tuple[int, int]]] = {}  # counted up to -> runs
        for run in dict.fromkeys(runs):
            known = self._counts.get(run)
            if known is None or known[0] > upto:
                fresh.append(run)
                out[run] = {}
            else:
                out[run] = dict(known[1])
                if known[0] < upto:
                    newer.setdefault(known[0], []).append(run)
        batches = [(fresh, None), *((rs, after) for after, rs in newer.items())]
        for batch, after in batches:
            if not batch:
                continue
            for job_id, test, attempt, step, event, n in await Q.run_counts(
                conn, batch, upto, after=after
            ):
                for run in batch:
                    if run[0] == job_id:
                        key = (test, attempt, step, event)
                        out[run][key] = out[run].get(key, 0) + n
        for run, counts in out.items():
            self._counts.put(run, (upto, dict(counts)))
        return out
