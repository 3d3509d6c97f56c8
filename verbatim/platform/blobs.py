"""Blob containers behind a small port (`BlobStore`): the operations the lifecycle and the evidence code use —
whole and ranged reads (of a version), streamed reads, writes, block lists, commits and listing — with the
Azure Storage adapter and an in-memory fake that keeps versions and staged blocks the way Azure does.

Immutability and legal holds are not part of the port: they are Azure-only requests (`verbatim.evidence.worm`)
over the adapter's `container`.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobLeaseClient, ContainerClient, ContentSettings


class BlobNotFound(LookupError):
    """No such blob (or no such version of it)."""


class BlobExists(RuntimeError):
    """A write that must not overwrite found the blob already there."""


@dataclass(frozen=True)
class Block:
    id: str
    size: int


@dataclass(frozen=True)
class BlobProperties:
    size: int
    etag: str  # changes whenever the content does
    version_id: str | None


@dataclass(frozen=True)
class StoredBlob:
    data: bytes
    version_id: str | None


class BlobStore(Protocol):
    """One blob container."""

    def read(
        self, name: str, *, offset: int | None = None, length: int | None = None, version_id: str | None = None
    ) -> bytes:
        """The blob's bytes (a range when `offset`/`length` are given); `BlobNotFound` when it is missing."""

    def read_versioned(self, name: str) -> StoredBlob:
        """The current bytes with the version id that holds them (None where the store keeps no versions)."""

    def chunks(self, name: str, *, version_id: str | None = None) -> Iterator[bytes]:
        """The blob's bytes in the order stored, a few MB at a time."""

    def version_of(self, name: str) -> str | None:
        """The current version id (None where the store keeps no versions); `BlobNotFound` when missing."""

    def properties(self, name: str, *, version_id: str | None = None) -> BlobProperties:
        """Size, ETag and version of the blob (of one version); `BlobNotFound` when it (or the version) is missing."""

    def write(
        self,
        name: str,
        data: bytes,
        *,
        overwrite: bool = True,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str | None:
        """Store `data` (with blob index `tags`); returns the new version id. `BlobExists` when `overwrite` is
        False and it exists."""

    def write_stream(
        self,
        name: str,
        stream: IO[bytes],
        length: int,
        *,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str | None:
        """Create the blob from `length` bytes of `stream` (never over an existing one: `BlobExists`); returns the
        new version id. For objects too large to hold in memory."""

    def break_lease(self, name: str) -> bool:
        """End any lease on the blob at once (a fence: whoever held it can no longer write); False when the blob
        has no lease to break or does not exist."""

    def set_tags(self, name: str, tags: Mapping[str, str], *, version_id: str | None = None) -> None:
        """Replace the blob index tags of the blob (of one version)."""

    def exists(self, name: str) -> bool: ...

    def delete(self, name: str) -> bool:
        """Delete the blob; False when there was none."""

    def names(self, prefix: str, *, uncommitted: bool = False) -> list[str]:
        """Names under `prefix`, sorted; with `uncommitted`, also blobs that have only staged blocks."""

    def blocks(self, name: str) -> tuple[list[Block], list[Block]]:
        """(committed, uncommitted) blocks; `BlobNotFound` when the blob has neither."""

    def stage_block(self, name: str, block_id: str, data: bytes) -> None: ...

    def stage_block_stream(self, name: str, block_id: str, chunks: Iterable[bytes], length: int) -> None:
        """Stage one block of exactly `length` bytes from `chunks`, streamed (never whole in memory)."""

    def commit_blocks(
        self,
        name: str,
        block_ids: Sequence[str],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str | None:
        """Make the blob the listed blocks (staged or already committed), in order; returns the version id."""


class ChunkReader(io.RawIOBase):
    """A read-only stream over `chunks`, which must add up to exactly `length` bytes: ValueError when they come to
    more, or end short (a block of another length than declared is never sent whole)."""

    def __init__(self, chunks: Iterable[bytes], length: int) -> None:
        self._chunks = iter(chunks)
        self._chunk = b""
        self._offset = 0  # into the current chunk: reads of a few KiB slice it, never copy what is left of it
        self._length = length
        self._read = 0

    def readable(self) -> bool:
        return True

    def __len__(self) -> int:  # HTTP clients send len() - tell() as the Content-Length (requests' super_len)
        return self._length

    def tell(self) -> int:  # without it requests takes the body for a pipe and sends it chunked (Azure: 400)
        return self._read

    def read(self, size: int | None = -1) -> bytes:
        wanted = self._length - self._read if size is None or size < 0 else min(size, self._length - self._read)
        parts: list[bytes] = []
        got = 0
        while got < wanted:
            if self._offset >= len(self._chunk):
                self._chunk, self._offset = next(self._chunks, b""), 0
                if not self._chunk:
                    raise ValueError(f"the block ended after {self._read + got} of its {self._length} bytes")
            take = min(wanted - got, len(self._chunk) - self._offset)
            parts.append(self._chunk[self._offset : self._offset + take])
            self._offset += take
            got += take
        self._read += got
        if self._read == self._length and (self._offset < len(self._chunk) or next(self._chunks, b"")):
            raise ValueError(f"the block has more than its {self._length} bytes")
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class AzureBlobStore:
    """`BlobStore` on an Azure Storage (or Azurite) blob container."""

    def __init__(self, container: ContainerClient) -> None:
        self.container = container

    @property
    def container_name(self) -> str:
        return str(self.container.container_name)

    def read(
        self, name: str, *, offset: int | None = None, length: int | None = None, version_id: str | None = None
    ) -> bytes:
        try:
            return bytes(
                self.container.get_blob_client(name).download_blob(offset, length, version_id=version_id).readall()
            )
        except ResourceNotFoundError as error:
            raise BlobNotFound(name) from error

    def read_versioned(self, name: str) -> StoredBlob:
        try:
            downloader = self.container.get_blob_client(name).download_blob()
            return StoredBlob(bytes(downloader.readall()), downloader.properties.version_id)
        except ResourceNotFoundError as error:
            raise BlobNotFound(name) from error

    def chunks(self, name: str, *, version_id: str | None = None) -> Iterator[bytes]:
        try:
            downloader = self.container.get_blob_client(name).download_blob(version_id=version_id)
        except ResourceNotFoundError as error:
            raise BlobNotFound(name) from error
        yield from downloader.chunks()

    def version_of(self, name: str) -> str | None:
        try:
            version: str | None = self.container.get_blob_client(name).get_blob_properties().version_id
        except ResourceNotFoundError as error:
            raise BlobNotFound(name) from error
        return version

    def properties(self, name: str, *, version_id: str | None = None) -> BlobProperties:
        try:
            found = self.container.get_blob_client(name).get_blob_properties(version_id=version_id)
        except ResourceNotFoundError as error:
            raise BlobNotFound(name) from error
        return BlobProperties(size=int(found.size), etag=str(found.etag), version_id=found.version_id)

    def write(
        self,
        name: str,
        data: bytes,
        *,
        overwrite: bool = True,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str | None:
        settings = ContentSettings(content_type=content_type) if content_type else None
        try:
            result = self.container.get_blob_client(name).upload_blob(
                data, overwrite=overwrite, content_settings=settings, tags=dict(tags) if tags else None
            )
        except ResourceExistsError as error:
            raise BlobExists(name) from error
        version: str | None = result.get("version_id")
        return version

    def write_stream(
        self,
        name: str,
        stream: IO[bytes],
        length: int,
        *,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str | None:
        settings = ContentSettings(content_type=content_type) if content_type else None
        try:
            result = self.container.get_blob_client(name).upload_blob(
                stream, length=length, overwrite=False, content_settings=settings, tags=dict(tags) if tags else None
            )
        except ResourceExistsError as error:
            raise BlobExists(name) from error
        version: str | None = result.get("version_id")
        return version

    def break_lease(self, name: str) -> bool:
        blob = self.container.get_blob_client(name)
        try:
            BlobLeaseClient(blob).break_lease(lease_break_period=0)
        except ResourceNotFoundError:
            return False
        except HttpResponseError as error:
            if error.status_code == 409:  # LeaseNotPresentWithLeaseOperation: nothing held it
                return False
            raise
        return True

    def set_tags(self, name: str, tags: Mapping[str, str], *, version_id: str | None = None) -> None:
        try:
            self.container.get_blob_client(name).set_blob_tags(dict(tags), version_id=version_id)
        except ResourceNotFoundError as error:
            raise BlobNotFound(name) from error

    def exists(self, name: str) -> bool:
        return bool(self.container.get_blob_client(name).exists())

    def delete(self, name: str) -> bool:
        try:
            self.container.delete_blob(name)
        except ResourceNotFoundError:
            return False
        return True

    def names(self, prefix: str, *, uncommitted: bool = False) -> list[str]:
        include = ["uncommittedblobs"] if uncommitted else None
        return sorted(blob.name for blob in self.container.list_blobs(name_starts_with=prefix, include=include))

    def blocks(self, name: str) -> tuple[list[Block], list[Block]]:
        try:
            committed, uncommitted = self.container.get_blob_client(name).get_block_list("all")
        except ResourceNotFoundError as error:
            raise BlobNotFound(name) from error
        return [Block(b.id, b.size) for b in committed], [Block(b.id, b.size) for b in uncommitted]

    def stage_block(self, name: str, block_id: str, data: bytes) -> None:
        self.container.get_blob_client(name).stage_block(block_id, data)

    def stage_block_stream(self, name: str, block_id: str, chunks: Iterable[bytes], length: int) -> None:
        # A file-like body of a known length: the SDK sends it as it reads it, with that Content-Length.
        self.container.get_blob_client(name).stage_block(block_id, ChunkReader(chunks, length), length=length)

    def commit_blocks(
        self,
        name: str,
        block_ids: Sequence[str],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str | None:
        result = self.container.get_blob_client(name).commit_block_list(
            [BlobBlock(block_id=block_id) for block_id in block_ids],
            content_settings=ContentSettings(content_type=content_type) if content_type else None,
            metadata=dict(metadata) if metadata else None,
        )
        version = result.get("version_id")
        return version if isinstance(version, str) else None


@dataclass
class _Blob:
    versions: list[tuple[str, bytes]] = field(default_factory=list)  # oldest first
    committed: list[tuple[str, bytes]] = field(default_factory=list)  # the current version's blocks
    staged: dict[str, bytes] = field(default_factory=dict)
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # by version id
    lease: str | None = None  # the active lease's id (Azure refuses writes that do not name it)


class LeaseLost(RuntimeError):
    """The fake's answer to a write that does not name the blob's active lease, or names a lease that is gone
    (Azure: 412 LeaseIdMissing / LeaseNotPresentWithBlobOperation)."""


class InMemoryBlobStore:
    """`BlobStore` in memory, for service-level tests: every write is a new version (as with versioning on in
    Azure), staged blocks stay uncommitted until a commit names them, and a commit drops the staged blocks it
    did not name (as Azure does). Leases are kept as Azure keeps them: a blob with an active lease refuses writes
    that do not name it, and a writer that names a lease that was broken is refused too (the recorder's fence);
    the port's own methods never name one, as the Function App holds none."""

    CHUNK = 4 * 1024 * 1024

    def __init__(self, container_name: str = "memory") -> None:
        self.container_name = container_name
        self._blobs: dict[str, _Blob] = {}
        self._lock = threading.Lock()

    def _current(self, name: str, version_id: str | None = None) -> bytes:
        blob = self._blobs.get(name)
        if blob is None or not blob.versions:
            raise BlobNotFound(name)
        if version_id is None:
            return blob.versions[-1][1]
        for version, data in blob.versions:
            if version == version_id:
                return data
        raise BlobNotFound(f"{name} version {version_id}")

    @staticmethod
    def _check_lease(name: str, blob: _Blob, lease_id: str | None) -> None:
        if blob.lease != lease_id:
            raise LeaseLost(f"{name}: lease {'missing' if lease_id is None else 'not held'}")

    def acquire_lease(self, name: str, lease_id: str) -> None:
        """Take an infinite lease (the fake's stand-in for the recorder's Lease Blob `acquire`)."""
        with self._lock:
            blob = self._blobs.setdefault(name, _Blob())
            if blob.lease not in (None, lease_id):
                raise LeaseLost(f"{name}: another lease is active")
            blob.lease = lease_id

    def break_lease(self, name: str) -> bool:
        with self._lock:
            blob = self._blobs.get(name)
            if blob is None or blob.lease is None:
                return False
            blob.lease = None
            return True

    def write_stream(
        self,
        name: str,
        stream: IO[bytes],
        length: int,
        *,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str | None:
        return self.write(name, stream.read(length), overwrite=False, content_type=content_type, tags=tags)

    def version_count(self, name: str) -> int:
        """How many versions the blob has had (the fake's own inspection: a sealed name is written once)."""
        with self._lock:
            blob = self._blobs.get(name)
            return len(blob.versions) if blob is not None else 0

    def _new_version(self, blob: _Blob, data: bytes) -> str:
        version = uuid.uuid4().hex
        blob.versions.append((version, data))
        return version

    def read(
        self, name: str, *, offset: int | None = None, length: int | None = None, version_id: str | None = None
    ) -> bytes:
        with self._lock:
            data = self._current(name, version_id)
        start = offset or 0
        return data[start : start + length] if length is not None else data[start:]

    def read_versioned(self, name: str) -> StoredBlob:
        with self._lock:
            blob = self._blobs.get(name)
            if blob is None or not blob.versions:
                raise BlobNotFound(name)
            version, data = blob.versions[-1]
        return StoredBlob(data, version)

    def chunks(self, name: str, *, version_id: str | None = None) -> Iterator[bytes]:
        data = self.read(name, version_id=version_id)
        for start in range(0, len(data), self.CHUNK):
            yield data[start : start + self.CHUNK]

    def version_of(self, name: str) -> str | None:
        return self.read_versioned(name).version_id

    def properties(self, name: str, *, version_id: str | None = None) -> BlobProperties:
        with self._lock:
            blob = self._blobs.get(name)
            if blob is None or not blob.versions:
                raise BlobNotFound(name)
            found = (
                blob.versions[-1]
                if version_id is None
                else next((v for v in blob.versions if v[0] == version_id), None)
            )
            if found is None:
                raise BlobNotFound(f"{name} version {version_id}")
        version, data = found
        return BlobProperties(size=len(data), etag=f'"{version}"', version_id=version)

    def write(
        self,
        name: str,
        data: bytes,
        *,
        overwrite: bool = True,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
        lease_id: str | None = None,
    ) -> str | None:
        with self._lock:
            blob = self._blobs.setdefault(name, _Blob())
            if blob.versions and not overwrite:
                raise BlobExists(name)
            self._check_lease(name, blob, lease_id)
            blob.committed, blob.staged = [], {}
            blob.content_type = content_type
            version = self._new_version(blob, bytes(data))
            blob.tags[version] = dict(tags or {})
            return version

    def set_tags(self, name: str, tags: Mapping[str, str], *, version_id: str | None = None) -> None:
        with self._lock:
            blob = self._blobs.get(name)
            if blob is None or not blob.versions:
                raise BlobNotFound(name)
            version = version_id or blob.versions[-1][0]
            if version not in {v for v, _ in blob.versions}:
                raise BlobNotFound(f"{name} version {version}")
            blob.tags[version] = dict(tags)

    def tags(self, name: str, version_id: str | None = None) -> dict[str, str]:
        """The index tags of the blob's current (or given) version (the fake's own inspection)."""
        with self._lock:
            blob = self._blobs.get(name)
            if blob is None or not blob.versions:
                raise BlobNotFound(name)
            return dict(blob.tags.get(version_id or blob.versions[-1][0], {}))

    def exists(self, name: str) -> bool:
        with self._lock:
            blob = self._blobs.get(name)
            return blob is not None and bool(blob.versions)

    def delete(self, name: str) -> bool:
        with self._lock:
            blob = self._blobs.get(name)
            if blob is not None:
                # Azure refuses to delete a blob with an active lease unless the request names it (412
                # LeaseIdMissing); the port's methods never name one, so a lease must be broken first.
                self._check_lease(name, blob, None)
            return self._blobs.pop(name, None) is not None

    def names(self, prefix: str, *, uncommitted: bool = False) -> list[str]:
        with self._lock:
            return sorted(
                name
                for name, blob in self._blobs.items()
                if name.startswith(prefix) and (blob.versions or (uncommitted and blob.staged))
            )

    def blocks(self, name: str) -> tuple[list[Block], list[Block]]:
        with self._lock:
            blob = self._blobs.get(name)
            if blob is None or not (blob.versions or blob.staged):
                raise BlobNotFound(name)
            committed = [Block(block_id, len(data)) for block_id, data in blob.committed]
            return committed, [Block(block_id, len(data)) for block_id, data in blob.staged.items()]

    def stage_block(self, name: str, block_id: str, data: bytes, *, lease_id: str | None = None) -> None:
        with self._lock:
            blob = self._blobs.setdefault(name, _Blob())
            self._check_lease(name, blob, lease_id)
            blob.staged[block_id] = bytes(data)

    def stage_block_stream(self, name: str, block_id: str, chunks: Iterable[bytes], length: int) -> None:
        self.stage_block(name, block_id, ChunkReader(chunks, length).read())

    def commit_blocks(
        self,
        name: str,
        block_ids: Sequence[str],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        lease_id: str | None = None,
    ) -> str | None:
        with self._lock:
            blob = self._blobs.setdefault(name, _Blob())
            self._check_lease(name, blob, lease_id)
            known = dict(blob.committed) | blob.staged
            missing = [block_id for block_id in block_ids if block_id not in known]
            if missing:
                raise ValueError(f"{name}: blocks {missing} were never staged")  # Azure: 400 InvalidBlockList
            blob.committed = [(block_id, known[block_id]) for block_id in block_ids]
            blob.staged = {}
            blob.content_type = content_type
            blob.metadata = dict(metadata or {})
            return self._new_version(blob, b"".join(data for _, data in blob.committed))
