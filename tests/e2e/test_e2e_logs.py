"""Logs of the commands: other packages' warnings out of sight unless ``--log-level debug``, no
schema-migration chatter at ``info``, every line of a job naming the job and the step,
``--log-format json``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from e2ekit import CONTEST

ROOT = Path(__file__).resolve().parents[2]
FAILING = ROOT / "examples" / "failing.yaml"


def test_commands_print_no_third_party_warnings(tmp_path: Path) -> None:
    # asyncssh, loaded with the plugins, makes cryptography warn about DSA ten times
    proc = subprocess.run([*CONTEST, "plugins"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert "SSHCmd" in proc.stdout


def test_warnings_show_as_log_lines_at_debug_only(tmp_path: Path) -> None:
    (tmp_path / "noisy_dependency.py").write_text(
        "import warnings\nwarnings.warn('this API is deprecated', DeprecationWarning)\n"
        "warnings.warn('DSA is deprecated', UserWarning)\n"
    )
    program = (
        "import sys\nfrom contest import logs\nlogs.setup(sys.argv[1])\n"
        "import noisy_dependency\nimport warnings\n"
        "warnings.warn('ours', UserWarning)\n"  # a warning of contest's own code
    )

    def run(level: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", program, level],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    quiet = run("info")
    assert "deprecated" not in quiet
    loud = run("debug")
    lines = [line for line in loud.splitlines() if "py.warnings" in line]
    assert any("DSA is deprecated" in line for line in lines), loud
    assert all(" WARNING py.warnings: " in line for line in lines)


def test_job_log_lines_name_the_job_and_step(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'logs.db'}"
    proc = subprocess.run(
        [*CONTEST, "run", str(FAILING), "--db", db, "--log-level", "info"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert not [line for line in lines if "alembic" in line]  # no migration chatter at info
    steps = [line for line in lines if " contest.step: " in line]
    assert len(steps) == 3, proc.stderr
    assert all(" contest.step: [job 1 step check] target " in line for line in steps)
    acquired = [line for line in lines if "Acquired 3 targets" in line]
    assert acquired and "[job 1] Acquired" in acquired[0]

    proc = subprocess.run(
        [*CONTEST, "run", str(FAILING), "--db", db, "--log-level", "info", "--log-format", "json"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert records and {"time", "level", "logger", "message"} <= set(records[0])
    steps = [r for r in records if r["logger"] == "contest.step"]
    assert len(steps) == 3 and all((r["job_id"], r["step"]) == (2, "check") for r in steps)
    assert all(r["level"] == "info" for r in steps)


def test_lines_are_written_by_a_thread_in_order_and_all_before_exit(tmp_path: Path) -> None:
    # more lines than the hand-off queue holds: the logger waits for room, none is dropped; the
    # job and step are the logging task's, not the writer thread's; atexit writes the rest,
    # and logs.exit_now (what a forced exit calls) writes them before os._exit
    program = (
        "import asyncio, logging, sys\nfrom contest import logs\n"
        "logs.setup('info', stream=sys.stdout)\nlog = logging.getLogger('t')\n"
        "async def main():\n"
        "    logs.bind_job(7); logs.bind_step('s1')\n"
        "    assert logs.QUEUE_SIZE < 20_000\n"
        "    for i in range(20_000): log.info('line %d', i)\n"
        "asyncio.run(main())\n"
        "log.warning('last')\n"
        "if sys.argv[1] == 'exit_now': logs.exit_now(3)\n"
    )
    for how, code in (("return", 0), ("exit_now", 3)):
        proc = subprocess.run(
            [sys.executable, "-c", program, how], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == code, proc.stderr
        lines = proc.stdout.splitlines()
        assert len(lines) == 20_001, len(lines)
        for i, line in enumerate(lines[:-1]):
            assert line.endswith(f" INFO t: [job 7 step s1] line {i}"), line
        assert lines[-1].endswith(" WARNING t: last")


def test_the_text_lines_time_is_loggings_own() -> None:
    # the date is written once a second (TextFormatter.formatTime); the text is the same as
    # logging.Formatter's, at any time, DST changes included
    import logging
    import random

    from contest.logs import TextFormatter

    ours, theirs = TextFormatter(), logging.Formatter()
    rng = random.Random(17)
    created = [rng.uniform(0, 4e9) for _ in range(20_000)]
    created += [1_000_000_000 + i / 7 for i in range(5_000)]  # many lines a second
    for when in created:
        record = logging.LogRecord("t", logging.INFO, "", 0, "m", None, None)
        record.created = when
        record.msecs = (when - int(when)) * 1000
        assert ours.formatTime(record) == theirs.formatTime(record), when


def test_a_broken_stream_loses_lines_not_the_logger(tmp_path: Path) -> None:
    program = (
        "import io, logging, sys\nfrom contest import logs\n"
        "class Broken(io.TextIOBase):\n"
        "    def write(self, s): raise BrokenPipeError(32, 'Broken pipe')\n"
        "logs.setup('info', stream=Broken())\nlog = logging.getLogger('t')\n"
        "for i in range(50_000): log.info('line %d', i)\n"
        "logs.flush(10)\nprint('done')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"
