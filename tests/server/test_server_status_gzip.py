"""A big status document goes gzipped to clients that accept it (Go's HTTP client asks for gzip
on every request and inflates it transparently), assembled from the runs' saved fragments;
inflated, it is byte for byte the document sent to a client that does not accept it. Small
documents are sent as they are, whatever the client accepts."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import zlib

import pytest
from serverkit import ApiEnv, descriptor

from contest.job._gzip import crc32_combine, fragment, gzip_parts, inflate
from contest.server._pieces import accepts_gzip, pieces
from contest.storage.models import JobState

ECHO = [{"name": "echo", "label": "hello", "parameters": {"text": ["hi {{ .ID }}"]}}]


async def raw_status(env: ApiEnv, job_id: int, accept: str, rest: bool = False) -> tuple[
    dict[str, str], bytes
]:  # fmt: skip
    headers = {"accept-encoding": accept}
    if rest:
        request = env.client.build_request("GET", f"/api/v1/jobs/{job_id}/status", headers=headers)
    else:
        request = env.client.build_request(
            "POST", "/status", data={"requestor": "t", "jobID": str(job_id)}, headers=headers
        )
    resp = await env.client.send(request, stream=True)
    body = b"".join([piece async for piece in resp.aiter_raw()])
    await resp.aclose()
    assert resp.status_code == 200
    assert int(resp.headers["content-length"]) == len(body)
    return dict(resp.headers), body


async def test_a_big_status_is_gzipped_for_who_accepts_it(api: ApiEnv) -> None:
    targets = tuple(f"t{i:04d}" for i in range(400))
    job_id = await api.start(descriptor(targets=targets, steps=ECHO, runs=2))
    await api.wait_state(job_id, JobState.COMPLETED, timeout=60)
    headers, plain = await raw_status(api, job_id, "identity")
    assert "content-encoding" not in headers and len(plain) > 64 * 1024
    for accept in ("gzip", "gzip, deflate", "br;q=1.0, gzip;q=0.5"):
        headers, zipped = await raw_status(api, job_id, accept)
        assert headers["content-encoding"] == "gzip" and len(zipped) < len(plain) // 5
        assert gzip.decompress(zipped) == plain
    doc = json.loads(plain)
    assert doc["Data"]["Status"] == await api.jm.status(job_id)
    assert doc["Data"]["Status"]["RunStatuses"][1] == doc["Data"]["Status"]["RunStatus"]
    headers, rest_zipped = await raw_status(api, job_id, "gzip", rest=True)
    assert headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(rest_zipped)) == doc["Data"]["Status"]
    _, rest_plain = await raw_status(api, job_id, "identity", rest=True)
    assert json.loads(rest_plain) == doc["Data"]["Status"]


async def test_a_small_status_is_sent_as_it_is(api: ApiEnv) -> None:
    job_id = await api.start(descriptor(steps=ECHO))
    await api.wait_state(job_id, JobState.COMPLETED)
    headers, body = await raw_status(api, job_id, "gzip")
    assert "content-encoding" not in headers
    assert json.loads(body)["Data"]["Status"]["State"] == "JobStateCompleted"


@pytest.mark.parametrize(
    ("header", "want"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.8", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0", False),
        ("deflate, br", False),
        ("", False),
        ("identity", False),
    ],
)
def test_accept_encoding(header: str, want: bool) -> None:
    assert accepts_gzip(header) is want


def test_fragments_join_into_one_gzip_stream() -> None:
    rnd = random.Random(5)
    for _ in range(20):
        parts: list[bytes] = [rnd.randbytes(rnd.randint(0, 3000)) for _ in range(rnd.randint(1, 6))]
        # compressible parts too, as status JSON is
        parts += [b'{"ID":"t%04d"}' % i * rnd.randint(1, 50) for i in range(3)]
        mixed = [fragment(p) if rnd.random() < 0.5 else p for p in parts]
        stream = b"".join(gzip_parts(mixed))
        assert gzip.decompress(stream) == b"".join(parts)
        a, b = parts[0], parts[-1]
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    assert inflate(fragment(b"x" * 100_000)) == b"x" * 100_000


def test_pieces_keep_the_bytes_and_their_order() -> None:
    parts = [b"a" * 10, b"", b"b" * 2500, b"c", b"d" * 999]
    out = list(pieces(parts, 1000))
    assert b"".join(out) == b"".join(parts)
    assert all(len(p) <= 2000 for p in out)


async def test_a_runs_missing_form_is_made_once_for_all_who_ask() -> None:
    from contest.job.status import RunText

    text = b'{"ID":"t"}' * 40_000  # big enough to be compressed in a worker thread
    run = RunText(text)
    frags = await asyncio.gather(*(run.fragment() for _ in range(5)))
    assert all(f is frags[0] for f in frags) and inflate(frags[0]) == text
    saved = RunText(frag=frags[0])
    texts = await asyncio.gather(*(saved.text() for _ in range(5)))
    assert all(t is texts[0] for t in texts) and texts[0] == text
