"""``contest schema``: a JSON Schema (draft-07, what the YAML language server reads) of job
descriptors, with every registered plugin's declared parameters. It accepts what ``contest
validate`` accepts of the document's shape (keys in any case, ``x-`` keys, ``null``), and marks
what it refuses: unknown keys at every level, unknown step parameters, values of the wrong type."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from contest.golang.json import to_python
from contest.job.descriptor import parse_document
from contest.job.descriptor.schema import descriptor_schema
from contest.registry import PluginRegistry, default_registry
from contest.testing.paths import samples_dir
from contest.teststep import Kind, Parameter, TestStep

DOCS = Path(__file__).resolve().parents[2] / "docs"
SAMPLES = samples_dir()


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = descriptor_schema(default_registry())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(v: jsonschema.Draft7Validator, doc: Any) -> list[str]:
    return [e.message for e in v.iter_errors(doc)]


GOOD: dict[str, Any] = {
    "JobName": "j",
    "Runs": 1,
    "RunInterval": "1m30s",
    "Tags": ["a"],
    "TestDescriptors": [
        {
            "TargetManagerName": "TargetList",
            "TargetManagerAcquireParameters": {"Targets": [{"ID": "T1", "FQDN": "h"}]},
            "TargetManagerReleaseParameters": None,
            "TestFetcherName": "literal",
            "TestFetcherFetchParameters": {
                "TestName": "t",
                "Steps": [
                    {"name": "sleep", "label": "s", "parameters": {"duration": ["1s"]}},
                    {"name": "cmd", "label": "c", "parameters": {
                        "executable": ["echo"], "args": ["{{ .ID }}", 2], "emit_stdout": ["t"]}},
                    {"name": "exec", "label": "e", "parameters": {"bag": [{
                        "bin": {"path": "/bin/true"},
                        "transport": {"proto": "ssh", "options": {
                            "host": "{{ .FQDN }}", "user": "u", "port": "{{ .ID }}"}}}]}},
                ],
            },
            "RetryParameters": {"NumRetries": 1, "RetryInterval": "10s"},
        }
    ],
    "Reporting": {
        "RunReporters": [{"Name": "TargetSuccess", "Parameters": {"SuccessExpression": ">80%"}}],
        "FinalReporters": [{"Name": "noop", "Parameters": {"whatever": 1}}],
    },
}  # fmt: skip


def test_a_good_descriptor_passes(validator: jsonschema.Draft7Validator) -> None:
    assert errors(validator, GOOD) == []


def test_keys_in_any_case_x_keys_and_null(validator: jsonschema.Draft7Validator) -> None:
    doc = json.loads(json.dumps(GOOD).replace('"JobName"', '"jobname"').replace('"name"', '"NAME"'))
    doc["x-defaults"] = {"anything": [1]}
    doc["Tags"] = None
    doc["TestDescriptors"][0]["targetmanageracquireparameters"] = doc["TestDescriptors"][0].pop(
        "TargetManagerAcquireParameters"
    )
    doc["TestDescriptors"][0]["TestFetcherFetchParameters"]["steps"] = doc["TestDescriptors"][0][
        "TestFetcherFetchParameters"
    ].pop("Steps")
    assert errors(validator, doc) == []


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


STEPS = ["TestDescriptors", 0, "TestFetcherFetchParameters", "Steps"]


@pytest.mark.parametrize(
    "doc",
    [
        _with(["Runz"], 1),
        _with(["Runs"], "3"),
        _with(["Runs"], -1),
        _with(["RunInterval"], 5),
        _with(["RunInterval"], "5 days"),
        _with(["TestDescriptors", 0, "TargetManagerNmae"], "TargetList"),
        _with(
            ["TestDescriptors", 0, "TargetManagerAcquireParameters"],
            {"Targets": [{"ID": "a", "FQDNN": "x"}]},
        ),
        _with(["TestDescriptors", 0, "TargetManagerName"], "NoSuchManager"),
        _with([*STEPS, 0, "nmae"], "sleep"),
        _with([*STEPS, 0, "parameters"], {"durtion": ["1s"]}),
        _with([*STEPS, 0, "parameters"], {"duration": ["1s", "2s"]}),
        _with([*STEPS, 0, "parameters"], {"duration": ["1 s"]}),
        _with([*STEPS, 1, "parameters", "emit_stdout"], ["yes"]),
        _with([*STEPS, 2, "parameters", "bag", 0, "bins"], {}),
        _with([*STEPS, 2, "parameters", "bag", 0, "transport", "proto"], "telnet"),
        _with(["Reporting", "RunReporters", 0, "Parameters"], {"SuccessExpresion": "x"}),
        _with(["TestDescriptors", 0, "RetryParameters", "NumRetries"], 2**32),
    ],
)  # fmt: skip
def test_what_contest_validate_refuses_is_marked(
    validator: jsonschema.Draft7Validator, doc: dict[str, Any]
) -> None:
    assert errors(validator, doc)


def _samples() -> list[Path]:
    return sorted(
        p
        for p in SAMPLES.rglob("*")
        if p.suffix in (".json", ".yaml")
        and "test_samples" not in p.parts
        and p.name not in ("debug.json",)  # a steps file, not a job descriptor
    )


@pytest.mark.parametrize("path", _samples(), ids=lambda p: str(p.relative_to(SAMPLES)))
def test_contests_samples(validator: jsonschema.Draft7Validator, path: Path) -> None:
    doc = to_python(parse_document(path.read_text()))
    found = errors(validator, doc)
    if path.name == "test-retry.yaml":  # "[[ .WaitPort]]" is filled in by ConTest's e2e harness
        assert found  # and refused as a port, as contest validate refuses it
    else:
        assert found == [], found


def test_the_docs_valid_descriptors(validator: jsonschema.Draft7Validator) -> None:
    text = (DOCS / "job-descriptors.md").read_text()
    blocks = re.findall(r"<!-- valid: [^>]+ -->\n```\w+\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        assert errors(validator, to_python(parse_document(block))) == []


class Installed(TestStep):
    """A third-party step: its declaration is in the schema as soon as it is registered."""

    name = "Installed"
    parameters = (Parameter("count", Kind.INTEGER, required=True, minimum=1, doc="how many"),)

    async def run(self, *args: Any) -> None: ...


def test_a_registered_plugins_declaration_is_in_the_schema() -> None:
    reg = PluginRegistry()
    reg.load_entry_points()
    reg.register("teststeps", "Installed", Installed)
    v = jsonschema.Draft7Validator(descriptor_schema(reg))
    ok = _with(STEPS, [{"name": "installed", "label": "i", "parameters": {"count": [2]}}])
    assert errors(v, ok) == []
    for params in ({"count": [0]}, {"cuont": [1]}, {}):
        bad = _with(STEPS, [{"name": "Installed", "label": "i", "parameters": params}])
        assert errors(v, bad), params
    step = v.schema["definitions"]["step"]
    assert "Installed" in json.dumps(step)
    assert "how many" in json.dumps(step)


def test_contest_schema_prints_it() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "contest.cli", "schema"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == descriptor_schema(default_registry())
