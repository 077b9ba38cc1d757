"""Jobs by state, counted by the database (what ``/metrics`` reports as ``contest_jobs``)."""

from __future__ import annotations

from test_storage_jobs import request, set_state

from contest.storage import JobState, Storage


async def test_jobs_are_counted_by_their_last_state(storage: Storage) -> None:
    assert await storage.job_state_counts() == {}
    ids = [await storage.store_job(request(f"j{i}")) for i in range(4)]
    for job_id in ids[:3]:
        await set_state(storage, job_id, JobState.STARTED)
    await set_state(storage, ids[0], JobState.COMPLETED)
    await set_state(storage, ids[1], JobState.CANCELLED)
    assert await storage.job_state_counts() == {
        "JobStateUnknown": 1,  # stored, never started
        "JobStateStarted": 1,
        "JobStateCompleted": 1,
        "JobStateCancelled": 1,
    }
