"""Reading sealed evidence back: only the version that was sealed, and only bytes that hash to what the seal
recorded. Everything the compliance API serves comes through here.

Version-level WORM protects versions, not names: whoever may write the container can put a new current version
under a sealed name. So a sealed object is read by the version id its manifest names (where the store keeps
versions), and every byte is checked before it leaves: a whole read against the object's SHA-256, a range
against the SHA-256 of each chunk that covers it (`ChunkDigests`, recorded at seal time). The manifest itself is
read by its sealed version and checked against the hash the recording's index (and the ledger) holds. Anything
missing or different is `EvidenceTampered`: never served, reported.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from threading import Lock
from typing import Literal

from verbatim.contracts.evidence import AccessCopyManifest, BlobRef, ChunkDigests, RecordingManifest
from verbatim.contracts.lifecycle import SealedPartIndex, SealIndex
from verbatim.platform.blobs import BlobNotFound, BlobStore
from verbatim.platform.errors import VerbatimError

CHUNK_BYTES = 256 * 1024
SealedCopy = Literal["access", "evidence", "video"]


class EvidenceTampered(VerbatimError):
    """A sealed object is missing, or its bytes are not the ones that were sealed."""

    status = 409
    title = "Evidence does not match its seal"


class AccessCopyNotReady(VerbatimError):
    """The part's evidence is sealed but its access copy is still being made (recording manifest v2 seals the
    copy after the evidence): nothing is served until it is sealed too."""

    status = 409
    title = "Access copy not ready"
    retry_after = 30


class ChunkHasher:
    """SHA-256 of each `chunk_bytes` chunk of a stream, fed in pieces of any size."""

    def __init__(self, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.chunk_bytes = chunk_bytes
        self._digests: list[str] = []
        self._current = hashlib.sha256()
        self._filled = 0

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), self.chunk_bytes - self._filled)
            self._current.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self.chunk_bytes:
                self._digests.append(self._current.hexdigest())
                self._current, self._filled = hashlib.sha256(), 0

    def digests(self) -> ChunkDigests:
        tail = [self._current.hexdigest()] if self._filled else []
        return ChunkDigests(chunk_bytes=self.chunk_bytes, sha256=[*self._digests, *tail])


def chunk_digests(data: bytes, chunk_bytes: int = CHUNK_BYTES) -> ChunkDigests:
    hasher = ChunkHasher(chunk_bytes)
    hasher.update(data)
    return hasher.digests()


def sealed_part(manifest: RecordingManifest, copy: SealedCopy, stream: str | None = None) -> BlobRef | None:
    """The sealed object a copy of one part is served from: its access copy, its MP4 access copy with the video
    streams (docs/video.md) or, with `stream`, that video stream's own MP4 copy, or its mixed lossless track."""
    if copy == "access":
        return manifest.access_copy
    if copy == "video":
        video = manifest.video_access_copy
        if stream is None or video is None:
            return video
        return video.stream(stream)
    return manifest.track() if manifest.evidence else None


def sealed_access(access: AccessCopyManifest, copy: SealedCopy) -> BlobRef | None:
    """The sealed access copy of one part from its access-copy manifest (recording manifest v2)."""
    if copy == "access":
        return access.access_copy
    if copy == "video":
        return access.video_access_copy
    return None


def sealed_parts(seal: SealIndex) -> list[SealedPartIndex]:
    """The recording's sealed parts in order (a record sealed before parts were kept is its one part 0)."""
    if seal.parts:
        return sorted(seal.parts, key=lambda p: p.part)
    return [
        SealedPartIndex(
            part=0,
            manifest_blob=seal.manifest_blob,
            manifest_version_id=seal.manifest_version_id,
            manifest_sha256=seal.manifest_sha256,
            ledger_seq=seal.ledger_seq,
            duration_seconds=seal.duration_seconds,
            interrupted=seal.interrupted,
            sealed_at=seal.sealed_at,
        )
    ]


def read_sealed(store: BlobStore, ref: BlobRef, start: int = 0, length: int | None = None) -> bytes:
    """Bytes of one sealed object, checked against its seal (whole hash, or the covering chunks' hashes)."""
    end = ref.bytes if length is None else min(ref.bytes, start + length)
    if start < 0 or start > end:
        raise ValueError(f"bad range {start}..{end} of {ref.blob_name}")
    if start == 0 and end == ref.bytes:
        data = _read(store, ref)
        _check(ref, data, hashlib.sha256(data).hexdigest(), ref.sha256, "the object")
        return data
    if ref.chunks is not None and _chunks_cover(ref.chunks, ref.bytes):
        size = ref.chunks.chunk_bytes
        first, last = start // size, (end - 1) // size
        data = _read(store, ref, first * size, min(ref.bytes, (last + 1) * size) - first * size)
        for index in range(first, last + 1):
            piece = data[(index - first) * size : (index - first + 1) * size]
            _check(ref, piece, hashlib.sha256(piece).hexdigest(), ref.chunks.sha256[index], f"chunk {index}")
        return data[start - first * size : end - first * size]
    # Sealed before chunk hashes were recorded: only the whole object can be checked.
    return read_sealed(store, ref)[start:end]


def verify_sealed(store: BlobStore, ref: BlobRef) -> None:
    """Stream the whole sealed object and check its hash (constant memory); `EvidenceTampered` otherwise."""
    whole = hashlib.sha256()
    size = 0
    try:
        for piece in store.chunks(ref.blob_name, version_id=ref.version_id):
            whole.update(piece)
            size += len(piece)
    except BlobNotFound as error:
        raise _missing(ref) from error
    if size != ref.bytes or whole.hexdigest() != ref.sha256:
        raise EvidenceTampered(
            f"{ref.blob_name}{_version(ref)} has {size} bytes hashing to {whole.hexdigest()}, "
            f"sealed as {ref.bytes} bytes hashing to {ref.sha256}",
            blob=ref.blob_name,
        )


def read_sealed_manifest(
    store: BlobStore, blob_name: str, version_id: str | None, sha256: str
) -> tuple[RecordingManifest, bytes]:
    """A part's sealed manifest (its sealed version), checked against the hash its seal index holds."""
    ref = BlobRef(blob_name=blob_name, version_id=version_id, bytes=0, sha256=sha256)
    data = _read(store, ref)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise EvidenceTampered(
            f"the manifest {blob_name}{_version(ref)} hashes to {digest}, sealed as {sha256}", blob=blob_name
        )
    return RecordingManifest.model_validate_json(data), data


def read_access_manifest(store: BlobStore, part: SealedPartIndex) -> AccessCopyManifest | None:
    """A part's sealed access-copy manifest, checked against the hash its seal index holds (None: the part has
    none, because its copies were sealed in its manifest (v1) or are not sealed yet)."""
    if part.access_manifest_blob is None or part.access_manifest_sha256 is None:
        return None
    ref = BlobRef(
        blob_name=part.access_manifest_blob,
        version_id=part.access_manifest_version_id,
        bytes=0,
        sha256=part.access_manifest_sha256,
    )
    data = _read(store, ref)
    digest = hashlib.sha256(data).hexdigest()
    if digest != part.access_manifest_sha256:
        raise EvidenceTampered(
            f"the access-copy manifest {part.access_manifest_blob}{_version(ref)} hashes to {digest}, sealed as "
            f"{part.access_manifest_sha256}",
            blob=part.access_manifest_blob,
        )
    return AccessCopyManifest.model_validate_json(data)


def access_objects(access: AccessCopyManifest) -> Iterator[tuple[str, BlobRef]]:
    """The media objects an access-copy manifest seals."""
    if access.access_copy is not None:
        yield "access copy", access.access_copy
    if access.video_access_copy is not None:
        yield "video access copy", access.video_access_copy
        for stream in access.video_access_copy.streams:
            yield f"video access copy of {stream.track}", stream


def sealed_objects(manifest: RecordingManifest) -> Iterator[tuple[str, BlobRef]]:
    """Every media object a manifest seals, with what it is."""
    for track in manifest.evidence:
        yield f"evidence track {track.track}", track
    for video in manifest.video:  # camera and screen-share streams are evidence too (docs/video.md)
        yield f"video stream {video.track}", video
    if manifest.access_copy is not None:
        yield "access copy", manifest.access_copy
    if manifest.video_access_copy is not None:
        yield "video access copy", manifest.video_access_copy
        for stream in manifest.video_access_copy.streams:
            yield f"video access copy of {stream.track}", stream
    if manifest.capture_manifest is not None:
        yield "capture manifest", manifest.capture_manifest


@dataclass(frozen=True)
class IntegrityCheck:
    state: Literal["intact", "tampered"]
    problems: list[str]


class IntegrityChecker:
    """Whether every object of a sealed recording is still what was sealed, for the recording page.

    Each object is hashed in full once; the result is kept per process for the (blob, version, ETag) it was
    computed on — any write to the content changes the ETag, so a kept "intact" never outlives the bytes it
    was computed on (and a changed ETag only costs a new hash, never a false alarm)."""

    def __init__(self, store: BlobStore, capacity: int = 512) -> None:
        self._store = store
        self._capacity = capacity
        self._intact: OrderedDict[tuple[str, str | None, str, str], None] = OrderedDict()
        self._lock = Lock()

    def check(self, manifest: RecordingManifest, access: AccessCopyManifest | None = None) -> IntegrityCheck:
        objects = [*sealed_objects(manifest), *(access_objects(access) if access is not None else [])]
        problems = [f"{what}: {problem}" for what, ref in objects if (problem := self.check_ref(ref)) is not None]
        return IntegrityCheck("tampered" if problems else "intact", problems)

    def check_ref(self, ref: BlobRef) -> str | None:
        """None when the sealed object is intact, else what is wrong with it."""
        try:
            self._verify(ref)
        except EvidenceTampered as error:
            return error.detail
        return None

    def _verify(self, ref: BlobRef) -> None:
        try:
            found = self._store.properties(ref.blob_name, version_id=ref.version_id)
        except BlobNotFound as error:
            raise _missing(ref) from error
        key = (ref.blob_name, ref.version_id, found.etag, ref.sha256)
        with self._lock:
            if key in self._intact:
                self._intact.move_to_end(key)
                return
        if found.size != ref.bytes:
            raise EvidenceTampered(
                f"{ref.blob_name}{_version(ref)} has {found.size} bytes, sealed as {ref.bytes}", blob=ref.blob_name
            )
        verify_sealed(self._store, ref)
        with self._lock:
            self._intact[key] = None
            while len(self._intact) > self._capacity:
                self._intact.popitem(last=False)


def _chunks_cover(chunks: ChunkDigests, size: int) -> bool:
    return len(chunks.sha256) == -(-size // chunks.chunk_bytes)


def _read(store: BlobStore, ref: BlobRef, offset: int | None = None, length: int | None = None) -> bytes:
    try:
        return store.read(ref.blob_name, offset=offset, length=length, version_id=ref.version_id)
    except BlobNotFound as error:
        raise _missing(ref) from error


def _check(ref: BlobRef, data: bytes, digest: str, sealed: str, what: str) -> None:
    if digest != sealed:
        raise EvidenceTampered(
            f"{what} of {ref.blob_name}{_version(ref)} ({len(data)} bytes) hashes to {digest}, sealed as {sealed}",
            blob=ref.blob_name,
        )


def _missing(ref: BlobRef) -> EvidenceTampered:
    return EvidenceTampered(f"the sealed {ref.blob_name}{_version(ref)} is missing from storage", blob=ref.blob_name)


def _version(ref: BlobRef) -> str:
    return f" (version {ref.version_id})" if ref.version_id else ""
