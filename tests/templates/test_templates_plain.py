"""A template of text and ``{{ .Name }}`` actions only (a step's ``ssh root@{{ .FQDN }}``)
is expanded without the evaluator when every field it reads is a plain string; whatever the
dot, it gives what the evaluator gives, the same text or the same error."""

from __future__ import annotations

from typing import Any

import pytest

from contest.params import Param
from contest.target import Target
from contest.templates import MAX_OUTPUT, Template, TemplateExecError, parse


class _Raising:
    __template_fields__ = {"ID": "ident"}

    @property
    def ident(self) -> str:
        raise RuntimeError("no ID here")


class _Str(str):
    """A string of another type: Go's printing, not the plain path."""


ROOTS: list[Any] = [
    Target("T1", fqdn="host.example.com"),
    Target("T2"),  # FQDN empty
    {"ID": "a", "FQDN": "b"},
    {"ID": None, "FQDN": "b"},  # nil: Go prints <nil>
    {"ID": 7, "FQDN": 1.5},  # numbers: Go's printing
    {"FQDN": "only"},  # a missing key: <no value>
    {"ID": _Str("sub"), "FQDN": "x"},
    {"ID": "x" * (MAX_OUTPUT // 2 + 1), "FQDN": "y" * (MAX_OUTPUT // 2 + 1)},  # over the limit
    None,
    "a string dot",
    42,
    _Raising(),
]
TEXTS = [
    "{{ .ID }}",
    "hello {{ .ID }}",
    "ssh root@{{ .FQDN }} -- run {{ .ID }}{{ .ID }}!",
    "{{- .ID -}} trimmed",
]


def _general(tpl: Template, root: Any) -> str:
    """The evaluator's answer: the same template with no fast path."""
    slow = Template(tpl.name, tpl.source, tpl._run, None)
    return slow.execute(root, {})


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("root", ROOTS, ids=lambda r: type(r).__name__)
def test_the_plain_path_gives_what_the_evaluator_gives(text: str, root: Any) -> None:
    tpl = parse(text, name="p")
    assert tpl.calls_nothing
    try:
        expected = _general(tpl, root)
    except TemplateExecError as e:
        with pytest.raises(TemplateExecError) as got:
            tpl.execute(root, {})
        assert str(got.value) == str(e)
    else:
        assert tpl.execute(root, {}) == expected


@pytest.mark.parametrize(
    "text",
    ["{{ .A.B }}", "{{ ToUpper .ID }}", "{{ .ID | printf }}", "{{ $x := .ID }}{{ $x }}", "{{ . }}"],
)
def test_anything_else_is_not_plain(text: str) -> None:
    assert not parse(text, name="p", funcs={"ToUpper"}).calls_nothing


def test_a_step_parameter_uses_it_and_still_reports_errors_by_field() -> None:
    assert Param("ssh {{ .FQDN }}", "args").expand(Target("T1", fqdn="h")) == "ssh h"
    with pytest.raises(Exception, match="can't evaluate field Nope"):
        Param("{{ .Nope }}", "args").expand(Target("T1"))
