"""``contest serve``: start-up, serving, and an orderly end.

Start-up, in ConTest's order, with one change: the listening socket is bound first, so that a
second server started by mistake on a busy port fails before it touches the database (it would
otherwise fail the first server's running jobs as zombies). Then: open (and migrate) the
database, choose the target locker, start the job manager (which registers this instance in
the database, fails the zombie jobs, then resumes its paused ones), and serve.

Identity: the ServerID the API shows and new jobs carry is ``--server-id`` or the host name, as in
ConTest; the instance ID that owns jobs and heartbeats is ``--server-id`` or host-pid-suffix, so
two servers started without flags on one host are two instances and never fail each other's
jobs. On SQLite only one server may be live per file: the server holds an OS lock on
``<database>.server.lock`` while it runs (dropped by the OS when the process dies, so a restart
after ``kill -9`` is never refused), and a second server fails to start, naming the first's pid.

The end: a signal (see :mod:`contest.server.shutdown`) stops the listener and pauses, cancels or
drains the jobs; the server waits for every job to end or pause, refreshes the paused jobs' locks
one last time, flushes the event writer and exits 0.

uvicorn runs in this process with one worker (the job manager lives here) and without its own
signal handling: ours replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import uvicorn

from contest import hostpolicy
from contest.hostpolicy import HostPolicy
from contest.locking import TargetLocker
from contest.runner import interpreter
from contest.server.auth import AuthFileError, TokenFile
from contest.server.guard import Access
from contest.settings import ServeSettings

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_START_FAILED = 1
MAX_SERVER_ID_BYTES = 64
MAX_TAG_BYTES = 32  # the job_tags column: every new job carries the instance tag
MIN_JOB_LEASE = 1.0


class StartupError(Exception):
    """The server cannot start; the message says why, for the operator."""


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: ours decide what a signal means."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6; ``:8080`` means every interface, as in Go)."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit():
        raise StartupError(f"--listen {listen!r}: expected HOST:PORT")
    port = int(port_text)
    if port > 65535:
        raise StartupError(f"--listen {listen!r}: port out of range")
    host = host.strip("[]") if host.startswith("[") else host
    return host or "0.0.0.0", port


def bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"cannot resolve {host!r}: {exc}") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` stands for is a loopback one (``""`` and ``0.0.0.0``,
    every interface, are not)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]).is_loopback for info in infos
    )


def check_access(settings: ServeSettings, host: str) -> None:
    """Refuse what would put an open server on a network, or a half-given TLS pair."""
    if settings.auth_file is None and not settings.insecure_no_auth and not is_loopback(host):
        raise StartupError(
            f"--listen {settings.listen}: not a loopback address, and no --auth-file: anyone "
            "who can reach it could run jobs. Create tokens (contest token create NAME --role "
            "admin --auth-file FILE) and pass --auth-file FILE, or pass --insecure-no-auth "
            "to serve ConTest's open API there anyway"
        )
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise StartupError("--tls-cert and --tls-key go together")
    for flag, path in (("--tls-cert", settings.tls_cert), ("--tls-key", settings.tls_key)):
        if path and not os.path.isfile(path):
            raise StartupError(f"{flag} {path}: no such file")
    for flag, folder in (
        ("--secrets-dir", settings.secrets_dir),
        ("--fetch-root", settings.fetch_root),
    ):
        if folder and not os.path.isdir(folder):
            raise StartupError(f"{flag} {folder}: no such folder")


def host_policy(settings: ServeSettings) -> HostPolicy:
    try:
        return HostPolicy.server(
            allow_local_exec=settings.allow_local_exec,
            secrets_dir=settings.secrets_dir,
            fetch_root=settings.fetch_root,
            fetch_urls=settings.allow_fetch_url,
        )
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def access(settings: ServeSettings, host: str) -> Access:
    tokens = None
    if settings.auth_file is not None:
        tokens = TokenFile(settings.auth_file)
        try:
            tokens.load()
        except AuthFileError as exc:
            raise StartupError(f"--auth-file: {exc}") from None
    try:
        return Access.for_server(
            tokens=tokens,
            listen_host=host,
            public_urls=settings.public_url,
            tls=bool(settings.tls_cert),
        )
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def check_settings(settings: ServeSettings) -> str:
    """Refuse settings ConTest refuses; returns the server ID."""
    from contest.job.descriptor import check_tags

    server_id = settings.resolved_server_id()
    if len(server_id.encode()) > MAX_SERVER_ID_BYTES:
        raise StartupError(
            f"Server ID is too long: {len(server_id.encode())} > {MAX_SERVER_ID_BYTES}"
        )
    tag = settings.instance_tag
    if tag:
        problems = check_tags([tag], allow_internal=True, path="--instance-tag")
        if problems or not tag.startswith("_") or len(tag) > MAX_TAG_BYTES:
            raise StartupError(
                f"--instance-tag {tag!r}: must be a valid tag ([a-zA-Z0-9_-], at most "
                f"{MAX_TAG_BYTES} characters) starting with '_'"
            )
    if settings.job_lease < MIN_JOB_LEASE:
        raise StartupError(
            f"--job-lease {settings.job_lease:g}s: must be at least {MIN_JOB_LEASE:g}s (the "
            "heartbeat runs every lease/3)"
        )
    if settings.checkpoint_period is not None and settings.checkpoint_period < 0:
        raise StartupError(
            f"--checkpoint-period {settings.checkpoint_period:g}s: must be 0 (never) or more"
        )
    if not settings.db_retry > 0:
        raise StartupError(f"--db-retry {settings.db_retry:g}s: must be more than 0")
    if settings.target_locker not in ("auto", "inmemory", "db"):
        raise StartupError(f"--target-locker {settings.target_locker!r}: auto, inmemory or db")
    return server_id


def sqlite_lock_path(db: str) -> Path | None:
    """The lock file guarding a SQLite database (``<file>.server.lock``); None for another
    kind of database, or an in-memory one."""
    from contest.storage.urls import backend_name, to_async_url

    try:
        url = to_async_url(db)
    except Exception:
        return None  # open_storage says what is wrong with it
    if backend_name(url) != "sqlite" or not url.database or url.database == ":memory:":
        return None
    # the real path: two spellings of one file (a symlink, a relative path) share one lock
    return Path(os.path.realpath(url.database) + ".server.lock")


def hold_sqlite_lock(db: str) -> IO[str] | None:
    """Take the one-server lock of a SQLite database for this process's life (an exclusive
    ``flock`` the OS drops when the process ends, however it ends); the open lock file, to keep
    open, or None if ``db`` is not a SQLite file. A live server holding it: StartupError
    naming the database and that server's pid (written in the lock file)."""
    path = sqlite_lock_path(db)
    if path is None:
        return None
    try:
        handle = open(path, "a+")  # held open for the process's life
    except OSError as exc:
        raise StartupError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise StartupError(
            f"another contest serve (pid {holder}) is running on the SQLite database "
            f"{path.with_suffix('').with_suffix('')}: one server per SQLite file (it holds "
            f"{path}). Stop it first, or use PostgreSQL or MariaDB to run several servers"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def make_locker(kind: str, store: Any) -> TargetLocker:
    """``auto`` is the DB locker, on the storage's own engine: locks must outlive the process
    for a restarted server to resume its paused jobs (an in-memory lease is gone by then)."""
    from contest.registry import default_registry

    reg = default_registry()
    locker: TargetLocker
    if kind == "inmemory":
        locker = reg.get("targetlockers", "InMemory").factory()
    else:
        locker = reg.get("targetlockers", "DBLocker").factory(engine=store.engine)
        # the locks are rows of this database: a job's final state deletes them with it
        store.free_target_locks_at_job_end()
        # and a server that lost a job's lease can neither refresh nor release its locks
        locker.fence_with(store.check_lease)  # type: ignore[attr-defined]
    return locker


async def run(settings: ServeSettings) -> int:
    """Serve until a signal says to stop; the exit status."""
    server_id = check_settings(settings)
    host, port = parse_listen(settings.listen)
    check_access(settings, host)
    policy = host_policy(settings)
    guard = access(settings, host)
    # nothing the server runs falls back to an open policy, whatever task or thread it is in
    with hostpolicy.serving(policy):
        return await _serve(settings, server_id, host, port, policy, guard)


async def _serve(
    settings: ServeSettings,
    server_id: str,
    host: str,
    port: int,
    policy: HostPolicy,
    guard: Access,
) -> int:
    from contest import __version__
    from contest.job.manager import JobManager
    from contest.server.app import create_app
    from contest.server.shutdown import ShutdownController
    from contest.storage import open_storage
    from contest.storage.fleet import Instance, InstanceConflict, new_instance_id
    from contest.storage.reader import READ_THREADS
    from contest.storage.urls import redact

    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    scheme = "https" if settings.tls_cert else "http"
    sqlite_lock = None
    try:
        sqlite_lock = hold_sqlite_lock(settings.db)
        instance = Instance(
            settings.server_id or new_instance_id(),
            server_id,
            version=__version__,
            listen=f"{scheme}://{url_host}:{bound_port}",
        )
        try:
            # a frozen server's transaction cannot keep its fencing share locks on lease rows
            # (and so hold up another server's claim) past half a lease
            store = await open_storage(
                settings.db,
                retry_for=settings.db_retry,
                idle_transaction_timeout=max(1.0, settings.job_lease / 2),
                session_name=instance.instance_id,
                # the API's reads (job list, status) each in one turn of the loop that runs the
                # jobs, not five to seven (docs/performance.md, "The server under 20 pollers")
                read_threads=READ_THREADS,
            )
        except Exception as exc:
            from contest.storage.errors import database_message

            where = redact_url(settings.db)
            raise StartupError(
                f"cannot open the database {where}: {database_message(exc)}"
            ) from None
        try:
            # a database outage longer than --db-retry suspends the jobs (their events are
            # held and written when it is back), rather than failing them half-written
            store.hold_outages()
            locker = make_locker(settings.target_locker, store)
            interpreter.prepare(serving=True)  # before the job manager's: the API's setting
            jm = JobManager(
                store,
                locker,
                server_id=server_id,
                instance_tag=settings.instance_tag or None,
                lock_duration=settings.target_lock_duration or 600.0,
                shutdown_timeout=settings.shutdown_timeout,
                wait_poll=settings.target_wait_poll,
                policy=policy,
                instance=instance,
                job_lease=settings.job_lease,
                checkpoint_period=settings.checkpoint_period,
                # SQLite under the lock above: no other server can be live on the file
                single_server=sqlite_lock is not None,
            )
            try:
                await jm.start(resume_jobs=settings.resume_jobs)
            except InstanceConflict as exc:
                await jm.close()
                raise StartupError(str(exc)) from None
            try:
                app = create_app(
                    jm, server_id, process_timeout=settings.process_timeout, access=guard
                )
                config = uvicorn.Config(
                    app,
                    ssl_certfile=settings.tls_cert,
                    ssl_keyfile=settings.tls_key,
                    lifespan="off",
                    log_config=None,
                    access_log=False,
                    server_header=False,
                    timeout_keep_alive=10,
                    timeout_graceful_shutdown=5,
                    ws="none",
                )
                server = _Server(config)

                def stop_api() -> None:
                    server.should_exit = True
                    app.close()

                controller = ShutdownController(jm, stop_api, settings.pause_timeout)
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
                    loop.add_signal_handler(sig, controller.on_signal, sig)
                try:
                    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
                    # uvicorn has no "started" callback: poll its flag
                    while not server.started and not serving.done():  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                    if server.started:
                        loop.run_in_executor(None, app.warm)
                        print(
                            f"contest serve: listening on {scheme}://{url_host}:{bound_port} "
                            f"(server ID {server_id!r}, instance {instance.instance_id!r}, "
                            f"database {redact(store.url)})",
                            file=sys.stderr,
                            flush=True,
                        )
                    try:
                        await serving
                    except (Exception, SystemExit) as exc:
                        log.error("the HTTP listener failed: %s", exc)
                    if not controller.stopping.is_set():
                        controller.interrupt("listener stop")  # pause/cancel as for SIGTERM
                    while not await jm.wait_all(timeout=1.0):
                        continue  # not all ended or paused yet: wait another second
                finally:
                    controller.close()
                    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
                        loop.remove_signal_handler(sig)
            finally:
                await jm.close()
                with contextlib.suppress(Exception):
                    await locker.close()
        finally:
            await store.close()
    finally:
        sock.close()
        if sqlite_lock is not None:
            sqlite_lock.close()  # the OS drops the lock with the file
    log.info("server stopped")
    return EXIT_OK


def redact_url(url: str) -> str:
    """The URL without its password, for messages; a URL we cannot parse is not echoed."""
    from contest.storage.urls import redact, to_async_url

    try:
        return redact(to_async_url(url))
    except Exception:
        return "<the given URL>"


def serve(settings: ServeSettings) -> int:
    """Run the server in a new event loop; 0 after an orderly stop, 1 if it could not start."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # the schema migrations' chatter is for debugging; the operator wants our own lines
        logging.getLogger("alembic").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters at debug level: every event and
    # descriptor twice over, noise in any case
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    try:
        return asyncio.run(run(settings))
    except StartupError as exc:
        print(f"contest serve: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
