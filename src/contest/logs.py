"""Logging for the commands: one line per record, as text or JSON, each line of a job naming the
job and the step it is about; other packages' warnings out of sight unless debugging.

The job and step come from context variables that the job manager (:func:`bind_job`, in the
job's task) and the test runner (:func:`bind_step`, in each step's task) set. asyncio copies
the context into every task it creates, so whatever a step or a plugin logs, from any task it
starts, carries them without the plugin doing anything.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
import queue
import sys
import threading
import time
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from contest.redaction import SecretLogFilter

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")

_job: contextvars.ContextVar[int | None] = contextvars.ContextVar("contest_log_job", default=None)
_step: contextvars.ContextVar[str | None] = contextvars.ContextVar("contest_log_step", default=None)

# chatty at info, useful only when debugging (schema migrations, plugin set-up, connections)
_QUIET_BELOW_DEBUG = ("alembic", "asyncssh", "httpx", "httpcore", "uvicorn.error")


def bind_job(job_id: int) -> None:
    """Log lines of the current task (and of the tasks it starts from now on) name this job."""
    _job.set(job_id)


def bind_step(label: str) -> None:
    """Log lines of the current task (and of the tasks it starts) name this step label."""
    _step.set(label)


def current() -> tuple[int | None, str | None]:
    """The job ID and step label the current task's log lines carry."""
    return _job.get(), _step.get()


class _Context(logging.Filter):
    """Stamps each record with the job and step of the task that logs it (a handler's filter
    runs in that task, so the context variables are the logger's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = _job.get()
        record.step = _step.get()
        return True


def _where(record: logging.LogRecord) -> str:
    job = getattr(record, "job_id", None)
    step = getattr(record, "step", None)
    if job is None and not step:
        return ""
    return _where_text(job, step)


def _where_text(job: int | None, step: str | None) -> str:
    parts = []
    if job is not None:
        parts.append(f"job {job}")
    if step:
        parts.append(f"step {step}")
    return "[" + " ".join(parts) + "] "


class TextFormatter(logging.Formatter):
    """``2024-05-01 10:00:00,123 WARNING contest.step: [job 3 step flash] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(where)s%(message)s")
        self._date: tuple[int, str] = (-1, "")  # a whole second and its text (one object:
        # a thread reading it while another replaces it sees one or the other, whole)

    def format(self, record: logging.LogRecord) -> str:
        record.where = _where(record)
        return super().format(record)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.time_text(record.created, int(record.msecs))

    def time_text(self, created: float, msecs: int) -> str:
        """logging.Formatter's own text of a time, its date written once a second rather than
        per line (a step logging a line per target logs thousands in the same second)."""
        second = int(created)
        date = self._date
        if date[0] != second:
            date = self._date = (
                second,
                time.strftime(self.default_time_format, self.converter(second)),
            )
        return f"{date[1]},{msecs:03d}"  # logging.Formatter.default_msec_format

    def line(self, created: float, level: int, name: str, message: str) -> str:
        """:meth:`format` of a record without an exception or a stack, logged at ``created``
        by logger ``name`` in the current task (its job and step)."""
        job, step = _job.get(), _step.get()
        where = "" if job is None and not step else _where_text(job, step)
        msecs = int((created - int(created)) * 1000)  # as logging.LogRecord makes it
        return (
            f"{self.time_text(created, msecs)} {logging.getLevelName(level)} {name}: "
            f"{where}{message}"
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``,
    ``job_id`` and ``step`` when known, ``exception`` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        job = getattr(record, "job_id", None)
        if job is not None:
            out["job_id"] = job
        step = getattr(record, "step", None)
        if step:
            out["step"] = step
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def quiet_warnings(level: str) -> None:
    """Below debug, warnings raised by other packages (cryptography's deprecation of DSA, which
    asyncssh triggers at import, is ten lines on every command) are dropped; at debug they are
    logged, one line each. ``-W`` and ``PYTHONWARNINGS`` still decide when given."""
    if sys.warnoptions:
        return
    if level == "debug":
        logging.captureWarnings(True)
        return
    warnings.filterwarnings("ignore", module=r"(?!contest(\.|$))")


#: lines formatted and waiting for the writer thread; beyond it a line waits for room, so a
#: stuck stream holds the logger up (as a direct write would) instead of growing memory
QUEUE_SIZE = 10_000


class _Handoff(logging.Handler):
    """Formats each record where it is logged (the job and step context is there) and hands
    the line to the writer thread. Writing stderr from the event loop was a system call per
    line, blocking when the pipe is full or the terminal slow: Echo logs a line per target,
    and a 300 x 20 Echo job through ``contest serve`` spent over a quarter of its loop's time
    in ``StreamHandler.emit`` (benchmarks/perf.py, section go). What crosses is the line, not
    the record: ``QueueHandler`` copied each record for a listener that only wrote its text,
    and the logging call cost twice what it does now (28 against 15 us)."""

    def __init__(self, writer: _Writer) -> None:
        super().__init__()
        self._put = writer.put

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._put(line)  # bounded (QUEUE_SIZE): waits for room rather than drop a line

    def reaches_only_me(self, logger: logging.Logger, level: int) -> bool:
        """Would a record of ``logger`` at ``level`` (which it is enabled for) reach this
        handler, formatted as text, and nothing else? Then :class:`QuickAdapter` may hand
        over its line without a record: nobody else could see the record."""
        if logger.filters or level < self.level or type(self.formatter) is not TextFormatter:
            return False
        # this handler's own filters: the job and step stamp, and the secrets' redaction
        # (which hand_over applies)
        kinds = [type(f) for f in self.filters]
        if kinds != [_Context] and kinds != [_Context, SecretLogFilter]:
            return False
        c: logging.Logger | None = logger
        while c is not None:
            if c.parent is None:  # the root logger: this handler alone
                return len(c.handlers) == 1 and c.handlers[0] is self
            if c.handlers or not c.propagate:
                return False
            c = c.parent
        return False

    def hand_over(
        self, logger: logging.Logger, level: int, msg: object, args: tuple[Any, ...]
    ) -> bool:
        """The line of a record, made without the record (see :class:`QuickAdapter`); False
        if it cannot be (the message does not format: the standard way reports why)."""
        formatter = self.formatter
        assert isinstance(formatter, TextFormatter)
        created = time.time()
        try:
            message = str(msg)
            if args:
                message = message % args
        except Exception:
            return False
        if len(self.filters) > 1:
            message = SecretLogFilter.message(message)
        self._put(formatter.line(created, level, logger.name, message))
        return True


_quick: _Handoff | None = None  # setup()'s handler, for QuickAdapter


if TYPE_CHECKING:
    _AdapterBase = logging.LoggerAdapter[logging.Logger]
else:
    _AdapterBase = logging.LoggerAdapter


class QuickAdapter(_AdapterBase):
    """A ``LoggerAdapter`` (``ctx.log`` of steps and plugins) whose lines go straight to the
    command's log handler when that handler is the only one a record would reach: a step
    logging a line per target (Echo, through ``contest serve`` at info) spent 12 us of the
    event loop per line in the ``logging`` machinery (some sixty calls: the record, the
    handler's filters and lock, the formatter, the queue's locks), against under 4 us for the
    same line made here. Anything else a record could meet (another handler, as pytest's
    ``caplog`` adds; a filter; an exception or stack to show; ``extra`` given to the call) goes
    the standard way, as does a message that does not format; the line is the same text
    either way (tests/e2e/test_e2e_logs.py)."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        quick = _quick
        logger = self.logger
        if (
            quick is not None
            and not kwargs
            and logger.isEnabledFor(level)
            and not (len(args) == 1 and isinstance(args[0], Mapping) and args[0])
            and quick.reaches_only_me(logger, level)
            and quick.hand_over(logger, level, msg, args)
        ):
            return
        super().log(level, msg, *args, **kwargs)


class _Writer:
    """The thread that writes the handed-off lines to the stream, in their order: what has
    queued up meanwhile in one write and one flush.

    The lines wait in a ``SimpleQueue``, whose ``put`` is one call into C: ``queue.Queue``'s
    took 3 us per line with its two locks and its bookkeeping, a quarter of a step's logging
    call. The bound is kept by :meth:`put`, and :meth:`flush` queues a marker that the thread
    sets once everything before it is written."""

    def __init__(self, stream: TextIO) -> None:
        self._lines: queue.SimpleQueue[str | threading.Event | None] = queue.SimpleQueue()
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name="contest-log-writer", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        """Queue a line; wait for room if :data:`QUEUE_SIZE` lines wait already (a stuck
        stream holds the logger up, as a direct write would, rather than grow memory). Lines
        given after the thread ended are dropped."""
        lines = self._lines
        if lines.qsize() >= QUEUE_SIZE:
            while lines.qsize() >= QUEUE_SIZE and self._thread.is_alive():
                time.sleep(0.001)
        if self._thread.is_alive() or lines.qsize() < QUEUE_SIZE:
            lines.put(line)

    def _run(self) -> None:
        get, get_nowait = self._lines.get, self._lines.get_nowait
        while True:
            items = [get()]
            with contextlib.suppress(queue.Empty):  # and what else has queued up
                while len(items) < 1_000:
                    items.append(get_nowait())
            text = [item for item in items if type(item) is str]
            # a closed or broken stream: the lines are lost, not the logger (nor its callers,
            # who would wait for room in the queue forever)
            with contextlib.suppress(Exception):
                if text:
                    self._stream.write("\n".join(text) + "\n")
                    self._stream.flush()
            end = False
            for item in items:
                if item is None:
                    end = True
                elif isinstance(item, threading.Event):
                    item.set()  # a flush's marker: what came before it is written
            if end:
                return

    def flush(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until every line handed over so far is written."""
        if self._thread.is_alive():
            written = threading.Event()
            self._lines.put(written)
            written.wait(timeout)

    def stop(self) -> None:
        """Write what is queued and end the thread."""
        self._lines.put(None)
        self._thread.join()


_writer: _Writer | None = None


def flush(timeout: float = 1.0) -> None:
    """Wait until the log lines logged so far are written (at most ``timeout`` s): before an
    ``os._exit``, which skips the writer thread's end."""
    if _writer is not None:
        _writer.flush(timeout)


def exit_now(code: int) -> None:
    """``os._exit(code)`` once the lines logged so far are written (at most a second)."""
    flush()
    os._exit(code)


@atexit.register
def _stop_writer() -> None:
    global _writer, _quick
    _quick = None  # lines go the standard way (to a handler whose thread is gone, as before)
    if _writer is not None:
        writer, _writer = _writer, None
        writer.stop()


def setup(level: str = "warning", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Configure the root logger for a command: ``level`` (one of :data:`LEVELS`), ``fmt``
    (``text`` or ``json``), lines to ``stream`` (stderr), written by a thread of their own
    (see :class:`_Handoff`); :func:`flush` waits for them."""
    global _writer, _quick
    quiet_warnings(level)
    _stop_writer()  # an earlier call's: what it had queued is written first
    _writer = _Writer(stream or sys.stderr)
    handler = _quick = _Handoff(_writer)
    handler.addFilter(_Context())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.set_name("contest")
    root = logging.getLogger()
    for old in list(root.handlers):  # ours from an earlier call; others' handlers stay
        if old.get_name() == "contest":
            root.removeHandler(old)
    root.addHandler(handler)
    # no line says where in the source, or which thread or process, it was logged from: skip
    # finding out, per record (the logging HOWTO's "Optimization")
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root.setLevel(level.upper())
    for name in _QUIET_BELOW_DEBUG:
        logging.getLogger(name).setLevel(logging.WARNING if level != "debug" else logging.NOTSET)
