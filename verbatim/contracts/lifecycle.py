"""Recording lifecycle contracts: the recording record in Cosmos `recordings` (status, facts, seal summary —
what the API, reconciliation and retention read) and the payloads between the orchestration's activities."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from verbatim.contracts import Contract, contract
from verbatim.contracts.evidence import RecordingFacts
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


class SealIndex(Contract):
    """What search, replay and retention need without reading the manifest."""

    manifest_blob: str
    manifest_sha256: str
    ledger_seq: int
    evidence_blob: str
    evidence_sha256: str
    access_copy_blob: str | None = None
    duration_seconds: float
    interrupted: bool
    retention_class: str
    retention_until: AwareDatetime
    legal_holds: list[str] = Field(default_factory=list)
    worm: Literal["azure", "emulator-not-enforced"]
    sealed_at: AwareDatetime


@contract("recording-record", 1)
class RecordingRecord(Contract):
    """One recording's document in Cosmos `recordings` (partition key /id = recording id)."""

    schema_version: Literal[1] = 1
    id: str
    status: RecordingStatus
    facts: RecordingFacts
    blob_container: str | None = None
    evidence_blob: str | None = None
    capture_manifest_blob: str | None = None
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


RecordingCheckState = Literal["capturing", "ended", "silent", "no_media", "unknown"]


@contract("recording-check", 1)
class RecordingCheck(Contract):
    recording_id: str
    state: RecordingCheckState
    wait_seconds: float = 0.0  # when capturing: how long until the recorder would count as silent
    reason: str = ""


@contract("finalised-recording", 1)
class FinalisedRecording(Contract):
    """Finalise's result; the full track list (block tables) is kept in scratch, not in the history."""

    recording_id: str
    finalised_blob: str  # lifecycle-scratch blob with the EvidenceTrack list
    capture_manifest_blob: str
    mixed_sha256: str
    samples: int
    problems: list[str] = Field(default_factory=list)


@contract("access-chunk-task", 1)
class AccessChunkTask(Contract):
    recording_id: str
    finalised_blob: str
    index: int
    first_packet: int
    end_packet: int | None
    input_start: int
    input_end: int


@contract("seal-summary", 1)
class SealSummary(Contract):
    recording_id: str
    status: Literal["complete", "interrupted"]
    seal: SealIndex
