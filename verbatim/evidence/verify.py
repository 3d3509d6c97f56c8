"""Verify a sealed recording from storage and the ledger alone: the media and manifest still hash to what
the `sealed` ledger entry recorded, that entry is unchanged and included in the chain up to a signed
checkpoint, and every later entry about the recording is intact. Each problem is explained in words."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from verbatim.contracts.evidence import EntryKind, InclusionProof, LedgerCheckpoint, LedgerEntry, RecordingManifest
from verbatim.evidence.certificates import check_certificate
from verbatim.evidence.seal import recording_subject
from verbatim.ledger.chain import Finding, verify_entry, verify_inclusion
from verbatim.ledger.writer import Ledger
from verbatim.platform.blobs import BlobNotFound, BlobStore


@dataclass
class RecordingVerification:
    recording_id: str
    findings: list[Finding] = field(default_factory=list)  # evidence of tampering or loss
    notes: list[str] = field(default_factory=list)  # what was checked and held, or is pending
    sealed_entry: LedgerEntry | None = None
    checkpoint: LedgerCheckpoint | None = None
    deleted_by: LedgerEntry | None = None

    @property
    def ok(self) -> bool:
        return not self.findings


def verify_recording(
    recording_id: str, recordings: BlobStore, ledger: Ledger, trusted_fingerprints: Iterable[str]
) -> RecordingVerification:
    result = RecordingVerification(recording_id)
    trusted = set(trusted_fingerprints)
    entries = ledger.store.entries_for_subject(ledger.chain, recording_subject(recording_id))
    sealed = next((e for e in entries if e.kind == EntryKind.SEALED), None)
    if sealed is None:
        result.findings.append(
            Finding("ledger.no_seal", f"the ledger has no sealed entry for recording {recording_id}")
        )
        return result
    result.sealed_entry = sealed
    result.deleted_by = next((e for e in entries if e.kind == EntryKind.DELETED and e.seq > sealed.seq), None)
    for entry in entries:
        result.findings.extend(verify_entry(entry))
    _check_inclusion(result, ledger, sealed, trusted)
    if result.deleted_by is not None:
        result.notes.append(
            f"deleted under the certificate in ledger entry {result.deleted_by.seq} ({result.deleted_by.at}); "
            "its media are not expected in storage"
        )
        findings, note = check_certificate(sealed, result.deleted_by)  # issue 8: the certificate matches the seal
        result.findings.extend(findings)
        result.notes += [note] if note else []
        return result
    manifest = _check_manifest(result, recordings, sealed)
    _check_media(result, recordings, sealed, manifest)
    return result


def recording_proof(ledger: Ledger, recording_id: str) -> InclusionProof | None:
    """The inclusion proof of a recording's `sealed` entry up to a signed checkpoint (None until both exist):
    what the API shows with a recording and what an export carries for offline verification."""
    entries = ledger.store.entries_for_subject(ledger.chain, recording_subject(recording_id))
    sealed = next((e for e in entries if e.kind == EntryKind.SEALED), None)
    return ledger.prove(sealed) if sealed is not None else None


def _check_inclusion(result: RecordingVerification, ledger: Ledger, sealed: LedgerEntry, trusted: set[str]) -> None:
    proof = ledger.prove(sealed)
    if proof is None:
        head = ledger.head_entry()
        segment = ledger.verify(sealed.seq, head.seq if head else sealed.seq)
        result.findings.extend(segment)
        result.notes.append(
            f"sealed entry {sealed.seq} is not yet covered by a signed checkpoint (the chain from it to the head "
            f"{'verifies' if not segment else 'does NOT verify'}); sign one with `verbatim ledger checkpoint`"
        )
        return
    result.checkpoint = proof.checkpoint
    findings = verify_inclusion(proof, trusted)
    result.findings.extend(f for f in findings if f.code != "entry.content_altered")  # reported once, above
    if not findings:
        result.notes.append(
            f"sealed entry {sealed.seq} is included in the chain signed at checkpoint {proof.checkpoint.seq} "
            f"({proof.checkpoint.signed_at}, key {proof.checkpoint.key_id})"
        )


def _check_manifest(
    result: RecordingVerification, recordings: BlobStore, sealed: LedgerEntry
) -> RecordingManifest | None:
    recorded: dict[str, Any] = sealed.details.get("manifest") or {}  # type: ignore[assignment]
    name = str(recorded.get("blob"))
    body = _download(recordings, name, recorded.get("version_id"))
    if body is None:
        result.findings.append(Finding("manifest.missing", f"the sealed manifest {name} is gone from storage"))
        return None
    digest = hashlib.sha256(body).hexdigest()
    if digest != recorded.get("sha256"):
        result.findings.append(
            Finding(
                "manifest.altered",
                f"{name} was changed after sealing: it hashes to {digest[:16]}…, the ledger sealed "
                f"{str(recorded.get('sha256'))[:16]}… — the media are checked against the ledger instead",
            )
        )
        return None
    try:
        manifest = RecordingManifest.model_validate_json(body)
    except ValidationError:
        result.findings.append(Finding("manifest.unreadable", f"{name} is not a recording manifest"))
        return None
    result.notes.append(f"manifest {name} is the one sealed (SHA-256 {digest[:16]}…)")
    return manifest


def _check_media(
    result: RecordingVerification, recordings: BlobStore, sealed: LedgerEntry, manifest: RecordingManifest | None
) -> None:
    evidence: list[dict[str, Any]] = sealed.details.get("evidence") or []  # type: ignore[assignment]
    for item in evidence:
        track = manifest.track(str(item["track"])) if manifest else None
        body = _download(recordings, str(item["blob"]), item.get("version_id"))
        if body is None:
            result.findings.append(Finding("evidence.missing", f"evidence {item['blob']} is gone from storage"))
            continue
        digest = hashlib.sha256(body).hexdigest()
        if digest == item["sha256"]:
            result.notes.append(f"evidence {item['blob']}: {len(body)} bytes, SHA-256 {digest[:16]}… as sealed")
            continue
        where = ""
        if track is not None:
            changed = [
                b
                for b in track.blocks
                if hashlib.sha256(body[b.byte_offset : b.byte_offset + b.size]).hexdigest() != b.sha256
            ]
            if changed:
                first, last = changed[0], changed[-1]
                start = first.start_sample / track.sample_rate
                end = (last.start_sample + last.samples) / track.sample_rate
                where = (
                    f"; blocks {', '.join(str(b.index) for b in changed)} differ "
                    f"(bytes {first.byte_offset}..{last.byte_offset + last.size}, {start:.1f}-{end:.1f} s of audio)"
                )
            if len(body) != track.bytes:
                where += f"; it has {len(body)} bytes, {track.bytes} were sealed"
        result.findings.append(
            Finding(
                "evidence.altered",
                f"evidence {item['blob']} was changed after sealing: it hashes to {digest[:16]}…, the ledger "
                f"sealed {str(item['sha256'])[:16]}…{where}",
            )
        )
    access: dict[str, Any] | None = sealed.details.get("access_copy")  # type: ignore[assignment]
    if access:
        body = _download(recordings, str(access["blob"]), access.get("version_id"))
        if body is None:
            result.findings.append(Finding("access_copy.missing", f"access copy {access['blob']} is gone"))
        elif hashlib.sha256(body).hexdigest() != access["sha256"]:
            result.findings.append(
                Finding("access_copy.altered", f"access copy {access['blob']} was changed after sealing")
            )
        else:
            link = manifest.access_copy.source_sha256[:16] if manifest and manifest.access_copy else "?"
            result.notes.append(f"access copy {access['blob']} as sealed, made from evidence {link}…")


def _download(container: BlobStore, name: str, version_id: object) -> bytes | None:
    try:
        return container.read(name, version_id=str(version_id) if version_id else None)
    except BlobNotFound:
        return None
