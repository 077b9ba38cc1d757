"""In-process checks of the access pieces: the token file under concurrent writers and while it
is broken, the guard's host and origin rules, form values refused unread, and the submission
ticket that keeps a timed-out start truthful. (The same behaviour against a real server is in
tests/e2e/test_e2e_auth.py and test_e2e_hostaccess.py.)"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.parse
from pathlib import Path

import httpx
import pytest
from serverkit import SERVER_ID, ApiEnv, descriptor

from contest.job.manager import SubmissionWithdrawn, SubmitTicket
from contest.server.app import ContestApp
from contest.server.auth import ANONYMOUS, AuthFileError, Principal, Role, TokenFile, may_control
from contest.server.formapi import BadRequest, FormAPI, parse_form
from contest.server.guard import Access


def test_roles_are_ordered_and_control_is_owner_or_admin() -> None:
    assert Role.VIEWER < Role.SUBMITTER < Role.ADMIN
    assert f"{Role.SUBMITTER}" == "submitter" and Role.parse(" Admin ") is Role.ADMIN
    alice = Principal("alice", Role.SUBMITTER)
    assert may_control(alice, "alice") and not may_control(alice, "bob")
    assert not may_control(Principal("vera", Role.VIEWER), "vera")
    assert may_control(Principal("root", Role.ADMIN), "bob") and may_control(ANONYMOUS, "x")


def test_concurrent_creates_and_revokes_lose_no_token(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "t")
    made: list[str] = []
    lock = threading.Lock()

    def create(i: int) -> None:
        _, token = tokens.create(f"user{i}", Role.VIEWER)
        with lock:
            made.append(token)

    def revoke() -> None:
        for _ in range(20):
            tokens.revoke("nobody")  # rewrites the file each time it finds... nothing: no-op
            tokens.create("temp", Role.VIEWER)
            tokens.revoke("temp")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(40)]
    threads.append(threading.Thread(target=revoke))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tokens.load()
    assert sorted(e.name for e in tokens.entries()) == sorted(f"user{i}" for i in range(40))
    assert all(tokens.verify(t) is not None for t in made)


def test_a_broken_token_file_refuses_every_token_until_fixed(tmp_path: Path) -> None:
    path = tmp_path / "t"
    tokens = TokenFile(path)
    _, token = tokens.create("ops", Role.ADMIN)
    tokens.load()
    assert tokens.verify(token) == Principal("ops", Role.ADMIN)
    good = path.read_text()
    path.write_text(good + "{not json\n")
    tokens._checked = 0.0  # as if a second had passed
    tokens.refresh()
    assert tokens.verify(token) is None
    path.write_text(good)
    tokens._checked = 0.0
    tokens.refresh()
    assert tokens.verify(token) == Principal("ops", Role.ADMIN)
    with pytest.raises(AuthFileError, match="line 2"):
        path.write_text(good + '{"name": "x"}\n')
        tokens.load()


def test_form_values_too_large_are_refused_unread() -> None:
    body = urllib.parse.urlencode({"requestor": "x", "jobDesc": "{" * 5000}).encode()
    assert parse_form(body, 5000)["jobDesc"] == ["{" * 5000]
    with pytest.raises(BadRequest, match="jobDesc is larger than 4999 bytes"):
        parse_form(body, 4999)


async def test_the_guard_checks_hosts_and_origins_in_process(api: ApiEnv) -> None:
    access = Access.for_server(tokens=None, listen_host="127.0.0.1", public_urls=["https://c.test"])
    app = ContestApp(api.jm, FormAPI(api.jm, SERVER_ID), access)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        assert (await client.get("/api/v1/version")).status_code == 200
        assert (await client.get("/api/v1/version", headers={"Host": "c.test"})).status_code == 200
        refused = await client.get("/api/v1/version", headers={"Host": "rebound.test"})
        assert refused.status_code == 403
        desc = json.dumps(descriptor())
        cross = await client.post(
            "/start", data={"requestor": "r", "jobDesc": desc}, headers={"Origin": "http://x.test"}
        )
        assert cross.status_code == 403 and cross.json() == {"Msg": "cross-origin request refused"}
        public = await client.post(
            "/start", data={"requestor": "r", "jobDesc": desc}, headers={"Origin": "https://c.test"}
        )
        assert public.status_code == 200 and public.json()["Error"] is None, public.text
        await api.jm.stop(public.json()["Data"]["JobID"])


async def test_a_withdrawn_submission_stores_no_job(api: ApiEnv) -> None:
    ticket = SubmitTicket()
    assert ticket.withdraw() and ticket.withdraw()  # withdrawn stays withdrawn
    with pytest.raises(SubmissionWithdrawn):
        await api.jm.submit(json.dumps(descriptor()), "r", ticket=ticket)
    assert await api.jm.list() == []
    late = SubmitTicket()
    assert late.commit() and not late.withdraw()  # once storing, the caller must wait for it
    job_id = await api.jm.submit(json.dumps(descriptor()), "r", ticket=SubmitTicket())
    assert await api.jm.list() == [job_id]
    await api.jm.stop(job_id)
    await asyncio.wait_for(api.jm.wait_all(), 30)
