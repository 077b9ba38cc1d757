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
    proc = _python(program)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"


def test_a_steps_quick_lines_are_the_standard_ones() -> None:
    # QuickAdapter (ctx.log) makes the line without a record when only the command's handler
    # would see it: the same text as the standard path, level, job and step, the secrets'
    # redaction included; anything else (another handler, a message that does not format,
    # an exception to show) goes the standard way
    program = (
        "import io, logging, sys, time\nfrom contest import logs, redaction\n"
        "out = io.StringIO()\nlogs.setup('debug', stream=out)\n"
        "time.time = lambda: 1_700_000_000.987654  # both paths' clock\n"
        "made = [0]\nmake = logging.Logger.makeRecord\n"
        "def counted(*a, **k):\n    made[0] += 1\n    return make(*a, **k)\n"
        "logging.Logger.makeRecord = counted\n"
        "std = logging.LoggerAdapter(logging.getLogger('contest.step'), {'job_id': 1})\n"
        "quick = logs.QuickAdapter(logging.getLogger('contest.step'), {'job_id': 1})\n"
        "cases = [(logging.INFO, 'plain', ()), (logging.WARNING, 'target %s: %d%%', ('t1', 5)),\n"
        "         (logging.DEBUG, 'ünïcode %r', ('x',)), (25, 'level %s', ('25',)),\n"
        "         (logging.ERROR, {'not': 'a str'}, ())]\n"
        "def both():\n"
        "    for level, msg, args in cases:\n"
        "        std.log(level, msg, *args)\n"
        "        quick.log(level, msg, *args)\n"
        "both()\nlogs.bind_job(7)\nboth()\nlogs.bind_step('flash')\nboth()\n"
        "redaction.remember_secrets(['hunter2'])\nredaction.install_log_filter()\n"
        "cases.append((logging.INFO, 'password %s', ('hunter2',)))\nboth()\n"
        "assert made[0] == 3 * 5 + 6, made  # the standard path's records only\n"
        "quick.info('%d', 'not a number')  # the standard way: logging reports it\n"
        "quick.error('failed', exc_info=ValueError('boom'))  # the standard way\n"
        "seen = []\nclass Keep(logging.Handler):\n"
        "    def emit(self, record): seen.append(record.getMessage())\n"
        "logging.getLogger().addHandler(Keep())\nquick.info('to both')\n"
        "assert made[0] == 3 * 5 + 6 + 3 and seen == ['to both'], (made, seen)\n"
        "logs.flush(5)\nsys.stdout.write(out.getvalue())\n"
    )
    proc = _python(program)
    assert proc.returncode == 0, proc.stderr
    assert "--- Logging error ---" in proc.stderr  # the message that did not format
    lines = proc.stdout.splitlines()
    pairs = lines[: 2 * 21]
    assert pairs[0::2] == pairs[1::2]
    assert pairs[0].endswith(",987 INFO contest.step: plain")  # the date: the local time zone's
    assert pairs[12].endswith(" WARNING contest.step: [job 7] target t1: 5%")
    assert pairs[26].endswith(" Level 25 contest.step: [job 7 step flash] level 25")
    assert pairs[-1].endswith(" INFO contest.step: [job 7 step flash] password <redacted>")
    assert lines[42].endswith(" ERROR contest.step: [job 7 step flash] failed")
    assert lines[43] == "ValueError: boom"
    assert lines[44].endswith(" INFO contest.step: [job 7 step flash] to both")


def test_a_stuck_stream_holds_the_logger_at_the_bound() -> None:
    # the writer is stuck in a write: the lines wait, up to QUEUE_SIZE of them, then the
    # logger waits for room (memory stays bounded); once the stream moves, every line is
    # written, in order
    program = (
        "import io, logging, sys, threading, time\nfrom contest import logs\n"
        "go = threading.Event()\nout = []\n"
        "class Stuck(io.TextIOBase):\n"
        "    def write(self, s):\n        go.wait()\n        out.append(s)\n        return len(s)\n"
        "logs.setup('info', stream=Stuck())\nlog = logging.getLogger('t')\n"
        "n = logs.QUEUE_SIZE + 3_000\ncount = [0]\n"
        "def logger():\n"
        "    for i in range(n):\n        log.info('line %d', i)\n        count[0] += 1\n"
        "t = threading.Thread(target=logger)\nt.start()\ntime.sleep(1.0)\n"
        "held = count[0]\n"
        "assert logs.QUEUE_SIZE <= held <= logs.QUEUE_SIZE + 1_001, held\n"
        "go.set()\nt.join(30)\nlogs.flush(10)\n"
        "lines = ''.join(out).splitlines()\n"
        "assert len(lines) == n and all(l.endswith(f'line {i}') for i, l in enumerate(lines))\n"
        "print('ok', held)\n"
    )
    proc = _python(program)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ")


def _python(program: str) -> subprocess.CompletedProcess[str]:
    """``program`` run by this Python in a process of its own (logs.setup sets up the root
    logger and a thread: not something to do in the test process)."""
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
