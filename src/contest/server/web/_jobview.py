"""One job as its page shows it: which run, test and attempt, the counts per step, one page of
targets with their cells. Built by the page and, at the same snapshot, by its live stream."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.datastructures import QueryParams

from contest.events import TARGET_ACQUIRED
from contest.server.web import _queries as Q
from contest.server.web._cache import Memory
from contest.server.web._holders import Waiting, waiting
from contest.server.web._model import (
    ACTIVE_STATES,
    Counts,
    Grid,
    JobShape,
    StepCount,
    StepShape,
    TestShape,
    acquirer,
    attempts_of,
    step_counts,
    steps_of,
    tests_of,
)
from contest.storage import Storage
from contest.storage.models import JobReport

PER_PAGE = 100
MAX_PER_PAGE = 500
MAX_INT = 2**31 - 1
SHOWS = ("all", "failed")


class BadParameter(ValueError):
    """A query parameter a page cannot use; the message names it."""


def _int(params: QueryParams, name: str, low: int, default: int | None) -> int | None:
    text = params.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= MAX_INT:
        raise BadParameter(f"{name} must be a whole number from {low}, got {text!r}")
    return int(text)


@dataclass(frozen=True, slots=True)
class ViewParams:
    """What the job page's address asks for. No run, test or attempt: the latest, followed
    live as the job moves on."""

    run: int | None = None
    test: str | None = None
    attempt: int | None = None
    page: int = 1
    per: int = PER_PAGE
    show: str = "all"
    q: str = ""

    @classmethod
    def parse(cls, params: QueryParams) -> ViewParams:
        show = params.get("show", "all") or "all"
        if show not in SHOWS:
            raise BadParameter(f"show must be one of {', '.join(SHOWS)}, got {show!r}")
        per = _int(params, "per", 1, PER_PAGE)
        assert per is not None
        if per > MAX_PER_PAGE:
            raise BadParameter(f"per must be at most {MAX_PER_PAGE}, got {per}")
        test = params.get("test")
        return cls(
            run=_int(params, "run", 1, None),
            test=test if test else None,
            attempt=_int(params, "attempt", 0, None),
            page=_int(params, "page", 1, 1) or 1,
            per=per,
            show=show,
            q=params.get("q", "")[:512],
        )

    @property
    def follow(self) -> bool:
        return self.run is None and self.test is None and self.attempt is None

    def query(self, **changes: Any) -> dict[str, Any]:
        """This view's parameters with ``changes``, for a link (defaults left out)."""
        v = replace(self, **changes)
        return {
            "run": v.run,
            "test": v.test,
            "attempt": v.attempt,
            "page": v.page if v.page != 1 else None,
            "per": v.per if v.per != PER_PAGE else None,
            "show": v.show if v.show != "all" else None,
            "q": v.q,
        }


@dataclass
class JobPage:
    job: Q.JobRow
    times: Q.JobTimes
    view: ViewParams
    upto: tuple[int, int]  # (test, framework) event numbers the page is drawn at
    active: bool
    run: int = 0
    runs: list[int] = field(default_factory=list)
    tests: list[TestShape] = field(default_factory=list)
    test: TestShape | None = None
    attempts: list[int] = field(default_factory=list)
    attempt: int = 0
    steps: list[StepShape] = field(default_factory=list)
    counts: Counts = field(default_factory=dict)
    acquired: int = 0
    step_counts: list[StepCount] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    total: int = 0
    grid: Grid = field(default_factory=lambda: Grid([], False))
    waiting: Waiting | None = None
    reports: JobReport | None = None
    follow: bool = False  # the view moves on to the newest run, test and attempt
    shape: JobShape = field(default_factory=JobShape)

    def __post_init__(self) -> None:
        self.follow = self.view.follow

    @property
    def key(self) -> Q.AttemptKey | None:
        if self.test is None or not self.run:
            return None
        return Q.AttemptKey(self.job.job_id, self.run, self.test.name, self.attempt)

    @property
    def pages(self) -> int:
        return max((self.total + self.view.per - 1) // self.view.per, 1)

    def recount(self) -> None:
        if self.test is not None:
            self.acquired, self.step_counts = step_counts(
                self.counts, self.test.name, self.attempt, self.steps, self.active
            )


def _latest_test(tests: list[TestShape], counts: Counts) -> TestShape | None:
    """The test running (or last run) in the run: tests run in order, each starting with its
    acquisition."""
    started = {t for t, _, s, e in counts if s == "" and e == TARGET_ACQUIRED}
    latest = [t for t in tests if t.name in started]
    if latest:
        return latest[-1]
    return tests[0] if tests else None


async def build(
    store: Storage,
    memory: Memory,
    job_id: int,
    view: ViewParams,
    *,
    upto: tuple[int, int] | None = None,
    full: bool = True,
) -> JobPage | None:
    """The page of ``job_id`` for ``view`` (None: no such job), at the snapshot ``upto`` or
    now. ``full`` adds what only the whole page shows: waiting targets and reports."""
    flush = getattr(store, "flush", None)
    if flush is not None:
        await flush()  # what this process wrote so far is on the page

    async def head(conn: Any) -> JobPage | None:
        snap = upto or await Q.max_sequence(conn)
        job = await Q.job_row(conn, job_id)
        if job is None:
            return None
        times = (await Q.job_times(conn, [job_id]))[job_id]
        page = JobPage(job, times, view, snap, job.state in ACTIVE_STATES)
        page.shape = await memory.shape(conn, job_id)
        page.runs = list(range(1, times.run + 1))
        page.run = view.run if view.run is not None else times.run
        return page

    page: JobPage | None = await store.run_read(head, "reading a job")
    if page is None:
        return None
    if page.run:
        await _run(store, memory, page)
    if full:
        page.waiting = (await waiting(store, [job_id])).get(job_id)
        page.reports = await store.job_report(job_id)
    return page


async def _run(store: Storage, memory: Memory, page: JobPage) -> None:
    """Fill in the page's run: its counts, the test and attempt shown, their grid."""
    run = (page.job.job_id, page.run)
    # Counting a big run is the page's longest read: it runs on a connection of its own while
    # this one finds the attempt to show (from the acquisitions alone) and reads its cells.
    counting = asyncio.ensure_future(
        store.run_read(lambda c: memory.counts(c, [run], page.upto[0]), "counting a run")
    )
    try:
        cells = await store.run_read(lambda c: _grid(c, page), "reading a job's grid")
        page.counts = (await counting)[run]
    finally:
        counting.cancel()
    if page.test is not None:
        page.steps = steps_of(page.test, page.counts, page.attempt)
        page.recount()
        page.grid = Grid.empty(page.targets, [s.label for s in page.steps], page.active)
        for target, step, event, when, payload in cells:
            page.grid.apply(target, step, event, when, payload)
        page.grid.settle_all()


async def _grid(conn: Any, page: JobPage) -> list[tuple[str, str, str, float, Any]]:
    """Choose the test and attempt to show, and read the page of targets and their cells."""
    view = page.view
    acquired: Counts = {
        (test, attempt, "", TARGET_ACQUIRED): n
        for test, attempt, n in await Q.acquisitions(conn, page.job.job_id, page.run, page.upto[0])
    }
    page.tests = tests_of(page.shape, acquired)
    if view.test is not None:
        page.test = next((t for t in page.tests if t.name == view.test), None)
        if page.test is None:
            page.test = TestShape(view.test, ())
    else:
        page.test = _latest_test(page.tests, acquired)
    if page.test is None:
        return []
    page.attempts = attempts_of(acquired, page.test.name) or [0]
    page.attempt = view.attempt if view.attempt is not None else page.attempts[-1]
    key = page.key
    assert key is not None
    page.targets, page.total = await Q.grid_targets(
        conn,
        key,
        failed_only=view.show == "failed",
        search=view.q,
        offset=(view.page - 1) * view.per,
        limit=view.per,
        upto=page.upto[0],
        acquired_by=acquirer(page.test.name),
    )
    return await Q.cell_rows(conn, key, page.targets, page.upto[0])
