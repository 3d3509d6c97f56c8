"""What the recorder bot tells the rest of Verbatim: events on `recorder-events`, the capture progress record
(heartbeat) and the capture manifest written beside the evidence.

Event order for one recording: `recording.started` (only once `updateRecordingStatus(recording)` succeeded), any
number of `participants.changed`, then exactly one of `recording.stopped` / `recording.failed`. A recording whose
answer or recording status failed gets `recording.failed` without a `started`. Every event has an `event_id` (a
redelivered event keeps it) and a per-recording `sequence` (0, 1, 2, ...) so consumers can drop duplicates and
reorder. Times are timezone-aware UTC.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, TypeAdapter

from verbatim.contracts import Contract, contract

RECORDER_EVENT_TYPES = (
    "recording.started",
    "participants.changed",
    "recording.continued",
    "recording.stopped",
    "recording.failed",
)
# A recording id names folders of the captures and recordings containers (verbatim.evidence.names): letters,
# digits and hyphens only (the recorder makes UUIDs).
RecordingId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")]
# The capture generation a recorder writes (verbatim.evidence.names): 0 first, one more after each fence.
Generation = Annotated[int, Field(ge=0, le=999)]

IdentityKind = Literal[
    "user",
    "phone",
    "guest",
    "application",
    "applicationInstance",
    "onPremises",
    "encrypted",
    "acsUser",
    "unknown",
]
CallDirection = Literal["inbound", "outbound", "unknown"]  # from the observed user's point of view
CallType = Literal["peerToPeer", "groupCall", "unknown"]
TrackKind = Literal["mixed", "unmixed"]
StopReason = Literal["call_ended", "media_ended", "left_call", "shutdown"]
FailureStage = Literal["answer", "recording_status", "media", "capture", "storage", "shutdown"]


class Identity(Contract):
    """One participant's identity as Teams reports it (the first identity found in its identity set)."""

    kind: IdentityKind
    id: str | None = None
    display_name: str | None = None
    tenant_id: str | None = None
    upn: str | None = None  # only when the platform sends it; the lifecycle may resolve it from the id


class CallParticipant(Contract):
    """A participant of the call as the recorder saw it in the roster."""

    participant_id: str
    identity: Identity
    phone_number: str | None = None  # E.164, for PSTN participants
    is_recorder: bool = False  # a bot (application / applicationInstance), e.g. this or a paired recorder
    is_in_lobby: bool = False
    is_muted: bool = False
    source_ids: list[int] = Field(default_factory=list)  # audio media source ids (MSI), as used by unmixed tracks
    # The participant's main video and screen-sharing (VBSS) media sources from the roster's `mediaStreams`, and
    # whether each is sending now (direction sendOnly / sendReceive) (added in v1; optional).
    video_source_id: int | None = None
    video_sending: bool = False
    screen_share_source_id: int | None = None
    screen_sharing: bool = False
    first_seen_at: AwareDatetime | None = None
    left_at: AwareDatetime | None = None
    removed_reason: str | None = None


class ObservedUser(Contract):
    """The policy user being recorded (`incomingContext.observedParticipantId`)."""

    id: str | None = None  # Entra object id
    upn: str | None = None
    display_name: str | None = None
    tenant_id: str | None = None
    participant_id: str | None = None
    phone_number: str | None = None


class RecordingPolicyInfo(Contract):
    """Why the recorder was invited (`applicationMetadata.botData`)."""

    identifier: str | None = None  # policyIdentifier
    invite_reasons: list[str] = Field(default_factory=list)
    paired_recorders: list[str] = Field(default_factory=list)  # ids of the paired recorders' participants
    other_recorders: list[str] = Field(default_factory=list)


class ResultInfo(Contract):
    code: int | None = None
    subcode: int | None = None
    message: str | None = None


class AudioEncoding(Contract):
    """How the evidence is encoded: a native FLAC stream whose STREAMINFO carries no totals (unknown length,
    zero MD5), so every prefix cut at a block boundary decodes."""

    codec: Literal["flac"] = "flac"
    container: Literal["flac"] = "flac"
    sample_rate: int = 16000
    channels: int = 1
    bits_per_sample: int = 16


class TrackInfo(Contract):
    """One captured audio track: the mixed record, or one speaker's unmixed stream."""

    track: str  # "mixed" or "source-<id>"
    kind: TrackKind
    source_id: int | None = None
    blob_name: str


VideoKind = Literal["camera", "screenShare"]


class VideoInfo(Contract):
    """One captured video stream: a participant's camera (a video socket) or a screen share (the VBSS socket)."""

    track: str  # "video-<source id>" or "screen-<source id>"
    kind: VideoKind
    source_id: int
    blob_name: str


class RecorderEventBase(Contract):
    schema_version: Literal[1] = 1
    event_id: str
    occurred_at: AwareDatetime
    recording_id: RecordingId
    call_id: str
    sequence: int = Field(ge=0)
    recorder_instance: str
    # The capture generation the event is about (added in v1; optional: 0 when absent).
    generation: Generation = 0


@contract("recording.started", 1)
class RecordingStarted(RecorderEventBase):
    type: Literal["recording.started"] = "recording.started"
    call_chain_id: str | None = None
    tenant_id: str | None = None
    observed_user: ObservedUser
    participants: list[CallParticipant] = Field(default_factory=list)
    direction: CallDirection = "unknown"
    call_type: CallType = "unknown"
    phone_numbers: list[str] = Field(default_factory=list)  # E.164 numbers of PSTN participants
    policy: RecordingPolicyInfo = Field(default_factory=RecordingPolicyInfo)
    recorder_app_id: str
    recorder_version: str
    modalities: list[str] = Field(default_factory=lambda: ["audio"])
    # What the recorder keeps of this call: the answer's modalities, narrowed by the capture policy of the
    # invitation's `policyIdentifier` (RECORDER_CAPTURE_POLICIES). Added in v1; None from older recorders.
    capture: list[str] | None = None
    started_at: AwareDatetime  # wall-clock time of sample 0 of the evidence
    blob_container: str
    blob_name: str  # the mixed evidence (FLAC block blob)
    manifest_blob_name: str  # where the capture manifest will be written (same container)
    encoding: AudioEncoding = Field(default_factory=AudioEncoding)
    unmixed: bool = False
    # The recorder updates its progress record at least this often while it captures; silence for several
    # intervals means it died and the staged blocks should be salvaged.
    heartbeat_interval_seconds: float
    # Where this recorder instance answers the lifecycle's question "is this capture alive?" (added in v1;
    # optional): `<base>/api/captures/<recording id>`. The Function App only asks URLs its settings allow.
    control_url: str | None = Field(default=None, max_length=512)


@contract("participants.changed", 1)
class ParticipantsChanged(RecorderEventBase):
    type: Literal["participants.changed"] = "participants.changed"
    participants: list[CallParticipant]  # the whole roster after the change
    joined: list[str] = Field(default_factory=list)  # participant ids
    left: list[str] = Field(default_factory=list)
    roster_sequence_number: int | None = None


@contract("recording.continued", 1)
class RecordingContinued(RecorderEventBase):
    """The lifecycle salvaged capture generation `generation - 1` (it broke the recorder's leases: a fence), but
    the recorder was alive: it writes what it captures from block `first_block` on into `generation`, so
    nothing it captured is lost or written over what was sealed. Sent once per new generation."""

    type: Literal["recording.continued"] = "recording.continued"
    first_block: int = Field(ge=0)  # sequence of the first block of the mixed track in this generation
    first_sample: int = Field(ge=0)  # that block's first sample, counted from sample 0 of generation 0
    kept_blocks: int = Field(ge=0)  # blocks 0..n-1 the fenced generation kept, as its committed block list says
    reason: str = Field(max_length=1000)


@contract("recording.stopped", 1)
class RecordingStopped(RecorderEventBase):
    type: Literal["recording.stopped"] = "recording.stopped"
    reason: StopReason
    result_info: ResultInfo | None = None  # the call's resultInfo when the platform ended it
    ended_at: AwareDatetime
    blob_container: str
    blob_name: str
    manifest_blob_name: str
    duration_seconds: float
    bytes: int
    block_count: int
    sha256: str  # of the whole committed mixed evidence object
    gaps_seconds: float = 0.0  # silence inserted where no audio arrived
    frames_dropped: int = 0
    tracks: list[TrackInfo] = Field(default_factory=list)
    video: list[VideoInfo] = Field(default_factory=list)  # camera and screen-share streams (added in v1; optional)


@contract("recording.failed", 1)
class RecordingFailed(RecorderEventBase):
    type: Literal["recording.failed"] = "recording.failed"
    stage: FailureStage
    reason: str
    failed_at: AwareDatetime
    call_chain_id: str | None = None
    tenant_id: str | None = None  # the call's tenant, as on recording.started (added in v1; optional)
    observed_user: ObservedUser | None = None
    blob_container: str | None = None
    blob_name: str | None = None
    manifest_blob_name: str | None = None  # set when a capture manifest was written for what was captured
    committed: bool = False  # whether what was captured before the failure is committed to the blob
    blocks_staged: int = 0
    bytes_staged: int = 0
    duration_seconds: float = 0.0


RecorderEvent = Annotated[
    RecordingStarted | ParticipantsChanged | RecordingContinued | RecordingStopped | RecordingFailed,
    Field(discriminator="type"),
]
_EVENT_ADAPTER: TypeAdapter[RecorderEvent] = TypeAdapter(RecorderEvent)


def parse_recorder_event(body: str | bytes) -> RecorderEvent:
    """Parse one `recorder-events` message body (JSON text) into its typed event."""
    return _EVENT_ADAPTER.validate_json(body)


# --- capture progress (heartbeat) ---------------------------------------------------------------------------

CaptureState = Literal["capturing", "spilling", "stopped", "failed"]


@contract("capture-progress", 1)
class CaptureProgress(Contract):
    """The recorder's heartbeat for one recording, overwritten every few seconds (a table entity, not a queue
    message). `blocks_staged` counts the contiguous blocks 0..n-1 known to be staged on the blob."""

    schema_version: Literal[1] = 1
    recording_id: str
    call_id: str
    recorder_instance: str
    state: CaptureState
    updated_at: AwareDatetime
    started_at: AwareDatetime | None = None
    blob_container: str
    blob_name: str
    generation: Generation = 0  # the capture generation being written (added in v1; optional)
    blocks_staged: int = 0
    bytes_staged: int = 0
    seconds_staged: float = 0.0
    blocks_spilled: int = 0  # waiting on the recorder's local disk for storage to come back
    frames_received: int = 0
    frames_dropped: int = 0
    heartbeat_interval_seconds: float


# --- capture manifest -----------------------------------------------------------------------------------------


class CaptureBlock(Contract):
    """One staged block of a track's block blob: its bytes and the audio it carries."""

    index: int = Field(ge=0)
    block_id: str  # base64, as sent in the block list (see verbatim.evidence.blocks)
    size: int = Field(ge=0)
    sha256: str
    byte_offset: int = Field(ge=0)
    start_sample: int = Field(ge=0)
    samples: int = Field(ge=0)
    time_offset_seconds: float = Field(ge=0)


class CaptureGap(Contract):
    """A stretch where no audio arrived; the recorder filled it with silence to keep the timing."""

    start_sample: int = Field(ge=0)
    samples: int = Field(gt=0)


class CaptureTrack(Contract):
    track: str
    kind: TrackKind
    source_id: int | None = None
    blob_name: str
    encoding: AudioEncoding = Field(default_factory=AudioEncoding)
    blocks: list[CaptureBlock] = Field(default_factory=list)
    bytes: int = 0
    samples: int = 0
    duration_seconds: float = 0.0
    sha256: str  # of the whole committed object
    gaps: list[CaptureGap] = Field(default_factory=list)


class VideoEncoding(Contract):
    """How a video stream is kept: the H.264 access units exactly as the platform delivered them (Annex B), each
    preceded by a user-data-unregistered SEI NAL unit carrying its timestamp (`verbatim.evidence.h264`)."""

    codec: Literal["h264"] = "h264"
    container: Literal["h264-annexb"] = "h264-annexb"
    timestamps: Literal["sei-user-data-unregistered"] = "sei-user-data-unregistered"
    timestamp_uuid: str = "76657262-6174-696d-2e74-69636b732e31"


class CaptureVideoBlock(Contract):
    """One staged block of a video stream's block blob: whole access units, and when they were shown."""

    index: int = Field(ge=0)
    block_id: str
    size: int = Field(ge=0)
    sha256: str
    byte_offset: int = Field(ge=0)
    units: int = Field(ge=0)  # access units in the block
    key_units: int = Field(default=0, ge=0)  # of which key frames (IDR)
    first_ticks: int = Field(ge=0)  # platform timestamp of its first access unit (100-ns ticks since the epoch)
    last_ticks: int = Field(ge=0)


class CaptureVideoTrack(Contract):
    track: str
    kind: VideoKind
    source_id: int
    participant_id: str | None = None  # whose stream it is, from the roster when the subscription was made
    blob_name: str
    encoding: VideoEncoding = Field(default_factory=VideoEncoding)
    blocks: list[CaptureVideoBlock] = Field(default_factory=list)
    bytes: int = 0
    units: int = 0
    width: int = 0
    height: int = 0
    sha256: str


class DominantSpeakerChange(Contract):
    """The platform named a new dominant speaker (`AudioSocket.DominantSpeakerChanged`): from `ticks` (100-ns ticks
    since the epoch, on the audio frames' timeline: the last audio frame received before the change) the loudest
    voice in the mixed audio is the audio media source `source_id` (None: nobody)."""

    ticks: int = Field(ge=0)
    source_id: int | None = None


@contract("capture-manifest", 1)
class CaptureManifest(Contract):
    """Written by the recorder beside the evidence when a capture ends (or by salvage for a dead recorder)."""

    schema_version: Literal[1] = 1
    recording_id: str
    call_id: str
    call_chain_id: str | None = None
    recorder_instance: str
    started_at: AwareDatetime | None = None  # wall-clock time of sample 0
    ended_at: AwareDatetime | None = None
    written_at: AwareDatetime
    complete: bool  # False when the capture ended in failure or was salvaged
    salvaged: bool = False
    # The capture generation it describes (added in v1; optional). A continuation (generation > 0) lists the
    # blocks written into that generation's blobs; their start samples count from sample 0 of generation 0.
    generation: Generation = 0
    frames_received: int = 0
    frames_dropped: int = 0
    tracks: list[CaptureTrack] = Field(default_factory=list)
    # Camera and screen-share streams kept as H.264 (added in v1; optional: none in an audio-only capture).
    video_tracks: list[CaptureVideoTrack] = Field(default_factory=list)
    # The platform's dominant-speaker changes, repeats collapsed, in order (added in v1; optional: none from an
    # older recorder or a salvage); at most `MAX_DOMINANT_SPEAKER_CHANGES`, the rest counted in `..._dropped`.
    dominant_speakers: list[DominantSpeakerChange] = Field(default_factory=list)
    dominant_speakers_dropped: int = Field(default=0, ge=0)

    def track(self, name: str = "mixed") -> CaptureTrack:
        for track in self.tracks:
            if track.track == name:
                return track
        raise KeyError(f"capture manifest of {self.recording_id} has no track {name!r}")
