"""Every error path: Go's message, the template name and the line:column of the fault.

Positions are ``line:col`` with a 1-based character column (Go prints no column for parse
errors, and a 0-based byte offset for execution errors).
"""

from __future__ import annotations

import pytest
from tpl_fixtures import FUNCS, data

from contest.templates import (
    TemplateError,
    TemplateExecError,
    TemplateSyntaxError,
    parse,
)

NOT_SUPPORTED = (
    "is not supported: a step parameter is a single template and cannot define or include others"
)

# template -> (line, col, detail)
PARSE_ERRORS: list[tuple[str, int, int, str]] = [
    ("{{.Str", 1, 7, "unclosed action"),
    ("{{.}}{{", 1, 8, "unclosed action"),
    ("{{ .X\n\n", 3, 1, "unclosed action started at t:1"),
    ("{{Foo}}", 1, 3, 'function "Foo" not defined'),
    ("{{ Foo }}", 1, 4, 'function "Foo" not defined'),
    ("{{ é }}", 1, 4, 'function "é" not defined'),
    ("{{$x}}", 1, 3, 'undefined variable "$x"'),
    ("{{with $x := 1}}{{end}}{{$x}}", 1, 26, 'undefined variable "$x"'),
    ("{{if .X}}{{$y := 1}}{{end}}{{$y}}", 1, 30, 'undefined variable "$y"'),
    ("{{end}}", 1, 6, "unexpected {{end}}"),
    ("{{else}}", 1, 7, "unexpected {{else}}"),
    ("{{else if}}", 1, 8, "unexpected {{else}}"),
    ("{{range .}}{{end}}{{end}}", 1, 24, "unexpected {{end}}"),
    ("{{if .X}}", 1, 10, "unexpected EOF"),
    ("a\n{{if .X}}b", 2, 11, "unexpected EOF"),
    ("{{if 1}}x{{else}}y", 1, 19, "unexpected EOF"),
    ("{{range .X}}{{else}}{{else}}{{end}}", 1, 27, "expected end; found {{else}}"),
    ("{{with 1}}{{else if 1}}{{end}}{{end}}", 1, 18, "unexpected <if> in input"),
    ("{{break}}", 1, 8, "{{break}} outside {{range}}"),
    ("{{continue}}", 1, 11, "{{continue}} outside {{range}}"),
    ("{{range .}}{{else}}{{break}}{{end}}", 1, 27, "{{break}} outside {{range}}"),
    ("{{range .}}{{break 1}}{{end}}", 1, 20, 'unexpected "1" in {{break}}'),
    ("{{}}", 1, 3, "missing value for command"),
    ("{{ }}", 1, 4, "missing value for command"),
    ("{{- }}", 1, 5, "missing value for command"),
    ("{{if}}{{end}}", 1, 5, "missing value for if"),
    ("{{range}}{{end}}", 1, 8, "missing value for range"),
    ("{{if 1}}{{else if}}{{end}}", 1, 18, "missing value for if"),
    ("{{.X | 3}}", 1, 9, "non executable command in pipeline stage 2"),
    ('{{.X | "a" | nil}}', 1, 17, "non executable command in pipeline stage 2"),
    ("{{3x}}", 1, 3, 'bad number syntax: "3x"'),
    ("{{1.X}}", 1, 3, 'bad number syntax: "1.X"'),
    ("{{-}}", 1, 3, 'illegal number syntax: "-"'),
    ("{{0x}}", 1, 3, 'illegal number syntax: "0x"'),
    ("{{1e400}}", 1, 3, 'illegal number syntax: "1e400"'),
    ("{{99999999999999999999}}", 1, 3, "integer overflow: 99999999999999999999"),
    ("{{08}}", 1, 3, "integer overflow: 08"),
    ("{{1.2.3}}", 1, 6, 'unexpected ".3" in operand'),
    ('{{"abc}}', 1, 3, "unterminated quoted string"),
    ("{{'a}}", 1, 3, "unterminated character constant"),
    ("{{`abc}}", 1, 3, "unterminated raw quoted string"),
    ('{{"\\q"}}', 1, 3, "invalid syntax"),
    ('{{"\\xZZ"}}', 1, 3, "invalid syntax"),
    ('{{"\\ud800"}}', 1, 3, "invalid syntax"),
    ("{{''}}", 1, 3, "invalid syntax"),
    ("{{'ab'}}", 1, 3, "malformed character constant: 'ab'"),
    ("{{/* x }}", 1, 3, "unclosed comment"),
    ("{{/* x */ }}", 1, 3, "comment ends before closing delimiter"),
    ("{{(1}}", 1, 5, "unclosed left paren"),
    ("{{.X (1}}", 1, 8, "unclosed left paren"),
    ("{{1)}}", 1, 4, "unexpected right paren"),
    ("{{ # }}", 1, 4, 'unexpected "#" in command'),
    ("{{ .X # }}", 1, 7, 'unexpected "#" in operand'),
    ("{{.X :=}}", 1, 6, 'unexpected ":=" in operand'),
    ("{{.X.}}", 1, 5, "unexpected <.> in operand"),
    ('{{"a".X}}', 1, 8, 'unexpected . after term "\\"a\\""'),
    ("{{nil.X}}", 1, 8, 'unexpected . after term "nil"'),
    ("{{:}}", 1, 3, "expected :="),
    ("{{ \x01 }}", 1, 4, "unrecognized character in action: U+0001"),
    ("{{.X$}}", 1, 3, "bad character U+0024 '$'"),
    ("{{$x, $y := 1}}", 1, 5, "too many declarations in command"),
    ("{{range $a, $b, $c := .}}{{end}}", 1, 15, "too many declarations in range"),
    ("{{range $a, 1 := .}}{{end}}", 1, 13, "range can only initialize variables"),
    ("{{" + "(" * 70 + "1" + ")" * 70 + "}}", 1, 67, "max depth exceeded"),
    ('{{define "x"}}{{end}}', 1, 3, "{{define}} " + NOT_SUPPORTED),
    ('{{template "x"}}', 1, 3, "{{template}} " + NOT_SUPPORTED),
    ('{{block "x" .}}{{end}}', 1, 3, "{{block}} " + NOT_SUPPORTED),
    ("ok\nok {{ if .X }}\n{{ Nope }}{{end}}", 3, 4, 'function "Nope" not defined'),
]


@pytest.mark.parametrize(("text", "line", "col", "detail"), PARSE_ERRORS)
def test_parse_errors(text: str, line: int, col: int, detail: str) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse(text, name="t", funcs=FUNCS)
    err = info.value
    assert str(err) == f"template: t:{line}:{col}: {detail}"
    assert (err.name, err.line, err.col, err.detail) == ("t", line, col, detail)
    assert isinstance(err, TemplateError)


def test_deep_nesting_of_blocks_is_refused() -> None:
    text = "{{if 1}}" * 70 + "{{end}}" * 70
    with pytest.raises(TemplateSyntaxError, match="max depth exceeded"):
        parse(text, name="t")
    ok = "{{if 1}}" * 60 + "x" + "{{end}}" * 60
    assert parse(ok, name="t").execute(None, {}) == "x"


def test_accepted_oddities() -> None:
    """Go accepts these; so do we."""
    assert parse("{{.X |}}", name="t").execute({"X": 1}, {}) == "1"
    assert parse("{{((((1))))}}", name="t").execute(None, {}) == "1"


# template -> (line, col, context, detail); data is tpl_fixtures.data()
EXEC_ERRORS: list[tuple[str, int, int, str, str]] = [
    # fields
    ("{{.Host.Foo}}", 1, 8, ".Host.Foo", "can't evaluate field Foo in type *target.Target"),
    ("{{.Str.Foo}}", 1, 7, ".Str.Foo", "can't evaluate field Foo in type string"),
    ("{{.Nil.Foo}}", 1, 7, ".Nil.Foo", "nil pointer evaluating interface {}.Foo"),
    ("{{.Int 1}}", 1, 3, ".Int", "Int is not a method but has arguments"),
    ('{{"x" | .Str}}', 1, 9, ".Str", "Str is not a method but has arguments"),
    ("{{.Host.ID 1}}", 1, 8, ".Host.ID", "ID has arguments but cannot be invoked as function"),
    ('{{"x" | .Host.ID}}', 1, 14, ".Host.ID", "ID has arguments but cannot be invoked as function"),
    (
        "{{with .Host}}{{.Nope}}{{end}}",
        1,
        17,
        ".Nope",
        "can't evaluate field Nope in type *target.Target",
    ),
    ("{{if .Str.X}}{{end}}", 1, 10, ".Str.X", "can't evaluate field X in type string"),
    ("{{range .List}}{{.X}}{{end}}", 1, 18, ".X", "can't evaluate field X in type string"),
    (
        "{{(index .Nest 1).b.c}}",
        1,
        18,
        "(index .Nest 1).b.c",
        "nil pointer evaluating interface {}.c",
    ),
    (
        '{{ .Host.Foo | printf "%s" }}',
        1,
        9,
        ".Host.Foo",
        "can't evaluate field Foo in type *target.Target",
    ),
    ("line1\n{{.Str.X}}", 2, 7, ".Str.X", "can't evaluate field X in type string"),
    # index, slice, len
    ("{{index .List 5}}", 1, 3, "index .List 5", "error calling index: index out of range: 5"),
    ("{{index .List -1}}", 1, 3, "index .List -1", "error calling index: index out of range: -1"),
    (
        '{{index .List "a"}}',
        1,
        3,
        'index .List "a"',
        "error calling index: cannot index slice/array with type string",
    ),
    (
        "{{index .List nil}}",
        1,
        3,
        "index .List nil",
        "error calling index: cannot index slice/array with nil",
    ),
    (
        "{{index .Map 1}}",
        1,
        3,
        "index .Map 1",
        "error calling index: value has type int; should be string",
    ),
    (
        "{{index .Map nil}}",
        1,
        3,
        "index .Map nil",
        "error calling index: value is nil; should be of type string",
    ),
    ("{{index .Int 1}}", 1, 3, "index .Int 1", "error calling index: can't index item of type int"),
    ("{{index nil 1}}", 1, 3, "index nil 1", "error calling index: index of untyped nil"),
    ("{{index .Mixed 1 0}}", 1, 3, "index .Mixed 1 0", "error calling index: index of nil pointer"),
    (
        "ab\ncd {{ index .List 9 }}",
        2,
        7,
        "index .List 9",
        "error calling index: index out of range: 9",
    ),
    (
        "{{slice .Str 3 1}}",
        1,
        3,
        "slice .Str 3 1",
        "error calling slice: invalid slice index: 3 > 1",
    ),
    (
        "{{slice .List 0 2 1}}",
        1,
        3,
        "slice .List 0 2 1",
        "error calling slice: invalid slice index: 2 > 1",
    ),
    (
        "{{slice .Str 1 2 3}}",
        1,
        3,
        "slice .Str 1 2 3",
        "error calling slice: cannot 3-index slice a string",
    ),
    ("{{slice .Int 1}}", 1, 3, "slice .Int 1", "error calling slice: can't slice item of type int"),
    ("{{slice .List 1 9}}", 1, 3, "slice .List 1 9", "error calling slice: index out of range: 9"),
    (
        "{{slice .List 1 2 3 4}}",
        1,
        3,
        "slice .List 1 2 3 4",
        "error calling slice: too many slice indexes: 4",
    ),
    ("{{slice nil}}", 1, 3, "slice nil", "error calling slice: slice of untyped nil"),
    ("{{len .Int}}", 1, 3, "len .Int", "error calling len: len of type int"),
    ("{{len .Host}}", 1, 3, "len .Host", "error calling len: len of type *target.Target"),
    ("{{len .Nil}}", 1, 3, "len .Nil", "error calling len: len of nil pointer"),
    (
        "{{len .Missing}}",
        1,
        3,
        "len .Missing",
        "error calling len: reflect: call of reflect.Value.Type on zero Value",
    ),
    # comparisons
    ('{{eq 1 "a"}}', 1, 3, 'eq 1 "a"', "error calling eq: incompatible types for comparison"),
    ("{{eq 1 1.0}}", 1, 3, "eq 1 1.0", "error calling eq: incompatible types for comparison"),
    ("{{eq .List 1}}", 1, 3, "eq .List 1", "error calling eq: incompatible types for comparison"),
    ("{{eq 1 2 .Str}}", 1, 3, "eq 1 2 .Str", "error calling eq: incompatible types for comparison"),
    (
        "{{eq .List .List}}",
        1,
        3,
        "eq .List .List",
        "error calling eq: non-comparable type [a b c]: []interface {}",
    ),
    (
        "{{eq .Map .List}}",
        1,
        3,
        "eq .Map .List",
        "error calling eq: non-comparable types map[a:%!s(int=1) b:%!s(int=2) c:%!s(int=3)]: "
        "map[string]interface {}, []interface {}: [a b c]",
    ),
    ("{{eq 1}}", 1, 3, "eq 1", "error calling eq: missing argument for comparison"),
    ("{{lt true false}}", 1, 3, "lt true false", "error calling lt: invalid type for comparison"),
    ("{{lt .List .List}}", 1, 3, "lt .List .List", "error calling lt: invalid type for comparison"),
    ("{{lt 1i 2i}}", 1, 3, "lt 1i 2i", "error calling lt: invalid type for comparison"),
    ('{{lt 1 "a"}}', 1, 3, 'lt 1 "a"', "error calling lt: incompatible types for comparison"),
    ('{{gt 1 "a"}}', 1, 3, 'gt 1 "a"', "error calling gt: incompatible types for comparison"),
    (
        "{{ne .Map .Map}}",
        1,
        3,
        "ne .Map .Map",
        "error calling ne: non-comparable type map[a:%!s(int=1) b:%!s(int=2) c:%!s(int=3)]: "
        "map[string]interface {}",
    ),
    # argument counts and types
    ("{{ne 1}}", 1, 3, "ne", "wrong number of args for ne: want 2 got 1"),
    ("{{lt 1 2 3}}", 1, 3, "lt", "wrong number of args for lt: want 2 got 3"),
    ("{{and}}", 1, 3, "and", "wrong number of args for and: want at least 1 got 0"),
    ("{{or}}", 1, 3, "or", "wrong number of args for or: want at least 1 got 0"),
    ("{{not}}", 1, 3, "not", "wrong number of args for not: want 1 got 0"),
    ("{{1 | not 2}}", 1, 7, "not", "wrong number of args for not: want 1 got 2"),
    ("{{len}}", 1, 3, "len", "wrong number of args for len: want 1 got 0"),
    ("{{index}}", 1, 3, "index", "wrong number of args for index: want at least 1 got 0"),
    ("{{printf}}", 1, 3, "printf", "wrong number of args for printf: want at least 1 got 0"),
    ("{{call}}", 1, 3, "call", "wrong number of args for call: want at least 1 got 0"),
    ("{{printf 3}}", 1, 10, "3", "expected string; found 3"),
    ("{{printf true}}", 1, 10, "true", "expected string; found true"),
    ("{{printf nil}}", 1, 10, "nil", "cannot assign nil to string"),
    ("{{printf .Int}}", 1, 10, ".Int", "wrong type for value; expected string; got int"),
    ("{{printf .Nil}}", 1, 10, ".Nil", "wrong type for value; expected string; got interface {}"),
    ("{{printf .Missing}}", 1, 10, ".Missing", "invalid value; expected string"),
    ("{{3 | printf}}", 1, 7, "printf", "wrong type for value; expected string; got int"),
    # commands that are not functions
    ("{{nil}}", 1, 3, "nil", "nil is not a command"),
    ("{{1 2}}", 1, 3, "1", "can't give argument to non-function 1"),
    ('{{"x" 2}}', 1, 3, '"x"', 'can\'t give argument to non-function "x"'),
    ("{{. 1}}", 1, 3, ".", "can't give argument to non-function ."),
    ('{{"x" | (1)}}', 1, 9, "(1)", "can't give argument to non-function 1"),
    ("{{$x := 1}}{{2 | $x}}", 1, 18, "$x", "can't give argument to non-function $x"),
    ("{{9223372036854775808}}", 1, 3, "9223372036854775808", "9223372036854775808 overflows int"),
    (
        '{{printf "%d" 18446744073709551615}}',
        1,
        15,
        "18446744073709551615",
        "18446744073709551615 overflows int",
    ),
    ("{{.Fn}}", 1, 3, "{{.Fn}}", "can't print {{.Fn}} of type func(...) interface {}"),
    # call
    ("{{call .Str}}", 1, 3, "call .Str", "error calling call: non-function .Str of type string"),
    ("{{call .Nil}}", 1, 3, "call .Nil", "error calling call: call of nil"),
    (
        "{{call .Fn 1}}",
        1,
        3,
        "call .Fn 1",
        "error calling call: wrong number of args for .Fn: got 1 want 2",
    ),
    # user functions
    ("{{Fail}}", 1, 3, "Fail", "error calling Fail: boom"),
    ("{{Fail 1 2}}", 1, 3, "Fail 1 2", "error calling Fail: boom"),
    ('{{printf "%s" (Fail)}}', 1, 16, "Fail", "error calling Fail: boom"),
    ('{{ Fail | printf "%s" }}', 1, 4, "Fail", "error calling Fail: boom"),
    ("{{len Fail}}", 1, 7, "Fail", "error calling Fail: boom"),
    ("{{ToUpper 1 2}}", 1, 3, "ToUpper", "wrong number of args for ToUpper: want 1 got 2"),
    ("{{Add 1}}", 1, 3, "Add", "wrong number of args for Add: want 2 got 1"),
    # range and variables
    ("{{range .Str}}{{end}}", 1, 9, ".Str", "range can't iterate over hello"),
    ("{{range 1.5}}{{end}}", 1, 9, "1.5", "range can't iterate over 1.5"),
    ("{{range true}}{{end}}", 1, 9, "true", "range can't iterate over true"),
    (
        "{{range $i, $e := 3}}{{end}}",
        1,
        19,
        "3",
        "can't use 3 to iterate over more than one variable",
    ),
    ("{{ $x = 1 }}", 1, 9, "1", "undefined variable: $x"),
]


@pytest.mark.parametrize(("text", "line", "col", "context", "detail"), EXEC_ERRORS)
def test_exec_errors(text: str, line: int, col: int, context: str, detail: str) -> None:
    tpl = parse(text, name="t", funcs=FUNCS)
    with pytest.raises(TemplateExecError) as info:
        tpl.execute(data(), FUNCS)
    err = info.value
    assert str(err) == f'template: t:{line}:{col}: executing "t" at <{context}>: {detail}'
    assert (err.name, err.line, err.col, err.detail) == ("t", line, col, detail)


def test_variable_declared_only_in_the_branch_not_taken() -> None:
    """Go checks variables lexically at parse time and dynamically at run time."""
    tpl = parse("{{if .False}}{{$v := 1}}{{else}}{{$v}}{{end}}", name="t")
    with pytest.raises(TemplateExecError, match=r"t:1:35: .* at <\$v>: undefined variable: \$v"):
        tpl.execute(data(), {})
    assert parse("{{if .True}}{{$v := 1}}{{else}}{{$v}}{{end}}", name="t").execute(data(), {}) == ""


def test_function_known_at_parse_but_missing_at_execution() -> None:
    tpl = parse("x {{Foo}}", name="args", funcs={"Foo"})
    with pytest.raises(TemplateExecError) as info:
        tpl.execute(None, {})
    assert str(info.value) == (
        'template: args:1:5: executing "args" at <Foo>: "Foo" is not a defined function'
    )


def test_name_is_quoted_like_go() -> None:
    tpl = parse("{{.X.Y}}", name='we"ird')
    with pytest.raises(TemplateExecError) as info:
        tpl.execute({"X": 1}, {})
    assert str(info.value).startswith('template: we"ird:1:5: executing "we\\"ird" at <.X.Y>:')


def test_user_function_exception_is_chained() -> None:
    def fail() -> str:
        raise KeyError("k")

    tpl = parse("{{F}}", name="t", funcs={"F"})
    with pytest.raises(TemplateExecError, match="error calling F: 'k'") as info:
        tpl.execute(None, {"F": fail})
    assert isinstance(info.value.__cause__, KeyError)


def test_default_name_and_position_on_later_lines() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse("a\nb\n  c {{ .X ) }}")
    assert str(info.value) == "template: :3:11: unexpected right paren"
    assert (info.value.line, info.value.col) == (3, 11)
