"""``contest serve``'s options from the environment (``CONTEST_<OPTION>``) and a TOML file
(``--config``): precedence flags > environment > file > defaults, shown by ``--print-config``;
every option of the parser has both, including ones added later; bad values are refused with
where they came from. And shell completion for both commands."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from e2ekit import CONTEST, CONTESTCLI, wait_for_text

from contest import config
from contest.cli import _parser, _subparser


def run(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONTEST_")}
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env={**clean, **(env or {})}, cwd=cwd
    )


def printed(text: str) -> dict[str, tuple[str, str]]:
    """--print-config's lines: key -> (value, source)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+) = (.*?)  # (.*)$", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def test_precedence_flags_env_file_defaults(tmp_path: Path) -> None:
    conf = tmp_path / "contest.toml"
    conf.write_text(
        'listen = "127.0.0.1:7001"\n'
        'db = "postgresql://contest:s3cret@db.example.org/contest"\n'
        'pause-timeout = "2m"\n'
        "resume_jobs = false\n"
        'server_id = "from-file"\n'
    )
    proc = run(
        *CONTEST, "serve", "--config", str(conf), "--print-config", "--server-id", "from-flag",
        env={"CONTEST_LISTEN": "127.0.0.1:7002", "CONTEST_SERVER_ID": "from-env",
             "CONTEST_ALLOW_LOCAL_EXEC": "yes"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = printed(proc.stdout)
    assert got["server_id"] == ('"from-flag"', "flag --server-id [CONTEST_SERVER_ID]")
    assert got["listen"] == ('"127.0.0.1:7002"', "env CONTEST_LISTEN")  # env > file
    assert got["pause_timeout"] == ('"2m0s"', f"file {conf} [CONTEST_PAUSE_TIMEOUT]")
    assert got["resume_jobs"] == ("false", f"file {conf} [CONTEST_RESUME_JOBS]")
    assert got["allow_local_exec"] == ("true", "env CONTEST_ALLOW_LOCAL_EXEC")
    assert got["db"][0] == '"postgresql://contest:***@db.example.org/contest"'  # no password
    assert got["shutdown_timeout"] == ('"30s"', "default [CONTEST_SHUTDOWN_TIMEOUT]")
    assert got["log_level"] == ('"info"', "default [CONTEST_LOG_LEVEL]")

    # what it prints reads back as a --config file (the password aside) with the same values
    again = tmp_path / "printed.toml"
    again.write_text(proc.stdout.replace("***", "s3cret"))
    proc2 = run(*CONTEST, "serve", "--config", str(again), "--print-config")
    assert proc2.returncode == 0, proc2.stderr
    assert {k: v[0] for k, v in printed(proc2.stdout).items()} == {k: v[0] for k, v in got.items()}


def test_every_option_is_configurable_even_one_added_later(tmp_path: Path) -> None:
    parser = _parser()
    serve = _subparser(parser, "serve")
    # an option another change adds, with nothing else done for it
    serve.add_argument("--mirror-url", action="append", default=[], metavar="PREFIX")
    conf = tmp_path / "c.toml"
    conf.write_text(
        'mirror_url = ["https://a.example/", "https://b.example/"]\n'
        'allow_fetch_url = ["https://d.example/"]\n'
    )
    env = {"CONTEST_PROCESS_TIMEOUT": "5s", "CONTEST_MIRROR_URL": "https://c.example/"}
    layers = config.apply(serve, ["--config", str(conf)], env)
    args = parser.parse_args(["serve", "--config", str(conf)])
    assert args.mirror_url == ["https://c.example/"]  # env over file
    assert args.process_timeout == 5.0
    assert layers.sources["mirror_url"] == "env CONTEST_MIRROR_URL"
    assert args.allow_fetch_url == ["https://d.example/"]  # the security options are ordinary

    names = {config.env_name(a) for a in config.options(serve)}
    dests = {a.dest for a in serve._actions} - {"help", "config", "print_config"}
    assert len(names) == len(dests)  # one variable per option, none forgotten
    assert {"CONTEST_DB", "CONTEST_LISTEN", "CONTEST_PAUSE_TIMEOUT"} <= names


@pytest.mark.parametrize(
    ("conf", "env", "message"),
    [
        ('pause_timout = "1m"\n', {}, "'pause_timout' (did you mean 'pause_timeout'?)"),
        ('pause_timeout = 60\n', {}, 'pause_timeout: time: missing unit in duration "60"'),
        ('log_level = "loud"\n', {}, "'loud' is not one of debug, info, warning, error"),
        ("resume_jobs = 1\n", {}, "resume_jobs: expected true or false, got 1"),
        ("listen = \n", {}, "not valid TOML"),
        ("", {"CONTEST_TARGET_LOCK_DURATION": "soon"}, "_LOCK_DURATION: time: invalid"),
        ("", {"CONTEST_RESUME_JOBS": "maybe"}, "CONTEST_RESUME_JOBS: expected true or false"),
    ],
)  # fmt: skip
def test_bad_values_say_where_they_come_from(
    tmp_path: Path, conf: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(conf)
    with pytest.raises(config.ConfigError) as info:
        config.apply(_subparser(_parser(), "serve"), ["--config", str(path)], env)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_contest_serve_refuses_a_bad_value_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('pause_timout = "1m"\n')
    proc = run(*CONTEST, "serve", "--config", str(path))
    assert (proc.returncode, proc.stderr) == (
        2,
        f"contest serve: --config {path}: unknown option 'pause_timout' "
        "(did you mean 'pause_timeout'?)\n",
    )


def test_a_server_configured_by_file_and_environment(tmp_path: Path) -> None:
    conf = tmp_path / "contest.toml"
    conf.write_text(f'server_id = "from-file"\ndb = "sqlite:///{tmp_path / "c.db"}"\n')
    log = (tmp_path / "serve.log").open("wb")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONTEST_")}
    env = {**clean, "CONTEST_CONFIG": str(conf), "CONTEST_LISTEN": "127.0.0.1:0",
           "CONTEST_LOG_FORMAT": "json"}  # fmt: skip
    proc = subprocess.Popen([*CONTEST, "serve"], env=env, stdout=log, stderr=log, cwd=tmp_path)
    try:
        text = wait_for_text(tmp_path / "serve.log", "listening on")
        assert "listening on http://127.0.0.1:" in text, text
        assert "(server ID 'from-file', instance 'from-file', database sqlite" in text
        assert (tmp_path / "c.db").exists()
        proc.terminate()
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        log.close()
    import json

    # --log-format json from the environment: every log line is one JSON object
    lines = [line for line in (tmp_path / "serve.log").read_text().splitlines()[1:] if line]
    assert lines and all(json.loads(line)["logger"] for line in lines)


# --- shell completion -------------------------------------------------------------------------


def _complete(script: str, function: str, words: list[str]) -> list[str]:
    bash = shutil.which("bash")
    assert bash, "bash is needed to check the completion scripts"
    program = (
        f"{script}\n"
        f"COMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}; "
        f'COMP_LINE="{" ".join(words)}"; COMP_POINT=${{#COMP_LINE}}\n'
        f'{function}; printf "%s\\n" "${{COMPREPLY[@]}}"\n'
    )
    proc = subprocess.run([bash, "-c", program], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_shell_completion_for_both_commands() -> None:
    script = run(*CONTEST, "--print-completion", "bash")
    assert script.returncode == 0, script.stderr
    assert _complete(script.stdout, "_shtab_contest", ["contest", "se"]) == ["serve"]
    assert "--pause-timeout" in _complete(
        script.stdout, "_shtab_contest", ["contest", "serve", "--pa"]
    )
    cli = run(*CONTESTCLI, "--print-completion", "bash")
    assert cli.returncode == 0, cli.stderr
    assert _complete(cli.stdout, "_shtab_contestcli", ["contestcli", "ev"]) == ["events"]
    assert "--follow" in _complete(cli.stdout, "_shtab_contestcli", ["contestcli", "--fo"])
    zsh = run(*CONTEST, "--print-completion", "zsh")
    assert zsh.returncode == 0 and "#compdef contest" in zsh.stdout


def test_argparse_view_of_the_serve_options() -> None:
    """--help documents the environment and the file (what users read first)."""
    serve = _subparser(_parser(), "serve")
    text = serve.format_help()
    assert "CONTEST_CONFIG" in text and "--print-config" in text
    assert isinstance(serve, argparse.ArgumentParser)
