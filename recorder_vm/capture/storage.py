"""Where captures are written: block blobs in the captures container (the only container the recorder may
write), with short timeouts and no SDK retries (the capture has its own: spill to disk and try again), and a
process-wide view of whether storage currently works so a hundred calls do not each wait for the same timeout.

Fencing: the recorder holds an infinite lease on every track blob it writes and names it on every Put Block and
Put Block List (azure-storage-blob's `stage_block` and `commit_block_list`: the lease is "Required if the blob
has an active lease"). When the lifecycle salvages a capture generation it believes dead, it first writes a
fence marker into the generation, then breaks those leases: from then on every write of ours to that generation
is refused (412), which this module reports as `CaptureFenced`, not as storage being down, so the capture goes
on in the next generation (recorder_vm.capture.generations) instead of writing over what is being sealed.

Two clients of the same container: `AzureRecordingStore` (blocking) for the recorder's own checks and the
recovery of an earlier process's spilled blocks, and `AzureAsyncRecordingStore` (asyncio, aiohttp) for the
capture workers, which keep many blocks in flight on one thread: a staged block costs about half the CPU of
the blocking client's request, and no thread waits on the network. Both hold and name the same lease.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobServiceClient, ContainerClient, ContentSettings
from azure.storage.blob.aio import BlobClient as AsyncBlobClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient
from azure.storage.blob.aio import ContainerClient as AsyncContainerClient

from verbatim.contracts.recorder import CaptureManifest
from verbatim.evidence.capture import manifest_body, write_manifest
from verbatim.evidence.names import FENCE_MARKER
from verbatim.platform.settings import StorageConnection


class StorageUnavailable(Exception):
    """A storage request failed (unreachable, timed out, or refused)."""


class CaptureFenced(Exception):
    """The lifecycle fenced this capture generation (it salvaged it): nothing more may be written to it."""

    def __init__(self, blob_name: str, reason: str) -> None:
        super().__init__(f"{blob_name}: {reason}")
        self.blob_name = blob_name
        self.reason = reason


# Error codes with which Azure refuses a write whose lease is gone or was never on the blob: the fence.
LEASE_LOST = frozenset(
    {
        "LeaseIdMissing",
        "LeaseIdMismatchWithBlobOperation",
        "LeaseNotPresentWithBlobOperation",
        "LeaseLost",
        "LeaseIdMismatchWithLeaseOperation",
        "LeaseAlreadyPresent",
        "LeaseIsBrokenAndCannotBeRenewed",
    }
)
LEASE_NAMESPACE = uuid.UUID("6b1d1c9e-55a4-4f0e-9a51-3c6f2d6c1e14")


def lease_id_for(instance_id: str, blob_name: str) -> str:
    """The lease this instance holds on a capture blob: the same after a restart of the process, so blocks left
    in the disk buffer can still be staged (unless the generation was fenced meanwhile)."""
    return str(uuid.uuid5(LEASE_NAMESPACE, f"{instance_id}\n{blob_name}"))


def fence_marker(blob_name: str) -> str:
    """The fence marker of the capture generation a track blob belongs to."""
    return f"{blob_name.rsplit('/', 1)[0]}/{FENCE_MARKER}"


def _code(error: HttpResponseError) -> str:
    """The storage error code (azure-storage-blob sets `error_code` on the errors it raises)."""
    code = getattr(error, "error_code", None)
    return str(getattr(code, "value", code) or "")  # a StorageErrorCode member, or the plain string


def _lease_error(error: HttpResponseError) -> bool:
    return error.status_code in (409, 412) and _code(error) in LEASE_LOST


class RecordingStore(Protocol):
    def stage_block(self, blob_name: str, block_id: str, data: bytes) -> None:
        """Stage a block; `CaptureFenced` when the generation was fenced, `StorageUnavailable` otherwise."""

    def commit_blocks(self, blob_name: str, block_ids: Sequence[str], metadata: dict[str, str]) -> None: ...

    def write_manifest(self, blob_name: str, manifest: CaptureManifest) -> None: ...

    def committed_blocks(self, blob_name: str) -> list[str]:
        """The blob's committed block ids, in order (what a salvage kept)."""
        ...

    def check(self) -> None:
        """Raise `StorageUnavailable` unless the container answers."""
        ...


class AzureRecordingStore:
    """`RecordingStore` on the captures container of the recordings account, holding a lease on each blob."""

    def __init__(
        self,
        service: BlobServiceClient,
        container: str,
        *,
        timeout_seconds: float = 5.0,
        instance_id: str = "recorder",
    ) -> None:
        self._container: ContainerClient = service.get_container_client(container)
        self._options: dict[str, Any] = {
            "retry_total": 0,
            "connection_timeout": min(2.0, timeout_seconds),
            "read_timeout": timeout_seconds,
        }
        self._instance = instance_id
        self._leased: set[str] = set()
        self._lock = threading.Lock()

    def ensure_container(self) -> None:
        try:
            self._container.create_container(**self._options)
        except ResourceExistsError:
            pass
        except AzureError as error:
            raise StorageUnavailable(f"captures container: {type(error).__name__}") from error

    def _lease(self, blob_name: str) -> str:
        """Our lease on the blob, taken on first use: create the blob (empty, never over one), take an infinite
        lease, then look for the generation's fence marker. The lifecycle writes the marker before it lists the
        generation's blobs and breaks their leases, so either it sees this blob or we see the marker."""
        lease_id = lease_id_for(self._instance, blob_name)
        with self._lock:
            if blob_name in self._leased:
                return lease_id
        blob = self._container.get_blob_client(blob_name)
        try:
            blob.upload_blob(
                b"", overwrite=False, content_settings=ContentSettings(content_type="audio/flac"), **self._options
            )
        except ResourceExistsError:
            pass  # created earlier (by this instance, before a restart): the lease decides
        except HttpResponseError as error:
            if _lease_error(error):  # exists and leased by someone else
                raise CaptureFenced(blob_name, f"blob refused ({_code(error)})") from error
            raise StorageUnavailable(f"creating {blob_name}: {type(error).__name__}") from error
        except AzureError as error:
            raise StorageUnavailable(f"creating {blob_name}: {type(error).__name__}") from error
        try:
            blob.acquire_lease(lease_duration=-1, lease_id=lease_id, **self._options)
            fenced = self._container.get_blob_client(fence_marker(blob_name)).exists(**self._options)
        except HttpResponseError as error:
            if _lease_error(error):
                raise CaptureFenced(blob_name, f"lease refused ({_code(error)})") from error
            raise StorageUnavailable(f"leasing {blob_name}: {type(error).__name__}") from error
        except AzureError as error:
            raise StorageUnavailable(f"leasing {blob_name}: {type(error).__name__}") from error
        if fenced:
            raise CaptureFenced(blob_name, "the generation is fenced")
        with self._lock:
            self._leased.add(blob_name)
        return lease_id

    def stage_block(self, blob_name: str, block_id: str, data: bytes) -> None:
        lease = self._lease(blob_name)
        try:
            self._container.get_blob_client(blob_name).stage_block(
                block_id, data, length=len(data), lease=lease, **self._options
            )
        except HttpResponseError as error:
            if _lease_error(error):
                raise CaptureFenced(blob_name, f"staging refused ({_code(error)})") from error
            raise StorageUnavailable(f"staging a block of {blob_name}: {type(error).__name__}") from error
        except AzureError as error:
            raise StorageUnavailable(f"staging a block of {blob_name}: {type(error).__name__}") from error

    def commit_blocks(self, blob_name: str, block_ids: Sequence[str], metadata: dict[str, str]) -> None:
        lease = self._lease(blob_name)
        try:
            self._container.get_blob_client(blob_name).commit_block_list(
                [BlobBlock(block_id=block_id) for block_id in block_ids],
                content_settings=ContentSettings(content_type="audio/flac"),
                metadata=metadata,
                lease=lease,
                **self._options,
            )
        except HttpResponseError as error:
            if _lease_error(error):
                raise CaptureFenced(blob_name, f"commit refused ({_code(error)})") from error
            raise StorageUnavailable(f"committing {blob_name}: {type(error).__name__}") from error
        except AzureError as error:
            raise StorageUnavailable(f"committing {blob_name}: {type(error).__name__}") from error

    def committed_blocks(self, blob_name: str) -> list[str]:
        try:
            committed, _ = self._container.get_blob_client(blob_name).get_block_list("committed", **self._options)
        except ResourceNotFoundError:
            return []
        except AzureError as error:
            raise StorageUnavailable(f"block list of {blob_name}: {type(error).__name__}") from error
        return [str(block.id) for block in committed]

    def write_manifest(self, blob_name: str, manifest: CaptureManifest) -> None:
        try:
            write_manifest(self._container, blob_name, manifest, **self._options)
        except AzureError as error:
            raise StorageUnavailable(f"writing {blob_name}: {type(error).__name__}") from error

    def check(self) -> None:
        try:
            self._container.get_container_properties(**self._options)
        except AzureError as error:
            raise StorageUnavailable(f"captures container: {type(error).__name__}") from error


class AsyncRecordingStore(Protocol):
    """What a capture worker writes through (on its own event loop)."""

    async def stage_block(self, blob_name: str, block_id: str, data: bytes) -> None:
        """Stage a block; `CaptureFenced` when the generation was fenced, `StorageUnavailable` otherwise."""

    async def commit_blocks(self, blob_name: str, block_ids: Sequence[str], metadata: dict[str, str]) -> None: ...

    async def write_manifest(self, blob_name: str, manifest: CaptureManifest) -> None: ...

    async def committed_blocks(self, blob_name: str) -> list[str]:
        """The blob's committed block ids, in order (what a salvage kept)."""
        ...

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
    """`AsyncRecordingStore` on the captures container; build it on the event loop that will use it. Holds and
    names the same lease on each blob as `AzureRecordingStore` (see the module docstring: the fence)."""

    def __init__(
        self,
        service: AsyncBlobServiceClient,
        container: str,
        *,
        timeout_seconds: float = 5.0,
        instance_id: str = "recorder",
    ) -> None:
        self._service = service
        self._container: AsyncContainerClient = service.get_container_client(container)
        self._blobs: dict[str, AsyncBlobClient] = {}  # one client per blob being written (building one costs)
        self._options: dict[str, Any] = {
            "retry_total": 0,
            "connection_timeout": min(2.0, timeout_seconds),
            "read_timeout": timeout_seconds,
        }
        self._instance = instance_id
        self._leased: set[str] = set()

    async def _lease(self, blob_name: str) -> str:
        """As `AzureRecordingStore._lease`: create the blob empty (never over one), take an infinite lease, then
        look for the generation's fence marker."""
        lease_id = lease_id_for(self._instance, blob_name)
        if blob_name in self._leased:
            return lease_id
        blob = self._blob(blob_name)
        try:
            await blob.upload_blob(
                b"", overwrite=False, content_settings=ContentSettings(content_type="audio/flac"), **self._options
            )
        except ResourceExistsError:
            pass  # created earlier (by this instance, before a restart): the lease decides
        except HttpResponseError as error:
            if _lease_error(error):
                raise CaptureFenced(blob_name, f"blob refused ({_code(error)})") from error
            raise StorageUnavailable(f"creating {blob_name}: {type(error).__name__}") from error
        except (AzureError, OSError, TimeoutError) as error:
            raise StorageUnavailable(f"creating {blob_name}: {type(error).__name__}") from error
        try:
            await blob.acquire_lease(lease_duration=-1, lease_id=lease_id, **self._options)
            fenced = await self._container.get_blob_client(fence_marker(blob_name)).exists(**self._options)
        except HttpResponseError as error:
            if _lease_error(error):
                raise CaptureFenced(blob_name, f"lease refused ({_code(error)})") from error
            raise StorageUnavailable(f"leasing {blob_name}: {type(error).__name__}") from error
        except (AzureError, OSError, TimeoutError) as error:
            raise StorageUnavailable(f"leasing {blob_name}: {type(error).__name__}") from error
        if fenced:
            raise CaptureFenced(blob_name, "the generation is fenced")
        self._leased.add(blob_name)
        return lease_id

    async def stage_block(self, blob_name: str, block_id: str, data: bytes) -> None:
        lease = await self._lease(blob_name)
        try:
            await self._blob(blob_name).stage_block(block_id, data, length=len(data), lease=lease, **self._options)
        except HttpResponseError as error:
            if _lease_error(error):
                raise CaptureFenced(blob_name, f"staging refused ({_code(error)})") from error
            raise StorageUnavailable(f"staging a block of {blob_name}: {type(error).__name__}") from error
        except (AzureError, OSError, TimeoutError) as error:
            raise StorageUnavailable(f"staging a block of {blob_name}: {type(error).__name__}") from error

    async def commit_blocks(self, blob_name: str, block_ids: Sequence[str], metadata: dict[str, str]) -> None:
        lease = await self._lease(blob_name)
        try:
            await self._blob(blob_name).commit_block_list(
                [BlobBlock(block_id=block_id) for block_id in block_ids],
                content_settings=ContentSettings(content_type="audio/flac"),
                metadata=metadata,
                lease=lease,
                **self._options,
            )
        except HttpResponseError as error:
            if _lease_error(error):
                raise CaptureFenced(blob_name, f"commit refused ({_code(error)})") from error
            raise StorageUnavailable(f"committing {blob_name}: {type(error).__name__}") from error
        except (AzureError, OSError, TimeoutError) as error:
            raise StorageUnavailable(f"committing {blob_name}: {type(error).__name__}") from error
        self._blobs.pop(blob_name, None)  # the capture of this blob is over

    async def committed_blocks(self, blob_name: str) -> list[str]:
        try:
            committed, _ = await self._blob(blob_name).get_block_list("committed", **self._options)
        except ResourceNotFoundError:
            return []
        except (AzureError, OSError, TimeoutError) as error:
            raise StorageUnavailable(f"block list of {blob_name}: {type(error).__name__}") from error
        return [str(block.id) for block in committed]

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


class Backoff:
    """When to try again after failed requests: `first_backoff`, doubling up to `max_backoff`; a success ends it.
    Requests that were already under way when the failure came (many blocks at once) count as one: the back-off
    grows only once per attempt window."""

    def __init__(self, *, first_backoff: float, max_backoff: float, clock: Callable[[], float]) -> None:
        self._first = first_backoff
        self._max = max_backoff
        self._clock = clock
        self._backoff = 0.0
        self._retry_at = 0.0

    @property
    def active(self) -> bool:
        return self._backoff != 0.0

    def may_try(self) -> bool:
        return self._backoff == 0.0 or self._clock() >= self._retry_at

    def failed(self) -> None:
        now = self._clock()
        if self._backoff and now < self._retry_at:
            return
        self._backoff = min(self._max, self._backoff * 2 if self._backoff else self._first)
        self._retry_at = now + self._backoff

    def succeeded(self) -> None:
        self._backoff = 0.0
        self._retry_at = 0.0


class StorageHealth:
    """Whether storage works, as far as the captures can tell (shared by all of them), and when to try again after
    it did not.

    One failed request says little about storage: a request that timed out behind its own worker's long pass, one
    slow answer of a busy account. So the blob it was for backs off on its own (`blob_backoff`, kept by the blob's
    stager) and the other calls go on staging. Storage is taken to be failing when requests of `outage_blobs`
    different blobs have failed with no request succeeding in between: then nothing is sent until the process's
    back-off has passed, and every capture keeps its new blocks in the disk buffer meanwhile, so a hundred calls do
    not each wait for the same timeout."""

    def __init__(
        self,
        *,
        first_backoff: float = 0.5,
        max_backoff: float = 10.0,
        outage_blobs: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._first = first_backoff
        self._max = max_backoff
        self._clock = clock
        self._outage_blobs = outage_blobs
        self._lock = threading.Lock()
        self._backoff = Backoff(first_backoff=first_backoff, max_backoff=max_backoff, clock=clock)
        self._failing: set[str] = set()  # blobs whose requests failed since a request last succeeded
        self.failures = 0  # failed requests, all blobs
        self.outages = 0  # times the failures of several blobs put the process into its back-off

    @property
    def up(self) -> bool:
        return not self._backoff.active

    def may_try(self) -> bool:
        return self._backoff.may_try()

    def blob_backoff(self) -> Backoff:
        """A back-off of one blob's own (same timing), for the stager of that blob."""
        return Backoff(first_backoff=self._first, max_backoff=self._max, clock=self._clock)

    def failed(self, blob_name: str) -> None:
        """A request for `blob_name` failed: the process backs off once several blobs' requests have."""
        with self._lock:
            self.failures += 1
            self._failing.add(blob_name)
            if len(self._failing) >= self._outage_blobs:
                if not self._backoff.active:
                    self.outages += 1
                self._backoff.failed()

    def succeeded(self) -> None:
        with self._lock:
            self._failing.clear()
            self._backoff.succeeded()
