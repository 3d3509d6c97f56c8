"""Recorder events as the recorder sends them, for the lifecycle tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from verbatim.contracts.recorder import (
    CallParticipant,
    Identity,
    ObservedUser,
    ParticipantsChanged,
    RecordingContinued,
    RecordingFailed,
    RecordingStarted,
    RecordingStopped,
)
from verbatim.evidence.capture import capture_prefix, manifest_blob_name, track_blob_name

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def participant(pid: str, user: str) -> CallParticipant:
    return CallParticipant(participant_id=pid, identity=Identity(kind="user", id=user, display_name=user))


def started(
    recording_id: str,
    container: str = "captures",
    at: datetime = T0,
    heartbeat: float = 5.0,
    control_url: str | None = None,
) -> RecordingStarted:
    prefix = capture_prefix(recording_id, 0)
    return RecordingStarted(
        event_id=uuid.uuid4().hex,
        occurred_at=at,
        recording_id=recording_id,
        call_id=f"call-{recording_id}",
        sequence=0,
        recorder_instance="recorder-0",
        call_chain_id=f"chain-{recording_id}",
        observed_user=ObservedUser(id="u-trader", upn="trader@contoso.com"),
        participants=[participant("p1", "u-trader"), participant("p2", "u-client")],
        direction="outbound",
        call_type="peerToPeer",
        recorder_app_id="app-recorder",
        recorder_version="1.0.0",
        started_at=at,
        blob_container=container,
        blob_name=track_blob_name(prefix),
        manifest_blob_name=manifest_blob_name(prefix),
        heartbeat_interval_seconds=heartbeat,
        control_url=control_url,
    )


def joined(recording_id: str, sequence: int = 1, at: datetime = T0 + timedelta(seconds=2)) -> ParticipantsChanged:
    return ParticipantsChanged(
        event_id=uuid.uuid4().hex,
        occurred_at=at,
        recording_id=recording_id,
        call_id=f"call-{recording_id}",
        sequence=sequence,
        recorder_instance="recorder-0",
        participants=[participant("p1", "u-trader"), participant("p3", "u-compliance")],
        joined=["p3"],
        left=["p2"],
    )


def stopped(
    recording_id: str,
    sha256: str,
    seconds: float,
    sequence: int = 2,
    container: str = "captures",
    at: datetime = T0,
    generation: int = 0,
) -> RecordingStopped:
    prefix = capture_prefix(recording_id, generation)
    return RecordingStopped(
        event_id=uuid.uuid4().hex,
        occurred_at=at + timedelta(seconds=seconds),
        recording_id=recording_id,
        call_id=f"call-{recording_id}",
        sequence=sequence,
        recorder_instance="recorder-0",
        generation=generation,
        reason="call_ended",
        ended_at=at + timedelta(seconds=seconds),
        blob_container=container,
        blob_name=track_blob_name(prefix),
        manifest_blob_name=manifest_blob_name(prefix),
        duration_seconds=seconds,
        bytes=0,
        block_count=0,
        sha256=sha256,
    )


def failed_before_media(recording_id: str) -> RecordingFailed:
    return RecordingFailed(
        event_id=uuid.uuid4().hex,
        occurred_at=T0,
        recording_id=recording_id,
        call_id=f"call-{recording_id}",
        sequence=0,
        recorder_instance="recorder-0",
        stage="answer",
        reason="media platform unavailable",
        failed_at=T0,
    )


def continued(
    recording_id: str, *, generation: int, first_block: int, first_sample: int, kept: int, sequence: int = 4
) -> RecordingContinued:
    """The recorder found generation `generation - 1` fenced and goes on in `generation`."""
    return RecordingContinued(
        event_id=uuid.uuid4().hex,
        occurred_at=T0 + timedelta(seconds=30),
        recording_id=recording_id,
        call_id=f"call-{recording_id}",
        sequence=sequence,
        recorder_instance="recorder-0",
        generation=generation,
        first_block=first_block,
        first_sample=first_sample,
        kept_blocks=kept,
        reason=f"generation {generation - 1} was fenced",
    )
