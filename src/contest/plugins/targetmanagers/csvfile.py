"""``CSVFileTargetManager``: the targets are the rows of a CSV file on the server.

Acquire parameters (ConTest's, keys case-insensitive)::

    {"FileURI": "hosts.csv",        # required: a path, or file:///abs/path (host empty/localhost)
     "MinNumberDevices": 2,         # uint32: fewer usable targets than this fails the acquire
     "MaxNumberDevices": 4,         # uint32: lock at most this many
     "HostPrefixes": ["compute"],   # optional: keep hosts whose FQDN's first label starts so
     "Shuffle": true}               # optional: try the hosts in random order

Release parameters: any JSON object (``{}``) or ``null``. A relative path is relative to the
server's working directory, as in ConTest; on ``contest serve``, to its ``--fetch-root``, and the
file must be a regular file under it (see :mod:`contest.hostpolicy`), of at most 16 MiB.

The file has exactly four columns per row, ``ID,FQDN,IPv4,IPv6`` (ConTest's sample rows end with
a comma: ``1234,compute1234,172.16.5.6,``); blank lines are skipped; fields are trimmed; only the
ID is required; a non-empty address must parse (the IPv4 column must hold an IPv4 address).

Acquire reads the file at every acquire (so edits take effect on the next run), filters by prefix,
checks there are at least ``MinNumberDevices``, optionally shuffles, then locks up to
``MaxNumberDevices`` of them in order, skipping those other jobs hold, through the locker's line
(``lock_queued`` with ``need`` = ``MinNumberDevices``, at least one): while fewer than the minimum
are free, the job waits in line for them, within the acquire timeout. Given a locker that does not
wait (one used outside a job), fewer than the minimum fails with "can't lock enough targets"; a
failed acquire is an ordinary failed attempt (retried per the test's retry parameters).

Deliberate differences from ConTest (ConTest's texts are kept as message prefixes):

* a host matching several prefixes is taken once (ConTest adds it once per matching prefix);
* rows repeating an ID (ConTest's own sample ``hosts.csv`` has two ``1234``) keep the first row,
  with a warning: a device cannot be two targets, and the locker counts it once anyway;
* ``MaxNumberDevices`` below ``MinNumberDevices`` is refused at submission (ConTest accepts the job
  and then fails every acquire), and an empty ``FileURI`` is refused as if missing;
* errors carry the line number and the file;
* busy hosts are waited for (ConTest try-locks once and fails), and a minimum of 0 waits for one
  host (taking none would test nothing, which fails the job).
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contest import hostpolicy
from contest.context import PluginContext
from contest.errors import ContestError, ParameterError
from contest.golang.net import parse_ip
from contest.golang.unmarshal import GoStruct
from contest.hostpolicy import HostAccessError
from contest.locking import LockerError, TargetLocker
from contest.paramspec import Kind, Parameter, Parameters
from contest.plugins.targetmanagers.targetlist import NO_PARAMETERS, copy_targets
from contest.target import Target
from contest.targetmanager import TargetManager

NAME = "CSVFileTargetManager"
#: Bytes a hosts file may have (a row is a few dozen bytes: hundreds of thousands of hosts).
MAX_FILE_SIZE = 16 * 1024 * 1024
GOTYPE = "csvtargetmanager.AcquireParameters"
UINT32_MAX = 2**32 - 1


class AcquireError(ContestError):
    """The targets could not be acquired (file unreadable or malformed, too few hosts or locks)."""


@dataclass(frozen=True)
class AcquireParameters:
    """Validated acquire parameters; ``path`` is the file ``file_uri`` names."""

    file_uri: str
    path: str
    min_number_devices: int = 0
    max_number_devices: int = 0
    host_prefixes: tuple[str, ...] = ()
    shuffle: bool = False


@dataclass(frozen=True)
class ReleaseParameters:
    """Release takes no parameters."""


def file_path_of(uri: str, field: str = "FileURI", what: str = "file URI") -> str:
    """The local path a ``file``-scheme (or scheme-less) URI names; ``ParameterError`` otherwise.

    ``hosts.csv``, ``./hosts.csv``, ``/abs/hosts.csv``, ``file:///abs/hosts.csv`` and
    ``file://localhost/abs/hosts.csv`` are accepted; percent-escapes are decoded as Go does.
    """
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError as exc:
        raise ParameterError(f"{field}: invalid {what} {uri!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("", "file"):
        raise ParameterError(
            f"{field}: unsupported scheme: '{scheme}', only 'file' or empty string are accepted"
        )
    host = parts.netloc.rpartition("@")[2]
    if host not in ("", "localhost"):
        raise ParameterError(
            f"{field}: unsupported host '{host}', only 'localhost' or empty string are accepted"
        )
    path = urllib.parse.unquote(parts.path)
    if path == "":
        raise ParameterError(f"{field}: {what} {uri!r} names no file")
    return path


def read_hosts(path: str, prefixes: tuple[str, ...] = ()) -> tuple[list[Target], list[str]]:
    """Read ``ID,FQDN,IPv4,IPv6`` rows, filtered by FQDN prefix; return the hosts (first row of
    each ID) and the IDs that were repeated. Raises :class:`AcquireError` with the line number."""
    hosts: list[Target] = []
    seen: set[str] = set()
    repeated: list[str] = []
    try:
        real = hostpolicy.current().fetch_path("FileURI", path)
        data = hostpolicy.read_capped(real, MAX_FILE_SIZE)
    except OSError as exc:
        raise AcquireError(f"cannot read CSV file '{path}': {exc.strerror or exc}") from None
    except HostAccessError as exc:
        raise AcquireError(f"cannot read CSV file '{path}': {exc}") from None
    text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for record in reader:
            line = reader.line_num
            if not record:
                continue  # a blank line
            host = _host(record, path, line)
            if prefixes and not _matches(host, prefixes):
                continue
            if host.id in seen:
                repeated.append(host.id)
                continue
            seen.add(host.id)
            hosts.append(host)
    except csv.Error as exc:
        raise AcquireError(
            f"cannot parse CSV file '{path}' (line {reader.line_num}): {exc}"
        ) from None
    return hosts, repeated


def _host(record: list[str], path: str, line: int) -> Target:
    at = f"(file '{path}', line {line})"
    if len(record) != 4:
        raise AcquireError(
            "malformed input file, need 4 entries per record (ID, FQDN, IPv4, IPv6), "
            f"got {len(record)} {at}"
        )
    tid, fqdn, ipv4_text, ipv6_text = (field.strip() for field in record)
    if tid == "":
        raise AcquireError(f"invalid empty string for host ID {at}")
    ipv4 = ipv6 = None
    if ipv4_text:
        ip = parse_ip(ipv4_text)
        if ip is None or ip.version != 4:
            raise AcquireError(f'invalid non-empty IPv4 address "{ipv4_text}" {at}')
        ipv4 = str(ip)
    if ipv6_text:
        ip = parse_ip(ipv6_text)
        if ip is None:
            raise AcquireError(f'invalid non-empty IPv6 address "{ipv6_text}" {at}')
        ipv6 = str(ip)
    return Target(id=tid, fqdn=fqdn, primary_ipv4=ipv4, primary_ipv6=ipv6)


def _matches(host: Target, prefixes: tuple[str, ...]) -> bool:
    """Prefix filtering looks at the FQDN's first label; hosts without FQDN never match."""
    if not host.fqdn:
        return False
    first = host.fqdn.split(".", 1)[0]
    return any(first.startswith(p) for p in prefixes)


class CSVFileTargetManager(TargetManager):
    """Targets from a CSV file, try-locked between a minimum and a maximum count.

    ``rng`` shuffles when ``Shuffle`` is set (tests pass a seeded ``random.Random``).
    """

    name = NAME
    acquire_parameters = Parameters(
        Parameter(
            "FileURI",
            required=True,
            doc="the CSV file: a path (relative to the server's folder) or file:///abs/path",
        ),
        Parameter(
            "MinNumberDevices",
            Kind.INTEGER,
            minimum=0,
            maximum=UINT32_MAX,
            doc="fewer usable targets than this fails the acquire",
        ),
        Parameter(
            "MaxNumberDevices",
            Kind.INTEGER,
            minimum=0,
            maximum=UINT32_MAX,
            doc="lock at most this many",
        ),
        Parameter(
            "HostPrefixes",
            many=True,
            doc="keep the hosts whose FQDN's first label starts with one of these",
        ),
        Parameter("Shuffle", Kind.BOOLEAN, default=False, doc="try the hosts in random order"),
        go_struct=True,
    )
    release_parameters = NO_PARAMETERS

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def validate_acquire_parameters(self, params: Any) -> AcquireParameters:
        s = GoStruct(params, GOTYPE)
        file_uri = s.optional_string("FileURI")
        min_devices = s.uint("MinNumberDevices")
        max_devices = s.uint("MaxNumberDevices")
        prefixes = s.strings("HostPrefixes")
        shuffle = s.boolean("Shuffle")
        for i, prefix in enumerate(prefixes):
            prefixes[i] = prefix.strip()
            if prefixes[i] == "":
                raise ParameterError(
                    f"HostPrefixes[{i}]: Host prefix cannot be empty string if specified"
                )
        if not file_uri:
            raise ParameterError("FileURI: file URI not specified in acquire parameters")
        path = file_path_of(file_uri)
        hostpolicy.current().fetch_path("FileURI", path)  # refused at submission if outside
        if max_devices < min_devices:
            raise ParameterError(
                f"MaxNumberDevices: must be at least MinNumberDevices ({max_devices} < "
                f"{min_devices}): no acquire could ever succeed"
            )
        return AcquireParameters(
            file_uri=file_uri,
            path=path,
            min_number_devices=min_devices,
            max_number_devices=max_devices,
            host_prefixes=tuple(prefixes),
            shuffle=shuffle,
        )

    def validate_release_parameters(self, params: Any) -> ReleaseParameters:
        GoStruct(params, "csvtargetmanager.ReleaseParameters")
        return ReleaseParameters()

    async def acquire(
        self,
        ctx: PluginContext,
        job_id: int,
        lock_timeout: float,
        params: Any,
        locker: TargetLocker,
    ) -> list[Target]:
        ap = params
        if not isinstance(ap, AcquireParameters):
            ap = self.validate_acquire_parameters(params)
        hosts, repeated = await asyncio.to_thread(read_hosts, ap.path, ap.host_prefixes)
        if repeated:
            ctx.log.warning(
                "CSV file '%s' repeats target IDs %s: using the first row of each",
                ap.path,
                sorted(set(repeated)),
            )
        if len(hosts) < ap.min_number_devices:
            raise AcquireError(
                f"not enough hosts found in CSV file '{ap.path}', "
                f"want {ap.min_number_devices}, got {len(hosts)}"
            )
        ctx.log.debug("Found %d targets in %s", len(hosts), ap.path)
        if ap.shuffle:
            ctx.log.info("Shuffling targets")
            self._rng.shuffle(hosts)
        need = min(max(ap.min_number_devices, 1), len(hosts), ap.max_number_devices)
        try:
            got = await locker.lock_queued(
                job_id,
                lock_timeout,
                [h.id for h in hosts],
                need=need,
                limit=ap.max_number_devices,
            )
        except LockerError as exc:
            raise AcquireError(f"failed to lock targets: {exc}") from exc
        if not got.granted:
            held = ", ".join(f"{t} by job {j}" for t, j in got.blockers.items())
            raise AcquireError(
                f"can't lock enough targets: want at least {need} of the {len(hosts)} found in "
                f"'{ap.path}'" + (f"; held: {held}" if held else "")
            )
        locked_ids = got.acquired
        by_id = {h.id: h for h in hosts}
        unknown = [tid for tid in locked_ids if tid not in by_id]
        if unknown:
            raise AcquireError(f"can not find locked targets in hosts: {unknown}")
        locked = [by_id[tid] for tid in locked_ids]
        if len(locked) < ap.min_number_devices:
            if locked:
                try:
                    await locker.unlock(job_id, [t.id for t in locked])
                except LockerError as exc:
                    raise AcquireError(f"can't unlock targets: {exc}") from exc
            raise AcquireError(
                f"can't lock enough targets: want at least {ap.min_number_devices}, "
                f"locked {len(locked)} of the {len(hosts)} found in '{ap.path}'"
            )
        return copy_targets(locked)

    async def release(
        self, ctx: PluginContext, job_id: int, targets: list[Target], params: Any
    ) -> None:
        return None


def new() -> CSVFileTargetManager:
    return CSVFileTargetManager()


def load() -> tuple[str, Callable[[], TargetManager]]:
    """Entry point of the ``contest.targetmanagers`` group."""
    return NAME, new
