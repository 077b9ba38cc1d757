"""Step parameters and their per-target template expansion (ConTest's
``pkg/test/param_expander_test.go``), and the target's string and JSON forms
(``pkg/target/target_test.go``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from contest.errors import ParameterError
from contest.params import Param, StepParameters, go_title
from contest.target import Target
from contest.teststep import register_function, unregister_function
from contest.variables import VariableStore, is_identifier


def expand(template: str, target: Target | None = None, variables: Any = None) -> str:
    return Param.from_value(template).expand(target, variables)


# --- 62: built-in functions and fields ------------------------------------------------------------


def test_62_builtin_functions_and_fields() -> None:
    t = Target("12345", fqdn="www.slackware.IT")
    assert expand("{{ ToLower .FQDN }}", t) == "www.slackware.it"
    assert expand("{{ ToUpper .FQDN }}", t) == "WWW.SLACKWARE.IT"
    assert expand("{{ .FQDN }}", t) == "www.slackware.IT"
    assert expand("{{ Title .FQDN }}", Target("1", fqdn="slackware.it")) == "Slackware.It"
    assert expand("fqdn={{ .FQDN }}, id={{ .ID }}", Target("12345", fqdn="blah")) == (
        "fqdn=blah, id=12345"
    )


def test_62b_raw_params_are_not_json_checked() -> None:
    """NewParam wraps text without validating it as JSON: templates and bare numbers get in."""
    t = Target("12345", fqdn="host")
    p = Param("{{ .ID }}")
    assert str(p) == "{{ .ID }}"
    assert p.expand(t) == "12345"
    assert Param("id-{{ .ID }}-{{ .FQDN }}").expand(t) == "id-12345-host"


def test_62c_other_target_fields() -> None:
    t = Target("1", primary_ipv4="1.2.3.4", primary_ipv6="::1")
    assert expand("{{ .PrimaryIPv4 }} {{ .PrimaryIPv6 }}", t) == "1.2.3.4 ::1"


def test_62d_parse_error() -> None:
    with pytest.raises(ParameterError, match="failed to parse template"):
        expand("{{ .ID ", Target("1"))


def test_62e_unknown_function_is_a_parse_error() -> None:
    with pytest.raises(ParameterError, match="failed to parse template"):
        expand("{{ NoSuchFunction .ID }}", Target("1"))


# --- 63: user functions ---------------------------------------------------------------------------


@pytest.fixture
def custom_func() -> Iterator[None]:
    yield
    with contextlib.suppress(ValueError):  # the test unregistered it already
        unregister_function("CustomFunc")


def test_63_register_and_unregister_functions(custom_func: None) -> None:
    with pytest.raises(ValueError, match="function 'CustomFunc' is not registered"):
        unregister_function("CustomFunc")

    def custom(*args: Any) -> str:
        return go_title(str(args[0]))

    register_function("CustomFunc", custom)
    assert expand("{{ CustomFunc .FQDN }}", Target("1", fqdn="slackware.it")) == "Slackware.It"
    assert expand("{{ CustomFunc .ID }}", Target("a1234a")) == "A1234a"
    with pytest.raises(ValueError, match="function 'CustomFunc' is already registered"):
        register_function("CustomFunc", custom)
    unregister_function("CustomFunc")
    with pytest.raises(ValueError, match="function 'CustomFunc' is not registered"):
        unregister_function("CustomFunc")
    # once unregistered, a template using it no longer parses
    with pytest.raises(ParameterError):
        expand("{{ CustomFunc .ID }}", Target("x"))


def test_63b_builtin_names_cannot_be_taken() -> None:
    for name in ("ToUpper", "ToLower", "Title", "StringVar", "IntVar"):
        with pytest.raises(ValueError, match=f"function '{name}' is already registered"):
            register_function(name, lambda s: s)


def test_63c_user_function_error_fails_the_expansion(custom_func: None) -> None:
    def custom(s: str) -> str:
        raise ValueError("no way")

    register_function("CustomFunc", custom)
    with pytest.raises(ParameterError, match="no way"):
        expand("{{ CustomFunc .ID }}", Target("x"))


# --- 64: parameters decoded from JSON -------------------------------------------------------------


def test_64_parameters_from_json() -> None:
    raw = json.loads(
        '{"str":["some string"],"num":[12],"numstr":["12"],'
        '"substruct":[{"name":"x","values":{"a":{"b":[1,2]}}}]}'
    )
    params = StepParameters.from_values(raw)
    assert str(params.get_one("str")) == "some string"
    assert params.get_int("num") == 12
    assert params.get_int("numstr") == 12  # JSON 12 and "12" both parse
    sub = json.loads(params.get_one("substruct").json())
    assert sub == {"name": "x", "values": {"a": {"b": [1, 2]}}}
    assert params.get_one("substruct").value == sub
    # String(): the decoded JSON string, else the raw JSON text
    assert str(params.get_one("num")) == "12"
    assert str(params.get_one("substruct")) == json.dumps(sub, separators=(",", ":"))


def test_64b_get_get_one_get_int_edges() -> None:
    params = StepParameters(
        {"empty": [], "two": ['"a"', '"b"'], "blank": ['""'], "word": ['"abc"']}
    )
    assert params.get("missing") == []
    assert params.get("empty") == []
    assert [str(p) for p in params.get("two")] == ["a", "b"]
    assert str(params.get_one("two")) == "a"
    for name in ("missing", "empty", "blank"):
        p = params.get_one(name)
        assert isinstance(p, Param)
        assert p.is_empty()
        with pytest.raises(ParameterError, match="expected an integer string, got an empty string"):
            params.get_int(name)
    with pytest.raises(ParameterError, match="cannot convert 'abc' to int"):
        params.get_int("word")
    with pytest.raises(ParameterError, match=r"cannot convert '1\.5' to int"):
        StepParameters({"f": ["1.5"]}).get_int("f")


# --- 65-70: LB, step variables in templates -------------------------------------------------------


@pytest.fixture
def store() -> VariableStore:
    s = VariableStore()
    s.add("1", "step1", "string_var", "Hello")
    s.add("1", "step1", "int_var", 42)
    s.add("1", "step1", "22string_var", "digits first")
    return s


def test_65_null_target(store: VariableStore) -> None:
    assert expand("dummy") == "dummy"
    assert expand("dummy", None, None) == "dummy"
    assert expand("dummy", None, store) == "dummy"


def test_66_string_and_int_vars(store: VariableStore) -> None:
    got = expand(
        '{{ StringVar "step1.string_var" }}: {{ IntVar "step1.int_var" }}', Target("1"), store
    )
    assert got == "Hello: 42"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("step1string_var", "not 'label.variable' format of 'step1string_var'"),  # 67
        ("string_var", "not 'label.variable' format of 'string_var'"),  # 68
        ("step1.22string_var", "invalid variable name"),  # 69
        ("1step.string_var", "invalid step label"),
        ("step1.missing", "didn't emit variable 'missing' yet for target '1'"),
        ("step9.string_var", "step 'step9' didn't emit any variables yet"),
    ],
)
def test_67_to_69_bad_variable_references(store: VariableStore, ref: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        expand(f'{{{{ StringVar "{ref}" }}}}', Target("1"), store)


def test_66b_type_mismatch(store: VariableStore) -> None:
    with pytest.raises(ParameterError, match="not an integer"):
        expand('{{ IntVar "step1.string_var" }}', Target("1"), store)
    with pytest.raises(ParameterError, match="not a string"):
        expand('{{ StringVar "step1.int_var" }}', Target("1"), store)


def test_66c_variables_need_a_target_and_a_store(store: VariableStore) -> None:
    """LB adds StringVar/IntVar only with both; without them, using one fails."""
    with pytest.raises(ParameterError):
        expand('{{ StringVar "step1.string_var" }}', None, store)
    with pytest.raises(ParameterError):
        expand('{{ StringVar "step1.string_var" }}', Target("1"), None)


def test_70_identifiers() -> None:
    assert is_identifier("Abc123_XYZ")
    for bad in ("", "1AAA", "a b", "a()+b"):
        assert not is_identifier(bad)


# --- 71-74: LB ExpandObject, as Param.expand on JSON values ---------------------------------------
# Python has no typed deep copy to express ExpandObject on Go structs; a JSON parameter value is
# the equivalent object: expanding it expands the string leaves and keeps the shape.


@pytest.fixture
def t42() -> Target:
    return Target("42", fqdn="42.contest.com")


@pytest.fixture
def out_store() -> VariableStore:
    s = VariableStore()
    s.add("42", "step", "out", "stepout")
    return s


def test_71_simple_object(t42: Target, out_store: VariableStore) -> None:
    """Per string leaf: a template with a string literal cannot sit inside a JSON object's text
    (the JSON escaping of its quotes is not template syntax), so each leaf is its own Param."""
    obj = {"a": "{{.ID}}", "b": "{{ToUpper .FQDN}}", "c": '{{.ID}}/{{StringVar "step.out"}}'}
    got = {k: Param.from_value(v).expand(t42, out_store) for k, v in obj.items()}
    assert got == {"a": "42", "b": "42.CONTEST.COM", "c": "42/stepout"}


def test_72_nested_object(t42: Target) -> None:
    obj = {
        "nested": {"s": "{{.ID}}", "fixed": ["{{.FQDN}}", "x", "{{ToUpper .FQDN}}"]},
        "slice": ["a-{{.ID}}", "b-{{.ID}}"],
        "ptr": "{{.ID}}",
        "ptr_struct": {"empty": [], "n": 7, "flag": True},
    }
    got = json.loads(Param.from_value(obj).expand(t42))
    assert got == {
        "nested": {"s": "42", "fixed": ["42.contest.com", "x", "42.CONTEST.COM"]},
        "slice": ["a-42", "b-42"],
        "ptr": "42",
        "ptr_struct": {"empty": [], "n": 7, "flag": True},
    }
    assert len(got["slice"]) == 2 and len(got["ptr_struct"]["empty"]) == 0


def test_73_untyped_json(t42: Target) -> None:
    m = json.loads(Param.from_value({"key1": "{{.ID}}", "key2": "{{.FQDN}}"}).expand(t42))
    assert m == {"key1": "42", "key2": "42.contest.com"}
    a = json.loads(Param.from_value(["{{.ID}}", "{{ToUpper .FQDN}}"]).expand(t42))
    assert a == ["42", "42.CONTEST.COM"]


def test_74_nulls_stay_null(t42: Target) -> None:
    got = json.loads(Param.from_value({"p": None, "i": None, "s": "{{.ID}}"}).expand(t42))
    assert got == {"p": None, "i": None, "s": "42"}
    assert Param.from_value(None).expand(t42) == "null"


# --- 75-76: the target's forms --------------------------------------------------------------------


def test_76_target_string_and_json() -> None:
    t = Target("123")
    assert str(t) == 'Target{ID: "123"}'
    assert t.to_json() == '{"ID":"123"}'

    t = Target("", fqdn="example.com")
    assert str(t) == 'Target{ID: "", FQDN: "example.com"}'
    assert t.to_json() == '{"ID":"","FQDN":"example.com"}'

    t = Target("123", primary_ipv4="1.2.3.4", primary_ipv6="::1")
    assert "1.2.3.4" in str(t) and "::1" in str(t)
    assert json.loads(t.to_json()) == {"ID": "123", "PrimaryIPv4": "1.2.3.4", "PrimaryIPv6": "::1"}

    t = Target("123", manager_state={"hello": "world"})
    assert '"hello"' in str(t) and '"world"' in str(t)
    assert t.to_json() == '{"ID":"123","TMS":{"hello":"world"}}'


def test_76b_target_json_round_trip() -> None:
    t = Target(
        "T",
        fqdn="h.example",
        primary_ipv4="10.0.0.1",
        primary_ipv6="::1",
        manager_state={"k": [1, 2]},
    )
    assert Target.from_json_obj(json.loads(t.to_json())) == t
    # Go decoding: keys case-insensitive
    assert Target.from_json_obj({"id": "x", "fqdn": "y"}) == Target("x", fqdn="y")
