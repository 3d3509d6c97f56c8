"""The capture policy through the real pieces (docs/policies.md#what-a-policy-captures): the recorder is told, by
its RECORDER_CAPTURE_POLICIES setting, to keep only the audio and the cameras of StrictRecording's calls, while the
published desired state says StrictRecording must capture the screen share too. A meeting in which Una shares her
screen: the recorder answers with every modality its sockets can take, follows its capture policy (no VBSS
subscription, no screen stream), the lifecycle seals what it kept on Azurite, and reconciliation — given the
simulator's call record, which says the meeting had videoBasedScreenSharing — judges Tom `partial` with reason
`modality_not_captured`, though every second of his audio is recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack.demo import CORA, TOM, UNA
from devstack.testkit.teams_platform import wait_until
from tests.conftest import Azurite
from tests.recorder.test_video_capture import VideoStack, seal_capture, video_stack
from verbatim.callrecords.normalise import normalise
from verbatim.callrecords.store import InMemoryCallRecordStore
from verbatim.contracts.policy import EffectivePolicy, PolicySnapshot
from verbatim.contracts.recorder import RecordingStarted, RecordingStopped
from verbatim.platform.audit import InMemoryAuditLog
from verbatim.policy.readers import catalog_from_desired
from verbatim.policy.snapshots import InMemoryPolicySnapshotStore, snapshot_id
from verbatim.policy.validation import load_desired_state
from verbatim.reconciliation.service import Reconciler
from verbatim.reconciliation.store import InMemoryRecordingFinder, InMemoryVerdictStore

REPO = Path(__file__).resolve().parents[2]
# The published desired state: the demo tenant's, with StrictRecording capturing everything.
DESIRED = (REPO / "policies" / "demo-tenant.yaml").read_text()


@pytest.fixture(scope="module")
def stack(azurite_service: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VideoStack]:
    told = json.dumps({"StrictRecording": ["audio", "video"]})  # not the screen share
    with video_stack(
        azurite_service, tmp_path_factory.mktemp("capturepolicy"), RECORDER_CAPTURE_POLICIES=told
    ) as running:
        yield running


@pytest.fixture(scope="module")
def meeting(stack: VideoStack) -> dict[str, Any]:
    stack.sim("PATCH", "/sim/config", {"callRecordDelaySeconds": 0})
    call = stack.sim(
        "POST",
        "/sim/calls",
        {
            "type": "meeting",
            "subject": "Capture policy test",
            "durationSeconds": 8,
            "participants": [
                {"key": "tom", "user": TOM, "camera": [{"at": 0}]},
                {"key": "cora", "user": CORA},
                {"key": "una", "user": UNA, "screenShare": [{"at": 2, "until": 6}]},
            ],
            "dialog": [{"speaker": "una", "text": "Here is the chart I mentioned."}],
        },
    )
    state: dict[str, Any] = {}

    def ended() -> bool:
        state.update(stack.sim("GET", f"/sim/calls/{call['id']}"))
        return state["state"] == "ended"

    wait_until(ended, timeout=90)
    recorder = stack.recorder
    wait_until(lambda: any(isinstance(e, RecordingStopped) for e in recorder.events()), timeout=60)
    events = recorder.events()
    stopped = next(e for e in events if isinstance(e, RecordingStopped))
    chain = state["conversations"][0]["callChainId"]
    found: dict[str, Any] = {}

    def published() -> bool:
        found.update(stack.sim("GET", f"/sim/callRecords/{chain}"))
        return bool(found.get("published"))

    wait_until(published, timeout=60)
    raw = found["record"]
    return {
        "state": state,
        "events": events,
        "stopped": stopped,
        "record": raw,
        "container": recorder.container_client(),
    }


def test_the_recorder_answers_with_every_modality_but_keeps_what_its_capture_policy_says(
    meeting: dict[str, Any],
) -> None:
    started = next(e for e in meeting["events"] if isinstance(e, RecordingStarted))
    assert started.policy.identifier == "StrictRecording"
    assert started.modalities == ["audio", "video", "videoBasedScreenSharing"]  # what the answer accepted
    assert started.capture == ["audio", "video"]
    assert {v.kind for v in meeting["stopped"].video} == {"camera"}  # Tom's camera, no screen stream


def test_the_call_record_says_the_meeting_had_a_screen_share(meeting: dict[str, Any]) -> None:
    record = meeting["record"]
    assert record["modalities"] == ["audio", "video", "videoBasedScreenSharing"]
    una = next(s for s in record["sessions"] if s["caller"]["identity"]["user"]["displayName"].startswith("Una"))
    assert una["modalities"] == ["audio", "videoBasedScreenSharing"]


def test_a_meeting_whose_screen_share_the_recorder_was_told_not_to_capture_is_partial_with_reason(
    meeting: dict[str, Any], azurite_service: Azurite, stack: VideoStack
) -> None:
    sealed = seal_capture(azurite_service, meeting["container"], meeting["events"], meeting["stopped"].recording_id)
    record = sealed["record"]
    assert record.status == "sealed" and record.seal.modalities == ["audio", "video"]
    call = normalise(meeting["record"], tenant_id=record.facts.tenant_id)
    tom = next(p for p in call.participants if p.user_principal_name == TOM)
    desired = load_desired_state(DESIRED, "demo-tenant.yaml").desired
    facts = catalog_from_desired(desired)["strictrecording"]
    assert "videoBasedScreenSharing" in facts.capture  # the published policy requires the screen share
    since = datetime.now(UTC) - timedelta(days=1)
    snapshots = InMemoryPolicySnapshotStore(
        [
            PolicySnapshot(
                id=snapshot_id(str(tom.id), since),
                user_id=str(tom.id),
                valid_from=since,
                effective=EffectivePolicy(
                    user_id=str(tom.id),
                    policy_name="StrictRecording",
                    source="group",
                    records=facts.records,
                    strict=facts.strict,
                    capture=list(facts.capture),
                ),
            )
        ]
    )
    calls, verdicts = InMemoryCallRecordStore(), InMemoryVerdictStore()
    calls.save_if_newer(call, {"id": call.id})
    reconciler = Reconciler(
        calls=calls,
        snapshots=snapshots,
        recordings=InMemoryRecordingFinder(lambda: [record]),
        verdicts=verdicts,
        alerts=InMemoryAuditLog(),
    )

    reconciler.reconcile_call(call.id)

    verdict = verdicts.verdicts[f"{call.id}:{tom.id}"]
    assert (verdict.verdict, verdict.reason) == ("partial", "modality_not_captured"), verdict.reason_detail
    assert verdict.gaps == [] and verdict.recording_ids == [record.id]
    assert "screen sharing (videoBasedScreenSharing), which policy StrictRecording requires" in verdict.reason_detail
    assert "the recorder was told to capture audio, video" in verdict.reason_detail
