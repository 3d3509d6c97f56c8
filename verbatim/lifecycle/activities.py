"""The lifecycle's activities as plain functions over `LifecycleDeps`: what each orchestration step does.
functions/lifecycle.py only parses inputs and calls these; tests call them directly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter

from verbatim.contracts.evidence import AccessCopy, EntryKind, EvidenceTrack
from verbatim.contracts.lifecycle import (
    AccessChunkTask,
    FinalisedRecording,
    RecordingCheck,
    RecordingRecord,
    SealIndex,
    SealSummary,
)
from verbatim.evidence import access_copy
from verbatim.evidence.finalise import finalise
from verbatim.evidence.opus import ChunkPlan
from verbatim.evidence.progress import ProgressReader
from verbatim.evidence.salvage import salvage_capture
from verbatim.evidence.seal import Sealer, build_manifest, read_capture, recording_subject
from verbatim.evidence.worm import WormProtection
from verbatim.ledger.writer import LedgerWriter
from verbatim.lifecycle.announce import announce_indexed
from verbatim.lifecycle.policies import HoldMatcher, NoHolds, RetentionPolicy
from verbatim.lifecycle.records import RecordingStore
from verbatim.platform.blobs import BlobNotFound, BlobStore
from verbatim.platform.errors import NotFound
from verbatim.platform.queues import MessageQueue

log = logging.getLogger(__name__)

_TRACKS = TypeAdapter(list[EvidenceTrack])
# The recorder counts as gone after this many heartbeat intervals without progress or events.
SILENT_AFTER_INTERVALS = 3
# Without any record of the recording, give up after this many waits (the recorder never reported).
MAX_UNKNOWN_WAITS = 10


@dataclass
class LifecycleDeps:
    """The lifecycle's ports: the composition root gives Azure adapters, service-level tests in-memory fakes
    (`InMemoryBlobStore`, `InMemoryWorm`, `InMemoryRecordingStore`, `InMemoryProgress`, `InMemoryQueue`)."""

    recordings: BlobStore  # the evidence (WORM in Azure)
    scratch: BlobStore  # lifecycle-scratch: finalised track lists and encoded access-copy chunks
    store: RecordingStore
    ledger: LedgerWriter
    retention: RetentionPolicy
    worm: WormProtection
    progress: ProgressReader | None = None
    holds: HoldMatcher = field(default_factory=NoHolds)
    chunk_seconds: int = 600
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # `reconciliation-requests`: told when a recording reaches a final state (sealed or not recorded).
    reconciliation: MessageQueue | None = None


def _record(deps: LifecycleDeps, recording_id: str) -> RecordingRecord:
    record = deps.store.get(recording_id)
    if record is None:
        raise NotFound(f"no recording record for {recording_id}")
    return record


def check_recording(deps: LifecycleDeps, recording_id: str, waits: int = 0) -> RecordingCheck:
    """Where the capture stands: still capturing (and for how long to wait), ended, or silent (salvage)."""
    record = deps.store.get(recording_id)
    if record is None:
        if waits >= MAX_UNKNOWN_WAITS:
            return RecordingCheck(recording_id=recording_id, state="no_media", reason="the recorder never reported")
        return RecordingCheck(recording_id=recording_id, state="unknown", wait_seconds=60, reason="no record yet")
    if record.status in ("stopped", "salvaged", "sealed"):
        return RecordingCheck(recording_id=recording_id, state="ended", reason=record.status)
    if record.status == "failed":
        if record.capture_manifest_blob and _exists(deps.recordings, record.capture_manifest_blob):
            return RecordingCheck(recording_id=recording_id, state="ended", reason=f"failed: {record.failure_reason}")
        if record.evidence_blob and _has_blocks(deps.recordings, record.evidence_blob):
            return RecordingCheck(recording_id=recording_id, state="silent", reason="failed with staged blocks")
        return RecordingCheck(recording_id=recording_id, state="no_media", reason=f"failed: {record.failure_reason}")
    now = deps.clock()
    last = record.last_event_at
    if deps.progress is not None:
        progress = deps.progress.read(recording_id)
        if progress is not None and (last is None or progress.updated_at > last):
            last = progress.updated_at
    timeout = timedelta(seconds=SILENT_AFTER_INTERVALS * record.heartbeat_interval_seconds)
    silent_for = now - last if last else timeout
    if silent_for >= timeout:
        return RecordingCheck(
            recording_id=recording_id, state="silent", reason=f"no heartbeat for {silent_for.total_seconds():.0f} s"
        )
    return RecordingCheck(
        recording_id=recording_id, state="capturing", wait_seconds=(timeout - silent_for).total_seconds() + 1
    )


def _exists(container: BlobStore, name: str) -> bool:
    return container.exists(name)


def _has_blocks(container: BlobStore, name: str) -> bool:
    try:
        committed, uncommitted = container.blocks(name)
    except BlobNotFound:
        return False
    return bool(committed or uncommitted)


def salvage(deps: LifecycleDeps, recording_id: str) -> str:
    """Commit what a dead recorder staged; the record becomes `salvaged` and the ledger says so."""
    record = _record(deps, recording_id)
    if not record.evidence_blob or not record.capture_manifest_blob:
        raise NotFound(f"recording {recording_id} has no evidence blob to salvage")
    progress = deps.progress.read(recording_id) if deps.progress is not None else None
    result = salvage_capture(
        deps.recordings,
        recording_id=recording_id,
        call_id=record.facts.call_id,
        recorder_instance=record.facts.recorder_instance,
        blob_name=record.evidence_blob,
        manifest_blob_name=record.capture_manifest_blob,
        progress=progress,
        call_chain_id=record.facts.call_chain_id,
    )
    if not result.already_complete:
        missing = result.missing_seconds(progress)
        deps.ledger.append(
            EntryKind.SALVAGED,
            recording_subject(recording_id),
            {
                "blob": record.evidence_blob,
                "blocks_committed": len(result.mixed.blocks),
                "duration_ms": round(result.mixed.duration_seconds * 1000),
                "missing_ms": None if missing is None else round(missing * 1000),
                "sha256": result.mixed.sha256,
            },
            idempotency_key=f"salvaged:{recording_id}",
        )

    def mark(current: RecordingRecord | None) -> RecordingRecord:
        assert current is not None
        return current if current.status == "sealed" else current.model_copy(update={"status": "salvaged"})

    deps.store.update(recording_id, mark)
    return result.manifest_blob_name


def finalise_recording(deps: LifecycleDeps, recording_id: str) -> FinalisedRecording:
    record = _record(deps, recording_id)
    if not record.capture_manifest_blob:
        raise NotFound(f"recording {recording_id} has no capture manifest")
    capture, _ = read_capture(deps.recordings, record.capture_manifest_blob)
    tracks = finalise(deps.recordings, capture)
    name = f"finalised/{recording_id}.json"
    deps.scratch.write(name, _TRACKS.dump_json(tracks))
    mixed = tracks[0]
    return FinalisedRecording(
        recording_id=recording_id,
        finalised_blob=name,
        capture_manifest_blob=record.capture_manifest_blob,
        mixed_sha256=mixed.sha256,
        samples=mixed.samples,
        problems=[problem for track in tracks for problem in track.problems],
    )


def _tracks(deps: LifecycleDeps, finalised_blob: str) -> list[EvidenceTrack]:
    return _TRACKS.validate_json(deps.scratch.read(finalised_blob))


def plan_access_copy(deps: LifecycleDeps, finalised: FinalisedRecording) -> list[AccessChunkTask]:
    mixed = _tracks(deps, finalised.finalised_blob)[0]
    if mixed.samples == 0:
        return []
    return [
        AccessChunkTask(
            recording_id=finalised.recording_id,
            finalised_blob=finalised.finalised_blob,
            index=plan.index,
            first_packet=plan.first_packet,
            end_packet=plan.end_packet,
            input_start=plan.input_start,
            input_end=plan.input_end,
        )
        for plan in access_copy.plan_access_copy(mixed, deps.chunk_seconds)
    ]


def encode_access_chunk(deps: LifecycleDeps, task: AccessChunkTask) -> str:
    mixed = _tracks(deps, task.finalised_blob)[0]
    plan = ChunkPlan(task.index, task.first_packet, task.end_packet, task.input_start, task.input_end)
    return access_copy.encode_access_chunk(deps.recordings, deps.scratch, task.recording_id, mixed, plan)


def assemble_access_copy(
    deps: LifecycleDeps, recording_id: str, finalised_blob: str, chunk_names: list[str]
) -> AccessCopy:
    mixed = _tracks(deps, finalised_blob)[0]
    return access_copy.assemble_access_copy(deps.recordings, deps.scratch, recording_id, mixed, chunk_names)


def seal_recording(
    deps: LifecycleDeps, recording_id: str, finalised_blob: str, access: AccessCopy | None
) -> SealSummary:
    """Build the manifest from the record, the capture and the finalised tracks, and seal it."""
    record = _record(deps, recording_id)
    assert record.capture_manifest_blob is not None
    capture, capture_ref = read_capture(deps.recordings, record.capture_manifest_blob)
    tracks = _tracks(deps, finalised_blob)
    sealed_at = deps.clock()
    facts = record.facts.model_copy(
        update={
            "started_at": record.facts.started_at or capture.started_at,
            "ended_at": record.facts.ended_at or capture.ended_at,
        }
    )
    manifest = build_manifest(
        facts,
        capture,
        capture_ref,
        tracks,
        access,
        deps.retention.term_for(facts, sealed_at),
        deps.holds.holds_for(facts),
        sealed_at,
    )
    result = Sealer(deps.recordings, deps.ledger, worm=deps.worm, clock=deps.clock).seal(manifest)
    sealed = result.manifest
    mixed = sealed.track()
    return SealSummary(
        recording_id=recording_id,
        status=sealed.status,
        seal=SealIndex(
            manifest_blob=result.manifest_blob.blob_name,
            manifest_sha256=result.manifest_blob.sha256,
            ledger_seq=result.ledger_entry.seq,
            evidence_blob=mixed.blob_name,
            evidence_sha256=mixed.sha256,
            access_copy_blob=sealed.access_copy.blob_name if sealed.access_copy else None,
            duration_seconds=sealed.duration_seconds,
            interrupted=sealed.status == "interrupted",
            retention_class=sealed.retention.retention_class,
            retention_until=sealed.retention.until,
            legal_holds=sealed.legal_holds,
            worm=result.enforcement,
            sealed_at=sealed.sealed_at,
        ),
    )


def index_recording(deps: LifecycleDeps, summary: SealSummary, problems: list[str]) -> RecordingRecord:
    def mark(current: RecordingRecord | None) -> RecordingRecord:
        assert current is not None
        return current.model_copy(update={"status": "sealed", "seal": summary.seal, "problems": problems})

    record = deps.store.update(summary.recording_id, mark)
    _announce(deps, record)
    return record


def _announce(deps: LifecycleDeps, record: RecordingRecord) -> None:
    """Ask reconciliation to re-evaluate the recording's call (idempotent on its side; best effort)."""
    if deps.reconciliation is not None:
        announce_indexed(deps.reconciliation, record, deps.clock())


def mark_not_recorded(deps: LifecycleDeps, recording_id: str, reason: str) -> None:
    def mark(current: RecordingRecord | None) -> RecordingRecord:
        if current is None:
            raise NotFound(f"no recording record for {recording_id}")
        return current.model_copy(update={"status": "not_recorded", "problems": [*current.problems, reason]})

    if deps.store.get(recording_id) is not None:
        _announce(deps, deps.store.update(recording_id, mark))


def clean_up(deps: LifecycleDeps, recording_id: str) -> int:
    deleted = access_copy.discard_access_chunks(deps.scratch, recording_id)
    if deps.scratch.delete(f"finalised/{recording_id}.json"):
        deleted += 1
    return deleted
