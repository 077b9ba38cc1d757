"""The JSON/YAML document model and ConTest's canonical JSON of descriptors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contest.golang.json import (
    JsonNumber,
    JsonObject,
    JsonSyntaxError,
    JsonValue,
    dumps,
    fold_key,
    from_python,
    go_float,
    json_kind,
    loads_json,
    loads_yaml,
    to_python,
)
from contest.job.descriptor import (
    ExtendedDescriptor,
    FetchedTest,
    JobDescriptor,
    ReporterConfig,
    Reporting,
    RetryParameters,
    StepDescriptor,
    TestDescriptor,
    decode_descriptor,
    decode_extended_descriptor,
    decode_steps,
    parse_document,
)

EXAMPLE_A = """{
  "Version": "1.0",
  "JobName": "nightly-firmware-smoke",
  "Tags": ["firmware", "nightly"],
  "Runs": 2,
  "RunInterval": "30s",
  "TargetManagerAcquireTimeout": "2m",
  "TargetManagerReleaseTimeout": "1m",
  "TestDescriptors": [
    {
      "TargetManagerName": "CSVFileTargetManager",
      "TargetManagerAcquireParameters": {
        "FileURI": "hosts.csv", "MinNumberDevices": 1, "MaxNumberDevices": 3,
        "HostPrefixes": ["compute", "storage"], "Shuffle": true
      },
      "TargetManagerReleaseParameters": {},
      "TestFetcherName": "URI",
      "TestFetcherFetchParameters": {
        "TestName": "BootCheck", "URI": "file:///srv/contest/tests/bootcheck.json"
      },
      "RetryParameters": { "NumRetries": 2, "RetryInterval": "15s" },
      "CleanupFetcherName": "literal",
      "CleanupFetcherFetchParameters": {
        "Steps": [
          { "name": "cmd", "label": "collectlogs",
            "parameters": { "executable": ["/bin/echo"], "args": ["cleanup {{ .ID }}"] } }
        ]
      }
    }
  ],
  "Reporting": {
    "RunReporters": [
      { "Name": "TargetSuccess", "Parameters": { "SuccessExpression": ">=66%" } },
      { "Name": "noop" }
    ],
    "FinalReporters": [ { "Name": "noop" } ]
  }
}"""


def test_example_a_decodes() -> None:
    d = decode_descriptor(EXAMPLE_A)
    assert d == JobDescriptor(
        job_name="nightly-firmware-smoke",
        version="1.0",
        tags=["firmware", "nightly"],
        runs=2,
        run_interval=30.0,
        test_descriptors=[
            TestDescriptor(
                target_manager_name="CSVFileTargetManager",
                target_manager_acquire_parameters=(
                    '{"FileURI":"hosts.csv","MinNumberDevices":1,"MaxNumberDevices":3,'
                    '"HostPrefixes":["compute","storage"],"Shuffle":true}'
                ),
                target_manager_release_parameters="{}",
                test_fetcher_name="URI",
                test_fetcher_fetch_parameters=(
                    '{"TestName":"BootCheck","URI":"file:///srv/contest/tests/bootcheck.json"}'
                ),
                cleanup_fetcher_name="literal",
                cleanup_fetcher_fetch_parameters=(
                    '{"Steps":[{"name":"cmd","label":"collectlogs","parameters":'
                    '{"executable":["/bin/echo"],"args":["cleanup {{ .ID }}"]}}]}'
                ),
                retry_parameters=RetryParameters(2, 15.0),
            )
        ],
        reporting=Reporting(
            run_reporters=[
                ReporterConfig("TargetSuccess", '{"SuccessExpression":">=66%"}'),
                ReporterConfig("noop"),
            ],
            final_reporters=[ReporterConfig("noop")],
        ),
        target_manager_acquire_timeout=120.0,
        target_manager_release_timeout=60.0,
    )


def test_canonical_json_uses_contest_names_order_and_durations() -> None:
    d = decode_descriptor(EXAMPLE_A)
    out = json.loads(d.to_json())
    assert list(out) == [
        "JobName",
        "Version",
        "Tags",
        "Runs",
        "RunInterval",
        "TestDescriptors",
        "Reporting",
        "TargetManagerAcquireTimeout",
        "TargetManagerReleaseTimeout",
    ]
    assert (out["RunInterval"], out["TargetManagerAcquireTimeout"]) == ("30s", "2m0s")
    assert out["TargetManagerReleaseTimeout"] == "1m0s"
    assert list(out["TestDescriptors"][0]) == [
        "Disabled",
        "RetryParameters",
        "TargetManagerName",
        "TargetManagerAcquireParameters",
        "TargetManagerReleaseParameters",
        "TestFetcherName",
        "TestFetcherFetchParameters",
        "CleanupFetcherName",
        "CleanupFetcherFetchParameters",
    ]
    assert out["TestDescriptors"][0]["RetryParameters"] == {
        "NumRetries": 2,
        "RetryInterval": "15s",
    }
    assert out["Reporting"]["RunReporters"][1] == {"Name": "noop"}


def test_canonical_json_layout_is_go_marshal_indent() -> None:
    d = JobDescriptor(job_name="j", tags=[], reporting=Reporting([ReporterConfig("noop", "{}")]))
    assert d.to_json() == (
        "{\n"
        '    "JobName": "j",\n'
        '    "Tags": [],\n'
        '    "Runs": 0,\n'
        '    "RunInterval": "0s",\n'
        '    "TestDescriptors": [],\n'
        '    "Reporting": {\n'
        '        "RunReporters": [\n'
        "            {\n"
        '                "Name": "noop",\n'
        '                "Parameters": {}\n'
        "            }\n"
        "        ],\n"
        '        "FinalReporters": []\n'
        "    },\n"
        '    "TargetManagerAcquireTimeout": null,\n'
        '    "TargetManagerReleaseTimeout": null\n'
        "}"
    )
    assert d.to_json(indent=None).startswith('{"JobName":"j","Tags":[],"Runs":0,')


def test_round_trip_keeps_raw_numbers_and_absence() -> None:
    d = decode_descriptor(
        '{"TestDescriptors": [{"TargetManagerAcquireParameters": {"n": 1.50, "big": '
        '123456789012345678901234567890}, "TargetManagerReleaseParameters": null}]}'
    )
    again = decode_descriptor(d.to_json())
    assert again == d
    td = again.test_descriptors[0]
    assert td.target_manager_acquire_parameters == '{"n":1.50,"big":123456789012345678901234567890}'
    assert td.target_manager_release_parameters == "null"
    assert td.test_fetcher_fetch_parameters is None


def test_job_descriptor_from_json() -> None:
    d = decode_descriptor(EXAMPLE_A)
    assert decode_descriptor(d.to_json(), fmt="json") == d


def test_extended_descriptor_json() -> None:
    d = JobDescriptor(job_name="j")
    step = StepDescriptor("echo", "a", {"text": ['"hi"', "2"]}, {"x": "a.y"})
    ext = ExtendedDescriptor(d, [FetchedTest("T", [step]), FetchedTest("U", [], [step])])
    out = json.loads(ext.to_json())
    assert out["JobName"] == "j"  # the descriptor's fields are at the top level
    assert out["TestStepsDescriptors"] == [
        {
            "TestName": "T",
            "TestSteps": [
                {
                    "Name": "echo",
                    "Label": "a",
                    "Parameters": {"text": ["hi", 2]},
                    "VariablesMapping": {"x": "a.y"},
                }
            ],
            "CleanupSteps": None,
        },
        {
            "TestName": "U",
            "TestSteps": [],
            "CleanupSteps": [
                {
                    "Name": "echo",
                    "Label": "a",
                    "Parameters": {"text": ["hi", 2]},
                    "VariablesMapping": {"x": "a.y"},
                }
            ],
        },
    ]
    assert decode_extended_descriptor(ext.to_json()) == ext
    assert decode_extended_descriptor(ext.to_json(indent=None)) == ext


def test_extended_descriptor_decoding_errors_name_the_go_struct() -> None:
    from contest.job.descriptor import try_decode_extended_descriptor

    _, errors = try_decode_extended_descriptor(
        '{"Runs": "x", "TestStepsDescriptors": [{"TestName": 1, "TestSteps": [null]}]}'
    )
    assert [str(e) for e in errors] == [
        'Runs: expected a whole number (0 or more), got "x"',
        "TestStepsDescriptors[0].TestName: expected a string, got 1",
        "TestStepsDescriptors[0].TestSteps[0]: test step description is null",
    ]
    assert [e.wire for e in errors] == [
        "json: cannot unmarshal string into Go struct field ExtendedDescriptor.Runs of type uint",
        "json: cannot unmarshal number into Go struct field "
        "TestStepsDescriptors.TestStepsDescriptors.TestName of type string",
        None,
    ]


def test_extended_descriptor_reads_fb_without_cleanup_steps() -> None:
    ext = decode_extended_descriptor(
        '{"JobName": "j", "TestStepsDescriptors": [{"TestName": "T", "TestSteps": '
        '[{"Name": "echo", "Label": "a", "Parameters": {"text": ["hi"]}}]}]}'
    )
    assert ext.tests == [FetchedTest("T", [StepDescriptor("echo", "a", {"text": ['"hi"']})])]


# --- the document model --------------------------------------------------------------------------


def test_loads_keeps_pairs_and_number_text() -> None:
    tree = loads_json('{"a": 1, "A": 2.50, "a": [true, null, "x"]}')
    assert isinstance(tree, JsonObject)
    assert list(tree) == [
        ("a", JsonNumber("1")),
        ("A", JsonNumber("2.50")),
        ("a", [True, None, "x"]),
    ]
    assert tree.get_folded("A") == [True, None, "x"]  # the last matching key, as Go
    assert tree.get_folded("missing") is None
    assert to_python(tree) == {"a": [True, None, "x"], "A": 2.5}
    assert dumps(tree) == '{"a":1,"A":2.50,"a":[true,null,"x"]}'


def test_json_kind() -> None:
    values: list[JsonValue] = [None, True, "s", JsonNumber("1"), [], JsonObject()]
    assert [json_kind(v) for v in values] == [
        "null",
        "bool",
        "string",
        "number",
        "array",
        "object",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (100.0, "100"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-7"),
        (1e-6, "0.000001"),
        (1.2e-10, "1.2e-10"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (123456789.0, "123456789"),
    ],
)
def test_go_float(value: float, text: str) -> None:
    assert go_float(value) == text


def test_go_float_refuses_nan() -> None:
    with pytest.raises(ValueError, match="unsupported value"):
        go_float(float("nan"))


def test_fold_key() -> None:
    assert fold_key("JobName") == "jobname"
    assert fold_key("\u017f") == "s"  # the long s
    assert fold_key("\u212a") == "k"
    assert fold_key("ß") == "ß"  # one rune to one rune, as Go


def test_from_python() -> None:
    tree = from_python({"a": [1, 2.0, None, True, "s", (3,)], "b": {"c": 0.5}})
    assert dumps(tree) == '{"a":[1,2,null,true,"s",[3]],"b":{"c":0.5}}'
    assert from_python(tree) == tree
    with pytest.raises(TypeError):
        from_python({1: "x"})
    with pytest.raises(TypeError):
        from_python({"a": object()})


def test_loads_yaml_core_schema() -> None:
    tree = loads_yaml(
        "a: [true, False, null, ~, '', yes, no, on, off, 12, -3, +4, 0o17, 0x1f, 1.5, .5, 1e3]\n"
    )
    assert dumps(tree) == (
        '{"a":[true,false,null,null,"","yes","no","on","off",12,-3,4,15,31,1.5,0.5,1000]}'
    )
    assert loads_yaml("") is None
    assert dumps(loads_yaml("when: 2001-12-14t21:59:43.10-05:00\n")) == (
        '{"when":"2001-12-14t21:59:43.10-05:00"}'
    )
    assert dumps(loads_yaml("big: 18446744073709551616\n")) == '{"big":18446744073709552000}'
    assert dumps(loads_yaml("u: 18446744073709551615\n")) == '{"u":18446744073709551615}'


def test_loads_yaml_explicit_tags() -> None:
    assert dumps(loads_yaml("b: !!binary aGk=\n")) == '{"b":"hi"}'
    assert dumps(loads_yaml("t: !!timestamp 2001-12-14\n")) == '{"t":"2001-12-14"}'
    assert dumps(loads_yaml("s: !!str 12\n")) == '{"s":"12"}'


def json_values(leaves: Any) -> Any:
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )


SCALARS = st.none() | st.booleans() | st.text() | st.integers()
FLOATS = st.floats(allow_nan=False, allow_infinity=False)


def as_floats(text: str) -> Any:
    return json.loads(text, parse_int=float)


@given(json_values(SCALARS | FLOATS))
def test_dumps_gives_the_same_values_as_python_json(value: Any) -> None:
    tree = from_python(value)
    assert as_floats(dumps(tree)) == as_floats(json.dumps(value))
    assert dumps(loads_json(dumps(tree))) == dumps(tree)
    assert dumps(loads_json(dumps(tree, 4))) == dumps(tree)


@given(json_values(SCALARS))
def test_indented_layout_is_the_usual_one(value: Any) -> None:
    """Go's MarshalIndent and Python's json.dumps(indent=4) lay out JSON the same way."""
    assert dumps(from_python(value), 4) == json.dumps(value, indent=4, ensure_ascii=False)


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ("a: !!set {x}\n", "unsupported YAML value"),
        ("a: 1\n---\nb: 2\n", "another document"),
        ("a: &x [*x]\n", "recursive"),
        ("a: !!map [1]\n", "expected a mapping"),
        ("a: !!python/object:os.system x\n", "could not determine a constructor"),
        ("[" * 3000, "nested too deeply|nesting depth"),
    ],
)
def test_yaml_documents_we_refuse(doc: str, fragment: str) -> None:
    with pytest.raises(JsonSyntaxError, match=fragment):
        loads_yaml(doc)


def test_json_nested_too_deeply() -> None:
    with pytest.raises(JsonSyntaxError, match="nested too deeply"):
        loads_json("[" * 100_000)


def test_parse_document_from_bytes() -> None:
    assert parse_document(b"JobName: x\n") == JsonObject([("JobName", "x")])
    assert parse_document(b' {"JobName": "x"}') == JsonObject([("JobName", "x")])
    steps, errors = decode_steps(b'[{"label": "x"}]')
    assert errors == [] and steps == [StepDescriptor(label="x")]
