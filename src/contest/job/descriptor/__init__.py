"""Job descriptors: read them as ConTest does, check them, and write them back as ConTest does.

This package's public face; import from here. Inside, one module per idea, each importing only
the ones before it: ``model`` (dataclasses, errors, limits, ConTest's canonical JSON), ``decode``
(Go's ``encoding/json`` rules, from :mod:`contest.golang`) and ``validate`` (ConTest's checks, all
errors at once). The JSON/YAML document model they read is :mod:`contest.golang.json`.

Typical use::

    d = load_descriptor(text)            # decode + validate, DescriptorValidationError if bad
    errors = validate_descriptor(d)      # or check an object built in code
    stored = d.to_json()                 # ConTest's field names and layout

A fetcher reads steps with :func:`decode_steps` / :func:`decode_fetch_parameters`; the job
builder freezes what the fetchers returned in an :class:`ExtendedDescriptor`, so status and resume
rebuild the job from :func:`decode_extended_descriptor` without fetching again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contest.job.descriptor.decode import (
    NULL_STEP_MESSAGE,
    NULL_TEST_MESSAGE,
    DescriptorFormat,
    decode_descriptor,
    decode_extended_descriptor,
    decode_fetch_parameters,
    decode_steps,
    decode_steps_document,
    parse_document,
    try_decode_descriptor,
    try_decode_extended_descriptor,
)
from contest.job.descriptor.model import (
    CURRENT_DESCRIPTOR_VERSION,
    DEFAULT_TARGET_MANAGER_ACQUIRE_TIMEOUT,
    DEFAULT_TARGET_MANAGER_RELEASE_TIMEOUT,
    MAX_JOB_NAME_LEN,
    MAX_REPORTER_NAME_LEN,
    MAX_TAG_LEN,
    MAX_TEST_NAME_LEN,
    MAX_TEST_STEP_LABEL_LEN,
    DescriptorDecodeError,
    DescriptorError,
    DescriptorValidationError,
    ExtendedDescriptor,
    FetchedTest,
    JobDescriptor,
    LiteralFetchParameters,
    ReporterConfig,
    Reporting,
    RetryParameters,
    StepDescriptor,
    TestDescriptor,
    related_paths,
)
from contest.job.descriptor.validate import (
    INTERNAL_TAG_PREFIX,
    check_tags,
    check_version,
    too_long,
    validate_descriptor,
    validate_extended_descriptor,
    validate_fetched_test,
)

__all__ = [
    "CURRENT_DESCRIPTOR_VERSION",
    "DEFAULT_TARGET_MANAGER_ACQUIRE_TIMEOUT",
    "DEFAULT_TARGET_MANAGER_RELEASE_TIMEOUT",
    "INTERNAL_TAG_PREFIX",
    "MAX_JOB_NAME_LEN",
    "MAX_REPORTER_NAME_LEN",
    "MAX_TAG_LEN",
    "MAX_TEST_NAME_LEN",
    "MAX_TEST_STEP_LABEL_LEN",
    "NULL_STEP_MESSAGE",
    "NULL_TEST_MESSAGE",
    "DescriptorDecodeError",
    "DescriptorError",
    "DescriptorFormat",
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
    "check_tags",
    "check_version",
    "decode_descriptor",
    "decode_extended_descriptor",
    "decode_fetch_parameters",
    "decode_steps",
    "decode_steps_document",
    "load_descriptor",
    "load_extended_descriptor",
    "parse_document",
    "related_paths",
    "too_long",
    "try_decode_descriptor",
    "try_decode_extended_descriptor",
    "validate_descriptor",
    "validate_extended_descriptor",
    "validate_fetched_test",
]


def load_descriptor(
    data: str | bytes | Mapping[str, Any],
    *,
    fmt: DescriptorFormat | None = None,
    require_version: bool = False,
    check_literal_steps: bool = True,
) -> JobDescriptor:
    """Decode and validate a descriptor; raise :class:`DescriptorValidationError` with all errors.

    Decoding errors (syntax, wrong types) and validation errors are reported together; a check is
    left out when it would only repeat a decoding error on the same field. The error is a
    :class:`DescriptorDecodeError` when the document could not be read at all.
    """
    d, decode_errors = try_decode_descriptor(data, fmt=fmt)
    if d is None:
        raise DescriptorDecodeError(decode_errors)
    errors = validate_descriptor(
        d,
        require_version=require_version,
        check_literal_steps=check_literal_steps,
        decode_errors=decode_errors,
    )
    if errors:
        raise DescriptorValidationError(errors)
    return d


def load_extended_descriptor(
    data: str | bytes | Mapping[str, Any], *, require_version: bool = False
) -> ExtendedDescriptor:
    """Decode and validate a stored extended descriptor (see :func:`load_descriptor`)."""
    ext, decode_errors = try_decode_extended_descriptor(data)
    if ext is None:
        raise DescriptorDecodeError(decode_errors)
    errors = validate_extended_descriptor(
        ext, require_version=require_version, decode_errors=decode_errors
    )
    if errors:
        raise DescriptorValidationError(errors)
    return ext
