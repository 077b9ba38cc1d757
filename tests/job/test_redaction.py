"""Secret step parameters: found and hidden in descriptors (``password`` anywhere, and what steps
declare), and kept out of log lines by the filter ``contest serve`` installs."""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

import pytest

from contest.redaction import (
    REDACTED,
    SecretLogFilter,
    find_secrets,
    redact_descriptor,
    remember_secrets,
)
from contest.registry import PluginRegistry, default_registry
from contest.teststep import TestStep


class Vault(TestStep):
    """A third-party step declaring its secrets, one nested in a JSON value."""

    name = "Vault"
    secret_parameters: ClassVar[frozenset[str]] = frozenset({"token", "conn.auth.key"})

    async def run(self, ctx: Any, ch: Any, params: Any, ev: Any, resume_state: Any) -> None:
        return None


@pytest.fixture
def registry() -> PluginRegistry:
    reg = PluginRegistry()
    reg.register("teststeps", "Vault", Vault)
    reg.register("teststeps", "Echo", default_registry().test_step("echo").factory)
    return reg


def descriptor(*steps: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    return json.dumps(
        {
            "JobName": "j",
            "TestDescriptors": [
                {
                    "TargetManagerName": "TargetList",
                    "TargetManagerAcquireParameters": {"Targets": [{"ID": "t"}], **(extra or {})},
                    "TestFetcherName": "literal",
                    "TestFetcherFetchParameters": {"TestName": "t", "Steps": list(steps)},
                }
            ],
        }
    )


def steps_of(text: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = json.loads(text)["TestDescriptors"][0][
        "TestFetcherFetchParameters"
    ]["Steps"]
    return steps


def test_password_is_secret_at_any_depth_in_any_step_and_elsewhere(
    registry: PluginRegistry,
) -> None:
    text = descriptor(
        {"name": "Echo", "label": "a", "parameters": {"password": ["p1"], "text": ["hi"]}},
        {
            "name": "Unknown",
            "label": "b",
            "parameters": {"bag": [{"transport": {"options": {"Password": "p2"}}}]},
        },
        extra={"PASSWORD": "p3"},
    )
    shown = redact_descriptor(text, registry)
    steps = steps_of(shown)
    assert steps[0]["parameters"] == {"password": [REDACTED], "text": ["hi"]}
    assert steps[1]["parameters"]["bag"][0]["transport"]["options"] == {"Password": REDACTED}
    assert json.loads(shown)["TestDescriptors"][0]["TargetManagerAcquireParameters"] == {
        "Targets": [{"ID": "t"}],
        "PASSWORD": REDACTED,
    }
    assert sorted(find_secrets(text, registry)) == ["p1", "p2", "p3"]


def test_steps_declare_their_own_secrets(registry: PluginRegistry) -> None:
    text = descriptor(
        {
            "name": "vault",  # names are case-insensitive
            "label": "v",
            "parameters": {
                "Token": ["t1", "t2"],
                "conn": [{"auth": {"key": "k1", "user": "u"}, "host": "h"}],
                "other": ["visible"],
            },
        },
        {"name": "Echo", "label": "e", "parameters": {"token": ["not declared by Echo"]}},
    )
    shown = steps_of(redact_descriptor(text, registry))
    assert shown[0]["parameters"] == {
        "Token": [REDACTED, REDACTED],
        "conn": [{"auth": {"key": REDACTED, "user": "u"}, "host": "h"}],
        "other": ["visible"],
    }
    assert shown[1]["parameters"] == {"token": ["not declared by Echo"]}
    assert sorted(find_secrets(text, registry)) == ["k1", "t1", "t2"]


def test_a_descriptor_without_secrets_is_returned_as_it_is(registry: PluginRegistry) -> None:
    text = descriptor({"name": "Echo", "label": "a", "parameters": {"text": ["1.50"]}})
    assert redact_descriptor(text, registry) is text
    assert find_secrets(text, registry) == []


@pytest.mark.parametrize("key", ["passwor\\u0064", "\\u0070assword"])
def test_escaped_keys_do_not_slip_through(registry: PluginRegistry, key: str) -> None:
    text = descriptor().replace('"JobName"', f'"{key}": "esc-secret", "JobName"')
    assert "esc-secret" not in redact_descriptor(text, registry)
    assert find_secrets(text, registry) == ["esc-secret"]


def test_the_log_filter_hides_remembered_secrets_everywhere_in_a_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    remember_secrets(["hunter2-secret", "abc"])  # too short to look for: logs stay readable
    log = logging.getLogger("contest.test.redaction")
    filt = SecretLogFilter()
    caplog.handler.addFilter(filt)
    try:
        with caplog.at_level(logging.DEBUG):
            log.debug("logging in with %s and abc", "hunter2-secret")
            try:
                raise ValueError("bad password hunter2-secret")
            except ValueError:
                log.exception("failed")
    finally:
        caplog.handler.removeFilter(filt)
    text = caplog.text
    assert "hunter2-secret" not in text
    assert f"logging in with {REDACTED} and abc" in text
    assert f"ValueError: bad password {REDACTED}" in text


def test_messages_showing_a_step_hide_its_passwords() -> None:
    from contest.job.descriptor import DescriptorValidationError, load_descriptor

    text = descriptor(
        {
            "name": "SSHCmd",
            "label": "",  # ConTest's message shows the whole step
            "parameters": {"password": ["pw-in-msg"], "bag": [{"o": {"password": "pw-nested"}}]},
        }
    )
    with pytest.raises(DescriptorValidationError) as info:
        load_descriptor(text)
    message = str(info.value)
    assert "step has no label" in message
    assert "pw-in-msg" not in message and "pw-nested" not in message
    assert f"password:[{REDACTED}]" in message
