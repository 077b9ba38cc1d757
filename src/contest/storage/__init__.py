"""SQL storage for contest: jobs, tags, events, reports and target locks.

:func:`open_storage` connects to a storage URL (see :mod:`contest.storage.urls`), migrates the
tables to the newest schema (:mod:`contest.storage.migrate`) and returns a :class:`Storage`,
which is the server's EventSink, EventReader and job/report store. The tables are in
:mod:`contest.storage.schema`.
"""

from contest.storage.errors import (
    NotSerializable,
    ParameterTooLong,
    StorageClosed,
    StorageError,
    StorageUnavailable,
)
from contest.storage.limits import Limits
from contest.storage.models import JobReport, JobRequest, JobState, Report
from contest.storage.storage import Storage, open_storage

__all__ = [
    "JobReport",
    "JobRequest",
    "JobState",
    "Limits",
    "NotSerializable",
    "ParameterTooLong",
    "Report",
    "Storage",
    "StorageClosed",
    "StorageError",
    "StorageUnavailable",
    "open_storage",
]
