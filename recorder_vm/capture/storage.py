"""Where captures are written: block blobs in the recordings container, with short timeouts and no SDK
retries (the capture has its own: spill to disk and try again), and a process-wide view of whether storage
currently works so a hundred calls do not each wait for the same timeout.

Two clients of the same container: `AzureRecordingStore` (blocking) for the recorder's own checks and the
recovery of an earlier process's spilled blocks, and `AzureAsyncRecordingStore` (asyncio, aiohttp) for the
capture workers, which keep many blocks in flight on one thread: a staged block costs about half the CPU of
the blocking client's request, and no thread waits on the network.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.blob import BlobBlock, BlobServiceClient, ContainerClient, ContentSettings
from azure.storage.blob.aio import BlobClient as AsyncBlobClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient
from azure.storage.blob.aio import ContainerClient as AsyncContainerClient

from verbatim.contracts.recorder import CaptureManifest
from verbatim.evidence.capture import manifest_body, write_manifest
from verbatim.platform.settings import StorageConnection


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


class AsyncRecordingStore(Protocol):
    """What a capture worker writes through (on its own event loop)."""

    async def stage_block(self, blob_name: str, block_id: str, data: bytes) -> None: ...

    async def commit_blocks(self, blob_name: str, block_ids: Sequence[str], metadata: dict[str, str]) -> None: ...

    async def write_manifest(self, blob_name: str, manifest: CaptureManifest) -> None: ...

    async def close(self) -> None: ...


def _proxy_settings(account_url: str) -> dict[str, Any]:
    """The environment's proxy settings, read once. By default the SDK's aiohttp transport reads them (and
    ~/.netrc) again for every request, which doubles the CPU a staged block costs; here they are read when
    the client is built: HTTP(S)_PROXY, unless NO_PROXY exempts the storage account's host."""
    host = urllib.parse.urlsplit(account_url).hostname or ""
    proxies = {scheme: url for scheme, url in urllib.request.getproxies().items() if scheme in ("http", "https")}
    if not proxies or urllib.request.proxy_bypass(host):
        return {"use_env_settings": False}
    return {"use_env_settings": False, "proxies": proxies}


def async_blob_service(connection: StorageConnection) -> AsyncBlobServiceClient:
    """The asyncio client of a storage account: its connection string (Azurite), else its blob endpoint with
    the managed identity (a user-assigned one when a client id is set)."""
    if connection.connection_string is not None:
        secret = connection.connection_string.get_secret_value()
        url = AsyncBlobServiceClient.from_connection_string(secret).url
        return AsyncBlobServiceClient.from_connection_string(secret, **_proxy_settings(url))
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    credential = (
        ManagedIdentityCredential(client_id=connection.client_id)
        if connection.client_id
        else DefaultAzureCredential(exclude_interactive_browser_credential=True)
    )
    url = connection.service_uri("blob")
    return AsyncBlobServiceClient(url, credential=credential, **_proxy_settings(url))


class AzureAsyncRecordingStore:
    """`AsyncRecordingStore` on one container; build it on the event loop that will use it."""

    def __init__(self, service: AsyncBlobServiceClient, container: str, *, timeout_seconds: float = 5.0) -> None:
        self._service = service
        self._container: AsyncContainerClient = service.get_container_client(container)
        self._blobs: dict[str, AsyncBlobClient] = {}  # one client per blob being written (building one costs)
        self._options: dict[str, Any] = {
            "retry_total": 0,
            "connection_timeout": min(2.0, timeout_seconds),
            "read_timeout": timeout_seconds,
        }

    async def stage_block(self, blob_name: str, block_id: str, data: bytes) -> None:
        try:
            await self._blob(blob_name).stage_block(block_id, data, length=len(data), **self._options)
        except (AzureError, OSError, TimeoutError) as error:
            raise StorageUnavailable(f"staging a block of {blob_name}: {type(error).__name__}") from error

    async def commit_blocks(self, blob_name: str, block_ids: Sequence[str], metadata: dict[str, str]) -> None:
        try:
            await self._blob(blob_name).commit_block_list(
                [BlobBlock(block_id=block_id) for block_id in block_ids],
                content_settings=ContentSettings(content_type="audio/flac"),
                metadata=metadata,
                **self._options,
            )
        except (AzureError, OSError, TimeoutError) as error:
            raise StorageUnavailable(f"committing {blob_name}: {type(error).__name__}") from error
        self._blobs.pop(blob_name, None)  # the capture of this blob is over

    def _blob(self, blob_name: str) -> AsyncBlobClient:
        blob = self._blobs.get(blob_name)
        if blob is None:
            blob = self._blobs[blob_name] = self._container.get_blob_client(blob_name)
        return blob

    async def write_manifest(self, blob_name: str, manifest: CaptureManifest) -> None:
        try:
            await self._container.upload_blob(
                blob_name,
                manifest_body(manifest),
                overwrite=True,
                content_settings=ContentSettings(content_type="application/json"),
                **self._options,
            )
        except (AzureError, OSError, TimeoutError) as error:
            raise StorageUnavailable(f"writing {blob_name}: {type(error).__name__}") from error

    async def close(self) -> None:
        await self._container.close()
        await self._service.close()


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
        """A request failed. Requests that were already under way when storage went (many calls' blocks at
        once) count as one failure: the back-off grows only once per attempt window."""
        with self._lock:
            self.failures += 1
            now = self._clock()
            if self._backoff and now < self._retry_at:
                return
            self._backoff = min(self._max, self._backoff * 2 if self._backoff else self._first)
            self._retry_at = now + self._backoff

    def succeeded(self) -> None:
        with self._lock:
            self._backoff = 0.0
            self._retry_at = 0.0
