"""Prometheus metrics: every metric object of contest lives here, the rest of the code imports
them from here; ``GET /metrics`` (see :func:`render`) exposes them in Prometheus' text format.

What there is, and where its values come from:

* ``contest_jobs{state}``: jobs in the database by state, counted at each scrape (several
  servers on one database all report the whole database: aggregate with ``max``).
* ``contest_targets_in_flight{test,step}``: targets inside a step right now, read at each scrape
  from the test runners of this process (exact across pause and cancel, and free between
  scrapes).
* ``contest_targets_waiting`` / ``contest_jobs_waiting``: targets (and jobs) of this server
  waiting for targets other jobs hold: for each running job, its latest ``TargetsWaiting``
  event without a later ``TargetsWaitEnded`` (see :func:`waiting_targets`).
* ``contest_events_written_total`` and ``contest_event_write_seconds``: events committed, and
  the time from an event's write to its commit (the oldest event of each committed batch), from
  the event writer.
* ``contest_step_target_seconds{step,result}``: how long each target spent in each step (from
  ``TargetIn`` to ``TargetOut``/``TargetErr``), by step label and result; recorded by the test
  runner with a lock-free histogram (see :class:`StepTimer`), since it runs once per target and
  step on the hot path.
* ``contest_server_heartbeat_age_seconds``: seconds since this server's heartbeat last reached
  the database (see :mod:`contest.storage.fleet`): it grows past the job lease only when the
  database is unreachable, and then the server's jobs' leases lapse.
* ``contest_http_request_seconds{method,route}``: API request latency, by method and route
  (ConTest's verbs, the REST routes with ``{job_id}``, ``other`` for the rest).

Plus the process collectors prometheus-client registers by default (CPU, memory, open files).
"""

from __future__ import annotations

import re
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from contest.events import EventReader, TestEventQuery
from contest.targetwait import TARGETS_WAIT_ENDED, TARGETS_WAITING, current_wait

EVENTS_WRITTEN = Counter(
    "contest_events_written", "Events (test and framework) committed to the database."
)
EVENT_WRITE_SECONDS = Histogram(
    "contest_event_write_seconds",
    "Time from an event's write to its commit: the oldest event of each committed batch.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
HTTP_REQUEST_SECONDS = Histogram(
    "contest_http_request_seconds",
    "Time to answer an HTTP request, by method and route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# --- step durations: a histogram cheap enough for the per-target path ------------------------

STEP_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0)


class StepTimer:
    """Counts of one step label's target durations, per bucket, for passed and failed targets.

    prometheus-client's histogram takes a lock per bucket on each observation (about 1.7 us);
    this is plain list arithmetic (about 0.2 us), safe because the test runner and the scrape
    both run on the event loop's thread.
    """

    __slots__ = ("counts", "sums")

    def __init__(self) -> None:
        n = len(STEP_BUCKETS) + 1
        self.counts = ([0] * n, [0] * n)  # passed, failed; the last bucket is +Inf
        self.sums = [0.0, 0.0]

    def add(self, seconds: float, failed: bool) -> None:
        self.counts[failed][bisect_left(STEP_BUCKETS, seconds)] += 1
        self.sums[failed] += seconds


_step_timers: dict[str, StepTimer] = {}


def step_timer(label: str) -> StepTimer:
    """The timer of step label ``label`` (one per label for the process's life)."""
    timer = _step_timers.get(label)
    if timer is None:
        timer = _step_timers[label] = StepTimer()
    return timer


# --- live state read at scrape time --------------------------------------------------------------


class _InFlight(Protocol):
    def in_flight(self) -> Iterable[tuple[str, str, int]]: ...


_runners: weakref.WeakSet[Any] = weakref.WeakSet()


def track_runner(runner: _InFlight) -> None:
    """Count ``runner``'s targets in ``contest_targets_in_flight`` while it lives (its
    ``in_flight()`` gives (test, step label, targets inside the step))."""
    _runners.add(runner)


class _Heartbeat(Protocol):
    def heartbeat_age(self) -> float | None: ...


_heartbeats: weakref.WeakSet[Any] = weakref.WeakSet()


def track_heartbeat(owner: _Heartbeat) -> None:
    """Report ``owner``'s heartbeat age in ``contest_server_heartbeat_age_seconds`` while it
    lives (the job manager: one per server process)."""
    _heartbeats.add(owner)


class _Collector(Collector):
    """The metrics computed when scraped: in-flight targets, step durations, and the values
    :func:`refresh` read from the database just before."""

    def __init__(self) -> None:
        self.job_states: dict[str, int] = {}
        self.waiting: dict[int, list[str]] = {}

    def collect(self) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(
            "contest_targets_in_flight",
            "Targets inside a step now, by test and step label.",
            labels=["test", "step"],
        )
        rows: dict[tuple[str, str], int] = {}
        for runner in list(_runners):
            for test, step, n in runner.in_flight():
                rows[(test, step)] = rows.get((test, step), 0) + n
        for (test, step), n in sorted(rows.items()):
            in_flight.add_metric([test, step], n)
        yield in_flight

        hist = HistogramMetricFamily(
            "contest_step_target_seconds",
            "Time a target spent in a step (TargetIn to TargetOut or TargetErr), by step "
            "label and result.",
            labels=["step", "result"],
        )
        bounds = [str(b) for b in STEP_BUCKETS] + ["+Inf"]
        for label, timer in sorted(_step_timers.items()):
            for failed, result in ((False, "passed"), (True, "failed")):
                cumulative, buckets = 0, []
                for bound, count in zip(bounds, timer.counts[failed], strict=True):
                    cumulative += count
                    buckets.append((bound, float(cumulative)))
                if cumulative:
                    hist.add_metric([label, result], buckets, timer.sums[failed])
        yield hist

        ages = [a for h in list(_heartbeats) if (a := h.heartbeat_age()) is not None]
        if ages:
            yield GaugeMetricFamily(
                "contest_server_heartbeat_age_seconds",
                "Seconds since this server's heartbeat last reached the database.",
                value=max(ages),
            )

        jobs = GaugeMetricFamily(
            "contest_jobs", "Jobs in the database, by state.", labels=["state"]
        )
        for state, n in sorted(self.job_states.items()):
            jobs.add_metric([state], n)
        yield jobs
        yield GaugeMetricFamily(
            "contest_targets_waiting",
            "Targets this server's running jobs wait for (held by other jobs).",
            value=sum(len(t) for t in self.waiting.values()),
        )
        yield GaugeMetricFamily(
            "contest_jobs_waiting",
            "This server's running jobs waiting for targets held by other jobs.",
            value=sum(1 for t in self.waiting.values() if t),
        )


_collector = _Collector()
REGISTRY.register(_collector)


# --- reading the database at scrape time -----------------------------------------------------


async def waiting_targets(store: EventReader, job_ids: Sequence[int]) -> dict[int, list[str]]:
    """For each job of ``job_ids``, the targets it waits for now: the ``Targets`` of its latest
    ``TargetsWaiting`` event when no ``TargetsWaitEnded`` came after it (else none)."""
    out: dict[int, list[str]] = {}
    for job_id in job_ids:
        events = await store.test_events(
            TestEventQuery(job_id=job_id, event_names=[TARGETS_WAITING, TARGETS_WAIT_ENDED])
        )
        wait = current_wait((e.sequence, e.name, e.payload, e.emit_time) for e in events)
        out[job_id] = [t for t, _ in wait.targets] if wait is not None else []
    return out


async def refresh(store: Any, running: Sequence[int]) -> None:
    """Read what the scrape reports from the database: jobs by state, and the targets the
    ``running`` jobs (this server's) wait for."""
    _collector.job_states = await store.job_state_counts()
    _collector.waiting = await waiting_targets(store, running)


async def render(store: Any, running: Sequence[int], accept: str = "") -> tuple[bytes, str]:
    """Every metric, after :func:`refresh`, in the format the ``Accept`` header asks for
    (OpenMetrics, or Prometheus' text format 0.0.4, which every Prometheus reads): the body
    and its content type."""
    await refresh(store, running)
    encoder, content_type = choose_encoder(accept)
    body: bytes = encoder(REGISTRY)
    return body, content_type


# --- HTTP routes as labels -------------------------------------------------------------------

_FORM_VERBS = frozenset({"/start", "/stop", "/status", "/retry", "/list", "/version"})
_JOB_PATH = re.compile(
    r"^/api/v1/jobs/[^/]+(/(?:status|descriptor|report|progress|events|stop|retry))?$"
)
_WEB_JOB_PATH = re.compile(r"^/jobs/[0-9]+(/(?:live|cell|stop|retry))?$")
_FIXED = frozenset(
    {"/metrics", "/healthz", "/openapi.json", "/api/v1/jobs", "/api/v1/version", "/", "/docs",
     "/jobs/live", "/api/v1/servers"}
)  # fmt: skip


def route_label(path: str) -> str:
    """The route of a request path, with few enough values to be a label: ConTest's verbs,
    ``/api/v1/jobs/{job_id}/...``, the web pages' (``/jobs/{job_id}``, ``/targets/{target_id}``,
    ``/static``...), the fixed paths, or ``other``."""
    if path in _FORM_VERBS or path in _FIXED:
        return path
    m = _JOB_PATH.match(path)
    if m:
        return "/api/v1/jobs/{job_id}" + (m.group(1) or "")
    m = _WEB_JOB_PATH.match(path)
    if m:  # the web pages'
        return "/jobs/{job_id}" + (m.group(1) or "")
    if path.startswith("/targets/"):
        return "/targets/{target_id}"
    if path.startswith("/static/"):
        return "/static"
    return "other"
