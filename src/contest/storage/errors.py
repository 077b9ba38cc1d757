"""Errors raised by the SQL storage."""

from __future__ import annotations

from contest.errors import ContestError


class StorageError(ContestError):
    """Base of every storage error."""


class ParameterTooLong(StorageError):
    """A value does not fit its column; raised before anything is sent to the database.

    The message is ConTest's, ``<DataName> is too long: <actual> > <max>`` (lengths in bytes of
    UTF-8), so logs and tests read the same as upstream.
    """

    def __init__(self, data_name: str, max_len: int, actual_len: int) -> None:
        super().__init__(f"{data_name} is too long: {actual_len} > {max_len}")
        self.data_name = data_name
        self.max_len = max_len
        self.actual_len = actual_len


class NotSerializable(StorageError):
    """A payload or report datum is not a JSON value."""


class StorageUnavailable(StorageError):
    """The database could not be reached for longer than the retry budget allows.

    Whatever was committed before stays committed; what this error reports was not stored.
    """


class StorageClosed(StorageError):
    """A write arrived after :meth:`Storage.close`."""


def database_message(error: BaseException) -> str:
    """What the database (or its driver) said, without SQLAlchemy's wrapping: the statement,
    the parameters and the "Background on this error" link are for debugging, not for the
    operator reading why the server did not start."""
    orig = getattr(error, "orig", None)
    if isinstance(error, StorageUnavailable) or orig is None:
        return str(error)
    text = str(orig).strip()
    return text or type(orig).__name__


class LeaseLost(StorageError):
    """A write of a job by a server whose lease on it is stale: another instance owns the job
    now (a higher epoch), or the lease lapsed, or the job ended elsewhere. Nothing of the write
    was stored; the server must stop its copy of the job and write nothing more for it (the
    lease's new owner writes its events and its final state)."""

    def __init__(self, job_id: int, epoch: int, why: str = "") -> None:
        tail = f": {why}" if why else ""
        super().__init__(f"job {job_id}: this server's lease (epoch {epoch}) is lost{tail}")
        self.job_id = job_id
        self.epoch = epoch
        self.why = why

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.job_id, self.epoch, self.why))
