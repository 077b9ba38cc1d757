"""The web view's page of a target with a long history: how fast the server answers it.

    python benchmarks/target_page.py [--jobs 20] [--loads 5] [--db sqlite mariadb postgresql]

Per database (a throw-away one, ``contest.testing.databases``): ``--jobs`` real jobs of 10,000
targets through 5 Noop steps, the same targets each time, run by the job manager; then
``contest serve`` serves that database and the page of one of those targets
(``/targets/<id>``: the jobs that acquired it, its outcome in each, its last failure) is asked
for ``--loads`` + 1 times over HTTP. Printed: the first answer and the median and worst of the
later ones. No bar: docs/performance.md quotes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import httpx

from contest.testing.databases import temporary_database
from jobs import descriptor, reachable
from perf import run_job, serve

TARGET = "t000042"  # one of jobs.descriptor's targets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--db", nargs="+", default=["sqlite", "mariadb", "postgresql"])
    args = ap.parse_args()
    for kind in reachable(args.db):
        with temporary_database(kind) as url:
            for _ in range(args.jobs):
                asyncio.run(run_job(url, descriptor(10_000, 5)))
            with serve(url) as base, httpx.Client(base_url=base, timeout=120) as c:
                times = []
                for _ in range(args.loads + 1):
                    t0 = time.perf_counter()
                    page = c.get(f"/targets/{TARGET}")
                    times.append(time.perf_counter() - t0)
                    page.raise_for_status()
        later = times[1:]
        print(
            f"{kind}: a target in {args.jobs} jobs of 10,000 x 5: first {times[0] * 1000:.0f} ms, "
            f"then median {statistics.median(later) * 1000:.0f} ms, "
            f"worst {max(later) * 1000:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
