"""Sealed objects streamed into a package exactly as sealed: the version the manifest names, hashed while it is
copied. The size and SHA-256 are checked when the last byte has passed; a difference raises `SealMismatch`
naming the object, which fails the export — a package never carries bytes other than the sealed ones.

(The compliance API's sealed reads are being moved behind one function that takes the manifest; this streaming
read belongs beside it and moves there when it lands.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from verbatim.contracts.evidence import BlobRef, RecordingManifest
from verbatim.platform.blobs import BlobNotFound, BlobStore
from verbatim.platform.errors import VerbatimError


class SealMismatch(VerbatimError):
    """A sealed object is missing from storage, or its bytes are not the ones that were sealed."""

    status = 409
    title = "Evidence does not match its seal"


def sealed_objects(manifest: RecordingManifest) -> Iterator[tuple[str, BlobRef]]:
    """Every object a manifest seals, with what it is: `evidence:<track>`, `access`, `capture`."""
    for track in manifest.evidence:
        yield f"evidence:{track.track}", track
    if manifest.access_copy is not None:
        yield "access", manifest.access_copy
    if manifest.capture_manifest is not None:
        yield "capture", manifest.capture_manifest


def stream_sealed(store: BlobStore, ref: BlobRef, what: str) -> Iterator[bytes]:
    """The object's bytes a few MB at a time; `SealMismatch` (after the last chunk) unless they are the sealed
    ones."""
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in store.chunks(ref.blob_name, version_id=ref.version_id):
            digest.update(chunk)
            size += len(chunk)
            yield chunk
    except BlobNotFound:
        raise SealMismatch(f"the sealed {what} {ref.blob_name} is missing from storage", blob=ref.blob_name) from None
    if size != ref.bytes or digest.hexdigest() != ref.sha256:
        raise SealMismatch(
            f"the {what} {ref.blob_name} in storage ({size} bytes, SHA-256 {digest.hexdigest()}) is not what was "
            f"sealed ({ref.bytes} bytes, SHA-256 {ref.sha256})",
            blob=ref.blob_name,
        )
