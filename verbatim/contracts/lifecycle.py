"""Recording lifecycle contracts: the recording record in Cosmos `recordings` (status, facts, seal summary —
what the API, reconciliation and retention read) and the payloads between the orchestration's activities."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, JsonValue

from verbatim.contracts import Contract, contract
from verbatim.contracts.evidence import AccessCopy, EvidenceTrack, RecordingFacts, VideoEvidenceTrack
from verbatim.contracts.retention import RecordingDeletion

RecordingStatus = Literal[
    "capturing",  # the recorder reported started and has not stopped
    "stopped",  # the recorder stopped normally; the lifecycle finalises and seals
    "failed",  # the recorder reported a failure (what was captured, if anything, is still sealed)
    "salvaged",  # the recorder went silent; staged blocks were committed by salvage
    "sealed",  # evidence sealed: manifest, WORM, ledger
    "not_recorded",  # failed before any media was captured
    "deleting",  # retention (verbatim.retention) began deleting its media: no hold can stop it any more
    "deleted",  # a tombstone: media gone, facts reduced to ids, hashes and dates; see `deletion`
]
# The statuses of a recording whose deletion under retention has begun (claimed) or is done (a tombstone): nothing of
# it is served, exported or written any more (docs/retention.md, work under way).
DELETION_BEGUN: frozenset[RecordingStatus] = frozenset({"deleting", "deleted"})


class SealedPartIndex(Contract):
    """One sealed part of a recording: part 0 is the first capture, part n a continuation the recorder wrote
    after the lifecycle salvaged part n-1. Its time range is `first_sample` / the rate after the recording's
    `started_at`, for `duration_seconds` (measured by decoding the sealed evidence)."""

    part: int = Field(ge=0)
    manifest_blob: str
    manifest_version_id: str | None = None
    manifest_sha256: str
    ledger_seq: int
    first_sample: int = Field(default=0, ge=0)
    sample_rate: int = 16_000
    duration_seconds: float
    interrupted: bool
    sealed_at: AwareDatetime
    # The part's access copies, sealed after its evidence (recording manifest v2; added in v1, optional):
    # `access_pending` while they are being made (never served then), then their access-copy manifest, checked
    # against its hash before anything it names is served, and its `access_copy.sealed` ledger entry.
    access_pending: bool = False
    access_manifest_blob: str | None = None
    access_manifest_version_id: str | None = None
    access_manifest_sha256: str | None = None
    access_ledger_seq: int | None = None
    access_sealed_at: AwareDatetime | None = None


class SealIndex(Contract):
    """What search, replay and retention need without reading the manifest. With continuations, the fields
    describe the whole recording (the evidence and manifest of part 0, the access copy of the newest part,
    which covers every part, the total sealed duration) and `parts` lists each part. The sealed versions are
    read by their version ids (None where the store keeps no versions: Azurite), and a part's manifest is
    trusted only when it hashes to its `manifest_sha256` (`verbatim.evidence.sealed`). The access copy fields are
    set once the newest part's access copies are sealed (with recording manifest v2, after the evidence)."""

    manifest_blob: str
    manifest_version_id: str | None = None
    manifest_sha256: str
    ledger_seq: int
    evidence_blob: str
    evidence_version_id: str | None = None
    evidence_sha256: str
    access_copy_blob: str | None = None
    access_copy_version_id: str | None = None
    access_copy_sha256: str | None = None
    # The MP4 replay copy (audio with the camera and screen-share streams) of a recording with video (optional).
    video_access_copy_blob: str | None = None
    duration_seconds: float
    interrupted: bool
    retention_class: str
    retention_until: AwareDatetime
    legal_holds: list[str] = Field(default_factory=list)
    worm: Literal["azure", "emulator-not-enforced"]
    sealed_at: AwareDatetime
    parts: list[SealedPartIndex] = Field(default_factory=list)  # added in v1; empty on older records
    # The modalities whose evidence the sealed parts hold, by Graph's names (audio, video: a camera,
    # videoBasedScreenSharing: a screen share); added in v1, None on older records (not known, so not judged).
    modalities: list[str] | None = None


ContinuationStatus = Literal["capturing", "stopped", "failed", "salvaged", "sealed", "not_recorded"]


class Continuation(Contract):
    """A capture generation after the first: the lifecycle salvaged (fenced) the one before, and the recorder,
    alive after all, went on writing into this one. It is sealed as its own part, linked to the one before."""

    generation: int = Field(ge=1)
    status: ContinuationStatus = "capturing"
    first_block: int = Field(default=0, ge=0)
    first_sample: int = Field(default=0, ge=0)
    last_event_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    stop_reason: str | None = None
    failure_stage: str | None = None
    failure_reason: str | None = None


@contract("recording-record", 1)
class RecordingRecord(Contract):
    """One recording's document in Cosmos `recordings` (partition key /id = recording id)."""

    schema_version: Literal[1] = 1
    id: str
    status: RecordingStatus
    facts: RecordingFacts
    # Legacy: what older events said about where the capture was. Never read: every path is derived from
    # the recording id and the layout (verbatim.evidence.names).
    blob_container: str | None = None
    evidence_blob: str | None = None
    capture_manifest_blob: str | None = None
    # The newest capture generation the recorder reported (0 until a salvage fenced one and it went on).
    generation: int = Field(default=0, ge=0)
    continuations: list[Continuation] = Field(default_factory=list)
    # Where the recorder instance that holds the call answers the lifecycle's liveness question.
    recorder_control_url: str | None = None
    heartbeat_interval_seconds: float = 10.0
    sequences_seen: list[int] = Field(default_factory=list)
    roster_sequence: int = -1  # sequence of the newest roster applied (started or participants.changed)
    last_event_at: AwareDatetime | None = None
    stop_reason: str | None = None
    failure_stage: str | None = None
    failure_reason: str | None = None
    seal: SealIndex | None = None
    problems: list[str] = Field(default_factory=list)
    deletion: RecordingDeletion | None = None  # set by retention when the deletion begins


@contract("lifecycle-input", 1)
class LifecycleInput(Contract):
    """The orchestration's input (and its continue-as-new state)."""

    recording_id: str
    waits: int = 0  # how many times it has waited for the recorder (bounded; history is reset each time)
    part: int = Field(default=0, ge=0)  # the part (capture generation) this orchestration seals


RecordingCheckState = Literal["capturing", "ended", "silent", "no_media", "unknown"]


@contract("recording-check", 1)
class RecordingCheck(Contract):
    recording_id: str
    state: RecordingCheckState
    wait_seconds: float = 0.0  # when capturing: how long until the recorder would count as silent
    reason: str = ""
    part: int = Field(default=0, ge=0)
    # When silent: what the decision rests on (heartbeat age, the recorder's answer, the threshold and its basis).
    evidence: dict[str, JsonValue] = Field(default_factory=dict)


@contract("finalised-recording", 1)
class FinalisedRecording(Contract):
    """Finalise's result; the full track list (block tables) is kept in scratch, not in the history."""

    recording_id: str
    part: int = Field(default=0, ge=0)
    finalised_blob: str  # lifecycle-scratch blob with the EvidenceTrack list
    capture_manifest_blob: str  # the capture manifest finalise used (captures container, or scratch after salvage)
    mixed_sha256: str
    samples: int
    problems: list[str] = Field(default_factory=list)


class TimelinePart(Contract):
    """A sealed part's mixed track and where it starts in the recording (for the access copy of the whole)."""

    first_sample: int = Field(ge=0)
    track: EvidenceTrack


@contract("lifecycle.finalised-tracks", 1)
class FinalisedTracks(Contract):
    """What finalise leaves in lifecycle-scratch for the access copy and the seal: the part's tracks as sealed,
    the parts before it, and the capture manifest it was finalised from."""

    tracks: list[EvidenceTrack]
    video: list[VideoEvidenceTrack] = Field(default_factory=list)  # camera and screen-share streams (optional)
    previous: list[TimelinePart] = Field(default_factory=list)
    first_sample: int = Field(default=0, ge=0)
    capture_container: Literal["captures", "scratch"]  # scratch: the lifecycle's own manifest after a salvage
    capture_blob: str


@contract("access-chunk-task", 1)
class AccessChunkTask(Contract):
    recording_id: str
    part: int = Field(default=0, ge=0)
    finalised_blob: str
    index: int
    first_packet: int
    end_packet: int | None
    input_start: int
    input_end: int


@contract("seal-summary", 1)
class SealSummary(Contract):
    recording_id: str
    part: int = Field(default=0, ge=0)
    status: Literal["complete", "interrupted"]
    seal: SealIndex


# --- the orchestration's activities, external event, status and output ------------------------------------


@contract("lifecycle.recording-task", 1)
class RecordingTask(Contract):
    """The input of the activities that need only the recording and part: salvage, finalise, clean up."""

    recording_id: str
    part: int = Field(default=0, ge=0)


@contract("lifecycle.salvage-request", 1)
class SalvageRequest(Contract):
    """Salvage a part whose recorder was judged gone, and why (it goes into the `salvaged` ledger entry)."""

    recording_id: str
    part: int = Field(default=0, ge=0)
    reason: str = ""
    evidence: dict[str, JsonValue] = Field(default_factory=dict)


@contract("lifecycle.salvaged", 1)
class Salvaged(Contract):
    """Salvage's result: the capture manifest that now describes the committed blocks."""

    manifest_blob: str


@contract("lifecycle.access-chunk", 1)
class AccessChunk(Contract):
    """One encoded chunk of the access copy, left in lifecycle-scratch until the copy is assembled."""

    blob_name: str


@contract("lifecycle.assemble-access-copy", 1)
class AssembleAccessCopy(Contract):
    recording_id: str
    part: int = Field(default=0, ge=0)
    finalised_blob: str
    chunks: list[AccessChunk]


@contract("lifecycle.seal-request", 1)
class SealRequest(Contract):
    recording_id: str
    part: int = Field(default=0, ge=0)
    finalised_blob: str
    access_copy: AccessCopy | None = None


@contract("lifecycle.access-seal-request", 1)
class AccessSealRequest(Contract):
    """Seal a part's access copies, made after its evidence was sealed and its verdict could be decided."""

    recording_id: str
    part: int = Field(default=0, ge=0)
    finalised_blob: str
    access_copy: AccessCopy | None = None


@contract("lifecycle.access-copy-request", 1)
class AccessCopyRequest(Contract):
    """A message on `access-copies`: make and seal a sealed part's access copies. Sent by the lifecycle once the
    part's evidence is sealed and indexed, and again by the sweep for a part still pending long after; every
    step is idempotent, so a duplicate costs a read."""

    recording_id: str
    part: int = Field(default=0, ge=0)
    finalised_blob: str


@contract("lifecycle.access-sealed", 1)
class AccessSealed(Contract):
    recording_id: str
    part: int = Field(default=0, ge=0)
    access_manifest_blob: str | None = None  # None: nothing to replay (no audio and no video)
    ledger_seq: int | None = None


@contract("lifecycle.access-copy-requested", 1)
class AccessCopyRequested(Contract):
    """The lifecycle's last activity: the access copies were asked of `access-copies` (`sealed` None), or made at
    once where the app has no such queue (in-process tools and tests)."""

    recording_id: str
    part: int = Field(default=0, ge=0)
    sealed: AccessSealed | None = None


@contract("lifecycle.index-request", 1)
class IndexRequest(Contract):
    summary: SealSummary
    problems: list[str] = Field(default_factory=list)


@contract("lifecycle.indexed", 1)
class Indexed(Contract):
    recording_id: str
    status: RecordingStatus


@contract("lifecycle.mark-not-recorded", 1)
class MarkNotRecorded(Contract):
    recording_id: str
    reason: str
    part: int = Field(default=0, ge=0)


@contract("lifecycle.cleaned-up", 1)
class CleanedUp(Contract):
    deleted: int  # scratch blobs deleted


@contract("lifecycle.recorder-signal", 1)
class RecorderSignal(Contract):
    """The external event `recorder_event`: a recorder event reached the record; the orchestration re-reads it."""

    sequence: int
    type: str


LifecycleStage = Literal[
    "capturing",
    "waiting_for_previous_part",
    "not_recorded",
    "salvaging",
    "finalising",
    "transcoding",
    "sealing",
    "indexing",
    "sealing_access_copy",
    "requesting_access_copy",
    "sealed",
]


@contract("lifecycle.status", 1)
class LifecycleStatus(Contract):
    """The orchestration's custom status: where the recording is now."""

    stage: LifecycleStage
    recording_id: str
    part: int | None = None
    waits: int | None = None
    reason: str | None = None
    ledger_seq: int | None = None


@contract("lifecycle.outcome", 1)
class LifecycleOutcome(Contract):
    """The orchestration's output."""

    recording_id: str
    status: Literal["sealed", "not_recorded"]
    reason: str | None = None
    interrupted: bool | None = None
    part: int | None = None


# --- pairs: two recordings of the same call leg and policy user (ConcurrentInvitationCount 2, paired apps) -----


class PairSpan(Contract):
    """A stretch of the call that one sealed part of a member covers on the wall clock (its first sample for
    the duration measured by decoding the sealed evidence)."""

    part: int = Field(ge=0)
    start: AwareDatetime
    end: AwareDatetime
    interrupted: bool


class PairMember(Contract):
    """One recording of the pair, as its record says now."""

    recording_id: str
    recorder_instance: str
    call_id: str  # the bot's own leg of the call
    status: RecordingStatus
    final: bool = False  # nothing more will be sealed for it (sealed with every continuation, or not recorded)
    started_at: AwareDatetime | None = None
    spans: list[PairSpan] = Field(default_factory=list)  # empty until sealed
    manifest_blob: str | None = None  # part 0's sealed manifest
    manifest_sha256: str | None = None
    ledger_seq: int | None = None


class AttributedInterval(Contract):
    """A stretch of the union of the pair's coverage, and the recording (instance) whose evidence holds it."""

    start: AwareDatetime
    end: AwareDatetime
    seconds: float = Field(ge=0)
    recording_id: str
    recorder_instance: str
    part: int = Field(ge=0)


class PairManifestRef(Contract):
    """A pair manifest sealed into one member's folder, and its ledger entry (`paired`, about that member)."""

    recording_id: str
    blob_name: str
    sha256: str
    ledger_seq: int
    # The access copy of the pair's union of coverage, written beside it (added in v1; optional: none when no
    # member's evidence could be read).
    access_copy_blob: str | None = None
    access_copy_sha256: str | None = None


@contract("recording-pair", 1)
class RecordingPair(Contract):
    """The recordings of one call leg for one policy user under one policy: the two invitations of
    `ConcurrentInvitationCount 2` or of a paired application, answered by different recorder instances. One
    document in Cosmos `recording_pairs` (partition key /id), folded idempotently from the members' records."""

    schema_version: Literal[1] = 1
    id: str
    tenant_id: str | None = None
    call_chain_id: str
    observed_user_id: str
    policy_identifier: str | None = None
    members: list[PairMember] = Field(default_factory=list)
    # The union of what the members' sealed evidence covers, each stretch attributed to one member.
    coverage: list[AttributedInterval] = Field(default_factory=list)
    union_seconds: float = 0.0
    complete: bool = False  # two or more members, all final: the pair manifest can be sealed
    manifests: list[PairManifestRef] = Field(default_factory=list)  # of the newest revision, one per member
    revision: str | None = None  # digest of what the newest pair manifest describes


class PairManifestPart(Contract):
    part: int = Field(ge=0)
    start: AwareDatetime
    end: AwareDatetime
    interrupted: bool


class PairManifestMember(Contract):
    recording_id: str
    recorder_instance: str
    call_id: str
    manifest_blob: str  # part 0's sealed manifest (each part's is in the recording's own `sealed` entries)
    manifest_sha256: str
    ledger_seq: int
    parts: list[PairManifestPart]


@contract("pair-manifest", 1)
class PairManifest(Contract):
    """Sealed into each member's folder of `recordings` once every member is final: which recordings hold the
    same call leg for the same policy user, what each covers, and which one's evidence holds each stretch of the
    union. Its SHA-256 is in a `paired` ledger entry about each member, so each recording verifies on its own."""

    schema_version: Literal[1] = 1
    pair_id: str
    tenant_id: str | None = None
    call_chain_id: str
    observed_user_id: str
    policy_identifier: str | None = None
    members: list[PairManifestMember]
    coverage: list[AttributedInterval]
    union_seconds: float
    sealed_at: AwareDatetime  # the newest member's seal: the manifest's bytes depend on nothing else
