"""Seal a recording part's access copies in their own right, after its evidence (recording manifest v2).

The lossless evidence is sealed as soon as it is finalised, so the verdict never waits for a transcode; the Opus
copy (and, with video, the MP4 copy) is made afterwards and sealed here: `access.json` (`AccessCopyManifest`)
written once beside the part's manifest, naming the copies' hashes and the hash of the sealed manifest they were
made from; every object WORM until the recording's retention date and under its legal holds; and an
`access_copy.sealed` ledger entry with the access manifest's hash. Until that entry and the record say so, the
copies are never served (`verbatim.evidence.sealed.AccessCopyNotReady`).

Idempotent like the evidence seal: a retry finds the manifest written and re-applies the same protection and the
same ledger entry (by idempotency key). Holds and retention extensions act on everything in the recording's
folder, so a hold placed while the copies were made covers them once they are written; the terms read here are
the record's when the copies were written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import JsonValue

from verbatim import __version__
from verbatim.contracts.evidence import AccessCopy, AccessCopyManifest, BlobRef, EntryKind, VideoAccessCopy
from verbatim.evidence import names
from verbatim.evidence.seal import ManifestSealer, Sealing, SealKind
from verbatim.evidence.sealed import access_objects
from verbatim.evidence.worm import Enforcement


def access_seal_key(recording_id: str, part: int) -> str:
    """The idempotency key of a part's `access_copy.sealed` ledger entry."""
    return f"access-sealed:{recording_id}" if part == 0 else f"access-sealed:{recording_id}:part-{part}"


AccessSealResult = Sealing[AccessCopyManifest]


def build_access_manifest(
    recording_id: str,
    part: int,
    recording_manifest: BlobRef,
    access_copy: AccessCopy | None,
    video_access_copy: VideoAccessCopy | None,
    retention_until: datetime,
    legal_holds: Sequence[str],
    sealed_at: datetime,
) -> AccessCopyManifest:
    return AccessCopyManifest(
        recording_id=recording_id,
        part=part,
        recording_manifest=recording_manifest,
        access_copy=access_copy,
        video_access_copy=video_access_copy,
        retention_until=retention_until,
        legal_holds=sorted(set(legal_holds)),
        sealed_at=sealed_at,
        sealed_by=f"verbatim {__version__}",
    )


def _copy(ref: BlobRef | None) -> JsonValue:
    if ref is None:
        return None
    return {"blob": ref.blob_name, "version_id": ref.version_id, "bytes": ref.bytes, "sha256": ref.sha256}


def _video(copy: VideoAccessCopy | None) -> JsonValue:
    """The MP4 copy and each video stream's own MP4 copy, each named with its hash."""
    if copy is None:
        return None
    video: dict[str, JsonValue] = {
        "blob": copy.blob_name,
        "version_id": copy.version_id,
        "bytes": copy.bytes,
        "sha256": copy.sha256,
    }
    if copy.streams:
        video["streams"] = [
            {"track": s.track, "blob": s.blob_name, "version_id": s.version_id, "bytes": s.bytes, "sha256": s.sha256}
            for s in copy.streams
        ]
    return video


def access_sealed_details(
    manifest: AccessCopyManifest, manifest_ref: BlobRef, enforcement: Enforcement
) -> dict[str, JsonValue]:
    """What the `access_copy.sealed` entry records: the access manifest's hash, the copies' hashes, and the hash
    of the part's sealed recording manifest (the link to its `sealed` entry), enough to verify from the ledger."""
    return {
        "part": manifest.part,
        "manifest": {
            "blob": manifest_ref.blob_name,
            "version_id": manifest_ref.version_id,
            "bytes": manifest_ref.bytes,
            "sha256": manifest_ref.sha256,
        },
        "recording_manifest": {
            "blob": manifest.recording_manifest.blob_name,
            "sha256": manifest.recording_manifest.sha256,
        },
        "access_copy": _copy(manifest.access_copy),
        "video_access_copy": _video(manifest.video_access_copy),
        "retention_until": manifest.retention_until.astimezone(UTC).isoformat(),
        "legal_holds": list(manifest.legal_holds),
        "worm": enforcement,
    }


class AccessSealer(ManifestSealer[AccessCopyManifest]):
    """Seals access copies in the recordings container (WORM through `worm`) with `access_copy.sealed` entries."""

    kind = SealKind(
        contract=AccessCopyManifest,
        manifest_name=names.access_manifest_name,
        covered=access_objects,
        retention_until=lambda manifest: manifest.retention_until,
        entry_kind=EntryKind.ACCESS_COPY_SEALED,
        idempotency_key=access_seal_key,
        details=access_sealed_details,
    )
