"""Declared parameters (``contest.paramspec``): what a declaration accepts and refuses, in words
that name the parameter's path; templates checked for syntax and target fields; secrets never
shown; typed reading; mistakes in a declaration caught when the class is made."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from contest.bundle import validate_step
from contest.context import StepContext
from contest.params import StepParameters
from contest.paramspec import Kind, Parameter, ParameterProblems, Parameters, declared
from contest.redaction import redact_descriptor
from contest.registry import PluginRegistry
from contest.signals import Scope
from contest.suggest import closest, did_you_mean
from contest.teststep import StepChannels, TestStep


def problems(decl: Parameters, values: dict[str, list[Any]]) -> list[str]:
    return [str(p) for p in decl.check_step(StepParameters.from_values(values))]


DECL = Parameters(
    Parameter("text", required=True, templated=True, doc="what to say"),
    Parameter("count", Kind.INTEGER, default=1, minimum=1, maximum=10),
    Parameter("ratio", Kind.NUMBER),
    Parameter("loud", Kind.BOOLEAN, default=False),
    Parameter("wait", Kind.DURATION, minimum=0),
    Parameter("mode", choices=("fast", "slow")),
    Parameter("args", many=True, templated=True),
    Parameter("password", secret=True, choices=("a", "b")),
    Parameter("blob", Kind.JSON),
    Parameter(
        "cfg",
        Kind.OBJECT,
        fields=(
            Parameter("host", required=True),
            Parameter("port", Kind.INTEGER, minimum=1),
            Parameter("tags", many=True),
        ),
    ),
)


def test_good_values_in_every_spelling_a_step_reads() -> None:
    assert (
        problems(
            DECL,
            {
                "text": ["hi {{ .ID }}"],
                "count": ["3"],  # a string or a number: steps read text
                "ratio": [0.5],
                "loud": ["T"],  # Go booleans
                "wait": ["1m30s"],
                "mode": ["FAST"],  # choices ignore case
                "args": ["a", 2, True],
                "password": ["a"],
                "blob": [{"any": ["thing"]}],
                "cfg": [{"host": "h", "port": 22, "tags": "one"}],
            },
        )
        == []
    )
    # an empty value is an absent one, as Param.is_empty says
    assert problems(DECL, {"text": ["x"], "count": [""], "wait": [""]}) == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, ["text: missing; it is required"]),
        ({"text": [""]}, ["text: must not be empty"]),
        ({"text": ["a", "b"]}, ["text: takes one value, got 2"]),
        (
            {"txet": ["a"]},
            ['txet: unknown parameter; did you mean "text"?', "text: missing; it is required"],
        ),
        ({"text": ["x"], "count": ["many"]}, ['count[0]: expected an integer, got "many"']),
        ({"text": ["x"], "count": [1.5]}, ["count[0]: expected an integer, got 1.5"]),
        ({"text": ["x"], "count": [True]}, ["count[0]: expected an integer, got true"]),
        ({"text": ["x"], "count": [0]}, ["count[0]: must be at least 1, got 0"]),
        ({"text": ["x"], "count": ["11"]}, ["count[0]: must be at most 10, got 11"]),
        ({"text": ["x"], "ratio": ["half"]}, ['ratio[0]: expected a number, got "half"']),
        (
            {"text": ["x"], "loud": ["yes"]},
            ['loud[0]: expected a boolean (true, false, 1, 0, t, f), got "yes"'],
        ),
        (
            {"text": ["x"], "wait": ["5 s"]},
            ['wait[0]: expected a duration such as "30s" or "1m30s", got "5 s"'],
        ),
        (
            {"text": ["x"], "wait": [5]},
            ['wait[0]: expected a duration such as "30s" or "1m30s" (quoted), got 5'],
        ),
        ({"text": ["x"], "wait": ["-1s"]}, ["wait[0]: must be at least 0 seconds, got -1s"]),
        (
            {"text": ["x"], "mode": ["fats"]},
            ['mode[0]: expected one of fast, slow, got "fats"; did you mean "fast"?'],
        ),
        ({"text": [{"a": 1}]}, ["text[0]: expected a string, got an object"]),
        ({"text": ["x"], "cfg": ["h"]}, ['cfg[0]: expected an object, got "h"']),
        (
            {"text": ["x"], "cfg": [{"hots": "h"}]},
            [
                'cfg[0].hots: unknown key; did you mean "host"?',
                "cfg[0].host: missing; it is required",
            ],
        ),
        (
            {"text": ["x"], "cfg": [{"host": "h", "port": "x"}]},
            ['cfg[0].port: expected an integer, got "x"'],
        ),
    ],
)
def test_refusals_name_the_path(values: dict[str, list[Any]], expected: list[str]) -> None:
    assert problems(DECL, values) == expected


def test_templates_are_parsed_and_read_only_fields_a_target_has() -> None:
    assert problems(DECL, {"text": ["{{ .ID"]}) == [
        "text[0]: not a valid template: unclosed action (line 1, column 7)"
    ]
    assert problems(DECL, {"text": ["line one\n  {{ .Hostname }}"]}) == [
        "text[0]: the template reads .Hostname (line 2, column 6), which a target does not have "
        "(it has ID, FQDN, PrimaryIPv4, PrimaryIPv6, TargetManagerState)"
    ]
    assert problems(DECL, {"text": ["{{ .PrimaryIpv4 }}"]}) == [
        "text[0]: the template reads .PrimaryIpv4 (line 1, column 4), which a target does not "
        'have; did you mean "PrimaryIPv4"?'
    ]
    # $ is the target anywhere; inside range and with the dot is something else
    assert (
        problems(DECL, {"text": ["{{ range .TargetManagerState }}{{ .Anything }}{{ end }}"]}) == []
    )
    assert problems(DECL, {"text": ["{{ with .FQDN }}{{ $.Nope }}{{ end }}"]}) == [
        "text[0]: the template reads .Nope (line 1, column 21), which a target does not have "
        "(it has ID, FQDN, PrimaryIPv4, PrimaryIPv6, TargetManagerState)"
    ]
    assert (
        problems(DECL, {"text": ['{{ StringVar "s.v" | ToUpper }} {{ .TargetManagerState.x }}']})
        == []
    )
    assert problems(DECL, {"text": ["{{ NoSuchFunction }}"]}) == [
        'text[0]: not a valid template: function "NoSuchFunction" not defined (line 1, column 4)'
    ]
    # a template where an integer goes is checked per target, not now
    decl = Parameters(Parameter("port", Kind.INTEGER, templated=True))
    assert problems(decl, {"port": ["{{ .ID }}"]}) == []
    assert problems(decl, {"port": ["{{ .Port }}"]})[0].startswith(
        "port[0]: the template reads .Port"
    )


def test_secrets_are_never_shown() -> None:
    assert problems(DECL, {"text": ["x"], "password": ["hunter2"]}) == [
        "password[0]: expected one of a, b, got a string"
    ]
    assert DECL.secret_names() == frozenset({"password"})
    nested = Parameters(
        Parameter(
            "bag",
            Kind.OBJECT,
            fields=(Parameter("ssh", Kind.OBJECT, fields=(Parameter("password", secret=True),)),),
        )
    )
    assert nested.secret_names() == frozenset({"bag.ssh.password"})


def test_others_take_any_name() -> None:
    decl = Parameters(others=Parameter("<variable>", Kind.INTEGER))
    assert problems(decl, {"a": [1], "b": ["2"]}) == []
    assert problems(decl, {"a": ["x"]}) == ['a[0]: expected an integer, got "x"']
    assert problems(decl, {"a": [1, 2]}) == ["a: takes one value, got 2"]


def test_go_structs_match_keys_in_any_case_and_want_json_types() -> None:
    decl = Parameters(
        Parameter("FileURI", required=True),
        Parameter("Max", Kind.INTEGER, minimum=0),
        Parameter("Prefixes", many=True),
        go_struct=True,
    )
    assert decl.check_object({"fileuri": "a", "MAX": 3, "prefixes": ["x"]}) == []
    # null is an empty object: FileURI is missing
    assert [str(p) for p in decl.check_object(None)] == ["FileURI: missing; it is required"]
    assert [str(p) for p in decl.check_object({"FileURI": "a", "Max": "3"})] == [
        'Max: expected an integer, got "3"'  # Go's json does not read a string as a number
    ]
    assert [str(p) for p in decl.check_object({"FileURI": "a", "Prefixes": "x"})] == [
        'Prefixes: expected a list, got "x"'
    ]
    assert [str(p) for p in decl.check_object({"FileURI": "a", "FileUri2": 1})] == [
        'FileUri2: unknown key; did you mean "FileURI"?'
    ]
    assert [str(p) for p in decl.check_object([1], "Params")] == [
        "Params: expected an object, got a list"
    ]
    assert decl.check_object({"FileURI": "a", "Max": None}) == []  # null leaves a field as is


def test_read_gives_typed_values_and_defaults() -> None:
    params = StepParameters.from_values(
        {"count": ["7"], "loud": ["1"], "wait": ["1m"], "args": ["a", "b"], "cfg": [{"host": "h"}]}
    )
    get = {p.name: p for p in DECL}
    assert get["count"].read(params) == 7
    assert get["loud"].read(params) is True
    assert get["wait"].read(params) == 60.0
    assert get["args"].read(params) == ["a", "b"]
    assert get["cfg"].read(params) == {"host": "h"}
    empty = StepParameters()
    assert get["count"].read(empty) == 1  # the default
    assert get["loud"].read(empty) is False
    assert get["ratio"].read(empty) is None
    assert get["args"].read(empty) == []
    with pytest.raises(ParameterProblems, match="count: expected an integer"):
        get["count"].read(StepParameters.from_values({"count": ["x"]}))


def test_a_wrong_declaration_fails_when_the_class_is_made() -> None:
    with pytest.raises(ValueError, match="required, so it cannot have a default"):
        Parameter("x", required=True, default="y")
    with pytest.raises(TypeError, match="unsupported type"):
        Parameter("x", list)
    with pytest.raises(ValueError, match="only an object has fields"):
        Parameter("x", Kind.STRING, fields=())
    with pytest.raises(ValueError, match="declared twice"):
        Parameters(Parameter("x"), Parameter("x"))
    with pytest.raises(TypeError, match="must be a sequence of Parameter"):

        class Bad(TestStep):
            name = "Bad"
            parameters = ("text",)  # type: ignore[assignment]

            async def run(self, *args: Any) -> None: ...


class Greeter(TestStep):
    name = "Greeter"
    parameters = (Parameter("text", required=True), Parameter("password", secret=True))
    seen: StepParameters | None = None

    async def validate_parameters(self, ctx: StepContext, params: StepParameters) -> None:
        Greeter.seen = params

    async def run(
        self, ctx: StepContext, ch: StepChannels, params: Any, ev: Any, resume_state: Any
    ) -> None: ...


async def test_the_declaration_is_checked_before_the_steps_own_validation() -> None:
    assert isinstance(Greeter.parameters, Parameters)  # a tuple is made a Parameters
    assert Greeter.secret_parameters == frozenset({"password"})
    assert declared(Greeter) is Greeter.parameters
    ctx = StepContext(scope=Scope(), step_label="g")
    Greeter.seen = None
    with pytest.raises(ParameterProblems):
        await validate_step(Greeter(), ctx, StepParameters.from_values({"txt": ["x"]}))
    assert Greeter.seen is None  # refused before the step saw the parameters
    await validate_step(Greeter(), ctx, StepParameters.from_values({"text": ["x"]}))
    assert Greeter.seen is not None


class Undeclared(TestStep):
    name = "Undeclared"

    async def run(
        self, ctx: StepContext, ch: StepChannels, params: Any, ev: Any, resume_state: Any
    ) -> None: ...


async def test_a_step_without_a_declaration_takes_anything_as_before() -> None:
    assert declared(Undeclared) is None
    await validate_step(
        Undeclared(), StepContext(scope=Scope()), StepParameters.from_values({"any": [1, {}]})
    )


def test_a_step_declaration_as_json_schema() -> None:
    schema = DECL.json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    ok = {"text": ["{{ .ID }}"], "count": ["3"], "wait": ["1s"], "mode": ["SLOW"], "loud": ["t"]}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(ok)) == []
    for bad in (
        {"txet": ["x"], "text": ["x"]},
        {},
        {"text": ["x", "y"]},
        {"text": ["x"], "wait": ["5"]},
    ):
        assert list(jsonschema.Draft7Validator(schema).iter_errors(bad)), bad


def test_did_you_mean() -> None:
    assert closest("nmae", ["name", "label"]) == "name"
    assert closest("zzz", ["name", "label"]) is None
    assert did_you_mean("Runz", ["Runs", "Tags"]) == '; did you mean "Runs"?'
    assert did_you_mean("zzz", ["b", "a"]) == "; known: a, b"
    assert did_you_mean("zzz", []) == ""


class DeclaredVault(TestStep):
    """Its secrets are declared with its parameters, nested ones too."""

    name = "DeclaredVault"
    parameters = (
        Parameter("token", secret=True),
        Parameter("user"),
        Parameter(
            "conn",
            Kind.OBJECT,
            fields=(Parameter("auth", Kind.OBJECT, fields=(Parameter("key", secret=True),)),),
        ),
    )

    async def run(self, *args: Any) -> None: ...


def test_declared_secrets_are_what_the_descriptors_are_redacted_by() -> None:
    """One place for "secret": the declaration gives ``secret_parameters``, which the stored
    descriptor's redaction (contest.redaction) reads."""
    assert DeclaredVault.secret_parameters == frozenset({"token", "conn.auth.key"})
    reg = PluginRegistry()
    reg.register("teststeps", "DeclaredVault", DeclaredVault)
    step = {
        "name": "declaredvault",
        "label": "v",
        "parameters": {"token": ["t0ken"], "user": ["me"], "conn": [{"auth": {"key": "k3y"}}]},
    }
    doc = {"JobName": "j", "TestDescriptors": [{"TestFetcherFetchParameters": {"Steps": [step]}}]}
    shown = redact_descriptor(json.dumps(doc), reg)
    assert "t0ken" not in shown and "k3y" not in shown and '"me"' in shown
    with pytest.raises(TypeError, match="not in secret_parameters as well"):

        class Both(TestStep):
            name = "Both"
            parameters = (Parameter("token", secret=True),)
            secret_parameters = frozenset({"token"})

            async def run(self, *args: Any) -> None: ...
