"""Real OpenSSH servers for tests: one ``sshd`` per target, on loopback, started and stopped here.

The SSH steps (``SSHCmd``, ``Exec`` over ssh) are only worth testing against the real thing: host
key checks, signals, SFTP, dropped connections and exit statuses all behave the way OpenSSH makes
them behave, and an in-process fake would only test our idea of it. Every server gets its own
address (``127.0.0.2``, ``127.0.0.3``, ... - Linux routes all of ``127/8`` to ``lo``), a free port,
a freshly generated host key and a config file in a temp dir, and runs in the foreground
(``sshd -D -e -f config``) so that stopping it is killing one process we own. All servers of a
:class:`SshdFarm` accept the same generated client key, for the user running the tests.

Where mount namespaces are available (root, ``unshare``: see :func:`namespaces_supported`), each
``sshd`` runs in a private mount namespace where copies of ``/etc/passwd`` and ``/etc/shadow`` are
bind-mounted over the real ones, without changing the machine's accounts: in the copy the user's
home is an empty directory of the farm, so that the machine's login scripts (a ``.bashrc`` that
takes half a second to run ``pyenv init``) do not slow every command down; and a farm started
with ``password=...`` puts that password in the shadow copy, so that password logins work.

Because the servers run on this machine, a "remote" command is a local process: a test can look
for it with ``pgrep`` to check that a cancelled step left nothing behind.

Usage (synchronous, so it fits fixtures of any scope and any event loop)::

    with SshdFarm(3) as farm:
        srv = farm.servers[0]
        ... connect to srv.address:srv.port as farm.user with farm.client_key_file,
            checking srv.host_public_key / farm.known_hosts_file ...

Needs ``openssh-server`` (``/usr/sbin/sshd``) and, for passwords, ``openssl`` and ``unshare``.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import asyncssh

__all__ = [
    "SshdFarm",
    "SshdServer",
    "find_sshd",
    "password_login_supported",
    "pids_matching",
    "process_children",
]

_SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")


def find_sshd() -> str | None:
    """The absolute path of ``sshd`` (it refuses to re-exec itself from a relative one)."""
    for path in _SSHD_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("sshd")
    return os.path.abspath(found) if found else None


def password_login_supported() -> bool:
    """Whether :class:`SshdFarm` can offer password logins here: mount namespaces (see
    :func:`namespaces_supported`) and ``openssl``, to hash the password."""
    return namespaces_supported() and shutil.which("openssl") is not None


@functools.cache
def namespaces_supported() -> bool:
    """Root, ``unshare`` present, and mount namespaces allowed (containers without
    CAP_SYS_ADMIN do not allow them)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    try:
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "true"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        port: int = s.getsockname()[1]
        return port


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def process_children(pid: int) -> list[int]:
    """Direct children of ``pid``, from ``/proc`` (no psutil needed)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name is in parentheses and may itself contain spaces or ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(entry))
    return out


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        kids = process_children(todo.pop())
        out.extend(kids)
        todo.extend(kids)
    return out


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def pids_matching(pattern: str, *, exact: bool = False) -> list[int]:
    """Pids whose full command line (arguments joined by spaces) contains ``pattern``, or with
    ``exact``, is ``pattern`` (``pgrep -f`` / ``pgrep -fx`` without the regex and without
    counting ourselves). Zombies have no command line, so they never match."""
    me = os.getpid()
    out = []
    needle = pattern.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().rstrip(b"\0").replace(b"\0", b" ")
        except OSError:
            continue
        if cmdline == needle if exact else needle in cmdline:
            out.append(int(entry))
    return out


class SshdServer:
    """One ``sshd`` listening on ``address:port``, with its own host key and config."""

    def __init__(
        self,
        farm: SshdFarm,
        index: int,
        address: str,
        directory: Path,
    ) -> None:
        self.farm = farm
        self.index = index
        self.address = address
        self.dir = directory
        self.port = 0
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key_file = directory / "ssh_host_ed25519_key"
        self.config_file = directory / "sshd_config"
        self.log_file = directory / "sshd.log"
        self.process: subprocess.Popen[bytes] | None = None
        _write_private(self.host_key_file, self.host_key.export_private_key())

    @property
    def host_public_key(self) -> str:
        """``ssh-ed25519 AAAA...``: what a step's ``host_key`` parameter pins."""
        return self.host_key.export_public_key().decode().strip()

    @property
    def known_hosts_line(self) -> str:
        return f"[{self.address}]:{self.port} {self.host_public_key}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def _write_config(self) -> None:
        farm = self.farm
        lines = [
            f"ListenAddress {self.address}:{self.port}",
            f"HostKey {self.host_key_file}",
            f"AuthorizedKeysFile {farm.authorized_keys_file}",
            f"PidFile {self.dir / 'sshd.pid'}",
            "StrictModes no",  # the temp dir's parents are world-writable
            "UsePAM no",
            "PermitRootLogin yes",
            "PubkeyAuthentication yes",
            f"PasswordAuthentication {'yes' if farm.password is not None else 'no'}",
            "KbdInteractiveAuthentication no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "MaxStartups 200:30:400",
            "MaxSessions 100",
            "LoginGraceTime 30",
            "LogLevel VERBOSE",
            "Subsystem sftp internal-sftp",
        ]
        self.config_file.write_text("\n".join(lines) + "\n")

    def _command(self) -> list[str]:
        farm = self.farm
        cmd = [farm.sshd, "-D", "-e", "-f", str(self.config_file)]
        if farm.passwd_file is None:
            return cmd
        # a private mount namespace with our copies of the account files (module docstring)
        script = 'mount --bind "$0" /etc/passwd && '
        if farm.shadow_file is not None:
            script += 'mount --bind "$1" /etc/shadow && '
        script += 'shift && exec "$@"'
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            str(farm.passwd_file),
            str(farm.shadow_file or ""),
            *cmd,
        ]

    def launch(self, port: int | None = None) -> None:
        """Start the process (on ``port``, or on a fresh free one); see :meth:`wait_ready`."""
        self.port = port if port is not None else _free_port(self.address)
        self._write_config()
        log = open(self.log_file, "ab")  # handed to the child, closed here after the fork
        try:
            self.process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()

    def wait_ready(self, deadline: float) -> None:
        """Wait until the port accepts connections; raise with the server's log if it died."""
        while True:
            proc = self.process
            if proc is None or proc.poll() is not None:
                raise RuntimeError(
                    f"sshd on {self.address}:{self.port} exited: {self.log()[-2000:]}"
                )
            with contextlib.suppress(OSError):  # not listening yet
                with socket.create_connection((self.address, self.port), timeout=0.5):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd on {self.address}:{self.port} not ready: {self.log()}")
            time.sleep(0.01)

    def start(self, port: int | None = None, timeout: float = 10.0) -> None:
        self.launch(port)
        self.wait_ready(time.monotonic() + timeout)

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def session_pids(self) -> list[int]:
        """The per-connection ``sshd`` processes (the listener's descendants named sshd)."""
        if self.process is None:
            return []
        return [p for p in _descendants(self.process.pid) if _comm(p) == "sshd"]

    def kill_sessions(self, sig: int = signal.SIGKILL) -> int:
        """Cut every open connection by killing its ``sshd`` processes, as a network failure
        or a crashed daemon would; the listener keeps accepting new ones. Returns how many."""
        pids = self.session_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return len(pids)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the listener and every connection it still has."""
        proc = self.process
        if proc is None:
            return
        sessions = self.session_pids()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process = None

    def restart(self, down_for: float = 0.0) -> None:
        """Stop, stay down ``down_for`` seconds, start again on the same port."""
        port = self.port
        self.stop()
        if down_for > 0:
            time.sleep(down_for)
        self.start(port)


class SshdFarm:
    """``count`` sshd servers on ``127.0.0.<first_host>`` onwards, sharing one client key.

    ``user`` is the account the client logs in as (the one running the tests); with
    ``password`` set, password logins for that account work too (see the module docstring).
    ``known_hosts_file`` lists every server's host key; ``client_key_file`` is the private key
    (OpenSSH format, no passphrase) every server accepts.
    """

    def __init__(
        self,
        count: int = 1,
        *,
        first_host: int = 2,
        password: str | None = None,
        base_dir: str | Path | None = None,
        start_timeout: float = 20.0,
    ) -> None:
        if not 1 <= count or first_host + count - 1 > 254 or first_host < 1:
            raise ValueError(f"cannot place {count} servers from 127.0.0.{first_host}")
        sshd = find_sshd()
        if sshd is None:
            raise RuntimeError("sshd not found: install openssh-server")
        if password is not None and not password_login_supported():
            raise RuntimeError("password logins need root, unshare (mount namespaces), openssl")
        self.sshd = sshd
        self.count = count
        self.first_host = first_host
        self.password = password
        self.start_timeout = start_timeout
        self.user = getpass.getuser()
        self._tmp = tempfile.TemporaryDirectory(prefix="contest-sshd-", dir=base_dir)
        self.dir = Path(self._tmp.name)
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_file = self.dir / "client_key"
        self.authorized_keys_file = self.dir / "authorized_keys"
        self.known_hosts_file = self.dir / "known_hosts"
        self.home = self.dir / "home"
        self.passwd_file: Path | None = None
        self.shadow_file: Path | None = None
        self.servers: list[SshdServer] = []

    # --- set-up -----------------------------------------------------------------------------

    def _prepare(self) -> None:
        _write_private(self.client_key_file, self.client_key.export_private_key())
        (self.dir / "client_key.pub").write_bytes(self.client_key.export_public_key())
        self.authorized_keys_file.write_bytes(self.client_key.export_public_key())
        if os.geteuid() == 0:
            # sshd's privilege-separation directory; the distribution's unit creates it
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        if namespaces_supported():
            self.home.mkdir(mode=0o700)
            self.passwd_file = self.dir / "passwd"
            self.passwd_file.write_bytes(self._passwd_with_home(self.home))
            self.passwd_file.chmod(0o644)
        if self.password is not None:
            self.shadow_file = self.dir / "shadow"
            _write_private(self.shadow_file, self._shadow_with_password(self.password))

    def _passwd_with_home(self, home: Path) -> bytes:
        out = []
        user = self.user.encode()
        for line in Path("/etc/passwd").read_bytes().splitlines():
            fields = line.split(b":")
            if fields and fields[0] == user and len(fields) == 7:
                fields[5] = str(home).encode()
                line = b":".join(fields)
            out.append(line)
        return b"\n".join(out) + b"\n"

    def _shadow_with_password(self, password: str) -> bytes:
        hashed = subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"],
            input=password.encode(),
            capture_output=True,
            check=True,
        ).stdout.strip()
        lines = Path("/etc/shadow").read_bytes().splitlines()
        out = []
        user = self.user.encode()
        for line in lines:
            fields = line.split(b":")
            if fields and fields[0] == user and len(fields) > 2:
                fields[1] = hashed
                fields[2] = b"19000"  # last change: far enough from any expiry rule
                line = b":".join(fields)
            out.append(line)
        return b"\n".join(out) + b"\n"

    def start(self) -> SshdFarm:
        self._prepare()
        for i in range(self.count):
            address = f"127.0.0.{self.first_host + i}"
            directory = self.dir / f"srv{i}"
            directory.mkdir()
            self.servers.append(SshdServer(self, i, address, directory))
        try:
            for srv in self.servers:
                srv.launch()
            deadline = time.monotonic() + self.start_timeout
            for srv in self.servers:
                srv.wait_ready(deadline)
        except BaseException:
            self.stop()
            raise
        self.write_known_hosts()
        return self

    def write_known_hosts(self, path: Path | None = None) -> Path:
        """Write every server's host key, OpenSSH style (``[addr]:port key``)."""
        path = path or self.known_hosts_file
        path.write_text("".join(srv.known_hosts_line + "\n" for srv in self.servers))
        return path

    # --- tear-down --------------------------------------------------------------------------

    def stop(self) -> None:
        for srv in self.servers:
            with contextlib.suppress(Exception):
                srv.stop()

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> SshdFarm:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
