"""Where captures are written: block blobs in the recordings container, with short timeouts and no SDK
retries (the capture has its own: spill to disk and try again), and a process-wide view of whether storage
currently works so a hundred calls do not each wait for the same timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.blob import BlobBlock, BlobServiceClient, ContainerClient, ContentSettings

from verbatim.contracts.recorder import CaptureManifest
from verbatim.evidence.capture import write_manifest


class StorageUnavailable(Exception):
    """A storage request failed (unreachable, timed out, or refused)."""


class RecordingStore(Protocol):
    def stage_block(self, blob_name: str, block_id: str, data: bytes) -> None: ...

    def commit_blocks(self, blob_name: str, block_ids: Sequence[str], metadata: dict[str, str]) -> None: ...

    def write_manifest(self, blob_name: str, manifest: CaptureManifest) -> None: ...

    def check(self) -> None:
        """Raise `StorageUnavailable` unless the container answers."""
        ...


class AzureRecordingStore:
    """`RecordingStore` on one container of the recordings account."""

    def __init__(self, service: BlobServiceClient, container: str, *, timeout_seconds: float = 5.0) -> None:
        self._container: ContainerClient = service.get_container_client(container)
        self._options: dict[str, Any] = {
            "retry_total": 0,
            "connection_timeout": min(2.0, timeout_seconds),
            "read_timeout": timeout_seconds,
        }

    def ensure_container(self) -> None:
        try:
            self._container.create_container(**self._options)
        except ResourceExistsError:
            pass
        except AzureError as error:
            raise StorageUnavailable(f"recordings container: {type(error).__name__}") from error

    def stage_block(self, blob_name: str, block_id: str, data: bytes) -> None:
        try:
            self._container.get_blob_client(blob_name).stage_block(block_id, data, length=len(data), **self._options)
        except AzureError as error:
            raise StorageUnavailable(f"staging a block of {blob_name}: {type(error).__name__}") from error

    def commit_blocks(self, blob_name: str, block_ids: Sequence[str], metadata: dict[str, str]) -> None:
        try:
            self._container.get_blob_client(blob_name).commit_block_list(
                [BlobBlock(block_id=block_id) for block_id in block_ids],
                content_settings=ContentSettings(content_type="audio/flac"),
                metadata=metadata,
                **self._options,
            )
        except AzureError as error:
            raise StorageUnavailable(f"committing {blob_name}: {type(error).__name__}") from error

    def write_manifest(self, blob_name: str, manifest: CaptureManifest) -> None:
        try:
            write_manifest(self._container, blob_name, manifest, **self._options)
        except AzureError as error:
            raise StorageUnavailable(f"writing {blob_name}: {type(error).__name__}") from error

    def check(self) -> None:
        try:
            self._container.get_container_properties(**self._options)
        except AzureError as error:
            raise StorageUnavailable(f"recordings container: {type(error).__name__}") from error


class StorageHealth:
    """Whether storage worked last time, and when to try again after it did not (shared by all captures)."""

    def __init__(
        self, *, first_backoff: float = 0.5, max_backoff: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._first = first_backoff
        self._max = max_backoff
        self._clock = clock
        self._lock = threading.Lock()
        self._backoff = 0.0
        self._retry_at = 0.0
        self.failures = 0

    @property
    def up(self) -> bool:
        return self._backoff == 0.0

    def may_try(self) -> bool:
        return self._backoff == 0.0 or self._clock() >= self._retry_at

    def failed(self) -> None:
        with self._lock:
            self.failures += 1
            self._backoff = min(self._max, self._backoff * 2 if self._backoff else self._first)
            self._retry_at = self._clock() + self._backoff

    def succeeded(self) -> None:
        with self._lock:
            self._backoff = 0.0
            self._retry_at = 0.0
