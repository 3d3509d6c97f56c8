"""Microsoft's documented policy-recording invitation (Graph v1.0 `call: answer`, Example 3, as published in
tests/fixtures/graph/calls/incoming_call_policy_recording.json) posted to a real recorder process: the
recording it starts, or the failure it reports, names the observed user and the tenant the invitation
carries."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from devstack.testkit.audio import speech, with_silence
from devstack.testkit.teams_platform import CallRecord, CallScript, FakePlatform, wait_until
from tests.recorder.conftest import RecorderFactory, log_of
from tests.recorder.documented import (
    DOCUMENTED_CALL_ID,
    DOCUMENTED_PEER_TO_PEER_CALL_ID,
    documented_invitation,
    documented_peer_to_peer_invitation,
)
from verbatim.contracts.recorder import RecordingFailed, RecordingStarted, RecordingStopped

OBSERVED_USER_ID = "8A34A46B-3D17-4ADC-8DCE-DC4E7D572698"
OBSERVED_PARTICIPANT_ID = "30fad2ce-8989-41a1-8a66-f6636e629a2a"
CALL_TENANT_ID = "932899f8-2ea1-4604-8413-27bd2892079f"


@pytest.fixture
def fresh_call(platform: FakePlatform) -> None:
    platform.calls.pop(DOCUMENTED_CALL_ID, None)  # the example's call id is fixed


def test_the_documented_invitation_starts_a_recording_of_the_observed_user_in_the_calls_tenant(
    platform: FakePlatform, start_recorder: RecorderFactory, fresh_call: None
) -> None:
    recorder = start_recorder()
    script = CallScript(
        audio=with_silence(speech("Recorded as the documentation says."), 0.2),
        call_id=DOCUMENTED_CALL_ID,
        realtime=False,
    )
    record = platform.run(platform.drive(recorder.url, script, invitation=documented_invitation()))
    assert record.answer is not None and record.statuses == ["recording"]
    wait_until(lambda: any(isinstance(e, RecordingStopped) for e in recorder.events()), timeout=30)
    (started,) = [e for e in recorder.events() if isinstance(e, RecordingStarted)]
    assert started.call_id == DOCUMENTED_CALL_ID
    assert started.tenant_id == CALL_TENANT_ID
    assert started.observed_user.id == OBSERVED_USER_ID
    assert started.observed_user.tenant_id == CALL_TENANT_ID
    assert started.observed_user.participant_id == OBSERVED_PARTICIPANT_ID
    assert started.call_chain_id == "05f2f70f-3a9c-47c1-80a9-cc79e91d8cec"
    assert started.policy.identifier == "Test Policy" and started.policy.invite_reasons == ["PolicyBasedRecording"]
    assert started.direction == "inbound"  # botData.user.participationMethod: callee


def test_a_failure_on_the_documented_invitation_still_names_the_observed_user_and_the_tenant(
    platform: FakePlatform, start_recorder: RecorderFactory, fresh_call: None
) -> None:
    recorder = start_recorder()
    platform.fail_recording_status = 403
    try:
        script = CallScript(audio=with_silence(speech("Never kept."), 0.2), call_id=DOCUMENTED_CALL_ID, realtime=False)
        platform.run(platform.drive(recorder.url, script, invitation=documented_invitation()), timeout=60)
    except TimeoutError:
        pass  # the recording status never succeeds, so the platform's drive gives up waiting for it
    finally:
        platform.fail_recording_status = None
    wait_until(lambda: any(isinstance(e, RecordingFailed) for e in recorder.events()), timeout=20)
    (failed,) = [e for e in recorder.events() if isinstance(e, RecordingFailed)]
    assert failed.stage == "recording_status"
    assert failed.tenant_id == CALL_TENANT_ID
    assert failed.observed_user is not None and failed.observed_user.id == OBSERVED_USER_ID
    assert failed.observed_user.participant_id == OBSERVED_PARTICIPANT_ID


def test_the_documented_peer_to_peer_invitation_is_declined_as_not_a_policy_recording_call(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    # Without incomingContext.observedParticipantId the call is "not associated with a participant (not a CR
    # call)" (PolicyRecordingBot, PlatformCallController.cs); Graph would refuse its recording status (8506).
    platform.calls.pop(DOCUMENTED_PEER_TO_PEER_CALL_ID, None)
    recorder = start_recorder()

    async def invite() -> CallRecord:
        record = await platform.invite(
            recorder.url, DOCUMENTED_PEER_TO_PEER_CALL_ID, body=documented_peer_to_peer_invitation()
        )
        await asyncio.wait_for(record.answer_event.wait(), 5.0)
        return record

    record = platform.run(invite())
    assert record.answer is None
    assert record.rejected == {"reason": "forbidden"}
    assert recorder.health().json()["active_calls"] == 0
    stats = httpx.get(f"{recorder.url}/admin/stats", timeout=5).json()
    assert stats["declined"] == 1 and stats["answered"] == 0
    assert "not a policy-based recording invitation" in log_of(recorder)
    assert recorder.events() == []  # no recording was attempted, so none is reported
