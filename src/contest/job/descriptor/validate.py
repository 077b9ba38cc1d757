"""Structural validation of job descriptors: every rule ConTest applies that needs no plugin.

ConTest stops at the first problem; a user fixing a descriptor wants them all, so every check runs
and every failure is returned as a :class:`DescriptorError` with its path. Messages are ConTest's
(``"a bad one" is not a valid tag``, ``found duplicated labels: x``, ``Job name is too long:
65 > 64``...) so that people and scripts who know ConTest recognise them. The checks run in
ConTest's order (``pkg/jobmanager/start.go``, ``job.go``, ``bundles.go``).

What needs plugins (is the target manager registered, are its parameters valid, does a step accept
its parameters) is not checked here; the job builder does it with the plugin registry. Steps are
checked when they are in the descriptor, i.e. when the fetcher is ``literal``; steps from other
fetchers are checked with :func:`validate_fetched_test` once fetched.

Decisions, where ConTest gave none or we do better:

* ``Version``: absent is accepted (ConTest-FB descriptors have none); present, it must pass
  linuxboot's check, with its messages. ``require_version=True`` makes it mandatory (linuxboot).
* Labels: any non-empty label of at most 32 bytes is accepted (FB); linuxboot's identifier rule
  is not applied, so old descriptors run (``StringVar``/``IntVar`` need identifier labels, checked
  where they are used).
* Duplicate labels: within a test's steps, FB's ``found duplicated labels: <l>``; a cleanup step
  reusing a label, linuxboot's ``found duplicated labels across test/cleanup steps: <l>``.
* Tags longer than our tag column (64 bytes) are refused up front; ConTest does not check and its
  insert then fails after the job was accepted.
* A negative ``RetryInterval`` and a target manager timeout that is not positive are refused: they
  can only make every wait or every acquire/release fail at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from contest.golang.strconv import NumError, atoi, quote
from contest.job.descriptor.decode import decode_fetch_parameters
from contest.job.descriptor.model import (
    CURRENT_DESCRIPTOR_VERSION,
    MAX_JOB_NAME_LEN,
    MAX_REPORTER_NAME_LEN,
    MAX_TAG_LEN,
    MAX_TEST_NAME_LEN,
    MAX_TEST_STEP_LABEL_LEN,
    DescriptorError,
    ExtendedDescriptor,
    FetchedTest,
    JobDescriptor,
    StepDescriptor,
    TestDescriptor,
    related_paths,
)

__all__ = [
    "INTERNAL_TAG_PREFIX",
    "check_tags",
    "check_version",
    "too_long",
    "validate_descriptor",
    "validate_extended_descriptor",
    "validate_fetched_test",
]

#: Tags starting with it are reserved for the server (its instance tag).
INTERNAL_TAG_PREFIX: Final = "_"
_TAG_RE: Final = re.compile(r"[a-zA-Z0-9_-]+")
# What Go's strings.TrimSpace trims (unicode.IsSpace), which is not quite Python's str.isspace.
_GO_SPACE: Final = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"  # noqa: E501


def too_long(data_name: str, value: str, max_len: int) -> str | None:
    """ConTest's length limit message (``Job name is too long: 65 > 64``), lengths in bytes."""
    length = len(value.encode("utf-8", "surrogatepass"))
    return f"{data_name} is too long: {length} > {max_len}" if length > max_len else None


def check_version(version: str) -> str | None:
    """linuxboot's descriptor version check: ``None`` if ``version`` is usable, else its message.

    The version is ``"major.minor"``; the major must equal the server's, the minor must not be
    above the server's (so, today, only ``"1.0"`` and spellings like ``"1.-1"`` pass).
    """
    if version == "":
        return "version Error: Empty Job Descriptor Version Field"
    parts = version.split(".")
    if len(parts) != 2:
        return f"version Error: Incorrect Job Descriptor Version {version}"
    numbers = []
    for part in parts:
        try:
            numbers.append(atoi(part))
        except NumError as exc:
            return f"version Error: {exc}"
    major, minor = (int(n) for n in CURRENT_DESCRIPTOR_VERSION.split("."))
    if numbers[0] != major or numbers[1] > minor:
        return (
            f"version Error: The Job Descriptor Version {version} is not compatible with the "
            f"server: {CURRENT_DESCRIPTOR_VERSION}"
        )
    return None


def check_tags(
    tags: Sequence[str], *, allow_internal: bool = False, path: str = "Tags"
) -> list[DescriptorError]:
    """ConTest's tag rules: ``[a-zA-Z0-9_-]+``, no internal (``_``) tag unless allowed, no dups.

    The server adds its own instance tag (which is internal) after this check.
    """
    errors: list[DescriptorError] = []
    seen: set[str] = set()
    for i, tag in enumerate(tags):
        where = f"{path}[{i}]"
        if not _TAG_RE.fullmatch(tag):
            errors.append(DescriptorError(where, f"{quote(tag)} is not a valid tag"))
            continue
        if not allow_internal and tag.startswith(INTERNAL_TAG_PREFIX):
            errors.append(
                DescriptorError(where, f"{quote(tag)} is an internal tag and is not allowed")
            )
            continue
        if tag in seen:
            errors.append(DescriptorError(where, f"duplicate tag {quote(tag)}"))
            continue
        seen.add(tag)
        long = too_long("Tag", tag, MAX_TAG_LEN)
        if long:
            errors.append(DescriptorError(where, long))
    return errors


class _Collector:
    """Errors in check order; decoding errors mute the checks they would only repeat.

    A field that failed to decode keeps its zero value, so checks on it (or on what contains it)
    would report a second, misleading problem ("job name cannot be empty" after "cannot unmarshal
    number into ... JobName"). A check is dropped when its path is, contains, or is inside the path
    of a decoding error.
    """

    def __init__(self, decode_errors: Sequence[DescriptorError] = ()) -> None:
        self.items: list[tuple[bool, DescriptorError]] = [(True, e) for e in decode_errors]

    def decoded(self, errors: Sequence[DescriptorError]) -> None:
        self.items.extend((True, e) for e in errors)

    def check(self, path: str, message: str | None) -> None:
        if message:
            self.items.append((False, DescriptorError(path, message)))

    def checks(self, errors: Sequence[DescriptorError]) -> None:
        self.items.extend((False, e) for e in errors)

    def result(self) -> list[DescriptorError]:
        muting = [e.path for is_decode, e in self.items if is_decode]
        return [
            e
            for is_decode, e in self.items
            if is_decode or not any(related_paths(e.path, p) for p in muting)
        ]


def _blank(name: str) -> bool:
    return name.strip(_GO_SPACE) == ""


def _step_checks(c: _Collector, step: StepDescriptor, path: str) -> None:
    c.check(f"{path}.label", too_long("Test step label", step.label, MAX_TEST_STEP_LABEL_LEN))
    if step.label == "":
        c.check(
            f"{path}.label",
            f"step has no label, but it is mandatory (step: {step.go_repr()})",
        )


def _steps_checks(
    c: _Collector,
    test_name: str | None,
    name_path: str,
    steps: Sequence[StepDescriptor] | None,
    steps_path: str,
    cleanup: Sequence[StepDescriptor],
    cleanup_path: str,
) -> None:
    """Checks on one test's fetched steps; ``None`` for what is not known (another fetcher)."""
    labels: set[str] = set()
    if steps is not None:
        for j, step in enumerate(steps):
            _step_checks(c, step, f"{steps_path}[{j}]")
        if not steps:
            c.check(steps_path, "at least one test step is required per test")
    if test_name is not None:
        c.check(name_path, too_long("Test name", test_name, MAX_TEST_NAME_LEN))
    for j, step in enumerate(cleanup):
        _step_checks(c, step, f"{cleanup_path}[{j}]")
    for j, step in enumerate(steps or ()):
        if step.label and step.label in labels:
            c.check(f"{steps_path}[{j}].label", f"found duplicated labels: {step.label}")
        labels.add(step.label)
    for j, step in enumerate(cleanup):
        if step.label and step.label in labels:
            c.check(
                f"{cleanup_path}[{j}].label",
                f"found duplicated labels across test/cleanup steps: {step.label}",
            )
        labels.add(step.label)


def _is_literal(fetcher_name: str) -> bool:
    return fetcher_name.lower() == "literal"  # plugin names are case-insensitive


def _test_checks(c: _Collector, td: TestDescriptor, path: str, literal_steps: bool) -> None:
    if td.target_manager_name == "":
        c.check(f"{path}.TargetManagerName", "target manager name cannot be empty")
    if td.test_fetcher_name == "":
        c.check(f"{path}.TestFetcherName", "test fetcher name cannot be empty")
    if td.retry_parameters.retry_interval < 0:
        c.check(f"{path}.RetryParameters.RetryInterval", "retry interval must be non-negative")
    if not literal_steps:
        return
    test_name: str | None = None
    steps: list[StepDescriptor] | None = None
    params_path = f"{path}.TestFetcherFetchParameters"
    if _is_literal(td.test_fetcher_name):
        params, errors = decode_fetch_parameters(td.test_fetcher_fetch_parameters, params_path)
        c.decoded(errors)
        if params.test_name == "":
            c.check(f"{params_path}.TestName", "test name cannot be empty for fetch parameters")
        test_name, steps = params.test_name, params.steps
    cleanup: list[StepDescriptor] = []
    cleanup_path = f"{path}.CleanupFetcherFetchParameters"
    if _is_literal(td.cleanup_fetcher_name):
        cleanup_params, errors = decode_fetch_parameters(
            td.cleanup_fetcher_fetch_parameters, cleanup_path
        )
        c.decoded(errors)
        cleanup = cleanup_params.steps
    _steps_checks(
        c,
        test_name,
        f"{params_path}.TestName",
        steps,
        f"{params_path}.Steps",
        cleanup,
        f"{cleanup_path}.Steps",
    )


def _descriptor_checks(
    c: _Collector, d: JobDescriptor, *, require_version: bool, literal_steps: bool
) -> None:
    if d.version is not None or require_version:
        c.check("Version", check_version(d.version or ""))
    c.checks(check_tags(d.tags))
    c.check("JobName", too_long("Job name", d.job_name, MAX_JOB_NAME_LEN))
    if not d.test_descriptors:
        c.check("TestDescriptors", "need at least one TestDescriptor in the JobDescriptor")
    if d.job_name == "":
        c.check("JobName", "job name cannot be empty")
    if d.run_interval < 0:
        c.check("RunInterval", "run interval must be non-negative")
    rep = d.reporting
    if not rep.run_reporters and not rep.final_reporters:
        c.check(
            "Reporting",
            "at least one run reporter or one final reporter must be specified in a job",
        )
    for kind, reporters, blank_message in (
        ("Run", rep.run_reporters, "run reporters cannot have empty or all-whitespace names"),
        ("Final", rep.final_reporters, "invalid empty or all-whitespace final reporter name"),
    ):
        for i, reporter in enumerate(reporters):
            where = f"Reporting.{kind}Reporters[{i}].Name"
            if _blank(reporter.name):
                c.check(where, blank_message)
            else:
                c.check(where, too_long("Reporter name", reporter.name, MAX_REPORTER_NAME_LEN))
    for attr, field_name, what in (
        ("target_manager_acquire_timeout", "TargetManagerAcquireTimeout", "acquire"),
        ("target_manager_release_timeout", "TargetManagerReleaseTimeout", "release"),
    ):
        timeout: float | None = getattr(d, attr)
        if timeout is not None and timeout <= 0:
            c.check(field_name, f"target manager {what} timeout must be positive")
    for i, td in enumerate(d.test_descriptors):
        _test_checks(c, td, f"TestDescriptors[{i}]", literal_steps)


def validate_descriptor(
    d: JobDescriptor,
    *,
    require_version: bool = False,
    check_literal_steps: bool = True,
    decode_errors: Sequence[DescriptorError] = (),
) -> list[DescriptorError]:
    """Every structural problem of a decoded descriptor, in ConTest's order; ``[]`` if none.

    With ``check_literal_steps`` the steps of ``literal`` fetchers (and cleanup fetchers) are
    decoded from their raw parameters and checked: test name given and at most 32 bytes, at least
    one step, no ``null`` step, labels present, at most 32 bytes and unique. ``decode_errors``
    (from ``try_decode_descriptor``) are returned first and mute the checks they would repeat.
    """
    c = _Collector(decode_errors)
    _descriptor_checks(c, d, require_version=require_version, literal_steps=check_literal_steps)
    return c.result()


def validate_fetched_test(
    test: FetchedTest, path: str = "", *, require_steps: bool = True
) -> list[DescriptorError]:
    """Check what a fetcher returned for one test (for fetchers other than ``literal``).

    Paths are those of the extended descriptor under ``path``: ``TestName``,
    ``TestSteps[0].label``, ``CleanupSteps[1].label``. ``require_steps`` is linuxboot's "at least
    one test step is required per test".
    """
    c = _Collector()

    def sub(name: str) -> str:
        return f"{path}.{name}" if path else name

    steps = test.test_steps
    _steps_checks(
        c,
        test.test_name,
        sub("TestName"),
        steps if (steps or require_steps) else None,
        sub("TestSteps"),
        test.cleanup_steps,
        sub("CleanupSteps"),
    )
    return c.result()


def validate_extended_descriptor(
    ext: ExtendedDescriptor,
    *,
    require_version: bool = False,
    decode_errors: Sequence[DescriptorError] = (),
) -> list[DescriptorError]:
    """Check a stored extended descriptor before rebuilding a job from it (status, resume).

    The fetched steps are checked instead of re-reading literal parameters; there must be one
    entry per test descriptor.
    """
    c = _Collector(decode_errors)
    _descriptor_checks(c, ext.descriptor, require_version=require_version, literal_steps=False)
    if len(ext.tests) != len(ext.descriptor.test_descriptors):
        c.check(
            "TestStepsDescriptors",
            "length of steps descriptors must match length of test descriptors",
        )
    for i, test in enumerate(ext.tests):
        c.checks(validate_fetched_test(test, f"TestStepsDescriptors[{i}]"))
    return c.result()
