"""The ``contest`` command: ``serve``, ``run``, ``events``, ``validate``, ``plugins``,
``schema``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contest import __version__
from contest.golang.time import format_duration, parse_duration
from contest.settings import (
    DEFAULT_DB_RETRY,
    DEFAULT_DB_URL,
    DEFAULT_JOB_LEASE,
    DEFAULT_LISTEN,
    DEFAULT_PAUSE_TIMEOUT,
    ServeSettings,
)

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_UNREACHABLE = 2


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


_duration.contest_format = format_duration  # type: ignore[attr-defined]  # --print-config


def _positive_duration(text: str) -> float:
    seconds = _duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return seconds


_positive_duration.contest_format = format_duration  # type: ignore[attr-defined]


def _log_options(p: argparse.ArgumentParser, level: str) -> None:
    from contest.logs import FORMATS, LEVELS

    p.add_argument(
        "--log-level", default=level, choices=LEVELS,
        help="debug also shows other packages' warnings (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--log-format", default="text", choices=FORMATS,
        help="log lines on stderr as text or one JSON object each (default: %(default)s)",
    )  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="contest", description="ConTest, in Python.")
    p.add_argument("--version", action="version", version=f"contest-py {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the server (ConTest's HTTP API and a REST API)")
    s.add_argument("--listen", default=DEFAULT_LISTEN, help="HOST:PORT [-listenAddr]")
    s.add_argument("--db", default=DEFAULT_DB_URL, help="SQLAlchemy URL or Go MySQL DSN [-dbURI]")
    s.add_argument(
        "--server-id",
        default="",
        help="this server's ID, unique among the live servers of its database (default: the "
        "host name as the ServerID it shows, and host-pid-suffix as its instance ID) [-serverID]",
    )
    s.add_argument("--instance-tag", default=None, help="internal tag of this instance (_name)")
    s.add_argument(
        "--pause-timeout",
        type=_duration,
        default=DEFAULT_PAUSE_TIMEOUT,
        help="on SIGINT/SIGTERM: pause the jobs, cancel those not paused after it (default "
        f"{format_duration(DEFAULT_PAUSE_TIMEOUT)}); 0 cancels at once (ConTest's default); "
        "<0 pauses with no limit [-pauseTimeout]",
    )
    s.add_argument(
        "--resume-jobs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="take over and resume the jobs nobody runs: paused ones, and those whose server "
        "died (lease lapsed); --no-resume-jobs: ConTest's behaviour, such jobs are failed as "
        "zombies and paused jobs stay paused [-resumeJobs]",
    )
    s.add_argument(
        "--job-lease",
        type=_duration,
        default=DEFAULT_JOB_LEASE,
        help="how long this server's jobs stay its own without a heartbeat (sent every lease/3); "
        "a running job whose lease lapsed is a zombie (default: "
        f"{format_duration(DEFAULT_JOB_LEASE)})",
    )
    s.add_argument(
        "--checkpoint-period",
        type=_duration,
        default=None,
        help="how often the steps that keep checkpoints have them stored, for a server taking "
        "over a job whose server died to resume them inside the step (default: lease/3, "
        "within 0.2s and 10s; 0s: never)",
    )
    s.add_argument(
        "--db-retry",
        type=_duration,
        default=DEFAULT_DB_RETRY,
        help="how long a database operation is retried across a lost connection before it "
        "fails; the jobs' events are held (the jobs suspended) through a longer outage "
        f"(default: {format_duration(DEFAULT_DB_RETRY)})",
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
        "--target-wait-poll",
        type=_positive_duration,
        default=ServeSettings.target_wait_poll,
        help="how often a job waiting for targets other jobs hold asks again (default "
        f"{format_duration(ServeSettings.target_wait_poll)}; a release in this process wakes "
        "it at once)",
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
        help="accept jobs whose steps run programs on this machine (Cmd, GatherCmd, Exec local)",
    )
    _log_options(s, "info")
    s.add_argument(
        "--config", metavar="FILE",
        help="a TOML file of these options (keys as the options' names: pause_timeout = "
        '"2m"); also CONTEST_CONFIG. Every option is also CONTEST_<OPTION>; flags win over '
        "the environment, which wins over the file",
    )  # fmt: skip
    s.add_argument(
        "--print-config", action="store_true",
        help="print the effective options, each with where it came from, as TOML; then exit",
    )  # fmt: skip
    _security_options(s)

    r = sub.add_parser("run", help="run one job in this process and wait for it")
    r.add_argument("descriptor", help="job descriptor file (JSON or YAML); - for stdin")
    r.add_argument("--db", default=DEFAULT_DB_URL, help="SQLAlchemy URL (default: %(default)s)")
    r.add_argument("--shutdown-timeout", type=_duration, default=30.0)
    r.add_argument(
        "--target-wait-poll",
        type=_positive_duration,
        default=ServeSettings.target_wait_poll,
        help="how often a job waiting for busy targets asks again (default 1s)",
    )
    r.add_argument(
        "--json", action="store_true",
        help="machine output: JSON progress lines even on a terminal, the summary as JSON",
    )  # fmt: skip
    r.add_argument("--junit", metavar="FILE", help="also write the outcome as JUnit XML to FILE")
    r.add_argument(
        "--allow-local-exec",
        action="store_true",
        help="accepted for compatibility: contest run, your own process, always allows them",
    )
    _log_options(r, "warning")

    e = sub.add_parser("events", help="print a job's events from a database, one a line")
    e.add_argument("job_id", type=int, metavar="ID")
    e.add_argument("--db", default=DEFAULT_DB_URL, help="SQLAlchemy URL (default: %(default)s)")
    e.add_argument("--target", action="append", default=[], metavar="T", help="of this target")
    e.add_argument("--step", action="append", default=[], metavar="LABEL", help="of this step")
    e.add_argument("--name", action="append", default=[], metavar="EVENT", help="this event")
    e.add_argument("-f", "--follow", action="store_true", help="until the job ends")
    e.add_argument("--json", action="store_true", help="one JSON object per line")
    e.add_argument(
        "--poll-interval", type=_duration, default=1.0, metavar="D",
        help="--follow: how often to look for new events (default: 1s)",
    )  # fmt: skip

    v = sub.add_parser("validate", help="check job descriptors as `start` would; print every error")
    v.add_argument("descriptors", nargs="+")

    pl = sub.add_parser(
        "plugins",
        help="list every registered plugin by kind; with a NAME, its parameters, events and "
        "pause support",
    )
    pl.add_argument("name", nargs="?", help="a plugin's name (any case)")
    pl.add_argument(
        "--markdown",
        action="store_true",
        help="the reference of the built-in plugins, as docs/steps.md",
    )
    sub.add_parser(
        "schema",
        help="a JSON Schema of job descriptors, for editors (the YAML language server...)",
    )

    t = sub.add_parser("token", help="create, list and revoke the server's API tokens")
    tsub = t.add_subparsers(dest="token_command", required=True)
    tc = tsub.add_parser("create", help="a new token for NAME; the token is the last line")
    tc.add_argument("name", help="who uses it: it becomes the requestor of their jobs")
    tc.add_argument("--role", required=True, choices=["viewer", "submitter", "admin"])
    tl = tsub.add_parser("list", help="the tokens of FILE (their ids, names, roles; no secret)")
    tr = tsub.add_parser("revoke", help="remove every token of NAME, or the token with that id")
    tr.add_argument("name", metavar="NAME|ID")
    for tp in (tc, tl, tr):
        tp.add_argument("--auth-file", required=True, help="the token file of contest serve")
    import shtab

    shtab.add_argument_to(p, ["--print-completion"])
    return p


def _security_options(s: argparse.ArgumentParser) -> None:
    """``contest serve``'s options about who may use it and what jobs may touch on its host
    (see docs/security.md)."""
    s.add_argument(
        "--auth-file",
        default=None,
        metavar="FILE",
        help="require a token (contest token create) on every request; roles viewer, "
        "submitter, admin",
    )
    s.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve ConTest's open API (no tokens) on a non-loopback --listen address",
    )
    s.add_argument(
        "--public-url",
        action="append",
        default=[],
        metavar="URL",
        help="a URL users reach this server by (a proxy, a DNS name); its host and origin are "
        "accepted (repeatable)",
    )
    s.add_argument("--tls-cert", default=None, metavar="FILE", help="serve HTTPS: certificate")
    s.add_argument("--tls-key", default=None, metavar="FILE", help="serve HTTPS: private key")
    s.add_argument(
        "--secrets-dir",
        default=None,
        metavar="DIR",
        help="the only folder password, key and known_hosts files are read from (default: none)",
    )
    s.add_argument(
        "--fetch-root",
        default=None,
        metavar="DIR",
        help="files jobs name (URI fetcher, CSV targets) are read under DIR (default: the "
        "working folder)",
    )
    s.add_argument(
        "--allow-fetch-url",
        action="append",
        default=[],
        metavar="PREFIX",
        help="let the URI fetcher fetch http(s) URLs under PREFIX (repeatable; default: none)",
    )


def _read(path: str) -> str:
    from contest.descfile import read_text

    return read_text(path)


# --- run ---------------------------------------------------------------------------------------


async def _run(args: argparse.Namespace) -> int:
    from contest.descfile import DescriptorFileError
    from contest.hostpolicy import HostPolicy
    from contest.job.descriptor import DescriptorValidationError
    from contest.job.manager import JobManager
    from contest.liveview import LiveView
    from contest.logs import exit_now
    from contest.plugins.targetlockers.inmemory import InMemoryLocker
    from contest.progress import ProgressStore
    from contest.server.lifecycle import redact_url
    from contest.storage import open_storage
    from contest.storage.errors import database_message

    try:
        text = _read(args.descriptor)
    except DescriptorFileError as exc:
        print(f"contest run: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    try:
        store = await open_storage(args.db)
    except Exception as exc:
        print(
            f"contest run: cannot open the database {redact_url(args.db)}: {database_message(exc)}",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    tracked = ProgressStore(store)
    locker = InMemoryLocker()
    jm = JobManager(
        tracked,
        locker,
        wait_poll=args.target_wait_poll,
        server_id=f"{socket.gethostname()}-run-{os.getpid()}",
        shutdown_timeout=args.shutdown_timeout,
        # it holds a lease on its job, renewed by its heartbeat, so that a server on the same
        # database never takes its job for a zombie; it is no server: not listed among them
        register=False,
        # the user's own process on the user's own files: local programs, any file or URL
        policy=HostPolicy.unrestricted(),
    )
    try:
        # nor does it look for zombies: the jobs of a live server on this file are not its own
        await jm.start(resume_jobs=False, sweep_zombies=False)
        try:
            job_id = await jm.submit(text, requestor="contest-run")
        except DescriptorValidationError as exc:
            print("contest run: invalid job descriptor:", file=sys.stderr)
            for e in exc.errors:
                print(f"  {e}", file=sys.stderr)
            return EXIT_UNREACHABLE
        loop = asyncio.get_running_loop()
        interrupted = 0

        def on_signal(name: str) -> None:
            nonlocal interrupted
            interrupted += 1
            if interrupted == 1:
                print("\ncontest run: cancelling the job (again to quit at once)", file=sys.stderr)
                jm.cancel_all(f"interrupted ({name})")
            else:
                exit_now(EXIT_JOB_FAILED)

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, on_signal, sig.name)
        view_out = sys.stdout
        with LiveView(f"job {job_id}", view_out, json_lines=args.json) as view:
            while not await jm.wait_all(timeout=0.25):
                view.update(tracked.progress.to_json_obj())
            view.update(tracked.progress.to_json_obj())
        summary = await _job_summary(jm, store, job_id)
        if args.junit:
            from contest import junit

            try:
                await asyncio.to_thread(Path(args.junit).write_bytes, junit.render(summary))
            except OSError as exc:
                print(f"contest run: cannot write {args.junit}: {exc.strerror}", file=sys.stderr)
                return EXIT_UNREACHABLE
        if args.json:
            doc = summary.to_json_obj()
            if summary.state == "JobStateFailed":
                doc["Error"] = summary.reason
            print(json.dumps(doc, indent=2))
        else:
            from contest.summary import render_text

            sys.stdout.write(render_text(summary))
        return EXIT_OK if summary.succeeded else EXIT_JOB_FAILED
    finally:
        await jm.close()
        await store.close()


async def _job_summary(jm: Any, store: Any, job_id: int) -> Any:
    """The failure summary of a job of this process's store (with its cancellation's reason)."""
    from contest.events import FrameworkEventQuery
    from contest.summary import summarize

    doc = await jm.status(job_id)
    reason = ""
    if doc.get("State") == "JobStateCancelled":
        events = await store.framework_events(
            FrameworkEventQuery(job_id=job_id, event_names=["JobStateCancelled"])
        )
        payload = events[-1].payload if events else None
        if isinstance(payload, dict) and isinstance(payload.get("Reason"), str):
            reason = payload["Reason"]
    return summarize(job_id, doc, reason)


# --- events -------------------------------------------------------------------------------------


def _events(args: argparse.Namespace) -> int:
    """``contest events ID --db URL``: as ``contestcli events``, on a database directly."""
    from contest.eventview import Filters, show, writer
    from contest.server.lifecycle import redact_url
    from contest.storage import open_storage
    from contest.storage.errors import database_message

    where = redact_url(args.db)
    if _missing_sqlite_file(args.db):  # opening it would create an empty database
        print(f"contest events: no database at {where}", file=sys.stderr)
        return EXIT_UNREACHABLE
    with asyncio.Runner() as runner:
        try:
            store = runner.run(open_storage(args.db, migrate_schema=False))
        except Exception as exc:
            print(f"contest events: cannot open the database {where}: {database_message(exc)}",
                  file=sys.stderr)  # fmt: skip
            return EXIT_UNREACHABLE
        try:
            source = _StoreEvents(runner, store, args.job_id)
            try:  # (a database that is not contest's has no jobs table)
                found = runner.run(store.get_job(args.job_id))
            except Exception as exc:
                print(f"contest events: cannot read jobs from {where}: {database_message(exc)}",
                      file=sys.stderr)  # fmt: skip
                return EXIT_UNREACHABLE
            if found is None:
                print(f"contest events: job {args.job_id} not found", file=sys.stderr)
                return EXIT_JOB_FAILED
            filters = Filters(targets=args.target, steps=args.step, names=args.name)
            show(
                source,
                filters,
                writer(sys.stdout, as_json=args.json),
                follow=args.follow,
                poll=max(args.poll_interval, 0.05),
            )
        finally:
            runner.run(store.close())
    return EXIT_OK


def _missing_sqlite_file(url: str) -> bool:
    from contest.storage.urls import backend_name, to_async_url

    try:
        aurl = to_async_url(url)
    except Exception:
        return False  # open_storage says what is wrong with it
    return backend_name(aurl) == "sqlite" and not Path(aurl.database or "").exists()


class _StoreEvents:
    """A job's events from a storage (an ``EventSource``), on the runner's event loop."""

    def __init__(self, runner: asyncio.Runner, store: Any, job_id: int) -> None:
        self.runner = runner
        self.store = store
        self.job_id = job_id

    def page(self, kind: str, filters: Any, after: int, limit: int) -> list[dict[str, Any]]:
        from contest.events import FrameworkEventQuery, TestEventQuery
        from contest.server.restapi import framework_event_json, test_event_json

        names = list(filters.names) or None
        if kind == "framework":
            fw = self.runner.run(
                self.store.framework_events(
                    FrameworkEventQuery(
                        job_id=self.job_id, event_names=names, after_sequence=after, limit=limit
                    )
                )
            )
            return [framework_event_json(e) for e in fw]
        te = self.runner.run(
            self.store.test_events(
                TestEventQuery(
                    job_id=self.job_id,
                    target_ids=list(filters.targets) or None,
                    step_labels=list(filters.steps) or None,
                    event_names=names,
                    after_sequence=after,
                    limit=limit,
                )
            )
        )
        return [test_event_json(e) for e in te]

    def state(self) -> str:
        req = self.runner.run(self.store.get_job(self.job_id))
        return "" if req is None else str(req.state.event_name)


# --- validate ---------------------------------------------------------------------------------


async def _validate(paths: Sequence[str]) -> int:
    from contest.descfile import DescriptorFileError
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
        except DescriptorFileError as exc:
            bad += 1
            print(f"{path}: {exc}")
    return EXIT_JOB_FAILED if bad else EXIT_OK


# --- plugins ----------------------------------------------------------------------------------


def _plugins(name: str | None, as_markdown: bool) -> int:
    """The reference; exits non-zero when a plugin could not be loaded (the errors go to
    stderr) or ``name`` names no plugin."""
    from contest import reference
    from contest.registry import KINDS, default_registry
    from contest.suggest import did_you_mean

    reg = default_registry()
    code = EXIT_OK
    for error in reg.load_errors:
        print(f"contest plugins: cannot load {error}", file=sys.stderr)
        code = EXIT_JOB_FAILED
    if as_markdown:
        sys.stdout.write(reference.markdown(reg))
    elif name is None:
        sys.stdout.write(reference.listing(reg))
    else:
        found = [p for kind in KINDS if (p := reg.find(kind, name)) is not None]
        if not found:
            known = [p.name for kind in KINDS for p in reg.plugins(kind)]
            print(f"contest plugins: no plugin named {name!r}{did_you_mean(name, known)}",
                  file=sys.stderr)  # fmt: skip
            return EXIT_JOB_FAILED
        sys.stdout.write("\n".join(reference.describe(p) for p in found))
    return code


def _schema() -> int:
    from contest.job.descriptor.schema import descriptor_schema
    from contest.registry import default_registry

    reg = default_registry()
    for error in reg.load_errors:
        print(f"contest schema: cannot load {error}", file=sys.stderr)
    print(json.dumps(descriptor_schema(reg), indent=2))
    return EXIT_JOB_FAILED if reg.load_errors else EXIT_OK


# --- token ------------------------------------------------------------------------------------


def _token(args: argparse.Namespace) -> int:
    from contest.server.auth import AuthFileError, Role, TokenFile, check_name

    tokens = TokenFile(args.auth_file)
    try:
        if args.token_command == "create":
            check_name(args.name)
            entry, token = tokens.create(args.name, Role.parse(args.role))
            print(f"created token {entry.id} for {entry.name} ({entry.role}) in {tokens.path}")
            print("it is shown once; send it as 'Authorization: Bearer TOKEN' (contestcli "
                  "--token, CONTEST_TOKEN):")  # fmt: skip
            print(token)
        elif args.token_command == "list":
            for e in tokens.entries():
                print(f"{e.id}  {e.name:<32}  {e.role!s:<9}  {e.created}")
        else:
            gone = tokens.revoke(args.name)
            if not gone:
                print(f"contest token: no token named or with id {args.name!r}", file=sys.stderr)
                return EXIT_JOB_FAILED
            for e in gone:
                print(f"revoked token {e.id} of {e.name} ({e.role})")
    except (AuthFileError, ValueError) as exc:
        print(f"contest token: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
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


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub: argparse.ArgumentParser = action.choices[name]
            return sub
    raise KeyError(name)


def main(argv: Sequence[str] | None = None) -> int:
    from contest import config, logs

    argv = _negative_durations(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    command = next((a for a in argv if not a.startswith("-")), "")
    layers = None
    if command == "serve":
        serve_argv = argv[argv.index("serve") + 1 :]
        try:
            layers = config.apply(_subparser(parser, "serve"), serve_argv, os.environ)
        except config.ConfigError as exc:
            print(f"contest serve: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE
    args = parser.parse_args(argv)
    if args.command == "serve" and args.print_config and layers is not None:
        serve_parser = _subparser(parser, "serve")
        flags = config.given_flags(serve_parser, serve_argv)
        sys.stdout.write(config.render(serve_parser, args, layers, flags))
        return EXIT_OK
    logs.setup(getattr(args, "log_level", "warning"), getattr(args, "log_format", "text"))
    if args.command in ("serve", "run"):
        from contest.redaction import install_log_filter

        install_log_filter()  # secret step parameters never reach a log line
    if args.command == "serve":
        from contest.server import serve

        settings = ServeSettings(
            listen=args.listen,
            db=args.db,
            server_id=args.server_id,
            instance_tag=args.instance_tag,
            pause_timeout=args.pause_timeout,
            resume_jobs=args.resume_jobs,
            job_lease=args.job_lease,
            checkpoint_period=args.checkpoint_period,
            db_retry=args.db_retry,
            target_locker=args.target_locker,
            target_lock_duration=args.target_lock_duration,
            shutdown_timeout=args.shutdown_timeout,
            target_wait_poll=args.target_wait_poll,
            process_timeout=args.process_timeout,
            allow_local_exec=args.allow_local_exec,
            log_level=args.log_level,
            log_format=args.log_format,
            auth_file=args.auth_file,
            insecure_no_auth=args.insecure_no_auth,
            public_url=args.public_url,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            secrets_dir=args.secrets_dir,
            fetch_root=args.fetch_root,
            allow_fetch_url=args.allow_fetch_url,
        )
        code: int = serve(settings)
        return code
    if args.command == "token":
        return _token(args)
    if args.command == "run":
        return asyncio.run(_run(args))
    if args.command == "events":
        return _events(args)
    if args.command == "validate":
        return asyncio.run(_validate(args.descriptors))
    if args.command == "plugins":
        return _plugins(args.name, args.markdown)
    if args.command == "schema":
        return _schema()
    return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
