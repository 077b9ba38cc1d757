"""A JSON Schema of job descriptors, for editors: ``contest schema``.

Made from the decoder's rules and from the declarations of the plugins registered here, so an
editor with the YAML language server (or any JSON Schema tool) completes the descriptor's keys,
the plugin names, and each plugin's parameters, and marks what ``contest validate`` would refuse
on the spot: an unknown key, a parameter a step does not take, a value of the wrong type. Keys
match in any case, as the decoder matches them; keys starting with ``x-`` are allowed anywhere in
the descriptor's own objects (YAML anchors live there). What needs more than the document (a
registered plugin's own checks, labels unique in a test) is left to ``contest validate``.

Use it from an editor with a modeline on a descriptor's first line::

    # yaml-language-server: $schema=./contest-descriptor.schema.json

after ``contest schema > contest-descriptor.schema.json``.
"""

from __future__ import annotations

from typing import Any, Final

from contest.job.descriptor.decode import OBSOLETE_KEYS
from contest.paramspec import (
    DURATION_PATTERN,
    Parameters,
    any_case,
    declared,
    go_object,
    one_of_any_case,
    or_null,
)
from contest.registry import Plugin, PluginRegistry

__all__ = ["SCHEMA_DRAFT", "descriptor_schema"]

SCHEMA_DRAFT: Final = "http://json-schema.org/draft-07/schema#"
_STEP_REF: Final = "#/definitions/step"
_EXTENSION: Final[dict[str, Any]] = {
    "^[xX]-": {}
}  # the decoder ignores these keys (contest.job.descriptor)

_OBSOLETE_TOP: Final = OBSOLETE_KEYS["job.Descriptor"]
_STRING = or_null({"type": "string"})
_DURATION = or_null({"type": "string", "pattern": DURATION_PATTERN})
_BOOL = or_null({"type": "boolean"})


def _struct(properties: dict[str, dict[str, Any]], **named: Any) -> dict[str, Any]:
    """One of the descriptor's own objects (keys in any case, ``x-`` keys allowed)."""
    return go_object(properties, extra=_EXTENSION, **named)


def _name_is(key: str, plugin: Plugin) -> dict[str, Any]:
    """ "``key`` (in any case) is present and names ``plugin`` (in any case)"."""
    return {
        "allOf": [
            {"not": {"propertyNames": {"not": {"pattern": any_case(key)}}}},
            {"patternProperties": {any_case(key): {"pattern": any_case(plugin.name)}}},
        ]
    }


def _when(
    name_key: str, plugins: list[tuple[Plugin, dict[str, Parameters | None]]]
) -> list[dict[str, Any]]:
    """``if <name_key> names P then <its parameter keys> follow P's declarations``."""
    rules = []
    for plugin, by_key in plugins:
        then = {
            any_case(key): _plugin_params(decl) for key, decl in by_key.items() if decl is not None
        }
        if then:
            rules.append({"if": _name_is(name_key, plugin), "then": {"patternProperties": then}})
    return rules


def _plugin_params(decl: Parameters) -> dict[str, Any]:
    return or_null(decl.json_schema(step_parameters=False, steps_ref=_STEP_REF))


def _declared(registry: PluginRegistry, kind: str, attributes: dict[str, str]) -> list[
    tuple[Plugin, dict[str, Parameters | None]]
]:  # fmt: skip
    out = []
    for plugin in registry.plugins(kind):
        try:
            cls = plugin.cls
        except Exception:
            continue  # a plugin that cannot be made gets no schema (contest plugins says why)
        out.append((plugin, {key: declared(cls, attr) for key, attr in attributes.items()}))
    return out


def _names(registry: PluginRegistry, kind: str) -> dict[str, Any]:
    names = [p.name for p in registry.plugins(kind)]
    return or_null(one_of_any_case(names)) if names else _STRING


def _step(registry: PluginRegistry) -> dict[str, Any]:
    base = _struct(
        {
            "name": {**_names(registry, "teststeps"), "description": "the step's plugin"},
            "label": or_null({"type": "string", "maxLength": 32}),
            "parameters": or_null(
                {"type": "object", "additionalProperties": {"type": ["array", "null"]}}
            ),
            "VariablesMapping": or_null(
                {"type": "object", "additionalProperties": {"type": ["string", "null"]}}
            ),
        }
    )
    rules = []
    for plugin, by_key in _declared(registry, "teststeps", {"parameters": "parameters"}):
        decl = by_key["parameters"]
        if decl is not None:
            params = or_null(decl.json_schema(steps_ref=_STEP_REF))
            rules.append(
                {
                    "if": _name_is("name", plugin),
                    "then": {"patternProperties": {any_case("parameters"): params}},
                }
            )
    return {**base, "allOf": rules} if rules else base


def _reporter(registry: PluginRegistry, attribute: str) -> dict[str, Any]:
    base = _struct({"Name": _names(registry, "reporters"), "Parameters": {}})
    rules = _when("Name", _declared(registry, "reporters", {"Parameters": attribute}))
    return {**base, "allOf": rules} if rules else base


def _test_descriptor(registry: PluginRegistry) -> dict[str, Any]:
    fetchers = _names(registry, "testfetchers")
    base = _struct(
        {
            "TargetManagerName": _names(registry, "targetmanagers"),
            "TargetManagerAcquireParameters": {},
            "TargetManagerReleaseParameters": {},
            "TestFetcherName": fetchers,
            "TestFetcherFetchParameters": {},
            "CleanupFetcherName": fetchers,
            "CleanupFetcherFetchParameters": {},
            "Disabled": _BOOL,
            "RetryParameters": or_null(
                _struct(
                    {
                        "NumRetries": or_null(
                            {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
                        ),
                        "RetryInterval": _DURATION,
                    }
                )
            ),
        }
    )
    managers = _declared(
        registry,
        "targetmanagers",
        {
            "TargetManagerAcquireParameters": "acquire_parameters",
            "TargetManagerReleaseParameters": "release_parameters",
        },
    )
    rules = _when("TargetManagerName", managers)
    for name_key, params_key in (
        ("TestFetcherName", "TestFetcherFetchParameters"),
        ("CleanupFetcherName", "CleanupFetcherFetchParameters"),
    ):
        fetched = _declared(registry, "testfetchers", {params_key: "fetch_parameters"})
        rules += _when(name_key, fetched)
    return {**base, "allOf": rules} if rules else base


def descriptor_schema(registry: PluginRegistry) -> dict[str, Any]:
    """The JSON Schema (draft-07) of a job descriptor, with the plugins of ``registry``."""
    return {
        "$schema": SCHEMA_DRAFT,
        "title": "ConTest job descriptor (contest-py)",
        "description": "A job: its tests (targets, steps), how many runs, and its reporters.",
        **_struct(
            {
                "JobName": {**_STRING, "description": "the job's name (at most 64 bytes)"},
                "Version": {**_STRING, "description": 'the descriptor version, "1.0"'},
                "Tags": or_null({"type": "array", "items": {"type": ["string", "null"]}}),
                "Runs": {
                    **or_null({"type": "integer", "minimum": 0}),
                    "description": "how many times to run the tests (0: forever)",
                },
                "RunInterval": {**_DURATION, "description": 'the pause between runs ("10m")'},
                "TestDescriptors": or_null(
                    {"type": "array", "items": or_null({"$ref": "#/definitions/test"})}
                ),
                "Reporting": or_null(
                    _struct(
                        {
                            "RunReporters": or_null(
                                {"type": "array", "items": {"$ref": "#/definitions/runReporter"}}
                            ),
                            "FinalReporters": or_null(
                                {
                                    "type": "array",
                                    "items": {"$ref": "#/definitions/finalReporter"},
                                }
                            ),
                        }
                    )
                ),
                "TargetManagerAcquireTimeout": _DURATION,
                "TargetManagerReleaseTimeout": _DURATION,
                **{key: {"description": "obsolete: ignored"} for key in _OBSOLETE_TOP},
            }
        ),
        "definitions": {
            "test": _test_descriptor(registry),
            "step": or_null(_step(registry)),
            "runReporter": _reporter(registry, "run_parameters"),
            "finalReporter": _reporter(registry, "final_parameters"),
        },
    }
