"""Structural validation: every ConTest rule and message, all errors at once, with paths."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from contest.errors import ContestError
from contest.job.descriptor import (
    DescriptorDecodeError,
    DescriptorError,
    DescriptorValidationError,
    ExtendedDescriptor,
    FetchedTest,
    JobDescriptor,
    ReporterConfig,
    Reporting,
    StepDescriptor,
    TestDescriptor,
    check_tags,
    check_version,
    decode_descriptor,
    load_descriptor,
    load_extended_descriptor,
    validate_descriptor,
    validate_extended_descriptor,
    validate_fetched_test,
)

STEPS = "TestDescriptors[0].TestFetcherFetchParameters.Steps"
INCOMPATIBLE = "is not compatible with the server: 1.0"


def base() -> dict[str, Any]:
    """A valid descriptor in the shape of ConTest's integration-test jobs."""
    return {
        "JobName": "Test job",
        "Runs": 1,
        "RunInterval": "1s",
        "Tags": ["integration_testing"],
        "TestDescriptors": [
            {
                "TargetManagerName": "TargetList",
                "TargetManagerAcquireParameters": {"Targets": [{"ID": "id1"}, {"ID": "id2"}]},
                "TargetManagerReleaseParameters": {},
                "TestFetcherName": "literal",
                "TestFetcherFetchParameters": {
                    "TestName": "IntegrationTest: noop",
                    "Steps": [{"name": "noop", "label": "noop_label", "parameters": {}}],
                },
            }
        ],
        "Reporting": {
            "RunReporters": [{"Name": "TargetSuccess", "Parameters": {"SuccessExpression": ">0%"}}]
        },
    }


def errors(doc: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(DescriptorValidationError) as info:
        load_descriptor(json.dumps(doc), **kwargs)
    return [str(e) for e in info.value.errors]


def test_base_is_valid() -> None:
    d = load_descriptor(json.dumps(base()))
    assert validate_descriptor(d) == []


def with_(path: list[Any], value: Any, doc: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(doc if doc is not None else base())
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()
TD = ["TestDescriptors", 0]
FP = [*TD, "TestFetcherFetchParameters"]


# --- version (linuxboot) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("1.0", None),
        ("1.-1", None),
        ("+1.0", None),
        ("", "version Error: Empty Job Descriptor Version Field"),
        ("1.1", f"version Error: The Job Descriptor Version 1.1 {INCOMPATIBLE}"),
        ("2.0", f"version Error: The Job Descriptor Version 2.0 {INCOMPATIBLE}"),
        ("1.", 'version Error: strconv.Atoi: parsing "": invalid syntax'),
        (".0", 'version Error: strconv.Atoi: parsing "": invalid syntax'),
        (".", 'version Error: strconv.Atoi: parsing "": invalid syntax'),
        ("1.a", 'version Error: strconv.Atoi: parsing "a": invalid syntax'),
        ("a.0", 'version Error: strconv.Atoi: parsing "a": invalid syntax'),
        ("1. 0", 'version Error: strconv.Atoi: parsing " 0": invalid syntax'),
        ("1.99999999999999999999",
         'version Error: strconv.Atoi: parsing "99999999999999999999": value out of range'),
        ("123", "version Error: Incorrect Job Descriptor Version 123"),
        ("abc", "version Error: Incorrect Job Descriptor Version abc"),
        ("1.0.0", "version Error: Incorrect Job Descriptor Version 1.0.0"),
    ],
)  # fmt: skip
def test_check_version(version: str, message: str | None) -> None:
    assert check_version(version) == message


def test_version_in_descriptor() -> None:
    assert errors(with_(["Version"], "2.0")) == [
        "Version: version Error: The Job Descriptor Version 2.0 is not compatible with the "
        "server: 1.0"
    ]
    assert errors(with_(["Version"], "")) == [
        "Version: version Error: Empty Job Descriptor Version Field"
    ]
    load_descriptor(json.dumps(with_(["Version"], "1.0")))


def test_missing_version_is_fb_style_unless_required() -> None:
    load_descriptor(json.dumps(base()))
    assert errors(base(), require_version=True) == [
        "Version: version Error: Empty Job Descriptor Version Field"
    ]
    load_descriptor(json.dumps(with_(["Version"], "1.0")), require_version=True)


# --- tags ----------------------------------------------------------------------------------------


def test_tags_catalog() -> None:
    assert errors(with_(["Tags"], ["integration_testing", "a bad one"])) == [
        'Tags[1]: "a bad one" is not a valid tag'
    ]
    assert errors(with_(["Tags"], ["integration_testing", "_foo"])) == [
        'Tags[1]: "_foo" is an internal tag and is not allowed'
    ]
    assert errors(with_(["Tags"], ["qwe", "integration_testing", "qwe"])) == [
        'Tags[2]: duplicate tag "qwe"'
    ]


def test_all_tag_errors_at_once() -> None:
    tags = ["ok", "", "a.b", "_x", "ok", "é", "x" * 65, "A-Z_0-9"]
    assert [str(e) for e in check_tags(tags)] == [
        'Tags[1]: "" is not a valid tag',
        'Tags[2]: "a.b" is not a valid tag',
        'Tags[3]: "_x" is an internal tag and is not allowed',
        'Tags[4]: duplicate tag "ok"',
        'Tags[5]: "é" is not a valid tag',
        "Tags[6]: Tag is too long: 65 > 64",
    ]


def test_internal_tags_allowed_for_the_server() -> None:
    assert check_tags(["_instance"], allow_internal=True) == []


def test_tag_quoting_is_go_strconv_quote() -> None:
    assert [e.message for e in check_tags(["a\tb", 'q"'])] == [
        '"a\\tb" is not a valid tag',
        '"q\\"" is not a valid tag',
    ]


# --- job-level rules -----------------------------------------------------------------------------


def test_job_name() -> None:
    assert errors(with_(["JobName"], "")) == ["JobName: job name cannot be empty"]
    assert errors(with_(["JobName"], "x" * 65)) == ["JobName: Job name is too long: 65 > 64"]
    load_descriptor(json.dumps(with_(["JobName"], "x" * 64)))
    # bytes, as Go's len() counts them
    assert errors(with_(["JobName"], "é" * 33)) == ["JobName: Job name is too long: 66 > 64"]


def test_need_a_test() -> None:
    assert errors(with_(["TestDescriptors"], [])) == [
        "TestDescriptors: need at least one TestDescriptor in the JobDescriptor"
    ]
    assert errors(with_(["TestDescriptors"], _DELETE)) == [
        "TestDescriptors: need at least one TestDescriptor in the JobDescriptor"
    ]


def test_run_interval_non_negative() -> None:
    assert errors(with_(["RunInterval"], "-1s")) == [
        "RunInterval: run interval must be non-negative"
    ]
    load_descriptor(json.dumps(with_(["RunInterval"], "0s")))


def test_reporters() -> None:
    assert errors(with_(["Reporting"], {})) == [
        "Reporting: at least one run reporter or one final reporter must be specified in a job"
    ]
    only_final = with_(["Reporting"], {"FinalReporters": [{"Name": "noop"}]})
    load_descriptor(json.dumps(only_final))
    assert errors(with_(["Reporting", "RunReporters"], [{"Name": " \t"}, {"Name": ""}])) == [
        "Reporting.RunReporters[0].Name: run reporters cannot have empty or all-whitespace names",
        "Reporting.RunReporters[1].Name: run reporters cannot have empty or all-whitespace names",
    ]
    assert errors(with_(["Reporting", "FinalReporters"], [{"Name": "\u3000"}])) == [
        "Reporting.FinalReporters[0].Name: invalid empty or all-whitespace final reporter name"
    ]
    assert errors(with_(["Reporting", "RunReporters", 0, "Name"], "R" * 33)) == [
        "Reporting.RunReporters[0].Name: Reporter name is too long: 33 > 32"
    ]
    assert errors(with_(["Reporting", "FinalReporters"], [{"Name": "F" * 33}])) == [
        "Reporting.FinalReporters[0].Name: Reporter name is too long: 33 > 32"
    ]


def test_timeouts_must_be_positive() -> None:
    doc = with_(["TargetManagerAcquireTimeout"], "0s")
    doc["TargetManagerReleaseTimeout"] = "-1s"
    assert errors(doc) == [
        "TargetManagerAcquireTimeout: target manager acquire timeout must be positive",
        "TargetManagerReleaseTimeout: target manager release timeout must be positive",
    ]


# --- test descriptors ----------------------------------------------------------------------------


def test_test_descriptor_names() -> None:
    doc = with_([*TD, "TargetManagerName"], "")
    doc["TestDescriptors"][0]["TestFetcherName"] = ""
    assert errors(doc) == [
        "TestDescriptors[0].TargetManagerName: target manager name cannot be empty",
        "TestDescriptors[0].TestFetcherName: test fetcher name cannot be empty",
    ]


def test_null_test() -> None:
    doc = base()
    doc["TestDescriptors"].append(None)
    assert errors(doc) == ["TestDescriptors[1]: test description is null"]
    assert errors(with_(["TestDescriptors"], [None])) == [
        "TestDescriptors[0]: test description is null"
    ]


def test_negative_retry_interval() -> None:
    doc = with_([*TD, "RetryParameters"], {"NumRetries": 1, "RetryInterval": "-5s"})
    assert errors(doc) == [
        "TestDescriptors[0].RetryParameters.RetryInterval: retry interval must be non-negative"
    ]


# --- literal steps -------------------------------------------------------------------------------


def test_literal_test_name() -> None:
    assert errors(with_([*FP, "TestName"], "")) == [
        "TestDescriptors[0].TestFetcherFetchParameters.TestName: "
        "test name cannot be empty for fetch parameters"
    ]
    assert errors(with_([*FP, "TestName"], "T" * 33)) == [
        "TestDescriptors[0].TestFetcherFetchParameters.TestName: Test name is too long: 33 > 32"
    ]


def test_literal_needs_a_step() -> None:
    assert errors(with_([*FP, "Steps"], [])) == [
        f"{STEPS}: at least one test step is required per test"
    ]
    assert errors(with_([*FP, "Steps"], _DELETE)) == [
        f"{STEPS}: at least one test step is required per test"
    ]


def test_missing_label() -> None:
    (error,) = errors(with_([*FP, "Steps", 0, "label"], _DELETE))
    assert error.startswith(f"{STEPS}[0].label: step has no label, but it is mandatory (step: ")
    assert error.endswith("{Name:noop Label: Parameters:map[] VariablesMapping:map[]})")


def test_label_length() -> None:
    assert errors(with_([*FP, "Steps", 0, "label"], "L" * 33)) == [
        f"{STEPS}[0].label: Test step label is too long: 33 > 32"
    ]
    load_descriptor(json.dumps(with_([*FP, "Steps", 0, "label"], "L" * 32)))


def test_fb_labels_with_spaces_are_accepted() -> None:
    load_descriptor(json.dumps(with_([*FP, "Steps", 0, "label"], "Test 1 Step 1")))


def test_duplicate_labels() -> None:
    step = {"name": "noop", "label": "dup", "parameters": {}}
    doc = with_([*FP, "Steps"], [step, {**step, "label": "other"}, step])
    assert errors(doc) == [f"{STEPS}[2].label: found duplicated labels: dup"]


def test_duplicate_labels_across_cleanup() -> None:
    doc = base()
    doc["TestDescriptors"][0]["CleanupFetcherName"] = "literal"
    doc["TestDescriptors"][0]["CleanupFetcherFetchParameters"] = {
        "Steps": [
            {"name": "noop", "label": "noop_label"},
            {"name": "noop", "label": "c"},
            {"name": "noop", "label": "c"},
        ]
    }
    cleanup = "TestDescriptors[0].CleanupFetcherFetchParameters.Steps"
    assert errors(doc) == [
        f"{cleanup}[0].label: found duplicated labels across test/cleanup steps: noop_label",
        f"{cleanup}[2].label: found duplicated labels across test/cleanup steps: c",
    ]


def test_cleanup_without_test_name_is_fine_but_its_steps_are_checked() -> None:
    doc = base()
    doc["TestDescriptors"][0]["CleanupFetcherName"] = "Literal"
    doc["TestDescriptors"][0]["CleanupFetcherFetchParameters"] = {"Steps": [{"name": "noop"}]}
    (error,) = errors(doc)
    assert error.startswith(
        "TestDescriptors[0].CleanupFetcherFetchParameters.Steps[0].label: step has no label"
    )
    doc["TestDescriptors"][0]["CleanupFetcherFetchParameters"] = {"Steps": []}
    load_descriptor(json.dumps(doc))  # no cleanup step at all is fine


def test_null_step() -> None:
    doc = base()
    doc["TestDescriptors"][0]["TestFetcherFetchParameters"]["Steps"].append(None)
    assert errors(doc) == [f"{STEPS}[1]: test step description is null"]
    assert errors(with_([*FP, "Steps"], [None])) == [f"{STEPS}[0]: test step description is null"]


def test_literal_fetch_parameters_missing() -> None:
    assert errors(with_(FP, _DELETE)) == [
        "TestDescriptors[0].TestFetcherFetchParameters: unexpected end of JSON input"
    ]


def test_literal_fetcher_name_is_case_insensitive() -> None:
    doc = with_([*TD, "TestFetcherName"], "LITERAL")
    assert errors(with_([*FP, "Steps"], [], doc)) == [
        f"{STEPS}: at least one test step is required per test"
    ]


def test_other_fetchers_are_not_read() -> None:
    doc = with_([*TD, "TestFetcherName"], "URI")
    doc["TestDescriptors"][0]["TestFetcherFetchParameters"] = {"URI": "x.json"}
    load_descriptor(json.dumps(doc))


def test_literal_steps_can_be_left_to_the_fetcher() -> None:
    load_descriptor(json.dumps(with_([*FP, "Steps"], [])), check_literal_steps=False)


# --- all errors at once, decode and validation together ------------------------------------------


def test_every_error_at_once_in_contest_order() -> None:
    doc = {
        "Version": "2.0",
        "JobName": "",
        "Tags": ["a bad one", "_foo", "qwe", "qwe"],
        "RunInterval": "-1s",
        "TestDescriptors": [
            None,
            {
                "TargetManagerName": "",
                "TestFetcherName": "literal",
                "TestFetcherFetchParameters": {
                    "TestName": "",
                    "Steps": [{"name": "a"}, None, {"name": "b", "label": "x" * 33}],
                },
            },
        ],
        "Reporting": {"RunReporters": [{"Name": ""}], "FinalReporters": [{"Name": "  "}]},
    }
    assert errors(doc) == [
        "TestDescriptors[0]: test description is null",
        "Version: version Error: The Job Descriptor Version 2.0 is not compatible with the "
        "server: 1.0",
        'Tags[0]: "a bad one" is not a valid tag',
        'Tags[1]: "_foo" is an internal tag and is not allowed',
        'Tags[3]: duplicate tag "qwe"',
        "JobName: job name cannot be empty",
        "RunInterval: run interval must be non-negative",
        "Reporting.RunReporters[0].Name: run reporters cannot have empty or all-whitespace names",
        "Reporting.FinalReporters[0].Name: invalid empty or all-whitespace final reporter name",
        "TestDescriptors[1].TargetManagerName: target manager name cannot be empty",
        "TestDescriptors[1].TestFetcherFetchParameters.Steps[1]: test step description is null",
        "TestDescriptors[1].TestFetcherFetchParameters.TestName: "
        "test name cannot be empty for fetch parameters",
        "TestDescriptors[1].TestFetcherFetchParameters.Steps[0].label: step has no label, but "
        "it is mandatory (step: {Name:a Label: Parameters:map[] VariablesMapping:map[]})",
        "TestDescriptors[1].TestFetcherFetchParameters.Steps[2].label: "
        "Test step label is too long: 33 > 32",
    ]


def test_decode_errors_mute_the_checks_they_would_repeat() -> None:
    doc = base()
    doc["JobName"] = 42  # would also be "job name cannot be empty"
    doc["Reporting"] = {"RunReporters": {"Name": "noop"}}  # would also be "at least one reporter"
    doc["TestDescriptors"][0]["TestFetcherFetchParameters"]["Steps"][0]["label"] = 7
    doc["RunInterval"] = "-1s"  # not muted: unrelated
    assert errors(doc) == [
        "JobName: expected a string, got 42",
        "Reporting.RunReporters: expected a list, got an object",
        "RunInterval: run interval must be non-negative",
        f"{STEPS}[0].label: expected a string, got 7",
    ]


def test_load_descriptor_syntax_error_is_a_decode_error() -> None:
    with pytest.raises(DescriptorDecodeError) as info:
        load_descriptor("{")
    assert isinstance(info.value, DescriptorValidationError)
    assert isinstance(info.value, ContestError) and isinstance(info.value, ValueError)
    assert info.value.errors[0].message.startswith("invalid JSON")


def test_wrong_top_level_type_reports_only_that() -> None:
    assert errors([]) == ["expected an object, got a list"]  # type: ignore[arg-type]


def test_error_strings() -> None:
    assert str(DescriptorError("JobName", "job name cannot be empty")) == (
        "JobName: job name cannot be empty"
    )
    assert str(DescriptorError("", "boom")) == "boom"
    exc = DescriptorValidationError([DescriptorError("a", "x"), DescriptorError("b", "y")])
    assert str(exc) == "a: x\nb: y"
    assert str(DescriptorValidationError([])) == "invalid job descriptor"


# --- objects built in code, fetched tests, extended descriptors ----------------------------------


def test_validate_descriptor_built_in_code() -> None:
    d = JobDescriptor(
        job_name="j",
        test_descriptors=[TestDescriptor(target_manager_name="tm", test_fetcher_name="uri")],
        reporting=Reporting(run_reporters=[ReporterConfig("noop")]),
    )
    assert validate_descriptor(d) == []
    d.test_descriptors[0].test_fetcher_name = "literal"
    d.test_descriptors[0].test_fetcher_fetch_parameters = "{oops"
    (error,) = validate_descriptor(d)
    assert error.path == "TestDescriptors[0].TestFetcherFetchParameters"
    assert error.message.startswith("invalid JSON")


def test_validate_fetched_test() -> None:
    good = FetchedTest("T", [StepDescriptor("echo", "a")], [StepDescriptor("echo", "b")])
    assert validate_fetched_test(good) == []
    bad = FetchedTest(
        "T" * 33,
        [StepDescriptor("echo", "a"), StepDescriptor("echo", "a"), StepDescriptor("echo", "")],
        [StepDescriptor("echo", "a")],
    )
    assert [str(e) for e in validate_fetched_test(bad, "X")] == [
        "X.TestSteps[2].label: step has no label, but it is mandatory "
        "(step: {Name:echo Label: Parameters:map[] VariablesMapping:map[]})",
        "X.TestName: Test name is too long: 33 > 32",
        "X.TestSteps[1].label: found duplicated labels: a",
        "X.CleanupSteps[0].label: found duplicated labels across test/cleanup steps: a",
    ]
    assert [str(e) for e in validate_fetched_test(FetchedTest("T"))] == [
        "TestSteps: at least one test step is required per test"
    ]
    assert validate_fetched_test(FetchedTest("T"), require_steps=False) == []


def test_go_repr_of_a_step_in_the_label_message() -> None:
    step = StepDescriptor("cmd", "", {"b": ['"x y"', "2"], "a": ['{"k":1}']}, {"v": "step.out"})
    assert step.go_repr() == (
        '{Name:cmd Label: Parameters:map[a:[{"k":1}] b:[x y 2]] VariablesMapping:map[v:step.out]}'
    )


def test_validate_extended_descriptor() -> None:
    d = decode_descriptor(json.dumps(base()))
    ext = ExtendedDescriptor(d, [FetchedTest("T", [StepDescriptor("noop", "l")])])
    assert validate_extended_descriptor(ext) == []
    assert load_extended_descriptor(ext.to_json()) == ext
    ext.tests.append(FetchedTest("U", [StepDescriptor("noop", "")]))
    messages = [str(e) for e in validate_extended_descriptor(ext)]
    assert messages[0] == (
        "TestStepsDescriptors: length of steps descriptors must match length of test descriptors"
    )
    assert messages[1].startswith("TestStepsDescriptors[1].TestSteps[0].label: step has no label")
    with pytest.raises(DescriptorValidationError):
        load_extended_descriptor(ext.to_json())
    with pytest.raises(DescriptorDecodeError):
        load_extended_descriptor("[")
