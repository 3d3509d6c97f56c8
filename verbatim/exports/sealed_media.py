"""Sealed objects streamed into a package exactly as sealed: the version the manifest names, hashed while it is
copied (by the ZIP writer, which hashes every member). The size and SHA-256 are checked when the last byte has
passed, before the recording's part is recorded; a difference raises `SealMismatch` naming the object, which
fails the export — a package never carries bytes other than the sealed ones.

(The compliance API's sealed reads are being moved behind one function that takes the manifest; this streaming
read belongs beside it and moves there when it lands.)
"""

from __future__ import annotations

from collections.abc import Iterator

from verbatim.contracts.evidence import BlobRef, RecordingManifest
from verbatim.platform.blobs import BlobNotFound, BlobStore
from verbatim.platform.errors import VerbatimError


class SealMismatch(VerbatimError):
    """A sealed object is missing from storage, or its bytes are not the ones that were sealed."""

    status = 409
    title = "Evidence does not match its seal"


def sealed_objects(manifest: RecordingManifest) -> Iterator[tuple[str, BlobRef]]:
    """Every object a manifest seals, with what it is: `evidence:<track>` (the audio tracks, then the camera and
    screen-share streams: docs/video.md), `access`, `video-access` (the MP4 copy), `video-access:<track>` (each
    stream's own MP4 copy), `capture`."""
    for track in manifest.evidence:
        yield f"evidence:{track.track}", track
    for video in manifest.video:
        yield f"evidence:{video.track}", video
    if manifest.access_copy is not None:
        yield "access", manifest.access_copy
    if manifest.video_access_copy is not None:
        yield "video-access", manifest.video_access_copy
        for stream in manifest.video_access_copy.streams:  # one MP4 per stream (the player's camera switch)
            yield f"video-access:{stream.track}", stream
    if manifest.capture_manifest is not None:
        yield "capture", manifest.capture_manifest


def stream_sealed(store: BlobStore, ref: BlobRef, what: str) -> Iterator[bytes]:
    """The object's bytes a few MB at a time (the version the manifest names); `SealMismatch` when it is missing or
    not of the sealed length. The caller hashes them on their way into the package and calls `check_sealed` (one
    SHA-256 pass, not two)."""
    count = 0
    try:
        for chunk in store.chunks(ref.blob_name, version_id=ref.version_id):
            count += len(chunk)
            if count > ref.bytes:
                break
            yield chunk
    except BlobNotFound:
        raise SealMismatch(f"the sealed {what} {ref.blob_name} is missing from storage", blob=ref.blob_name) from None
    if count != ref.bytes:  # said here, before a block of the sealed length is found to be short or long
        raise SealMismatch(
            f"the {what} {ref.blob_name} in storage has {'more than ' if count > ref.bytes else ''}{count} bytes, "
            f"not the {ref.bytes} that were sealed",
            blob=ref.blob_name,
        )


def check_sealed(size: int, sha256: str, ref: BlobRef, what: str) -> None:
    """`SealMismatch` unless the bytes that streamed through (`size`, `sha256`) are the sealed ones."""
    if size != ref.bytes or sha256 != ref.sha256:
        raise SealMismatch(
            f"the {what} {ref.blob_name} in storage ({size} bytes, SHA-256 {sha256}) is not what was "
            f"sealed ({ref.bytes} bytes, SHA-256 {ref.sha256})",
            blob=ref.blob_name,
        )
