"""The sandbox: what a template can never reach, and the limits that bound its work."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import pytest
from tpl_fixtures import FUNCS, Host, data, render

from contest.templates import (
    MAX_ITERATIONS,
    MAX_OUTPUT,
    TemplateExecError,
    TemplateSyntaxError,
    parse,
)


@pytest.mark.parametrize(
    ("text", "root", "detail"),
    [
        ("{{.__class__}}", "str", "can't evaluate field __class__ in type string"),
        ("{{.__class__}}", 1, "can't evaluate field __class__ in type int"),
        ("{{.Str.__len__}}", None, "can't evaluate field __len__ in type string"),
        ("{{.Host.__dict__}}", None, "can't evaluate field __dict__ in type *target.Target"),
        ("{{.Host.__class__}}", None, "can't evaluate field __class__ in type *target.Target"),
        ("{{.Host.secret}}", None, "can't evaluate field secret in type *target.Target"),
        ("{{.Host.id}}", None, "can't evaluate field id in type *target.Target"),
        ("{{.Host.method}}", None, "can't evaluate field method in type *target.Target"),
        (
            "{{.Host.__template_fields__}}",
            None,
            "can't evaluate field __template_fields__ in type *target.Target",
        ),
        ("{{.Obj.x}}", None, "can't evaluate field x in type Undeclared"),
        ("{{.Obj.m}}", None, "can't evaluate field m in type Undeclared"),
        (
            "{{.Fn.__globals__}}",
            None,
            "can't evaluate field __globals__ in type func(...) interface {}",
        ),
        ("{{.Fn.__code__}}", None, "can't evaluate field __code__ in type func(...) interface {}"),
        ("{{.Cls.__init__}}", None, "can't evaluate field __init__ in type type"),
        ("{{.List.append}}", None, "can't evaluate field append in type []interface {}"),
        ("{{.Int.real}}", None, "can't evaluate field real in type int"),
    ],
)
def test_no_attribute_outside_the_declared_fields(text: str, root: Any, detail: str) -> None:
    with pytest.raises(TemplateExecError) as info:
        render(text, data() if root is None else root)
    assert info.value.detail == detail


def test_dict_keys_are_keys_not_attributes() -> None:
    assert render("{{.__class__}} {{.keys}} {{.items}}", {"x": 1}) == (
        "<no value> <no value> <no value>"
    )
    assert render("{{.keys}}", {"keys": "k"}) == "k"


def test_methods_are_never_called() -> None:
    # "M" is declared but maps to a method: reading it is refused, so it can never be called
    method_error = "M is a method of type *target.Target: calling methods is not supported"
    for text in ("{{.Host.M}}", "{{call .Host.M}}", '{{printf "%v" .Host.M}}', "{{.Host.M 1}}"):
        with pytest.raises(TemplateExecError) as info:
            render(text, data())
        assert info.value.detail in (
            method_error,
            "M has arguments but cannot be invoked as function",
        )
    with pytest.raises(TemplateExecError, match=r"non-function \.Cls of type type"):
        render("{{call .Cls}}", data())

    class WithBuiltinMethod:
        __template_fields__: ClassVar[dict[str, str]] = {"U": "upper"}
        upper = "abc".upper  # a builtin bound method stored on the class

    with pytest.raises(TemplateExecError, match="calling methods is not supported"):
        render("{{.U}}", WithBuiltinMethod())


def test_instance_cannot_declare_its_own_fields() -> None:
    class Plain:
        def __init__(self) -> None:
            self.x = 1
            self.__template_fields__ = {"X": "x"}

    with pytest.raises(TemplateExecError, match="can't evaluate field X"):
        render("{{.X}}", Plain())


def test_only_declared_attribute_names_are_ever_read() -> None:
    class Spy:
        __template_fields__: ClassVar[dict[str, str]] = {"A": "a"}

        def __init__(self) -> None:
            object.__setattr__(self, "seen", [])
            object.__setattr__(self, "a", "value")

        def __getattribute__(self, name: str) -> Any:
            if name != "seen":
                object.__getattribute__(self, "seen").append(name)
            return object.__getattribute__(self, name)

        def __str__(self) -> str:
            return "spy"

    spy = Spy()
    assert render("{{.A}} {{.}} {{if .}}t{{end}} {{with .A}}{{.}}{{end}}", spy) == (
        "value spy t value"
    )
    for text in ("{{.B}}", "{{.__dict__}}", "{{.seen}}", "{{.a}}", "{{len .}}", "{{index . 1}}"):
        with pytest.raises(TemplateExecError):
            render(text, spy)
    assert set(object.__getattribute__(spy, "seen")) <= {"a", "__class__"}


def test_no_python_evaluation() -> None:
    # function names are checked against the known ones: no Python builtin is reachable
    for name in ("eval", "exec", "__import__", "open", "getattr", "compile"):
        with pytest.raises(TemplateSyntaxError, match=f'function "{name}" not defined'):
            parse(f'{{{{ {name} "1" }}}}', name="t", funcs=FUNCS)
    # strings are only ever data
    assert render("{{\"__import__('os').system('x')\"}}") == "__import__('os').system('x')"


def test_call_accepts_plain_functions_only() -> None:
    def plain(x: int) -> int:
        return x * 2

    assert render("{{call .F 21}}", {"F": plain}) == "42"
    with pytest.raises(TemplateExecError, match=r"non-function \.F of type"):
        render("{{call .F}}", {"F": "abc".upper})  # a bound method
    with pytest.raises(TemplateExecError, match=r"non-function \.F of type"):
        render("{{call .F}}", {"F": Host("1", "h").method})


def test_output_is_bounded() -> None:
    with pytest.raises(TemplateExecError, match=f"output exceeds the limit of {MAX_OUTPUT}"):
        render('{{range 2000}}{{printf "%1000s" "x"}}{{end}}')
    big_text = "x" * 600_000
    with pytest.raises(TemplateExecError, match="output exceeds"):
        render(big_text + "{{.}}" + big_text, "y")
    assert len(render('{{range 1000}}{{printf "%1000s" "x"}}{{end}}')) == 1_000_000


def test_iterations_are_bounded() -> None:
    start = time.monotonic()
    with pytest.raises(TemplateExecError, match=f"more than {MAX_ITERATIONS} iterations"):
        render("{{range 1000000000}}{{end}}")
    with pytest.raises(TemplateExecError, match="iterations"):
        render("{{range 1000}}{{range 1000}}{{end}}{{end}}")
    assert time.monotonic() - start < 5


def test_string_building_is_bounded() -> None:
    start = time.monotonic()
    with pytest.raises(TemplateExecError, match="functions built more than"):
        render('{{range 100}}{{$x := printf "%1000000s" "x"}}{{end}}')
    with pytest.raises(TemplateExecError, match="formatted output exceeds"):
        render('{{printf "%1000000v" .}}', list(range(100)))
    with pytest.raises(TemplateExecError, match="functions built more than"):
        render("{{range 10000}}{{$x := print $ $ $ $}}{{end}}", "y" * 1000)
    assert time.monotonic() - start < 5


def test_width_beyond_go_limit_is_refused_by_fmt() -> None:
    # Go's fmt stops reading a width once it passes 1e6 (the verb is then missing, as there)
    assert render('{{printf "%100000000d" 1}}') == "%!(NOVERB)%!(EXTRA int=1)"


def test_self_referencing_data() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TemplateExecError, match="nests too deeply"):
        render("{{.}}", loop)
    d: dict[str, Any] = {}
    d["d"] = d
    assert render("{{len .d.d.d.d.d.d}}", d) == "1"  # walking the cycle is fine...
    with pytest.raises(TemplateExecError, match="nests too deeply"):
        render('{{printf "%v" .}}', d)  # ...printing the cycle is refused


def test_failing_property_is_reported_not_raised() -> None:
    class Broken:
        __template_fields__: ClassVar[dict[str, str]] = {"P": "p"}

        @property
        def p(self) -> str:
            raise RuntimeError("nope")

    with pytest.raises(TemplateExecError, match="error reading field P: nope"):
        render("{{.P}}", Broken())


def test_failing_str_is_reported_inline_like_a_go_panic() -> None:
    class BadStr:
        __template_fields__: ClassVar[dict[str, str]] = {}

        def __str__(self) -> str:
            raise RuntimeError("bad")

    assert render("{{.}}", BadStr()) == "%!v(PANIC=String method: bad)"


def test_huge_integers_from_data_are_refused_not_crashing() -> None:
    with pytest.raises(TemplateExecError, match="integer too large to print"):
        render("{{.}}", 10**5000)
    with pytest.raises(TemplateExecError, match="error calling printf: integer too large"):
        render('{{printf "%d" .}}', 10**5000)
    assert render('{{printf "%x" .}}', 2**20000).startswith("1000")
