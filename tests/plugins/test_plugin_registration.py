"""Registration, as users meet it: a third-party distribution that takes a built-in's name is
refused (the built-in wins, whatever the entry points' names sort as), the error names both
distributions, a ``load()`` of the wrong shape says what ``load()`` must return, ``contest
plugins`` fails when anything failed to load, and ``contest run`` runs the built-in. The fixture
steps are not plugins of a normal install (contest-py's distribution does not register them)."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import distkit
from contest.registry import BUILTIN_DISTRIBUTION, KINDS, PluginRegistry, RegistryError

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "contest-impostor"
version = "1.0"

[project.entry-points."contest.teststeps"]
# "a..." sorts before contest-py's "sleep": the built-in must still win
asleep = "impostor:load_sleep"
shape = "impostor:load_shape"
pair = "impostor:load_pair"
greet = "impostor:load_greet"

[project.entry-points."contest.reporters"]
noop = "impostor:load_reporter"

[tool.setuptools]
py-modules = ["impostor"]
"""

MODULE = '''\
"""Plugins that misbehave at registration, and one that does not."""

from contest.reporter import Reporter
from contest.teststep import Parameter, TestStep, for_each_target


class Impostor(TestStep):
    """Fails every target: running it instead of the built-in Sleep would show."""

    name = "sleep"

    async def run(self, ctx, ch, params, ev, resume_state):
        async def fail(ctx, target):
            raise RuntimeError("the impostor ran")

        await for_each_target(ctx, ch, fail)


class Greet(TestStep):
    """Greets every target, politely.

    A longer description, on a second paragraph."""

    name = "Greet"
    events = ("Greeted",)
    parameters = (
        Parameter("text", required=True, templated=True, doc="what to say"),
        Parameter("token", secret=True, doc="who may hear it"),
    )

    async def run(self, ctx, ch, params, ev, resume_state):
        async def greet(ctx, target):
            await ev.emit("Greeted", target, {"text": params.get_one("text").expand(target)})

        await for_each_target(ctx, ch, greet)


def load_sleep():
    return "Sleep", Impostor, ()


def load_shape():
    return Impostor  # the class alone: not (name, factory, events)


def load_pair():
    return "Pair", Impostor  # a reporter's shape, for a step


def load_greet():
    return "Greet", Greet, ("Greeted",)


def load_reporter():
    return "NOOP", Reporter
'''

JOB = {
    "JobName": "sleepy",
    "Runs": 1,
    "TestDescriptors": [
        {
            "TargetManagerName": "TargetList",
            "TargetManagerAcquireParameters": {"Targets": [{"ID": "T1"}]},
            "TargetManagerReleaseParameters": {},
            "TestFetcherName": "literal",
            "TestFetcherFetchParameters": {
                "TestName": "t",
                "Steps": [{"name": "sleep", "label": "s", "parameters": {"duration": ["10ms"]}}],
            },
        }
    ],
    "Reporting": {
        "RunReporters": [{"Name": "TargetSuccess", "Parameters": {"SuccessExpression": "=100%"}}]
    },
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("impostor")
    path = distkit.install(root, "src", {"pyproject.toml": PYPROJECT, "impostor.py": MODULE})
    try:
        yield path
    finally:
        shutil.rmtree(root, ignore_errors=True)


def contest(site: Path | None, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    proc = distkit.run(["-m", "contest.cli", *args], site, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def test_a_clash_is_refused_naming_both_distributions(site: Path) -> None:
    code, out, err = contest(site, "plugins")
    assert code == 1  # something failed to load: say so
    assert (
        "contest plugins: cannot load contest.teststeps asleep from contest-impostor "
        "(impostor:load_sleep): TestSteps Sleep already registered (by contest-py "
        "(contest.plugins.teststeps.sleep:load); again by contest-impostor (impostor:load_sleep)): "
        "the second one is not registered"
    ) in err
    assert (
        "contest.reporters noop from contest-impostor (impostor:load_reporter): Reporters NOOP "
        "already registered (by contest-py"
    ) in err
    # the built-ins are listed as ever, and the good plugin of the distribution too
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "Waits a while per target" in lines["Sleep"]
    assert lines["Greet"].split() == ["Greet", "Greets", "every", "target,", "politely.",
                                      "[events:", "Greeted]"]  # fmt: skip


def test_load_of_the_wrong_shape_says_what_load_must_return(site: Path) -> None:
    _, _, err = contest(site, "plugins")
    assert (
        "contest.teststeps shape from contest-impostor (impostor:load_shape): load() must "
        "return (name, factory, events), got the class Impostor"
    ) in err
    assert (
        "contest.teststeps pair from contest-impostor (impostor:load_pair): load() must return "
        "(name, factory, events), got a 2-tuple"
    ) in err


def test_the_builtin_runs_not_the_impostor(site: Path, tmp_path: Path) -> None:
    (tmp_path / "job.json").write_text(json.dumps(JOB))
    code, out, err = contest(
        site, "run", "job.json", "--json", "--db", "sqlite:///run.db", cwd=tmp_path
    )
    assert code == 0, out + err
    assert json.loads(out[out.index("{\n") :])["State"] == "JobStateCompleted"


def test_one_plugin_in_full(site: Path) -> None:
    code, out, _ = contest(site, "plugins", "greet")
    assert code == 1  # the other plugins of that distribution still failed
    assert out.splitlines()[:5] == [
        "Greet: test step from contest-impostor (impostor:load_greet)",
        "",
        "Greets every target, politely.",
        "",
        "A longer description, on a second paragraph.",
    ]
    assert "  text   string  required, templated  what to say" in out
    assert "  token  string  secret               who may hear it" in out
    assert "Events: Greeted (and the runner's own: TargetIn, TargetOut, TargetErr)" in out
    assert "Pause: not supported: a pause lets the targets in flight finish first" in out


def test_builtins_in_full_and_unknown_names() -> None:
    code, out, err = contest(None, "plugins", "SLEEP")
    assert code == 0, err
    assert out.startswith("Sleep: test step from contest-py (contest.plugins.teststeps.sleep:load)")
    assert "Pause: supported" in out
    assert "  duration  duration  required  how long each target waits" in out
    code, out, err = contest(None, "plugins", "targetlist")
    assert code == 0, err
    assert "Acquire parameters (TargetManagerAcquireParameters):" in out
    assert "  Targets[].FQDN" in out
    code, out, err = contest(None, "plugins", "noop")  # a fixture step and a built-in reporter
    assert out.count("noop: reporter from contest-py") == 1 and "Noop: test step" in out
    code, out, err = contest(None, "plugins", "sleeep")
    assert code == 1
    assert "contest plugins: no plugin named 'sleeep'; did you mean \"Sleep\"?" in err


def test_the_listing_is_by_kind_with_clean_one_line_summaries() -> None:
    code, out, err = contest(None, "plugins")
    assert code == 0, err
    assert [line for line in out.splitlines() if not line.startswith(" ")] == [
        f"{kind}:" for kind in KINDS
    ]
    for line in out.splitlines():
        if line.startswith("  "):
            summary = line.split(None, 1)[1]
            assert "``" not in summary and ":class:" not in summary, line
            assert summary.rstrip().endswith((".", "]", ")")), line  # a whole sentence
    assert "  SSHCmd" in out and "Runs a command on each target over SSH" in out


def test_the_fixture_steps_are_not_registered_by_contest_py() -> None:
    dist = importlib.metadata.distribution(BUILTIN_DISTRIBUTION)
    values = [ep.value for ep in dist.entry_points]
    assert values and not [v for v in values if v.startswith("contest.testing")]
    reg = PluginRegistry()
    assert reg.load_entry_points(dist.entry_points) == []
    names = {p.name for kind in KINDS for p in reg.plugins(kind)}
    assert {"Sleep", "Cmd", "SSHCmd", "TargetList", "literal", "TargetSuccess"} <= names
    assert not {"Crash", "Panic", "Hanging", "NoReturn", "Noop", "TargetListWithState"} & names
    # the test suite gets them from its own distribution, which CI installs
    fixtures = importlib.metadata.distribution("contest-py-test-fixtures")
    assert {ep.name for ep in fixtures.entry_points} >= {"crash", "hanging", "noop"}


def test_load_errors_are_kept_and_a_taken_name_is_never_replaced() -> None:
    reg = PluginRegistry()
    first = reg.register("teststeps", "Sleep", object, distribution="one", source="a:load")
    with pytest.raises(RegistryError, match=r"by one \(a:load\); again by two \(b:load\)"):
        reg.register("teststeps", "sleep", object, distribution="two", source="b:load")
    assert reg.test_step("SLEEP") is first
    with pytest.raises(RegistryError, match="the factory must be callable"):
        reg.register("teststeps", "Other", 42)  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="events must be a list of names, not a string"):
        reg.register("teststeps", "Other", object, "Started")
