"""Where the log's immutable files go: a write-once blob container behind a small port (`LogBlobs`), with
the Azure Storage adapter and an in-memory fake.

Every tile, entry bundle and checkpoint is written once (If-None-Match: *). Its content is a function of the
log, so finding the blob already there is fine when it holds the same bytes (another process, or an earlier
attempt, wrote it) and a fork alarm when it does not. In Azure the container is under a version-level
immutability policy, so nothing written can be changed or deleted until the policy allows; Azurite ignores
immutability, so this byte comparison is what stands in for it locally.
"""

from __future__ import annotations

import threading
from typing import Protocol

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings


class LogBlobMissing(LookupError):
    """No blob of that name."""


class LogBlobConflict(RuntimeError):
    """A blob that must be written once already holds other bytes: the stored log and the sequencing state
    disagree (a fork, or tampering). Nothing more is written until someone looks."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} already holds different bytes than the log says it must")
        self.name = name


class LogBlobs(Protocol):
    def read(self, name: str) -> bytes:
        """The blob's bytes; LogBlobMissing when there is none."""

    def create(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        """Write a new blob; False (nothing written) when one exists, whatever it holds."""

    def names(self, prefix: str) -> list[str]: ...


def write_once(blobs: LogBlobs, name: str, data: bytes, content_type: str = "application/octet-stream") -> None:
    """Write `data` as `name` unless it is there already with the same bytes; LogBlobConflict otherwise."""
    if blobs.create(name, data, content_type):
        return
    if blobs.read(name) != data:
        raise LogBlobConflict(name)


class AzureLogBlobs:
    """`LogBlobs` on an Azure Storage (or Azurite) container."""

    def __init__(self, container: ContainerClient, prefix: str = "") -> None:
        self.container = container
        self.prefix = prefix

    def read(self, name: str) -> bytes:
        try:
            return bytes(self.container.get_blob_client(self.prefix + name).download_blob().readall())
        except ResourceNotFoundError as error:
            raise LogBlobMissing(name) from error

    def create(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        try:
            self.container.get_blob_client(self.prefix + name).upload_blob(
                data, overwrite=False, content_settings=ContentSettings(content_type=content_type)
            )
        except ResourceExistsError:
            return False
        return True

    def names(self, prefix: str) -> list[str]:
        start = len(self.prefix)
        return sorted(b.name[start:] for b in self.container.list_blobs(name_starts_with=self.prefix + prefix))


class InMemoryLogBlobs:
    """`LogBlobs` in a dict. `blobs` is public so tests can tamper with the stored log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.blobs: dict[str, bytes] = {}

    def read(self, name: str) -> bytes:
        with self._lock:
            if name not in self.blobs:
                raise LogBlobMissing(name)
            return self.blobs[name]

    def create(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        with self._lock:
            if name in self.blobs:
                return False
            self.blobs[name] = bytes(data)
            return True

    def names(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(name for name in self.blobs if name.startswith(prefix))
