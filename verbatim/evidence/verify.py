"""Verify a sealed recording from storage and the ledger alone: the media and manifest still hash to what
the `sealed` ledger entry recorded, that entry is in the log's tree as a signed checkpoint commits to it (an
inclusion proof computed from the tiles), the log extends every anchored checkpoint, and every later entry
about the recording is intact. Each problem is explained in words."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from verbatim.contracts.evidence import EntryKind, RecordingManifest, VideoEvidenceTrack
from verbatim.contracts.ledger import LogEntry, LogInclusionProof
from verbatim.contracts.lifecycle import PairManifest
from verbatim.evidence.certificates import check_certificate
from verbatim.evidence.ledger_entries import subject_entries
from verbatim.evidence.seal import recording_subject
from verbatim.ledger.chain import Finding, verify_entry
from verbatim.ledger.checkpoint import open_checkpoint
from verbatim.ledger.log.anchors import AnchorStore, check_anchors
from verbatim.ledger.log.service import TransparencyLog
from verbatim.ledger.merkle import ProofError, leaf_hash, verify_inclusion
from verbatim.ledger.note import NoteError
from verbatim.platform.blobs import BlobNotFound, BlobStore
from verbatim.platform.errors import NotFound

PAIRED = "paired"  # verbatim.lifecycle.pairs seals a pair manifest into each member's folder with this entry


@dataclass
class RecordingVerification:
    recording_id: str
    findings: list[Finding] = field(default_factory=list)  # evidence of tampering or loss
    notes: list[str] = field(default_factory=list)  # what was checked and held, or is pending
    sealed_entry: LogEntry | None = None  # part 0's
    parts: list[LogEntry] = field(default_factory=list)  # every part's `sealed` entry, in order
    proof: LogInclusionProof | None = None  # part 0's
    deleted_by: LogEntry | None = None

    @property
    def ok(self) -> bool:
        return not self.findings


def verify_recording(
    recording_id: str, recordings: BlobStore, ledger: TransparencyLog, anchors: AnchorStore | None = None
) -> RecordingVerification:
    """Verify every sealed part of the recording. A recording is sealed in parts when the lifecycle salvaged a
    capture whose recorder was alive after all: part 0 holds what was salvaged, each later part what the recorder
    captured after that (a continuation), with its own manifest and `sealed` entry naming the part before it.
    Each part is checked on its own, then the links between them."""
    result = RecordingVerification(recording_id)
    entries = list(subject_entries(ledger, recording_subject(recording_id)))
    sealed_entries = sorted((e for e in entries if e.kind == EntryKind.SEALED), key=lambda e: e.index)
    if not sealed_entries:
        result.findings.append(
            Finding("ledger.no_seal", f"the ledger has no sealed entry for recording {recording_id}")
        )
        return result
    sealed = sealed_entries[0]
    result.sealed_entry = sealed
    result.parts = sealed_entries
    result.deleted_by = next((e for e in entries if e.kind == EntryKind.DELETED and e.index > sealed.index), None)
    for entry in entries:
        if entry.v1 is not None:  # sealed before the upgrade: its own v1 hashes still hold
            result.findings.extend(verify_entry(entry.v1))
    result.proof = _check_inclusion(result, ledger, sealed)
    for entry in sealed_entries[1:]:
        _check_inclusion(result, ledger, entry)
    if result.deleted_by is not None:
        _check_inclusion(result, ledger, result.deleted_by)
    if anchors is not None:
        _check_anchors(result, ledger, anchors)
    if sealed.v1 is not None:
        result.notes.append(
            f"sealed before the ledger upgrade: v1 chain {sealed.v1.chain!r} entry {sealed.v1.seq}, migrated as "
            f"index {sealed.index} (`verbatim ledger verify` checks the migration)"
        )
    if result.deleted_by is not None:
        result.notes.append(
            f"deleted under the certificate in ledger entry {result.deleted_by.seq} ({result.deleted_by.at}); "
            "its media are not expected in storage"
        )
        access_sealed = [
            e for e in entries if e.kind == EntryKind.ACCESS_COPY_SEALED and e.index < result.deleted_by.index
        ]
        # issue 8: the certificate matches the seal (and the access copies sealed after it)
        findings, note = check_certificate(sealed, result.deleted_by, access_sealed)
        result.findings.extend(findings)
        result.notes += [note] if note else []
        return result
    manifests: list[RecordingManifest | None] = []
    access_entries = [e for e in entries if e.kind == EntryKind.ACCESS_COPY_SEALED]
    for entry in sealed_entries:
        manifest = _check_manifest(result, recordings, entry)
        _check_media(result, recordings, entry, manifest)
        manifests.append(manifest)
        _check_access_seal(result, ledger, recordings, entry, access_entries)
    if len(sealed_entries) > 1:
        _check_parts(result, sealed_entries, manifests)
    for entry in entries:
        if entry.kind == PAIRED:
            _check_inclusion(result, ledger, entry)
            _check_pair(result, recordings, entry, sealed_entries)
    return result


def _check_pair(
    result: RecordingVerification, recordings: BlobStore, paired: LogEntry, sealed_entries: list[LogEntry]
) -> None:
    """A pair manifest (2N recording: another recorder instance recorded the same call leg): it is the one the
    `paired` entry pinned, it lists this recording with the manifest this recording's `sealed` entry pinned,
    and its attributed coverage never credits a member with time outside what that member's parts cover."""
    recorded: dict[str, Any] = paired.details.get("manifest") or {}  # type: ignore[assignment]
    name = str(recorded.get("blob"))
    body = _download(recordings, name, None)
    if body is None:
        result.findings.append(Finding("pair.missing", f"the pair manifest {name} is gone from storage"))
        return
    if hashlib.sha256(body).hexdigest() != recorded.get("sha256"):
        result.findings.append(Finding("pair.altered", f"the pair manifest {name} was changed after sealing"))
        return
    try:
        manifest = PairManifest.model_validate_json(body)
    except ValidationError:
        result.findings.append(Finding("pair.unreadable", f"{name} is not a pair manifest"))
        return
    mine = next((m for m in manifest.members if m.recording_id == result.recording_id), None)
    sealed = {str((e.details.get("manifest") or {}).get("sha256")) for e in sealed_entries}  # type: ignore[union-attr]
    if mine is None or mine.manifest_sha256 not in sealed:
        result.findings.append(
            Finding("pair.mismatch", f"the pair manifest {name} does not name this recording's sealed manifest")
        )
        return
    parts = {m.recording_id: m.parts for m in manifest.members}
    for interval in manifest.coverage:
        held = parts.get(interval.recording_id, [])
        if not any(p.start <= interval.start and p.end >= interval.end for p in held):
            result.findings.append(
                Finding(
                    "pair.overclaimed",
                    f"the pair manifest {name} credits {interval.recording_id} with {interval.start.isoformat()}"
                    f"-{interval.end.isoformat()}, which its sealed parts do not cover",
                )
            )
            return
    copy: dict[str, Any] | None = paired.details.get("access_copy")  # type: ignore[assignment]
    if copy is not None:
        copy_name = str(copy.get("blob"))
        data = _download(recordings, copy_name, None)
        if data is None:
            result.findings.append(Finding("pair.access_copy.missing", f"the pair's access copy {copy_name} is gone"))
        elif hashlib.sha256(data).hexdigest() != copy.get("sha256"):
            result.findings.append(
                Finding("pair.access_copy.altered", f"the pair's access copy {copy_name} was changed after sealing")
            )
    others = ", ".join(f"{m.recording_id} ({m.recorder_instance})" for m in manifest.members if m is not mine)
    result.notes.append(
        f"paired with {others}: pair manifest {name} as sealed, union of coverage {manifest.union_seconds:.1f} s"
        + (" (access copy of the union as sealed)" if copy is not None else "")
    )


def _part(entry: LogEntry) -> int:
    part = entry.details.get("part")
    return part if isinstance(part, int) else 0


def _check_parts(
    result: RecordingVerification, entries: list[LogEntry], manifests: list[RecordingManifest | None]
) -> None:
    """Explain how the parts make up the recording, and check that each continuation names the part before it."""
    result.notes.append(
        f"sealed in {len(entries)} parts: the lifecycle salvaged a capture whose recorder was alive after all, and "
        "what the recorder captured afterwards was sealed as a continuation of the same recording"
    )
    numbers = [_part(entry) for entry in entries]
    if numbers != list(range(len(entries))):
        result.findings.append(
            Finding("parts.out_of_order", f"the sealed parts are numbered {numbers}, not 0..{len(entries) - 1}")
        )
    for index in range(1, len(entries)):
        entry, before = entries[index], entries[index - 1]
        link: dict[str, Any] = entry.details.get("previous_part") or {}  # type: ignore[assignment]
        before_manifest: dict[str, Any] = before.details.get("manifest") or {}  # type: ignore[assignment]
        if link.get("sha256") != before_manifest.get("sha256"):
            result.findings.append(
                Finding(
                    "parts.broken_link",
                    f"part {_part(entry)} does not continue part {_part(before)}: it names manifest "
                    f"{str(link.get('sha256'))[:16]}…, part {_part(before)} sealed "
                    f"{str(before_manifest.get('sha256'))[:16]}…",
                    entry.seq,
                )
            )
            continue
        manifest, previous = manifests[index], manifests[index - 1]
        if manifest is None or previous is None:
            continue
        rate = manifest.track().sample_rate
        end = previous.first_sample + previous.track().samples
        gap = manifest.first_sample - end
        span = (
            f"part {manifest.part} continues part {previous.part} at {manifest.first_sample / rate:.2f} s "
            f"({manifest.track().samples / rate:.2f} s of audio, ledger entry {entry.seq})"
        )
        if gap > 0:
            result.notes.append(
                f"{span}; {gap / rate:.2f} s between the parts were not sealed (what the salvage could not keep)"
            )
        elif gap < 0:
            result.findings.append(
                Finding("parts.overlap", f"{span}, but part {previous.part} reaches {end / rate:.2f} s", entry.seq)
            )
        else:
            result.notes.append(f"{span}, with nothing missing between them")


def recording_proof(ledger: TransparencyLog, recording_id: str) -> LogInclusionProof | None:
    """The inclusion proof of a recording's `sealed` entry in the latest signed checkpoint (None until both
    exist): what the API shows with a recording and what an export carries for offline verification."""
    from verbatim.evidence.ledger_entries import sealed_entry

    sealed = sealed_entry(ledger, recording_id)
    if sealed is None:
        return None
    try:
        return ledger.prove(sealed.index)
    except NotFound:
        return None


def _check_inclusion(
    result: RecordingVerification, ledger: TransparencyLog, entry: LogEntry
) -> LogInclusionProof | None:
    """Is `entry`, as the ledger holds it, the leaf the latest signed tree has at its index?"""
    try:
        proof = ledger.prove(entry.index)
    except NotFound:
        result.notes.append(
            f"ledger entry {entry.index} ({entry.kind}) is not yet covered by a signed checkpoint (one is signed "
            "within a minute; sign one now with `verbatim ledger checkpoint`)"
        )
        return None
    try:
        checkpoint = open_checkpoint(proof.checkpoint.encode(), ledger.keys.verifiers, ledger.origin).checkpoint
    except NoteError as error:
        result.findings.append(Finding(error.code, f"the checkpoint of size {proof.tree_size}: {error}"))
        return proof
    data = base64.b64decode(proof.entry)
    hashes = [base64.b64decode(h) for h in proof.hashes]
    try:
        verify_inclusion(entry.index, checkpoint.size, leaf_hash(data), hashes, checkpoint.root_hash)
    except ProofError as error:
        result.findings.append(
            Finding(
                "entry.not_in_tree" if error.code == "proof.root_mismatch" else error.code,
                f"ledger entry {entry.index} ({entry.kind} {entry.subject}) as the ledger holds it is not the leaf "
                f"the signed tree of size {checkpoint.size} has at that index: the entry was changed after it was "
                f"written ({error})",
                entry.index,
            )
        )
        return proof
    result.notes.append(
        f"ledger entry {entry.index} ({entry.kind}) is in the tree signed at size {checkpoint.size} "
        f"(a {len(hashes)}-hash inclusion proof, key {ledger.keys.verifiers[0].name if ledger.keys.verifiers else '?'})"
    )
    return proof


def _check_anchors(result: RecordingVerification, ledger: TransparencyLog, anchors: AnchorStore) -> None:
    findings, notes = check_anchors(ledger.latest_checkpoint(), ledger, anchors, ledger.keys.verifiers, ledger.origin)
    result.findings.extend(Finding(f.code, f.message, f.size) for f in findings if f.code != "log.no_checkpoint")
    result.notes.extend(notes)


def _check_manifest(result: RecordingVerification, recordings: BlobStore, sealed: LogEntry) -> RecordingManifest | None:
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
    result: RecordingVerification, recordings: BlobStore, sealed: LogEntry, manifest: RecordingManifest | None
) -> None:
    evidence: list[dict[str, Any]] = sealed.details.get("evidence") or []  # type: ignore[assignment]
    videos = {video.track: video for video in manifest.video} if manifest else {}
    for item in evidence:
        if str(item["track"]) in videos:
            _check_video(result, recordings, item, videos[str(item["track"])])
            continue
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
    _check_video_access_copy(result, recordings, sealed)
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


def _check_access_seal(
    result: RecordingVerification,
    ledger: TransparencyLog,
    recordings: BlobStore,
    sealed: LogEntry,
    access_entries: list[LogEntry],
) -> None:
    """A part sealed with manifest v2 has its access copies sealed after it: an `access_copy.sealed` entry naming
    this part's sealed manifest, its access-copy manifest as sealed, and each copy as sealed. Until that entry
    exists the copies are being made (never served), which is a note, not a finding."""
    part = _part(sealed)
    sealed_manifest: dict[str, Any] = sealed.details.get("manifest") or {}  # type: ignore[assignment]
    mine = [e for e in access_entries if _part(e) == part]
    if not mine:
        if sealed.details.get("access_copy_sealing") == "separate":
            result.notes.append(
                f"part {part}: the access copies are not sealed yet (the evidence is sealed first; the copies are "
                "made and sealed after it, and are not served before)"
            )
        return
    entry = mine[0]
    _check_inclusion(result, ledger, entry)
    link: dict[str, Any] = entry.details.get("recording_manifest") or {}  # type: ignore[assignment]
    if link.get("sha256") != sealed_manifest.get("sha256"):
        result.findings.append(
            Finding(
                "access_copy.unlinked",
                f"the access copies sealed in ledger entry {entry.index} name manifest "
                f"{str(link.get('sha256'))[:16]}…, not part {part}'s sealed manifest "
                f"{str(sealed_manifest.get('sha256'))[:16]}…",
                entry.index,
            )
        )
    recorded: dict[str, Any] = entry.details.get("manifest") or {}  # type: ignore[assignment]
    name = str(recorded.get("blob"))
    body = _download(recordings, name, recorded.get("version_id"))
    if body is None:
        result.findings.append(Finding("access_copy.manifest_missing", f"the access-copy manifest {name} is gone"))
    elif hashlib.sha256(body).hexdigest() != recorded.get("sha256"):
        result.findings.append(
            Finding("access_copy.manifest_altered", f"the access-copy manifest {name} was changed after sealing")
        )
    opus: dict[str, Any] | None = entry.details.get("access_copy")  # type: ignore[assignment]
    video: dict[str, Any] | None = entry.details.get("video_access_copy")  # type: ignore[assignment]
    copies: list[tuple[dict[str, Any], str]] = [(opus, "access copy")] if opus else []
    if video:
        copies.append((video, "video access copy"))
        streams = [stream for stream in video.get("streams") or [] if isinstance(stream, dict)]
        copies += [(stream, f"video access copy of {stream.get('track')}") for stream in streams]
    for copy, what in copies:
        data = _download(recordings, str(copy["blob"]), copy.get("version_id"))
        if data is None:
            result.findings.append(Finding("access_copy.missing", f"{what} {copy['blob']} is gone"))
        elif hashlib.sha256(data).hexdigest() != copy["sha256"]:
            result.findings.append(Finding("access_copy.altered", f"{what} {copy['blob']} was changed after sealing"))
        else:
            result.notes.append(
                f"{what} {copy['blob']} as sealed after the evidence (ledger entry {entry.index}), made from part "
                f"{part}'s sealed manifest {str(link.get('sha256'))[:16]}…"
            )


def _check_video(
    result: RecordingVerification, recordings: BlobStore, item: dict[str, Any], video: VideoEvidenceTrack
) -> None:
    """A camera or screen-share stream: its bytes against the ledger's hash, and which blocks differ if not."""
    body = _download(recordings, str(item["blob"]), item.get("version_id"))
    if body is None:
        result.findings.append(Finding("evidence.missing", f"video stream {item['blob']} is gone from storage"))
        return
    digest = hashlib.sha256(body).hexdigest()
    if digest == item["sha256"]:
        shown = (
            f", shown {video.first_seconds:.1f}-{video.last_seconds:.1f} s"
            if video.first_seconds is not None and video.last_seconds is not None
            else ""
        )
        result.notes.append(
            f"video {item['blob']} ({video.kind}, source {video.source_id}): {len(body)} bytes, {video.units} frames"
            f"{shown}, SHA-256 {digest[:16]}… as sealed"
        )
        return
    changed = [
        b for b in video.blocks if hashlib.sha256(body[b.byte_offset : b.byte_offset + b.size]).hexdigest() != b.sha256
    ]
    where = ""
    if changed:
        where = (
            f"; blocks {', '.join(str(b.index) for b in changed)} differ "
            f"({changed[0].first_seconds:.1f}-{changed[-1].last_seconds:.1f} s of video)"
        )
    if len(body) != video.bytes:
        where += f"; it has {len(body)} bytes, {video.bytes} were sealed"
    result.findings.append(
        Finding(
            "evidence.altered",
            f"video stream {item['blob']} was changed after sealing: it hashes to {digest[:16]}…, the ledger sealed "
            f"{str(item['sha256'])[:16]}…{where}",
        )
    )


def _check_video_access_copy(result: RecordingVerification, recordings: BlobStore, sealed: LogEntry) -> None:
    """The MP4 copy and each stream's own MP4 copy (the player's camera switch) against the ledger's hashes."""
    copy: dict[str, Any] | None = sealed.details.get("video_access_copy")  # type: ignore[assignment]
    if not copy:
        return
    streams = [stream for stream in copy.get("streams") or [] if isinstance(stream, dict)]
    for item, what in [
        (copy, "video access copy"),
        *((stream, f"video access copy of {stream.get('track')}") for stream in streams),
    ]:
        body = _download(recordings, str(item["blob"]), item.get("version_id"))
        if body is None:
            result.findings.append(Finding("access_copy.missing", f"{what} {item['blob']} is gone"))
        elif hashlib.sha256(body).hexdigest() != item["sha256"]:
            result.findings.append(Finding("access_copy.altered", f"{what} {item['blob']} was changed after sealing"))
        else:
            result.notes.append(f"{what} {item['blob']} as sealed")


def _download(container: BlobStore, name: str, version_id: object) -> bytes | None:
    try:
        return container.read(name, version_id=str(version_id) if version_id else None)
    except BlobNotFound:
        return None
