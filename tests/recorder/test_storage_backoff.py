"""One storage request that failed is not storage failing (issue 22, recorder capacity).

A capture worker's stagers share the process's view of storage (`StorageHealth`): while it is in its back-off, no
stager sends a request and every new block goes to the disk buffer, so a hundred calls do not each wait for the same
timeout when storage is down. That view used to go into its back-off on the first failed request: at 400 calls one
staging request timed out behind a busy worker (Azurite had answered) and every call's next blocks went to disk and
were staged again from there later — work that fed the backlog that caused the timeout. Now the blob whose request
failed backs off on its own, and the process's view goes into its back-off only on evidence that storage itself
fails: requests of several different blobs failed with no success in between.

Real Azurite; the failure is injected by a store that wraps the real one (as the other staging tests' stores do)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

from recorder_vm.capture.spill import SpillBuffer
from recorder_vm.capture.staging import BlobStager, PendingBlock
from recorder_vm.capture.storage import (
    AzureAsyncRecordingStore,
    AzureRecordingStore,
    StorageHealth,
    StorageUnavailable,
)
from tests.conftest import Azurite
from verbatim.evidence.blocks import BlockId

BLOBS = [f"captures/rec-{n}/g0/mixed.flac" for n in range(4)]


class FailingRequests:
    """The real store, except that a request of a blob in `failing` fails as a timed-out one does (each such blob's
    next request only, or all of them while `down`)."""

    def __init__(self, store: AzureAsyncRecordingStore, failing: set[str]) -> None:
        self.store = store
        self.failing = set(failing)
        self.down = False
        self.requests: list[str] = []  # blob of every request that reached the store, in order

    async def stage_block(self, blob_name: str, block_id: str, data: bytes) -> None:
        self.requests.append(blob_name)
        if self.down or blob_name in self.failing:
            self.failing.discard(blob_name)
            raise StorageUnavailable(f"staging a block of {blob_name}: ServiceRequestTimeoutError")
        await self.store.stage_block(blob_name, block_id, data)

    async def commit_blocks(self, blob_name: str, block_ids: Any, metadata: dict[str, str]) -> None:
        raise AssertionError("not used here")

    async def write_manifest(self, blob_name: str, manifest: Any) -> None:
        raise AssertionError("not used here")

    async def committed_blocks(self, blob_name: str) -> list[str]:
        return await self.store.committed_blocks(blob_name)

    async def close(self) -> None:
        await self.store.close()


def _block(blob: str, sequence: int) -> PendingBlock:
    data = f"{blob} block {sequence} ".encode() * 40
    return PendingBlock(sequence, BlockId.for_content(sequence, data).encode(), data)


@pytest.fixture
def container(azurite_service: Azurite) -> Iterator[str]:
    name = f"backoff-{uuid.uuid4().hex[:12]}"
    service = BlobServiceClient.from_connection_string(azurite_service.connection_string)
    AzureRecordingStore(service, name).ensure_container()
    yield name
    service.delete_container(name)


def _stagers(
    store: FailingRequests, spill: SpillBuffer, health: StorageHealth, staged: dict[str, list[int]]
) -> dict[str, BlobStager]:
    in_flight = asyncio.Semaphore(16)
    return {
        blob: BlobStager(
            blob,
            store=store,  # type: ignore[arg-type]  # an AsyncRecordingStore by shape
            spill=spill,
            health=health,
            in_flight=in_flight,
            on_staged=lambda sequence, _data, blob=blob: staged[blob].append(sequence),  # type: ignore[misc]
            on_failure=lambda reason: pytest.fail(reason),
        )
        for blob in BLOBS
    }


async def _until_idle(stagers: dict[str, BlobStager]) -> None:
    """Let every stager's request under way finish (nothing here waits on a clock)."""
    while pumps := [stager._pump for stager in stagers.values() if stager._pump is not None]:
        await asyncio.wait(pumps)


def test_one_timed_out_request_backs_off_its_own_blob_and_the_other_calls_go_on_staging(
    azurite_service: Azurite, container: str, tmp_path: Path
) -> None:
    spill = SpillBuffer(tmp_path / "spill", 1024**2)
    staged: dict[str, list[int]] = {blob: [] for blob in BLOBS}
    failing = BLOBS[0]

    async def main() -> tuple[dict[str, list[int]], list[str], list[int], list[str]]:
        loop = asyncio.get_running_loop()
        store = FailingRequests(
            AzureAsyncRecordingStore(
                AsyncBlobServiceClient.from_connection_string(azurite_service.connection_string), container
            ),
            {failing},
        )
        # A back-off far longer than the test: whatever waits for it is still waiting at the end.
        health = StorageHealth(first_backoff=600.0, max_backoff=600.0, clock=loop.time)
        stagers = _stagers(store, spill, health, staged)
        stagers[failing].put(_block(failing, 0))
        await _until_idle(stagers)  # its request timed out
        for sequence in range(3):
            for blob in BLOBS:
                if sequence or blob != failing:
                    stagers[blob].put(_block(blob, sequence))
            await _until_idle(stagers)
        on_disk = {blob: [block.sequence for block in spill.blocks(blob)] for blob in BLOBS}
        requests = list(store.requests)
        committed = [len(await store.committed_blocks(blob)) for blob in BLOBS]
        await store.close()
        return on_disk, requests, committed, [blob for blob in BLOBS if stagers[blob].staged]

    on_disk, requests, _, staging = asyncio.run(main())

    # The blob whose request failed keeps its blocks on disk until its own back-off has passed ...
    assert on_disk[failing] == [0, 1, 2]
    assert requests.count(failing) == 1
    assert staged[failing] == []
    # ... and the other calls' blocks went to storage as they came, none of them through the disk buffer.
    for blob in BLOBS[1:]:
        assert on_disk[blob] == [], blob
        assert staged[blob] == [0, 1, 2], blob
    assert staging == BLOBS[1:]


def test_failures_of_several_blobs_put_every_capture_in_the_back_off(
    azurite_service: Azurite, container: str, tmp_path: Path
) -> None:
    """Storage itself failing: after requests of three different blobs failed with nothing succeeding between them,
    the other blobs' blocks go to the disk buffer without a request of their own (no call waits for the timeout)."""
    spill = SpillBuffer(tmp_path / "spill", 1024**2)
    staged: dict[str, list[int]] = {blob: [] for blob in BLOBS}

    async def main() -> tuple[dict[str, list[int]], list[str]]:
        loop = asyncio.get_running_loop()
        store = FailingRequests(
            AzureAsyncRecordingStore(
                AsyncBlobServiceClient.from_connection_string(azurite_service.connection_string), container
            ),
            set(),
        )
        store.down = True
        health = StorageHealth(first_backoff=600.0, max_backoff=600.0, clock=loop.time)
        stagers = _stagers(store, spill, health, staged)
        for blob in BLOBS[:3]:
            stagers[blob].put(_block(blob, 0))
            await _until_idle(stagers)
        stagers[BLOBS[3]].put(_block(BLOBS[3], 0))
        await _until_idle(stagers)
        on_disk = {blob: [block.sequence for block in spill.blocks(blob)] for blob in BLOBS}
        await store.close()
        return on_disk, list(store.requests)

    on_disk, requests = asyncio.run(main())
    assert requests == BLOBS[:3]  # the fourth blob sent nothing
    assert all(on_disk[blob] == [0] for blob in BLOBS)
    assert all(staged[blob] == [] for blob in BLOBS)
