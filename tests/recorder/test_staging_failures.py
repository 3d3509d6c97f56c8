"""A block stager that meets something other than storage being down (issue 21 follow-up 4).

`BlobStager._run` used to handle only `StorageUnavailable` and `SpillOverflow`; anything else — a `CaptureFenced`
from a store that cannot go on in another generation, or a defect — ended its task with "Task exception was never
retrieved": the capture was not failed, nobody was told until the call ended, and the blocks still waiting in
memory were lost with the capture. Now such a failure fails the capture at once (reported through the capture's
failure callback, logged with its traceback), and every block not yet staged is kept in the disk buffer, from which
the recorder stages it again (or keeps it, saying so, when its generation is fenced)."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devstack.testkit.audio import decode, speech, with_silence
from devstack.testkit.teams_platform import wait_until
from recorder_vm.capture.spill import SpillBuffer, SpilledBlock
from recorder_vm.capture.staging import BlobStager, PendingBlock
from recorder_vm.capture.storage import CaptureFenced, StorageHealth, StorageUnavailable
from tests.conftest import Azurite
from tests.recorder.capture_rig import SAMPLE_RATE, CaptureRig, Feeder, frames_of, now_ticks
from verbatim.evidence.blocks import BlockId
from verbatim.evidence.flac import parse_header
from verbatim.evidence.salvage import salvage_capture
from verbatim.platform.blobs import AzureBlobStore

BLOB = "captures/rec/g0/mixed.flac"


class RefusingStore:
    """An `AsyncRecordingStore` for this unit test of the stager: keeps blocks in memory and raises `error` from
    the `fail_at`-th block on."""

    def __init__(self, error: Exception, fail_at: int) -> None:
        self.error = error
        self.fail_at = fail_at
        self.staged: list[str] = []

    async def stage_block(self, blob_name: str, block_id: str, data: bytes) -> None:
        if len(self.staged) >= self.fail_at:
            raise self.error
        self.staged.append(block_id)

    async def commit_blocks(self, blob_name: str, block_ids: Any, metadata: dict[str, str]) -> None:
        raise AssertionError("not used here")

    async def write_manifest(self, blob_name: str, manifest: Any) -> None:
        raise AssertionError("not used here")

    async def committed_blocks(self, blob_name: str) -> list[str]:
        return []

    async def close(self) -> None:
        return None


def _blocks(count: int) -> list[PendingBlock]:
    blocks = []
    for sequence in range(count):
        data = f"block {sequence} ".encode() * 50
        blocks.append(PendingBlock(sequence, BlockId.for_content(sequence, data).encode(), data))
    return blocks


def _stager(store: Any, spill: Any, failures: list[str], health: StorageHealth | None = None) -> BlobStager:
    """A stager of BLOB with 4 requests in flight, reporting failures into `failures`."""
    return BlobStager(
        BLOB,
        store=store,
        spill=spill,
        health=health or StorageHealth(),
        in_flight=asyncio.Semaphore(4),
        on_staged=lambda _sequence, _data: None,
        on_failure=failures.append,
    )


def _stage(error: Exception, tmp_path: Path) -> tuple[RefusingStore, SpillBuffer, list[str], list[Any], int]:
    """Put 6 blocks through a stager whose store refuses from the third on; what was staged, the disk buffer, the
    failures reported, the exceptions the event loop was left with, and the blocks counted as staged."""
    store = RefusingStore(error, fail_at=2)
    spill = SpillBuffer(tmp_path / "spill", 1024**2)
    failures: list[str] = []
    unretrieved: list[Any] = []

    async def main() -> int:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
        stager = _stager(store, spill, failures)
        for block in _blocks(6):
            stager.put(block)
        await stager.settle(loop.time() + 5.0, loop.time)
        gc.collect()  # a task whose exception nobody retrieved reports it when it is collected
        await asyncio.sleep(0)
        return stager.staged

    staged = asyncio.run(main())
    gc.collect()
    return store, spill, failures, unretrieved, staged


@pytest.mark.parametrize(
    "error",
    [CaptureFenced(BLOB, "lease refused (LeaseIdMismatchWithBlobOperation)"), RuntimeError("a defect in a store")],
    ids=["fenced", "defect"],
)
def test_an_unexpected_staging_error_fails_the_capture_and_keeps_every_unstaged_block_on_disk(
    error: Exception, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="recorder_vm.capture.staging"):
        store, spill, failures, unretrieved, staged = _stage(error, tmp_path)

    assert unretrieved == []  # no "Task exception was never retrieved"
    assert len(store.staged) == staged == 2
    assert len(failures) == 1 and str(error) in failures[0], failures  # said at once, once, with its cause
    kept = spill.blocks(BLOB)
    assert [block.sequence for block in kept] == [2, 3, 4, 5]  # nothing waiting was dropped
    originals = _blocks(6)
    assert [block.read() for block in kept] == [(b.block_id, b.data) for b in originals[2:]]
    assert any(record.exc_info for record in caplog.records), "the failure is logged with its traceback"


class OutageStore(RefusingStore):
    """Refuses every block as unreachable storage while `down`."""

    def __init__(self) -> None:
        super().__init__(StorageUnavailable("connection refused"), fail_at=0)
        self.down = True

    async def stage_block(self, blob_name: str, block_id: str, data: bytes) -> None:
        if self.down:
            raise self.error
        self.staged.append(block_id)


def test_a_full_disk_buffer_fails_the_capture_once_and_every_block_it_held_is_staged_in_order_when_storage_returns(
    tmp_path: Path,
) -> None:
    """Chaos defect 4: the blocks a capture holds when its disk buffer overflows — spilled, or refused by the full
    buffer and kept in memory — are intact; the capture fails, but they still reach the blob, in order."""
    store = OutageStore()
    blocks = _blocks(6)  # 400 bytes each: the buffer holds two
    spill = SpillBuffer(tmp_path / "spill", 2 * 400 + 100)
    failures: list[str] = []

    async def main() -> tuple[BlobStager, list[int], int, bool]:
        loop = asyncio.get_running_loop()
        stager = _stager(store, spill, failures, StorageHealth(first_backoff=0.05, max_backoff=0.1, clock=loop.time))
        for block in blocks:
            stager.put(block)
        await stager.settle(loop.time() + 0.5, loop.time)  # storage down all along: two spilled, then full
        on_disk = [block.sequence for block in spill.blocks(BLOB)]
        during = (on_disk, stager.waiting, stager.broken)
        store.down = False
        await stager.settle(loop.time() + 10.0, loop.time)
        return stager, *during

    stager, on_disk, waiting, broken = asyncio.run(main())
    assert on_disk == [0, 1] and waiting == 6 and not broken
    assert len(failures) == 1 and "local buffer full" in failures[0], failures  # failed at once, once
    assert store.staged == [block.block_id for block in blocks]  # every block, in order
    assert stager.staged == 6 and stager.settled and spill.used_bytes == 0 and not spill.blocks(BLOB)


# --- the same on a real capture: a fence the capture cannot go on from --------------------------------------


@pytest.fixture
def rig(azurite_service: Azurite, tmp_path: Path) -> Iterator[CaptureRig]:
    rig = CaptureRig(azurite_service.connection_string, f"fence-{uuid.uuid4().hex[:10]}", tmp_path / "spill")
    yield rig
    rig.close()


def test_a_capture_fenced_without_a_next_generation_fails_at_once_and_loses_no_block(rig: CaptureRig) -> None:
    """The rig's capture writes through the worker's plain store (no generations, unlike a recorder's call), so
    the lifecycle's fence reaches the stager as `CaptureFenced`. The capture must fail when that happens — not
    wait for the call's end — and every block is then either in the fenced generation or in the disk buffer."""
    said = speech("Buy two hundred at the open and confirm the fill with the desk.")
    source = with_silence(said, 0.3, said, 0.3, said)
    samples = len(source) // 320 * 320
    source = source[:samples]
    start = now_ticks()
    frames = frames_of(source, start)
    capture = rig.capture()
    capture.start(allowed_from_ticks=start)
    feeder = Feeder([capture], [frames], threads=1, burst=5, pause=0.1)  # 50 frames/s: real time

    feeder.send(200)  # 4 s: a few blocks staged
    wait_until(lambda: capture.mixed is not None and capture.mixed.staged_blocks >= 2, timeout=30)
    mixed = capture.mixed
    assert mixed is not None
    captures = AzureBlobStore(rig.container())
    salvaged = salvage_capture(
        captures, recording_id=capture.recording_id, call_id=capture.call_id, recorder_instance="capture-rig"
    )
    assert salvaged.leases_broken >= 1

    feeder.send(len(frames))
    wait_until(lambda: rig.failures != [], timeout=30)  # at once, while the call goes on
    ((recording_id, stage, reason),) = rig.failures
    assert recording_id == capture.recording_id and stage == "storage" and "fenced" in reason, reason
    result = capture.stop(drain_seconds=5)
    assert not result.ok and result.failure is not None

    # Every block the capture cut is in the fenced generation (as salvage sealed it) or on disk, bit-exact.
    kept = [block.index for block in salvaged.mixed.blocks]
    spilled = rig.spill.blocks(mixed.blob_name)
    assert kept == list(range(len(kept)))
    assert [block.sequence for block in spilled] == list(range(len(kept), len(mixed.blocks)))
    fenced = rig.container().download_blob(mixed.blob_name).readall()
    header = fenced[: parse_header(fenced).header_length]
    rest = b"".join(block.read()[1] for block in spilled)
    audio = np.concatenate([decode(fenced), decode(header + rest)])
    assert spilled, "the block refused by the fence is kept"
    assert len(audio) == sum(block.samples for block in mixed.blocks) > 2 * SAMPLE_RATE
    assert np.array_equal(audio, source[: len(audio)])


class SlowDisk(SpillBuffer):
    """A disk buffer whose writes wait until `release` is set (a busy disk, a loaded machine)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        super().__init__(root, max_bytes)
        self.release = threading.Event()

    def put(self, blob_name: str, sequence: int, data: bytes) -> SpilledBlock:
        self.release.wait(timeout=30)
        return super().put(blob_name, sequence, data)


def test_a_stager_giving_up_is_settled_only_once_the_capture_is_told(tmp_path: Path) -> None:
    """`settle` (what a capture's stop waits for before it commits) returned as soon as the stager was broken, while
    its blocks were still being written to disk and before the capture was failed: the stop could then commit and
    describe the capture as complete. Seen under load (a slow disk write) in the fenced case above."""
    store = RefusingStore(CaptureFenced(BLOB, "lease refused (LeaseIdMismatchWithBlobOperation)"), fail_at=1)
    spill = SlowDisk(tmp_path / "spill", 1024**2)
    failures: list[str] = []

    async def main() -> tuple[list[str], list[int]]:
        loop = asyncio.get_running_loop()
        stager = _stager(store, spill, failures)
        for block in _blocks(3):
            stager.put(block)
        loop.call_later(0.5, spill.release.set)  # the disk answers after settle's own waits (0.1 s) have run out
        await stager.settle(loop.time() + 30.0, loop.time)
        return list(failures), [block.sequence for block in spill.blocks(BLOB)]

    told, on_disk = asyncio.run(main())
    assert len(told) == 1 and "fenced" in told[0], told
    assert on_disk == [1, 2]
