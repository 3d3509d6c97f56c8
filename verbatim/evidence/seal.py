"""Seal a recording (one part of it): write `manifest.json` beside the sealed media in the recordings container,
make every sealed object WORM until the retention date (and legally held when a hold applies), and record the
seal in the ledger. Every name is derived from the recording id and the part (`verbatim.evidence.names`), and
each is written once: nothing here overwrites a blob.

A seal is idempotent: a retry finds the manifest already written and re-applies the same protection and
the same ledger entry (by idempotency key), so an activity can be retried at any step. The sealing step itself
(`ManifestSealer`) also seals the access copies after the evidence (`verbatim.evidence.access_seal`).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import JsonValue

from verbatim import __version__
from verbatim.contracts.evidence import (
    AccessCopy,
    AccessCopyManifest,
    BlobRef,
    EntryKind,
    EvidenceTrack,
    RecordingFacts,
    RecordingManifest,
    RetentionTerm,
    VideoAccessCopy,
    VideoEvidenceTrack,
)
from verbatim.contracts.recorder import CaptureManifest
from verbatim.evidence import names
from verbatim.evidence.sealed import sealed_objects
from verbatim.evidence.worm import Enforcement, WormProtection
from verbatim.ledger.writer import LedgerRecord, LedgerWriter
from verbatim.platform.blobs import BlobExists, BlobNotFound, BlobStore

MANIFEST_NAME = "manifest.json"
MANIFEST_CONTENT_TYPE = "application/json"


def manifest_blob_name(evidence_blob_name: str) -> str:
    """The sealed manifest beside a sealed evidence blob (for readers; the seal derives it from the id)."""
    return posixpath.join(posixpath.dirname(evidence_blob_name), MANIFEST_NAME)


def seal_key(recording_id: str, part: int) -> str:
    """The idempotency key of a part's `sealed` ledger entry."""
    return f"sealed:{recording_id}" if part == 0 else f"sealed:{recording_id}:part-{part}"


class SealedObjectConflict(RuntimeError):
    """A sealed name already holds other bytes: it is never written again."""


def write_once(recordings: BlobStore, name: str, body: bytes, content_type: str) -> BlobRef:
    """Store `body` under a sealed name that has never been written; a retry that finds the same bytes there
    reuses them, anything else is refused."""
    digest = hashlib.sha256(body).hexdigest()
    try:
        version_id = recordings.write(name, body, overwrite=False, content_type=content_type)
    except BlobExists:
        stored = recordings.read_versioned(name)
        if hashlib.sha256(stored.data).hexdigest() != digest:
            raise SealedObjectConflict(f"{name} already holds other bytes; a sealed name is written once") from None
        version_id = stored.version_id
    return BlobRef(blob_name=name, version_id=version_id, bytes=len(body), sha256=digest)


def seal_capture_manifest(recordings: BlobStore, recording_id: str, part: int, body: bytes) -> BlobRef:
    """Seal the exact bytes of the capture manifest the part was finalised from, beside its evidence."""
    return write_once(recordings, names.sealed_capture_manifest_name(recording_id, part), body, MANIFEST_CONTENT_TYPE)


def recording_subject(recording_id: str) -> str:
    """The ledger subject of everything about one recording."""
    return f"recording:{recording_id}"


def read_capture(container: BlobStore, blob_name: str) -> tuple[CaptureManifest, BlobRef]:
    """A capture manifest, and a reference to its exact bytes."""
    stored = container.read_versioned(blob_name)
    body = stored.data
    ref = BlobRef(
        blob_name=blob_name,
        version_id=stored.version_id,
        bytes=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
    )
    return CaptureManifest.model_validate_json(body), ref


def build_manifest(
    facts: RecordingFacts,
    capture: CaptureManifest,
    capture_ref: BlobRef | None,
    evidence: Sequence[EvidenceTrack],
    access_copy: AccessCopy | None,
    retention: RetentionTerm,
    legal_holds: Sequence[str],
    sealed_at: datetime,
    *,
    part: int = 0,
    first_sample: int = 0,
    previous_part: BlobRef | None = None,
    video: Sequence[VideoEvidenceTrack] = (),
    video_access_copy: VideoAccessCopy | None = None,
) -> RecordingManifest:
    mixed = next((t for t in evidence if t.kind == "mixed"), evidence[0])
    interrupted = capture.salvaged or not capture.complete
    # Version 1 when the access copies are sealed with the evidence (as before); version 2 when the evidence is
    # sealed alone and its copies after it (`verbatim.evidence.access_seal`).
    embedded = access_copy is not None or video_access_copy is not None
    return RecordingManifest(
        **facts.model_dump(),
        schema_version=1 if embedded else 2,
        status="interrupted" if interrupted else "complete",
        salvaged=capture.salvaged,
        part=part,
        first_sample=first_sample,
        previous_part=previous_part,
        duration_seconds=mixed.duration_seconds,
        capture_manifest=capture_ref,
        evidence=list(evidence),
        access_copy=access_copy,
        video=list(video),
        video_access_copy=video_access_copy,
        retention=retention,
        legal_holds=sorted(set(legal_holds)),
        sealed_at=sealed_at,
        sealed_by=f"verbatim {__version__}",
    )


SealedManifest = TypeVar("SealedManifest", RecordingManifest, AccessCopyManifest)


@dataclass(frozen=True)
class SealKind(Generic[SealedManifest]):
    """What one kind of seal writes: its manifest contract and where it is stored, the objects the manifest
    covers, the retention date they are WORM until, and its ledger entry (kind, idempotency key, details)."""

    contract: type[SealedManifest]
    manifest_name: Callable[[str, int], str]  # (recording id, part) -> blob name
    covered: Callable[[SealedManifest], Iterable[tuple[str, BlobRef]]]  # besides itself: `verbatim.evidence.sealed`
    retention_until: Callable[[SealedManifest], datetime]
    entry_kind: EntryKind
    idempotency_key: Callable[[str, int], str]  # (recording id, part) -> key
    details: Callable[[SealedManifest, BlobRef, Enforcement], dict[str, JsonValue]]


@dataclass(frozen=True)
class Sealing(Generic[SealedManifest]):
    manifest: SealedManifest
    manifest_blob: BlobRef
    ledger_entry: LedgerRecord
    enforcement: Enforcement
    protected_blobs: list[str]


class ManifestSealer(Generic[SealedManifest]):
    """The one sealing step, for the kind each subclass names: write the manifest once, make every object it covers
    and itself WORM until the retention date (and legally held when a hold applies), append the ledger entry."""

    kind: SealKind[SealedManifest]

    def __init__(
        self,
        recordings: BlobStore,
        ledger: LedgerWriter,
        *,
        worm: WormProtection,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._container = recordings
        self._ledger = ledger
        self._worm = worm
        self._clock = clock

    def seal(self, manifest: SealedManifest) -> Sealing[SealedManifest]:
        kind: SealKind[SealedManifest] = self.kind
        manifest, manifest_ref = self._write_manifest(manifest)
        targets = [(ref.blob_name, ref.version_id) for _, ref in kind.covered(manifest)]
        targets.append((manifest_ref.blob_name, manifest_ref.version_id))
        until = kind.retention_until(manifest)
        enforcement: Enforcement = "azure"
        for blob_name, version_id in targets:
            outcomes = [self._worm.protect_until(blob_name, until, version_id)]
            if manifest.legal_holds:
                outcomes.append(self._worm.set_legal_hold(blob_name, True, version_id))
            if any(o.enforcement == "emulator-not-enforced" for o in outcomes):
                enforcement = "emulator-not-enforced"
        entry = self._ledger.append(
            kind.entry_kind,
            recording_subject(manifest.recording_id),
            kind.details(manifest, manifest_ref, enforcement),
            idempotency_key=kind.idempotency_key(manifest.recording_id, manifest.part),
        )
        return Sealing(manifest, manifest_ref, entry, enforcement, [name for name, _ in targets])

    def _write_manifest(self, manifest: SealedManifest) -> tuple[SealedManifest, BlobRef]:
        """Write the manifest unless a previous attempt did; the stored one is the sealed one."""
        name = self.kind.manifest_name(manifest.recording_id, manifest.part)
        body = manifest.model_dump_json(indent=2).encode()
        try:
            version_id = self._container.write(name, body, overwrite=False, content_type=MANIFEST_CONTENT_TYPE)
        except BlobExists:
            existing = self._container.read_versioned(name)
            body, version_id = existing.data, existing.version_id
            stored = self.kind.contract.model_validate_json(body)
            if stored.recording_id != manifest.recording_id or stored.part != manifest.part:
                raise
            manifest = stored
        ref = BlobRef(blob_name=name, version_id=version_id, bytes=len(body), sha256=hashlib.sha256(body).hexdigest())
        return manifest, ref


def sealed_details(
    manifest: RecordingManifest, manifest_ref: BlobRef, enforcement: Enforcement
) -> dict[str, JsonValue]:
    """What the `sealed` ledger entry records: enough to verify the recording from the ledger alone."""
    # Video streams are evidence like the audio tracks: the entry names each one's hash (verify checks them all).
    evidence: list[JsonValue] = [
        {"track": t.track, "blob": t.blob_name, "version_id": t.version_id, "bytes": t.bytes, "sha256": t.sha256}
        for t in manifest.evidence
    ]
    evidence += [
        {"track": v.track, "blob": v.blob_name, "version_id": v.version_id, "bytes": v.bytes, "sha256": v.sha256}
        for v in manifest.video
    ]
    access: JsonValue = (
        None
        if manifest.access_copy is None
        else {
            "blob": manifest.access_copy.blob_name,
            "version_id": manifest.access_copy.version_id,
            "sha256": manifest.access_copy.sha256,
        }
    )
    details: dict[str, JsonValue] = {
        "manifest": {
            "blob": manifest_ref.blob_name,
            "version_id": manifest_ref.version_id,
            "bytes": manifest_ref.bytes,
            "sha256": manifest_ref.sha256,
        },
        "evidence": evidence,
        "access_copy": access,
        "part": manifest.part,
        "first_sample": manifest.first_sample,
        "previous_part": None
        if manifest.previous_part is None
        else {"blob": manifest.previous_part.blob_name, "sha256": manifest.previous_part.sha256},
        "call_id": manifest.call_id,
        "status": manifest.status,
        "duration_ms": round(manifest.duration_seconds * 1000),
        "retention_class": manifest.retention.retention_class,
        "retention_until": manifest.retention.until.astimezone(UTC).isoformat(),
        "legal_holds": list(manifest.legal_holds),
        "worm": enforcement,
    }
    if manifest.access_sealed_separately:  # version 2: an `access_copy.sealed` entry follows with the copies
        details["access_copy_sealing"] = "separate"
    if manifest.video_access_copy is not None:  # only with video, so audio-only entries keep their shape
        copy = manifest.video_access_copy
        video: dict[str, JsonValue] = {"blob": copy.blob_name, "version_id": copy.version_id, "sha256": copy.sha256}
        if copy.streams:  # one MP4 per stream (the player's camera switch), each named with its hash
            video["streams"] = [
                {"track": s.track, "blob": s.blob_name, "version_id": s.version_id, "sha256": s.sha256}
                for s in copy.streams
            ]
        details["video_access_copy"] = video
    return details


SealResult = Sealing[RecordingManifest]


class Sealer(ManifestSealer[RecordingManifest]):
    """Seals recordings in the recordings container (made WORM through `worm`) and appends `sealed` entries to
    the ledger."""

    kind = SealKind(
        contract=RecordingManifest,
        manifest_name=names.sealed_manifest_name,
        covered=sealed_objects,
        retention_until=lambda manifest: manifest.retention.until,
        entry_kind=EntryKind.SEALED,
        idempotency_key=seal_key,
        details=sealed_details,
    )


def read_manifest_blob(container: BlobStore, blob_name: str, version_id: str | None = None) -> bytes | None:
    try:
        return container.read(blob_name, version_id=version_id)
    except BlobNotFound:
        return None
