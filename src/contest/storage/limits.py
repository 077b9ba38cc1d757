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
    # 4 bytes per character at most: short strings skip the exact count
    if len(value) * 4 > max_len:
        actual = byte_len(value)
        if actual > max_len:
            raise ParameterTooLong(data_name, max_len, actual)


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper bounds of the big values, in bytes.

    Names are bounded by their columns (see :mod:`contest.storage.schema`). The big texts are
    bounded so that one row fits one MySQL packet (``max_allowed_packet``, 16 MiB by default on
    MariaDB; :func:`Limits.for_packet` lowers them on a server with a smaller packet). The
    defaults hold a job of 20,000 targets with room to spare: its descriptor is a few MiB, and
    so is its resume state.
    """

    event_payload: int = 8 * MiB
    target: int = 1 * MiB
    descriptor: int = 14 * MiB
    report_data: int = 8 * MiB

    def for_packet(self, max_allowed_packet: int) -> Limits:
        """These limits, lowered so a row (plus statement overhead) fits ``max_allowed_packet``."""
        room = max(max_allowed_packet - 256 * 1024, 64 * 1024)
        return Limits(
            event_payload=min(self.event_payload, room - min(self.target, room // 4)),
            target=min(self.target, room // 4),
            descriptor=min(self.descriptor, room),
            report_data=min(self.report_data, room),
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
