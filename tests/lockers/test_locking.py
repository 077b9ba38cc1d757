"""The interface helpers: argument checks shared by every locker, and the error messages."""

from __future__ import annotations

import pytest

from contest.locking import InvalidLockRequest, LockConflict, check_request, target_id_of
from contest.target import Target


def test_check_request_normalises_and_dedupes() -> None:
    req = check_request("lock", 7, [Target("b"), "a", "b", Target("a"), "c"], duration=1.5)
    assert req.job_id == 7
    assert req.target_ids == ["b", "a", "c"]


def test_check_request_accepts_none_and_empty() -> None:
    assert check_request("unlock", 1, None).target_ids == []
    assert check_request("unlock", 1, ()).target_ids == []


@pytest.mark.parametrize(
    ("job", "targets", "kw", "needle"),
    [
        (0, [], {}, "job ID must be positive"),
        (-3, ["a"], {}, "job ID must be positive"),
        (True, ["a"], {}, "job ID must be an int"),
        ("1", ["a"], {}, "job ID must be an int"),
        (1, ["a", ""], {}, "empty target ID"),
        (1, ["a"], {"duration": -1}, "duration must be finite and >= 0"),
        (1, ["a"], {"duration": float("nan")}, "duration must be finite"),
        (1, ["a"], {"duration": float("inf")}, "duration must be finite"),
        (1, ["a"], {"duration": "5m"}, "duration must be seconds"),
        (1, ["a"], {"limit": -1}, "limit must be an int >= 0"),
        (1, ["a"], {"limit": 1.5}, "limit must be an int >= 0"),
        (1, [3], {}, "must be a str ID or a Target"),
    ],
)
def test_check_request_rejects(
    job: object, targets: list[object], kw: dict[str, object], needle: str
) -> None:
    with pytest.raises(InvalidLockRequest, match=needle) as info:
        check_request("lock", job, targets, **kw)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)  # usable as a plain ValueError too


def test_job_zero_checked_before_targets() -> None:
    """ConTest rejects job 0 even with no targets; the message says which request failed."""
    with pytest.raises(InvalidLockRequest, match=r"invalid refresh_locks request: job ID"):
        check_request("refresh_locks", 0, None, duration=1.0)


def test_target_id_of() -> None:
    assert target_id_of("x") == "x"
    assert target_id_of(Target("y", fqdn="y.example")) == "y"


def test_conflict_message_names_targets_and_owners() -> None:
    err = LockConflict("lock", 2, {"001": 1, "002": 5}, ["003"], expired=["002"])
    text = str(err)
    assert text.startswith("lock by job 2 failed: ")
    assert "target '001' is locked by job 1;" in text
    assert "target '002' is locked by job 5 (lease expired)" in text
    assert "target '003' is not locked" in text
    assert err.target_ids == ["001", "002", "003"]
    assert err.conflicts == {"001": 1, "002": 5}
    assert err.missing == ["003"]
