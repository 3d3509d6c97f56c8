"""The lifecycle's activities as plain functions over `LifecycleDeps`: what each orchestration step does.
functions/lifecycle.py only parses inputs and calls these; tests call them directly.

Each activity works on one part of a recording: part 0 is the recorder's first capture generation, part n a
continuation it wrote after the lifecycle salvaged (fenced) part n-1. Every blob name is derived here from the
recording id and the part (`verbatim.evidence.names`): the recorder's captures are read from the captures
container, the sealed evidence is written once into the recordings container.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import ResourceNotFoundError
from pydantic import JsonValue

from verbatim.contracts.evidence import (
    AccessCopy,
    BlobRef,
    EntryKind,
    RecordingFacts,
    RecordingManifest,
    VideoAccessCopy,
    VideoEvidenceTrack,
)
from verbatim.contracts.lifecycle import (
    DELETION_BEGUN,
    AccessChunkTask,
    AccessCopyRequest,
    AccessSealed,
    Continuation,
    FinalisedRecording,
    FinalisedTracks,
    RecordingCheck,
    RecordingPair,
    RecordingRecord,
    SealedPartIndex,
    SealIndex,
    SealSummary,
    TimelinePart,
)
from verbatim.contracts.recorder import (
    CaptureManifest,
    CaptureProgress,
    RecorderEvent,
    RecordingFailed,
    RecordingStarted,
)
from verbatim.evidence import access_copy, names
from verbatim.evidence.access_copy import Timeline
from verbatim.evidence.access_seal import AccessSealer, build_access_manifest
from verbatim.evidence.finalise import finalise
from verbatim.evidence.flac import MAX_HEADER_BYTES, NotFlac, parse_header
from verbatim.evidence.names import ForeignPath
from verbatim.evidence.opus import ChunkPlan
from verbatim.evidence.progress import ProgressReader
from verbatim.evidence.salvage import read_capture_manifest, salvage_capture
from verbatim.evidence.seal import Sealer, build_manifest, recording_subject, seal_capture_manifest
from verbatim.evidence.sealed import EvidenceTampered
from verbatim.evidence.video import finalise_video, make_video_access_copy, ticks_of
from verbatim.evidence.worm import WormProtection
from verbatim.ledger.writer import LedgerWriter
from verbatim.lifecycle import access_requests
from verbatim.lifecycle.access_requests import PendingAccessCopies, PendingPart
from verbatim.lifecycle.announce import announce_indexed
from verbatim.lifecycle.liveness import TABLE_SERVER_TIMEOUT_SECONDS, CaptureLiveness, NoLiveness, judge
from verbatim.lifecycle.pair_access import MemberPart, PairAccessCopy, make_pair_access_copy, member_parts
from verbatim.lifecycle.pairs import MemberRetention, PairStore, record_in_pair, revision_of, seal_pair_manifest
from verbatim.lifecycle.policies import HoldMatcher, NoHolds, RetentionPolicy
from verbatim.lifecycle.records import RecordingStore, fold_event
from verbatim.platform.audit import AuditEvent, AuditLog
from verbatim.platform.blobs import BlobNotFound, BlobStore
from verbatim.platform.errors import Conflict, NotFound
from verbatim.platform.queues import MessageQueue

log = logging.getLogger(__name__)

# Without any record of the recording, give up after this many waits (the recorder never reported).
MAX_UNKNOWN_WAITS = 10
# A capture that stopped before its `recording.started` arrived waits this long for it (from the last event) before
# it is sealed without it: a Functions host killed while holding the message hides it for the queue listener's
# 10-minute visibility timeout (azure-webjobs-sdk#1040), and evidence sealed without `started` does not say whose
# call it is (no call chain, no observed user: issue 23, chaos seed 3).
LATE_START_WAIT = timedelta(minutes=11)
LATE_START_POLL_SECONDS = 60.0
# The record states reconciliation has been told of (`recording.indexed`); an event that changes such a record
# afterwards tells it again.
ANNOUNCED = frozenset({"sealed", "not_recorded"})
JSON = "application/json"


@dataclass
class LifecycleDeps:
    """The lifecycle's ports: the composition root gives Azure adapters, service-level tests in-memory fakes
    (`InMemoryBlobStore`, `InMemoryWorm`, `InMemoryRecordingStore`, `InMemoryProgress`, `InMemoryQueue`)."""

    recordings: BlobStore  # the sealed evidence (WORM in Azure): each name written once, by this code only
    scratch: BlobStore  # lifecycle-scratch: finalised track lists, salvage manifests, access-copy chunks
    store: RecordingStore
    ledger: LedgerWriter
    retention: RetentionPolicy
    worm: WormProtection
    captures: BlobStore | None = None  # the recorder's staging container (None: the same as `recordings`, tests)
    progress: ProgressReader | None = None
    liveness: CaptureLiveness = field(default_factory=NoLiveness)
    holds: HoldMatcher = field(default_factory=NoHolds)
    chunk_seconds: int = 600
    # The Table service's server timeout for writes, which the silence threshold is derived from.
    storage_server_timeout_seconds: float = TABLE_SERVER_TIMEOUT_SECONDS
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # `reconciliation-requests`: told when a recording reaches a final state (sealed or not recorded).
    reconciliation: MessageQueue | None = None
    # Security events (a recorder event naming blobs that are not its recording's own).
    audit: AuditLog | None = None
    # Pairs of recordings of the same call leg and policy user (ConcurrentInvitationCount 2, paired apps).
    pairs: PairStore | None = None
    # `access-copies`: a sealed part's access copies are made by its own trigger (None: at once, in the caller),
    # and the parts still pending long after their evidence seal, which the sweep asks for again.
    access_copies: MessageQueue | None = None
    pending_access: PendingAccessCopies | None = None
    # Retention's removal of what work under way wrote under a recording's folder after its deletion (certified in
    # a `deleted.late` entry; `RecordingDeleter.remove_late_objects`). None: nothing is removed (unit tests).
    late_objects: Callable[[str], object] | None = None

    @property
    def staging(self) -> BlobStore:
        return self.captures if self.captures is not None else self.recordings


class DeletionUnderWay(Conflict):
    """The recording is being deleted: the work is tried again (its message delivered again) once it is deleted."""


def _settle(deps: LifecycleDeps, record: RecordingRecord) -> bool:
    """Whether the recording is deleted, after retention removed whatever is under its folder (`late_objects`):
    True. Not deleted: False. Being deleted: `DeletionUnderWay` (its deletion lists the folder afresh when it
    finishes, but a writer that looks before then cannot tell whether its objects were listed)."""
    if record.status == "deleting":
        raise DeletionUnderWay(f"recording {record.id} is being deleted under retention", recording_id=record.id)
    if record.status != "deleted":
        return False
    if deps.late_objects is not None:
        deps.late_objects(record.id)
    return True


def _deleted_since_written(deps: LifecycleDeps, recording_id: str) -> bool:
    """Write, then look (docs/retention.md, work under way): after writing under the recording's folder, read its
    record. Still sealed: a deletion claimed later lists the folder after the write, so what was written goes with
    it. Otherwise as `_settle`: deleted (what was written removed and certified) or being deleted (tried again)."""
    return _settle(deps, _record(deps, recording_id))


def _record(deps: LifecycleDeps, recording_id: str) -> RecordingRecord:
    record = deps.store.get(recording_id)
    if record is None:
        raise NotFound(f"no recording record for {recording_id}")
    return record


def _continuation(record: RecordingRecord, part: int) -> Continuation:
    found = next((c for c in record.continuations if c.generation == part), None)
    if found is None:
        raise NotFound(f"recording {record.id} has no part {part}")
    return found


@dataclass(frozen=True)
class PartState:
    """One part's capture as the record tells it (part 0 from the record itself, others from continuations)."""

    status: str
    last_event_at: datetime | None
    failure_reason: str | None
    first_block: int
    first_sample: int
    ended_at: datetime | None


def part_state(record: RecordingRecord, part: int) -> PartState:
    if part == 0:
        return PartState(record.status, record.last_event_at, record.failure_reason, 0, 0, record.facts.ended_at)
    c = _continuation(record, part)
    return PartState(c.status, c.last_event_at, c.failure_reason, c.first_block, c.first_sample, c.ended_at)


def _sealed_parts(record: RecordingRecord) -> list[SealedPartIndex]:
    if record.seal is None:
        return []
    if record.seal.parts:
        return list(record.seal.parts)
    # A record sealed before parts existed: its one seal is part 0.
    seal = record.seal
    return [
        SealedPartIndex(
            part=0,
            manifest_blob=seal.manifest_blob,
            manifest_sha256=seal.manifest_sha256,
            ledger_seq=seal.ledger_seq,
            duration_seconds=seal.duration_seconds,
            interrupted=seal.interrupted,
            sealed_at=seal.sealed_at,
        )
    ]


# --- recorder events ------------------------------------------------------------------------------------------


def receive_event(deps: LifecycleDeps, event: RecorderEvent) -> RecordingRecord | None:
    """Fold a recorder event into its record. An event that names blobs outside its recording's own capture
    folder is rejected — nothing is written, nothing outside is touched — and recorded as a security event;
    None then (retrying would not make it any less foreign)."""
    try:
        record, new = fold_event(deps.store, event)
    except ForeignPath as error:
        log.error(
            "recorder event rejected: %s",
            error.detail,
            extra={"recording_id": event.recording_id[:80], "event_type": event.type},
        )
        if deps.audit is not None:
            deps.audit.record(
                AuditEvent(
                    category="security",
                    action="recorder.event.rejected",
                    actor=f"recorder:{event.recorder_instance[:100]}",
                    target=f"recording:{event.recording_id[:80]}",
                    detail={"reason": error.detail[:500], "event": event.type, "sequence": event.sequence},
                )
            )
        return None
    if record.status in DELETION_BEGUN:  # deleted under retention (or being deleted): the event changed nothing
        return record
    if isinstance(event, RecordingStarted | RecordingFailed):  # the events that name the pair's key
        pair_recording(deps, record)
    if new and record.status in ANNOUNCED:
        # A late event (a host killed while it held the message hides it for the queue's visibility timeout)
        # changed a recording whose lifecycle has ended: a `recording.started` is the first the record hears of
        # the call chain and the observed user. Reconciliation re-evaluates with what the record now knows.
        log.info(
            "recorder event after the recording reached a final state: reconciliation asked again",
            extra={"recording_id": record.id, "event_type": event.type, "status": record.status},
        )
        _announce(deps, record)
    return record


# --- pairs ----------------------------------------------------------------------------------------------------


def pair_recording(deps: LifecycleDeps, record: RecordingRecord) -> None:
    """Put the recording into its pair; once every member is final, seal the pair manifest (idempotent: the
    same members give the same manifest, written once into each member's folder, one `paired` entry each)."""
    if deps.pairs is None:
        return
    pair = record_in_pair(deps.pairs, record)
    if pair is None or not pair.complete:
        return
    revision = revision_of(pair)
    if pair.revision == revision:
        return
    refs = seal_pair_manifest(
        pair,
        deps.recordings,
        deps.ledger,
        deps.worm,
        lambda rid: _retention_of(deps, rid),
        access_copy=_pair_access_copy(deps, pair),
    )

    # Written into each member's folder: a member deleted under retention meanwhile loses them again (write, then
    # look); one being deleted lists its folder once more after its tombstone.
    for member in {ref.recording_id for ref in refs}:
        found = deps.store.get(member)
        if found is not None and found.status == "deleted":
            _settle(deps, found)

    def sealed(current: RecordingPair | None) -> RecordingPair:
        assert current is not None
        if revision_of(current) != revision:
            return current  # a member changed meanwhile: its own call seals the newer revision
        return current.model_copy(update={"manifests": refs, "revision": revision})

    deps.pairs.update(pair.id, sealed)


def _pair_access_copy(deps: LifecycleDeps, pair: RecordingPair) -> PairAccessCopy | None:
    """The access copy of the pair's union, from each stretch's member's sealed evidence. The pair manifest is
    sealed without one (and says so in the log) when it cannot be made: the evidence pairing matters more."""
    parts: dict[str, dict[int, MemberPart]] = {}

    def load(recording_id: str, part: int) -> MemberPart | None:
        if recording_id not in parts:
            record = deps.store.get(recording_id)
            parts[recording_id] = member_parts(deps.recordings, record) if record is not None else {}
        return parts[recording_id].get(part)

    try:
        return make_pair_access_copy(deps.recordings, pair.id, pair.coverage, load)
    except (BlobNotFound, EvidenceTampered, ValueError):
        # A member's evidence is gone, altered or undecodable: the copy is for replay, and must not keep the pair
        # manifest from being sealed (storage being down is not caught: the activity is retried).
        log.exception("the pair's access copy could not be made", extra={"pair_id": pair.id})
        return None


def _retention_of(deps: LifecycleDeps, recording_id: str) -> MemberRetention | None:
    member = deps.store.get(recording_id)
    if member is None or member.seal is None:
        return None
    return MemberRetention(member.seal.retention_until, tuple(member.seal.legal_holds))


# --- is the recorder still capturing? ---------------------------------------------------------------------


def check_recording(deps: LifecycleDeps, recording_id: str, waits: int = 0, part: int = 0) -> RecordingCheck:
    """Where a part's capture stands: still capturing (and for how long to wait), ended, or silent (salvage)."""
    record = deps.store.get(recording_id)
    if record is None or (part > 0 and not any(c.generation == part for c in record.continuations)):
        if waits >= MAX_UNKNOWN_WAITS:
            return RecordingCheck(
                recording_id=recording_id, part=part, state="no_media", reason="the recorder never reported"
            )
        return RecordingCheck(
            recording_id=recording_id, part=part, state="unknown", wait_seconds=60, reason="no record yet"
        )
    if part > 0 and not any(p.part == part - 1 for p in _sealed_parts(record)):
        return RecordingCheck(
            recording_id=recording_id,
            part=part,
            state="capturing",
            wait_seconds=30,
            reason=f"part {part - 1} is not sealed yet",
        )
    state = part_state(record, part)
    if part == 0 and state.status == "stopped" and record.facts.started_at is None:
        waiting = _awaiting_start(deps, record)
        if waiting is not None:
            return waiting
    if state.status in ("stopped", "salvaged", "sealed"):
        return RecordingCheck(recording_id=recording_id, part=part, state="ended", reason=state.status)
    if state.status == "not_recorded":
        return RecordingCheck(recording_id=recording_id, part=part, state="no_media", reason="not recorded")
    if state.status == "failed":
        manifest = read_capture_manifest(deps.staging, recording_id, part)
        if manifest is not None:
            return RecordingCheck(
                recording_id=recording_id, part=part, state="ended", reason=f"failed: {state.failure_reason}"
            )
        if _has_blocks(deps.staging, names.capture_track_name(recording_id, part)):
            return RecordingCheck(
                recording_id=recording_id, part=part, state="silent", reason="failed with staged blocks"
            )
        return RecordingCheck(
            recording_id=recording_id, part=part, state="no_media", reason=f"failed: {state.failure_reason}"
        )
    if record.generation > part:
        # The recorder went on in a later generation: this one was fenced, so it can only be salvaged.
        return RecordingCheck(
            recording_id=recording_id,
            part=part,
            state="silent",
            reason=f"the recorder moved on to generation {record.generation}",
        )
    last = state.last_event_at
    progress = _progress(deps, recording_id)
    if progress is not None and progress.generation == part and (last is None or progress.updated_at > last):
        last = progress.updated_at
    verdict = judge(
        now=deps.clock(),
        last_heard=last,
        heartbeat_seconds=record.heartbeat_interval_seconds,
        server_timeout_seconds=deps.storage_server_timeout_seconds,
        ask=lambda: deps.liveness.ask(record),
    )
    if verdict.salvage:
        return RecordingCheck(
            recording_id=recording_id, part=part, state="silent", reason=verdict.reason, evidence=verdict.evidence
        )
    return RecordingCheck(
        recording_id=recording_id,
        part=part,
        state="capturing",
        wait_seconds=verdict.wait_seconds,
        reason=verdict.reason,
        evidence=verdict.evidence,
    )


def _awaiting_start(deps: LifecycleDeps, record: RecordingRecord) -> RecordingCheck | None:
    """The capture stopped but `recording.started` has not been folded in (the record knows neither the call
    chain nor the observed user): wait for it up to `LATE_START_WAIT` after the last event, else None (seal)."""
    heard = record.last_event_at or record.facts.ended_at
    if heard is None:
        return None
    remaining = (heard + LATE_START_WAIT - deps.clock()).total_seconds()
    if remaining <= 0:
        log.warning(
            "sealing without recording.started: it never arrived",
            extra={"recording_id": record.id, "waited_seconds": LATE_START_WAIT.total_seconds()},
        )
        return None
    return RecordingCheck(
        recording_id=record.id,
        part=0,
        state="capturing",
        wait_seconds=min(LATE_START_POLL_SECONDS, remaining),
        reason="stopped, but recording.started has not arrived yet",
    )


def _progress(deps: LifecycleDeps, recording_id: str) -> CaptureProgress | None:
    """The recorder's last heartbeat; None when it cannot be read (a stalled store says nothing about the
    recorder, so it must not make the recorder look silent or alive)."""
    if deps.progress is None:
        return None
    try:
        return deps.progress.read(recording_id)
    except Exception as error:  # the table is down or slow: decide on the other evidence
        log.warning("capture progress unreadable", extra={"recording_id": recording_id, "error": type(error).__name__})
        return None


def _has_blocks(container: BlobStore, name: str) -> bool:
    try:
        committed, uncommitted = container.blocks(name)
    except BlobNotFound:
        return False
    return bool(committed or uncommitted)


# --- salvage -------------------------------------------------------------------------------------------------


def salvage_name(recording_id: str, part: int) -> str:
    """Where the lifecycle keeps the capture manifest it made by salvaging a part (lifecycle-scratch)."""
    return f"salvaged/{names.check_recording_id(recording_id)}/g{names.check_generation(part)}.json"


def salvage(
    deps: LifecycleDeps,
    recording_id: str,
    part: int = 0,
    *,
    reason: str = "",
    evidence: dict[str, JsonValue] | None = None,
) -> str:
    """Fence the part's capture generation and commit what its recorder staged; the part becomes `salvaged`, and
    the ledger says so with the decision and what it rested on."""
    record = _record(deps, recording_id)
    state = part_state(record, part)
    progress = _progress(deps, recording_id)
    header = _stream_header(deps, record) if part > 0 else b""
    result = salvage_capture(
        deps.staging,
        recording_id=recording_id,
        call_id=record.facts.call_id,
        recorder_instance=record.facts.recorder_instance,
        generation=part,
        progress=progress if progress is not None and progress.generation == part else None,
        call_chain_id=record.facts.call_chain_id,
        first_block=state.first_block,
        first_sample=state.first_sample,
        stream_header=header,
    )
    name = salvage_name(recording_id, part)
    if not result.already_complete:
        deps.scratch.write(name, result.manifest.model_dump_json(indent=2).encode(), content_type=JSON)
        missing = result.missing_seconds(progress) if part == 0 else None
        deps.ledger.append(
            EntryKind.SALVAGED,
            recording_subject(recording_id),
            {
                "part": part,
                "capture": names.capture_prefix(recording_id, part),
                "leases_broken": result.leases_broken,
                "blocks_committed": len(result.mixed.blocks),
                "duration_ms": round(result.mixed.duration_seconds * 1000),
                "missing_ms": None if missing is None else round(missing * 1000),
                "sha256": result.mixed.sha256,
                "decision": {"reason": reason, **(evidence or {})},
            },
            idempotency_key=f"salvaged:{recording_id}" if part == 0 else f"salvaged:{recording_id}:part-{part}",
        )

    def mark(current: RecordingRecord | None) -> RecordingRecord:
        assert current is not None
        updated = current.model_copy(deep=True)
        if part == 0:
            if updated.status not in ("sealed", "deleting", "deleted"):
                updated.status = "salvaged"
        else:
            continuation = _continuation(updated, part)
            if continuation.status != "sealed":
                continuation.status = "salvaged"
        return updated

    deps.store.update(recording_id, mark)
    return name if not result.already_complete else names.capture_manifest_name(recording_id, part)


def _stream_header(deps: LifecycleDeps, record: RecordingRecord) -> bytes:
    """The FLAC stream header of part 0's sealed mixed evidence: a continuation's blocks decode after it."""
    first = next((p for p in _sealed_parts(record) if p.part == 0), None)
    if first is None:
        raise NotFound(f"recording {record.id}: part 0 is not sealed, so its continuation cannot be read yet")
    manifest = _sealed_manifest(deps, first)
    mixed = manifest.track()
    head = deps.recordings.read(
        mixed.blob_name, offset=0, length=min(MAX_HEADER_BYTES, mixed.bytes), version_id=mixed.version_id
    )
    try:
        return head[: parse_header(head).header_length]
    except NotFlac as error:
        raise NotFound(f"recording {record.id}: part 0's evidence has no FLAC stream header ({error})") from error


def _sealed_manifest(deps: LifecycleDeps, part: SealedPartIndex) -> RecordingManifest:
    """A sealed part's manifest, checked against the hash its seal index kept."""
    body = deps.recordings.read(part.manifest_blob)
    if hashlib.sha256(body).hexdigest() != part.manifest_sha256:
        raise NotFound(f"the sealed manifest {part.manifest_blob} does not hash to what was sealed")
    return RecordingManifest.model_validate_json(body)


# --- finalise, access copy, seal -----------------------------------------------------------------------------


def finalised_name(recording_id: str, part: int) -> str:
    base = names.check_recording_id(recording_id)
    return f"finalised/{base}.json" if part == 0 else f"finalised/{base}.part-{part}.json"


def _capture_for(deps: LifecycleDeps, record: RecordingRecord, part: int) -> tuple[bytes, str, str]:
    """The capture manifest a part is finalised from: the lifecycle's own after a salvage, else the
    recorder's (bytes, container, name)."""
    salvaged = salvage_name(record.id, part)
    if part_state(record, part).status == "salvaged" and deps.scratch.exists(salvaged):
        return deps.scratch.read(salvaged), "scratch", salvaged
    name = names.capture_manifest_name(record.id, part)
    try:
        return deps.staging.read(name), "captures", name
    except BlobNotFound as error:
        raise NotFound(f"recording {record.id} has no capture manifest for part {part}") from error


def finalise_recording(deps: LifecycleDeps, recording_id: str, part: int = 0) -> FinalisedRecording:
    record = _record(deps, recording_id)
    body, container, blob = _capture_for(deps, record, part)
    capture = CaptureManifest.model_validate_json(body)
    if capture.recording_id != recording_id or capture.generation != part:
        raise NotFound(f"{blob} describes recording {capture.recording_id} generation {capture.generation}")
    header = _stream_header(deps, record) if part > 0 else b""
    tracks = finalise(
        deps.staging, deps.recordings, capture, recording_id=recording_id, part=part, stream_header=header
    )
    mixed = tracks[0]
    video = finalise_video(
        deps.staging,
        deps.recordings,
        capture.video_tracks,
        recording_id=recording_id,
        generation=capture.generation,
        part=part,
        origin_ticks=_origin_ticks(capture, record),
    )
    first_sample = 0
    if part > 0:
        capture_mixed = capture.track()
        first_sample = (
            capture_mixed.blocks[0].start_sample if capture_mixed.blocks else part_state(record, part).first_sample
        )
    previous = [
        TimelinePart(first_sample=p.first_sample, track=_sealed_manifest(deps, p).track())
        for p in sorted(_sealed_parts(record), key=lambda p: p.part)
        if p.part < part
    ]
    finalised = FinalisedTracks(
        tracks=tracks,
        video=video,
        previous=previous,
        first_sample=first_sample,
        capture_container="scratch" if container == "scratch" else "captures",
        capture_blob=blob,
    )
    name = finalised_name(recording_id, part)
    deps.scratch.write(name, finalised.model_dump_json().encode(), content_type=JSON)
    return FinalisedRecording(
        recording_id=recording_id,
        part=part,
        finalised_blob=name,
        capture_manifest_blob=blob,
        mixed_sha256=mixed.sha256,
        samples=mixed.samples,
        problems=[problem for track in tracks for problem in track.problems]
        + [problem for stream in video for problem in stream.problems],
    )


def _earlier_video(deps: LifecycleDeps, earlier: Sequence[SealedPartIndex]) -> list[VideoEvidenceTrack]:
    """The video streams sealed with the parts before this one, from their sealed manifests (checked against the
    SHA-256 the seal index kept: only what was sealed goes into a replay copy)."""
    streams: list[VideoEvidenceTrack] = []
    for sealed in earlier:
        body = deps.recordings.read(sealed.manifest_blob, version_id=sealed.manifest_version_id)
        if hashlib.sha256(body).hexdigest() != sealed.manifest_sha256:
            raise ValueError(f"part {sealed.part}'s manifest {sealed.manifest_blob} is not the one sealed")
        streams.extend(RecordingManifest.model_validate_json(body).video)
    return streams


def _origin_ticks(capture: CaptureManifest, record: RecordingRecord) -> int:
    """Sample 0 of the recording's audio in 100-ns ticks since the epoch: what video timestamps are measured from.
    A capture salvaged without the recorder's heartbeat has no start of its own; then the start its recorder
    announced (`recording.started`: the same first audio frame) is sample 0, and only with neither the first video
    timestamp is."""
    started = capture.started_at or record.facts.started_at
    if started is not None:
        return ticks_of(started)
    firsts = [track.blocks[0].first_ticks for track in capture.video_tracks if track.blocks]
    return min(firsts) if firsts else 0


def _finalised(deps: LifecycleDeps, finalised_blob: str) -> FinalisedTracks:
    return FinalisedTracks.model_validate_json(deps.scratch.read(finalised_blob))


def _timeline(finalised: FinalisedTracks) -> Timeline:
    parts = [(p.first_sample, p.track) for p in finalised.previous]
    return Timeline((*parts, (finalised.first_sample, finalised.tracks[0])))


def plan_access_copy(deps: LifecycleDeps, finalised: FinalisedRecording) -> list[AccessChunkTask]:
    return _plan_access_copy(deps, finalised.recording_id, finalised.part, finalised.finalised_blob)


def _plan_access_copy(deps: LifecycleDeps, recording_id: str, part: int, finalised_blob: str) -> list[AccessChunkTask]:
    tracks = _finalised(deps, finalised_blob)
    if tracks.tracks[0].samples == 0 and not tracks.previous:
        return []
    return [
        AccessChunkTask(
            recording_id=recording_id,
            part=part,
            finalised_blob=finalised_blob,
            index=plan.index,
            first_packet=plan.first_packet,
            end_packet=plan.end_packet,
            input_start=plan.input_start,
            input_end=plan.input_end,
        )
        for plan in access_copy.plan_access_copy(_timeline(tracks), deps.chunk_seconds)
    ]


def encode_access_chunk(deps: LifecycleDeps, task: AccessChunkTask) -> str:
    timeline = _timeline(_finalised(deps, task.finalised_blob))
    plan = ChunkPlan(task.index, task.first_packet, task.end_packet, task.input_start, task.input_end)
    return access_copy.encode_access_chunk(deps.recordings, deps.scratch, task.recording_id, timeline, plan)


def assemble_access_copy(
    deps: LifecycleDeps, recording_id: str, finalised_blob: str, chunk_names: list[str], part: int = 0
) -> AccessCopy:
    timeline = _timeline(_finalised(deps, finalised_blob))
    return access_copy.assemble_access_copy(
        deps.recordings, deps.scratch, recording_id, timeline, chunk_names, part=part
    )


def seal_recording(
    deps: LifecycleDeps, recording_id: str, finalised_blob: str, access: AccessCopy | None, part: int = 0
) -> SealSummary:
    """Build the part's manifest from the record, the capture and the finalised tracks, and seal it."""
    record = _record(deps, recording_id)
    finalised = _finalised(deps, finalised_blob)
    source = deps.scratch if finalised.capture_container == "scratch" else deps.staging
    body = source.read(finalised.capture_blob)
    capture = CaptureManifest.model_validate_json(body)
    capture_ref = seal_capture_manifest(deps.recordings, recording_id, part, body)
    sealed_at = deps.clock()
    ended = record.facts.ended_at or capture.ended_at
    facts = record.facts.model_copy(
        update={"started_at": record.facts.started_at or capture.started_at, "ended_at": ended}
    )
    earlier = sorted(_sealed_parts(record), key=lambda p: p.part)
    previous_ref = None
    if part > 0:
        before = next((p for p in earlier if p.part == part - 1), None)
        if before is None:
            raise NotFound(f"recording {recording_id}: part {part - 1} is not sealed")
        previous_ref = BlobRef(
            blob_name=before.manifest_blob,
            version_id=before.manifest_version_id,
            bytes=len(deps.recordings.read(before.manifest_blob, version_id=before.manifest_version_id)),
            sha256=before.manifest_sha256,
        )
    # With `access` (the one-step seal of recordings sealed before manifest v2, kept for them and their tests) the
    # copies are sealed in this manifest; without it the evidence is sealed alone and `seal_access_copy` seals
    # the copies afterwards, so the verdict never waits for a transcode.
    video_access = (
        _video_access_copy(deps, record, part, finalised, capture, facts, earlier, access)
        if access is not None
        else None
    )
    manifest = build_manifest(
        facts,
        capture,
        capture_ref,
        finalised.tracks,
        access,
        deps.retention.term_for(facts, sealed_at),
        deps.holds.holds_for(facts),
        sealed_at,
        part=part,
        first_sample=finalised.first_sample,
        previous_part=previous_ref,
        video=finalised.video,
        video_access_copy=video_access,
    )
    result = Sealer(deps.recordings, deps.ledger, worm=deps.worm, clock=deps.clock).seal(manifest)
    sealed = result.manifest
    this = SealedPartIndex(
        part=part,
        manifest_blob=result.manifest_blob.blob_name,
        manifest_version_id=result.manifest_blob.version_id,
        manifest_sha256=result.manifest_blob.sha256,
        ledger_seq=result.ledger_entry.seq,
        first_sample=sealed.first_sample,
        sample_rate=sealed.track().sample_rate,
        duration_seconds=sealed.duration_seconds,
        interrupted=sealed.status == "interrupted",
        sealed_at=sealed.sealed_at,
        access_pending=sealed.access_sealed_separately,
    )
    parts = sorted([*(p for p in earlier if p.part != part), this], key=lambda p: p.part)
    first = parts[0]
    base = record.seal if (record.seal is not None and part > 0) else None
    mixed = sealed.track()
    return SealSummary(
        recording_id=recording_id,
        part=part,
        status=sealed.status,
        seal=SealIndex(
            manifest_blob=base.manifest_blob if base else first.manifest_blob,
            manifest_version_id=base.manifest_version_id if base else first.manifest_version_id,
            manifest_sha256=base.manifest_sha256 if base else first.manifest_sha256,
            ledger_seq=base.ledger_seq if base else first.ledger_seq,
            evidence_blob=base.evidence_blob if base else mixed.blob_name,
            evidence_version_id=base.evidence_version_id if base else mixed.version_id,
            evidence_sha256=base.evidence_sha256 if base else mixed.sha256,
            access_copy_blob=sealed.access_copy.blob_name if sealed.access_copy else None,
            access_copy_version_id=sealed.access_copy.version_id if sealed.access_copy else None,
            access_copy_sha256=sealed.access_copy.sha256 if sealed.access_copy else None,
            video_access_copy_blob=(
                sealed.video_access_copy.blob_name
                if sealed.video_access_copy
                else (base.video_access_copy_blob if base else None)
            ),
            duration_seconds=sum(p.duration_seconds for p in parts),
            interrupted=parts[-1].interrupted,  # how the recording ended: as its newest part did
            retention_class=sealed.retention.retention_class,
            retention_until=max(sealed.retention.until, base.retention_until) if base else sealed.retention.until,
            legal_holds=sorted({*sealed.legal_holds, *(base.legal_holds if base else [])}),
            worm=result.enforcement,
            sealed_at=base.sealed_at if base else sealed.sealed_at,
            parts=parts,
            modalities=_sealed_modalities(sealed.video, base),
        ),
    )


def _video_access_copy(
    deps: LifecycleDeps,
    record: RecordingRecord,
    part: int,
    finalised: FinalisedTracks,
    capture: CaptureManifest,
    facts: RecordingFacts,
    earlier: Sequence[SealedPartIndex],
    access: AccessCopy | None,
) -> VideoAccessCopy | None:
    """The MP4 replay copy of a recording with video: a remux (no encoding) of the Opus copy and the video streams,
    written once. A continuation's copy covers every part, as its Opus copy does: the streams sealed with the
    parts before it and its own, on the recording's timeline (sample 0 of part 0)."""
    videos = [*(_earlier_video(deps, earlier) if part > 0 else []), *finalised.video]
    if not videos:
        return None
    origin = ticks_of(facts.started_at) if part > 0 and facts.started_at is not None else _origin_ticks(capture, record)
    return make_video_access_copy(deps.recordings, record.id, part, videos, access, origin_ticks=origin)


def seal_access_copy(
    deps: LifecycleDeps, recording_id: str, finalised_blob: str, access: AccessCopy | None, part: int = 0
) -> AccessSealed:
    """Seal the part's access copies after its evidence (recording manifest v2): make the MP4 copy when the part
    has video, write the access-copy manifest once, make everything WORM under the recording's retention and
    holds as the record has them now, append the `access_copy.sealed` entry, and only then let the record name
    the copies (the API serves nothing before). Idempotent: every step can be retried. A part whose evidence was
    sealed with its copies (v1), or a recording whose deletion began, has nothing to seal here."""
    record = _record(deps, recording_id)
    if record.seal is None:
        raise NotFound(f"recording {recording_id} is not sealed yet: its access copy is sealed after its evidence")
    sealed_part = next((p for p in _sealed_parts(record) if p.part == part), None)
    if sealed_part is None:
        raise NotFound(f"recording {recording_id} has no sealed part {part}")
    if _settle(deps, record) or not (sealed_part.access_pending or sealed_part.access_manifest_blob):
        return AccessSealed(recording_id=recording_id, part=part)
    manifest_body = deps.recordings.read(sealed_part.manifest_blob, version_id=sealed_part.manifest_version_id)
    if hashlib.sha256(manifest_body).hexdigest() != sealed_part.manifest_sha256:
        raise EvidenceTampered(f"part {part}'s manifest {sealed_part.manifest_blob} is not the one sealed")
    manifest = RecordingManifest.model_validate_json(manifest_body)
    manifest_ref = BlobRef(
        blob_name=sealed_part.manifest_blob,
        version_id=sealed_part.manifest_version_id,
        bytes=len(manifest_body),
        sha256=sealed_part.manifest_sha256,
    )
    finalised = _finalised(deps, finalised_blob)
    source = deps.scratch if finalised.capture_container == "scratch" else deps.staging
    capture = CaptureManifest.model_validate_json(source.read(finalised.capture_blob))
    earlier = [p for p in _sealed_parts(record) if p.part < part]
    facts = manifest.model_copy()  # the facts as sealed (started_at, ended_at)
    video_access = _video_access_copy(deps, record, part, finalised, capture, facts, earlier, access)
    # The record's terms now: a hold or extension placed since the evidence seal is in them; one placed after this
    # read acts on every object in the recording's folder, these included (they are written above).
    current = _record(deps, recording_id).seal
    assert current is not None
    copies = build_access_manifest(
        recording_id,
        part,
        manifest_ref,
        access,
        video_access,
        max(current.retention_until, manifest.retention.until),
        sorted({*current.legal_holds, *manifest.legal_holds}),
        deps.clock(),
    )
    try:
        result = AccessSealer(deps.recordings, deps.ledger, worm=deps.worm, clock=deps.clock).seal(copies)
    except (BlobNotFound, ResourceNotFoundError):
        if not _deleted_since_written(deps, recording_id):
            raise
        return AccessSealed(recording_id=recording_id, part=part)  # deleted under retention while it was sealed
    sealed = result.manifest
    if _deleted_since_written(deps, recording_id):
        return AccessSealed(recording_id=recording_id, part=part)

    def mark(current: RecordingRecord | None) -> RecordingRecord:
        assert current is not None and current.seal is not None
        # Claimed since the look above: its deletion lists the copies written before.
        if current.status in DELETION_BEGUN:
            return current
        updated = current.model_copy(deep=True)
        assert updated.seal is not None
        parts = _sealed_parts(updated)
        for index in parts:
            if index.part == part:
                index.access_pending = False
                index.access_manifest_blob = result.manifest_blob.blob_name
                index.access_manifest_version_id = result.manifest_blob.version_id
                index.access_manifest_sha256 = result.manifest_blob.sha256
                index.access_ledger_seq = result.ledger_entry.seq
                index.access_sealed_at = sealed.sealed_at
        updated.seal.parts = parts
        if part == max(p.part for p in parts):  # the newest part's copies cover every part
            opus, video = sealed.access_copy, sealed.video_access_copy
            updated.seal.access_copy_blob = opus.blob_name if opus else None
            updated.seal.access_copy_version_id = opus.version_id if opus else None
            updated.seal.access_copy_sha256 = opus.sha256 if opus else None
            updated.seal.video_access_copy_blob = video.blob_name if video else updated.seal.video_access_copy_blob
        return updated

    updated = deps.store.update(recording_id, mark)
    if updated.status in DELETION_BEGUN:
        return AccessSealed(recording_id=recording_id, part=part)
    # Tell reconciliation, which keeps the search entry (whether it can be replayed); the verdict does not change.
    _announce(deps, updated)
    return AccessSealed(
        recording_id=recording_id,
        part=part,
        access_manifest_blob=result.manifest_blob.blob_name,
        ledger_seq=result.ledger_entry.seq,
    )


def request_access_copy(deps: LifecycleDeps, finalised: FinalisedRecording) -> AccessSealed | None:
    """After the part's evidence is sealed and indexed: ask the `access-copies` trigger to make and seal its access
    copies (None), or, without that queue, make them now."""
    request = AccessCopyRequest(
        recording_id=finalised.recording_id, part=finalised.part, finalised_blob=finalised.finalised_blob
    )
    if deps.access_copies is None:
        return make_access_copy(deps, request)
    access_requests.request_access_copy(deps.access_copies, request)
    return None


def sweep_access_copies(deps: LifecycleDeps, after: timedelta) -> list[PendingPart]:
    """Ask again for the access copies of every part still pending `after` its evidence seal (made at once without
    the `access-copies` queue); returns those parts."""
    if deps.pending_access is None:
        return []
    if deps.access_copies is None:
        pending = deps.pending_access.pending(deps.clock() - after)
        for part in pending:
            make_access_copy(
                deps,
                AccessCopyRequest(
                    recording_id=part.recording_id,
                    part=part.part,
                    finalised_blob=finalised_name(part.recording_id, part.part),
                ),
            )
        return pending
    return access_requests.sweep(deps.pending_access, deps.access_copies, deps.clock(), after, finalised_name)


def make_access_copy(deps: LifecycleDeps, request: AccessCopyRequest) -> AccessSealed:
    """Make the part's access copies, seal them (`seal_access_copy`) and clean up its scratch work. Idempotent: a
    part whose copies are sealed already (a duplicate or a swept request), or whose recording is deleted, is only
    cleaned up (and anything an earlier delivery wrote after the deletion removed); one whose recording is being
    deleted is tried again (`DeletionUnderWay`). What it writes it looks at afterwards (`_deleted_since_written`), so
    a deletion that lands while the copy is made never leaves it behind. Chunks an interrupted attempt already left
    in scratch are kept (written whole, under names derived from the evidence hash and their place), so every
    delivery of a long recording's request gets further even if the host's function timeout cuts it short."""
    record = _record(deps, request.recording_id)
    sealed_part = next((p for p in _sealed_parts(record) if p.part == request.part), None)
    if sealed_part is None:
        raise NotFound(f"recording {request.recording_id} has no sealed part {request.part}")
    done = _settle(deps, record) or not sealed_part.access_pending
    if done or not deps.scratch.exists(request.finalised_blob):
        if not done:  # its finalised track list is gone: nothing to make the copy from
            raise NotFound(f"recording {request.recording_id} part {request.part}: {request.finalised_blob} is gone")
        clean_up(deps, request.recording_id, request.part)
        return AccessSealed(recording_id=request.recording_id, part=request.part)
    tasks = _plan_access_copy(deps, request.recording_id, request.part, request.finalised_blob)
    access = None
    if tasks:
        source = _timeline(_finalised(deps, request.finalised_blob)).source_sha256
        chunks = []
        try:
            for task in tasks:
                name = access_copy.chunk_blob_name(request.recording_id, source, task.index)
                chunks.append(name if deps.scratch.exists(name) else encode_access_chunk(deps, task))
            access = assemble_access_copy(deps, request.recording_id, request.finalised_blob, chunks, request.part)
        except BlobNotFound:
            if not _deleted_since_written(deps, request.recording_id):
                raise  # the evidence is missing from a recording that is not deleted: not ours to hide
            clean_up(deps, request.recording_id, request.part)  # deleted under retention while it was encoded
            return AccessSealed(recording_id=request.recording_id, part=request.part)
        if _deleted_since_written(deps, request.recording_id):
            clean_up(deps, request.recording_id, request.part)
            return AccessSealed(recording_id=request.recording_id, part=request.part)
    sealed = seal_access_copy(deps, request.recording_id, request.finalised_blob, access, request.part)
    clean_up(deps, request.recording_id, request.part)
    return sealed


# Graph's modality names (callRecords `modality`) of the kinds of video stream the evidence holds.
_MODALITY_OF_KIND = {"camera": "video", "screenShare": "videoBasedScreenSharing"}


def _sealed_modalities(video: Sequence[VideoEvidenceTrack], base: SealIndex | None) -> list[str]:
    """The modalities whose evidence this part and the parts sealed before it hold (the audio always)."""
    held = {"audio", *(_MODALITY_OF_KIND[track.kind] for track in video if track.units > 0)}
    if base is not None and base.modalities:
        held.update(base.modalities)
    return sorted(held, key=("audio", "video", "videoBasedScreenSharing").index)


def index_recording(deps: LifecycleDeps, summary: SealSummary, problems: list[str]) -> RecordingRecord:
    part = summary.part

    def mark(current: RecordingRecord | None) -> RecordingRecord:
        assert current is not None
        updated = current.model_copy(deep=True)
        updated.seal = _keep_access(summary.seal, current.seal)
        updated.problems = sorted({*updated.problems, *problems}) if part > 0 else problems
        if part == 0:
            updated.status = "sealed"
        else:
            _continuation(updated, part).status = "sealed"
        return updated

    record = deps.store.update(summary.recording_id, mark)
    _announce(deps, record)
    pair_recording(deps, record)
    return record


def _keep_access(seal: SealIndex, current: SealIndex | None) -> SealIndex:
    """The seal index from a part's seal, keeping what the record learnt since about earlier parts' access copies
    (each part's copies are sealed after its evidence, by `seal_access_copy`, which may run meanwhile)."""
    if current is None:
        return seal
    known = {p.part: p for p in current.parts if p.access_manifest_blob is not None}
    parts = [
        p.model_copy(
            update={
                "access_pending": False,
                "access_manifest_blob": known[p.part].access_manifest_blob,
                "access_manifest_version_id": known[p.part].access_manifest_version_id,
                "access_manifest_sha256": known[p.part].access_manifest_sha256,
                "access_ledger_seq": known[p.part].access_ledger_seq,
                "access_sealed_at": known[p.part].access_sealed_at,
            }
        )
        if p.part in known and p.access_manifest_blob is None
        else p
        for p in seal.parts
    ]
    kept = seal.model_copy(update={"parts": parts})
    if current.access_copy_blob and not seal.access_copy_blob and all(not p.access_pending for p in parts):
        kept = kept.model_copy(
            update={
                "access_copy_blob": current.access_copy_blob,
                "access_copy_version_id": current.access_copy_version_id,
                "access_copy_sha256": current.access_copy_sha256,
                "video_access_copy_blob": current.video_access_copy_blob,
            }
        )
    return kept


def _announce(deps: LifecycleDeps, record: RecordingRecord) -> None:
    """Ask reconciliation to re-evaluate the recording's call (idempotent on its side; best effort)."""
    if deps.reconciliation is not None:
        announce_indexed(deps.reconciliation, record, deps.clock())


def mark_not_recorded(deps: LifecycleDeps, recording_id: str, reason: str, part: int = 0) -> None:
    def mark(current: RecordingRecord | None) -> RecordingRecord:
        if current is None:
            raise NotFound(f"no recording record for {recording_id}")
        updated = current.model_copy(deep=True)
        if part == 0:
            updated.status = "not_recorded"
            if reason not in updated.problems:  # a retried activity says it once
                updated.problems = [*updated.problems, reason]
        else:
            _continuation(updated, part).status = "not_recorded"
        return updated

    if deps.store.get(recording_id) is not None:
        record = deps.store.update(recording_id, mark)
        _announce(deps, record)
        pair_recording(deps, record)


def clean_up(deps: LifecycleDeps, recording_id: str, part: int = 0) -> int:
    """Delete the part's scratch work, and the recorder's captures once they can never be written again: when
    the recorder itself completed this generation (it will not write to it or any earlier one). A generation
    that was salvaged stays: its recorder may not know yet that it was fenced."""
    deleted = 0
    name = finalised_name(recording_id, part)
    record = deps.store.get(recording_id)
    if record is not None and record.status in DELETION_BEGUN:
        # Retention deleted the finalised track list with the rest of the recording (its scratch work included):
        # every chunk the recording still has in scratch is work under way on it, and goes.
        deleted += access_copy.discard_access_chunks(deps.scratch, recording_id)
    elif deps.scratch.exists(name):
        source = _timeline(_finalised(deps, name)).source_sha256
        deleted += access_copy.discard_access_chunks(deps.scratch, recording_id, source)
    for scratch_name in (name, salvage_name(recording_id, part)):
        if deps.scratch.delete(scratch_name):
            deleted += 1
    if record is None or part_state(record, part).status not in ("sealed", "deleted") or record.generation != part:
        return deleted
    manifest = read_capture_manifest(deps.staging, recording_id, part)
    if manifest is None or not manifest.complete or manifest.salvaged or deps.captures is None:
        return deleted
    for generation in range(part + 1):
        for blob in deps.staging.names(names.capture_prefix(recording_id, generation) + "/", uncommitted=True):
            # The recorder keeps its lease on each track blob it wrote (the fence); it completed these, so the
            # lease guards nothing now, and Azure refuses to delete a leased blob.
            deps.staging.break_lease(blob)
            if deps.staging.delete(blob):
                deleted += 1
    return deleted


__all__ = [
    "LifecycleDeps",
    "assemble_access_copy",
    "check_recording",
    "clean_up",
    "encode_access_chunk",
    "finalise_recording",
    "index_recording",
    "make_access_copy",
    "mark_not_recorded",
    "plan_access_copy",
    "request_access_copy",
    "salvage",
    "seal_access_copy",
    "seal_recording",
    "sweep_access_copies",
]
