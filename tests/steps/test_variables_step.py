"""The variables step: typed values per target, read back by later steps through
``ctx.variables`` and through StringVar/IntVar in templates; bad parameters refused."""

from __future__ import annotations

import shutil
from typing import Any

from stepkit import payloads, refused, run_steps, validate, verdicts

from contest.plugins.teststeps import variables as variables_module
from contest.plugins.teststeps.cmd import Cmd
from contest.plugins.teststeps.echo import Echo
from contest.plugins.teststeps.variables import Variables
from contest.signals import Scope
from contest.teststep import (
    EventEmitter,
    StepChannels,
    StepContext,
    StepParameters,
    Target,
    TestStep,
    for_each_target,
)

VALUES: dict[str, Any] = {
    "message": "Hello",
    "count": 42,
    "ratio": 0.5,
    "flag": True,
    "nothing": None,
    "obj": {"a": [1, "b"]},
}


class Reader(TestStep):
    """Reads the variables of step ``vars`` for each target."""

    name = "Reader"
    seen: dict[str, dict[str, Any]]

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        self.seen = {}

        async def one(ctx: StepContext, target: Target) -> None:
            assert ctx.variables is not None
            self.seen[target.id] = {
                name: ctx.variables.get(target.id, "vars", name) for name in VALUES
            }

        await for_each_target(ctx, ch, one)


async def test_values_keep_their_type_for_later_steps() -> None:
    reader = Reader()
    out = await run_steps(
        [(Variables(), "vars", {k: [v] for k, v in VALUES.items()}), (reader, "read")],
        ["T1", "T2"],
    )
    assert out.error is None
    assert reader.seen == {"T1": VALUES, "T2": VALUES}
    emitted = {p["Name"]: p["Value"] for p in payloads(out, "VariableEmitted", "T1")}
    assert emitted["message"] == '"Hello"' and emitted["obj"] == '{"a":[1,"b"]}'


async def test_templates_read_them_with_stringvar_and_intvar() -> None:
    echo = shutil.which("echo")
    assert echo
    out = await run_steps(
        [
            (Variables(), "vars", {"message": ["Hello"], "count": [42]}),
            (
                Cmd(),
                "cmd",
                {
                    "executable": [echo],
                    "emit_stdout": [True],
                    "args": [
                        '{{ StringVar "vars.message" }}',
                        '{{ IntVar "vars.count" }}',
                        "{{ .ID }}",
                    ],
                },
            ),
        ],
        ["T1"],
    )
    assert out.error is None
    assert payloads(out, "CmdStdout", "T1") == [{"Msg": "Hello 42 T1\n"}]


async def test_a_wrongly_typed_read_fails_the_target() -> None:
    out = await run_steps(
        [
            (Variables(), "vars", {"count": [42]}),
            (Echo(), "echo", {"text": ['{{ StringVar "vars.count" }}']}),
        ],
        ["T1"],
    )
    assert out.error is None
    assert "is not a string" in verdicts(out, "echo")["T1"]


async def test_raw_json_text_is_kept_as_written() -> None:
    step = Variables()
    await step.validate_parameters(vars_ctx(), StepParameters({"n": ["12"], "s": ['"12"']}))
    assert step.values == {"n": "12", "s": '"12"'}


def vars_ctx() -> StepContext:
    return StepContext(scope=Scope(), step_label="vars")


async def test_bad_parameters_are_refused_with_the_name() -> None:
    assert (await refused(Variables(), {"1abc": ["x"]})).startswith("invalid variable name: '1abc'")
    assert (await refused(Variables(), {"has-dash": ["x"]})).startswith(
        "invalid variable name: 'has-dash'"
    )
    assert await refused(Variables(), {"a": ["x", "y"]}) == "a: takes one value, got 2"
    assert await refused(Variables(), {"a": []}) == (
        "invalid number of parameter 'a' values: 0 (expected 1)"
    )
    try:
        await Variables().validate_parameters(vars_ctx(), StepParameters({"bad": ["{not json"]}))
    except Exception as exc:
        assert str(exc).startswith("bad: invalid json '{not json'")
    else:
        raise AssertionError("accepted invalid JSON")
    await validate(Variables(), {})  # no variables: a no-op step


def test_load() -> None:
    assert variables_module.load() == ("variables", Variables, ())
