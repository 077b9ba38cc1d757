"""The ``contest`` command: ``serve``, ``run``, ``validate``, ``plugins``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from contest import __version__
from contest.golang.time import parse_duration
from contest.settings import DEFAULT_DB_URL, DEFAULT_LISTEN, ServeSettings

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_UNREACHABLE = 2


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="contest", description="ConTest, in Python.")
    p.add_argument("--version", action="version", version=f"contest-py {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the server (ConTest's HTTP API and a REST API)")
    s.add_argument("--listen", default=DEFAULT_LISTEN, help="HOST:PORT [-listenAddr]")
    s.add_argument("--db", default=DEFAULT_DB_URL, help="SQLAlchemy URL or Go MySQL DSN [-dbURI]")
    s.add_argument("--server-id", default="", help="server id (default: host name) [-serverID]")
    s.add_argument("--instance-tag", default=None, help="internal tag of this instance (_name)")
    s.add_argument(
        "--pause-timeout",
        type=_duration,
        default=0.0,
        help="on SIGINT/SIGTERM: 0 cancels jobs, >0 pauses then cancels after it, <0 pauses "
        "[-pauseTimeout]",
    )
    s.add_argument(
        "--resume-jobs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="resume this server's paused jobs at start [-resumeJobs]",
    )
    s.add_argument("--target-locker", choices=["auto", "inmemory", "db"], default="auto")
    s.add_argument(
        "--target-lock-duration",
        type=_duration,
        default=600.0,
        help="target lock lease [-targetLockDuration]",
    )
    s.add_argument(
        "--shutdown-timeout",
        type=_duration,
        default=30.0,
        help="how long steps get to return once done or cancelled",
    )
    s.add_argument(
        "--process-timeout",
        type=_duration,
        default=3.0,
        help="how long an API request may take [-processTimeout]",
    )
    s.add_argument(
        "--allow-local-exec",
        action="store_true",
        help="let the Exec step run commands on this machine",
    )
    s.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error", "critical"]
    )

    r = sub.add_parser("run", help="run one job in this process and wait for it")
    r.add_argument("descriptor", help="job descriptor file (JSON or YAML); - for stdin")
    r.add_argument("--db", default=DEFAULT_DB_URL, help="SQLAlchemy URL (default: %(default)s)")
    r.add_argument("--shutdown-timeout", type=_duration, default=30.0)
    r.add_argument("--json", action="store_true", help="JSON progress lines even on a terminal")
    r.add_argument(
        "--allow-local-exec",
        action="store_true",
        help="let the Exec step run commands on this machine",
    )
    r.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error", "critical"]
    )

    v = sub.add_parser("validate", help="check job descriptors as `start` would; print every error")
    v.add_argument("descriptors", nargs="+")

    sub.add_parser("plugins", help="list every registered plugin with its summary")
    return p


def _read(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text()


# --- run ---------------------------------------------------------------------------------------


async def _run(args: argparse.Namespace) -> int:
    from contest.job.descriptor import DescriptorValidationError
    from contest.job.manager import JobManager
    from contest.liveview import LiveView
    from contest.plugins.targetlockers.inmemory import InMemoryLocker
    from contest.progress import ProgressStore
    from contest.storage import open_storage
    from contest.storage.models import JobState

    try:
        text = _read(args.descriptor)
    except OSError as exc:
        print(f"contest run: cannot read {args.descriptor}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    try:
        store = await open_storage(args.db)
    except Exception as exc:
        print(f"contest run: cannot open the database {args.db}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    tracked = ProgressStore(store)
    locker = InMemoryLocker()
    jm = JobManager(
        tracked,
        locker,
        server_id=f"{socket.gethostname()}-run-{os.getpid()}",
        shutdown_timeout=args.shutdown_timeout,
    )
    try:
        await jm.start(resume_jobs=False)
        try:
            job_id = await jm.submit(text, requestor="contest-run")
        except DescriptorValidationError as exc:
            print("contest run: invalid job descriptor:", file=sys.stderr)
            for e in exc.errors:
                print(f"  {e}", file=sys.stderr)
            return EXIT_UNREACHABLE
        loop = asyncio.get_running_loop()
        interrupted = 0

        def on_signal() -> None:
            nonlocal interrupted
            interrupted += 1
            if interrupted == 1:
                print("\ncontest run: cancelling the job (again to quit at once)", file=sys.stderr)
                jm.cancel_all()
            else:
                os._exit(EXIT_JOB_FAILED)

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, on_signal)
        view_out = sys.stdout
        with LiveView(f"job {job_id}", view_out, json_lines=args.json) as view:
            while not await jm.wait_all(timeout=0.25):
                view.update(tracked.progress.to_json_obj())
            view.update(tracked.progress.to_json_obj())
        req = await store.get_job(job_id)
        report = await store.job_report(job_id)
        state = req.state if req is not None else JobState.UNKNOWN
        reports = [r for run in report.run_reports for r in run] + report.final_reports
        summary = {
            "JobID": job_id,
            "State": state.event_name,
            "Reports": [
                {
                    "RunID": r.run_id,
                    "Reporter": r.reporter_name,
                    "Success": r.success,
                    "Data": r.data,
                }
                for r in reports
            ],
        }
        if state is JobState.FAILED:
            doc = await jm.status(job_id)
            summary["Error"] = doc.get("StateErrMsg", "")
        print(json.dumps(summary, indent=2))
        ok = state is JobState.COMPLETED and all(r.success for r in reports)
        return EXIT_OK if ok else EXIT_JOB_FAILED
    finally:
        await jm.close()
        await store.close()


# --- validate ---------------------------------------------------------------------------------


async def _validate(paths: Sequence[str]) -> int:
    from contest.job.build import load_job
    from contest.job.descriptor import DescriptorValidationError
    from contest.registry import default_registry

    bad = 0
    for path in paths:
        try:
            await load_job(_read(path), default_registry())
            print(f"{path}: ok")
        except DescriptorValidationError as exc:
            bad += 1
            print(f"{path}: {len(exc.errors)} error(s)")
            for e in exc.errors:
                print(f"  {e}")
        except OSError as exc:
            bad += 1
            print(f"{path}: cannot read: {exc}")
    return EXIT_JOB_FAILED if bad else EXIT_OK


# --- plugins ----------------------------------------------------------------------------------


def _plugins() -> int:
    from contest.registry import KINDS, default_registry

    reg = default_registry()
    for kind in KINDS:
        print(f"{kind}:")
        for p in reg.plugins(kind):
            events = f"  [events: {', '.join(sorted(p.events))}]" if p.events else ""
            print(f"  {p.name:<24} {p.summary}{events}")
    return EXIT_OK


def _negative_durations(argv: Sequence[str]) -> list[str]:
    """``--pause-timeout -1s`` as ``--pause-timeout=-1s``: argparse would take ``-1s`` for an
    option, and a negative pause timeout is a documented value."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--pause-timeout":
            value = next(it, None)
            out.append(arg if value is None else f"{arg}={value}")
        else:
            out.append(arg)
    return out


def _tune_gc() -> None:
    """A job holds many long-lived objects (a task and a record per target, events in flight):
    with the default thresholds the collector rescans them all the time. Collect young objects
    less often, and keep what exists at start-up out of the scans."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_negative_durations(sys.argv[1:] if argv is None else argv))
    if args.command in ("serve", "run"):
        _tune_gc()
    level = getattr(args, "log_level", "warning").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if getattr(args, "allow_local_exec", False):
        from contest.plugins.teststeps.exec import allow_local_execution

        allow_local_execution(True)
    if args.command == "serve":
        from contest.server import serve

        settings = ServeSettings(
            listen=args.listen,
            db=args.db,
            server_id=args.server_id,
            instance_tag=args.instance_tag,
            pause_timeout=args.pause_timeout,
            resume_jobs=args.resume_jobs,
            target_locker=args.target_locker,
            target_lock_duration=args.target_lock_duration,
            shutdown_timeout=args.shutdown_timeout,
            process_timeout=args.process_timeout,
            allow_local_exec=args.allow_local_exec,
            log_level=args.log_level,
        )
        code: int = serve(settings)
        return code
    if args.command == "run":
        return asyncio.run(_run(args))
    if args.command == "validate":
        return asyncio.run(_validate(args.descriptors))
    if args.command == "plugins":
        return _plugins()
    return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
