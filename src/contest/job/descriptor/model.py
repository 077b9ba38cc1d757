"""The job descriptor as data: dataclasses, errors, limits and ConTest's canonical JSON.

Attribute names are Python's (``job_name``); the JSON written by ``to_json`` uses ConTest's field
names (``JobName``) in the order ConTest's Go structs declare them (linuxboot's, the superset), so
a stored descriptor looks like the one ConTest stores.

Raw sub-documents (plugin parameters, step parameters) are kept as compact JSON **text**, because
plugins own their format and ConTest hands them the bytes, not a decoded value. ``None`` means the
key was absent, which differs from JSON ``null`` (text ``"null"``): ConTest's CSV and TargetList
target managers accept ``null`` release parameters but reject missing ones.

Durations are ``float`` seconds; see ``contest.golang.time`` for the Go syntax on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final

from contest.errors import ContestError
from contest.golang.json import JsonNumber, JsonObject, JsonValue, dumps, loads_json
from contest.golang.time import format_duration

__all__ = [
    "CURRENT_DESCRIPTOR_VERSION",
    "DEFAULT_TARGET_MANAGER_ACQUIRE_TIMEOUT",
    "DEFAULT_TARGET_MANAGER_RELEASE_TIMEOUT",
    "MAX_JOB_NAME_LEN",
    "MAX_REPORTER_NAME_LEN",
    "MAX_TAG_LEN",
    "MAX_TEST_NAME_LEN",
    "MAX_TEST_STEP_LABEL_LEN",
    "DescriptorDecodeError",
    "DescriptorError",
    "DescriptorValidationError",
    "ExtendedDescriptor",
    "FetchedTest",
    "JobDescriptor",
    "LiteralFetchParameters",
    "ReporterConfig",
    "Reporting",
    "RetryParameters",
    "StepDescriptor",
    "TestDescriptor",
    "related_paths",
]

#: The descriptor version linuxboot's ConTest speaks ("major.minor"; major must match, minor <=).
CURRENT_DESCRIPTOR_VERSION: Final = "1.0"
#: What ConTest waits for a target manager when the descriptor does not say (5 minutes).
DEFAULT_TARGET_MANAGER_ACQUIRE_TIMEOUT: Final = 300.0
DEFAULT_TARGET_MANAGER_RELEASE_TIMEOUT: Final = 300.0

# Storage limits (ConTest's pkg/storage/limits), in bytes of UTF-8 as Go's len() counts them.
MAX_JOB_NAME_LEN: Final = 64
MAX_TEST_NAME_LEN: Final = 32
MAX_TEST_STEP_LABEL_LEN: Final = 32
MAX_REPORTER_NAME_LEN: Final = 32
#: Not checked by ConTest (whose tag column then fails the insert after the job was accepted):
#: we refuse a tag that does not fit our tag column (``contest.storage.schema.TAG_MAX``) up front.
MAX_TAG_LEN: Final = 64


@dataclass(frozen=True)
class DescriptorError:
    """One problem in a descriptor: where (``TestDescriptors[0].TestFetcherName``) and what.

    ``message`` is ConTest's own text where ConTest has one in plain words (``job name cannot be
    empty``), so users' greps keep working, and ours otherwise. ``wire`` is the exact text
    ConTest's form API answers with when that differs from ``message``: Go's decoding errors
    (``json: cannot unmarshal number into Go struct field Descriptor.JobName of type string``)
    are shown in our words, with the path, everywhere but there.
    """

    path: str
    message: str
    wire: str | None = field(default=None, compare=False)
    #: Found while decoding (a key no field takes, a value of the wrong type): checks of what
    #: contains it or lies inside it would only repeat it (see :func:`related_paths`).
    decoding: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def related_paths(check_path: str, decode_path: str) -> bool:
    """Whether a check at ``check_path`` is about what a decoding error at ``decode_path``
    already covers: the same field, a field inside it, or what contains it (a test descriptor
    whose step had a misspelt key)."""
    return _inside(check_path, decode_path) or (
        check_path != "" and _inside(decode_path, check_path)
    )


def _inside(path: str, outer: str) -> bool:
    """Whether ``path`` is ``outer`` or below it (``outer`` ``""`` is the whole document)."""
    return outer == "" or path == outer or path.startswith((outer + ".", outer + "["))


class DescriptorValidationError(ContestError, ValueError):
    """A descriptor was refused; ``errors`` holds every problem found, not only the first."""

    def __init__(self, errors: Iterable[DescriptorError]) -> None:
        self.errors: list[DescriptorError] = list(errors)
        super().__init__("\n".join(map(str, self.errors)) or "invalid job descriptor")


class DescriptorDecodeError(DescriptorValidationError):
    """The document could not be read into a descriptor (syntax, or a value of the wrong type)."""


def _raw_tree(raw: str | None) -> JsonValue:
    """A raw sub-document as a tree, for embedding in the output."""
    return None if raw is None else loads_json(raw)


@dataclass
class ReporterConfig:
    """``{"Name", "Parameters"}``: a reporter plugin and its raw parameters."""

    name: str = ""
    parameters: str | None = None

    def to_tree(self) -> JsonObject:
        pairs: list[tuple[str, JsonValue]] = [("Name", self.name)]
        if self.parameters is not None:  # absent stays absent (Go would write null)
            pairs.append(("Parameters", _raw_tree(self.parameters)))
        return JsonObject(pairs)


@dataclass
class Reporting:
    """Reporters run after every run (``RunReporters``) and once after the last (``Final``)."""

    run_reporters: list[ReporterConfig] = field(default_factory=list)
    final_reporters: list[ReporterConfig] = field(default_factory=list)

    def to_tree(self) -> JsonObject:
        return JsonObject(
            [
                ("RunReporters", [r.to_tree() for r in self.run_reporters]),
                ("FinalReporters", [r.to_tree() for r in self.final_reporters]),
            ]
        )


@dataclass
class RetryParameters:
    """linuxboot: a test is attempted up to ``num_retries + 1`` times, ``retry_interval`` apart."""

    num_retries: int = 0
    retry_interval: float = 0.0

    def to_tree(self) -> JsonObject:
        return JsonObject(
            [
                ("NumRetries", _number(self.num_retries)),
                ("RetryInterval", format_duration(self.retry_interval)),
            ]
        )


def _number(value: int) -> JsonValue:
    return JsonNumber(str(int(value)))


@dataclass
class TestDescriptor:
    """One test of a job: where its targets come from and where its steps come from.

    The raw parameter fields belong to the named plugins and are validated by them.
    ``disabled``, ``retry_parameters`` and the cleanup fetcher are linuxboot additions.
    """

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    target_manager_name: str = ""
    target_manager_acquire_parameters: str | None = None
    target_manager_release_parameters: str | None = None
    test_fetcher_name: str = ""
    test_fetcher_fetch_parameters: str | None = None
    cleanup_fetcher_name: str = ""
    cleanup_fetcher_fetch_parameters: str | None = None
    disabled: bool = False
    retry_parameters: RetryParameters = field(default_factory=RetryParameters)

    def to_tree(self) -> JsonObject:
        pairs: list[tuple[str, JsonValue]] = [
            ("Disabled", self.disabled),
            ("RetryParameters", self.retry_parameters.to_tree()),
            ("TargetManagerName", self.target_manager_name),
        ]
        raw_fields: Sequence[tuple[str, str | None]] = (
            ("TargetManagerAcquireParameters", self.target_manager_acquire_parameters),
            ("TargetManagerReleaseParameters", self.target_manager_release_parameters),
        )
        pairs.extend((k, _raw_tree(v)) for k, v in raw_fields if v is not None)
        pairs.append(("TestFetcherName", self.test_fetcher_name))
        if self.test_fetcher_fetch_parameters is not None:
            pairs.append(
                ("TestFetcherFetchParameters", _raw_tree(self.test_fetcher_fetch_parameters))
            )
        pairs.append(("CleanupFetcherName", self.cleanup_fetcher_name))
        if self.cleanup_fetcher_fetch_parameters is not None:
            pairs.append(
                ("CleanupFetcherFetchParameters", _raw_tree(self.cleanup_fetcher_fetch_parameters))
            )
        return JsonObject(pairs)


@dataclass
class StepDescriptor:
    """One step of a test as a fetcher returns it: ``{"name", "label", "parameters"}``.

    ``parameters`` maps a name to a list of values, each kept as compact JSON text (a ``Param``
    wraps one): ``"args": ["40", 12, {"a": 1}]`` gives ``['"40"', '12', '{"a":1}']``.
    ``variables_mapping`` is linuxboot's declared-but-unused ``VariablesMapping``.
    """

    name: str = ""
    label: str = ""
    parameters: dict[str, list[str]] = field(default_factory=dict)
    variables_mapping: dict[str, str] = field(default_factory=dict)

    def to_tree(self) -> JsonObject:
        params = JsonObject((k, [loads_json(p) for p in v]) for k, v in self.parameters.items())
        mapping: JsonValue = (
            JsonObject(self.variables_mapping.items()) if self.variables_mapping else None
        )
        return JsonObject(
            [
                ("Name", self.name),
                ("Label", self.label),
                ("Parameters", params),
                ("VariablesMapping", mapping),
            ]
        )

    def go_repr(self) -> str:
        """The step as Go's ``%+v`` shows it in ConTest's messages (parameters as strings)."""

        def param_str(raw: str) -> str:
            try:
                value = loads_json(raw)
            except ValueError:
                return raw
            return value if isinstance(value, str) else raw

        from contest.redaction import redact_parameters  # passwords never in a message

        shown = redact_parameters(self.parameters)
        params = " ".join(
            f"{k}:[{' '.join(param_str(p) for p in shown[k])}]" for k in sorted(shown)
        )
        mapping = " ".join(
            f"{k}:{self.variables_mapping[k]}" for k in sorted(self.variables_mapping)
        )
        return (
            f"{{Name:{self.name} Label:{self.label} Parameters:map[{params}] "
            f"VariablesMapping:map[{mapping}]}}"
        )


@dataclass
class LiteralFetchParameters:
    """The literal test fetcher's parameters: ``{"TestName", "Steps": [step, ...]}``."""

    test_name: str = ""
    steps: list[StepDescriptor] = field(default_factory=list)


@dataclass
class JobDescriptor:
    """What a user submits: tests to run, how often, and who reports on them.

    ``version`` is ``None`` for a descriptor without ``Version`` (ConTest-FB style, accepted); a
    present version is checked with linuxboot's rules. ``runs == 0`` means run forever. The two
    timeouts are ``None`` when not given; see :attr:`acquire_timeout` for the value to use.
    """

    job_name: str = ""
    version: str | None = None
    tags: list[str] = field(default_factory=list)
    runs: int = 0
    run_interval: float = 0.0
    test_descriptors: list[TestDescriptor] = field(default_factory=list)
    reporting: Reporting = field(default_factory=Reporting)
    target_manager_acquire_timeout: float | None = None
    target_manager_release_timeout: float | None = None

    @property
    def acquire_timeout(self) -> float:
        """Seconds to wait for the target manager's acquire (ConTest's default: 5 minutes)."""
        if self.target_manager_acquire_timeout is None:
            return DEFAULT_TARGET_MANAGER_ACQUIRE_TIMEOUT
        return self.target_manager_acquire_timeout

    @property
    def release_timeout(self) -> float:
        """Seconds to wait for the target manager's release (ConTest's default: 5 minutes)."""
        if self.target_manager_release_timeout is None:
            return DEFAULT_TARGET_MANAGER_RELEASE_TIMEOUT
        return self.target_manager_release_timeout

    def to_pairs(self) -> list[tuple[str, JsonValue]]:
        """The top-level fields in ConTest's order (shared with the extended descriptor)."""
        pairs: list[tuple[str, JsonValue]] = [("JobName", self.job_name)]
        if self.version is not None:
            pairs.append(("Version", self.version))
        pairs += [
            ("Tags", list(self.tags)),
            ("Runs", _number(self.runs)),
            ("RunInterval", format_duration(self.run_interval)),
            ("TestDescriptors", [t.to_tree() for t in self.test_descriptors]),
            ("Reporting", self.reporting.to_tree()),
            ("TargetManagerAcquireTimeout", _opt_duration(self.target_manager_acquire_timeout)),
            ("TargetManagerReleaseTimeout", _opt_duration(self.target_manager_release_timeout)),
        ]
        return pairs

    def to_json(self, indent: int | None = 4) -> str:
        """ConTest's JSON for this descriptor (indented by 4 like the one ConTest stores).

        Differences from Go's output, both so that decoding it gives back an equal descriptor: an
        absent ``Version`` stays absent (Go writes ``""``, which linuxboot then refuses), and an
        absent raw parameter stays absent (Go writes ``null``).
        """
        return dumps(JsonObject(self.to_pairs()), indent)


def _opt_duration(seconds: float | None) -> JsonValue:
    return None if seconds is None else format_duration(seconds)


@dataclass
class FetchedTest:
    """What the fetchers returned for one test: its name, its steps and its cleanup steps.

    It is frozen into the extended descriptor at submission, so status and resume rebuild the job
    from it without calling the fetchers again (ConTest's ``TestStepsDescriptors``).
    """

    test_name: str = ""
    test_steps: list[StepDescriptor] = field(default_factory=list)
    cleanup_steps: list[StepDescriptor] = field(default_factory=list)

    def to_tree(self) -> JsonObject:
        return JsonObject(
            [
                ("TestName", self.test_name),
                ("TestSteps", [s.to_tree() for s in self.test_steps]),
                ("CleanupSteps", [s.to_tree() for s in self.cleanup_steps] or None),
            ]
        )


@dataclass
class ExtendedDescriptor:
    """A descriptor plus, per test descriptor (disabled ones included), what was fetched.

    Its JSON is ConTest's: every descriptor field at the top level plus ``TestStepsDescriptors``.
    """

    descriptor: JobDescriptor = field(default_factory=JobDescriptor)
    tests: list[FetchedTest] = field(default_factory=list)

    def to_json(self, indent: int | None = 4) -> str:
        pairs = self.descriptor.to_pairs()
        pairs.append(("TestStepsDescriptors", [t.to_tree() for t in self.tests]))
        return dumps(JsonObject(pairs), indent)
