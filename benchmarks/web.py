"""The web view of a big job, per database: how fast its page comes up in a real browser.

    python benchmarks/web.py [--targets 10000] [--steps 5] [--loads 5] [--db sqlite ...]

Per database (a throw-away one, ``contest.testing.databases``): a real job of ``--targets``
targets through ``--steps`` no-op steps is run by the job manager; then ``contest serve`` serves
that database and Debian's chromium (Playwright) opens the job's page ``--loads`` + 1 times,
each time from navigation to the grid drawn. The first load is the server's first look at the
job (its run counted by the database, its descriptor parsed); the later ones find those in the
server's memory, as every look after the first does. Printed: the first load, and the best,
median and worst of the later ones (the machine may be shared), with the server's share
(request to last byte) and the page's element count.

Bar (the issue's): the median load under 1 s; the first one is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from playwright.sync_api import sync_playwright

from contest.job.manager import JobManager
from contest.plugins.targetlockers.inmemory import InMemoryLocker
from contest.storage import open_storage
from contest.testing.browser import launch
from contest.testing.databases import KINDS, Kind, server_available, temporary_database
from jobs import descriptor

LOAD_BAR_S = 1.0
_LISTENING = re.compile(r"listening on (http://\S+)")


async def run_job(url: str, targets: int, steps: int) -> tuple[int, float]:
    storage = await open_storage(url)
    jm = JobManager(storage, InMemoryLocker(), server_id="bench")
    try:
        await jm.start(resume_jobs=False)
        started = time.perf_counter()
        job_id = await jm.submit(descriptor(targets, steps), "bench")
        await jm.wait_all()
        await storage.flush()
        return job_id, time.perf_counter() - started
    finally:
        await jm.close()
        await storage.close()


def serve(url: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    log = folder / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "contest.cli", "serve", "--listen", "127.0.0.1:0", "--db", url],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = _LISTENING.search(log.read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"contest serve did not start:\n{log.read_text(errors='replace')}")


def load_pages(base: str, job_id: int, loads: int) -> list[dict[str, Any]]:
    out = []
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/docs")  # the browser and the static files warmed first
            for _ in range(loads + 1):
                started = time.perf_counter()
                page.goto(f"{base}/jobs/{job_id}")
                page.wait_for_selector("#grid")
                took = time.perf_counter() - started
                nav = json.loads(
                    page.evaluate(
                        "JSON.stringify(performance.getEntriesByType('navigation')[0].toJSON())"
                    )
                )
                out.append(
                    {
                        "load_s": took,
                        "server_s": (nav["responseEnd"] - nav["requestStart"]) / 1000,
                        "elements": page.evaluate("document.getElementsByTagName('*').length"),
                    }
                )
        finally:
            browser.close()
    return out


def one_database(kind: Kind, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, temporary_database(kind, tmp) as url:
        job_id, job_s = asyncio.run(run_job(url, args.targets, args.steps))
        proc, base = serve(url, Path(tmp))
        try:
            loads = load_pages(base, job_id, args.loads)
        finally:
            proc.terminate()
            proc.wait(30)
    later = [x["load_s"] for x in loads[1:]]
    return {
        "job_s": job_s,
        "first_s": loads[0]["load_s"],
        "first_server_s": loads[0]["server_s"],
        "best_s": min(later),
        "median_s": statistics.median(later),
        "worst_s": max(later),
        "server_median_s": statistics.median(x["server_s"] for x in loads[1:]),
        "elements": loads[-1]["elements"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--loads", type=int, default=5, help="loads after the first")
    ap.add_argument("--db", nargs="*", choices=KINDS, default=["sqlite"])
    args = ap.parse_args()
    failed = False
    ms = 1000
    for kind in args.db:
        if not server_available(kind):
            print(f"{kind}: server not reachable, skipped")
            continue
        r = one_database(kind, args)
        ok = r["median_s"] < LOAD_BAR_S
        failed |= not ok
        print(f"== {kind}: job of {args.targets} targets x {args.steps} steps ({r['job_s']:.1f} s)")
        print(
            f"page load   : median {r['median_s'] * ms:.0f} ms (best {r['best_s'] * ms:.0f}, "
            f"worst {r['worst_s'] * ms:.0f}; server {r['server_median_s'] * ms:.0f}) "
            f"(bar {LOAD_BAR_S * ms:.0f} ms) {'ok' if ok else 'ABOVE BAR'}"
        )
        print(
            f"first load  : {r['first_s'] * ms:.0f} ms (server {r['first_server_s'] * ms:.0f}: "
            "counts the run, parses the descriptor)"
        )
        print(f"page size   : {r['elements']} elements")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
