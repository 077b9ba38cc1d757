"""``contestcli``: ConTest's client, verbs and flags, against our server or ConTest's.

``contestcli [flags] VERB [ARG]`` with VERB one of ``start [FILE]`` (stdin without a file),
``stop ID``, ``status ID``, ``retry ID``, ``list``, ``version``. Output is what ConTest's client
prints: the response as indented JSON ``{"ServerID", "Data", "Err"}``.

Where we do better than ConTest's client:

* ``--wait`` exits by the job's outcome: 0 when it completed and every report succeeded, 1 when
  it did not (failed, cancelled, or a report failed), 2 when the server could not be reached;
  while waiting it shows the targets of each step (in flight, passed, failed) and the elapsed
  time, live on a terminal, as JSON lines on stderr otherwise (stdout keeps ConTest's two JSON
  documents). It survives a server restart (a paused job resumes) for ``--reconnect`` seconds.
* Without ``--wait``, an answer carrying ``Err`` exits 1 (ConTest's exits 0).
* Usage errors (no verb, a bad job ID, an unreadable file) exit 2.
* At the end of ``--wait``, and for ``status`` on a terminal, a failure summary (see
  :mod:`contest.summary`): which targets failed, in which step, why, with the end of the step's
  output. Off a terminal ``--wait`` prints it on stderr (stdout keeps ConTest's documents);
  ``--json`` keeps to machine output, ``--human`` asks for the summary even off a terminal.
* ``start FILE`` reads YAML without ``-Y`` when the file's name or content says it is YAML.
* Verbs of ours: ``events ID`` (a job's events, one a line; ``--follow`` until it ends),
  ``report ID`` (the failure summary; ``--junit`` as JUnit XML) and ``servers`` (the live
  servers of the server's database, with their running jobs and heartbeat age; ``--json``),
  from the REST API.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from contest.client.jobdesc import DescriptorFormatError, to_request_json
from contest.client.rest import RestError, RestEvents, job_summary, waiting_text
from contest.client.transport import DEFAULT_ADDR, HTTPTransport, TransportError
from contest.descfile import DescriptorFileError, decode, looks_like_yaml
from contest.golang.json import encode_indent
from contest.golang.strconv import NumError, atoi
from contest.summary import render_text, summarize

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNREACHABLE = 2
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEFAULT_REQUESTOR = "contestcli-http"
TOKEN_ENV = "CONTEST_TOKEN"
VERBS = ("start", "stop", "status", "retry", "list", "version", "events", "report", "servers")
JOB_VERBS = ("stop", "status", "retry", "events", "report")
STATE_NAMES = (
    "JobStateStarted",
    "JobStateCompleted",
    "JobStateFailed",
    "JobStatePaused",
    "JobStatePauseFailed",
    "JobStateCancelling",
    "JobStateCancelled",
    "JobStateCancellationFailed",
)
COMPLETION_STATES = frozenset(
    {"JobStateCompleted", "JobStateFailed", "JobStateCancelled", "JobStateCancellationFailed"}
)

_EPILOG = """\
commands:
  start [FILE]   start a job from FILE (JSON or YAML: -Y, or the file's name or content says
                 so), or from stdin; with --wait, stdout has two JSON documents (the start
                 and the final status) and stderr the failure summary (on a terminal: the
                 summary instead of the final status)
  stop ID        stop a job by ID
  status ID      get the status of a job by ID (on a terminal: the failure summary); a job
                 waiting for targets other jobs hold says so (off a terminal: on stderr)
  retry ID       start a new job from the descriptor of job ID
  list           list job IDs [--states S,...] (any of) [--tags T,...] (all of)
  version        the server's API version
  events ID      the job's events, one a line [--target T] [--step LABEL] [--name EVENT]...
                 [--follow] [--json] (a contest-py server's REST API)
  report ID      the job's failure summary; --junit: as JUnit XML; --json: as JSON

exit status: 0 ok; 1 the server answered with an error, or (--wait) the job did not complete
successfully; 2 usage error, or the server could not be reached.
"""


class UsageError(Exception):
    """The command is wrong (a missing or invalid verb, job ID or state; an unreadable or
    malformed job descriptor): reported on stderr with exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="contestcli",
        description="Client of a ConTest (or contest-py) server.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verb = p.add_argument(
        "verb",
        nargs="?",
        default="",
        help="start, stop, status, retry, list, version, events, report, servers",
    )
    verb.complete = {"bash": "_contestcli_verbs", "zsh": f"({' '.join(VERBS)})"}  # type: ignore[attr-defined]
    p.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    p.add_argument(
        "-a",
        "--addr",
        default=DEFAULT_ADDR,
        help="server [scheme://]host:port[/basepath] (default: %(default)s)",
    )
    p.add_argument(
        "-r",
        "--requestor",
        default=DEFAULT_REQUESTOR,
        help="requestor of the API call (default: %(default)s)",
    )
    p.add_argument(
        "-w",
        "--wait",
        action="store_true",
        help="after start, wait for the job to end; exit 0 only if it succeeded",
    )
    p.add_argument("-Y", "--yaml", action="store_true", help="the descriptor is YAML")
    p.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"API token of a server started with --auth-file (default: ${TOKEN_ENV})",
    )
    p.add_argument(
        "--states",
        action="append",
        default=[],
        metavar="S[,S...]",
        help="list: jobs in any of these states",
    )
    p.add_argument(
        "--tags",
        action="append",
        default=[],
        metavar="T[,T...]",
        help="list: jobs with all of these tags",
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="--wait: seconds between polls (default: %(default)s)",
    )
    p.add_argument(
        "--reconnect",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="--wait: how long to keep trying while the server is away (default: %(default)s)",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "--json",
        action="store_true",
        help="machine output only: ConTest's JSON for status and --wait, JSON lines for events",
    )
    out.add_argument(
        "--human",
        action="store_true",
        help="the failure summary for status and --wait even when stdout is not a terminal",
    )
    out.add_argument("--junit", action="store_true", help="report: the job as JUnit XML")
    p.add_argument(
        "--target", action="append", default=[], metavar="T", help="events: of this target"
    )
    p.add_argument(
        "--step", action="append", default=[], metavar="LABEL", help="events: of this step label"
    )
    p.add_argument(
        "--name", action="append", default=[], metavar="EVENT", help="events: with this name"
    )
    p.add_argument(
        "-f", "--follow", action="store_true", help="events: keep printing until the job ends"
    )
    import shtab

    shtab.add_argument_to(p, ["--print-completion"], preamble=_COMPLETION_PREAMBLE)
    return p


# bash: the verbs for the first positional argument (zsh gets them as a list)
_COMPLETION_PREAMBLE = {
    "bash": "_contestcli_verbs() {\n  compgen -W '" + " ".join(VERBS) + '\' -- "$1"\n}\n'
}


def _split(values: Sequence[str]) -> list[str]:
    """pflag's string slice: every occurrence, each split on commas."""
    out: list[str] = []
    for v in values:
        out.extend(x for x in v.split(",") if x != "")
    return out


def parse_job_id(text: str | None) -> int:
    """ConTest's client rules: missing, not an int, or not positive are usage errors."""
    if not text:
        raise UsageError("missing job ID")
    try:
        value = atoi(text)
    except NumError as exc:
        raise UsageError(f"Invalid job ID: {text}: {exc}") from None
    if value <= 0:
        raise UsageError(f"Invalid job ID: {text}: it must be positive")
    return value


def _print(out: TextIO, resp: dict[str, Any]) -> None:
    out.write(encode_indent(resp))
    out.flush()


# --- waiting -----------------------------------------------------------------------------------


def progress_from_status(status: dict[str, Any] | None) -> dict[str, Any]:
    """The live view's shape from a status document (for servers without ``/progress``)."""
    if not isinstance(status, dict):
        return {"State": "JobStateUnknown", "Run": 0, "Elapsed": 0.0, "Steps": []}
    run = status.get("RunStatus") or {}
    rows = []
    for test in run.get("TestStatuses") or []:
        for step in test.get("TestStepStatuses") or []:
            passed = failed = flight = 0
            for ts in step.get("TargetStatuses") or []:
                if ts.get("Error"):
                    failed += 1
                elif ts.get("OutTime", "").startswith("0001-"):
                    flight += 1
                else:
                    passed += 1
            rows.append(
                {
                    "Test": test.get("TestName", ""),
                    "Step": step.get("TestStepLabel", ""),
                    "InFlight": flight,
                    "Passed": passed,
                    "Failed": failed,
                }
            )
    return {
        "State": status.get("State", "JobStateUnknown"),
        "Run": run.get("RunID", 0),
        "Elapsed": 0.0,
        "Steps": rows,
    }


def job_succeeded(status: dict[str, Any] | None) -> bool:
    """Completed, and every run and final report a success (reports that exist)."""
    return summarize(0, status).succeeded


def print_summary(
    transport: HTTPTransport, job_id: int, status: dict[str, Any] | None, out: TextIO
) -> None:
    """The failure summary of the job (see :mod:`contest.summary`) as text."""
    out.write(render_text(job_summary(transport, job_id, status)))
    out.flush()


def wait_for_job(
    transport: HTTPTransport,
    requestor: str,
    job_id: int,
    *,
    poll: float,
    reconnect: float,
    out: TextIO,
    output: str = "auto",
) -> int:
    """Poll until the job ends; print its final status; the exit status. ``output``: ``auto``
    (the summary on a terminal; off one ConTest's document on stdout and the summary on
    stderr), ``json`` (ConTest's document only) or ``human`` (the summary on stdout)."""
    from contest.liveview import LiveView

    view_out = out if out.isatty() else sys.stderr
    use_rest = True
    away_since: float | None = None
    started = time.monotonic()
    with LiveView(f"job {job_id}", view_out) as view:
        while True:
            try:
                prog = transport.progress(job_id) if use_rest else None
                if prog is None:
                    use_rest = False
                    resp = transport.status(requestor, job_id)
                    if resp["Err"] is not None:
                        print(
                            f"contestcli: server responded with an error: {resp['Err']}",
                            file=sys.stderr,
                        )
                        return EXIT_FAILED
                    prog = progress_from_status(resp["Data"].get("Status"))
                    prog["Elapsed"] = round(time.monotonic() - started, 3)
                away_since = None
            except TransportError as exc:
                now = time.monotonic()
                if away_since is None:
                    away_since = now
                    print(f"contestcli: {exc}; retrying", file=sys.stderr)
                if now - away_since > reconnect:
                    print(
                        f"contestcli: server unreachable for {reconnect:g}s: {exc}", file=sys.stderr
                    )
                    return EXIT_UNREACHABLE
                time.sleep(min(poll, 1.0))
                continue
            view.update(prog)
            if prog.get("State") in COMPLETION_STATES:
                break
            time.sleep(poll)
    try:
        final = transport.status(requestor, job_id)
    except TransportError as exc:
        print(f"contestcli: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if final["Err"] is not None:
        print(f"contestcli: server responded with an error: {final['Err']}", file=sys.stderr)
        return EXIT_FAILED
    status = final["Data"].get("Status")
    if output == "json":
        _print(out, final)
    elif output == "human" or out.isatty():
        print_summary(transport, job_id, status, out)
    else:
        _print(out, final)
        print_summary(transport, job_id, status, sys.stderr)
    return EXIT_OK if job_succeeded(status) else EXIT_FAILED


# --- main ----------------------------------------------------------------------------------------


def _read_descriptor(path: str | None, stdin: TextIO) -> bytes:
    if not path:
        print("Reading from stdin...", file=sys.stderr)
        return stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(
            f"failed to read job descriptor: open {path}: {exc.strerror or exc}"
        ) from None


def _connect(args: argparse.Namespace) -> Callable[[str], HTTPTransport]:
    def connect(addr: str) -> HTTPTransport:
        return HTTPTransport(addr, token=args.token)

    return connect


def run(
    args: argparse.Namespace,
    out: TextIO,
    stdin: TextIO,
    connect: Callable[[str], HTTPTransport] | None = None,
) -> int:
    """One command; ``connect(addr)`` makes the transport (tests pass a fake server), by
    default one sending ``--token``."""
    connect = connect or _connect(args)
    verb = args.verb.lower()
    if verb == "":
        raise UsageError("Missing verb, see --help")
    if verb not in VERBS:
        raise UsageError(f"invalid verb: '{verb}'")
    extra = args.args
    states = _split(args.states)
    tags = _split(args.tags)
    if verb == "list":
        for s in states:
            if s not in STATE_NAMES:
                raise UsageError(f'invalid job state "{s}"')
    job_id = parse_job_id(extra[0] if extra else None) if verb in JOB_VERBS else 0
    output = "json" if args.json else "human" if args.human else "auto"
    descriptor = ""
    if verb == "start":
        path = extra[0] if extra else None
        raw = _read_descriptor(path, stdin)
        try:
            text = decode(raw, path or "stdin")
            yaml = args.yaml or looks_like_yaml(path, text)
            descriptor = to_request_json(text, yaml=yaml)
        except (DescriptorFormatError, DescriptorFileError) as exc:
            raise UsageError(str(exc)) from None
    try:
        with connect(args.addr) as transport:
            if verb == "start":
                resp = transport.start(args.requestor, descriptor)
                new_id = int((resp.get("Data") or {}).get("JobID") or 0)
                if args.wait and new_id:
                    _print(out, resp)
                    print("\nWaiting for job to complete...", file=sys.stderr)
                    return wait_for_job(
                        transport,
                        args.requestor,
                        new_id,
                        poll=max(args.poll_interval, 0.05),
                        reconnect=max(args.reconnect, 0.0),
                        out=out,
                        output=output,
                    )
            elif verb == "stop":
                resp = transport.stop(args.requestor, job_id)
            elif verb == "status":
                resp = transport.status(args.requestor, job_id)
                human = output == "human" or (output == "auto" and out.isatty())
                # a started job that waits for targets says so, as --wait's live view does:
                # above the summary, or on stderr beside ConTest's document (not with --json)
                waiting = waiting_text(transport, job_id) if output != "json" else ""
                if human and resp["Err"] is None:
                    if waiting:
                        out.write(waiting + "\n")
                    print_summary(transport, job_id, (resp["Data"] or {}).get("Status"), out)
                    return EXIT_OK
                if waiting:
                    print(waiting, file=sys.stderr)
            elif verb == "events":
                return _events(transport, job_id, args, out)
            elif verb == "report":
                return _report(transport, args.requestor, job_id, args, out)
            elif verb == "servers":
                return _servers(transport, args, out)
            elif verb == "retry":
                resp = transport.retry(args.requestor, job_id)
            elif verb == "list":
                resp = transport.list(args.requestor, states, tags)
            else:
                resp = transport.version(args.requestor)
    except TransportError as exc:
        print(f"contestcli: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    _print(out, resp)
    return EXIT_FAILED if resp.get("Err") is not None else EXIT_OK


def _events(transport: HTTPTransport, job_id: int, args: argparse.Namespace, out: TextIO) -> int:
    from contest.eventview import Filters, show, writer

    filters = Filters(targets=args.target, steps=args.step, names=args.name)
    try:
        show(
            RestEvents(transport, job_id),
            filters,
            writer(out, as_json=args.json),
            follow=args.follow,
            poll=max(args.poll_interval, 0.05),
        )
    except RestError as exc:
        print(f"contestcli: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _servers(transport: HTTPTransport, args: argparse.Namespace, out: TextIO) -> int:
    """The live servers of the server's database: a table, or the REST answer (``--json``)."""
    import json

    code, body = transport.get_json("/api/v1/servers")
    if code != 200 or not isinstance(body, dict) or not isinstance(body.get("servers"), list):
        why = body.get("error") if isinstance(body, dict) else None
        print(f"contestcli: servers: HTTP {code}: {why or 'the server has no servers list'}",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    servers = body["servers"]
    if args.json:
        out.write(json.dumps(body, indent=2) + "\n")
        return EXIT_OK
    rows = [("INSTANCE", "SERVER ID", "HOST", "PID", "LISTEN", "HEARTBEAT", "JOBS")]
    for s in servers:
        jobs = ",".join(str(j) for j in s.get("jobs") or []) or "-"
        age = f"{float(s.get('heartbeat_age', 0.0)):.1f}s ago"
        if s.get("draining"):
            age += " (draining)"
        rows.append(
            (str(s.get("instance_id", "")), str(s.get("server_id", "")), str(s.get("host", "")),
             str(s.get("pid", "")), str(s.get("listen", "")), age, jobs)
        )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
    return EXIT_OK


def _report(
    transport: HTTPTransport, requestor: str, job_id: int, args: argparse.Namespace, out: TextIO
) -> int:
    """The job's summary (text, ``--json``) or JUnit XML (``--junit``); exit 0 only if the job
    succeeded, as ``--wait`` does."""
    import json

    from contest import junit

    resp = transport.status(requestor, job_id)
    if resp["Err"] is not None:
        print(f"contestcli: server responded with an error: {resp['Err']}", file=sys.stderr)
        return EXIT_FAILED
    s = job_summary(transport, job_id, (resp["Data"] or {}).get("Status"))
    if args.junit:
        out.write(junit.render(s).decode())
    elif args.json:
        out.write(json.dumps(s.to_json_obj(), indent=2) + "\n")
    else:
        out.write(render_text(s))
    out.flush()
    return EXIT_OK if s.succeeded else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_intermixed_args(argv)
    try:
        return run(args, sys.stdout, sys.stdin)
    except UsageError as exc:
        print(f"contestcli: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ncontestcli: interrupted (a started job goes on on the server)", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
