"""Group commit: many concurrent writers, one transaction per batch.

Writers call :meth:`GroupCommitWriter.submit`, which appends the item to the open batch and
returns at once; the item's place in the order is fixed right there. One background task
takes the open batch whenever the previous commit is done, writes it in one transaction
(the ``flush`` callback does multi-row inserts) and then wakes every writer of that batch.
While a commit is in flight the next batch fills up, so the busier the writers, the bigger the
batches, and the number of transactions (and fsyncs) stays small.

What a writer awaits is a tiny per-item object over the batch's one future, so an emit costs no
future and no task of its own, and one failed item can fail alone: when a batch fails for a
reason other than connection loss (a row the database refuses despite the size checks), the
batch is written again one item per transaction, so only the culprit's writer sees the error.
Connection loss is retried by the :class:`~contest.storage.retry.Transactor`; when its budget is
spent, every writer of the batch gets :class:`~contest.storage.errors.StorageUnavailable`,
unless the writer holds batches through outages (:meth:`GroupCommitWriter.hold_outages`, what
a server does): then the batch stays queued, with everything after it, and is tried again with
backoff until the database answers. Its writers simply wait (a step emitting an event is
suspended, not failed), and nothing a step had handed over is lost; the queue is bounded, and
a write beyond the bound during an outage is refused at once.

The flush may refuse single items by returning their errors by index (the storage's lease
fencing: :class:`~contest.storage.errors.LeaseLost` for the events of a job whose lease this
server no longer holds); the rest of the batch commits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncConnection

from contest.metrics import EVENT_WRITE_SECONDS, EVENTS_WRITTEN
from contest.storage.errors import StorageClosed, StorageError, StorageUnavailable
from contest.storage.retry import HeldSource, InThreadWork, Transactor, WriteState

log = logging.getLogger(__name__)
T = TypeVar("T")

#: writes a batch; may return the errors of the items it refused, by index (None: all written)
FlushFn = Callable[[AsyncConnection, list[T]], Awaitable[dict[int, BaseException] | None]]
#: the same for a batch written in one trip to SQLite's thread, or None (see Transactor.write)
InThreadFn = Callable[[list[T]], InThreadWork[dict[int, BaseException] | None] | None]


class _Commit(asyncio.Future[None]):
    """A batch's commit, which every writer of the batch awaits.

    It cannot be cancelled: a task cancelled while awaiting a future cancels that future, and
    this one is shared, so one cancelled emitter would fail every other emitter of the batch
    (their events committed all the same) and break the writer's loop. Refusing makes asyncio
    deliver the cancellation to that task alone, once the batch is done (a commit: normally
    milliseconds; in an outage, when the writer gives up).
    """

    def cancel(self, msg: Any = None) -> bool:
        return False


class _Batch(Generic[T]):
    __slots__ = ("done", "error", "item_errors", "items", "opened")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.opened = time.monotonic()  # when its first item came (contest_event_write_seconds)
        self.items: list[T] = []
        self.done: asyncio.Future[None] = _Commit(loop=loop)
        self.error: StorageError | None = None  # the whole batch failed
        self.item_errors: dict[int, BaseException] | None = None  # single items failed


class Ack:
    """What a writer awaits: completes when its item is committed, or raises why not.

    Its own iterator (``__await__`` returns it), as ``asyncio.Future`` is, rather than a
    generator: one object per event instead of two. Every emit makes one and keeps it until
    the commit, so what it costs the garbage collector counts.
    """

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: _Batch[Any], index: int) -> None:
        self._batch = batch
        self._index = index

    def __await__(self) -> Generator[asyncio.Future[None], Any, None]:
        # it is one: __next__, send and throw, the protocol ``await`` drives
        return cast("Generator[asyncio.Future[None], Any, None]", self)

    def __iter__(self) -> Ack:
        return self

    def __next__(self) -> asyncio.Future[None]:
        done = self._batch.done
        if not done.done():
            done._asyncio_future_blocking = True  # what Future.__await__ does before yielding
            return done
        self._result()
        raise StopIteration

    def send(self, value: Any) -> asyncio.Future[None]:
        return self.__next__()

    def throw(self, exc: Any, value: Any = None, tb: Any = None) -> asyncio.Future[None]:
        # the awaiting task was cancelled (or thrown into) while waiting: it ends here
        if isinstance(exc, BaseException):
            raise exc
        raise exc if value is None else value

    def _result(self) -> None:
        batch = self._batch
        if batch.error is not None:
            # a fresh exception per writer: one instance raised in many tasks would pile
            # every task's traceback onto it
            try:
                err = type(batch.error)(str(batch.error))
            except TypeError:
                err = StorageError(str(batch.error))
            raise err from batch.error.__cause__
        if batch.item_errors is not None:
            item_err = batch.item_errors.get(self._index)
            if item_err is not None:
                raise item_err

    def done(self) -> bool:
        return self._batch.done.done()

    def batch(self) -> asyncio.Future[None]:
        """The commit of this item's batch: one future that every item of the batch shares, so
        whoever waits for many items can wait once per batch (the test runner does)."""
        return self._batch.done

    def result(self) -> None:
        """Once :meth:`done`: return if the item is committed, else raise why not (what
        ``await`` gives)."""
        self._result()


class GroupCommitWriter(Generic[T]):
    """Writes submitted items in batches, one transaction each, in submission order.

    ``flush(conn, items)`` writes a batch on a connection inside an open transaction (it must
    not commit). Batches never exceed ``max_batch`` items. ``in_thread(items)``, if given, may
    offer the same write for SQLite's own connection (see :meth:`Transactor.write`).
    """

    def __init__(
        self,
        flush: FlushFn[T],
        transactor: Transactor,
        *,
        max_batch: int = 10_000,
        name: str = "events",
        in_thread: InThreadFn[T] | None = None,
    ) -> None:
        self._flush = flush
        self._in_thread = in_thread
        self._tx = transactor
        self._max_batch = max_batch
        self._name = name
        self._batches: deque[_Batch[T]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._inflight: _Batch[T] | None = None
        self._open: _Batch[T] | None = None  # the batch new items go to (the last queued one)
        self._source = HeldSource(transactor.engine)
        self.batches_written = 0
        self.items_written = 0
        self._hold = False  # keep batches through outages (hold_outages)
        self._hold_max = 0
        self._hold_backoff = 5.0
        self.outage_since: float | None = None  # time.monotonic() when a held outage began

    def hold_outages(self, *, max_items: int = 1_000_000, max_backoff: float = 5.0) -> None:
        """From now on, a batch the database refuses past the retry budget is kept and tried
        again (backoff up to ``max_backoff`` s) until it commits, instead of failing its
        writers; while that lasts, a write that would queue more than ``max_items`` items
        raises :class:`StorageUnavailable` at once (the memory stays bounded)."""
        self._hold = True
        self._hold_max = max_items
        self._hold_backoff = max_backoff

    # --- the writers' side -------------------------------------------------------------------

    def submit(self, item: T) -> Ack:
        """Queue ``item`` behind everything submitted before; await the result to know it is
        committed."""
        batch = self._open
        if batch is None or len(batch.items) >= self._max_batch or self._closed:
            batch = self._new_batch()
        if self.outage_since is not None:
            self._check_room()
        items = batch.items
        items.append(item)
        return Ack(batch, len(items) - 1)

    def queued(self) -> int:
        """Items submitted and not yet committed (nor failed)."""
        n = sum(len(b.items) for b in self._batches)
        return n + (len(self._inflight.items) if self._inflight is not None else 0)

    def _check_room(self) -> None:
        if self.queued() >= self._hold_max:
            down = time.monotonic() - (self.outage_since or 0.0)
            raise StorageUnavailable(
                f"the database has been unreachable for {down:.0f} s and {self._hold_max} "
                f"{self._name} wait for it: not taking more"
            )

    def _new_batch(self) -> _Batch[T]:
        """The batch to add to when there is no open one, or it is full: a new one (and the
        background task, if it is not running)."""
        if self._closed:
            raise StorageClosed("storage is closed")
        open_batch = self._open
        if open_batch is not None and len(open_batch.items) < self._max_batch:
            return open_batch
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():  # first use, or cancelled under us
            self._task = loop.create_task(self._run(), name=f"contest-storage-writer-{self._name}")
        batch = self._open = _Batch(loop)
        self._batches.append(batch)
        self._wakeup.set()
        return batch

    @staticmethod
    async def settled(ack: Ack) -> None:
        """Wait until ``ack``'s item, and so everything submitted before it, is committed (or
        has failed): batches are written in order. Raises nothing."""
        done = ack._batch.done
        if not done.done():
            await asyncio.shield(done)

    async def flush(self) -> None:
        """Wait until everything submitted so far is committed (or has failed)."""
        last = self._batches[-1] if self._batches else self._inflight
        if last is not None and not last.done.done():
            await asyncio.shield(last.done)

    async def close(self) -> None:
        """Refuse new items, write what is queued, stop the task, return the connection."""
        self._closed = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._source.close()

    # --- the background task -----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._batches:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # writers woken by the last commit are still queued to run: let them add to the
            # batch before it is taken
            await asyncio.sleep(0)
            batch = self._inflight = self._batches.popleft()
            if batch is self._open:
                self._open = None
            try:
                await self._write(batch)
            except BaseException as e:  # never leave writers hanging, even on cancellation
                if batch.error is None and not isinstance(e, Exception):
                    batch.error = StorageClosed("storage writer stopped")
                if not batch.done.done():
                    batch.done.set_result(None)
                if not isinstance(e, Exception):
                    self._fail_all(StorageClosed("storage writer stopped"))
                    raise
                log.exception("storage writer failed on a batch")
            else:
                batch.done.set_result(None)
            finally:
                self._inflight = None

    def _fail_all(self, error: StorageError) -> None:
        self._open = None
        while self._batches:
            b = self._batches.popleft()
            b.error = error
            if not b.done.done():
                b.done.set_result(None)

    def _work(
        self, items: list[T]
    ) -> Callable[[AsyncConnection], Awaitable[dict[int, BaseException] | None]]:
        return lambda conn: self._flush(conn, items)

    def _thread_work(
        self, items: list[T]
    ) -> Callable[[], InThreadWork[dict[int, BaseException] | None] | None] | None:
        in_thread = self._in_thread
        return None if in_thread is None else (lambda: in_thread(items))

    async def _write_held(self, items: list[T], what: str) -> dict[int, BaseException] | None:
        """The batch's transaction; through an outage longer than the retry budget when the
        writer holds outages: the same write (one token, so never twice) is tried again with
        backoff until it commits, or the writer is closed."""
        state = WriteState()
        delay = 0.25
        while True:
            try:
                refused = await self._tx.write(
                    self._work(items), what, self._source, state, self._thread_work(items)
                )
            except StorageUnavailable as e:
                if not self._hold or self._closed:
                    raise
                if self.outage_since is None:
                    self.outage_since = time.monotonic()
                    log.error("%s: %s; holding them (%d queued) until the database is back",
                              what, e, self.queued())  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._hold_backoff)
                continue
            if self.outage_since is not None:
                log.warning("%s: the database is back after %.1f s; writing what was held",
                            what, time.monotonic() - self.outage_since)  # fmt: skip
                self.outage_since = None
            return refused

    async def _write(self, batch: _Batch[T]) -> None:
        items = batch.items
        what = f"writing {len(items)} {self._name}"
        try:
            refused = await self._write_held(items, what)
        except StorageError as e:
            batch.error = e
            return
        except Exception as e:
            if len(items) == 1:
                batch.item_errors = {0: e}
                return
            log.warning("%s failed (%s); writing them one by one", what, e)
            await self._write_singly(batch)
            return
        written = len(items)
        if refused:
            batch.item_errors = refused
            written -= len(refused)
        self.batches_written += 1
        self.items_written += written
        EVENTS_WRITTEN.inc(written)
        EVENT_WRITE_SECONDS.observe(time.monotonic() - batch.opened)

    async def _write_singly(self, batch: _Batch[T]) -> None:
        errors: dict[int, BaseException] = {}
        for i, item in enumerate(batch.items):
            try:
                refused = await self._write_held([item], "writing 1 item")
            except Exception as e:
                errors[i] = e
                continue
            if refused:
                errors[i] = refused[0]
            else:
                self.items_written += 1
                EVENTS_WRITTEN.inc()
        self.batches_written += 1
        batch.item_errors = errors
