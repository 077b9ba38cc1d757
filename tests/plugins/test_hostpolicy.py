"""The host policy: which secret files, fetched files and URLs a job may reach, and how files it
names are read (capped, regular files only, never blocking)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from contest import hostpolicy
from contest.hostpolicy import HostAccessError, HostPolicy, read_capped


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pw").write_text("pw\n")
    (tmp_path / "secrets" / "link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_text("x")
    (tmp_path / "root").mkdir()
    return tmp_path


def test_secret_paths_stay_under_the_secrets_dir(tree: Path) -> None:
    policy = HostPolicy.server(secrets_dir=tree / "secrets")
    assert policy.secret_path("p", "pw") == tree / "secrets" / "pw"
    assert policy.secret_path("p", str(tree / "secrets" / "pw")) == tree / "secrets" / "pw"
    for outside in ("../elsewhere", "link", "/etc/passwd", str(tree / "secrets/../elsewhere")):
        with pytest.raises(HostAccessError, match="is not under the server's --secrets-dir"):
            policy.secret_path("p", outside)
    with pytest.raises(HostAccessError, match="reads no secret files"):
        HostPolicy.server().secret_path("p", "pw")
    assert HostPolicy.unrestricted().secret_path("p", "/etc/passwd") == Path("/etc/passwd")


def test_secret_variables_are_named_contest_secret() -> None:
    policy = HostPolicy.server()
    policy.check_secret_env("p", "CONTEST_SECRET_X")
    for name in ("HOME", "CONTEST_SECRETX", "contest_secret_x"):
        with pytest.raises(HostAccessError, match=r"CONTEST_SECRET_\*"):
            policy.check_secret_env("p", name)
    HostPolicy.unrestricted().check_secret_env("p", "HOME")


def test_fetch_paths_are_relative_to_the_root_and_stay_under_it(tree: Path) -> None:
    policy = HostPolicy.server(fetch_root=tree / "root")
    assert policy.fetch_path("URI", "a/b.json") == tree / "root" / "a" / "b.json"
    with pytest.raises(HostAccessError, match="--fetch-root"):
        policy.fetch_path("URI", "../secrets/pw")
    default = HostPolicy.server()  # the working folder, as ConTest resolves relative paths
    assert default.fetch_root == Path(os.path.realpath(os.getcwd()))


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://tests.example.org/suite/a.json", True),
        ("https://tests.example.org/suite", True),
        ("https://TESTS.example.org:443/suite/x/y.json", True),
        ("https://tests.example.org/suite-other/a.json", False),
        ("https://tests.example.org/suite/../secret.json", False),
        ("https://tests.example.org/suite/%2e%2e/secret.json", False),
        ("https://tests.example.org.evil.test/suite/a.json", False),
        ("https://tests.example.org@evil.test/suite/a.json", False),
        ("http://tests.example.org/suite/a.json", False),
        ("https://tests.example.org:8443/suite/a.json", False),
    ],
)
def test_url_prefixes_match_origin_and_path(url: str, allowed: bool) -> None:
    policy = HostPolicy.server(fetch_urls=["https://tests.example.org/suite"])
    if allowed:
        policy.check_fetch_url("URI", url)
    else:
        with pytest.raises(HostAccessError, match="--allow-fetch-url"):
            policy.check_fetch_url("URI", url)


@pytest.mark.parametrize("prefix", ["ftp://x/", "https://", "https://u:p@h/", "https://h/?q=1"])
def test_unusable_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="--allow-fetch-url"):
        HostPolicy.server(fetch_urls=[prefix])


def test_reads_refuse_devices_fifos_and_big_files_without_blocking(tree: Path) -> None:
    fifo = tree / "fifo"
    os.mkfifo(fifo)
    big = tree / "big"
    big.write_bytes(b"x" * 101)
    for path, message in (
        ("/dev/zero", "not a regular file"),
        (fifo, "not a regular file"),
        (big, "larger than 100 bytes"),
        (tree / "missing", "No such file"),
    ):
        with pytest.raises(OSError, match=message):
            read_capped(path, 100)
    assert read_capped(big, 101) == b"x" * 101


async def test_the_policy_follows_the_job_into_its_tasks_and_threads(tree: Path) -> None:
    policy = HostPolicy.server(secrets_dir=tree / "secrets")
    seen: list[HostPolicy] = []

    async def job() -> None:
        seen.append(hostpolicy.current())
        seen.append(await asyncio.to_thread(hostpolicy.current))
        assert await hostpolicy.read_secret_file("p", "pw") == b"pw\n"

    task = asyncio.get_running_loop().create_task(job(), context=hostpolicy.job_context(policy))
    await task
    assert seen == [policy, policy]
    assert hostpolicy.current() == HostPolicy.unrestricted()
