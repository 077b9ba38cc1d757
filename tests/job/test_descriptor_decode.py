"""Decoding descriptors with Go's encoding/json rules: keys in any case, types; unknown keys are
refused, and errors are in our words (Go's text kept for the form API)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contest.job.descriptor import (
    DescriptorDecodeError,
    DescriptorError,
    JobDescriptor,
    StepDescriptor,
    decode_descriptor,
    decode_fetch_parameters,
    decode_steps,
    decode_steps_document,
    try_decode_descriptor,
)


def errors_of(doc: Any, fmt: str | None = None) -> list[str]:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    _, errors = try_decode_descriptor(text, fmt=fmt)  # type: ignore[arg-type]
    return [str(e) for e in errors]


def as_go(errors: list[DescriptorError]) -> list[str]:
    """The errors as ConTest's form API words them (Go's text where there is one), with paths."""
    out = []
    for e in errors:
        text = e.wire if e.wire is not None else e.message
        out.append(f"{e.path}: {text}" if e.path else text)
    return out


def decode(doc: Any) -> JobDescriptor:
    return decode_descriptor(doc if isinstance(doc, str) else json.dumps(doc))


# --- key matching --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["JobName", "jobname", "JOBNAME", "jObNaMe"])
def test_keys_match_ignoring_case(key: str) -> None:
    assert decode({key: "x"}).job_name == "x"


def test_unicode_folding_like_go() -> None:
    # Go folds the Kelvin sign to k and the long s to s; Python's casefold would also make ß "ss".
    assert errors_of({"TaK": ["a"]}) == [
        'TaK: unknown key "TaK" in the job descriptor; known: JobName, Reporting, RunInterval, '
        "Runs, Tags, TargetManagerAcquireTimeout, TargetManagerReleaseTimeout, TestDescriptors, "
        "Version"
    ]
    assert decode({"Tag\u017f": ["a"]}).tags == ["a"]
    assert errors_of({"\u212aobName": "kelvin"})[0].startswith("\u212aobName: unknown key")
    assert decode({"RunInterval": "1s", "RUNINTERVAL": "2s"}).run_interval == 2.0


def test_later_key_wins_in_document_order() -> None:
    assert decode_descriptor('{"Runs": 1, "runs": 2}').runs == 2
    assert decode_descriptor('{"runs": 2, "Runs": 1}').runs == 1
    assert decode_descriptor('{"Runs": 1, "runs": 2, "Runs": 3}').runs == 3


def test_unknown_keys_are_refused_with_their_path_and_a_suggestion() -> None:
    # Go ignores them: a typo then fails far from its cause, or never shows
    d, errors = try_decode_descriptor(
        json.dumps(
            {
                "JobName": "j",
                "Runz": 2,
                "TestDescriptors": [{"Whatever": 1, "TestFetcherName": "literal"}],
                "Reporting": {"RunReporter": [], "FinalReporters": [{"nmae": "noop"}]},
            }
        )
    )
    assert [str(e) for e in errors] == [
        'Runz: unknown key "Runz" in the job descriptor; did you mean "Runs"?',
        'TestDescriptors[0].Whatever: unknown key "Whatever" in a test descriptor; known: '
        "CleanupFetcherFetchParameters, CleanupFetcherName, Disabled, RetryParameters, "
        "TargetManagerAcquireParameters, TargetManagerName, TargetManagerReleaseParameters, "
        "TestFetcherFetchParameters, TestFetcherName",
        'Reporting.RunReporter: unknown key "RunReporter" in Reporting; did you mean '
        '"RunReporters"?',
        'Reporting.FinalReporters[0].nmae: unknown key "nmae" in a reporter; did you mean "Name"?',
    ]
    assert all(e.decoding and e.wire is None for e in errors)
    # what is known still decodes
    assert d is not None and d.job_name == "j"
    assert d.test_descriptors[0].test_fetcher_name == "literal"
    # the obsolete top-level reporter of old descriptors (and of ConTest's own job manager
    # tests) is accepted and ignored, as Go ignores it
    d, errors = try_decode_descriptor(
        '{"JobName": "j", "reportername": "TargetSuccess", "ReporterParameters": {"a": 1}}'
    )
    assert errors == [] and d is not None and d.job_name == "j"
    _, errors = decode_steps([{"nmae": "sleep", "label": "l"}])
    assert [str(e) for e in errors] == [
        'Steps[0].nmae: unknown key "nmae" in a test step; did you mean "name"?'
    ]


def test_steps_and_reporters_use_lower_case_keys() -> None:
    d = decode({"Reporting": {"RunReporters": [{"name": "noop", "parameters": {"a": 1}}]}})
    assert d.reporting.run_reporters[0].name == "noop"
    assert d.reporting.run_reporters[0].parameters == '{"a":1}'
    steps, errors = decode_steps([{"NAME": "cmd", "Label": "l", "PARAMETERS": {"x": [1]}}])
    assert errors == []
    assert steps == [StepDescriptor("cmd", "l", {"x": ["1"]})]


def test_struct_given_twice_is_merged_like_go() -> None:
    d = decode_descriptor(
        '{"Reporting": {"RunReporters": [{"Name": "a"}]},'
        ' "reporting": {"FinalReporters": [{"Name": "b"}]}}'
    )
    assert [r.name for r in d.reporting.run_reporters] == ["a"]
    assert [r.name for r in d.reporting.final_reporters] == ["b"]


# --- zero values and null ------------------------------------------------------------------------


def test_absent_fields_take_zero_values() -> None:
    d = decode({})
    assert d == JobDescriptor()
    assert d.runs == 0  # 0 means forever
    assert d.version is None
    assert d.target_manager_acquire_timeout is None
    assert d.acquire_timeout == 300.0 and d.release_timeout == 300.0


def test_runs_zero() -> None:
    assert decode({"Runs": 0}).runs == 0


def test_null_leaves_scalars_and_empties_lists() -> None:
    d = decode_descriptor('{"JobName": "x", "JobName": null, "Tags": ["a"], "Tags": null}')
    assert d.job_name == "x"
    assert d.tags == []
    d = decode({"Version": None, "Runs": None, "Reporting": None})
    assert d.version is None and d.runs == 0


def test_raw_documents_are_compact_text_and_keep_numbers() -> None:
    d = decode_descriptor(
        '{"TestDescriptors": [{"TargetManagerAcquireParameters": {"a": 1.50, "b": [1e2, true]},'
        ' "TargetManagerReleaseParameters": null}]}'
    )
    td = d.test_descriptors[0]
    assert td.target_manager_acquire_parameters == '{"a":1.50,"b":[1e2,true]}'
    assert td.target_manager_release_parameters == "null"  # null is kept, as in Go
    assert td.test_fetcher_fetch_parameters is None  # absent is not null


def test_step_parameters_are_raw_json_per_item() -> None:
    steps, errors = decode_steps(
        [{"name": "cmd", "label": "l", "parameters": {"args": ["40", 12, {"a": 1}, None, True]}}]
    )
    assert errors == []
    assert steps[0].parameters == {"args": ['"40"', "12", '{"a":1}', "null", "true"]}


def test_step_parameters_from_python_floats_are_written_like_go() -> None:
    steps, _ = decode_steps([{"parameters": {"n": [1.0, 0.5, 1e21, 1e-7]}}])
    assert steps[0].parameters["n"] == ["1", "0.5", "1e+21", "1e-7"]


def test_null_parameter_list_and_null_mapping_value() -> None:
    steps, errors = decode_steps(
        [{"label": "l", "parameters": {"a": None}, "VariablesMapping": {"x": None, "y": "z"}}]
    )
    assert errors == []
    assert steps[0].parameters == {"a": []}
    assert steps[0].variables_mapping == {"x": "", "y": "z"}


# --- durations -----------------------------------------------------------------------------------


def test_durations() -> None:
    d = decode(
        {
            "RunInterval": "1m30s",
            "TargetManagerAcquireTimeout": "2m",
            "TargetManagerReleaseTimeout": "0.5s",
            "TestDescriptors": [{"RetryParameters": {"NumRetries": 2, "RetryInterval": "15s"}}],
        }
    )
    assert d.run_interval == 90.0
    assert d.target_manager_acquire_timeout == 120.0
    assert d.target_manager_release_timeout == 0.5
    assert d.test_descriptors[0].retry_parameters.num_retries == 2
    assert d.test_descriptors[0].retry_parameters.retry_interval == 15.0
    assert decode({"RunInterval": "-1s"}).run_interval == -1.0  # parses; validation refuses it


def test_optional_timeout_can_be_null() -> None:
    assert decode({"TargetManagerAcquireTimeout": None}).target_manager_acquire_timeout is None


@pytest.mark.parametrize(
    ("value", "message", "go_text"),
    [
        (
            "5d",
            'RunInterval: expected a duration such as "30s" or "1m30s", got "5d"',
            'time: unknown unit "d" in duration "5d"',
        ),
        (
            "5",
            'RunInterval: expected a duration such as "30s" or "1m30s", got "5"',
            'time: missing unit in duration "5"',
        ),
        (
            "",
            'RunInterval: expected a duration such as "30s" or "1m30s", got ""',
            'time: invalid duration ""',
        ),
        (
            5,
            'RunInterval: expected a duration as a quoted string such as "30s" or "1m30s", got 5',
            "not a properly double-quoted string",
        ),
        (  # not a pointer in Go
            None,
            'RunInterval: expected a duration as a quoted string such as "30s" or "1m30s", got '
            "null",
            "not a properly double-quoted string",
        ),
        (
            [1],
            'RunInterval: expected a duration as a quoted string such as "30s" or "1m30s", got '
            "a list",
            "not a properly double-quoted string",
        ),
    ],
)
def test_bad_durations(value: Any, message: str, go_text: str) -> None:
    _, errors = try_decode_descriptor(json.dumps({"RunInterval": value}))
    (error,) = errors
    assert str(error) == message
    assert error.wire is not None and error.wire.startswith(go_text)


def test_number_duration_message_says_what_to_write() -> None:
    _, errors = try_decode_descriptor(
        json.dumps({"TestDescriptors": [{"RetryParameters": {"RetryInterval": 10}}]})
    )
    (error,) = errors
    assert str(error) == (
        "TestDescriptors[0].RetryParameters.RetryInterval: expected a duration as a quoted "
        'string such as "30s" or "1m30s", got 10'
    )
    assert error.wire == (
        'not a properly double-quoted string: a duration must be a quoted Go duration such as "30s"'
        ' or "1m30s", got number 10'
    )


# --- type errors: in our words with a path; Go's text kept for ConTest's form API --------------


@pytest.mark.parametrize(
    ("doc", "expected", "go_text"),
    [
        (
            '{"Runs": "3"}',
            'Runs: expected a whole number (0 or more), got "3"',
            "json: cannot unmarshal string into Go struct field Descriptor.Runs of type uint",
        ),
        (
            '{"Runs": -1}',
            "Runs: expected a whole number (0 or more), got -1",
            "json: cannot unmarshal number -1 into Go struct field Descriptor.Runs of type uint",
        ),
        (
            '{"Runs": 1.0}',
            "Runs: expected a whole number (0 or more), got 1.0",
            "json: cannot unmarshal number 1.0 into Go struct field Descriptor.Runs of type uint",
        ),
        (
            '{"Runs": 18446744073709551616}',
            "Runs: expected a whole number (0 or more), got 18446744073709551616",
            "json: cannot unmarshal number 18446744073709551616 into Go struct field "
            "Descriptor.Runs of type uint",
        ),
        (
            '{"Runs": true}',
            "Runs: expected a whole number (0 or more), got true",
            "json: cannot unmarshal bool into Go struct field Descriptor.Runs of type uint",
        ),
        (
            '{"JobName": 5}',
            "JobName: expected a string, got 5",
            "json: cannot unmarshal number into Go struct field Descriptor.JobName of type string",
        ),
        (
            '{"Version": 1.0}',
            "Version: expected a string, got 1.0",
            "json: cannot unmarshal number into Go struct field Descriptor.Version of type string",
        ),
        (
            '{"Tags": "a"}',
            'Tags: expected a list, got "a"',
            "json: cannot unmarshal string into Go struct field Descriptor.Tags of type []string",
        ),
        (
            '{"Tags": ["a", 5]}',
            "Tags[1]: expected a string, got 5",
            "json: cannot unmarshal number into Go struct field Descriptor.Tags of type string",
        ),
        (
            '{"TestDescriptors": {}}',
            "TestDescriptors: expected a list, got an object",
            "json: cannot unmarshal object into Go struct field Descriptor.TestDescriptors of "
            "type []*test.TestDescriptor",
        ),
        (
            '{"TestDescriptors": ["x"]}',
            'TestDescriptors[0]: expected an object, got "x"',
            "json: cannot unmarshal string into Go struct field Descriptor.TestDescriptors of "
            "type test.TestDescriptor",
        ),
        (
            '{"TestDescriptors": [{"Disabled": "yes"}]}',
            'TestDescriptors[0].Disabled: expected true or false, got "yes"',
            "json: cannot unmarshal string into Go struct field "
            "TestDescriptor.TestDescriptors.Disabled of type bool",
        ),
        (
            '{"TestDescriptors": [{"TargetManagerName": ["x"]}]}',
            "TestDescriptors[0].TargetManagerName: expected a string, got a list",
            "json: cannot unmarshal array into Go struct field "
            "TestDescriptor.TestDescriptors.TargetManagerName of type string",
        ),
        (
            '{"TestDescriptors": [{"RetryParameters": {"NumRetries": 4294967296}}]}',
            "TestDescriptors[0].RetryParameters.NumRetries: expected a whole number from 0 to "
            "4294967295, got 4294967296",
            "json: cannot unmarshal number 4294967296 into Go struct field "
            "RetryParameters.TestDescriptors.RetryParameters.NumRetries of type uint32",
        ),
        (
            '{"TestDescriptors": [{"RetryParameters": []}]}',
            "TestDescriptors[0].RetryParameters: expected an object, got a list",
            "json: cannot unmarshal array into Go struct field "
            "TestDescriptor.TestDescriptors.RetryParameters of type test.RetryParameters",
        ),
        (
            '{"Reporting": []}',
            "Reporting: expected an object, got a list",
            "json: cannot unmarshal array into Go struct field Descriptor.Reporting of type "
            "job.Reporting",
        ),
        (
            '{"Reporting": {"RunReporters": {}}}',
            "Reporting.RunReporters: expected a list, got an object",
            "json: cannot unmarshal object into Go struct field Reporting.Reporting.RunReporters "
            "of type []job.ReporterConfig",
        ),
        (
            '{"Reporting": {"FinalReporters": [{"Name": 1}]}}',
            "Reporting.FinalReporters[0].Name: expected a string, got 1",
            "json: cannot unmarshal number into Go struct field "
            "ReporterConfig.Reporting.FinalReporters.Name of type string",
        ),
        (
            "[]",
            "expected an object, got a list",
            "json: cannot unmarshal array into Go value of type job.Descriptor",
        ),
        (
            '"x"',
            'expected an object, got "x"',
            "json: cannot unmarshal string into Go value of type job.Descriptor",
        ),
    ],
)
def test_type_errors(doc: str, expected: str, go_text: str) -> None:
    _, errors = try_decode_descriptor(doc)
    assert [(str(e), e.wire) for e in errors] == [(expected, go_text)]
    assert all(e.decoding for e in errors)


def test_uint_limits() -> None:
    assert decode_descriptor('{"Runs": 18446744073709551615}').runs == 2**64 - 1
    d = decode_descriptor('{"TestDescriptors": [{"RetryParameters": {"NumRetries": 4294967295}}]}')
    assert d.test_descriptors[0].retry_parameters.num_retries == 2**32 - 1


def test_every_decoding_error_is_reported_and_decoding_goes_on() -> None:
    d, errors = try_decode_descriptor(
        '{"JobName": 1, "Runs": "x", "RunInterval": 3, "Tags": ["ok", 2], "TestDescriptors":'
        ' [{"TargetManagerName": "tm", "Disabled": 1}], "Reporting": {"RunReporters": [{}]}}'
    )
    assert [e.path for e in errors] == [
        "JobName",
        "Runs",
        "RunInterval",
        "Tags[1]",
        "TestDescriptors[0].Disabled",
    ]
    assert d is not None
    assert d.tags == ["ok", ""]  # the bad element keeps its zero value and its index
    assert d.test_descriptors[0].target_manager_name == "tm"
    assert len(d.reporting.run_reporters) == 1


def test_decode_descriptor_raises_with_all_errors() -> None:
    with pytest.raises(DescriptorDecodeError) as info:
        decode_descriptor('{"JobName": 1, "Runs": "x"}')
    assert [e.path for e in info.value.errors] == ["JobName", "Runs"]
    assert str(info.value).splitlines()[0] == "JobName: expected a string, got 1"
    assert info.value.errors[0].wire == (
        "json: cannot unmarshal number into Go struct field Descriptor.JobName of type string"
    )


def test_null_test_and_null_step_are_reported_with_contest_messages() -> None:
    _, errors = try_decode_descriptor('{"TestDescriptors": [{"TargetManagerName": "a"}, null]}')
    assert errors == [DescriptorError("TestDescriptors[1]", "test description is null")]
    steps, errors = decode_steps([{"label": "a"}, None, {"label": "b"}])
    assert errors == [DescriptorError("Steps[1]", "test step description is null")]
    assert [s.label for s in steps] == ["a", "", "b"]  # placeholder keeps the indices


# --- syntax --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    ['{"JobName": "x",}', '{"JobName": NaN}', '{"Runs": Infinity}', '{"JobName": "x"} extra', "{"],
)
def test_syntax_errors(doc: str) -> None:
    d, errors = try_decode_descriptor(doc, fmt="json")
    assert d is None
    (error,) = errors
    assert error.path == ""
    assert error.message.startswith("invalid JSON")


def test_syntax_error_says_where() -> None:
    with pytest.raises(DescriptorDecodeError, match="line 2, column 1"):
        decode_descriptor('{"JobName": "x"\n"Runs": 1}')


def test_bytes_bom_and_invalid_utf8() -> None:
    assert decode_descriptor(b'\xef\xbb\xbf{"JobName": "x"}').job_name == "x"
    assert decode_descriptor(b'{"JobName": "a\xffb"}').job_name == "a\ufffdb"
    assert decode_descriptor('{"JobName": "\\ud800"}').job_name == "\ufffd"
    assert decode_descriptor('{"JobName": "\\ud83d\\ude00"}').job_name == "\U0001f600"


def test_plain_python_mapping_is_accepted() -> None:
    assert decode_descriptor({"JobName": "x", "Runs": 2}).runs == 2


# --- YAML ----------------------------------------------------------------------------------------

EXAMPLE_B = """\
JobName: two-tests
Runs: 1
RunInterval: 1s
Tags: [demo, yaml]
TestDescriptors:
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters:
      Targets:
        - {ID: T1, FQDN: host1.example.com}
        - {ID: T2, PrimaryIPv4: 10.0.0.2}
    TargetManagerReleaseParameters:          # becomes JSON null, accepted
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: FirstTest
      Steps:
        - name: cmd
          label: sayhello
          parameters:
            executable: [echo]
            args: ["hello {{ ToUpper .ID }}"]
            emit_stdout: [true]
  - Disabled: true                           # validated, then skipped (lb)
    TargetManagerName: TargetList
    TargetManagerAcquireParameters: {Targets: [{ID: T3}]}
    TargetManagerReleaseParameters: {}
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: SecondTest
      Steps:
        - {name: sleep, label: nap, parameters: {duration: [2s]}}
Reporting:
  RunReporters:
    - name: TargetSuccess
      parameters: {SuccessExpression: "=100%"}
  FinalReporters:
    - name: noop
"""


@pytest.mark.parametrize("fmt", ["yaml", None])
def test_yaml_example(fmt: str | None) -> None:
    d = decode_descriptor(EXAMPLE_B, fmt=fmt)  # type: ignore[arg-type]
    assert d.job_name == "two-tests" and d.runs == 1 and d.run_interval == 1.0
    assert d.tags == ["demo", "yaml"]
    first, second = d.test_descriptors
    assert first.target_manager_acquire_parameters == (
        '{"Targets":[{"ID":"T1","FQDN":"host1.example.com"},{"ID":"T2","PrimaryIPv4":"10.0.0.2"}]}'
    )
    assert first.target_manager_release_parameters == "null"
    assert second.disabled is True
    params, errors = decode_fetch_parameters(first.test_fetcher_fetch_parameters)
    assert errors == []
    assert params.test_name == "FirstTest"
    assert params.steps[0].parameters == {
        "executable": ['"echo"'],
        "args": ['"hello {{ ToUpper .ID }}"'],
        "emit_stdout": ["true"],
    }
    assert [r.name for r in d.reporting.run_reporters] == ["TargetSuccess"]
    assert d.reporting.run_reporters[0].parameters == '{"SuccessExpression":"=100%"}'
    assert d.reporting.final_reporters[0].parameters is None


def test_yaml_reads_values_as_contests_client_does() -> None:
    """YAML 1.2 core schema (Go's yaml.v3), not PyYAML's 1.1: no yes/on booleans, no dates."""
    d = decode_descriptor(
        "TestDescriptors:\n"
        "  - TestFetcherFetchParameters:\n"
        "      Steps:\n"
        "        - label: x\n"
        "          parameters: {a: [yes, on, 1:30, 2024-01-01, 0x1F, 1.0, ~, 1e3, 017, 1_000]}\n",
        fmt="yaml",
    )
    params, _ = decode_fetch_parameters(d.test_descriptors[0].test_fetcher_fetch_parameters)
    assert params.steps[0].parameters["a"] == [
        '"yes"',
        '"on"',
        '"1:30"',
        '"2024-01-01"',
        "31",
        "1",
        "null",
        "1000",
        "15",
        "1000",
    ]


def test_yaml_unquoted_version_is_a_number_as_in_contest() -> None:
    assert errors_of("Version: 1.0\n", fmt="yaml") == ["Version: expected a string, got 1"]
    _, errors = try_decode_descriptor("Version: 1.0\n", fmt="yaml")
    assert as_go(errors) == [
        "Version: json: cannot unmarshal number into Go struct field Descriptor.Version "
        "of type string"
    ]
    assert decode_descriptor('Version: "1.0"\n', fmt="yaml").version == "1.0"


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ("JobName: a\nJobName: b\n", "duplicate mapping key 'JobName' (first at line 1)"),
        ("TestDescriptors:\n  - 1: x\n", "mapping key 1 is not a string"),
        ("JobName: [\n", "invalid YAML"),
        ("Runs: .inf\n", "JSON has no NaN or infinity"),
    ],
)
def test_yaml_errors(doc: str, fragment: str) -> None:
    (error,) = errors_of(doc, fmt="yaml")
    assert fragment in error
    assert "line" in error


def test_yaml_merge_keys_and_anchors() -> None:
    # a key starting with "x-" holds anchors: ignored, as in docker-compose files
    d = decode_descriptor(
        "x-base: &b {TargetManagerName: TargetList, TestFetcherName: literal}\n"
        "TestDescriptors:\n  - <<: *b\n    TestFetcherName: uri\n",
        fmt="yaml",
    )
    assert d.test_descriptors[0].target_manager_name == "TargetList"
    assert d.test_descriptors[0].test_fetcher_name == "uri"


def test_empty_yaml_is_an_empty_descriptor() -> None:
    assert decode_descriptor("", fmt="yaml") == JobDescriptor()


def test_auto_format_reports_the_json_error_for_json_looking_text() -> None:
    (error,) = errors_of('{"JobName": "x",}')
    assert error.startswith("invalid JSON")
    (error,) = errors_of("JobName: [x\n")
    assert error.startswith("invalid YAML")


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown descriptor format"):
        decode_descriptor("{}", fmt="toml")  # type: ignore[arg-type]


# --- step lists ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            [{"label": 5}],
            "Steps[0].label: json: cannot unmarshal number into Go struct field "
            "TestStepDescriptor.Steps.Label of type string",
        ),
        (
            [{"parameters": {"args": "x"}}],
            "Steps[0].parameters.args: json: cannot unmarshal string into Go struct field "
            "TestStepDescriptor.Steps.Parameters of type []test.Param",
        ),
        (
            [{"parameters": ["x"]}],
            "Steps[0].parameters: json: cannot unmarshal array into Go struct field "
            "TestStepDescriptor.Steps.Parameters of type test.TestStepParameters",
        ),
        (
            [{"VariablesMapping": {"a": 1}}],
            "Steps[0].VariablesMapping.a: json: cannot unmarshal number into Go struct field "
            "TestStepDescriptor.Steps.VariablesMapping of type string",
        ),
        (
            ["cmd"],
            "Steps[0]: json: cannot unmarshal string into Go struct field FetchParameters.Steps "
            "of type test.TestStepDescriptor",
        ),
        (
            {"name": "cmd"},
            "Steps: json: cannot unmarshal object into Go struct field FetchParameters.Steps "
            "of type []*test.TestStepDescriptor",
        ),
    ],
)
def test_step_type_errors(steps: Any, expected: str) -> None:
    _, errors = decode_steps(steps)
    assert as_go(errors) == [expected]
    assert errors[0].message.startswith("expected ")


def test_decode_steps_with_a_path_prefix() -> None:
    _, errors = decode_steps([None], "TestDescriptors[0].TestFetcherFetchParameters.Steps")
    assert [str(e) for e in errors] == [
        "TestDescriptors[0].TestFetcherFetchParameters.Steps[0]: test step description is null"
    ]


def test_decode_fetch_parameters() -> None:
    params, errors = decode_fetch_parameters(
        '{"testname": "T", "STEPS": [{"name": "echo", "label": "a",'
        ' "parameters": {"text": ["hi"]}}]}'
    )
    assert errors == []
    assert params.test_name == "T"
    assert params.steps == [StepDescriptor("echo", "a", {"text": ['"hi"']})]
    # already-decoded data, as a fetcher plugin gets it
    params, errors = decode_fetch_parameters({"TestName": "T", "Steps": []})
    assert errors == [] and params.test_name == "T" and params.steps == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "P: unexpected end of JSON input"),
        ("[1]", "P: json: cannot unmarshal array into Go value of type literal.FetchParameters"),
        ('{"TestName": 1}', "P.TestName: json: cannot unmarshal number into Go struct field "
         "FetchParameters.TestName of type string"),
        ("{", "P: invalid JSON"),
    ],
)  # fmt: skip
def test_decode_fetch_parameters_errors(raw: str | None, message: str) -> None:
    _, errors = decode_fetch_parameters(raw, "P")
    assert as_go(errors)[0].startswith(message) and len(errors) == 1


def test_decode_fetch_parameters_null_is_empty() -> None:
    params, errors = decode_fetch_parameters("null")
    assert errors == [] and params.test_name == "" and params.steps == []


def test_decode_steps_document() -> None:
    steps, errors = decode_steps_document(
        b'{"steps": [{"name": "echo", "label": "x", "parameters": {"text": ["t"]}}]}'
    )
    assert errors == []
    assert steps == [StepDescriptor("echo", "x", {"text": ['"t"']})]
    _, errors = decode_steps_document("[]")
    assert as_go(errors) == ["json: cannot unmarshal array into Go value of type uri.doc"]
    assert [str(e) for e in errors] == ["expected an object, got a list"]
    _, errors = decode_steps_document('{"steps": [], "stpes": []}')
    assert [str(e) for e in errors] == [
        'stpes: unknown key "stpes" in a test file; did you mean "steps"?'
    ]
    _, errors = decode_steps_document("{")
    assert errors[0].message.startswith("invalid JSON")
