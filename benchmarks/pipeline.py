"""How much the test runner costs per target per step, against a bare asyncio relay.

Framework: N targets through S pass-through steps with an in-memory event sink (TargetIn and
TargetOut recorded for every hop). Bare relay: the same hops with one asyncio.Queue per step, one
task per target, one future per hand-off and nothing else. Both run in this process, one after
the other, best of ``--repeat``. Then memory: N targets parked in a resumable Sleep step, as the
growth of the process's peak RSS divided by N.

    python benchmarks/pipeline.py --targets 10000 --steps 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import resource
import sys
import time
from typing import Any

from contest.bundle import Test, TestStepBundle
from contest.events import MemoryEventSink
from contest.params import StepParameters
from contest.plugins.teststeps.sleep import Sleep
from contest.runner.test_runner import TestRunner
from contest.signals import Scope
from contest.target import Target
from contest.testing.steps import Noop
from contest.teststep import (
    EventEmitter,
    StepChannels,
    StepContext,
    StepResult,
    TestStep,
)


class PassThrough(TestStep):
    """Reports every target as passed the moment it takes it (no task per target)."""

    name = "PassThrough"

    async def run(
        self,
        ctx: StepContext,
        ch: StepChannels,
        params: StepParameters,
        ev: EventEmitter,
        resume_state: bytes | None,
    ) -> None:
        put = ch.output.put
        async for target in ch.input:
            await put(StepResult(target))


async def framework(n: int, s: int, step_cls: type[TestStep]) -> float:
    sink = MemoryEventSink()
    test = Test("bench", [TestStepBundle(step_cls(), f"S{i}") for i in range(s)])
    targets = [Target(f"T{i}") for i in range(n)]
    gc.collect()
    t0 = time.perf_counter()
    result = await TestRunner(sink).run(test, targets, job_id=1, run_id=1)
    elapsed = time.perf_counter() - t0
    assert len(result.targets) == n and all(v is None for v in result.targets.values())
    assert len(sink.test) == 2 * n * s, len(sink.test)
    return elapsed


async def bare(n: int, s: int) -> float:
    loop = asyncio.get_running_loop()
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue() for _ in range(s)]

    async def step(q: asyncio.Queue[Any]) -> None:
        while True:
            item, fut = await q.get()
            fut.set_result(item)

    async def walk(item: str) -> None:
        for q in queues:
            fut = loop.create_future()
            q.put_nowait((item, fut))
            await fut

    steppers = [asyncio.ensure_future(step(q)) for q in queues]
    gc.collect()
    t0 = time.perf_counter()
    await asyncio.gather(*(walk(f"T{i}") for i in range(n)))
    elapsed = time.perf_counter() - t0
    for t in steppers:
        t.cancel()
    return elapsed


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def parked_memory(n: int) -> float:
    """KiB per target with n targets parked in a resumable Sleep step."""
    sink = MemoryEventSink()
    sleep = Sleep()
    params = StepParameters.from_values({"duration": ["1h"]})
    await sleep.validate_parameters(StepContext(scope=Scope()), params)
    test = Test("park", [TestStepBundle(sleep, "Sleep", params)])
    targets = [Target(f"T{i}") for i in range(n)]
    scope = Scope()
    gc.collect()
    before = peak_rss_kib()
    run = asyncio.ensure_future(TestRunner(sink).run(test, targets, scope=scope))
    while len(sink.test) < n:  # every target inside the step  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    after = peak_rss_kib()
    scope.cancel.set()
    with contextlib.suppress(Exception):  # the cancelled run raises Cancelled: expected
        await run
    return (after - before) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--parked", type=int, default=100_000)
    args = ap.parse_args()
    n, s = args.targets, args.steps
    hops = n * s

    def best(fn: Any) -> float:
        return min(asyncio.run(fn()) for _ in range(args.repeat))

    fw = best(lambda: framework(n, s, PassThrough))
    fw_noop = best(lambda: framework(n, s, Noop))
    relay = best(lambda: bare(n, s))
    print(
        f"targets={n} steps={s} hops={hops} "
        f"(best of {args.repeat}, python {sys.version.split()[0]})"
    )
    print(f"bare relay          : {relay / hops * 1e6:7.2f} us per target-step")
    print(
        f"framework           : {fw / hops * 1e6:7.2f} us per target-step "
        f"(pass-through steps, TargetIn+TargetOut recorded)  ratio {fw / relay:.2f}x"
    )
    print(
        f"framework, Noop step: {fw_noop / hops * 1e6:7.2f} us per target-step "
        f"(for_each_target; no task for a function that does not wait)  ratio "
        f"{fw_noop / relay:.2f}x"
    )
    if args.parked:
        kib = asyncio.run(parked_memory(args.parked))
        print(f"parked memory       : {kib:7.2f} KiB per target ({args.parked} targets in Sleep)")


if __name__ == "__main__":
    main()
