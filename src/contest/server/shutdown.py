"""What the server does on SIGINT, SIGTERM and SIGUSR1: ConTest's semantics
(``cmds/contest/server/server.go``; pinned by ``tests/e2e/test_e2e_signals.py``).

* SIGINT / SIGTERM: stop taking API requests, then, by ``--pause-timeout``:
  ``0`` cancel every job at once; ``> 0`` pause every job and cancel whatever has not paused
  after that long; ``< 0`` pause, never escalate. A second SIGINT/SIGTERM cancels at once; a
  third exits at once (for a step that ignores even cancellation).
* SIGUSR1: drain: stop taking requests (and claiming work); on SQLite let running jobs finish,
  on a database several servers share hand them over (each pauses at its next checkpoint and
  lets its lease go, for another server to resume: ``JobManager.mark_draining``); then exit.
  A SIGINT/SIGTERM after it acts as a first one.

Pausing is what makes a restart lose nothing: paused jobs keep their target locks for one more
lease, and the next server with ``--resume-jobs`` continues them where they stopped. So the
default here is a minute of pausing (``contest.settings.DEFAULT_PAUSE_TIMEOUT``), where ConTest's
is ``0``. Each cancel says why (recorded in ``JobStateCancelled``, shown by the failure summary).

The controller does not touch signals itself: :meth:`on_signal` is called by the loop's signal
handlers (see :mod:`contest.server.lifecycle`), which keeps it testable with plain calls.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from contest.job.manager import JobService
from contest.logs import exit_now

log = logging.getLogger(__name__)

EXIT_FORCED = 1


class ShutdownController:
    """Turns signals into the job manager's pause/cancel and the listener's stop."""

    def __init__(
        self,
        jobs: JobService,
        stop_api: Callable[[], None],
        pause_timeout: float,
        *,
        force_exit: Callable[[int], None] = exit_now,
    ) -> None:
        self.jobs = jobs
        self.stop_api = stop_api
        self.pause_timeout = pause_timeout
        self.force_exit = force_exit
        self.stopping = asyncio.Event()
        self.interrupts = 0
        self.draining = False
        self.cancelled = False
        self._escalation: asyncio.TimerHandle | None = None

    def on_signal(self, signum: int) -> None:
        if signum == signal.SIGUSR1:
            self.drain()
        else:
            self.interrupt(signal.Signals(signum).name)

    def drain(self) -> None:
        """Stop the API; jobs run to their end, or are handed over (see the module's doc)."""
        if self.draining or self.interrupts:
            return
        log.warning("SIGUSR1: not taking requests any more; waiting for running jobs to finish "
                    "or be handed over")  # fmt: skip
        self.draining = True
        self.jobs.mark_draining()  # the other servers list this one as draining
        self._stop_api()

    def interrupt(self, name: str = "SIGTERM") -> None:
        self.interrupts += 1
        self._stop_api()
        if self.interrupts == 1:
            if self.pause_timeout == 0:
                log.warning("%s: cancelling every job", name)
                self._cancel(f"the server was stopped ({name}, --pause-timeout 0)")
            elif self.pause_timeout > 0:
                log.warning(
                    "%s: pausing every job (cancelling those still running after %gs)",
                    name,
                    self.pause_timeout,
                )
                self.jobs.pause_all()
                loop = asyncio.get_running_loop()
                self._escalation = loop.call_later(self.pause_timeout, self._escalate)
            else:
                log.warning("%s: pausing every job", name)
                self.jobs.pause_all()
        elif self.interrupts == 2:
            log.warning("%s again: cancelling every job", name)
            self._cancel(f"the server was stopped ({name} while pausing)")
        else:
            log.error("%s a third time: exiting now", name)
            self.force_exit(EXIT_FORCED)

    def _escalate(self) -> None:
        log.warning("pause timeout reached: cancelling the jobs that have not paused")
        self._cancel("pause timeout reached")

    def _cancel(self, reason: str) -> None:
        if self._escalation is not None:
            self._escalation.cancel()
            self._escalation = None
        self.cancelled = True
        self.jobs.cancel_all(reason)

    def _stop_api(self) -> None:
        if not self.stopping.is_set():
            self.stopping.set()
            self.stop_api()

    def close(self) -> None:
        if self._escalation is not None:
            self._escalation.cancel()
            self._escalation = None
