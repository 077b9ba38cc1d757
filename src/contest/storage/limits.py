"""Size limits checked before a value reaches the database.

Why check at all, when the database would refuse the value anyway: a refused row fails the
whole transaction, and the event writer shares transactions between many emitters, so one bad
event would fail all of them. Checking synchronously at write time fails only the caller.
Lengths are UTF-8 bytes, as in ConTest (``pkg/storage/limits``) and as MySQL counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

from contest.storage import schema
from contest.storage.errors import ParameterTooLong

MiB = 1024 * 1024


def byte_len(value: str) -> int:
    """UTF-8 length; cheap for ASCII (all JSON we produce is ASCII)."""
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def check(data_name: str, value: str, max_len: int) -> None:
    """Raise :class:`ParameterTooLong` if ``value`` is longer than ``max_len`` bytes."""
    # 4 bytes per character at most: short strings skip the exact count, and so do ASCII
    # strings short enough (one byte a character); runs for every name of every event
    n = len(value)
    if n * 4 > max_len and (n > max_len or not value.isascii()):
        actual = byte_len(value)
        if actual > max_len:
            raise ParameterTooLong(data_name, max_len, actual)


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper bounds of the big values, in bytes.

    Names are bounded by their columns (see :mod:`contest.storage.schema`). The big texts are
    bounded so that a row fits one MySQL statement (``max_allowed_packet``, 16 MiB by default
    on MariaDB: :func:`Limits.for_packet` gives about 7.9 MiB there). A job of 20,000 targets
    fits with room to spare: its descriptor is under 2 MiB, its extended descriptor and its
    resume state a few MiB.
    """

    event_payload: int = 8 * MiB
    target: int = 1 * MiB
    descriptor: int = 14 * MiB
    report_data: int = 8 * MiB

    def for_packet(self, max_allowed_packet: int) -> Limits:
        """These limits, lowered so that a row fits ``max_allowed_packet`` as an SQL statement.

        The statement carries each text quoted, and quoting may double it (every ``"`` of a
        JSON text becomes ``\\"``), so a value may use half of the packet, less room for the
        rest of the statement.
        """
        usable = max((max_allowed_packet - 256 * 1024) // 2, 64 * 1024)
        target = min(self.target, usable // 4)
        return Limits(
            event_payload=min(self.event_payload, usable - target),
            target=target,
            descriptor=min(self.descriptor, usable),
            report_data=min(self.report_data, usable),
        )


# the name limits, by ConTest's DataName
JOB_NAME = ("Job name", schema.JOB_NAME_MAX)
REQUESTOR = ("Requestor name", schema.REQUESTOR_MAX)
SERVER_ID = ("Server ID", schema.SERVER_ID_MAX)
TAG = ("Tag", schema.TAG_MAX)
TEST_NAME = ("Test name", schema.TEST_NAME_MAX)
STEP_LABEL = ("Test step label", schema.STEP_LABEL_MAX)
EVENT_NAME = ("Event name", schema.EVENT_NAME_MAX)
REPORTER_NAME = ("Reporter name", schema.REPORTER_NAME_MAX)
TARGET_ID = ("Target ID", schema.TARGET_ID_MAX)
