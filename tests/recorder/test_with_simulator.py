"""The recorder against the Teams/Graph simulator (devstack/simulator): the platform that `verbatim-dev up` runs.

A trader under the strict policy places a call whose audio is a WAV file we made; the simulator invites the
recorder (signed platform JWT), checks the 5 s answer window, streams the call's media over the simulated
transport; the evidence in Azurite must decode to the call's duration (within 100 ms) and carry its audio.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devstack.demo import CORA, TOM, UNA, before_recording_seconds
from devstack.testkit.audio import decode, envelope, speech, with_silence
from devstack.testkit.teams_platform import wait_until
from tests.conftest import Azurite
from tests.recorder.simstack import SimulatorStack, simulator_stack
from verbatim.contracts.recorder import RecordingStarted, RecordingStopped


@pytest.fixture(scope="module")
def stack(azurite_service: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorStack]:
    with simulator_stack(azurite_service, tmp_path_factory.mktemp("simstack"), "recorder-events-sim") as running:
        yield running


def _write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(samples.astype("<i2").tobytes())


def _locate(recorded: np.ndarray, source: np.ndarray) -> float:
    """The best correlation of the source's loudness envelope anywhere inside the recording's."""
    er, es = envelope(recorded), envelope(source)
    best = -1.0
    for offset in range(0, len(er) - len(es) + 1):
        window = er[offset : offset + len(es)]
        if window.std() > 0:
            best = max(best, float(np.corrcoef(window, es)[0, 1]))
    return best


def test_a_simulated_call_of_a_policy_user_is_answered_in_time_and_recorded(
    stack: SimulatorStack, tmp_path: Path
) -> None:
    source = with_silence(speech("Buying five hundred gilts at market for the pension fund, confirm please."), 0.3)
    wav = tmp_path / "trader.wav"
    _write_wav(wav, source)
    call = stack.sim(
        "POST",
        "/sim/calls",
        {
            "type": "peerToPeer",
            "subject": "Recorder test",
            "participants": [{"key": "tom", "user": TOM}, {"key": "cora", "user": CORA}],
            "dialog": [{"speaker": "tom", "audioFile": str(wav)}],
        },
    )
    state: dict[str, Any] = {}

    def ended() -> bool:
        state.update(stack.sim("GET", f"/sim/calls/{call['id']}"))
        return state["state"] == "ended"

    wait_until(ended, timeout=60)
    recorder = stack.recorder
    wait_until(lambda: any(isinstance(e, RecordingStopped) for e in recorder.events()), timeout=30)
    answers = [r["answerLatencyMs"] for r in state["recorders"] if r.get("answerLatencyMs") is not None]
    assert answers and max(answers) < 5000, state["recorders"]
    media_seconds = sum(c.get("mediaSeconds") or 0.0 for c in state["conversations"])
    # Media from before Teams accepted the `recording` status is not kept (call: updateRecordingStatus).
    media_seconds -= max(before_recording_seconds(r) for r in state["recorders"])

    events = recorder.events()
    started = next(e for e in events if isinstance(e, RecordingStarted))
    stopped = next(e for e in events if isinstance(e, RecordingStopped))
    assert started.observed_user.id is not None and started.policy.invite_reasons
    audio = decode(recorder.container_client().download_blob(stopped.blob_name).readall())
    correlation = _locate(audio, source)
    print(
        f"recorded {len(audio) / 16000:.3f} s of a {media_seconds:.3f} s call; envelope correlation {correlation:.3f}"
    )
    assert abs(len(audio) / 16000 - media_seconds) <= 0.1, (len(audio) / 16000, media_seconds)
    assert correlation >= 0.9


TOM_ID = "1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101"  # devstack/simulator/demo_tenant.yaml


def test_a_delegates_call_is_recorded_for_the_principal(stack: SimulatorStack) -> None:
    # The simulator sends incomingContext.onBehalfOf for a delegate's leg; the recorder names the principal
    # as the observed user, the delegate's leg as the observed participant (docs/microsoft-fidelity.md).
    policy = stack.sim("GET", "/sim/compliancePolicies/StrictRecording")
    stack.sim("PUT", "/sim/compliancePolicies/StrictRecording", {**policy, "recordReroutedCalls": True})
    try:
        call = stack.sim(
            "POST",
            "/sim/calls",
            {
                "type": "peerToPeer",
                "mediaPace": "fast",
                "durationSeconds": 3,
                "participants": [{"key": "cora", "user": CORA}, {"key": "una", "user": UNA, "onBehalfOf": TOM}],
            },
        )
        wait_until(lambda: stack.sim("GET", f"/sim/calls/{call['id']}")["state"] == "ended", timeout=60)
    finally:
        stack.sim("PUT", "/sim/compliancePolicies/StrictRecording", policy)
    state = stack.sim("GET", f"/sim/calls/{call['id']}")
    (leg,) = [r for r in state["recorders"] if r["observedParticipant"] == "una"]
    recorder = stack.recorder

    def started() -> list[RecordingStarted]:
        return [e for e in recorder.events() if isinstance(e, RecordingStarted) and e.call_id == leg["callId"]]

    try:
        wait_until(lambda: len(started()) == 1, timeout=30)
    except AssertionError:
        # Say what happened (CI once failed here without a trace): the leg as the simulator saw it, and the
        # recorder's events about it.
        now = next(r for r in stack.sim("GET", f"/sim/calls/{call['id']}")["recorders"] if r["callId"] == leg["callId"])
        about_leg = [e.type for e in recorder.events() if e.call_id == leg["callId"]]
        raise AssertionError(
            f"no single recording.started for the delegate's leg {now}; its events: {about_leg}"
        ) from None
    (event,) = started()
    assert event.observed_user.id == TOM_ID
    una = next(p for p in state["conversations"][0]["participants"] if p["key"] == "una")
    assert event.observed_user.participant_id == una["participantId"]
