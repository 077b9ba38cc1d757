"""A job ready to run: every plugin instantiated and its parameters parsed.

Built from a descriptor by ``contest.job.build``; the job runner only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contest.bundle import Test
from contest.reporter import Reporter
from contest.targetmanager import TargetManager


@dataclass
class JobTest:
    """One test of a job with everything the job runner needs to run it."""

    __test__ = False

    test: Test
    target_manager: TargetManager
    target_manager_name: str
    acquire_params: Any
    release_params: Any
    acquire_timeout: float
    release_timeout: float
    num_retries: int = 0
    retry_interval: float = 0.0

    @property
    def name(self) -> str:
        return self.test.name


@dataclass
class ReporterBinding:
    reporter: Reporter
    name: str
    params: Any


@dataclass
class Job:
    id: int
    name: str
    runs: int  # 0 = forever
    run_interval: float
    tests: list[JobTest]
    run_reporters: list[ReporterBinding] = field(default_factory=list)
    final_reporters: list[ReporterBinding] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    requestor: str = ""
