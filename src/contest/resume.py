"""The resume state: everything a pause saves and a resume reads back, encoded here only.

A paused job is three states, one inside the other, each versioned on its own:

* :class:`PausePayload`, the job runner's (ConTest's ``jobStateVersion1`` with linuxboot's
  additions): which run, test and attempt, the targets held. It is stored as the payload of the
  ``JobStatePaused`` event and handed back to the job runner on resume.
* :class:`TestRunState`, the test runner's (``TRS``/``CRS`` in the payload): where each target
  stands (step index and :class:`Phase`, its error, its variables) and each step's own state.
* a step's own state: the bytes it gave to ``Paused`` (:func:`state_to_bytes`); the helper
  ``for_each_target_with_resume`` writes its own (:func:`encode_targets_state`).

Bytes inside JSON are embedded in one way (:func:`embed`): a step's bytes may be anything, so they
are tagged ``{"json": ...}`` or ``{"b64": ...}``; the test runner's state, always a JSON object,
is embedded as it is (``raw``), as ConTest embeds it (a ``json.RawMessage``), with the same
``{"b64": ...}`` fallback. The formats are what stored paused jobs hold: changing one needs a new
version number.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contest.errors import ResumeStateError
from contest.events import (
    TARGET_ACQUIRE_ERR,
    TARGET_ACQUIRED,
    TARGET_ERR,
    TARGET_IN,
    TARGET_INTERRUPTED,
    TARGET_OUT,
    TARGET_RELEASED,
    VARIABLE_EMITTED,
    TestEvent,
)
from contest.target import Target

if TYPE_CHECKING:
    from contest.checkpoint import StoredCheckpoint

__all__ = [
    "PAUSE_PAYLOAD_VERSION",
    "TEST_RUN_STATE_VERSION",
    "Checkpoint",
    "PausePayload",
    "Phase",
    "TargetPosition",
    "TestRunState",
    "TestShape",
    "checkpoint_from_events",
    "decode_targets_state",
    "embed",
    "encode_targets_state",
    "state_to_bytes",
    "unembed",
]

PAUSE_PAYLOAD_VERSION = 1
TEST_RUN_STATE_VERSION = 2


# --- bytes inside JSON ---------------------------------------------------------------------------


def state_to_bytes(state: Any) -> bytes | None:
    """Normalise what a step hands to ``Paused`` into the bytes it gets back on resume."""
    if state is None:
        return None
    if isinstance(state, bytes):
        return state
    if isinstance(state, bytearray | memoryview):
        return bytes(state)
    if isinstance(state, str):
        return state.encode()
    return json.dumps(state, separators=(",", ":")).encode()


def embed(blob: bytes | None, *, raw: bool = False) -> Any:
    """Bytes as a JSON value: ``{"json": value}`` when they are JSON (the value itself when
    ``raw``), else ``{"b64": base64}``; ``None`` stays ``None``."""
    if blob is None:
        return None
    with contextlib.suppress(ValueError):
        value = json.loads(blob)
        return value if raw else {"json": value}
    return {"b64": base64.b64encode(blob).decode()}


def unembed(obj: Any, *, raw: bool = False) -> bytes | None:
    """The bytes :func:`embed` embedded (with the same ``raw``)."""
    if obj is None:
        return None
    if isinstance(obj, dict) and set(obj) == {"b64"} and raw:
        return base64.b64decode(obj["b64"])
    if raw:
        return json.dumps(obj, separators=(",", ":")).encode()
    if isinstance(obj, dict) and "json" in obj:
        return json.dumps(obj["json"], separators=(",", ":")).encode()
    if isinstance(obj, dict) and "b64" in obj:
        return base64.b64decode(obj["b64"])
    raise ResumeStateError("invalid resume state: bad step state")


def _json_object(blob: bytes) -> dict[str, Any]:
    """A state's JSON object, or ResumeStateError."""
    try:
        obj = json.loads(blob)
    except ValueError as exc:
        raise ResumeStateError(f"invalid resume state: {exc}") from exc
    if not isinstance(obj, dict):
        raise ResumeStateError("invalid resume state: not a JSON object")
    return obj


# --- the job runner's state ----------------------------------------------------------------------


@dataclass
class PausePayload:
    job_id: int
    run_id: int  # 1-based
    test_index: int = 0  # 0-based here; stored 1-based as "T" (0 = none, omitted)
    start_at: float | None = None  # when the next run starts (paused between runs)
    targets: list[Target] | None = None  # held targets (locked, not released)
    test_state: bytes | None = None  # the test runner's resume state
    cleanup_state: bytes | None = None  # the cleanup runner's resume state
    attempt: int = 0
    next_attempt_at: float | None = None
    run_started: bool = False  # RunStarted of run_id already emitted
    test_results: dict[str, str | None] | None = None  # the test steps' verdicts, when paused
    # after them: in cleanup or before release (the resumed attempt skips the steps and is
    # judged on these, not counted as failed)
    wait_remaining: float | None = None  # paused while waiting for busy targets: the seconds
    # left of the acquire timeout (the resumed attempt waits again, only that long)
    version: int = PAUSE_PAYLOAD_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json_obj(self) -> dict[str, Any]:
        out: dict[str, Any] = {"V": self.version, "J": self.job_id, "R": self.run_id}
        if self.test_index or self.targets is not None:
            out["T"] = self.test_index + 1
        if self.start_at is not None:
            out["S"] = self.start_at
        if self.targets is not None:
            out["TT"] = [t.to_json_obj() for t in self.targets]
        if self.test_state is not None:
            out["TRS"] = embed(self.test_state, raw=True)
        out["TA"] = self.attempt
        if self.next_attempt_at is not None:
            out["NTA"] = self.next_attempt_at
        if self.cleanup_state is not None:
            out["CRS"] = embed(self.cleanup_state, raw=True)
        if self.run_started:
            out["RS"] = True
        if self.test_results is not None:
            out["TR"] = self.test_results
        if self.wait_remaining is not None:
            out["W"] = self.wait_remaining
        return out

    @classmethod
    def from_json_obj(cls, obj: Any) -> PausePayload:
        if not isinstance(obj, dict):
            raise ResumeStateError("invalid pause payload: not a JSON object")
        version = obj.get("V")
        if version != PAUSE_PAYLOAD_VERSION:
            raise ResumeStateError(
                f"incompatible resume state version (want {PAUSE_PAYLOAD_VERSION}, got {version})"
            )
        try:
            targets = obj.get("TT")
            return cls(
                job_id=int(obj["J"]),
                run_id=int(obj["R"]),
                test_index=max(0, int(obj.get("T", 0)) - 1),
                start_at=obj.get("S"),
                targets=[Target.from_json_obj(t) for t in targets] if targets is not None else None,
                test_state=unembed(obj.get("TRS"), raw=True),
                cleanup_state=unembed(obj.get("CRS"), raw=True),
                attempt=int(obj.get("TA", 0)),
                next_attempt_at=obj.get("NTA"),
                run_started=bool(obj.get("RS", False)),
                test_results=obj.get("TR"),
                wait_remaining=_seconds(obj.get("W")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResumeStateError(f"invalid pause payload: {exc}") from exc


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"W: want seconds >= 0, got {value!r}")
    return float(value)


# --- the test runner's state ---------------------------------------------------------------------


class Phase(enum.IntEnum):
    """Where a target stands in its current step; the numbers are stored (4 was never used)."""

    INIT = 1  #: moved to a step, not yet offered
    BEGIN = 2  #: being offered to the step
    RUN = 3  #: inside the step, waiting for its result
    END = 5  #: finished this step (terminal if failed or last step)


@dataclass
class TargetPosition:
    """One target in a paused test run: its step, its phase, its error, its variables.

    ``step`` and ``phase`` are as stored; :meth:`resumed` checks them against the test.
    """

    step: int = 0
    phase: int = Phase.INIT
    error: str | None = None
    variables: dict[str, dict[str, Any]] | None = None

    def resumed(self, target_id: str, n_steps: int) -> tuple[int, Phase]:
        """The step and phase to resume at. A target that was being offered is offered again:
        the step never took it."""
        if not (0 <= self.step < max(1, n_steps)) or self.phase not in tuple(Phase):
            raise ResumeStateError(
                f"invalid resume state: target {target_id} at step {self.step}, phase {self.phase}"
            )
        phase = Phase(self.phase)
        return self.step, Phase.INIT if phase == Phase.BEGIN else phase


@dataclass
class TestRunState:
    """The test runner's resume state (version 2): per target its position, per step its state
    (``None`` for a step that had none)."""

    __test__ = False

    job_id: int
    run_id: int
    targets: dict[str, TargetPosition] = field(default_factory=dict)
    step_states: list[bytes | None] = field(default_factory=list)

    def encode(self) -> bytes:
        targets: dict[str, Any] = {}
        for tid, pos in self.targets.items():
            entry: dict[str, Any] = {"P": int(pos.phase)}
            if pos.step:
                entry["S"] = pos.step
            if pos.error is not None:
                entry["R"] = pos.error
            if pos.variables is not None:
                entry["V"] = pos.variables
            targets[tid] = entry
        state = {
            "V": TEST_RUN_STATE_VERSION,
            "J": self.job_id,
            "R": self.run_id,
            "T": targets,
            "SRS": [embed(blob) for blob in self.step_states],
        }
        return json.dumps(state, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, blob: bytes, job_id: int, n_steps: int) -> TestRunState:
        """Read a state for job ``job_id``'s test of ``n_steps`` steps, or ResumeStateError."""
        obj = _json_object(blob)
        version = obj.get("V", 0)
        if version != TEST_RUN_STATE_VERSION:
            raise ResumeStateError(
                f"incompatible resume state version {version} (want {TEST_RUN_STATE_VERSION})"
            )
        if obj.get("J", job_id) != job_id:
            raise ResumeStateError(f"wrong resume state, job id {obj.get('J')} (want {job_id})")
        blobs = obj.get("SRS") or []
        if len(blobs) > n_steps:
            raise ResumeStateError(
                f"invalid resume state: {len(blobs)} step states for {n_steps} steps"
            )
        step_states = [unembed(b) for b in blobs]
        targets = obj.get("T") or {}
        if not isinstance(targets, dict):
            raise ResumeStateError("invalid resume state: T is not an object")
        return cls(
            job_id,
            obj.get("R", 0),
            {
                tid: TargetPosition(
                    entry.get("S", 0), entry.get("P", Phase.INIT), entry.get("R"), entry.get("V")
                )
                for tid, entry in targets.items()
            },
            step_states,
        )


# --- for_each_target_with_resume's state ----------------------------------------------------------

_KEY_VERSION = "V"
_KEY_TARGETS = "TWD"


def encode_targets_state(paused: Iterable[tuple[Target, Any]], version: int) -> bytes:
    """The helper's state: the paused targets and the data each stored, under the step's own
    ``version``."""
    return json.dumps(
        {
            _KEY_VERSION: version,
            _KEY_TARGETS: [{"Target": t.to_json_obj(), "Data": data} for t, data in paused],
        },
        separators=(",", ":"),
    ).encode()


def decode_targets_state(resume_state: bytes | None, version: int) -> Sequence[tuple[Target, Any]]:
    """What :func:`encode_targets_state` wrote, if the version is the step's; else
    ResumeStateError."""
    if not resume_state:
        return []
    obj = _json_object(resume_state)
    got = obj.get(_KEY_VERSION)
    if got != version:
        raise ResumeStateError(f"incompatible resume state: want {version}, got {got}")
    saved = []
    for item in obj.get(_KEY_TARGETS) or []:
        try:
            target = Target.from_json_obj(item["Target"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ResumeStateError(f"invalid resume state: bad target entry: {exc}") from exc
        saved.append((target, item.get("Data")))
    return saved


# --- a checkpoint read back from the stored events (a job taken over after its server died) ------


@dataclass(frozen=True)
class TestShape:
    """What :func:`checkpoint_from_events` needs of one test of the job: its name, its steps'
    labels, its cleanup steps' labels and the name their events carry, its retries."""

    __test__ = False

    name: str
    labels: Sequence[str]
    cleanup_labels: Sequence[str] = ()
    cleanup_name: str = ""
    num_retries: int = 0


@dataclass
class Checkpoint:
    """Where a job that was never paused stood when its server died, read from its events:
    ``payload`` resumes it through the pause path (None: nothing ran yet, start afresh);
    ``interrupted``: the ``TargetIn`` of each target that was inside a step (it re-enters it);
    ``kept``: the IDs of the targets inside a step that resume there from its checkpoint."""

    payload: PausePayload | None
    interrupted: list[TestEvent] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


@dataclass
class _Where:
    """What :func:`_positions` finds for the steps of one test (or its cleanup)."""

    positions: dict[str, TargetPosition]
    inside: list[TestEvent]  # the TargetIn of each target that re-enters its step
    verdicts: dict[str, str | None]
    step_states: list[bytes | None]
    kept: list[str]  # the targets resumed inside their step from its checkpoint


def _positions(
    labels: Sequence[str],
    targets: Sequence[Target],
    routing: dict[tuple[str, str], TestEvent],
    kept: Mapping[str, Any] | None = None,
    variables: Mapping[str, dict[str, dict[str, Any]]] | None = None,
) -> _Where:
    """Per target, where the routing events leave it in these steps: after a ``TargetOut`` at
    the next step (or at the end of the last one), after a ``TargetErr`` at the end of that
    step with its error; inside a step (``TargetIn`` last): still inside it if the step's
    checkpoint (``kept``: label -> :class:`contest.checkpoint.KeptStep`) has it, which then
    gives the step's resume state for the targets it has; else back at its start, to re-enter
    it. Each position carries the target's ``variables`` (as a pause keeps them)."""
    kept = kept or {}
    variables = variables or {}
    positions: dict[str, TargetPosition] = {}
    inside: list[TestEvent] = []
    verdicts: dict[str, str | None] = {}
    resumed: dict[int, list[Target]] = {}  # step index -> its targets resumed from its state
    last = len(labels) - 1
    for target in targets:
        pos = TargetPosition()
        for k, label in enumerate(labels):
            ev = routing.get((label, target.id))
            if ev is not None and ev.name == TARGET_OUT:
                if k == last:
                    pos = TargetPosition(k, Phase.END)
                    verdicts[target.id] = None
                else:
                    pos = TargetPosition(k + 1, Phase.INIT)
                continue
            if ev is not None and ev.name == TARGET_ERR:
                payload = ev.payload if isinstance(ev.payload, dict) else {}
                error = str(payload.get("Error", "")) or "failed"
                pos = TargetPosition(k, Phase.END, error)
                verdicts[target.id] = error
            elif ev is not None and ev.name == TARGET_IN:
                step = kept.get(label)
                if step is not None and target.id in step.data:
                    resumed.setdefault(k, []).append(target)
                    pos = TargetPosition(k, Phase.RUN)
                else:
                    inside.append(ev)
                    pos = TargetPosition(k, Phase.INIT)
            break
        if target.id in variables:
            pos.variables = variables[target.id]
        if pos.step or pos.phase != Phase.INIT or pos.variables:
            positions[target.id] = pos
    step_states: list[bytes | None] = [None] * len(labels)
    for k, those in resumed.items():
        step_states[k] = kept[labels[k]].resume_state(those)
    ids = [t.id for those in resumed.values() for t in those]
    return _Where(positions, inside, verdicts, step_states, ids)


def checkpoint_from_events(
    job_id: int,
    tests: Sequence[TestShape],
    runs_started: Sequence[int],
    events: Sequence[TestEvent],
    *,
    now: float,
    stored: StoredCheckpoint | None = None,
) -> Checkpoint:
    """Where to resume a job whose server died mid-run, from its stored events alone: the last
    run started, its last test with events, that test's last attempt; its targets if they were
    acquired and not yet released, and for each where it stood (:func:`_positions`). The result
    is a :class:`PausePayload` as a pause there would have written it, so the job runner's one
    resume path resumes it: targets that finished a step do not run it again; targets that
    were inside a step resume there from the step's checkpoint if ``stored`` (the job's step
    checkpoints, :mod:`contest.checkpoint`) has them for this attempt, else re-enter it. The
    variables steps set for targets (their ``VariableEmitted`` events) are kept.

    ``events``: the job's test events of the last run (routing, acquisition, release and
    variable events are read; others ignored), in stored order; ``runs_started``: the
    ``RunID`` of each ``RunStarted``."""
    if not runs_started:
        return Checkpoint(None)  # nothing ran: the job starts from its beginning
    run_id = max(runs_started)
    names: dict[str, tuple[int, bool]] = {}
    for i, t in enumerate(tests):
        names[t.name] = (i, False)
        if t.cleanup_name:
            names[t.cleanup_name] = (i, True)
    index, attempt = -1, 0
    for ev in events:
        h = ev.header
        got = names.get(h.test_name)
        if h.run_id != run_id or got is None:
            continue
        if got[0] > index or (got[0] == index and h.test_attempt > attempt):
            index, attempt = got[0], h.test_attempt
    if index < 0:  # the run started, no test had begun
        return Checkpoint(PausePayload(job_id, run_id, 0, run_started=True))
    shape = tests[index]
    acquired: dict[str, Target] = {}
    released = acquire_failed = False
    routing: dict[tuple[str, str], TestEvent] = {}
    cleanup: dict[tuple[str, str], TestEvent] = {}
    variables: dict[str, dict[str, dict[str, Any]]] = {}
    for ev in events:
        h = ev.header
        if h.run_id != run_id or h.test_attempt != attempt:
            continue
        if ev.name == VARIABLE_EMITTED and ev.target is not None:
            if h.test_name in (shape.name, shape.cleanup_name):
                _add_variable(variables, ev)
            continue
        if h.test_name == shape.name and ev.target is not None:
            if ev.name == TARGET_ACQUIRED:
                acquired.setdefault(ev.target.id, ev.target)
            elif ev.name == TARGET_RELEASED:
                released = True
        if h.test_name == shape.name and ev.name == TARGET_ACQUIRE_ERR:
            acquire_failed = True
        if ev.target is None or ev.name not in (TARGET_IN, TARGET_OUT, TARGET_ERR):
            if ev.name == TARGET_INTERRUPTED and ev.target is not None:
                which = cleanup if h.test_name == shape.cleanup_name else routing
                which.pop((h.step_label, ev.target.id), None)
            continue
        if h.test_name == shape.name:
            routing[(h.step_label, ev.target.id)] = ev
        elif shape.cleanup_name and h.test_name == shape.cleanup_name:
            cleanup[(h.step_label, ev.target.id)] = ev
    targets = list(acquired.values())
    kept = stored.steps_of(run_id, attempt) if stored is not None else {}
    steps = _positions(shape.labels, targets, routing, _kept_of(kept, shape.name), variables)
    verdicts = steps.verdicts

    def next_test_or_attempt(passed: bool) -> Checkpoint:
        if not passed and attempt < shape.num_retries:
            return Checkpoint(
                PausePayload(
                    job_id, run_id, index, attempt=attempt + 1, next_attempt_at=now,
                    run_started=True,
                )
            )  # fmt: skip
        return Checkpoint(PausePayload(job_id, run_id, index + 1, run_started=True))

    if acquire_failed and not targets:
        return next_test_or_attempt(False)
    if released:  # the attempt was over: its verdict decides what comes next
        passed = len(verdicts) == len(targets) and all(v is None for v in verdicts.values())
        return next_test_or_attempt(passed and bool(targets))
    if not targets:  # acquiring: acquire again (a lock the job took is keyed by its ID)
        return Checkpoint(PausePayload(job_id, run_id, index, attempt=attempt, run_started=True))
    test_state = TestRunState(job_id, run_id, steps.positions, steps.step_states).encode()
    payload = PausePayload(
        job_id, run_id, index, targets=targets, test_state=test_state, attempt=attempt,
        run_started=True,
    )  # fmt: skip
    if cleanup or (shape.cleanup_labels and len(verdicts) == len(targets)):
        # the test steps were over (every target finished them): the cleanup steps went on
        steps = _positions(
            shape.cleanup_labels, targets, cleanup, _kept_of(kept, shape.cleanup_name),
            variables,
        )  # fmt: skip
        payload.cleanup_state = TestRunState(
            job_id, run_id, steps.positions, steps.step_states
        ).encode()
        payload.test_results = verdicts
    return Checkpoint(payload, steps.inside, steps.kept)


def _kept_of(kept: Mapping[tuple[str, str], Any], test_name: str) -> dict[str, Any]:
    """The checkpointed steps of one test (or its cleanup), by label."""
    return {label: step for (name, label), step in kept.items() if name == test_name}


def _add_variable(variables: dict[str, dict[str, dict[str, Any]]], ev: TestEvent) -> None:
    """A ``VariableEmitted`` event's value, as the runner's variable store keeps it (target ->
    label -> name -> value); the last one of a name wins, as in the store."""
    payload = ev.payload if isinstance(ev.payload, dict) else {}
    name, text = payload.get("Name"), payload.get("Value")
    if not isinstance(name, str) or not isinstance(text, str) or ev.target is None:
        return
    try:
        value = json.loads(text)
    except ValueError:
        return
    by_label = variables.setdefault(ev.target.id, {})
    by_label.setdefault(ev.header.step_label, {})[name] = value
