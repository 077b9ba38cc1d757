"""Server settings: what ``contest serve`` takes on its command line (ConTest's flags in
brackets in ``--help``)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

DEFAULT_DB_URL = "sqlite:///contest.db"
DEFAULT_LISTEN = "127.0.0.1:8080"
# how often a job waiting for targets other jobs hold asks the locker again (a release the
# locker sees in this process wakes it sooner)
DEFAULT_TARGET_WAIT_POLL = 1.0
# SIGTERM pauses the running jobs (a restarted server resumes them) and cancels those not
# paused after this long: within a service manager's usual stop timeout (systemd's is 90s)
DEFAULT_PAUSE_TIMEOUT = 60.0
# a job whose server's heartbeat (every lease/3) has not reached the database for this long is
# a zombie: long enough for a slow database, short enough to notice a crash soon
DEFAULT_JOB_LEASE = 30.0
# a database operation is retried across a lost connection this long; a server holds its jobs'
# events through a longer outage (the jobs wait), see docs/deployment.md
DEFAULT_DB_RETRY = 30.0


@dataclass
class ServeSettings:
    listen: str = DEFAULT_LISTEN
    db: str = DEFAULT_DB_URL
    server_id: str = ""
    instance_tag: str | None = None
    # 0: cancel on the first signal (ConTest's default); >0 pause, then cancel; <0 pause
    pause_timeout: float = DEFAULT_PAUSE_TIMEOUT
    resume_jobs: bool = True
    job_lease: float = DEFAULT_JOB_LEASE
    checkpoint_period: float | None = None  # None: the job manager's default (lease/3)
    db_retry: float = DEFAULT_DB_RETRY
    target_locker: str = "auto"  # auto | inmemory | db
    target_lock_duration: float = 600.0
    shutdown_timeout: float = 30.0
    target_wait_poll: float = DEFAULT_TARGET_WAIT_POLL
    process_timeout: float = 3.0  # how long an API request may take
    allow_local_exec: bool = False
    log_level: str = "info"
    log_format: str = "text"  # or json
    # who may use the server, and what jobs may touch on its machine (docs/security.md)
    auth_file: str | None = None  # the token file; None: ConTest's open API (loopback only)
    insecure_no_auth: bool = False  # allow the open API on a non-loopback address
    public_url: list[str] = field(default_factory=list)  # how users reach it (proxy, DNS name)
    tls_cert: str | None = None
    tls_key: str | None = None
    secrets_dir: str | None = None  # the only place secret files are read from
    fetch_root: str | None = None  # files jobs name are read under it (default: working folder)
    allow_fetch_url: list[str] = field(default_factory=list)  # http(s) prefixes jobs may fetch

    def resolved_server_id(self) -> str:
        return self.server_id or socket.gethostname()

    @property
    def host(self) -> str:
        host, _, _ = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1"

    @property
    def port(self) -> int:
        _, _, port = self.listen.rpartition(":")
        return int(port)
