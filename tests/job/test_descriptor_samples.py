"""Every descriptor ConTest ships decodes here; the valid ones validate and round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from contest.golang.json import JsonObject
from contest.job.descriptor import (
    ExtendedDescriptor,
    FetchedTest,
    JobDescriptor,
    decode_descriptor,
    decode_extended_descriptor,
    decode_fetch_parameters,
    decode_steps_document,
    parse_document,
    validate_descriptor,
    validate_extended_descriptor,
)
from contest.testing.paths import samples_dir

SAMPLES = samples_dir()
FILES = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".json", ".yaml"))
assert FILES, f"no ConTest samples under {SAMPLES}"


def is_job(path: Path) -> bool:
    tree = parse_document(path.read_bytes())
    return isinstance(tree, JsonObject) and tree.get_folded("TestDescriptors") is not None


JOBS = [p for p in FILES if is_job(p)]
STEP_FILES = [p for p in FILES if p not in JOBS]
# Rejected by ConTest too: its only step has no label.
INVALID = {"lspci.json": "step has no label, but it is mandatory"}


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(SAMPLES)) for p in paths]


def test_the_samples_are_all_there() -> None:
    assert len(JOBS) == 15
    assert len(STEP_FILES) == 12


@pytest.mark.parametrize("path", JOBS, ids=ids(JOBS))
def test_job_descriptor_decodes_and_validates(path: Path) -> None:
    d = decode_descriptor(path.read_bytes())
    assert d.job_name and d.test_descriptors
    messages = [e.message for e in validate_descriptor(d)]
    if path.name in INVALID:
        assert len(messages) == 1 and messages[0].startswith(INVALID[path.name])
    else:
        assert messages == []


@pytest.mark.parametrize("path", JOBS, ids=ids(JOBS))
def test_job_descriptor_round_trips(path: Path) -> None:
    d = decode_descriptor(path.read_bytes())
    again = decode_descriptor(d.to_json())
    assert again == d
    assert again.to_json() == d.to_json()
    assert decode_descriptor(d.to_json(indent=None)) == d


def fetch(d: JobDescriptor, server_dir: Path) -> list[FetchedTest]:
    """Play the literal and URI fetchers, as the job builder will."""
    tests = []
    for td in d.test_descriptors:
        if td.test_fetcher_name.lower() == "uri":
            uri = parse_document(td.test_fetcher_fetch_parameters or "{}")
            assert isinstance(uri, JsonObject)
            file = uri.get_folded("URI")
            assert isinstance(file, str)
            steps, errors = decode_steps_document((server_dir / file).read_bytes())
            assert errors == []
            test_name = uri.get_folded("TestName")
            assert isinstance(test_name, str)
        else:
            params, errors = decode_fetch_parameters(td.test_fetcher_fetch_parameters)
            assert errors == []
            test_name, steps = params.test_name, params.steps
        cleanup, errors = decode_fetch_parameters(td.cleanup_fetcher_fetch_parameters or "null")
        assert errors == []
        tests.append(FetchedTest(test_name, steps, cleanup.steps))
    return tests


VALID_JOBS = [p for p in JOBS if p.name not in INVALID]


@pytest.mark.parametrize("path", VALID_JOBS, ids=ids(VALID_JOBS))
def test_extended_descriptor_round_trips(path: Path) -> None:
    d = decode_descriptor(path.read_bytes())
    server_dir = path.parents[3] / "contest" if "clients" in path.parts else path.parent
    ext = ExtendedDescriptor(d, fetch(d, server_dir))
    assert validate_extended_descriptor(ext) == []
    text = ext.to_json()
    back = decode_extended_descriptor(text)
    assert back == ext
    assert back.to_json() == text


@pytest.mark.parametrize("path", STEP_FILES, ids=ids(STEP_FILES))
def test_step_files_decode(path: Path) -> None:
    steps, errors = decode_steps_document(path.read_bytes())
    assert errors == []
    assert steps and all(s.name and s.label for s in steps)


def test_some_sample_values() -> None:
    d = decode_descriptor((SAMPLES / "lb/tests/e2e/test-retry.yaml").read_bytes())
    assert d.runs == 1 and d.run_interval == 0.0
    retry = d.test_descriptors[0].retry_parameters
    assert (retry.num_retries, retry.retry_interval) == (1, 10.0)
    params, _ = decode_fetch_parameters(d.test_descriptors[0].test_fetcher_fetch_parameters)
    assert params.steps[1].parameters["port"] == ['"[[ .WaitPort]]"']
    assert params.steps[2].parameters["emit_stdout"] == ["true"]

    d = decode_descriptor((SAMPLES / "fb/tests/e2e/test-resume.yaml").read_bytes())
    params, _ = decode_fetch_parameters(d.test_descriptors[1].test_fetcher_fetch_parameters)
    assert params.steps[1].parameters["args"] == ["2"]  # a YAML number stays a number
    assert d.test_descriptors[0].target_manager_release_parameters == "null"

    d = decode_descriptor(
        (SAMPLES / "fb/cmds/clients/contestcli/descriptors/start.json").read_bytes()
    )
    assert d.version is None
    assert [r.name for r in d.reporting.run_reporters] == ["TargetSuccess", "Noop"]
    assert d.reporting.final_reporters == []
