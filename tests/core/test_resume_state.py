"""The resume state's formats, pinned: paused jobs stored by one version resume in the next."""

from __future__ import annotations

import json

import pytest

from contest.errors import ResumeStateError
from contest.resume import (
    PausePayload,
    Phase,
    TargetPosition,
    TestRunState,
    decode_targets_state,
    embed,
    encode_targets_state,
    unembed,
)
from contest.target import Target


def test_phase_numbers_are_the_stored_ones() -> None:
    assert [(p.name, int(p)) for p in Phase] == [("INIT", 1), ("BEGIN", 2), ("RUN", 3), ("END", 5)]


@pytest.mark.parametrize("blob", [b'{"a":1}', b"\xff\x00 not json", b"[]"])
@pytest.mark.parametrize("raw", [False, True])
def test_bytes_survive_both_embeddings(blob: bytes, raw: bool) -> None:
    back = unembed(json.loads(json.dumps(embed(blob, raw=raw))), raw=raw)
    assert back == blob  # JSON comes back compact, as these are


def test_how_bytes_are_embedded() -> None:
    assert embed(b'{"a":1}') == {"json": {"a": 1}}
    assert embed(b'{"a":1}', raw=True) == {"a": 1}
    assert embed(None) is None and unembed(None) is None
    with pytest.raises(ResumeStateError, match="bad step state"):
        unembed({"other": 1})


def test_test_run_state_round_trip_and_checks() -> None:
    state = TestRunState(
        7,
        2,
        {"t1": TargetPosition(1, Phase.RUN, None, {"s": {"x": 1}}), "t2": TargetPosition()},
        [None, b'{"k":true}'],
    )
    blob = state.encode()
    obj = json.loads(blob)
    assert obj["V"] == 2 and obj["T"]["t1"] == {"P": 3, "S": 1, "V": {"s": {"x": 1}}}
    assert obj["T"]["t2"] == {"P": 1} and obj["SRS"] == [None, {"json": {"k": True}}]
    back = TestRunState.decode(blob, 7, 2)
    assert back.targets["t1"].resumed("t1", 2) == (1, Phase.RUN)
    assert back.step_states == [None, b'{"k":true}']
    # a target being offered when the job paused is offered again
    assert TargetPosition(0, Phase.BEGIN).resumed("t", 1) == (0, Phase.INIT)
    with pytest.raises(ResumeStateError, match="wrong resume state, job id 7"):
        TestRunState.decode(blob, 8, 2)
    with pytest.raises(ResumeStateError, match="2 step states for 1 steps"):
        TestRunState.decode(blob, 7, 1)
    with pytest.raises(ResumeStateError, match="target t at step 0, phase 4"):
        TargetPosition(0, 4).resumed("t", 1)


def test_pause_payload_embeds_the_runner_state_raw() -> None:
    payload = PausePayload(3, 1, 0, targets=[Target("a")], test_state=b'{"V":2}')
    obj = payload.to_json_obj()
    assert obj["TRS"] == {"V": 2}  # as ConTest embeds its json.RawMessage
    assert PausePayload.from_json_obj(obj).test_state == b'{"V":2}'


def test_targets_state_of_the_resume_helper() -> None:
    blob = encode_targets_state([(Target("a"), {"n": 1})], 3)
    assert json.loads(blob) == {"V": 3, "TWD": [{"Target": {"ID": "a"}, "Data": {"n": 1}}]}
    [(target, data)] = decode_targets_state(blob, 3)
    assert (target.id, data) == ("a", {"n": 1})
    with pytest.raises(ResumeStateError, match="want 4, got 3"):
        decode_targets_state(blob, 4)
