"""Execution cost: a step parameter is expanded once per target, thousands of times.

Run as a script for the figures: ``python tests/templates/test_templates_perf.py``.
The test only guards against gross regressions (its bound is ~20x the measured cost).
"""

from __future__ import annotations

import sys
import timeit
from collections.abc import Callable
from pathlib import Path

from contest.params import BUILTIN_FUNCTIONS
from contest.target import Target
from contest.templates import parse

TARGET = Target("T1", fqdn="host.example.com", primary_ipv4="10.0.0.1")
BENCH = [
    "plain text, no actions",
    "{{ .ID }}",
    "{{ ToUpper .FQDN }}",
    "{{ .FQDN | ToUpper }}",
    "ssh -p 22 root@{{ .FQDN }} -- run {{ .ID }}",
    '{{ if eq .ID "T1" }}a{{ else }}b{{ end }}',
    '{{ printf "%s-%03d" .ID 7 }}',
    "{{ slice .FQDN 0 4 }}",
]


def per_call_us(text: str, number: int) -> float:
    funcs = BUILTIN_FUNCTIONS
    tpl = parse(text, name="bench", funcs=funcs)
    run: Callable[[], str] = lambda: tpl.execute(TARGET, funcs)  # noqa: E731
    run()
    best = min(timeit.repeat(run, number=number, repeat=3))
    return best / number * 1e6


def test_execution_is_cheap() -> None:
    for text in ("{{ .ID }}", "{{ ToUpper .FQDN }}"):
        assert per_call_us(text, 2000) < 40, text


def test_parse_once_execute_many_gives_same_output() -> None:
    tpl = parse("{{ .ID }}-{{ ToUpper .FQDN }}", name="p", funcs=BUILTIN_FUNCTIONS)
    outs = {tpl.execute(Target(f"T{i}", fqdn="h"), BUILTIN_FUNCTIONS) for i in range(1000)}
    assert len(outs) == 1000


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    for text in BENCH:
        print(f"{per_call_us(text, 100_000):6.2f} us  {text}")
