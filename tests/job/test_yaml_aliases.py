"""YAML aliases: reuse is fine, a "billion laughs" is refused before anything is built."""

from __future__ import annotations

import resource
import time

import pytest

from contest.golang.json import (
    MAX_YAML_ALIAS_EXPANSION,
    MAX_YAML_ALIASES,
    JsonSyntaxError,
    loads_yaml,
    to_python,
)
from contest.job.descriptor import load_descriptor


def laughs(levels: int, fan: int = 10) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * fan)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan)}]")
    return "\n".join(lines) + "\n"


def test_aliases_reusing_a_step_list_are_read_as_copies() -> None:
    text = """
JobName: reuse
Runs: 1
TestDescriptors:
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters: &targets {Targets: [{ID: a}]}
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: one
      Steps: &steps
        - {name: echo, label: e, parameters: {text: [hi]}}
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters: *targets
    TestFetcherName: literal
    TestFetcherFetchParameters: {TestName: two, Steps: *steps}
Reporting: {RunReporters: [{Name: noop}]}
"""
    d = load_descriptor(text)
    assert [t.test_fetcher_fetch_parameters for t in d.test_descriptors][1] == (
        '{"TestName":"two","Steps":[{"name":"echo","label":"e","parameters":{"text":["hi"]}}]}'
    )
    assert to_python(loads_yaml("base: &b {x: 1}\nmerged: {<<: *b, y: 2}\n")) == {
        "base": {"x": 1},
        "merged": {"x": 1, "y": 2},
    }


def test_a_billion_laughs_is_refused_at_once_in_little_memory() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    with pytest.raises(JsonSyntaxError, match=r"aliases expand the document by \d+ nodes"):
        loads_yaml(laughs(10))
    assert time.monotonic() - t0 < 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024  # KiB


def test_the_limits_are_exact() -> None:
    # levels of 10: level k adds 10^k nodes... stay just under, then just over the expansion
    fits = "a: &a [" + ", ".join(["x"] * 1000) + "]\nb: [" + ", ".join(["*a"] * 199) + "]\n"
    assert len(to_python(loads_yaml(fits))["b"]) == 199  # 199 x 1001 - 1001 < limit
    over = fits.replace(", ".join(["*a"] * 199), ", ".join(["*a"] * 201))
    with pytest.raises(JsonSyntaxError, match=f"more than the {MAX_YAML_ALIAS_EXPANSION}"):
        loads_yaml(over)
    many = "a: &a x\nb: [" + ", ".join(["*a"] * (MAX_YAML_ALIASES + 1)) + "]\n"
    with pytest.raises(JsonSyntaxError, match=f"more than {MAX_YAML_ALIASES} aliases"):
        loads_yaml(many)


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(JsonSyntaxError, match="recursive alias"):
        loads_yaml("a: &a [1, *a]\n")
