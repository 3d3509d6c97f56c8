"""One recording's part of an export, in two steps the orchestration runs for every recording.

1. `attest`: append the recording's `exported` ledger entry (who, why, which export, and the audit trail before it
   — see `verbatim.exports.trail`) and snapshot what the package will say about the recording (its record, the
   call record, the verdicts) into the export's work area. Everything the second step reads is then immutable,
   so a retried or duplicated packaging writes the same bytes.
2. `package`: after one checkpoint covers every `exported` entry, write the recording's entries into its batch's
   segment of the ZIP (staged blocks of the package blob): the sealed manifest(s) and media exactly as sealed
   (hashed while copied), the metadata, the audit trail's exact entry bytes and a C2SP tlog-proof of each against
   that checkpoint.

The batch (`ExportService.attest` / `package`) keeps the snapshots and the part records, one file per batch.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from verbatim.contracts.evidence import AccessCopyManifest, BlobRef, RecordingManifest
from verbatim.contracts.exports import ExportRecord, PackagedRecording
from verbatim.contracts.ledger import LogEntry
from verbatim.contracts.lifecycle import DELETION_BEGUN, RecordingRecord
from verbatim.contracts.reconciliation import Verdict
from verbatim.evidence.seal import recording_subject
from verbatim.evidence.sealed import AccessCopyNotReady, sealed_parts
from verbatim.exports import names
from verbatim.exports.sealed_media import SealMismatch, check_sealed, sealed_objects, stream_sealed
from verbatim.exports.trail import EXPORTED, attest, exported_details
from verbatim.exports.work import ChatSnapshot, PartRecord, RecordingSnapshot
from verbatim.exports.zip64 import SegmentWriter
from verbatim.ledger.log.service import TransparencyLog
from verbatim.platform.blobs import BlobNotFound, BlobStore
from verbatim.platform.errors import NotFound, VerbatimError
from verbatim.platform.times import format_datetime
from verbatim.reconciliation.store import VerdictStore

PAGE = 500
MAX_ATTEMPTS = 4


def subject_entries(log: TransparencyLog, subject: str, below: int | None = None) -> list[LogEntry]:
    """Every entry about `subject` (with an index below `below`), oldest first, a page at a time."""
    found: list[LogEntry] = []
    after = -1
    while True:
        page = log.entries_for_subject(subject, after=after, limit=PAGE)
        found.extend(e for e in page if below is None or e.index < below)
        if len(page) < PAGE or (below is not None and page[-1].index >= below):
            return found
        after = page[-1].index


class DeletedUnderRetention(VerbatimError):
    """A recording of the export was deleted under retention after the export was planned: the package cannot carry
    it. The export fails with this reason (not as evidence missing from its seal); asked for again, it lists the
    recording as deleted under retention."""

    status = 410
    title = "Recording deleted under retention"


def deleted_under_retention(record: RecordingRecord) -> DeletedUnderRetention:
    return DeletedUnderRetention(
        f"recording {record.id} was {deletion_note(record)} after this export was planned, so the package cannot "
        "carry it; request the export again to have it listed as deleted",
        recording_id=record.id,
    )


def deletion_note(record: RecordingRecord) -> str:
    """`deleted under retention (...)`, naming the deletion certificate's ledger entry once it is written."""
    deletion = record.deletion
    if record.status == "deleted" and deletion is not None and deletion.certificate_seq is not None:
        return f"deleted under retention (deletion certificate: ledger entry {deletion.certificate_seq})"
    return "deleted under retention (its deletion is under way)"


@dataclass
class RecordingSources:
    """What attesting reads besides the ledger: the recording's record, its call's verdicts and call record."""

    record: Callable[[str], RecordingRecord | None]
    verdicts: VerdictStore
    call_record: Callable[[str], dict[str, Any] | None] | None


def attest_recording(
    log: TransparencyLog,
    sources: RecordingSources,
    export: ExportRecord,
    position: int,
    recording_id: str,
) -> RecordingSnapshot:
    """Append the `exported` entry (idempotent per export and recording) and snapshot the recording."""
    record = sources.record(recording_id)
    if record is not None and record.status in DELETION_BEGUN:
        raise deleted_under_retention(record)  # before the `exported` entry: nothing of it is exported
    if record is None or record.seal is None:
        raise NotFound(f"recording {recording_id} is not sealed (it may have been deleted since the export began)")
    if export.options.access_copies and sealed_parts(record.seal)[-1].access_pending:
        # The evidence is sealed first and the access copies after it: an export that carries access copies waits
        # for them (the activity is retried) rather than leave one out.
        raise AccessCopyNotReady(f"recording {recording_id}: its access copy is being made; the export waits for it")
    trail, entries = append_exported(log, recording_subject(recording_id), export, recording_id)
    verdicts: list[Verdict] = []
    call_record: dict[str, Any] | None = None
    chain = record.facts.call_chain_id
    if chain:
        verdicts = sources.verdicts.for_call(chain)
        if sources.call_record is not None and export.options.call_records:
            call_record = sources.call_record(chain)
    snapshot = RecordingSnapshot(
        position=position,
        recording_id=recording_id,
        record=record,
        verdicts=verdicts if export.options.call_records else [],
        call_record=call_record,
        trail=[e.index for e in trail],
        exported=[e.index for e in entries],
    )
    return snapshot


def append_exported(
    log: TransparencyLog,
    subject: str,
    export: ExportRecord,
    item: str,
    extra: dict[str, JsonValue] | None = None,
) -> tuple[list[LogEntry], list[LogEntry]]:
    """Append the `exported` entry of `subject` (a recording or a chat; idempotent per export and item) attesting
    every earlier entry about it; returns (the trail attested, this export's `exported` entries)."""
    trail = [e for e in subject_entries(log, subject) if not _mine(e, export.id)]
    entries: list[LogEntry] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        attestation = attest(trail)
        details = exported_details(export.id, export.title, export.reason, attestation, attempt)
        entry = log.append(
            EXPORTED,
            subject,
            {**details, **(extra or {})},
            actor=export.requested_by.subject,
            idempotency_key=f"exported:{export.id}:{item}:{attempt}",
        )
        entries.append(entry)
        # An entry about the subject sequenced concurrently may have landed before ours without being in the
        # list we attested: attest again until the list is complete below our entry. Compared with what the
        # entry itself attests: an idempotent append (a retried batch) returns the entry an earlier run wrote,
        # which attests the trail that run saw.
        before = [e for e in subject_entries(log, subject, below=entry.index) if not _mine(e, export.id)]
        if _attested_digest(entry) == attest(before).sha256:
            return before, entries
        trail = before
    raise RuntimeError(f"{subject}: its audit trail kept changing while it was attested")


def _attested_digest(entry: LogEntry) -> str | None:
    trail = entry.details.get("trail")
    digest = trail.get("sha256") if isinstance(trail, dict) else None
    return digest if isinstance(digest, str) else None


def _mine(entry: LogEntry, export_id: str) -> bool:
    """This export's own `exported` entries (an earlier attempt's): they are not part of the trail they attest."""
    return entry.kind == EXPORTED and entry.details.get("export_id") == export_id


def _sealed_parts(record: RecordingRecord) -> list[tuple[int, str, str]]:
    """(part, manifest blob, manifest SHA-256) of every sealed part. Recordings are sealed in one part today;
    continuations after a salvage (issue 14) add parts here, and the package carries each in its own folder."""
    assert record.seal is not None
    return [(0, record.seal.manifest_blob, record.seal.manifest_sha256)]


def media_sizes(media: BlobStore, export: ExportRecord, record: RecordingRecord) -> list[int]:
    """The sizes of the sealed media objects the package will carry for `record` (its seal's manifests): what
    decides where a multi-part package splits (`verbatim.exports.parts`)."""
    sizes: list[int] = []
    for part, blob, sha256 in _sealed_parts(record):
        _, manifest = _read_manifest(media, blob, sha256)
        copies = _access_manifest(media, record, part) if manifest.access_sealed_separately else None
        for what, ref in _part_objects(manifest, copies[1] if copies is not None else None):
            evidence = what.startswith("evidence:") or what == "capture"
            if export.options.evidence if evidence else export.options.access_copies:
                sizes.append(ref.bytes)
    return sizes


def _part_objects(manifest: RecordingManifest, copies: AccessCopyManifest | None) -> list[tuple[str, BlobRef]]:
    """Every object a part's package folder carries: what its manifest seals and, when its access copies were
    sealed after it (manifest v2), what its access-copy manifest seals (named as `sealed_objects` names them)."""
    objects = list(sealed_objects(manifest))
    if copies is not None:
        if copies.access_copy is not None:
            objects.append(("access", copies.access_copy))
        if copies.video_access_copy is not None:
            objects.append(("video-access", copies.video_access_copy))
            objects += [(f"video-access:{stream.track}", stream) for stream in copies.video_access_copy.streams]
    return objects


def _access_manifest(media: BlobStore, record: RecordingRecord, part: int) -> tuple[bytes, AccessCopyManifest] | None:
    """The part's sealed access-copy manifest and its exact bytes (None: not sealed, or sealed in the manifest)."""
    assert record.seal is not None
    index = next((p for p in sealed_parts(record.seal) if p.part == part), None)
    if index is None or index.access_manifest_blob is None or index.access_manifest_sha256 is None:
        return None
    blob = index.access_manifest_blob
    try:
        data = media.read(blob, version_id=index.access_manifest_version_id)
    except BlobNotFound:
        raise SealMismatch(f"the sealed access-copy manifest {blob} is missing from storage", blob=blob) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != index.access_manifest_sha256:
        raise SealMismatch(
            f"the access-copy manifest {blob} hashes to {digest}, sealed as {index.access_manifest_sha256}", blob=blob
        )
    return data, AccessCopyManifest.model_validate_json(data)


def _read_manifest(media: BlobStore, blob: str, sha256: str) -> tuple[bytes, RecordingManifest]:
    try:
        data = media.read(blob)
    except BlobNotFound:
        raise SealMismatch(f"the sealed manifest {blob} is missing from storage", blob=blob) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SealMismatch(f"the manifest {blob} hashes to {digest}, sealed as {sha256}", blob=blob)
    return data, RecordingManifest.model_validate_json(data)


def json_bytes(value: JsonValue) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _observed_verdict(record: RecordingRecord, verdicts: list[Verdict]) -> Verdict | None:
    observed = record.facts.observed_user.id if record.facts.observed_user else None
    mine = [v for v in verdicts if record.id in v.recording_ids or v.user_id == observed]
    return next((v for v in mine if v.user_id == observed), mine[0] if mine else None)


def _participants(record: RecordingRecord) -> list[str]:
    people = []
    for participant in record.facts.participants:
        identity = participant.identity
        label = identity.upn or identity.display_name or participant.phone_number or identity.id or "?"
        if participant.phone_number and participant.phone_number not in label:
            label = f"{label} ({participant.phone_number})"
        if label not in people:
            people.append(label)
    return people


def _time(value: datetime | None) -> str | None:
    return format_datetime(value) if value is not None else None


def package_recording(
    log: TransparencyLog,
    media: BlobStore,
    writer: SegmentWriter,
    export: ExportRecord,
    snapshot: RecordingSnapshot,
    checkpoint_size: int,
) -> PartRecord:
    """Write the recording's entries into its batch's segment (`writer`); its part record says where they are."""
    position = snapshot.position
    start, first_entry = writer.position, len(writer.entries)
    record = snapshot.record
    folder = names.recording_folder(position, record.id)
    media_bytes = 0
    native: tuple[str, str, int] | None = None
    access: str | None = None
    for part, blob, sha256 in _sealed_parts(record):
        base = names.part_folder(folder, part)
        manifest_bytes, manifest = _read_manifest(media, blob, sha256)
        writer.add_bytes(f"{base}/{names.MANIFEST}", manifest_bytes)
        copies = _access_manifest(media, record, part) if manifest.access_sealed_separately else None
        if copies is not None and export.options.access_copies:
            # Sealed after the evidence, in their own right: the access-copy manifest (its hash is in the
            # `access_copy.sealed` entry of the trail) beside the manifest, and the copies it names below.
            writer.add_bytes(f"{base}/{names.ACCESS_MANIFEST}", copies[0])
        for what, ref in _part_objects(manifest, copies[1] if copies is not None else None):
            if what.startswith("evidence:"):
                if not export.options.evidence:
                    continue
                name = f"{base}/{names.evidence_name(what.split(':', 1)[1], ref.blob_name)}"
            elif what == "access":
                if not export.options.access_copies:
                    continue
                name = f"{base}/{names.access_name()}"
            elif what.startswith("video-access"):
                if not export.options.access_copies:
                    continue
                stream = what.split(":", 1)[1] if ":" in what else None
                name = f"{base}/{names.video_stream_access_name(stream) if stream else names.video_access_name()}"
            else:
                if not export.options.evidence:
                    continue
                name = f"{base}/{names.capture_name()}"
            label = f"{what} of recording {record.id}"
            entry = writer.add(name, stream_sealed(media, ref, label), length=ref.bytes)
            check_sealed(entry.size, entry.sha256, ref, label)
            media_bytes += entry.size
            if what == "evidence:mixed" and part == 0:
                native = (name, entry.sha256, entry.size)
            if what == "access" and access is None:
                access = name
    trail_entries = write_trail(writer, log, folder, recording_subject(record.id), snapshot, checkpoint_size)
    verdict = _observed_verdict(record, snapshot.verdicts)
    facts = record.facts
    seal = record.seal
    assert seal is not None
    row = PackagedRecording(
        recording_id=record.id,
        folder=folder,
        control_number=names.control_number(position),
        call_id=facts.call_id,
        call_chain_id=facts.call_chain_id,
        observed_user=facts.observed_user.upn or facts.observed_user.id if facts.observed_user else None,
        observed_user_name=facts.observed_user.display_name if facts.observed_user else None,
        participants=_participants(record),
        direction=facts.direction,
        call_type=facts.call_type,
        started_at=_time(facts.started_at),
        ended_at=_time(facts.ended_at),
        duration_seconds=seal.duration_seconds,
        status="interrupted" if seal.interrupted else "complete",
        verdict=verdict.verdict if verdict else None,
        coverage=verdict.coverage if verdict else None,
        legal_holds=list(seal.legal_holds),
        retention_until=_time(seal.retention_until),
        native=native[0] if native else None,
        native_sha256=native[1] if native else None,
        native_bytes=native[2] if native else 0,
        access_copy=access,
        exported_entry=snapshot.exported[-1],
        trail_entries=trail_entries,
    )
    recording_json: dict[str, JsonValue] = {
        "packaged": row.model_dump(mode="json", by_alias=True),
        "record": record.model_dump(mode="json"),
        "verdict": verdict.model_dump(mode="json", by_alias=True) if verdict else None,
    }
    writer.add_bytes(f"{folder}/{names.RECORDING_JSON}", json_bytes(recording_json))
    if export.options.call_records:
        writer.add_bytes(
            f"{folder}/{names.VERDICTS_JSON}",
            json_bytes([v.model_dump(mode="json", by_alias=True) for v in snapshot.verdicts]),
        )
        if snapshot.call_record is not None:
            writer.add_bytes(f"{folder}/{names.CALL_RECORD_JSON}", json_bytes(snapshot.call_record))
    return PartRecord(
        position=position,
        recording=row,
        entries=writer.entries[first_entry:],
        length=writer.position - start,
        media_bytes=media_bytes,
    )


def write_trail(
    writer: SegmentWriter,
    log: TransparencyLog,
    folder: str,
    subject: str,
    snapshot: RecordingSnapshot | ChatSnapshot,
    checkpoint_size: int,
) -> int:
    """The audit trail (exact entry bytes, one per line: canonical JSON has no raw newlines) and a tlog-proof of
    each entry against the export's checkpoint. The entries are read once, through the subject's index, and each
    proof carries its entry's bytes (its `extra`)."""
    indexes = sorted({*snapshot.trail, *snapshot.exported})
    known = log.subject_entry_bytes(subject, indexes)
    lines: list[bytes] = []
    proofs: list[tuple[int, bytes]] = []
    for index in indexes:
        data = known.get(index)
        proof = log.tlog_proof(index, checkpoint_size, data)
        if data is None:
            data = _proven_entry(proof)
        if data is None or b"\n" in data:
            raise RuntimeError(f"ledger entry {index} cannot be read (or is not one line)")
        lines.append(data + b"\n")
        proofs.append((index, proof))
    writer.add_bytes(f"{folder}/{names.TRAIL}", b"".join(lines))
    for index, proof in proofs:
        writer.add_bytes(f"{folder}/{names.proof_name(index)}", proof)
    return len(indexes)


def _proven_entry(proof: bytes) -> bytes | None:
    """The entry a C2SP tlog-proof carries in its `extra` line (Verbatim's proofs always do)."""
    lines = proof.split(b"\n", 2)
    if len(lines) > 1 and lines[1].startswith(b"extra "):
        return base64.b64decode(lines[1][6:], validate=True)
    return None
