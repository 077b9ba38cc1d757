"""``TargetList``: the targets are written in the job descriptor.

Acquire parameters: ``{"Targets": [{"ID": "t1", "FQDN": "t1.example.org", "PrimaryIPv4": "10.0.0.1",
"PrimaryIPv6": "2001:db8::1", "TMS": <any JSON>}, ...]}`` (only ``ID`` is required, and it must not
be blank). Release parameters: any JSON object (``{}``) or ``null``; they mean nothing.

Acquire locks every target at once through the locker, with the lease it is given: a fixed list
of targets is all-or-nothing. When other jobs hold some of them, the locker the job runner gives
waits in line for them (within the acquire timeout; ConTest fails at once). Release does nothing
(the job runner unlocks).

One rule stricter than ConTest: a target ID given twice is refused at submission (ConTest takes
it, then the test sees the same device twice and reports nonsense).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from contest.context import PluginContext
from contest.errors import Cancelled, ParameterError, Paused
from contest.golang.json import JsonObject, to_python
from contest.golang.net import parse_ip
from contest.golang.unmarshal import GoStruct, where
from contest.locking import TargetLocker
from contest.paramspec import Kind, Parameter, Parameters
from contest.target import Target
from contest.targetmanager import TargetManager

NAME = "TargetList"


@dataclass(frozen=True)
class AcquireParameters:
    """The validated acquire parameters: the targets, in the order given."""

    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class ReleaseParameters:
    """Release takes no parameters; an empty object stands for them."""


def _ip_field(s: GoStruct, name: str) -> str | None:
    """A ``net.IP`` field: a string holding an IP, ``""``/``null`` for none."""
    result: str | None = None
    for v in s.values(name):
        if v is None:
            continue
        if not isinstance(v, str):
            raise s.type_error(name, v, "net.IP")
        if v == "":
            result = None
            continue
        ip = parse_ip(v)
        if ip is None:
            raise ParameterError(where(f"{s.path}.{name}", f"invalid IP address: {v}"))
        result = str(ip)
    return result


def decode_target(s: GoStruct) -> Target:
    """One target as ConTest's ``target.Target`` reads it (keys case-insensitive, ``TMS`` raw)."""
    tms = s.raw("TMS")
    return Target(
        id=s.string("ID"),
        fqdn=s.string("FQDN"),
        primary_ipv4=_ip_field(s, "PrimaryIPv4"),
        primary_ipv6=_ip_field(s, "PrimaryIPv6"),
        manager_state=to_python(tms) if tms is not None else None,
    )


_PLAIN_KEYS = frozenset({"ID", "FQDN"})


def _plain_target(item: Any) -> Target | None:
    """The usual target, ``{"ID": "...", "FQDN": "..."}`` (keys spelled as Go spells them, each
    once, text values), read without the general decoder (which reads it the same way, at ten
    times the cost: a 100,000-target job is decoded at each submission). None for anything
    else, which the general decoder reads."""
    if type(item) is not JsonObject:
        return None
    pairs = item.pairs
    if not 0 < len(pairs) <= 2:
        return None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key not in _PLAIN_KEYS or key in fields or type(value) is not str:
            return None
        fields[key] = value
    return Target(id=fields.get("ID", ""), fqdn=fields.get("FQDN", ""))


def decode_targets(params: Any, gotype: str) -> tuple[Target, ...]:
    """The ``Targets`` list of ``{"Targets": [...]}`` parameters, each ID checked non-blank
    and unique (a ``null`` entry is a target without ID)."""
    s = GoStruct(params, gotype)
    targets: list[Target] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(s.array("Targets", "[]*target.Target")):
        path = f"Targets[{i}]"
        t = _plain_target(item) or decode_target(s.nested(item, "target.Target", "Targets", path))
        if t.id.strip() == "":
            raise ParameterError(where(f"{path}.ID", "invalid target with empty ID"))
        if t.id in seen:
            raise ParameterError(
                where(f"{path}.ID", f"duplicate target ID {t.id!r} (also Targets[{seen[t.id]}])")
            )
        seen[t.id] = i
        targets.append(t)
    return tuple(targets)


def copy_targets(targets: Sequence[Target]) -> list[Target]:
    """Fresh copies: the validated parameters are shared by every run of the job, and whoever
    gets the targets may change them (the manager state, say)."""
    return [dataclasses.replace(t) for t in targets]


#: One target, as ConTest's ``target.Target`` reads it.
TARGET_FIELDS = (
    Parameter("ID", required=True, doc="the target's ID, unique in the list"),
    Parameter("FQDN", doc="its host name"),
    Parameter("PrimaryIPv4", doc="an IPv4 address"),
    Parameter("PrimaryIPv6", doc="an IPv6 address"),
    Parameter("TMS", Kind.JSON, doc="the target manager's state for it, any JSON"),
    # ConTest's old target field, still in ConTest's own job manager tests: accepted, ignored
    Parameter("Name", doc="obsolete (ConTest's old target name): ignored"),
)
#: ``{"Targets": [...]}``, TargetList's and TargetListWithState's acquire parameters.
TARGETS = Parameters(
    Parameter("Targets", Kind.OBJECT, many=True, fields=TARGET_FIELDS, doc="the targets"),
    go_struct=True,
)
#: Release takes nothing (``{}`` or ``null``).
NO_PARAMETERS = Parameters(go_struct=True)


class TargetList(TargetManager):
    """Targets listed in the descriptor, locked all together at acquire."""

    name = NAME
    acquire_parameters = TARGETS
    release_parameters = NO_PARAMETERS

    def validate_acquire_parameters(self, params: Any) -> AcquireParameters:
        return AcquireParameters(decode_targets(params, "targetlist.AcquireParameters"))

    def validate_release_parameters(self, params: Any) -> ReleaseParameters:
        GoStruct(params, "targetlist.ReleaseParameters")
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
        try:
            await locker.lock(job_id, lock_timeout, [t.id for t in ap.targets])
        except (Paused, Cancelled):  # the job stopped waiting for them: nothing failed
            raise
        except Exception as exc:
            ctx.log.warning("Failed to lock %d targets: %s", len(ap.targets), exc)
            raise
        ctx.log.info("Acquired %d targets", len(ap.targets))
        return copy_targets(ap.targets)

    async def release(
        self, ctx: PluginContext, job_id: int, targets: list[Target], params: Any
    ) -> None:
        ctx.log.info("Released %d targets", len(targets))


def new() -> TargetList:
    return TargetList()


def load() -> tuple[str, Callable[[], TargetManager]]:
    """Entry point of the ``contest.targetmanagers`` group."""
    return NAME, new
