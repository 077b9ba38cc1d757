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
from typing import TextIO

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
        self._second = -1  # the whole second whose text is _date
        self._date = ""

    def format(self, record: logging.LogRecord) -> str:
        record.where = _where(record)
        return super().format(record)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # logging.Formatter's own text, its date written once a second rather than per line
        # (a step logging a line per target logs thousands in the same second)
        second = int(record.created)
        if second != self._second:
            self._date = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._date},{int(record.msecs):03d}"  # logging.Formatter.default_msec_format


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

    def __init__(self, lines: queue.Queue[str | None]) -> None:
        super().__init__()
        self._lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._lines.put(line)  # bounded (QUEUE_SIZE): waits for room rather than drop a line


class _Writer:
    """The thread that writes the handed-off lines to the stream, in their order: what has
    queued up meanwhile in one write and one flush."""

    def __init__(self, stream: TextIO) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue(QUEUE_SIZE)
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name="contest-log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        q = self.queue
        while True:
            lines = [q.get()]
            with contextlib.suppress(queue.Empty):  # and what else has queued up
                while len(lines) < 1_000:
                    lines.append(q.get_nowait())
            end = None in lines
            text = [line for line in lines if line is not None]
            # a closed or broken stream: the lines are lost, not the logger (nor its callers,
            # who would wait for room in the queue forever)
            with contextlib.suppress(Exception):
                if text:
                    self._stream.write("\n".join(text) + "\n")
                    self._stream.flush()
            for _ in lines:
                q.task_done()
            if end:
                return

    def flush(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until every line handed over so far is written."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self) -> None:
        """Write what is queued and end the thread."""
        self.queue.put(None)
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
    global _writer
    if _writer is not None:
        writer, _writer = _writer, None
        writer.stop()


def setup(level: str = "warning", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Configure the root logger for a command: ``level`` (one of :data:`LEVELS`), ``fmt``
    (``text`` or ``json``), lines to ``stream`` (stderr), written by a thread of their own
    (see :class:`_Handoff`); :func:`flush` waits for them."""
    global _writer
    quiet_warnings(level)
    _stop_writer()  # an earlier call's: what it had queued is written first
    _writer = _Writer(stream or sys.stderr)
    handler = _Handoff(_writer.queue)
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
