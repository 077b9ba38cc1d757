"""The jobs list: filters from the address, one page of jobs newest first, each with its
progress (its latest run's targets passed, failed, in flight) and the targets it waits for."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from starlette.datastructures import QueryParams

from contest.server.web import _queries as Q
from contest.server.web._cache import Memory
from contest.server.web._holders import Waiting, waiting
from contest.server.web._jobview import BadParameter
from contest.server.web._model import ACTIVE_STATES, Progress, progress
from contest.storage import Storage
from contest.storage.models import JobState

PER_PAGE = 25
MAX_PER_PAGE = 200
MAX_FILTER_TAGS = 20
STATES = {s.event_name.removeprefix("JobState").lower(): s for s in JobState}


@dataclass(frozen=True, slots=True)
class ListParams:
    states: tuple[JobState, ...] = ()
    tags: tuple[str, ...] = ()
    requestor: str = ""
    name: str = ""
    before: int | None = None
    per: int = PER_PAGE

    @classmethod
    def parse(cls, params: QueryParams) -> ListParams:
        states: list[JobState] = []
        for value in params.getlist("state"):
            if not value:
                continue
            state = STATES.get(value.lower().removeprefix("jobstate"))
            if state is None:
                raise BadParameter(f"state: unknown job state {value!r}")
            states.append(state)
        tags = [t for t in params.get("tag", "").replace(",", " ").split() if t]
        if len(tags) > MAX_FILTER_TAGS:
            raise BadParameter(f"tag: at most {MAX_FILTER_TAGS} tags")
        before = params.get("before", "").strip()
        if before and not before.isdigit():
            raise BadParameter(f"before must be a job ID, got {before!r}")
        per = params.get("per", "").strip()
        if per and (not per.isdigit() or not 1 <= int(per) <= MAX_PER_PAGE):
            raise BadParameter(f"per must be from 1 to {MAX_PER_PAGE}, got {per!r}")
        return cls(
            states=tuple(dict.fromkeys(states)),
            tags=tuple(dict.fromkeys(tags)),
            requestor=params.get("requestor", "").strip()[:64],
            name=params.get("name", "").strip()[:128],
            before=int(before) if before else None,
            per=int(per) if per else PER_PAGE,
        )

    def query(self, **changes: Any) -> dict[str, Any]:
        v = replace(self, **changes)
        return {
            "state": v.states[0].event_name.removeprefix("JobState").lower()
            if len(v.states) == 1
            else None,
            "tag": " ".join(v.tags),
            "requestor": v.requestor,
            "name": v.name,
            "before": v.before,
            "per": v.per if v.per != PER_PAGE else None,
        }


@dataclass
class ListedJob:
    row: Q.JobRow
    times: Q.JobTimes
    progress: Progress
    waiting: Waiting | None

    @property
    def ended(self) -> float | None:
        return None if self.row.state in ACTIVE_STATES else self.row.state_time


async def build_list(
    store: Storage,
    memory: Memory,
    params: ListParams,
    instance_tag: str | None,
) -> list[ListedJob]:
    """One page of jobs for ``params`` (only this instance's, when the server has a tag)."""
    flush = getattr(store, "flush", None)
    if flush is not None:
        await flush()
    tags = list(params.tags)
    if instance_tag and instance_tag not in tags:
        tags.append(instance_tag)

    async def read(conn: Any) -> list[ListedJob]:
        rows = await Q.job_rows(
            conn,
            states=params.states,
            tags=tags,
            requestor=params.requestor,
            name=params.name,
            before=params.before,
            limit=params.per,
        )
        times = await Q.job_times(conn, [r.job_id for r in rows])
        runs = [(r.job_id, times[r.job_id].run) for r in rows if times[r.job_id].run]
        upto, _ = await Q.max_sequence(conn)
        counts = await memory.counts(conn, runs, upto)
        out = []
        for r in rows:
            t = times[r.job_id]
            shape = await memory.shape(conn, r.job_id)
            active = r.state in ACTIVE_STATES
            prog = progress(shape, t.run, counts.get((r.job_id, t.run), {}), active)
            out.append(ListedJob(r, t, prog, None))
        return out

    jobs: list[ListedJob] = await store.run_read(read, "listing jobs")
    waits = await waiting(store, [j.row.job_id for j in jobs if j.row.state in ACTIVE_STATES])
    for j in jobs:
        j.waiting = waits.get(j.row.job_id)
    return jobs
