"""Golden corpus: template, data, and the output Go's text/template gives for them.

The expected outputs were written from Go's documented and observed behaviour (text/template,
fmt, strconv); each is what ``tmpl.Execute(w, data)`` prints in Go for a
``map[string]interface{}`` holding the same values as ``tpl_fixtures.data()``.
"""

from __future__ import annotations

from typing import Any

import pytest
from tpl_fixtures import Host, data, render

# (template, expected) with tpl_fixtures.data() as the dot
CASES: list[tuple[str, str]] = [
    # --- text and simple actions
    ("hello", "hello"),
    ("", ""),
    ("{{.Str}}", "hello"),
    ("a{{.Str}}b{{.Str}}c", "ahellobhelloc"),
    ("{{.Int}} {{.Neg}}", "42 -7"),
    ("{{.Float}} {{.Big}} {{.FZero}} {{.NegZero}}", "1.5 1e+06 0 -0"),
    ("{{.True}} {{.False}}", "true false"),
    ("{{.Nil}}", "<no value>"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Missing.Deeper.Still}}", "<no value>"),
    ("{{.List}} {{.Ints}}", "[a b c] [1 2 3]"),
    ("{{.Mixed}}", "[1 <nil> s]"),
    ("{{.Matrix}}", "[[1 2] [3 4]]"),
    ("{{.Map}}", "map[a:1 b:2 c:3]"),
    ("{{.EmptyList}} {{.EmptyMap}} [{{.Empty}}]", "[] map[] []"),
    ("{{.Nested.Inner.Deep}}", "x"),
    ("{{.Nested}}", "map[Inner:map[Deep:x]]"),
    ("{{.Nest}}", "[map[a:[1 2]] map[b:<nil>]]"),
    ("{{.Inf}} {{.NInf}} {{.NaN}}", "+Inf -Inf NaN"),
    ("{{.Host.ID}} {{.Host.FQDN}} {{.Host.Tags}}", "T1 host.example.com [a b]"),
    ("{{.Host.IP}}", "<nil>"),  # a nil field of a struct (net.IP's String() gives <nil>)
    ("{{.Host}}", "Host(T1)"),  # a declared object prints as a fmt.Stringer
    ("{{.}}", "__skip__"),  # placeholder removed below (map printing of the whole root)
    # --- comments and trim markers
    ("a {{/* a comment */}} b", "a  b"),
    ("a {{- /* c */ -}} b", "ab"),
    ("{{/* multi\nline */}}x", "x"),
    ("a  {{- .Str -}}  b", "ahellob"),
    ("a \n\t {{- .Str}} \n b", "ahello \n b"),
    ("a {{.Str -}} \n\t b", "a hellob"),
    ("{{- .Str -}}", "hello"),
    ("x {{- 3}} y", "x3 y"),
    ("x {{-3}} y", "x -3 y"),
    ("{{ .Str }}", "hello"),
    ("{{\n.Str\n}}", "hello"),
    # --- literals
    ('{{"a\\tb"}}', "a\tb"),
    ("{{`a\\tb`}}", "a\\tb"),
    ('{{"\\u00e9\\x41\\101"}}', "éAA"),
    ('{{"\\xc3\\xa9"}}', "é"),
    ("{{'a'}} {{'\\n'}} {{'\\''}} {{'é'}} {{'\\x41'}}", "97 10 39 233 65"),
    ("{{0x1F}} {{0X1f}} {{0o17}} {{017}} {{0b101}} {{1_000}} {{0x_1F}}", "31 31 15 15 5 1000 31"),
    ("{{-5}} {{+5}} {{-0x10}}", "-5 5 -16"),
    ("{{1.5}} {{1e3}} {{1.0}} {{-2.5e-3}} {{.5}} {{1.}}", "1.5 1000 1 -0.0025 0.5 1"),
    ("{{0x1p-2}} {{0x1.8p1}}", "0.25 3"),
    (
        "{{1e21}} {{1e20}} {{123456789.0}} {{999999.0}} {{1e6}}",
        "1e+21 1e+20 1.23456789e+08 999999 1e+06",
    ),
    ("{{0.0001}} {{0.00001}} {{1e-7}} {{3.14159}}", "0.0001 1e-05 1e-07 3.14159"),
    (
        "{{0.1}} {{0.3}} {{2.5e10}} {{1.7976931348623157e308}}",
        "0.1 0.3 2.5e+10 1.7976931348623157e+308",
    ),
    ("{{1i}} {{1+2i}} {{0i}} {{1.5-2i}}", "(0+1i) (1+2i) (0+0i) (1.5-2i)"),
    ("{{true}} {{false}}", "true false"),
    (
        "{{9223372036854775807}} {{-9223372036854775808}}",
        "9223372036854775807 -9223372036854775808",
    ),
    # --- variables
    ("{{$x := 1}}{{$x}}", "1"),
    ("{{$x := .Str}}", ""),
    ("{{$x := 1}}{{$x = 2}}{{$x}}", "2"),
    ("{{$}}", "__skip__"),
    ("{{$.Str}} {{$.Host.ID}}", "hello T1"),
    ("{{with .Nested}}{{$.Str}}/{{.Inner.Deep}}{{end}}", "hello/x"),
    ("{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}", "21"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{$x := 1}}{{range .Ints}}{{$x = .}}{{end}}{{$x}}", "3"),
    ("{{$a, $b := 1}}", "__skip__"),
    ("{{$x := .List}}{{index $x 2}} {{len $x}} {{$x}}", "c 3 [a b c]"),
    ("{{$h := .Host}}{{$h.FQDN}}", "host.example.com"),
    ("{{$ := 5}}{{$}}", "5"),
    # --- pipelines and parentheses
    ('{{.Str | printf "%s!"}}', "hello!"),
    ('{{"x" | printf "%s-%s" "a"}}', "a-x"),
    ('{{.Int | printf "%d" | printf "[%s]"}}', "[42]"),
    ('{{printf "%d" (len .List)}}', "3"),
    ('{{(printf "%s" "a")}}', "a"),
    ("{{(.Nested).Inner.Deep}}", "x"),
    ("{{(index .Nest 0).a}}", "[1 2]"),
    ("{{ .Host.FQDN | ToUpper }}", "HOST.EXAMPLE.COM"),
    ("{{ ToUpper .Host.FQDN }}", "HOST.EXAMPLE.COM"),
    ("{{ Jumphost .Host.FQDN }}", "jump-host.example.com"),
    ('{{ Add 1 2 }} {{ Add .Str "!" }}', "3 hello!"),
    ("{{ 2 | Add 1 }}", "3"),
    ("{{ Nothing }}", "<no value>"),
    ("{{ Echo 1 nil .Missing }}", "[1 <nil> <nil>]"),
    ('{{ ToUpper (printf "%s-%d" .Str .Int) }}', "HELLO-42"),
    ("{{ (Echo .Int).x }}", "__skip__"),
    # --- if / else
    ("{{if .True}}y{{else}}n{{end}}", "y"),
    ("{{if .False}}y{{else}}n{{end}}", "n"),
    ("{{if .Zero}}z{{else if .Empty}}e{{else if .Int}}i{{else}}n{{end}}", "i"),
    ("{{if .Nil}}y{{else}}n{{end}}", "n"),
    ("{{if .Missing}}y{{else}}n{{end}}", "n"),
    ("{{if .EmptyList}}y{{else}}n{{end}}", "n"),
    ("{{if .EmptyMap}}y{{else}}n{{end}}", "n"),
    ("{{if .FZero}}y{{else}}n{{end}}", "n"),
    ("{{if .NaN}}y{{else}}n{{end}}", "y"),
    ("{{if .Host}}y{{else}}n{{end}}", "y"),
    ("{{if .List}}y{{else}}n{{end}}", "y"),
    ("{{if .Neg}}y{{else}}n{{end}}", "y"),
    ("{{if and .True .Int}}y{{end}}", "y"),
    ("{{if not .List}}y{{else}}n{{end}}", "n"),
    ("{{if $x := .Int}}{{$x}}{{end}}", "42"),
    ('{{ if eq .Host.ID "T1" }}a{{ else }}b{{ end }}', "a"),
    ('{{ if eq .Host.ID "T2" }}a{{ else }}b{{ end }}', "b"),
    # --- with
    ("{{with .Str}}{{.}}{{end}}", "hello"),
    ("{{with .Empty}}x{{else}}none{{end}}", "none"),
    ("{{with .Missing}}x{{else with .Int}}{{.}}{{end}}", "42"),
    ("{{with $x := .Int}}{{$x}}{{.}}{{end}}", "4242"),
    ("{{with .Host}}{{.ID}}@{{.FQDN}}{{end}}", "T1@host.example.com"),
    # --- range
    ("{{range .List}}{{.}},{{end}}", "a,b,c,"),
    ("{{range .EmptyList}}x{{else}}empty{{end}}", "empty"),
    ("{{range .Missing}}x{{else}}none{{end}}", "none"),
    ("{{range .Nil}}x{{else}}none{{end}}", "none"),
    ("{{range .Map}}{{.}}{{end}}", "123"),
    ("{{range $k, $v := .Map}}{{$k}}={{$v}};{{end}}", "a=1;b=2;c=3;"),
    ("{{range $i, $e := .List}}{{$i}}:{{$e}} {{end}}", "0:a 1:b 2:c "),
    ("{{range $e := .List}}{{$e}}{{end}}", "abc"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{range $i := 3}}{{$i}}{{end}}", "012"),
    ("{{range 0}}x{{else}}zero{{end}}", "zero"),
    ("{{range -2}}x{{else}}neg{{end}}", "neg"),
    ("{{range .Ints}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}}", "1"),
    ("{{range .Ints}}{{if eq . 2}}{{continue}}{{end}}{{.}}{{end}}", "13"),
    ("{{range .Ints}}{{range $.List}}{{.}}{{end}}{{end}}", "abcabcabc"),
    ("{{range .Ints}}{{range $.List}}{{break}}{{end}}{{.}}{{end}}", "123"),
    ("{{range .List}}{{$x := .}}{{$x}}{{end}}", "abc"),
    ("{{range .Mixed}}[{{.}}]{{end}}", "[1][<no value>][s]"),
    ("{{range .Matrix}}{{index . 1}}{{end}}", "24"),
    ("{{range .Host.Tags}}{{.}}{{end}}", "ab"),
    ("{{$i := 0}}{{range $i, $e := .List}}{{end}}{{$i}}", "0"),
    ("{{$i := 9}}{{$e := 9}}{{range $i, $e = .List}}{{end}}{{$i}}{{$e}}", "2c"),
    # --- built-in functions
    ("{{len .Str}} {{len .List}} {{len .Map}} {{len .Uni}} {{len .EmptyList}}", "5 3 3 6 0"),
    ('{{index .List 1}} {{index .Map "b"}} {{index .Str 0}}', "b 2 104"),
    ('{{index .Map "zz"}}', "<no value>"),
    ("{{index .Matrix 1 0}} {{index .List}}", "3 [a b c]"),
    ('{{index .Nested "Inner" "Deep"}}', "x"),
    ("{{slice .Str 1 3}}|{{slice .Str 2}}|{{slice .List 1}}|{{slice .Str}}", "el|llo|[b c]|hello"),
    ("{{slice .List 1 2 3}} {{slice .List 0 0}}", "[b] []"),
    (
        '{{eq 1 1}} {{eq 1 2}} {{eq "a" "a"}} {{eq .Int 42}} {{eq 1 2 3 1}}',
        "true false true true true",
    ),
    (
        '{{eq .Missing "x"}} {{eq .Nil .Missing}} {{eq nil nil}} {{eq .Missing 1}}',
        "false true true false",
    ),
    (
        "{{eq true true}} {{eq 1.5 1.5}} {{eq .Host .Host}} {{eq .Host .NoIP}}",
        "true true true false",
    ),
    ("{{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 2 2}}", "true true true false true"),
    (
        '{{lt "a" "b"}} {{lt 1.5 2.5}} {{gt "b" "a"}} {{le 3 2}} {{ge 1 2}}',
        "true true true false false",
    ),
    ("{{lt .NaN 1.0}} {{gt .NaN 1.0}} {{eq .NaN .NaN}}", "false true false"),
    ("{{ne .Missing .List}} {{eq .Nil .Map}} {{eq .Missing nil}}", "true false true"),
    ('{{and 1 2}} {{and 0 2}} {{or 0 2}} [{{or 0 ""}}] {{and .True .Str}}', "2 0 2 [] hello"),
    ("{{or .True (index .List 10)}} {{and .False (index .List 10)}}", "true false"),
    ("{{and .Missing 1}} {{or .Nil .Missing}}", "<no value> <no value>"),
    ("{{0 | and 1}} {{1 | or 0}}", "0 1"),
    ("{{not .True}} {{not .Empty}} {{not 0}} {{not .Missing}}", "false true true true"),
    ('{{print 1 2 "a" "b" 3}}', "1 2ab3"),
    ('{{print}}|{{print "a"}}|{{print 1.5 true nil}}', "|a|1.5 true <nil>"),
    ('{{println 1 "a" 2}}', "1 a 2\n"),
    ("{{print .Missing .Nil}}", "<nil> <nil>"),
    ("{{print .List .Map}}", "[a b c] map[a:1 b:2 c:3]"),
    ('{{html "<a href=\'x\'>&\\""}}', "&lt;a href=&#39;x&#39;&gt;&amp;&#34;"),
    ("{{html .Missing}} {{html 1 2}} {{html .Nil}}", "&lt;no value&gt; 1 2 &lt;no value&gt;"),
    ('{{js "a\'b\\"c<d>&=\\\\"}}', "a\\'b\\\"c\\u003Cd\\u003E\\u0026\\u003D\\\\"),
    ('{{js "x\\ny\\x01é"}}', "x\\u000Ay\\u0001é"),
    ('{{urlquery "a b&c=d/é~-_."}}', "a+b%26c%3Dd%2F%C3%A9~-_."),
    ("{{urlquery .Str 1}}", "hello1"),
    ('{{call .Fn 2 3}} {{call .Fn .Str "!"}}', "5 hello!"),
    # --- printf: integers
    (
        '{{printf "%d %5d %-5d| %05d %+d %x %X %o %O %b %#x %#o %c %q %U" '
        "42 42 42 42 42 255 255 8 8 5 255 8 65 65 65}}",
        "42    42 42   | 00042 +42 ff FF 10 0o10 101 0xff 010 A 'A' U+0041",
    ),
    ('{{printf "%x %#x %X %#X" -255 -255 3054 3054}}', "-ff -0xff BEE 0XBEE"),
    (
        '{{printf "[%.0d] [%5.0d] [%.3d] [%6.3d] [%-06d] [% d] [%+.3d]" 0 0 7 -7 5 5 5}}',
        "[] [     ] [007] [  -007] [5     ] [ 5] [+005]",
    ),
    ('{{printf "%#08x|%08b|%#b|%v|%+v" 255 5 5 -3 3}}', "0x000000ff|00000101|0b101|-3|3"),
    ('{{printf "%c|%c|%q|%+q|%#U" 233 -1 10 233 128512}}', "é|\ufffd|'\\n'|'\\u00e9'|U+1F600 '😀'"),
    ('{{printf "%U|%#U|%8U|%.6U" 65 7 65 65}}', "U+0041|U+0007|  U+0041|U+000041"),
    # --- printf: strings
    (
        '{{printf "%s|%10s|%-10s|%.2s|%q|%x|% x|%#q|%X|%# x" '
        '"hi" "hi" "hi" "hello" "a\\"b" "hi" "hi" "hi" "hi" "hi"}}',
        'hi|        hi|hi        |he|"a\\"b"|6869|68 69|`hi`|6869|0x68 0x69',
    ),
    ('{{printf "%5s|%-4s|%.1s|%x|%.1x" "é" "é" "éa" "é" "é"}}', "    é|é   |é|c3a9|c3"),
    ('{{printf "%q|%+q|%#q" "é\\n\\x00" "é" "a`b"}}', '"é\\n\\x00"|"\\u00e9"|"a`b"'),
    ('{{printf "%q" "\\u200b\\U0001F600\\x7f"}}', '"\\u200b😀\\x7f"'),
    ('{{printf "%v|%s|%8.3v|" "str" "str" "string"}}', "str|str|     str|"),
    # --- printf: floats
    (
        '{{printf "%f %.2f %e %E %g %G %8.3f|%-8.2f|%08.3f %+.1f" '
        "3.14159 3.14159 1234.5678 1234.5678 0.000012345 1e21 3.14159 2.5 -3.14159 2.0}}",
        "3.141590 3.14 1.234568e+03 1.234568E+03 1.2345e-05 1E+21    3.142|2.50    |-003.142 +2.0",
    ),
    (
        '{{printf "%v %.3g %.10g %g %g %.0f %.0f %.1f" '
        "1e6 1234.5678 1e6 100000.0 1e-4 2.5 3.5 0.25}}",
        "1e+06 1.23e+03 1000000 100000 0.0001 2 4 0.2",
    ),
    (
        '{{printf "%#g|%#.0f|%#e|%#.3g|%#v" 1.0 1.0 1.0 2.5 1.5}}',
        "1.00000|1.|1.000000e+00|2.50|1.5",
    ),
    (
        '{{printf "%6.2v|%6.2f|% .2f|%+.2e|%x|%X|%b" 3.14159 -1.0 1.0 12345.678 1.0 3.0 1.0}}',
        "   3.1| -1.00| 1.00|+1.23e+04|0x1p+00|0X1.8P+01|4503599627370496p-52",
    ),
    (
        '{{printf "%f|%5.1f|%+f|% f|%-6f|%06f" .Inf .NaN .NaN .Inf .NInf .Inf}}',
        "+Inf|  NaN|+NaN| Inf|-Inf  |  +Inf",
    ),
    ('{{printf "%v|%.2f|%v" 1i 1.5+2i -0.0}}', "(0+1i)|(1.50+2.00i)|-0"),
    # --- printf: composite values, %T, %v flags
    (
        '{{printf "%v %d %q %x" .List .Ints .List .List}}',
        '[a b c] [1 2 3] ["a" "b" "c"] [61 62 63]',
    ),
    ('{{printf "%3v|%-2v|" .Ints .Ints}}', "[  1   2   3]|[1  2  3 ]|"),
    ('{{printf "%#v %#v %#v" "s" 1 .List}}', '"s" 1 []interface {}{"a", "b", "c"}'),
    ('{{printf "%#v" .Map}}', 'map[string]interface {}{"a":1, "b":2, "c":3}'),
    (
        '{{printf "%#v|%#v" .Mixed .Nest}}',
        '[]interface {}{1, interface {}(nil), "s"}|[]interface {}{map[string]interface {}'
        '{"a":[]interface {}{1, 2}}, map[string]interface {}{"b":interface {}(nil)}}',
    ),
    (
        '{{printf "%+v|%v|%s" .Map .Nest .List}}',
        "map[a:1 b:2 c:3]|[map[a:[1 2]] map[b:<nil>]]|[a b c]",
    ),
    (
        '{{printf "%T %T %T %T %T %T %T" 1 "s" 1.5 true .List .Map nil}}',
        "int string float64 bool []interface {} map[string]interface {} <nil>",
    ),
    ('{{printf "%T|%T" .Host 1i}}', "*target.Target|complex128"),
    ('{{printf "%v|%s|%q" .Host .Host .Host}}', 'Host(T1)|Host(T1)|"Host(T1)"'),
    # --- printf: errors printed inline, as Go does
    ('{{printf "%d" "abc"}}', "%!d(string=abc)"),
    ('{{printf "%s" 42}}', "%!s(int=42)"),
    ('{{printf "%d" 1.5}}', "%!d(float64=1.5)"),
    ('{{printf "%t|%t" 1 true}}', "%!t(int=1)|true"),
    ('{{printf "%d" nil}}', "%!d(<nil>)"),
    ('{{printf "%5d" "ab"}}', "%!d(string=   ab)"),
    ('{{printf "%d" .List}}', "[%!d(string=a) %!d(string=b) %!d(string=c)]"),
    ('{{printf "%d" .Mixed}}', "[1 <nil> %!d(string=s)]"),
    ('{{printf "%s" .Map}}', "map[a:%!s(int=1) b:%!s(int=2) c:%!s(int=3)]"),
    ('{{printf "%d %d" 1}}', "1 %!d(MISSING)"),
    ('{{printf "%d" 1 2}}', "1%!(EXTRA int=2)"),
    ('{{printf "x" 1 "a" nil}}', "x%!(EXTRA int=1, string=a, <nil>)"),
    ('{{printf "100%%"}} {{printf "%5%"}}', "100% %"),
    ('{{printf "%"}}|{{printf "abc%"}}|{{printf "%-"}}', "%!(NOVERB)|abc%!(NOVERB)|%!(NOVERB)"),
    ('{{printf "%z" 1}} {{printf "%!"}}', "%!z(int=1) %!!(MISSING)"),
    (
        '{{printf "%[2]d %[1]d" 1 2}} {{printf "%[3]d" 1 2}} {{printf "%[1]d %d" 5 6}}',
        "2 1 %!d(BADINDEX) 5 6",
    ),
    ('{{printf "%[x]d" 1}}|{{printf "%[2]*[1]d" 12 5}}', "%!d(BADINDEX)|   12"),
    ('{{printf "%*d|%-*d|%*d" 5 1 3 2 -4 3}}', "    1|2  |3   "),
    ('{{printf "%.*f|%*d" 2 3.14159 "x" 1}}', "3.14|%!(BADWIDTH)1"),
    ('{{printf "%s" "ok" | printf "%q"}}', '"ok"'),
    ('{{printf "%v" .Missing}}', "<nil>"),
    # --- combinations
    ("{{with .Missing}}a{{else with .Empty}}b{{else}}c{{end}}", "c"),
    ("{{with .Missing}}a{{else with .Str}}{{.}}{{else}}c{{end}}", "hello"),
    ("{{if .False}}a{{else if $x := .Int}}{{$x}}{{end}}", "42"),
    ("{{range .Ints}}{{with $}}{{if eq 2 2}}{{break}}{{end}}{{end}}x{{end}}", ""),
    (
        "<ul>\n{{- range .List }}\n  <li>{{ . }}</li>\n{{- end }}\n</ul>",
        "<ul>\n  <li>a</li>\n  <li>b</li>\n  <li>c</li>\n</ul>",
    ),
    ('{{range $k, $v := .Map}}{{if eq $k "b"}}{{continue}}{{end}}{{$k}}{{end}}', "ac"),
    (
        "{{range .List}}{{.}}{{else}}none{{end}}{{range .EmptyMap}}x{{else}}{{len $.List}}{{end}}",
        "abc3",
    ),
    ("{{ $h := .Host }}{{ with $h }}{{ $h.FQDN }}{{ end }}", "host.example.com"),
    ('{{printf "%s" .Host.ID | ToUpper | printf "<%s>"}}', "<T1>"),
    ('{{if and (eq .Int 42) (ne .Str "x") (lt 1 2)}}ok{{end}}', "ok"),
    ('{{ "a" | eq "a" }} {{ 5 | printf "%d-%d" 4 }}', "true 4-5"),
    # --- printing via print of odd values
    ("{{print .NaN .Inf 1e100 1e-100}}", "NaN +Inf 1e+100 1e-100"),
    ("{{print 100000000.0 12345678.9 0.000123}}", "1e+08 1.23456789e+07 0.000123"),
]

CASES = [c for c in CASES if c[1] != "__skip__"]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:40] for c in CASES])
def test_golden(text: str, expected: str) -> None:
    assert render(text, data()) == expected


# (template, root, expected) for roots other than the map
ROOT_CASES: list[tuple[str, Any, str]] = [
    ("{{.}}", None, "<no value>"),
    ("{{.Foo}}", None, "<no value>"),
    ("{{.Foo.Bar}}", None, "<no value>"),
    ("{{$}}", None, "<no value>"),
    ("{{if .}}y{{else}}n{{end}}", None, "n"),
    ("dummy", None, "dummy"),
    ("{{.}}", "str", "str"),
    ("{{.}}", 3, "3"),
    ("{{.}}", [1, "a"], "[1 a]"),
    ("{{.}}", {"k": [1.5, None]}, "map[k:[1.5 <nil>]]"),
    ("{{.}}", {2: "b", 1: "a"}, "map[1:a 2:b]"),
    ("{{range $k, $v := .}}{{$k}}{{$v}}{{end}}", {2: "b", 1: "a"}, "1a2b"),
    # Python bytes stand for Go's []byte, tuples for slices
    ("{{.}}", b"hi", "[104 105]"),
    ('{{printf "%s|%x|%q" . . .}}', b"hi", 'hi|6869|"hi"'),
    ("{{len .}} {{index . 1}} {{slice . 1}}", b"hi", "2 105 [105]"),
    ("{{.}}", (1, 2), "[1 2]"),
    ("{{range .}}{{.}}{{end}}", (1, 2), "12"),
    ("ssh {{ .ID }}", Host("T1", "h"), "ssh T1"),
    ("{{ .FQDN | ToUpper }}", Host("T1", "host.x"), "HOST.X"),
    ("{{ slice .FQDN 0 4 }}", Host("T1", "host.example.com"), "host"),
    ("{{.IP}}", Host("T1", "h", "10.0.0.1"), "10.0.0.1"),
    ("{{.IP}}", Host("T1", "h"), "<nil>"),
    ("{{.}}", True, "true"),
    ("{{.}}", 1e-7, "1e-07"),
    ("{{.}}", "héllo\x00", "héllo\x00"),
]


@pytest.mark.parametrize(("text", "root", "expected"), ROOT_CASES)
def test_golden_roots(text: str, root: Any, expected: str) -> None:
    assert render(text, root) == expected


def test_whole_map_printing() -> None:
    d = {"b": [1, 2], "a": {"x": None}, "c": "s"}
    expected = "map[a:map[x:<nil>] b:[1 2] c:s]"
    assert render("{{.}} {{$}}", d) == f"{expected} {expected}"


def test_string_slicing_is_by_bytes() -> None:
    # Go slices strings by bytes: "é" is two bytes, and half of it is an invalid byte
    out = render("{{slice .Uni 0 2}}|{{slice .Uni 0 3}}|{{index .Uni 1}}", data())
    assert out == "h\udcc3|hé|195"
    assert render('{{printf "%q" (slice .Uni 0 2)}}', data()) == '"h\\xc3"'


def test_is_constant_fast_path() -> None:
    from contest.templates import parse

    t = parse("no actions here", name="p")
    assert t.is_constant and t.execute(None, {}) == "no actions here"
    assert t.source == "no actions here"
    c = parse("a{{/* only a comment */}}b", name="p")
    assert not c.is_constant  # executing does not return the source
    assert c.execute(None, {}) == "ab"
    assert not parse("{{.X}}", name="p").is_constant


def test_documented_deviations() -> None:
    """Where Python values cannot carry Go's static types, we differ from Go on purpose.

    * a nil field of a declared object is printed ``<nil>`` like Go, but once copied into a
      variable it is an ordinary nil and prints ``<no value>`` (Go keeps the typed nil);
    * ``index`` on a string gives an ``int`` (Go: ``uint8``; it prints the same);
    * a declared object is printed through ``str()`` for every verb that Go would give to a
      ``fmt.Stringer``; other verbs show the bad-verb form with that text;
    * integers are not limited to 64 bits when they come from the data.
    """
    assert render("{{$ip := .IP}}{{$ip}}", Host("T1", "h")) == "<no value>"
    assert render('{{printf "%T" (index .Str 0)}}', data()) == "int"
    assert render('{{printf "%d" .Host}}', data()) == "%!d(*target.Target=Host(T1))"
    assert render("{{.}}", 2**70) == "1180591620717411303424"
