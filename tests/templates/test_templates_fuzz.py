"""Fuzzing: whatever the text, parsing and executing raise TemplateError or succeed, quickly.

A step parameter is user input; a crash (any other exception) or a hang in the template engine
would take a step, or the server, down with it.
"""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tpl_fixtures import FUNCS, data

from contest.templates import TemplateError, TemplateExecError, TemplateSyntaxError, parse

TOKENS = [
    "{{", "}}", "{{- ", " -}}", "{{/*", "*/}}", " ", "\n", "\t",
    ".", ".Str", ".List", ".Map", ".Host", ".ID", ".FQDN", ".Nil", ".Missing", ".Int", ".Fn",
    ".Nested", ".Inner", ".Mixed", "$", "$x", "$y", "$.Str", ":=", "=", "|", "(", ")", ",",
    "if", "else", "end", "range", "with", "break", "continue", "define", "template", "block",
    "nil", "true", "false", '"s"', '"%d"', '"%v %s %5.2f %[2]q %*d"', '"%x %!"', "`raw`", "'c'",
    "'\\n'", "1", "-1", "0", "0x1F", "1.5", "1e3", "2i", "1+2i", "9223372036854775808", "3",
    "printf", "print", "println", "len", "index", "slice", "eq", "ne", "lt", "le", "gt", "ge",
    "and", "or", "not", "html", "js", "urlquery", "call", "ToUpper", "Add", "Echo", "Fail",
    "Nothing", "/*", "*/", "#", "'", '"', "`", "-", "}", "{", "é", "\x00", "\\", "%", "x",
]  # fmt: skip

FUZZ = settings(
    max_examples=200,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


def _exercise(text: str, root: Any) -> None:
    start = time.monotonic()
    try:
        tpl = parse(text, name="fuzz", funcs=FUNCS)
    except TemplateSyntaxError as exc:
        _check_error(exc, text)
        return
    try:
        out = tpl.execute(root, FUNCS)
    except TemplateExecError as exc:
        _check_error(exc, text)
    else:
        assert isinstance(out, str)
        if "{{" not in text:
            assert out == text
    assert time.monotonic() - start < 2


def _check_error(exc: TemplateError, text: str) -> None:
    assert isinstance(exc, TemplateError)
    assert str(exc).startswith("template: fuzz:")
    assert exc.line >= 1 and exc.col >= 1
    assert exc.line <= text.count("\n") + 1
    assert "internal" not in str(exc)


@FUZZ
@given(st.text(max_size=120))
def test_random_text(text: str) -> None:
    _exercise(text, data())


@FUZZ
@given(st.text(alphabet="{}()|$.:=-\"'` \n/*abc123", max_size=60))
def test_random_punctuation(text: str) -> None:
    _exercise(text, data())


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup(tokens: list[str]) -> None:
    _exercise("".join(tokens), data())


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from([None, "s", 3, [1], {}]))
def test_token_soup_inside_one_action(tokens: list[str], root: Any) -> None:
    _exercise("{{" + " ".join(tokens) + "}}", root)


_operand = st.sampled_from(
    [".Str", ".Int", ".List", ".Map", ".Nil", ".Missing", ".Host.ID", "$", "1", '"a"', "nil", "1.5"]
)
_func = st.sampled_from(
    ["printf \"%v\"", "print", "len", "index", "slice", "eq", "lt", "and", "or", "not", "html",
     "js", "urlquery", "ToUpper", "Echo", "Add"]
)  # fmt: skip


@st.composite
def _pipeline(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        fn = draw(_func)
        args = [
            draw(_operand)
            if depth > 1 or not draw(st.booleans())
            else f"({draw(_pipeline(depth + 1))})"
            for _ in range(draw(st.integers(0, 3)))
        ]
        parts.append(" ".join([fn, *args]))
    return " | ".join(parts)


@settings(FUZZ, max_examples=100)
@given(_pipeline(), st.sampled_from(["if", "with", "range"]))
def test_well_formed_pipelines(pipe: str, control: str) -> None:
    _exercise("{{" + pipe + "}}", data())
    _exercise("{{" + control + " " + pipe + "}}x{{.}}{{else}}y{{end}}", data())
