"""The test runner: walks every target through the steps of one test, concurrently.

How a target moves
------------------
A target's walk is a small state machine (``_TargetState.wait`` says what it waits for), moved
on by callbacks: no task per target. For each step in turn the runner *offers* the target to the
step's input; the step takes it (the hand-off is unbuffered), and at that instant the runner
records ``TargetIn``. When the step reports the target on its output, the runner records
``TargetOut`` (pass) or ``TargetErr`` (fail). Once both events are stored, the target moves on
to the next step at once (pipelining), or stops on a failure (``_go``, which reads top to bottom
as the walk's loop did). A step is started the first time a target reaches it; its input is
closed once no target can reach it any more, which is how a step learns it is done.

Waiting costs no wake-up per target. The events of one group commit share one future (the
storage writer's ``Ack.batch()``): the runner keeps, per batch, the targets waiting for it and
moves them all on from that future's one callback. Any other awaitable a sink returns gets a
callback of its own; a target with nothing to wait for (a sink that returns None) goes on the
runner's ready list, which one loop callback moves on. A target never moves on inside a step's
own call (its take or its report), only from such a callback, as a woken task would.

Everything a step can get wrong (a result for a target it never had, a second result, a lost
target, an early return, an exception, a return without a result, a pause nobody asked for, never
returning) becomes a *step error* with ConTest's message, recorded as a ``TestError`` event; the
runner then cancels every step and fails the run. It never hangs on a misbehaving step: steps
get the shutdown timeout to return once they have no more work, and are abandoned after it.

Pause and cancel
----------------
On pause, targets waiting to enter a step stop where they are; targets inside a step stay there
until the step reports them or returns ``Paused``; the runner then returns a resume state holding
every target's step and phase, the steps' own blobs and the step variables. Resuming from it puts
every target back where it stood: a target that was inside a step is not handed over again (the
step brings it back from its own blob), so no target is seen twice or lost. Cancel wins over
pause: everything stops, and ``run`` raises ``Cancelled``.

Checkpoints
-----------
Given the job's :class:`~contest.checkpoint.CheckpointBook`, each step gets a slot in it for
this attempt, closed when the step returns: a step that opts in records there, as it runs, the
per-target state a pause would give (see :mod:`contest.checkpoint`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import traceback
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contest.bundle import Test, TestStepBundle
from contest.channels import StepChannels, StepInput, StepOutput, StepResult
from contest.checkpoint import CheckpointBook, StepSlot
from contest.context import StepContext
from contest.errors import (
    Cancelled,
    EventWriteError,
    Paused,
    ResumeStateError,
    StepCancelledWithoutRequest,
    StepClosedChannels,
    StepCrashed,
    StepError,
    StepLostTargets,
    StepPausedWithoutRequest,
    StepReturnedDuplicateResult,
    StepReturnedEarly,
    StepReturnedNoTarget,
    StepReturnedUnexpectedResult,
    StepsNeverReturned,
)
from contest.events import (
    TARGET_ERR,
    TARGET_IN,
    TARGET_OUT,
    TEST_ERROR,
    VARIABLE_EMITTED,
    EventEmitter,
    EventSink,
    TestEventHeader,
)
from contest.logs import bind_step
from contest.metrics import step_timer, track_runner
from contest.params import current_variables
from contest.resume import Phase, TargetPosition, TestRunState, state_to_bytes
from contest.runner import interpreter
from contest.signals import Scope
from contest.storage.writer import Ack
from contest.target import Target
from contest.variables import StepVariables, VariableStore

log = logging.getLogger(__name__)

DEFAULT_SHUTDOWN_TIMEOUT = 30.0


@dataclass
class TestRunResult:
    """What one run of a test ended with.

    ``targets`` maps every target that finished to its error message (None: it passed every
    step). A paused run has ``resume_state`` set, and the targets still in flight are absent.
    """

    __test__ = False

    targets: dict[str, str | None] = field(default_factory=dict)
    resume_state: bytes | None = None
    variables: VariableStore | None = None

    @property
    def paused(self) -> bool:
        return self.resume_state is not None


_NO_RESULT: Any = object()  # outcome of a target its step has not reported yet
_RELEASED: Any = object()  # outcome of a target whose step stopped without reporting it

# what a target waits for (_TargetState.wait), in the order of its way through one step
_OUTSIDE = 0  # nothing: it is about to be offered to its step (or to stop)
_OFFERED = 1  # its step to take it
_IN = 2  # its TargetIn to be stored
_RESULT = 3  # its step's report (or release)
_OUT = 4  # its TargetOut/TargetErr to be stored
_WITHDRAWN = 5  # nothing: its offer was withdrawn (pause, cancel, the step returned)
_LEFT = 6  # nothing: it has stopped walking

#: what a sink's write gives to wait for once normalised: the writer's Ack, a future, nothing
_Durable = Ack | asyncio.Future[None] | None


class _TargetState:
    """Where one target stands: step index, phase, and (once failed) its error; and, while it
    walks, what it waits for."""

    __slots__ = (
        "entered",
        "error",
        "outcome",
        "pending",
        "phase",
        "step",
        "stored",
        "target",
        "wait",
    )

    def __init__(self, target: Target, step: int = 0, phase: Phase = Phase.INIT) -> None:
        self.target = target
        self.step = step
        self.phase = phase
        self.error: str | None = None
        self.wait = _OUTSIDE
        self.outcome: Any = _NO_RESULT  # its step's report: None (pass), the error, _RELEASED
        self.entered = 0.0  # when it entered its step (monotonic; 0: before a resume)
        self.pending: _Durable = None  # durability of the TargetIn just recorded
        self.stored: _Durable = None  # durability of its TargetOut/TargetErr


def _write(
    emitter: EventEmitter, name: str, target: Target | None, payload: Any = None
) -> _Durable:
    """Write one of the runner's own events; returns what to wait for to know it is stored:
    the writer's Ack as it is (its batch is waited for once for all its targets), any other
    awaitable as a future (a coroutine starts now). A sink that fails at once (instead of
    through the awaitable it returns) must not break the hand-off or routing in the middle: its
    error is turned into a failed future, handled where the runner waits for the write."""
    try:
        written = emitter.write(name, target, payload)
    except Exception as exc:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_exception(exc)
        return fut
    if written is None or type(written) is Ack or isinstance(written, asyncio.Future):
        return written
    return asyncio.ensure_future(written)


def _unwrap(ts: _TargetState) -> Target:
    return ts.target


class _Step:
    """One step of this run: its channels, its task and the targets it holds."""

    __slots__ = (
        "blob",
        "bundle",
        "done",
        "emitter",
        "error",
        "index",
        "input",
        "kept",
        "left",
        "paused",
        "paused_state",
        "runner",
        "started",
        "task",
        "timer",
        "waiting",
    )

    def __init__(self, runner: TestRunner, index: int, bundle: TestStepBundle) -> None:
        self.runner = runner
        self.index = index
        self.bundle = bundle
        self.input: StepInput[_TargetState] = StepInput(self.handoff, _unwrap)
        self.waiting: dict[str, _TargetState] = {}  # target id -> state, for targets inside
        self.left = 0  # targets that may still be offered to this step
        self.started = False
        self.done = False
        self.task: asyncio.Task[None] | None = None
        self.blob: bytes | None = None  # resume state given to the step
        self.paused = False  # the step returned Paused
        self.paused_state: bytes | None = None  # resume state the step returned
        self.error: StepError | None = None
        self.emitter: EventEmitter | None = None
        self.kept: StepSlot | None = None  # its place in the job's checkpoints
        self.timer = step_timer(bundle.label)  # contest_step_target_seconds

    @property
    def label(self) -> str:
        return self.bundle.label

    def handoff(self, ts: _TargetState) -> None:
        """The step took ``ts.target``: it is inside now. Called synchronously at the hand-off."""
        ts.phase = Phase.RUN
        ts.outcome = _NO_RESULT
        ts.entered = time.monotonic()
        self.waiting[ts.target.id] = ts
        assert self.emitter is not None
        ts.pending = _write(self.emitter, TARGET_IN, ts.target)
        taken_later, ts.wait = ts.wait == _OFFERED, _IN
        self.runner.taken(self, ts, taken_later)

    def route(self, result: StepResult) -> None:
        """A result from the step (``ch.output.put``). Taken at once: the target, not the step,
        waits for its ``TargetOut``/``TargetErr`` to be stored (``ts.stored``)."""
        runner = self.runner
        if runner.scope.cancel.is_set():
            return  # the run is over: a late result is neither news nor a contract breach
        target = result.target
        if target is None:
            runner.fail_step(self, StepReturnedNoTarget(self.label))
            return
        ts = self.waiting.pop(target.id, None)
        if ts is None:
            known = runner.states.get(target.id)
            if known is not None and (
                known.step > self.index or (known.step == self.index and known.phase == Phase.END)
            ):
                runner.fail_step(self, StepReturnedDuplicateResult(self.label, target.id))
            else:
                runner.fail_step(self, StepReturnedUnexpectedResult(self.label, target.id))
            return
        err = result.error
        ts.phase = Phase.END
        if ts.entered:
            self.timer.add(time.monotonic() - ts.entered, err is not None)
        assert self.emitter is not None
        if err is None:
            ts.stored = _write(self.emitter, TARGET_OUT, ts.target)
            msg = None
        else:
            msg = err if isinstance(err, str) else (str(err) or type(err).__name__)
            ts.stored = _write(self.emitter, TARGET_ERR, ts.target, {"Error": msg})
        ts.outcome = msg
        if ts.wait == _RESULT:  # else its TargetIn is not stored yet: it comes here after that
            runner.reported(ts)

    def release_waiting(self) -> list[str]:
        """Stop waiting for the targets inside; they stay in phase RUN. Returns their ids."""
        ids = list(self.waiting)
        runner = self.runner
        for ts in self.waiting.values():
            ts.outcome = _RELEASED
            if ts.wait == _RESULT:
                runner.soon(ts)
        self.waiting.clear()
        return ids

    def output_closed(self) -> None:
        self.runner.fail_step(self, StepClosedChannels(self.label))


class TestRunner:
    """Runs one test on a set of targets. One instance per run (it holds that run's state)."""

    __test__ = False

    def __init__(
        self,
        sink: EventSink,
        *,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    ) -> None:
        self.sink = sink
        self.shutdown_timeout = shutdown_timeout
        self.states: dict[str, _TargetState] = {}
        self.steps: list[_Step] = []
        self.errors: list[StepError] = []
        self.scope = Scope()
        self._parent: Scope | None = None
        self._alive = 0
        self._all_left: asyncio.Future[None] | None = None
        self._stopping = False
        self._variables = VariableStore()
        self._header_args: tuple[int, int, str, int] = (0, 0, "", 0)
        self._tasks: set[asyncio.Task[None]] = set()  # writes of TestError and variables
        self._book: CheckpointBook | None = None
        self._ready: list[_TargetState] = []  # targets to move on from the next _run_ready
        self._commits: dict[asyncio.Future[None], list[_TargetState]] = {}  # waiting per batch
        self._abandoned = False  # the run is over: no target moves any more
        # the context targets move in (and steps start in): the run's own, as a task per
        # target had; not that of whoever resolves what they wait for (a step's, whose
        # variables, e.g. ``pausable``, are not the next step's: test_pause_at_scale.py)
        self._context = contextvars.copy_context()

    # --- the run, top to bottom ------------------------------------------------------------------

    async def run(
        self,
        test: Test,
        targets: Sequence[Target],
        *,
        job_id: int = 0,
        run_id: int = 0,
        attempt: int = 0,
        scope: Scope | None = None,
        resume_state: bytes | None = None,
        steps: Sequence[TestStepBundle] | None = None,
        test_name: str | None = None,
        variables: VariableStore | None = None,
        checkpoints: CheckpointBook | None = None,
    ) -> TestRunResult:
        """Run ``test`` (or the given ``steps``, e.g. cleanup steps) on ``targets``.

        Returns the outcome (paused or not); raises ``Cancelled`` if ``scope`` was cancelled and
        the first ``StepError`` if a step misbehaved. ``checkpoints``: the job's, where the
        steps that opt in keep theirs.
        """
        if self.steps:
            raise RuntimeError("a TestRunner runs once; make a new one")
        interpreter.prepare()
        bundles = list(test.steps if steps is None else steps)
        self._parent = scope
        self.scope = scope.child() if scope is not None else Scope()
        self._header_args = (job_id, run_id, test.name if test_name is None else test_name, attempt)
        if variables is not None:
            self._variables = variables
        self._book = checkpoints
        self.steps = [_Step(self, i, b) for i, b in enumerate(bundles)]
        for st in self.steps:
            st.emitter = EventEmitter(self.sink, self._header(st.label), None)

        self._place_targets(targets, resume_state, job_id)
        self._count_left()
        track_runner(self)
        self.scope.pause.add_callback(self._on_pause)
        self.scope.cancel.add_callback(self._on_cancel)
        self._context = contextvars.copy_context()

        # targets inside a step when we paused: that step starts now and brings them back (a
        # step may report one before the others start walking: it moves on from there)
        for ts in self.states.values():
            if ts.phase == Phase.RUN:
                st = self.steps[ts.step]
                ts.wait = _RESULT
                st.waiting[ts.target.id] = ts
                if not st.started:
                    self._start_step(st)

        walking = [ts for ts in self.states.values() if ts.phase != Phase.END]
        self._alive = len(walking)
        self._all_left = asyncio.get_running_loop().create_future()
        if self._alive == 0:
            self._all_left.set_result(None)
        for ts in walking:
            if ts.wait == _OUTSIDE:
                self.soon(ts)
        try:
            await self._all_left
            await self._wait_steps()
        except asyncio.CancelledError:
            self.scope.cancel.set()
            self._abandon_all()
            raise
        finally:
            for st in self.steps:  # an abandoned step never returned: it keeps nothing either
                if st.kept is not None:
                    st.kept.close()
        return self._outcome(job_id, run_id)

    def _go(self, ts: _TargetState) -> None:
        """Move one target on as far as it can go now: through the rest of its step, then into
        the next ones, until it must wait (it is then parked where it will be moved on from) or
        it stops."""
        if self._abandoned:
            return
        try:
            self._advance(ts)
        except Exception:  # a bug here must not leave the run waiting for this target forever
            log.exception("test runner: target %s", ts.target.id)
            if ts.wait != _LEFT:
                self._leave(ts)

    def _advance(self, ts: _TargetState) -> None:
        steps = self.steps
        st = steps[ts.step]
        while True:
            wait = ts.wait
            if wait == _OUTSIDE:  # not inside this step yet
                if self._stopping:
                    self._leave(ts)
                    return
                ts.phase = Phase.BEGIN
                if not st.started:
                    self._start_step(st)
                if st.done:
                    self.fail_step(st, StepReturnedEarly(st.label, [ts.target.id]))
                    self._leave(ts)
                    return
                if not st.input.put(ts):
                    ts.wait = _OFFERED  # moved on by the hand-off (handoff) or withdrawn
                    return
                wait = ts.wait  # taken now: handoff recorded TargetIn (_IN)
            if wait == _IN:
                pending = ts.pending
                if pending is not None:
                    if not pending.done():
                        self._park(ts, pending)
                        return
                    ts.pending = None
                    try:
                        pending.result()  # raises why it is not stored
                    except asyncio.CancelledError:
                        self._leave(ts)
                        return
                    except Exception as exc:
                        self.fail_step(st, EventWriteError(st.label, "target injection", exc))
                        self._leave(ts)
                        return
                ts.wait = wait = _RESULT
            if wait == _RESULT:
                outcome = ts.outcome
                if outcome is _NO_RESULT:
                    return  # moved on by the step's report (route) or release
                if outcome is _RELEASED:
                    ts.phase = Phase.RUN
                    self._leave(ts)
                    return
                ts.wait = wait = _OUT
            if wait == _OUT:
                stored = ts.stored
                outcome = ts.outcome
                if stored is not None:
                    if not stored.done():
                        self._park(ts, stored)
                        return
                    ts.stored = None
                    try:
                        stored.result()
                    except asyncio.CancelledError:
                        self._leave(ts)
                        return
                    except Exception as exc:
                        what = "target result" if outcome is None else "target error"
                        self.fail_step(st, EventWriteError(st.label, what, exc))
                        ts.phase = Phase.RUN
                        self._leave(ts)
                        return
                if outcome is not None:
                    ts.error = outcome
                    self._leave(ts)
                    return
                if ts.step == len(steps) - 1:
                    self._leave(ts)
                    return  # passed every step: phase END at the last step
                ts.step += 1
                ts.phase = Phase.INIT
                ts.outcome = _NO_RESULT
                ts.wait = _OUTSIDE
                st = steps[ts.step]
                continue
            if wait == _WITHDRAWN:  # paused, cancelled, or the step is gone
                self._leave(ts)
            return

    # --- what a target waits for ---------------------------------------------------------------

    def taken(self, st: _Step, ts: _TargetState, later: bool) -> None:
        """``st`` took ``ts`` (its TargetIn is written). ``later``: from the line of offers,
        in the step's own call, so the target is parked, not moved on, here."""
        self._passed(st)
        if not later:
            return  # taken in _advance's offer, which goes on with it
        pending = ts.pending
        if pending is None:
            ts.wait = _RESULT  # nothing to wait for before its report
        elif pending.done():
            self.soon(ts)  # a write that failed at once: seen to in turn
        else:
            self._park(ts, pending)

    def reported(self, ts: _TargetState) -> None:
        """The step reported ``ts`` while it waited for that (its TargetIn stored)."""
        ts.wait = _OUT
        stored = ts.stored
        if stored is None or stored.done():
            self.soon(ts)
        else:
            self._park(ts, stored)

    def soon(self, ts: _TargetState) -> None:
        """Move ``ts`` on from the loop's next turn: one callback for all the targets made ready
        until it runs."""
        ready = self._ready
        ready.append(ts)
        if len(ready) == 1:
            asyncio.get_running_loop().call_soon(self._run_ready, context=self._context)

    def _run_ready(self) -> None:
        ready, self._ready = self._ready, []
        for ts in ready:
            self._go(ts)

    def _park(self, ts: _TargetState, durable: Ack | asyncio.Future[None]) -> None:
        """Have ``ts`` moved on once ``durable`` (not done) is. The targets waiting for the
        same group commit share its one callback (``_committed``)."""
        if isinstance(durable, Ack):
            batch = durable.batch()
            waiting = self._commits.get(batch)
            if waiting is None:
                self._commits[batch] = [ts]
                batch.add_done_callback(self._committed, context=self._context)
            else:
                waiting.append(ts)
        else:
            durable.add_done_callback(lambda _: self._go(ts), context=self._context)

    def _committed(self, batch: asyncio.Future[None]) -> None:
        for ts in self._commits.pop(batch, ()):
            self._go(ts)

    # --- steps -----------------------------------------------------------------------------------

    def _start_step(self, st: _Step) -> None:
        st.started = True
        label = st.label
        header = self._header(label)
        if self._book is not None:
            st.kept = self._book.slot(header.run_id, header.test_attempt, header.test_name, label)
        ctx = StepContext(
            scope=self.scope,
            job_id=header.job_id,
            run_id=header.run_id,
            test_name=header.test_name,
            step_label=label,
            variables=StepVariables(self._variables, label, self._variable_emitter(st)),
            checkpoints=st.kept,
        )
        channels = StepChannels(st.input, StepOutput(st.route, st.output_closed))
        emitter = EventEmitter(self.sink, header, st.bundle.allowed_events)
        if st.input.closed or self.scope.cancel.is_set():
            st.input.close()
        st.task = asyncio.ensure_future(self._run_step(st, ctx, channels, emitter))

    async def _run_step(
        self, st: _Step, ctx: StepContext, ch: StepChannels, ev: EventEmitter
    ) -> None:
        current_variables.set(self._variables)
        bind_step(st.label)  # what the step logs names it
        outcome: BaseException | None = None
        try:
            await st.bundle.step.run(ctx, ch, st.bundle.parameters, ev, st.blob)
        except asyncio.CancelledError:
            if not self.scope.cancel.is_set():
                raise  # not our doing: let whoever cancelled us see it
            outcome = Cancelled()
        except BaseException as exc:  # every escape is a verdict on the step
            outcome = exc
        self._step_returned(st, outcome)

    def _step_returned(self, st: _Step, outcome: BaseException | None) -> None:
        st.done = True
        if st.kept is not None:
            st.kept.close()  # its targets are reported, paused or dropped: nothing to keep
        st.input.close()
        withdrawn = [ts.target.id for ts in self._withdraw(st)]
        cancelled = self.scope.cancel.is_set()
        paused = self.scope.pause.is_set()
        if isinstance(outcome, Paused):
            if not paused:
                self.fail_step(st, StepPausedWithoutRequest(st.label))
            else:
                st.paused = True
                st.paused_state = state_to_bytes(outcome.state)
            st.release_waiting()
            return
        if isinstance(outcome, Cancelled):
            if not cancelled:
                self.fail_step(st, StepCancelledWithoutRequest(st.label))
            st.release_waiting()
            return
        if outcome is not None:
            trace = "".join(traceback.format_exception(outcome))
            log.debug("step %s raised:\n%s", st.label, trace)
            self.fail_step(st, StepCrashed(st.label, outcome, trace))
            st.release_waiting()
            return
        lost = st.release_waiting()
        if cancelled:
            return
        if lost:
            self.fail_step(st, StepLostTargets(st.label, lost))
        elif withdrawn and not paused:
            self.fail_step(st, StepReturnedEarly(st.label, withdrawn))

    async def _wait_steps(self) -> None:
        """Give the steps the shutdown timeout to return; abandon the ones that do not."""
        running = [st for st in self.steps if st.task is not None and not st.task.done()]
        if not running:
            return
        await asyncio.wait([st.task for st in running if st.task], timeout=self.shutdown_timeout)
        stuck = [st for st in running if st.task is not None and not st.task.done()]
        if not stuck:
            return
        err = StepsNeverReturned(st.label for st in stuck)
        for st in stuck:
            self.fail_step(st, err)
        self._abandon_all()
        # a moment for the cancelled tasks to unwind, so that none outlives the run needlessly
        await asyncio.wait([st.task for st in stuck if st.task is not None], timeout=0.1)

    def _abandon_all(self) -> None:
        self._abandoned = True
        self._ready.clear()
        self._commits.clear()
        for st in self.steps:
            if st.task is not None and not st.task.done():
                st.task.cancel()
        for task in list(self._tasks):
            task.cancel()

    # --- errors, pause and cancel --------------------------------------------------------------

    def fail_step(self, st: _Step, err: StepError) -> None:
        """Record a step error (first per step), as a TestError event, and stop everything."""
        if st.error is None:
            st.error = err
            if err not in self.errors:
                self.errors.append(err)
            assert st.emitter is not None
            pending = _write(st.emitter, TEST_ERROR, None, str(err))
            if pending is not None:
                self._track(pending)
        self.scope.cancel.set()

    def _track(self, pending: Awaitable[None]) -> None:
        async def wait() -> None:
            try:
                await pending
            except Exception as exc:
                log.error("cannot store TestError: %s", exc)

        task = asyncio.ensure_future(wait())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_pause(self) -> None:
        """Targets waiting to enter a step stop there; the ones inside stay until reported."""
        self._stopping = True
        for st in self.steps:
            self._withdraw(st)

    def _on_cancel(self) -> None:
        """Stop every target at once; steps see their input end and the cancel signal."""
        self._stopping = True
        for st in self.steps:
            self._withdraw(st)
            st.input.close()
            st.release_waiting()

    def _withdraw(self, st: _Step) -> list[_TargetState]:
        """Withdraw the offers waiting at ``st``: those targets stop in phase BEGIN."""
        withdrawn: list[_TargetState] = st.input.abort_pending()
        for ts in withdrawn:
            ts.wait = _WITHDRAWN
            self.soon(ts)
        return withdrawn

    # --- which inputs can close ----------------------------------------------------------------

    def _count_left(self) -> None:
        for ts in self.states.values():
            if ts.phase == Phase.END:
                continue
            first = ts.step + 1 if ts.phase == Phase.RUN else ts.step
            for st in self.steps[first:]:
                st.left += 1
        for st in self.steps:
            if st.left == 0:
                st.input.close()

    def _passed(self, st: _Step) -> None:
        """One target fewer can still be offered to ``st``."""
        st.left -= 1
        if st.left == 0:
            st.input.close()

    def _leave(self, ts: _TargetState) -> None:
        ts.wait = _LEFT
        first = ts.step + 1 if ts.phase in (Phase.RUN, Phase.END) else ts.step
        for st in self.steps[first:]:
            self._passed(st)
        self._alive -= 1
        if self._alive == 0 and self._all_left is not None and not self._all_left.done():
            self._all_left.set_result(None)

    def in_flight(self) -> list[tuple[str, str, int]]:
        """(test name, step label, targets inside the step) per step (for the metrics)."""
        test = self._header_args[2]
        return [(test, st.label, len(st.waiting)) for st in self.steps if st.waiting]

    # --- headers and variables ------------------------------------------------------------------

    def _header(self, label: str) -> TestEventHeader:
        job_id, run_id, test_name, attempt = self._header_args
        return TestEventHeader(job_id, run_id, test_name, label, attempt)

    def _variable_emitter(self, st: _Step) -> Any:
        def on_add(target_id: str, name: str, text: str) -> None:
            ts = self.states.get(target_id)
            target = ts.target if ts is not None else Target(target_id)
            assert st.emitter is not None
            pending = _write(st.emitter, VARIABLE_EMITTED, target, {"Name": name, "Value": text})
            if pending is not None:
                self._track(pending)

        return on_add

    # --- resume state --------------------------------------------------------------------------

    def _place_targets(
        self, targets: Sequence[Target], resume_state: bytes | None, job_id: int
    ) -> None:
        saved: dict[str, TargetPosition] = {}
        if resume_state:
            state = TestRunState.decode(resume_state, job_id, len(self.steps))
            for st, blob in zip(self.steps, state.step_states, strict=False):
                st.blob = blob
            saved = state.targets
        for target in targets:
            if target.id in self.states:
                raise ValueError(f"duplicate target id {target.id!r}")
            pos = saved.get(target.id)
            if pos is None:
                self.states[target.id] = _TargetState(target)
                continue
            step, phase = pos.resumed(target.id, len(self.steps))
            ts = _TargetState(target, step, phase)
            ts.error = pos.error
            self.states[target.id] = ts
            if pos.variables:
                self._variables.load_target(target.id, pos.variables)
        missing = set(saved) - set(self.states)
        if missing:
            raise ResumeStateError(
                f"invalid resume state: targets {sorted(missing)} are not among the given targets"
            )

    def _encode_state(self, job_id: int, run_id: int) -> bytes:
        vs = self._variables
        return TestRunState(
            job_id,
            run_id,
            {
                tid: TargetPosition(
                    ts.step, ts.phase, ts.error, vs.for_target(tid) if vs.has_target(tid) else None
                )
                for tid, ts in self.states.items()
            },
            [st.paused_state if st.started else st.blob for st in self.steps],
        ).encode()

    def _outcome(self, job_id: int, run_id: int) -> TestRunResult:
        if self._parent is not None and self._parent.cancel.is_set():
            raise Cancelled()
        if self.errors:
            raise self.errors[0]
        finished = {
            tid: ts.error
            for tid, ts in self.states.items()
            if ts.error is not None or (ts.phase == Phase.END and ts.step == len(self.steps) - 1)
        }
        result = TestRunResult(finished, variables=self._variables)
        if self.scope.pause.is_set() and len(finished) < len(self.states):
            for ts in self.states.values():
                st = self.steps[ts.step] if ts.phase == Phase.RUN else None
                if st is not None and not st.paused:
                    raise StepLostTargets(st.label, [ts.target.id])
            result.resume_state = self._encode_state(job_id, run_id)
        return result
