"""Turning a descriptor into a runnable job: plugins found, parameters validated, tests fetched.

At submission ``build_job`` fetches every test (the only time fetchers run) and returns the
extended descriptor to store; status and resume call ``rebuild_job`` on that extended descriptor,
so the test definition is frozen at submission. Every problem is collected, each with the path of
the field it is about, so a user sees them all at once.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from contest import hostpolicy
from contest.bundle import StepParameterProblems, Test, TestStepBundle, new_step_bundle
from contest.context import PluginContext
from contest.errors import ContestError
from contest.job.descriptor import (
    DEFAULT_TARGET_MANAGER_ACQUIRE_TIMEOUT,
    DEFAULT_TARGET_MANAGER_RELEASE_TIMEOUT,
    DescriptorDecodeError,
    DescriptorError,
    DescriptorValidationError,
    ExtendedDescriptor,
    FetchedTest,
    JobDescriptor,
    ReporterConfig,
    StepDescriptor,
    decode_fetch_parameters,
    related_paths,
    try_decode_descriptor,
    validate_descriptor,
    validate_fetched_test,
)
from contest.job.model import Job, JobTest, ReporterBinding
from contest.params import StepParameters
from contest.paramspec import declared
from contest.registry import Plugin, PluginRegistry
from contest.signals import Scope
from contest.suggest import hint

CLEANUP_SUFFIX = " [CLEANUP]"


@dataclass
class _Errors:
    items: list[DescriptorError] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.items.append(DescriptorError(path, message))


def _decode(raw: str | None) -> Any:
    """Plugin parameters are stored as raw JSON text; plugins get the decoded value."""
    if raw is None:
        return None
    return json.loads(raw)


async def _bundles(
    registry: PluginRegistry, steps: list[StepDescriptor], path: str, errors: _Errors
) -> list[TestStepBundle]:
    out = []
    policy = hostpolicy.current()
    for i, sd in enumerate(steps):
        where = f"{path}[{i}]"
        try:
            bundle = await new_step_bundle(
                registry, sd.name, sd.label, StepParameters(sd.parameters), check_label=False
            )
            # the one check of local execution: at submission, retry and resume alike
            if bundle.step.uses_local_processes():
                policy.check_local_exec(f"step {bundle.name} (label {sd.label!r})")
            out.append(bundle)
        except StepParameterProblems as exc:
            for problem in exc.problems:
                errors.add(
                    f"{where}.parameters.{problem.path}",
                    f"step {exc.step_name}, parameter {problem.path}: {problem.message}",
                )
        except ContestError as exc:
            errors.add(where, str(exc))
    return out


_WHAT = {
    "reporters": "reporter",
    "testfetchers": "test fetcher",
    "targetmanagers": "target manager",
}


def _not_registered(registry: PluginRegistry, kind: str, name: str) -> str:
    known = [p.name for p in registry.plugins(kind)]
    return f"{_WHAT[kind]} {name!r} is not registered{hint(name, known, '')}"


def _declared_problems(
    plugin: Plugin, attribute: str, params: Any, path: str, errors: _Errors
) -> bool:
    """Check plugin parameters against what the plugin class declares in ``attribute`` (if
    anything); add each problem at its path; whether there was none."""
    decl = declared(plugin.cls, attribute)
    if decl is None:
        return True
    problems = decl.check_object(params)
    for problem in problems:
        where = f"{path}.{problem.path}" if problem.path else path
        errors.add(where, f"{_WHAT[plugin.kind]} {plugin.name}, {problem}")
    return not problems


def _reporters(
    registry: PluginRegistry, configs: list[ReporterConfig], kind: str, errors: _Errors
) -> list[ReporterBinding]:
    out = []
    for i, rc in enumerate(configs):
        where = f"Reporting.{kind}[{i}]"
        plugin = registry.find("reporters", rc.name)
        if plugin is None:
            errors.add(where + ".name", _not_registered(registry, "reporters", rc.name))
            continue
        params = _decode(rc.parameters)
        attribute = "run_parameters" if kind == "RunReporters" else "final_parameters"
        if not _declared_problems(plugin, attribute, params, where + ".parameters", errors):
            continue
        try:
            reporter = plugin.factory()
            if kind == "RunReporters":
                parsed = reporter.validate_run_parameters(params)
            else:
                parsed = reporter.validate_final_parameters(params)
        except Exception as exc:
            errors.add(where + ".parameters", f"reporter {plugin.name}: {exc}")
            continue
        out.append(ReporterBinding(reporter, plugin.name, parsed))
    return out


async def _fetch(
    registry: PluginRegistry,
    name: str,
    raw: str | None,
    path: str,
    require_name: bool,
    errors: _Errors,
) -> tuple[str, list[StepDescriptor]] | None:
    plugin = registry.find("testfetchers", name)
    if plugin is None:
        errors.add(path, _not_registered(registry, "testfetchers", name))
        return None
    if _is_literal(name):
        # the descriptor's validation decoded these already and reported every problem (a
        # misspelt key in one step, a value of the wrong type), each at its path: build what
        # decoded, so that the other steps' problems are reported too, not hidden by the fetch
        decoded, problems = decode_fetch_parameters("null" if raw is None else raw)
        if problems:
            return decoded.test_name, list(decoded.steps)
    if not _declared_problems(plugin, "fetch_parameters", _decode(raw), path, errors):
        return None
    try:
        fetcher = plugin.factory()
        params = fetcher.validate_fetch_parameters(_decode(raw), require_name)
        result: tuple[str, list[StepDescriptor]] = await fetcher.fetch(
            PluginContext(scope=Scope()), params
        )
        return result
    except Exception as exc:
        errors.add(path, f"test fetcher {plugin.name}: {exc}")
        return None


async def fetch_tests(
    d: JobDescriptor, registry: PluginRegistry
) -> tuple[ExtendedDescriptor, list[DescriptorError]]:
    """Call every test's fetcher (and cleanup fetcher) once."""
    errors = _Errors()
    fetched: list[FetchedTest] = []
    for i, td in enumerate(d.test_descriptors):
        path = f"TestDescriptors[{i}]"
        got = await _fetch(
            registry,
            td.test_fetcher_name,
            td.test_fetcher_fetch_parameters,
            path + ".TestFetcherFetchParameters",
            True,
            errors,
        )
        ft = FetchedTest(test_name=got[0] if got else "", test_steps=got[1] if got else [])
        if td.cleanup_fetcher_name:
            cleanup = await _fetch(
                registry,
                td.cleanup_fetcher_name,
                td.cleanup_fetcher_fetch_parameters,
                path + ".CleanupFetcherFetchParameters",
                False,
                errors,
            )
            if cleanup:
                ft.cleanup_steps = cleanup[1]
        if got and not _is_literal(td.test_fetcher_name):  # literal steps: checked already
            for e in validate_fetched_test(ft, path):
                errors.items.append(e)
        fetched.append(ft)
    return ExtendedDescriptor(descriptor=d, tests=fetched), errors.items


def _is_literal(fetcher_name: str) -> bool:
    return fetcher_name.lower() == "literal"


def _tm_parameters(
    plugin: Plugin, tm: Any, which: str, raw: str | None, path: str, errors: _Errors
) -> Any:
    """A target manager's acquire or release parameters: declared checks, then its own."""
    where = f"{path}.TargetManager{which.title()}Parameters"
    params = _decode(raw)
    if not _declared_problems(plugin, f"{which}_parameters", params, where, errors):
        return None
    try:
        return getattr(tm, f"validate_{which}_parameters")(params)
    except Exception as exc:
        errors.add(where, f"target manager {plugin.name}: {exc}")
        return None


async def rebuild_job(ext: ExtendedDescriptor, registry: PluginRegistry, job_id: int = 0) -> Job:
    """The runnable job from an extended descriptor (no fetching). Raises
    ``DescriptorValidationError`` with every problem found."""
    d = ext.descriptor
    errors = _Errors()
    tests: list[JobTest] = []
    if len(ext.tests) != len(d.test_descriptors):
        errors.add(
            "TestStepsDescriptors",
            f"{len(ext.tests)} fetched tests for {len(d.test_descriptors)} test descriptors",
        )
    for i, (td, ft) in enumerate(zip(d.test_descriptors, ext.tests, strict=False)):
        path = f"TestDescriptors[{i}]"
        plugin = registry.find("targetmanagers", td.target_manager_name)
        tm: Any = None
        acquire_params: Any = None
        release_params: Any = None
        if plugin is None:
            errors.add(
                path + ".TargetManagerName",
                _not_registered(registry, "targetmanagers", td.target_manager_name),
            )
        else:
            try:
                tm = plugin.factory()
            except Exception as exc:
                errors.add(path + ".TargetManagerName", f"target manager {plugin.name}: {exc}")
            if tm is not None:
                acquire_params = _tm_parameters(
                    plugin, tm, "acquire", td.target_manager_acquire_parameters, path, errors
                )
                release_params = _tm_parameters(
                    plugin, tm, "release", td.target_manager_release_parameters, path, errors
                )
        # the path of a step is where the user wrote it: the literal fetcher's parameters, or
        # what another fetcher returned (stored in the extended descriptor)
        if _is_literal(td.test_fetcher_name):
            steps_path = path + ".TestFetcherFetchParameters.Steps"
        else:
            steps_path = f"TestStepsDescriptors[{i}].TestSteps"
        if _is_literal(td.cleanup_fetcher_name):
            cleanup_path = path + ".CleanupFetcherFetchParameters.Steps"
        else:
            cleanup_path = f"TestStepsDescriptors[{i}].CleanupSteps"
        steps = await _bundles(registry, ft.test_steps, steps_path, errors)
        cleanup = await _bundles(registry, ft.cleanup_steps, cleanup_path, errors)
        if td.disabled or tm is None or plugin is None:
            continue
        tests.append(
            JobTest(
                test=Test(ft.test_name, steps, cleanup),
                target_manager=tm,
                target_manager_name=plugin.name,
                acquire_params=acquire_params,
                release_params=release_params,
                acquire_timeout=d.target_manager_acquire_timeout
                or DEFAULT_TARGET_MANAGER_ACQUIRE_TIMEOUT,
                release_timeout=d.target_manager_release_timeout
                or DEFAULT_TARGET_MANAGER_RELEASE_TIMEOUT,
                num_retries=td.retry_parameters.num_retries,
                retry_interval=td.retry_parameters.retry_interval,
            )
        )
    run_reporters = _reporters(registry, d.reporting.run_reporters, "RunReporters", errors)
    final_reporters = _reporters(registry, d.reporting.final_reporters, "FinalReporters", errors)
    if errors.items:
        raise DescriptorValidationError(errors.items)
    return Job(
        id=job_id,
        name=d.job_name,
        runs=d.runs,
        run_interval=d.run_interval,
        tests=tests,
        run_reporters=run_reporters,
        final_reporters=final_reporters,
        tags=list(d.tags),
    )


async def build_job(
    d: JobDescriptor, registry: PluginRegistry, job_id: int = 0
) -> tuple[Job, ExtendedDescriptor]:
    """Validate ``d`` completely (structure, plugins, parameters, fetched steps), fetching each
    test once. Raises ``DescriptorValidationError`` listing every problem."""
    errors = list(validate_descriptor(d))
    ext, fetch_errors = await fetch_tests(d, registry)
    errors.extend(fetch_errors)
    try:
        job = await rebuild_job(ext, registry, job_id)
    except DescriptorValidationError as exc:
        errors.extend(exc.errors)
        job = None
    if errors:
        raise DescriptorValidationError(_dedupe(errors))
    assert job is not None
    return job, ext


def decode_job_descriptor(data: str | bytes) -> tuple[JobDescriptor, list[DescriptorError]]:
    """The first, plugin-free part of :func:`load_job`: decode (once) and check the structure.
    Returns the descriptor and its problems; raises ``DescriptorDecodeError`` if the document
    cannot be read at all. Synchronous and self-contained, so the server runs it in a worker
    thread, off the loop that runs the jobs (a 10,000-target descriptor takes a tenth of a
    second)."""
    d, decode_errors = try_decode_descriptor(data)
    if d is None:
        raise DescriptorDecodeError(decode_errors)
    return d, validate_descriptor(d, decode_errors=decode_errors)


async def load_job(
    data: str | bytes,
    registry: PluginRegistry,
    job_id: int = 0,
    *,
    decoded: tuple[JobDescriptor, list[DescriptorError]] | None = None,
) -> tuple[JobDescriptor, Job, ExtendedDescriptor]:
    """Decode, validate and build a job from descriptor text (JSON or YAML), fetching its
    tests. Raises ``DescriptorValidationError`` with every problem: structural ones and the
    plugins' together (only a document that cannot be decoded at all stops at decoding).
    ``decoded`` is :func:`decode_job_descriptor`'s result, if the caller has it already."""
    d, errors = decoded if decoded is not None else decode_job_descriptor(data)
    errors = list(errors)
    try:
        job, ext = await build_job(d, registry, job_id)
    except DescriptorValidationError as exc:
        errors.extend(exc.errors)
    if errors:
        raise DescriptorValidationError(_dedupe(errors))
    return d, job, ext


@dataclass(slots=True)
class BuiltJob:
    """A job ready to store: what :func:`load_job` returns, plus the two texts stored with it."""

    descriptor: JobDescriptor
    job: Job
    shown_descriptor: str  # compact, secrets redacted: what the API serves
    extended_descriptor: str  # compact, complete: what resume and retry rebuild from


async def load_job_in_worker(
    data: str | bytes, registry: PluginRegistry, policy: hostpolicy.HostPolicy
) -> BuiltJob:
    """:func:`load_job` and the stored texts, in a worker thread with its own event loop, under
    ``policy``.

    Everything here is CPU work on the size of the descriptor (a 50,000-target descriptor takes
    seconds): on the server's loop it would stall every job and request meanwhile. The steps'
    ``validate_parameters`` and the fetchers run on the worker's loop then; what they create
    is used later on the server's loop, so they must not keep objects tied to a loop (a running
    task, a loop-bound future), as the plugin guide says."""

    def work() -> BuiltJob:
        with hostpolicy.using(policy):
            return asyncio.run(_load_and_serialize(data, registry))

    return await asyncio.to_thread(work)


async def _load_and_serialize(data: str | bytes, registry: PluginRegistry) -> BuiltJob:
    from contest.redaction import find_secrets, redact_descriptor, remember_secrets

    desc, job, ext = await load_job(data, registry)
    # compact JSON: a 100,000-target descriptor fits MySQL's default packet size
    extended = ext.to_json(indent=None)
    # hidden from every log line from now on: before the job is stored (a database driver's
    # debug log shows the statement that stores it)
    remember_secrets(find_secrets(extended, registry))
    shown = redact_descriptor(desc.to_json(indent=None), registry)
    return BuiltJob(desc, job, shown, extended)


def _dedupe(errors: list[DescriptorError]) -> list[DescriptorError]:
    """Each problem once; and none that only repeats a decoding error (a misspelt key in a step
    makes the step nameless: "the step has no name" would add nothing)."""
    decoding = [e.path for e in errors if e.decoding]
    seen = set()
    out = []
    for e in errors:
        key = (e.path, e.message)
        if key in seen:
            continue
        if not e.decoding and any(related_paths(e.path, p) for p in decoding):
            continue
        seen.add(key)
        out.append(e)
    return out
