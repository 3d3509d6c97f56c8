"""Evidence contracts: the sealed-recording manifest, ledger entries, signed checkpoints and inclusion proofs
(exported with recordings and verified offline).

Hashes are lowercase hex SHA-256 over canonical JSON (`verbatim.ledger.canonical`); instants inside
hashed content are fixed-width UTC text (`2025-01-31T09:30:00.000000Z`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, JsonValue

from verbatim.contracts import Contract, contract
from verbatim.contracts.recorder import CallDirection, CallParticipant, CallType, ObservedUser, VideoKind

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Instant = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")]
# Dotted lowercase names; the set is open so other areas can add kinds without a schema change.
EntryKindName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$", max_length=64)]
SignatureAlgorithmName = Literal["Ed25519", "ES256"]

# The previous hash of the first entry of every chain.
GENESIS_HASH = "0" * 64


class EntryKind(StrEnum):
    """Kinds of ledger entry Verbatim writes; other dotted names are allowed."""

    SEALED = "sealed"
    SALVAGED = "salvaged"
    HOLD_PLACED = "hold.placed"
    HOLD_RELEASED = "hold.released"
    ACCESSED = "accessed"
    EXPORTED = "exported"
    DELETED = "deleted"
    POLICY_CHANGED = "policy.changed"
    RETENTION_EXTENDED = "retention.extended"
    REPORT_COMPLETENESS = "report.completeness"
    # The access copy of a recording part, sealed in its own right after the evidence (recording manifest v2).
    ACCESS_COPY_SEALED = "access_copy.sealed"


@contract("ledger-entry", 1)
class LedgerEntry(Contract):
    """One append-only ledger entry. `hash` = SHA-256 of canonical {content_sha256, prev_hash}, and
    `content_sha256` = SHA-256 of the canonical content (every field above `prev_hash`)."""

    schema_version: Literal[1] = 1
    chain: str
    seq: int = Field(ge=1)
    kind: EntryKindName
    # What the entry is about, as "<type>:<id>" (e.g. "recording:2f1c...", "hold:m-42").
    subject: str = Field(min_length=1, max_length=512)
    details: dict[str, JsonValue] = Field(default_factory=dict)
    # Who caused it: a user (UPN / object id) or a service identity; None for the system itself.
    actor: str | None = None
    # Set by callers that may retry; an append with a key already in the chain returns that entry.
    idempotency_key: str | None = Field(default=None, max_length=256)
    at: Instant
    prev_hash: Sha256Hex
    content_sha256: Sha256Hex
    hash: Sha256Hex


@contract("ledger-checkpoint", 1)
class LedgerCheckpoint(Contract):
    """A signature over the chain's head at `seq`: it commits to every entry up to and including it.
    The signed message is `verbatim-ledger-checkpoint-v1\\n` + canonical {algorithm, chain, hash, key_id,
    seq, signed_at}; ES256 signatures are raw r||s (64 bytes), as JWS and Key Vault produce them."""

    schema_version: Literal[1] = 1
    chain: str
    seq: int = Field(ge=1)
    hash: Sha256Hex
    signed_at: Instant
    key_id: str
    algorithm: SignatureAlgorithmName
    # The signer's public key (PEM, SubjectPublicKeyInfo); trust comes from its fingerprint, not from here.
    public_key: str
    signature: str  # base64


class ChainLink(Contract):
    """An entry after the proven one, reduced to what re-computing the chain needs (no content)."""

    seq: int = Field(ge=1)
    content_sha256: Sha256Hex
    hash: Sha256Hex


@contract("ledger-inclusion-proof", 1)
class InclusionProof(Contract):
    """Proves `entry` is in the chain that `checkpoint` signed: re-hash the entry, then follow `links`
    (entries entry.seq+1 .. checkpoint.seq) to the checkpoint's hash."""

    schema_version: Literal[1] = 1
    entry: LedgerEntry
    links: list[ChainLink] = Field(default_factory=list)
    checkpoint: LedgerCheckpoint


# --- the sealed-recording manifest (`manifest.json` beside the media) ------------------------------------------


class ChunkDigests(Contract):
    """SHA-256 of each `chunk_bytes` chunk of a sealed object (the last one may be shorter), recorded when it was
    sealed: a byte range is checked against the chunks that cover it, without reading the whole object."""

    chunk_bytes: int = Field(gt=0)
    sha256: list[Sha256Hex]


class BlobRef(Contract):
    """A blob, the version that was sealed (None where the store keeps no versions: Azurite) and its hash
    (and, for media, the hashes of its chunks)."""

    blob_name: str
    version_id: str | None = None
    bytes: int = Field(ge=0)
    sha256: Sha256Hex
    chunks: ChunkDigests | None = None


class SealedBlock(Contract):
    """One committed block of the evidence, as verified at finalise time."""

    index: int = Field(ge=0)
    block_id: str
    size: int = Field(ge=0)
    sha256: Sha256Hex
    byte_offset: int = Field(ge=0)
    start_sample: int = Field(ge=0)
    samples: int = Field(ge=0)


class EvidenceTrack(BlobRef):
    """A lossless track (FLAC): the mixed record or one speaker's unmixed stream."""

    track: str
    kind: Literal["mixed", "unmixed"]
    source_id: int | None = None
    content_type: Literal["audio/flac"] = "audio/flac"
    codec: Literal["flac"] = "flac"
    sample_rate: int
    channels: int
    bits_per_sample: int
    samples: int = Field(ge=0)  # measured by decoding
    duration_seconds: float
    blocks: list[SealedBlock] = Field(default_factory=list)
    gaps: list[AudioGap] = Field(default_factory=list)
    # A speaker's track (unmixed): when they spoke, seconds from the part's first sample (added in v1; optional).
    # The mixed track: who the platform named dominant speaker when (`basis` "dominant-speaker", with `source_id`).
    speech: list[SpeechSpan] = Field(default_factory=list)
    # What finalise found wrong (a block that does not match the recorder's hash, undecodable data); the
    # evidence is sealed as it is, with the problems on record, never discarded.
    problems: list[str] = Field(default_factory=list)


class SpeechSpan(Contract):
    """A stretch of speech in a speaker's own track (voice activity: `verbatim.evidence.speech`), or on the mixed
    track a stretch in which the platform named one participant's audio source the dominant speaker
    (`verbatim.evidence.dominant`)."""

    start_seconds: float
    end_seconds: float
    # What says they spoke (added in v1; optional): voice activity in their own track, or the platform's
    # dominant-speaker events for the mixed audio; `source_id` is the speaker's audio media source id (roster).
    basis: Literal["voice-activity", "dominant-speaker"] = "voice-activity"
    source_id: int | None = None


class AudioGap(Contract):
    start_sample: int = Field(ge=0)
    samples: int = Field(gt=0)


class AccessCopy(BlobRef):
    """The Opus replay copy, tied to the evidence it was made from by that evidence's SHA-256."""

    content_type: Literal["audio/ogg"] = "audio/ogg"
    codec: Literal["opus"] = "opus"
    container: Literal["ogg"] = "ogg"
    bitrate: int
    duration_seconds: float
    source_track: str = "mixed"
    # The evidence it was made from: its SHA-256, or for a recording sealed in parts, SHA-256 of the parts'
    # SHA-256s (one per line, in order), which are listed in `source_parts` (added in v1; optional).
    source_sha256: Sha256Hex
    source_parts: list[Sha256Hex] = Field(default_factory=list)


class VideoSpan(Contract):
    """A stretch in which a video stream was received (a camera on, a screen shared), in seconds from the start of
    the recording (sample 0 of its audio)."""

    start_seconds: float
    end_seconds: float


class SealedVideoBlock(Contract):
    """One committed block of a video stream, as verified at finalise time."""

    index: int = Field(ge=0)
    block_id: str
    size: int = Field(ge=0)
    sha256: Sha256Hex
    byte_offset: int = Field(ge=0)
    units: int = Field(ge=0)
    first_seconds: float
    last_seconds: float


class VideoEvidenceTrack(BlobRef):
    """A camera or screen-share stream: the H.264 access units as the platform delivered them, each behind a
    timestamp SEI NAL unit (`verbatim.evidence.h264`); `units` and the spans are measured from those timestamps."""

    track: str  # "video-<source id>" or "screen-<source id>"
    kind: VideoKind
    source_id: int
    participant_id: str | None = None
    content_type: Literal["video/h264"] = "video/h264"
    codec: Literal["h264"] = "h264"
    container: Literal["h264-annexb"] = "h264-annexb"
    timestamp_uuid: str = "76657262-6174-696d-2e74-69636b732e31"
    width: int = 0
    height: int = 0
    units: int = Field(default=0, ge=0)
    key_units: int = Field(default=0, ge=0)
    first_seconds: float | None = None
    last_seconds: float | None = None
    spans: list[VideoSpan] = Field(default_factory=list)
    blocks: list[SealedVideoBlock] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


class VideoStreamCopy(BlobRef):
    """The MP4 replay copy of one video stream: the Opus access copy's packets and that stream's access units (a
    stream continued across parts: all of them), remuxed without re-encoding, on the recording's timeline. A browser
    plays only the first video track of an MP4, so the player switches cameras by switching between these."""

    track: str  # "video-<source id>" or "screen-<source id>": the stream it shows
    kind: VideoKind
    source_id: int
    participant_id: str | None = None
    content_type: Literal["video/mp4"] = "video/mp4"
    container: Literal["mp4"] = "mp4"
    audio_codec: Literal["opus"] | None = "opus"
    duration_seconds: float
    # What it was made from: the Opus access copy's SHA-256 and the stream's evidence SHA-256(s), in order.
    source_sha256: list[Sha256Hex] = Field(default_factory=list)


class VideoAccessCopy(BlobRef):
    """The MP4 replay copy of a recording with video: the Opus access copy's packets and every video stream's
    access units, remuxed without re-encoding, on the recording's timeline; and one MP4 per stream (`streams`, added
    in v1, optional) for a player that switches between the screen share and the cameras."""

    content_type: Literal["video/mp4"] = "video/mp4"
    container: Literal["mp4"] = "mp4"
    audio_codec: Literal["opus"] | None = "opus"
    video_tracks: list[str] = Field(default_factory=list)  # in stream order (stream 0 is the audio, when there is one)
    duration_seconds: float
    # What it was made from: the Opus access copy's SHA-256 and each video stream's evidence SHA-256, in order.
    source_sha256: list[Sha256Hex] = Field(default_factory=list)
    streams: list[VideoStreamCopy] = Field(default_factory=list)  # screen shares first, then cameras

    def stream(self, track: str) -> VideoStreamCopy | None:
        return next((copy for copy in self.streams if copy.track == track), None)


class RetentionTerm(Contract):
    """The retention class chosen at seal time and the date until which nothing may be deleted."""

    retention_class: str
    until: AwareDatetime
    basis: str | None = None  # legal basis text of the class, when it has one


class RecordingFacts(Contract):
    """What the recorder reported about the call (from its events), carried into the manifest."""

    recording_id: str
    call_id: str
    call_chain_id: str | None = None
    tenant_id: str | None = None
    observed_user: ObservedUser | None = None
    participants: list[CallParticipant] = Field(default_factory=list)
    direction: CallDirection = "unknown"
    call_type: CallType = "unknown"
    modalities: list[str] = Field(default_factory=lambda: ["audio"])
    capture: list[str] | None = None  # what the recorder was told to keep (recording.started), when it said
    phone_numbers: list[str] = Field(default_factory=list)
    recorder_instance: str
    recorder_app_id: str | None = None
    recorder_version: str | None = None
    policy_identifier: str | None = None
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None


@contract("recording-manifest", 2)
class RecordingManifest(RecordingFacts):
    """The sealed recording: what was recorded, where, its hashes, its retention and holds. Its own SHA-256
    (of the exact bytes stored) is in the ledger's `sealed` entry, so a changed manifest is detected.

    Version 2 seals the lossless evidence alone, as soon as it is finalised (so the verdict never waits for a
    transcode): its access copies are made afterwards and sealed in their own right, by an `AccessCopyManifest`
    that names this manifest's hash and an `access_copy.sealed` ledger entry. Version 1 (older recordings) sealed
    the access copies here, in `access_copy` and `video_access_copy`; both versions are read."""

    schema_version: Literal[1, 2] = 2
    status: Literal["complete", "interrupted"]
    salvaged: bool = False
    # Which part of the recording this manifest seals (added in v1; optional, 0 when absent): 0 is the first
    # capture; part n (a continuation) is what a recorder captured after the lifecycle salvaged part n-1.
    part: int = Field(default=0, ge=0)
    # Where the part starts in the recording: samples since sample 0 of part 0 (0 for part 0).
    first_sample: int = Field(default=0, ge=0)
    # The sealed manifest of part n-1 (its exact bytes' hash), which this part continues.
    previous_part: BlobRef | None = None
    duration_seconds: float
    capture_manifest: BlobRef | None = None  # the recorder's capture.json, sealed alongside
    evidence: list[EvidenceTrack]
    access_copy: AccessCopy | None = None
    # Camera and screen-share streams and their MP4 replay copy (added in v1; optional: none for audio only).
    video: list[VideoEvidenceTrack] = Field(default_factory=list)
    video_access_copy: VideoAccessCopy | None = None
    retention: RetentionTerm
    legal_holds: list[str] = Field(default_factory=list)  # ids of the holds that applied at seal time
    sealed_at: AwareDatetime
    sealed_by: str  # the Verbatim version that sealed it

    def track(self, name: str = "mixed") -> EvidenceTrack:
        for track in self.evidence:
            if track.track == name:
                return track
        raise KeyError(f"manifest of {self.recording_id} has no track {name!r}")

    @property
    def access_sealed_separately(self) -> bool:
        """Whether this part's access copies are sealed after it, by an access-copy manifest (version 2)."""
        return self.schema_version >= 2 and self.access_copy is None and self.video_access_copy is None


@contract("access-copy-manifest", 1)
class AccessCopyManifest(Contract):
    """The access copies of one recording part, sealed after its evidence (`access.json` beside the part's
    manifest): the Opus copy and, with video, the MP4 copy, each with its hash, and the part's sealed recording
    manifest they were made from (its exact bytes' SHA-256, which the part's `sealed` ledger entry holds). Its own
    SHA-256 is in the `access_copy.sealed` ledger entry; its objects are WORM until the recording's retention date
    and under its legal holds, like the evidence."""

    schema_version: Literal[1] = 1
    recording_id: str
    part: int = Field(default=0, ge=0)
    recording_manifest: BlobRef  # the part's sealed manifest (version 2), by its exact bytes
    access_copy: AccessCopy | None = None  # None: no audio to replay (a video-only copy)
    video_access_copy: VideoAccessCopy | None = None
    retention_until: AwareDatetime  # the recording's retention date when the copies were sealed
    legal_holds: list[str] = Field(default_factory=list)
    sealed_at: AwareDatetime
    sealed_by: str


EvidenceTrack.model_rebuild()
