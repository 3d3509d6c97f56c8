"""Blob containers behind a small port (`BlobStore`): the operations the lifecycle and the evidence code use —
whole and ranged reads (of a version), streamed reads, writes, block lists, commits and listing — with the
Azure Storage adapter and an in-memory fake that keeps versions and staged blocks the way Azure does.

Immutability and legal holds are not part of the port: they are Azure-only requests (`verbatim.evidence.worm`)
over the adapter's `container`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, ContainerClient, ContentSettings


class BlobNotFound(LookupError):
    """No such blob (or no such version of it)."""


class BlobExists(RuntimeError):
    """A write that must not overwrite found the blob already there."""


@dataclass(frozen=True)
class Block:
    id: str
    size: int


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

    def commit_blocks(
        self,
        name: str,
        block_ids: Sequence[str],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str | None:
        """Make the blob the listed blocks (staged or already committed), in order; returns the version id."""


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


class InMemoryBlobStore:
    """`BlobStore` in memory, for service-level tests: every write is a new version (as with versioning on in
    Azure), staged blocks stay uncommitted until a commit names them, and a commit drops the staged blocks it
    did not name (as Azure does)."""

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

    def write(
        self,
        name: str,
        data: bytes,
        *,
        overwrite: bool = True,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str | None:
        with self._lock:
            blob = self._blobs.setdefault(name, _Blob())
            if blob.versions and not overwrite:
                raise BlobExists(name)
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

    def stage_block(self, name: str, block_id: str, data: bytes) -> None:
        with self._lock:
            self._blobs.setdefault(name, _Blob()).staged[block_id] = bytes(data)

    def commit_blocks(
        self,
        name: str,
        block_ids: Sequence[str],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str | None:
        with self._lock:
            blob = self._blobs.setdefault(name, _Blob())
            known = dict(blob.committed) | blob.staged
            missing = [block_id for block_id in block_ids if block_id not in known]
            if missing:
                raise ValueError(f"{name}: blocks {missing} were never staged")  # Azure: 400 InvalidBlockList
            blob.committed = [(block_id, known[block_id]) for block_id in block_ids]
            blob.staged = {}
            blob.content_type = content_type
            blob.metadata = dict(metadata or {})
            return self._new_version(blob, b"".join(data for _, data in blob.committed))
