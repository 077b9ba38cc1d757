"""``Exec``: runs a binary per target, locally or over SSH, judged by exit code or OCP output.

Parameters: ``bag``, one JSON object (ConTest LB's shape; every string in it is a template,
expanded per target, step variables included)::

    {"bin": {"path": "/opt/t/run", "args": ["{{ .FQDN }}"]},
     "transport": {"proto": "ssh", "options": {"host": "{{ .FQDN }}", "user": "root", ...}},
     "constraints": {"time_quota": "20m"},
     "ocp_output": true,
     "exitcode_map": {"3": "DIMM missing"}}

* ``bin.path`` (required) and ``bin.args`` (strings).
* ``transport.proto``: ``local`` or ``ssh`` (not templated). ``local`` runs the binary on the
  ConTest server: ``contest serve`` refuses such a job at submission unless it was started with
  ``--allow-local-exec`` (``contest run`` allows it), and so does ``send_binary``, which copies a
  file of the server to the target (see :mod:`contest.hostpolicy`).
* ``transport.options`` for ``ssh``: ``host`` (required), ``port`` (22), ``user`` (required),
  ``password`` / ``password_file`` / ``password_env`` (at most one; on a server, files only
  under ``--secrets-dir`` and variables named ``CONTEST_SECRET_*``), ``identity_file``,
  ``timeout`` (connect time-out, Go duration, default ``10m``), ``send_binary`` (copy
  ``bin.path`` from the server over SFTP to ``/tmp``, mode 0500, removed afterwards), host keys
  as in ``SSHCmd`` (``known_hosts``, ``host_key``, ``insecure_ignore_host_key``; default
  ``~/.ssh/known_hosts``; ConTest never checked them), ``posix_shell`` (default true, see
  ``SSHCmd``), and ``async``: ``{"time_quota", "poll_interval", "reconnect_timeout", "agent"}``
  for the detached mode (below); ``agent`` is accepted and ignored, no agent is needed.
* ``constraints.time_quota`` (Go duration, 0 = none): the limit for the whole execution of one
  target (connecting, copying, running); when it passes, the process (local group or remote
  session) is killed and the target fails with "exceeded time quota of <d>".
* ``ocp_output`` (boolean): parse stdout as OCP Test & Validation JSON (see ``exec_ocp``).
* ``exitcode_map`` (object: exit code -> message): a non-zero exit listed there fails the target
  with "exit code mapped error: <message>" instead of "process exited with non-zero code: <n>".

The whole bag is checked at submission, each error naming its path (``bag.bin.path``...); unknown
keys are refused too. Files and variables of the server it names (a local binary, key and
password files) are only warned about when missing then, as in ``SSHCmd``; secret files and
variables the server may not read are refused. ``bag.transport.options.password`` is a secret
parameter (never shown by the API).

Detached mode (``async`` set): the command runs in its own session on the target, its output and
exit code go to files there, and the step polls them (every ``poll_interval``, default 1s) over
its connection. If the connection drops, the command keeps running; the step reconnects (with
back-off, giving up after ``reconnect_timeout``, default 10m, without a connection) and carries on
where it was. ``async.time_quota`` is also enforced on the target itself. Only ``/bin/sh`` and
the usual tools are needed there (see ``exec_ssh``).

Events (per target): with ``ocp_output``, the OCP artifacts as ``TestStart``, ``TestEnd``,
``TestLog``, ``StepStart``, ``StepEnd``, ``StepLog`` as they arrive (see ``exec_ocp``); without,
``TestStart`` ``{"cmd"}`` before the start and ``TestEnd`` ``{"exitCode"}`` after the end (null
when it was killed or could not run; ConTest's payloads were ``{}`` and null). Stdout and stderr
are kept apart and logged.

Verdict: exit 0 passes (with OCP: and the OCP verdict passes); a non-zero exit fails (mapped or
not), whatever the OCP output said. Pause: not supported (targets in flight finish). Cancellation:
what a target started is killed (local process group, remote session) and the step reports
``Cancelled``.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from typing import Any

from contest import hostpolicy
from contest.errors import Cancelled
from contest.golang.strconv import parse_bool
from contest.golang.time import duration_from_json
from contest.hostpolicy import HostAccessError
from contest.plugins.teststeps.exec_ocp import EVENTS as OCP_EVENTS
from contest.plugins.teststeps.exec_ocp import TEST_END, TEST_START, OCPParser
from contest.plugins.teststeps.exec_ssh import (
    DEFAULT_PORT,
    ExitInfo,
    HostKeyPolicy,
    OutputCallback,
    SSHEndpoint,
    parse_public_key,
)
from contest.plugins.teststeps.exec_transport import (
    DetachedOptions,
    LocalTransport,
    SSHTransport,
    Transport,
    TransportError,
    check_binary,
)
from contest.plugins.teststeps.exec_util import (
    TargetTimeout,
    check_secret_env,
    check_secret_file,
    format_seconds,
    is_template,
    one_line_tail,
    port_number,
    read_password_file,
    read_secret_env,
    run_bounded,
    tail_text,
    warn_later_failure,
)
from contest.teststep import (
    EventEmitter,
    Kind,
    Param,
    Parameter,
    ParameterError,
    Parameters,
    StepChannels,
    StepContext,
    StepParameters,
    Target,
    TestStep,
    for_each_target,
)

NAME = "Exec"
EVENTS = OCP_EVENTS

DEFAULT_CONNECT_TIMEOUT = 600.0  # LB's ssh "timeout" default: 10m


class ExecError(Exception):
    """The target's failure (the message is what ``TargetErr`` shows)."""


# --- the bag, checked at submission ------------------------------------------------------------


def _obj(path: str, value: Any, allowed: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParameterError(f"{path}: must be an object, got {_kind(value)}")
    for key in value:
        if key not in allowed:
            raise ParameterError(
                f"{path}.{key}: unknown field (known: {', '.join(sorted(allowed))})"
            )
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _tpl(path: str, value: Any, *, required: bool = False) -> Param:
    """A string leaf: a template, parsed now so that a syntax error refuses the job."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ParameterError(f"{path}: must be a string, got {_kind(value)}")
    if required and not value:
        raise ParameterError(f"{path}: missing required field")
    param = Param.from_value(value, path)
    try:
        param.template()
    except ParameterError as exc:
        raise ParameterError(f"{path}: {exc}") from exc
    return param


def _bool(path: str, value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return parse_bool(value)
        except ValueError as exc:
            raise ParameterError(f"{path}: {exc}") from exc
    raise ParameterError(f"{path}: must be a boolean, got {_kind(value)}")


def _duration(path: str, value: Any, default: float = 0.0) -> float:
    if value is None:
        return default
    try:
        seconds = duration_from_json(value)
    except ValueError as exc:
        raise ParameterError(f"{path}: {exc}") from exc
    if seconds < 0:
        raise ParameterError(f"{path}: must not be negative, got {value}")
    return seconds


@dataclass(slots=True)
class SSHOptions:
    host: Param
    port: int | Param
    user: Param
    password: Param
    password_file: Param
    password_env: Param
    identity_file: Param
    known_hosts: Param
    host_keys: list[Param]
    insecure: bool
    connect_timeout: float
    send_binary: bool
    posix_shell: bool
    detached: DetachedOptions | None


@dataclass(slots=True)
class ExecConfig:
    path: Param
    args: list[Param]
    proto: str
    ssh: SSHOptions | None
    time_quota: float
    ocp_output: bool
    exitcode_map: dict[int, Param] = field(default_factory=dict)


_ASYNC_FIELDS = (
    Parameter("agent", doc="accepted and ignored: no agent is needed"),
    Parameter("time_quota", Kind.DURATION, doc="the limit, enforced on the target too"),
    Parameter("poll_interval", Kind.DURATION, default="1s", doc="how often the output is read"),
    Parameter(
        "reconnect_timeout",
        Kind.DURATION,
        default="10m",
        doc="give up after this long without a connection",
    ),
)
_SSH_FIELDS = (
    Parameter("host", required=True, doc="the target's address"),
    Parameter("port", Kind.INTEGER, default=DEFAULT_PORT, minimum=1, maximum=65535),
    Parameter("user", required=True),
    Parameter("password", secret=True, doc="better: password_file or password_env"),
    Parameter("password_file", doc="a file on the server whose first line is the password"),
    Parameter("password_env", doc="an environment variable of the server holding it"),
    Parameter("identity_file", doc="a private key file on the server"),
    Parameter("timeout", Kind.DURATION, default="10m", doc="the connect time-out"),
    Parameter(
        "send_binary",
        Kind.BOOLEAN,
        default=False,
        doc="copy bin.path from the server to the target first (removed afterwards)",
    ),
    Parameter("async", Kind.OBJECT, fields=_ASYNC_FIELDS, doc="run detached (see below)"),
    Parameter("known_hosts", doc="a known_hosts file (default: ~/.ssh/known_hosts)"),
    Parameter("host_key", many=True, doc="pinned public host keys"),
    Parameter("insecure_ignore_host_key", Kind.BOOLEAN, default=False, doc="accept any key"),
    Parameter("posix_shell", Kind.BOOLEAN, default=True, doc="the target has /bin/sh (see SSHCmd)"),
)
BAG = Parameter(
    "bag",
    Kind.OBJECT,
    required=True,
    templated=True,
    doc="what to run and how; every string in it is a template expanded per target",
    fields=(
        Parameter(
            "bin",
            Kind.OBJECT,
            required=True,
            fields=(
                Parameter("path", required=True, doc="the binary"),
                Parameter("args", many=True, doc="its arguments"),
            ),
        ),
        Parameter(
            "transport",
            Kind.OBJECT,
            required=True,
            fields=(
                Parameter("proto", required=True, choices=("local", "ssh")),
                Parameter("options", Kind.OBJECT, fields=_SSH_FIELDS, doc="for ssh"),
            ),
        ),
        Parameter(
            "constraints",
            Kind.OBJECT,
            fields=(
                Parameter(
                    "time_quota",
                    Kind.DURATION,
                    doc="the limit for one target's whole execution (0: none)",
                ),
            ),
        ),
        Parameter("ocp_output", Kind.BOOLEAN, default=False, doc="parse stdout as OCP output"),
        Parameter(
            "exitcode_map",
            Kind.OBJECT,
            fields=Parameters(
                others=Parameter("<exit code>", doc="the failure message for that exit code")
            ),
            doc="a failure message per non-zero exit code",
        ),
    ),
)


def _keys(*path: str) -> set[str]:
    """The keys the declaration gives the object at ``path`` inside the bag."""
    decl = BAG
    for name in path:
        assert decl.field_set is not None
        found = decl.field_set.get(name)
        assert found is not None
        decl = found
    return set(decl.field_set.names) if decl.field_set is not None else set()


_TOP = _keys()
_SSH = _keys("transport", "options")
_ASYNC = _keys("transport", "options", "async")


def parse_bag(bag: Any) -> ExecConfig:
    """Check the whole bag (every error names its path) and keep its templates parsed."""
    top = _obj("bag", bag, _TOP)
    bin_ = _obj("bag.bin", top.get("bin"), _keys("bin"))
    path = _tpl("bag.bin.path", bin_.get("path"), required=True)
    raw_args = bin_.get("args")
    if raw_args is None:
        raw_args = []
    if not isinstance(raw_args, list):
        raise ParameterError(f"bag.bin.args: must be a list of strings, got {_kind(raw_args)}")
    args = [_tpl(f"bag.bin.args[{i}]", a) for i, a in enumerate(raw_args)]

    transport = _obj("bag.transport", top.get("transport"), _keys("transport"))
    proto = transport.get("proto")
    if proto not in ("local", "ssh"):
        raise ParameterError(f"bag.transport.proto: no such transport: {proto} (local or ssh)")
    ssh = _parse_ssh(transport.get("options")) if proto == "ssh" else None
    if proto == "local":
        _obj("bag.transport.options", transport.get("options"), set())

    constraints = _obj("bag.constraints", top.get("constraints"), _keys("constraints"))
    time_quota = _duration("bag.constraints.time_quota", constraints.get("time_quota"))

    codes: dict[int, Param] = {}
    raw_map = top.get("exitcode_map")
    if raw_map is not None:
        if not isinstance(raw_map, dict):
            raise ParameterError(f"bag.exitcode_map: must be an object, got {_kind(raw_map)}")
        for key, msg in raw_map.items():
            try:
                code = int(key, 10)
            except ValueError as exc:
                raise ParameterError(f"bag.exitcode_map.{key}: not an exit code") from exc
            codes[code] = _tpl(f"bag.exitcode_map.{key}", msg)
    return ExecConfig(
        path=path,
        args=args,
        proto=proto,
        ssh=ssh,
        time_quota=time_quota,
        ocp_output=_bool("bag.ocp_output", top.get("ocp_output")),
        exitcode_map=codes,
    )


def _parse_ssh(options: Any) -> SSHOptions:
    p = "bag.transport.options"
    opts = _obj(p, options, _SSH)
    raw_port = opts.get("port")
    port: int | Param
    if raw_port is None:
        port = DEFAULT_PORT
    elif isinstance(raw_port, bool) or not isinstance(raw_port, int | str):
        raise ParameterError(f"{p}.port: must be an integer, got {_kind(raw_port)}")
    elif isinstance(raw_port, int):
        port = port_number(f"{p}.port", str(raw_port))
    else:
        port = _tpl(f"{p}.port", raw_port, required=True)
        if not is_template(port):
            port = port_number(f"{p}.port", raw_port)
    secrets = {
        k: _tpl(f"{p}.{k}", opts.get(k)) for k in ("password", "password_file", "password_env")
    }
    given = [k for k, v in secrets.items() if not v.is_empty()]
    if len(given) > 1:
        raise ParameterError(f"{p}.{given[1]}: give only one of {', '.join(given)}")
    raw_keys = opts.get("host_key")
    if raw_keys is None:
        raw_keys = []
    elif isinstance(raw_keys, str):
        raw_keys = [raw_keys]
    if not isinstance(raw_keys, list):
        raise ParameterError(f"{p}.host_key: must be a string or a list of strings")
    host_keys = [_tpl(f"{p}.host_key[{i}]", k, required=True) for i, k in enumerate(raw_keys)]
    for i, key in enumerate(host_keys):
        if not is_template(key):
            try:
                parse_public_key(str(key))
            except ValueError as exc:
                raise ParameterError(f"{p}.host_key[{i}]: {exc}") from exc
    known_hosts = _tpl(f"{p}.known_hosts", opts.get("known_hosts"))
    insecure = _bool(f"{p}.insecure_ignore_host_key", opts.get("insecure_ignore_host_key"))
    if insecure and (host_keys or not known_hosts.is_empty()):
        raise ParameterError(f"{p}.insecure_ignore_host_key: conflicts with host_key/known_hosts")
    detached = None
    if "async" in opts:
        a = _obj(f"{p}.async", opts["async"], _ASYNC)
        if a.get("agent") is not None and not isinstance(a["agent"], str):
            raise ParameterError(f"{p}.async.agent: must be a string, got {_kind(a['agent'])}")
        quota = _duration(f"{p}.async.time_quota", a.get("time_quota"))
        poll = _duration(f"{p}.async.poll_interval", a.get("poll_interval"), 1.0)
        reconnect = _duration(f"{p}.async.reconnect_timeout", a.get("reconnect_timeout"), 600.0)
        detached = DetachedOptions(
            remote_quota=quota or None,
            poll_interval=poll or 1.0,
            reconnect_timeout=reconnect or 600.0,
        )
    posix_shell = _bool(f"{p}.posix_shell", opts.get("posix_shell"), True)
    if detached is not None and not posix_shell:
        raise ParameterError(
            f"{p}.posix_shell: the detached mode (async) needs /bin/sh on the target"
        )
    return SSHOptions(
        host=_tpl(f"{p}.host", opts.get("host"), required=True),
        port=port,
        user=_tpl(f"{p}.user", opts.get("user"), required=True),
        password=secrets["password"],
        password_file=secrets["password_file"],
        password_env=secrets["password_env"],
        identity_file=_tpl(f"{p}.identity_file", opts.get("identity_file")),
        known_hosts=known_hosts,
        host_keys=host_keys,
        insecure=insecure,
        connect_timeout=_duration(f"{p}.timeout", opts.get("timeout"), DEFAULT_CONNECT_TIMEOUT),
        send_binary=_bool(f"{p}.send_binary", opts.get("send_binary")),
        posix_shell=posix_shell,
        detached=detached,
    )


# --- per target --------------------------------------------------------------------------------


def _expand(param: Param, target: Target) -> str:
    try:
        return param.expand(target)
    except ParameterError as exc:
        raise ExecError(f"cannot expand {param.name}: {exc}") from exc


async def _endpoint(opts: SSHOptions, target: Target) -> SSHEndpoint:
    port = opts.port if isinstance(opts.port, int) else None
    if port is None:
        assert isinstance(opts.port, Param)
        try:
            port = port_number(opts.port.name, _expand(opts.port, target))
        except ParameterError as exc:
            raise ExecError(str(exc)) from exc
    try:
        if not opts.password_file.is_empty():
            password = await read_password_file(
                opts.password_file.name, _expand(opts.password_file, target)
            )
        elif not opts.password_env.is_empty():
            password = read_secret_env(opts.password_env.name, _expand(opts.password_env, target))
        else:
            password = _expand(opts.password, target)
    except ParameterError as exc:
        raise ExecError(str(exc)) from exc
    host = _expand(opts.host, target)
    if not host:
        raise ExecError("bag.transport.options.host: empty after expansion")
    return SSHEndpoint(
        host=host,
        port=port,
        user=_expand(opts.user, target),
        private_key_file=_expand(opts.identity_file, target),
        password=password,
        host_key_policy=HostKeyPolicy(
            known_hosts=_expand(opts.known_hosts, target),
            host_keys=tuple(_expand(k, target) for k in opts.host_keys),
            insecure=opts.insecure,
        ),
        connect_timeout=opts.connect_timeout or None,
    )


class Exec(TestStep):
    """Runs a binary per target, locally or over SSH, judged by its exit code or OCP output."""

    name = NAME
    events = EVENTS
    parameters = (BAG,)

    def __init__(self) -> None:
        self.config: ExecConfig | None = None

    def uses_local_processes(self) -> bool:
        """The local transport runs the binary here; ``send_binary`` ships a file of this
        machine to the target: both are the server's own programs."""
        config = self.config
        if config is None:
            return False
        return config.proto == "local" or (config.ssh is not None and config.ssh.send_binary)

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        bags = params.get("bag")
        if len(bags) != 1:
            raise ParameterError(f"bag: expected exactly one object, got {len(bags)} values")
        try:
            raw = json.loads(bags[0].raw)
        except ValueError as exc:
            raise ParameterError(f"bag: not valid JSON: {exc}") from exc
        config = parse_bag(raw)
        self._check_server_files(ctx, config)
        self.config = config

    @staticmethod
    def _check_server_files(ctx: StepContext, config: ExecConfig) -> None:
        """Warn about files of the server the bag names that are missing now (see
        ``warn_later_failure`` for why this is no refusal)."""
        ssh = config.ssh
        local_bin = config.proto == "local" or (ssh is not None and ssh.send_binary)
        if local_bin and not is_template(config.path):
            try:
                check_binary(str(config.path))
            except TransportError as exc:
                warn_later_failure(ctx, "bag.bin.path", f"{exc}: {config.path}")
        if ssh is None:
            return
        for param in (ssh.password_file, ssh.identity_file, ssh.known_hosts):
            check_secret_file(ctx, param.name, param)
        check_secret_env(ctx, ssh.password_env.name, ssh.password_env)

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        if self.config is None:
            await self.validate_parameters(ctx, params)
        config = self.config
        assert config is not None

        async def one(ctx: StepContext, target: Target) -> None:
            await self._target(ctx, ev, config, target)

        await for_each_target(ctx, ch, one)
        if ctx.is_cancelled():
            raise Cancelled()

    async def _transport(self, ctx: StepContext, config: ExecConfig, target: Target) -> Transport:
        if self.uses_local_processes():
            # checked at submission; again here for a job resumed without the flag
            try:
                hostpolicy.current().check_local_exec(f"step {NAME} (label {ctx.step_label!r})")
            except HostAccessError as exc:
                raise ExecError(str(exc)) from exc
        if config.proto == "local":
            return LocalTransport()
        assert config.ssh is not None
        return SSHTransport(
            await _endpoint(config.ssh, target),
            send_binary=config.ssh.send_binary,
            posix_shell=config.ssh.posix_shell,
            detached=config.ssh.detached,
            log=ctx.log,
        )

    async def _target(
        self, ctx: StepContext, ev: EventEmitter, config: ExecConfig, target: Target
    ) -> None:
        path = _expand(config.path, target)
        args = [_expand(a, target) for a in config.args]
        transport = await self._transport(ctx, config, target)
        cmd = transport.describe(path, args)
        ctx.log.info("executing on target %s: %s", target.id, cmd)
        stderr = _Collected()
        stdout = _Collected()
        parser: OCPParser | None = None
        on_stdout: OutputCallback = stdout.feed
        if config.ocp_output:

            async def emit(name: str, payload: dict[str, Any]) -> None:
                await ev.emit(name, target, payload)

            ocp = parser = OCPParser(emit, ctx.log)

            async def feed(data: bytes) -> None:
                stdout.feed(data)
                await ocp.feed(data)

            on_stdout = feed
        else:
            await ev.emit(TEST_START, target, {"cmd": cmd})
        quota = config.time_quota
        try:
            result = await run_bounded(
                ctx,
                transport.execute(path, args, on_stdout, stderr.feed),
                quota or None,
                f"exceeded time quota of {format_seconds(quota)}",
            )
        except (TransportError, TargetTimeout) as exc:
            if parser is None:  # every TestStart gets its TestEnd, but on cancellation
                await ev.emit(TEST_END, target, {"exitCode": None})
            raise ExecError(str(exc)) from exc
        finally:
            self._log_output(ctx, target, stdout, stderr)
        if parser is not None:
            await parser.finish()
        else:
            await ev.emit(TEST_END, target, {"exitCode": result.status})
        self._verdict(config, target, result, parser, stderr)

    @staticmethod
    def _log_output(ctx: StepContext, target: Target, out: _Collected, err: _Collected) -> None:
        if out.text:
            ctx.log.info("stdout on %s: %s", target.id, tail_text(out.text, 4096))
        if err.text:
            ctx.log.warning("stderr on %s: %s", target.id, tail_text(err.text, 4096))

    @staticmethod
    def _verdict(
        config: ExecConfig,
        target: Target,
        result: ExitInfo,
        parser: OCPParser | None,
        stderr: _Collected,
    ) -> None:
        if result.signal is not None:
            raise ExecError(f"process killed by signal {result.signal}")
        code = result.status
        if code:
            mapped = config.exitcode_map.get(code)
            if mapped is not None:
                raise ExecError(f"exit code mapped error: {_expand(mapped, target)}")
            tail = one_line_tail(stderr.text)
            msg = f"process exited with non-zero code: {code}"
            raise ExecError(f"{msg}; stderr: {tail}" if tail else msg)
        if parser is not None:
            verdict = parser.verdict()
            if verdict is not None:
                raise ExecError(verdict)


class _Collected:
    """One output stream, decoded, keeping the last 1 MiB (for logs and error messages)."""

    LIMIT = 1024 * 1024

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""

    def feed(self, data: bytes) -> None:
        self.text += self._decoder.decode(data)
        if len(self.text) > 2 * self.LIMIT:
            self.text = self.text[-self.LIMIT :]


def load() -> tuple[str, Any, tuple[str, ...]]:
    return NAME, Exec, EVENTS


__all__ = [
    "EVENTS",
    "NAME",
    "Exec",
    "load",
    "parse_bag",
]
