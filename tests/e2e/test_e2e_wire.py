"""The requests ConTest's own Go client sends (recorded on the wire), sent byte for byte
to a real ``contest serve``; the replies are compared byte for byte where the data are the same.

The server is started with ``--server-id vm`` (the capture's host name) and a first job is made
before the recorded ``start`` so that job IDs line up with the capture (1 done, 2 the recorded
3-run job, 3 the stopped one). Times cannot be equal, so they are masked before comparing; every
other byte of the 8,874-byte status document must be the same.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path
from urllib.parse import urlencode

from e2ekit import ServerProcess, literal_job

DATA = Path(__file__).parent / "data"
START_BODY = (DATA / "start_request.txt").read_bytes()
TIME = re.compile(rb'"(EmitTime|StartTime|EndTime|InTime|OutTime|ReportTime)":"(?!0001-)[^"]*"')


def go_request(verb: str, body: bytes) -> bytes:
    """The request exactly as Go's client wrote it (through the recording proxy on 8081)."""
    head = (
        f"POST /{verb} HTTP/1.1\r\n"
        "Host: 127.0.0.1:8081\r\n"
        "User-Agent: Go-http-client/1.1\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Accept-Encoding: gzip\r\n"
        "\r\n"
    )
    return head.encode() + body


class RawConnection:
    """One keep-alive connection, written and read as bytes."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        self.buf += chunk

    def exchange(self, request: bytes) -> tuple[str, dict[str, str], bytes]:
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line, 16)
                while len(self.buf) < size + 2:
                    self._fill()
                body += self.buf[:size]
                self.buf = self.buf[size + 2 :]
                if size == 0:
                    break
        else:
            length = int(headers["content-length"])
            while len(self.buf) < length:
                self._fill()
            body, self.buf = self.buf[:length], self.buf[length:]
        return lines[0], headers, body


def envelope(type_: str, data: str, error: str = "null") -> bytes:
    return f'{{"ServerID":"vm","Type":"{type_}","Data":{data},"Error":{error}}}\n'.encode()


def test_go_client_requests_get_contests_replies(
    tmp_path: Path, server_factory: type[ServerProcess]
) -> None:
    server = server_factory(tmp_path, f"sqlite:///{tmp_path / 'wire.db'}").start()
    conn = RawConnection(server.url)

    def ask(verb: str, body: bytes) -> bytes:
        status_line, headers, reply = conn.exchange(go_request(verb, body))
        assert status_line in ("HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request")
        assert headers["content-type"] == "text/plain; charset=utf-8"
        return reply

    try:
        # version (81 bytes)
        assert ask("version", b"requestor=contestcli-http") == (
            b'{"ServerID":"vm","Type":"ResponseTypeVersion","Data":{"Version":5},"Error":null}\n'
        )
        # job 1: done before the recorded start, with the same tags
        form = {"requestor": "contestcli-http", "jobDesc": json.dumps(literal_job())}
        first = server.post("start", urlencode(form))
        assert json.loads(first.content)["Data"] == {"JobID": 1}
        server.wait_state(1, "JobStateCompleted")

        # the recorded start: job 2 (77 bytes)
        assert ask("start", START_BODY) == envelope("ResponseTypeStart", '{"JobID":2}')
        # status while it runs: the document's head is ConTest's. A job records its start
        # in its own task (ConTest's too: jobmanager's runJob emits JobStateStarted after start
        # has replied), now after claiming its lease: wait for it as a client polling would
        server.wait_state(2, "JobStateStarted")
        running = ask("status", b"jobID=2&requestor=contestcli-http")
        assert running.startswith(
            b'{"ServerID":"vm","Type":"ResponseTypeStatus","Data":{"Status":{"Name":"test job",'
            b'"State":"JobStateStarted","StateErrMsg":"","StartTime":"'
        )
        assert running.endswith(b',"Error":null}\n')

        # lists (81, 79, 81 bytes)
        assert ask("list", b"requestor=contestcli-http") == envelope(
            "ResponseTypeList", '{"JobIDs":[1,2]}'
        )
        assert ask("list", b"requestor=contestcli-http&states=JobStateStarted") == envelope(
            "ResponseTypeList", '{"JobIDs":[2]}'
        )
        assert ask("list", b"requestor=contestcli-http&tags=test%2Ccsv") == envelope(
            "ResponseTypeList", '{"JobIDs":[1,2]}'
        )

        # job 3: started and stopped about 0.3 s later (67 bytes)
        assert ask("start", START_BODY) == envelope("ResponseTypeStart", '{"JobID":3}')
        time.sleep(0.3)
        assert ask("stop", b"jobID=3&requestor=contestcli-http") == envelope(
            "ResponseTypeStop", "{}"
        )
        server.wait_state(3, "JobStateCancelled")
        stopped = json.loads(ask("status", b"jobID=3&requestor=contestcli-http"))
        assert stopped["Data"]["Status"]["State"] == "JobStateCancelled"
        assert stopped["Data"]["Status"]["EndTime"] is not None

        # job 2 runs 3 times, 3 s apart
        server.wait_state(2, "JobStateCompleted", timeout=60)
        two_states = b"requestor=contestcli-http&states=JobStateCompleted%2CJobStateCancelled"
        assert ask("list", two_states) == envelope("ResponseTypeList", '{"JobIDs":[1,2,3]}')

        # the 8,874-byte status after completion: every byte but the times
        done = ask("status", b"jobID=2&requestor=contestcli-http")
        expected = (DATA / "status_completed.txt").read_bytes()
        assert TIME.sub(rb'"\1":"T"', done) == TIME.sub(rb'"\1":"T"', expected)
        assert len(TIME.findall(done)) == len(TIME.findall(expected))

        # retry works here (ConTest answers "Not implemented"): same shape, a new job
        assert ask("retry", b"jobID=2&requestor=contestcli-http") == envelope(
            "ResponseTypeRetry", '{"JobID":2,"NewJobID":4}'
        )
        assert ask("stop", b"jobID=4&requestor=contestcli-http") == envelope(
            "ResponseTypeStop", "{}"
        )

        # unknown and finished jobs (158, 104, 102 bytes)
        assert ask("status", b"jobID=999&requestor=contestcli-http") == envelope(
            "ResponseTypeStatus",
            '{"Status":null}',
            '"failed to fetch request for job ID 999: could not find job request with id 999"',
        )
        assert ask("stop", b"jobID=999&requestor=contestcli-http") == envelope(
            "ResponseTypeStop", "{}", '"could not stop job: unknown job ID: 999"'
        )
        assert ask("stop", b"jobID=2&requestor=contestcli-http") == envelope(
            "ResponseTypeStop", "{}", '"could not stop job: unknown job ID: 2"'
        )
    finally:
        conn.close()
    assert server.stop() == 0
