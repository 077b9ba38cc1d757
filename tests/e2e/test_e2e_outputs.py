"""What a CI pipeline reads, on real processes: the failure summary of ``contest run`` and
``contestcli``, JUnit XML checked against the JUnit schema, the events CLIs (filters,
``--follow`` on a running job), ``/metrics`` scraped while a job runs, and descriptor files
(non-UTF-8, YAML without ``-Y``)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import xmlschema
from e2ekit import (
    CONTEST,
    ServerProcess,
    contestcli,
    json_docs,
    literal_job,
    sleep_job,
    write_descriptor,
)
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
FAILING = ROOT / "examples" / "failing.yaml"
SCHEMA = xmlschema.XMLSchema(ROOT / "tests" / "data" / "junit-10.xsd")


def contest(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONTEST, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def _timeless(text: str) -> str:
    return re.sub(r"after \d+\.\ds", "after N.Ns", text)


def check_junit(xml: str | bytes) -> ET.Element:
    """Parsed, and valid against the JUnit schema of Jenkins' xunit plugin."""
    data = xml.encode() if isinstance(xml, str) else xml
    SCHEMA.validate(data.decode())
    return ET.fromstring(data)


def start(server: ServerProcess, desc: dict[str, Any], tmp_path: Path, name: str) -> int:
    path = write_descriptor(tmp_path, name, desc)
    proc = contestcli("start", str(path), addr=server.url)
    assert proc.returncode == 0, proc.stderr
    job_id: int = json.loads(proc.stdout)["Data"]["JobID"]
    return job_id


# --- the failure summary and JUnit ----------------------------------------------------------------


def test_contest_run_names_the_failed_target_its_step_and_why(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    proc = contest(
        "run", str(FAILING), "--db", f"sqlite:///{tmp_path / 'run.db'}", "--junit", str(junit),
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout[proc.stdout.index('Job 1 "failing"') :]
    assert out.splitlines()[0].startswith('Job 1 "failing" did not succeed: completed after ')
    assert (
        "  reason: report TargetSuccess (run 1) failed: Test failing does not pass success "
        "criteria: 66.67% is not = 100.00%"
    ) in out
    assert 'Run 1, test "failing": 3 targets: 2 passed, 1 failed, 0 not run' in out
    assert '  FAILED bad in step "check": exit status 1\n' in out
    assert "    | checking bad\n    | bad: self-test failed\n" in out  # the step's output
    assert "ok1" not in out  # passed targets are counted, not listed
    assert proc.stderr == ""  # no warnings, no log lines at the default level
    # what README.md and docs/running.md show is what it prints (the time aside)
    for doc in (ROOT / "README.md", ROOT / "docs" / "running.md"):
        text = doc.read_text()
        start = text.index('Job 1 "failing" did not succeed')
        shown = text[start : text.index("```", start)]
        assert _timeless(shown) == _timeless(out), doc

    root = check_junit(junit.read_bytes())
    suite = root.find("testsuite[@name='failing run 1']")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "0")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"ok1", "bad", "ok2"}
    assert {c.get("classname") for c in cases.values()} == {"failing"}
    failure = cases["bad"].find("failure")
    assert failure is not None
    assert (failure.get("type"), failure.get("message")) == ("check", "exit status 1")
    assert failure.text is not None and "bad: self-test failed" in failure.text
    assert cases["ok1"].find("failure") is None and float(cases["ok1"].get("time", "0")) > 0
    reports = root.find("testsuite[@name='reports']")
    assert reports is not None and reports.get("failures") == "1"

    # --json: the same facts for scripts
    proc = contest("run", str(FAILING), "--db", f"sqlite:///{tmp_path / 'run.db'}", "--json",
                   cwd=tmp_path)  # fmt: skip
    doc = json.loads(proc.stdout[proc.stdout.index("{\n") :])
    assert doc["Succeeded"] is False and doc["State"] == "JobStateCompleted"
    [failed] = doc["Tests"][0]["Targets"]
    assert (failed["Target"], failed["Step"], failed["Error"]) == ("bad", "check", "exit status 1")
    assert doc["Reports"][0]["Reporter"] == "TargetSuccess"


def test_contestcli_summaries_and_junit(shared_server: ServerProcess, tmp_path: Path) -> None:
    server = shared_server
    # a YAML file without -Y: its name says it is YAML
    proc = contestcli("start", "-w", "--poll-interval", "0.1", str(FAILING), addr=server.url)
    assert proc.returncode == 1, proc.stderr
    start_doc, final = json_docs(proc.stdout)  # stdout keeps ConTest's two documents
    job_id = start_doc["Data"]["JobID"]
    assert final["Data"]["Status"]["State"] == "JobStateCompleted"
    assert f'Job {job_id} "failing" did not succeed' in proc.stderr  # the summary: stderr
    assert 'FAILED bad in step "check": exit status 1' in proc.stderr

    human = contestcli("status", str(job_id), "--human", addr=server.url)
    assert human.returncode == 0
    assert 'FAILED bad in step "check": exit status 1' in human.stdout
    assert "| bad: self-test failed" in human.stdout
    plain = contestcli("status", str(job_id), addr=server.url)
    assert json.loads(plain.stdout)["Data"]["Status"]["State"] == "JobStateCompleted"

    report = contestcli("report", str(job_id), "--junit", addr=server.url)
    assert report.returncode == 1  # as --wait: the job did not succeed
    root = check_junit(report.stdout)
    assert [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None] == [
        "bad",
        "TargetSuccess (run 1)",
    ]
    text = contestcli("report", str(job_id), addr=server.url)
    assert "reason: report TargetSuccess (run 1) failed" in text.stdout

    good = start(server, literal_job(name="fine"), tmp_path, "fine.json")
    server.wait_state(good, "JobStateCompleted")
    report = contestcli("report", str(good), "--junit", addr=server.url)
    assert report.returncode == 0
    root = check_junit(report.stdout)
    assert root.get("failures") == "0" and root.get("errors") == "0"


# --- events ---------------------------------------------------------------------------------------


def _stepped_job(seconds: str) -> dict[str, Any]:
    return literal_job(
        name="stepped",
        targets=[{"ID": "T1"}, {"ID": "T2"}],
        steps=[
            {"name": "cmd", "label": "hello", "parameters": {
                "executable": ["echo"], "args": ["hi {{ .ID }}"], "emit_stdout": [True]}},
            {"name": "sleep", "label": "nap", "parameters": {"duration": [seconds]}},
        ],
        success="=100%",
    )  # fmt: skip


def test_events_with_filters_and_follow_on_a_running_job(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    server = shared_server
    job_id = start(server, _stepped_job("3s"), tmp_path, "stepped.json")
    server.wait_state(job_id, "JobStateStarted")
    errors = (tmp_path / "follower.err").open("w")
    follower = subprocess.Popen(
        [*contestcli_argv(server), "events", str(job_id), "--follow", "--poll-interval", "0.1"],
        stdout=subprocess.PIPE, stderr=errors, text=True,
    )  # fmt: skip
    db_follower = subprocess.Popen(
        [*CONTEST, "events", str(job_id), "--db", server.db_url, "--follow", "--json",
         "--poll-interval", "100ms", "--step", "nap"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=server.folder,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        first = follower.stdout.readline()  # printed while the job runs
        assert "job  JobStateStarted" in first, first
        assert server.state(job_id) == "JobStateStarted"
        # the rest through the same buffered reader (communicate() reads the pipe beneath it,
        # and would miss what readline() buffered): it ends by itself with the job
        out = follower.stdout.read()
        follower.wait(30)
        db_out, db_err = db_follower.communicate(timeout=30)
    finally:
        follower.kill()
        db_follower.kill()
        errors.close()
    assert follower.returncode == 0, (tmp_path / "follower.err").read_text()
    lines = (first + out).splitlines()
    assert lines[-1].endswith("job  JobStateCompleted")
    assert any("/hello  T1  CmdStdout" in line and '"hi T1\\n"' in line for line in lines)
    assert sum("Literal test/nap  T2  TargetOut" in line for line in lines) == 1
    assert db_follower.returncode == 0, db_err
    nap = [json.loads(line) for line in db_out.splitlines()]
    assert {(e["target"]["ID"], e["name"]) for e in nap} == {
        (t, n) for t in ("T1", "T2") for n in ("TargetIn", "TargetOut")
    }
    assert all(e["step_label"] == "nap" and e["kind"] == "test" for e in nap)

    # filters, after the fact, from both commands
    proc = contestcli("events", str(job_id), "--target", "T2", "--name", "TargetIn",
                      "--name", "TargetOut", addr=server.url)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [line.split("  ")[2:] for line in proc.stdout.splitlines()] == [
        ["Literal test/hello", "T2", "TargetIn"],
        ["Literal test/hello", "T2", "TargetOut"],
        ["Literal test/nap", "T2", "TargetIn"],
        ["Literal test/nap", "T2", "TargetOut"],
    ]
    proc = contest("events", str(job_id), "--db", server.db_url, "--name", "RunStarted",
                   cwd=server.folder)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("  ")[1:] == ["job", "RunStarted", '{"RunID": 1}\n']
    missing = contestcli("events", "999999", addr=server.url)
    assert missing.returncode == 1 and "job 999999 not found" in missing.stderr
    proc = contest("events", "1", "--db", f"sqlite:///{tmp_path / 'none.db'}", cwd=tmp_path)
    assert proc.returncode == 2 and "contest events: no database at " in proc.stderr
    assert not (tmp_path / "none.db").exists()  # not created by looking


def contestcli_argv(server: ServerProcess) -> list[str]:
    from e2ekit import CONTESTCLI

    return [*CONTESTCLI, "-a", server.url]


# --- metrics --------------------------------------------------------------------------------------


def _scrape(server: ServerProcess) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {sorted labels -> value}, through prometheus-client's own parser."""
    resp = httpx.get(f"{server.url}/metrics", timeout=30)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_metrics_scraped_while_a_job_runs(shared_server: ServerProcess, tmp_path: Path) -> None:
    server = shared_server
    job_id = start(server, sleep_job("3s", 4, name="metered"), tmp_path, "metered.json")
    deadline = time.monotonic() + 20
    samples = _scrape(server)
    while time.monotonic() < deadline:
        samples = _scrape(server)
        flying = samples.get("contest_targets_in_flight", {})
        if flying.get((("step", "nap"), ("test", "Literal test"))) == 4:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"4 targets never in flight in nap: {samples}")
    assert samples["contest_jobs"][(("state", "JobStateStarted"),)] >= 1
    assert samples["contest_events_written_total"][()] > 0
    assert samples["contest_event_write_seconds_count"][()] > 0
    assert samples["contest_targets_waiting"][()] == 0  # no job shares targets here
    requests = samples["contest_http_request_seconds_count"]
    assert requests[(("method", "GET"), ("route", "/metrics"))] >= 1
    assert requests[(("method", "POST"), ("route", "/start"))] >= 1
    assert "process_resident_memory_bytes" in samples  # prometheus-client's own

    server.wait_state(job_id, "JobStateCompleted")
    samples = _scrape(server)
    assert (("step", "nap"), ("test", "Literal test")) not in samples.get(
        "contest_targets_in_flight", {}
    )
    passed = samples["contest_step_target_seconds_count"][(("result", "passed"), ("step", "nap"))]
    assert passed >= 4
    took = samples["contest_step_target_seconds_sum"][(("result", "passed"), ("step", "nap"))]
    assert took >= 4 * 2.9  # 3 s each (the histogram measures what happened)
    assert samples["contest_jobs"][(("state", "JobStateCompleted"),)] >= 1


# --- descriptor files -----------------------------------------------------------------------------


def test_a_non_utf8_descriptor_is_one_line(shared_server: ServerProcess, tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("JobName: caf\u00e9\n".encode("latin-1"))
    want = f"{bad}: not UTF-8 text (byte 0xe9 at offset 12, line 1): save the descriptor as UTF-8"
    proc = contest("run", str(bad), "--db", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (2, f"contest run: {want}\n")
    proc = contest("validate", str(bad), cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (1, f"{bad}: {want}\n")
    proc = contestcli("start", str(bad), addr=shared_server.url)
    assert (proc.returncode, proc.stderr) == (2, f"contestcli: {want}\n")


def test_start_reads_yaml_by_its_content(shared_server: ServerProcess, tmp_path: Path) -> None:
    path = tmp_path / "job"  # no extension: the content says YAML
    path.write_text(FAILING.read_text())
    proc = contestcli("start", str(path), addr=shared_server.url)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["Data"]["JobID"] > 0
    broken = write_descriptor(tmp_path, "broken.json", '{"JobName": ')
    proc = contestcli("start", str(broken), addr=shared_server.url)
    assert proc.returncode == 2 and "failed to parse JSON job descriptor" in proc.stderr
