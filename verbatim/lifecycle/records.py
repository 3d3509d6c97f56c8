"""The recording record: recorder events folded into one Cosmos document per recording, idempotently and in
any order — a redelivered event is ignored by its sequence number, a late `started` never reopens a
recording that already stopped, and the roster keeps everyone who was ever in the call.

Nothing an event says about where blobs are is kept: every path is derived from the recording id and the
layout (`verbatim.evidence.names`). An event that names a blob outside its recording's own capture folder is
rejected (`ForeignPath`) before anything is written, and the container it names is ignored.

A recording can have continuations: when the lifecycle salvaged (fenced) capture generation n but the recorder
was alive, the recorder reports `recording.continued` and its later events name generation n+1; those fold
into `continuations`, each sealed as its own part.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Protocol

from azure.cosmos import ContainerProxy

from verbatim.contracts.evidence import RecordingFacts
from verbatim.contracts.lifecycle import DELETION_BEGUN, Continuation, RecordingRecord
from verbatim.contracts.recorder import (
    CallParticipant,
    ParticipantsChanged,
    RecorderEvent,
    RecordingContinued,
    RecordingFailed,
    RecordingStarted,
    RecordingStopped,
)
from verbatim.evidence import names
from verbatim.platform.documents import VersionedDocuments

TERMINAL = frozenset({"stopped", "failed", "salvaged", "sealed", "not_recorded", "deleting", "deleted"})
CONTINUATION_TERMINAL = frozenset({"stopped", "failed", "salvaged", "sealed", "not_recorded"})


def check_event_paths(event: RecorderEvent) -> None:
    """`ForeignPath` unless every blob the event names is in its recording's own capture generation."""
    names.check_recording_id(event.recording_id)
    names.check_generation(event.generation)
    rid, generation = event.recording_id, event.generation
    if isinstance(event, RecordingStarted | RecordingStopped | RecordingFailed):
        names.check_capture_name(rid, generation, event.blob_name, what="blob_name")
        names.check_capture_name(rid, generation, event.manifest_blob_name, what="manifest_blob_name")
    if isinstance(event, RecordingStopped):
        for track in event.tracks:
            names.check_capture_name(rid, generation, track.blob_name, what="track blob_name")


def apply_event(record: RecordingRecord | None, event: RecorderEvent) -> RecordingRecord:
    """The record after `event` (pure). Returns `record` unchanged for a duplicate, and for any event of a recording
    whose deletion has begun: a late one (a host killed while it held the message) must not write the observed
    user, participants or phone numbers back into the tombstone retention reduced the record to."""
    if record is not None and (event.sequence in record.sequences_seen or record.status in DELETION_BEGUN):
        return record
    if record is None:
        record = RecordingRecord(
            id=event.recording_id,
            status="capturing",
            facts=RecordingFacts(
                recording_id=event.recording_id, call_id=event.call_id, recorder_instance=event.recorder_instance
            ),
        )
    record = record.model_copy(deep=True)
    record.sequences_seen = sorted({*record.sequences_seen, event.sequence})
    if record.last_event_at is None or event.occurred_at > record.last_event_at:
        record.last_event_at = event.occurred_at
    record.generation = max(record.generation, event.generation)
    facts = record.facts
    if isinstance(event, RecordingStarted):
        facts.call_chain_id = event.call_chain_id
        facts.tenant_id = event.tenant_id
        facts.observed_user = event.observed_user
        facts.direction, facts.call_type = event.direction, event.call_type
        facts.modalities, facts.phone_numbers = event.modalities, event.phone_numbers
        facts.capture = event.capture
        facts.recorder_app_id, facts.recorder_version = event.recorder_app_id, event.recorder_version
        facts.policy_identifier = event.policy.identifier
        facts.started_at = event.started_at
        facts.participants = _merge(
            facts.participants, event.participants, newer=event.sequence > record.roster_sequence
        )
        record.roster_sequence = max(record.roster_sequence, event.sequence)
        record.heartbeat_interval_seconds = event.heartbeat_interval_seconds
        record.recorder_control_url = event.control_url
    elif isinstance(event, ParticipantsChanged):
        facts.participants = _merge(
            facts.participants, event.participants, newer=event.sequence > record.roster_sequence
        )
        record.roster_sequence = max(record.roster_sequence, event.sequence)
    elif isinstance(event, RecordingContinued):
        continuation = _continuation(record, event.generation)
        continuation.first_sample = event.first_sample
        continuation.first_block = event.first_block
        if continuation.last_event_at is None or event.occurred_at > continuation.last_event_at:
            continuation.last_event_at = event.occurred_at
    elif event.generation > 0:
        continuation = _continuation(record, event.generation)
        if continuation.last_event_at is None or event.occurred_at > continuation.last_event_at:
            continuation.last_event_at = event.occurred_at
        if isinstance(event, RecordingStopped):
            continuation.ended_at, continuation.stop_reason = event.ended_at, event.reason
            facts.ended_at = max(facts.ended_at or event.ended_at, event.ended_at)
            if continuation.status not in CONTINUATION_TERMINAL:
                continuation.status = "stopped"
        elif isinstance(event, RecordingFailed):
            continuation.ended_at = event.failed_at
            continuation.failure_stage, continuation.failure_reason = event.stage, event.reason
            facts.ended_at = max(facts.ended_at or event.failed_at, event.failed_at)
            if continuation.status not in CONTINUATION_TERMINAL:
                continuation.status = "failed"
    elif isinstance(event, RecordingStopped):
        facts.ended_at = event.ended_at
        record.stop_reason = event.reason
        if record.status not in TERMINAL:
            record.status = "stopped"
    elif isinstance(event, RecordingFailed):
        facts.ended_at = event.failed_at
        if event.observed_user is not None and facts.observed_user is None:
            facts.observed_user = event.observed_user
        facts.call_chain_id = facts.call_chain_id or event.call_chain_id
        facts.tenant_id = facts.tenant_id or event.tenant_id
        record.failure_stage, record.failure_reason = event.stage, event.reason
        if record.status not in TERMINAL:
            record.status = "failed"
    return record


def _continuation(record: RecordingRecord, generation: int) -> Continuation:
    """The record's continuation for `generation` (created on first mention, kept in order)."""
    for continuation in record.continuations:
        if continuation.generation == generation:
            return continuation
    continuation = Continuation(generation=generation)
    record.continuations = sorted([*record.continuations, continuation], key=lambda c: c.generation)
    return next(c for c in record.continuations if c.generation == generation)


def _merge(known: list[CallParticipant], roster: list[CallParticipant], *, newer: bool) -> list[CallParticipant]:
    """Everyone who was ever in the call, by participant id: a roster newer than any seen so far updates a
    participant, an older one only adds those not known; nobody is removed."""
    merged = {p.participant_id: p for p in known}
    for participant in roster:
        if participant.participant_id not in merged or newer:
            merged[participant.participant_id] = participant
    return [merged[key] for key in sorted(merged)]


class RecordingStore(Protocol):
    def get(self, recording_id: str) -> RecordingRecord | None: ...

    def update(self, recording_id: str, change: Callable[[RecordingRecord | None], RecordingRecord]) -> RecordingRecord:
        """Read, change and write back with optimistic concurrency (retried on conflict)."""


def record_event(store: RecordingStore, event: RecorderEvent) -> RecordingRecord:
    """Fold the event into its record; `ForeignPath` (nothing written) when it names blobs not its own."""
    return fold_event(store, event)[0]


def fold_event(store: RecordingStore, event: RecorderEvent) -> tuple[RecordingRecord, bool]:
    """As `record_event`, and whether the event was new to the record (False: a redelivery it had seen)."""
    check_event_paths(event)
    seen: list[bool] = []

    def change(record: RecordingRecord | None) -> RecordingRecord:
        seen[:] = [record is not None and (event.sequence in record.sequences_seen or record.status in DELETION_BEGUN)]
        return apply_event(record, event)

    record = store.update(event.recording_id, change)
    return record, not seen[0]


class CosmosRecordingStore(VersionedDocuments[RecordingRecord]):
    """Recording records in the Cosmos `recordings` container (partition key /id)."""

    def __init__(self, container: ContainerProxy, max_attempts: int = 20) -> None:
        super().__init__(container, RecordingRecord, "recording", max_attempts)


class InMemoryRecordingStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.docs: dict[str, tuple[str, RecordingRecord]] = {}

    def get(self, recording_id: str) -> RecordingRecord | None:
        entry = self.docs.get(recording_id)
        return entry[1] if entry else None

    def update(self, recording_id: str, change: Callable[[RecordingRecord | None], RecordingRecord]) -> RecordingRecord:
        with self._lock:
            updated = change(self.get(recording_id))
            self.docs[recording_id] = (uuid.uuid4().hex, updated)
            return updated
