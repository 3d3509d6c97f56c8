"""The blocks of one block blob on their way to storage, staged strictly in sequence order.

A block goes from memory to the blob (`stage_block`); when a request fails, it and every block waiting behind it
go to the disk buffer instead, and are staged from there, still in order, once the blob's own back-off has passed
(and the process's, when several blobs' requests failed: `StorageHealth`). Staging
in order keeps what the heartbeat reports (`staged`: blocks 0..n-1 are on the blob) true at every moment, so a
crash loses only blocks not yet staged, and spilled blocks survive it on disk. Everything here runs on one
capture worker's event loop; only the disk writes go to threads.

A block the full disk buffer refuses fails the capture (bounded memory, said openly), but the stager is not broken
by it: the blocks it holds — on disk, and the refused ones still in memory — are intact, so it goes on staging
them, in order, once storage answers, and the capture's stop waits for that before it commits and describes what
was staged (a failure manifest that stopped short of blocks staged after it would leave audio that reached storage
out of the evidence: chaos defect 4, docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from recorder_vm.capture.spill import SpillBuffer, SpilledBlock, SpillOverflow
from recorder_vm.capture.storage import AsyncRecordingStore, CaptureFenced, StorageHealth, StorageUnavailable

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PendingBlock:
    """A block not yet staged: its bytes in memory, or the file holding them in the disk buffer."""

    sequence: int
    block_id: str
    data: bytes | None
    spilled: SpilledBlock | None = None


StagedCallback = Callable[[int, bytes], None]  # (sequence, bytes) of each block once staged, in order
FailureCallback = Callable[[str], None]  # the blob cannot be completed: the disk buffer is full or corrupt


class BlobStager:
    def __init__(
        self,
        blob_name: str,
        *,
        store: AsyncRecordingStore,
        spill: SpillBuffer,
        health: StorageHealth,
        in_flight: asyncio.Semaphore,
        on_staged: StagedCallback,
        on_failure: FailureCallback,
    ) -> None:
        self.blob_name = blob_name
        self._store = store
        self._spill = spill
        self._health = health
        self._backoff = health.blob_backoff()  # this blob's own: one failed request holds back only this blob
        self._in_flight = in_flight
        self._on_staged = on_staged
        self._on_failure = on_failure
        self._waiting: deque[PendingBlock] = deque()
        self._pump: asyncio.Task[None] | None = None
        self.staged = 0  # blocks 0..staged-1 are on the blob
        self.spilled = 0  # blocks waiting in the disk buffer
        self.broken = False  # nothing more can be staged (a block changed on disk, the capture fenced, a defect)
        self.overflowed = False  # the disk buffer refused a block: the capture failed; what waits is still staged

    @property
    def waiting(self) -> int:
        """Blocks not yet staged (in memory or on disk)."""
        return len(self._waiting)

    @property
    def settled(self) -> bool:
        return not self._waiting

    def put(self, block: PendingBlock) -> None:
        """Queue a block behind the others; staging starts at once unless storage is known to be down."""
        self._waiting.append(block)
        self.kick()

    def kick(self) -> None:
        """Start staging what waits, if nothing is under way (storage down: into the disk buffer)."""
        if self._pump is None and self._waiting and not self.broken:
            self._pump = asyncio.get_running_loop().create_task(self._run())

    async def settle(self, deadline: float, clock: Callable[[], float]) -> None:
        """Keep staging until nothing waits or `deadline` passes (storage down for longer)."""
        while self._waiting and not self.broken:
            self.kick()
            if clock() >= deadline:
                return
            pump = self._pump
            if pump is not None:
                await asyncio.wait([pump], timeout=max(0.0, min(0.1, deadline - clock())))
            if self._waiting and self._pump is None:  # nothing under way (in a back-off): wait a moment
                await asyncio.sleep(min(0.1, max(0.0, deadline - clock())))
        pump = self._pump
        if self.broken and pump is not None:
            # Giving up (`_give_up`): broken is said before its blocks are on disk and the capture is failed; what
            # settles next (a commit, a manifest) must see the failure, so wait for it to be said.
            await asyncio.wait([pump], timeout=max(0.0, deadline - clock()))

    async def _run(self) -> None:
        try:
            while self._waiting:
                if not (self._backoff.may_try() and self._health.may_try()):
                    if not self.overflowed:  # the buffer refused a block already: the rest waits in memory
                        await self._spill_waiting()
                    return
                block = self._waiting[0]
                if block.data is not None:
                    block_id, data = block.block_id, block.data
                else:
                    assert block.spilled is not None
                    block_id, data = await asyncio.to_thread(block.spilled.read)
                    if block_id != block.block_id:
                        self.broken = True
                        self._on_failure(f"block {block.sequence} of {self.blob_name} changed in the local buffer")
                        return
                try:
                    async with self._in_flight:
                        await self._store.stage_block(self.blob_name, block_id, data)
                except StorageUnavailable as error:
                    self._backoff.failed()
                    self._health.failed(self.blob_name)
                    if not self.overflowed:
                        log.warning(
                            "staging failed; spilling to the local buffer",
                            extra={"blob": self.blob_name, "error": str(error)},
                        )
                        await self._spill_waiting()
                    return
                self._backoff.succeeded()
                self._health.succeeded()
                self._waiting.popleft()
                if block.spilled is not None:
                    await asyncio.to_thread(self._spill.remove, block.spilled)
                    self.spilled -= 1
                    if not self.spilled:
                        log.info("spilled blocks staged; storage is back", extra={"blob": self.blob_name})
                self.staged += 1
                self._on_staged(block.sequence, data)
        except SpillOverflow as error:
            # The capture fails now (it may not grow in memory), but every block already cut is intact: the refused
            # one and those behind it stay in memory, the others on disk, and all are staged once storage answers.
            self.overflowed = True
            self._on_failure(f"storage unreachable and {error}")
        except CaptureFenced as fenced:
            # The store could not go on in another generation (a call's store does: recorder_vm.capture.
            # generations); nothing more may be written to this blob.
            log.error(
                "capture fenced and it cannot go on; keeping its unstaged blocks on disk",
                extra={"blob": self.blob_name, "reason": fenced.reason},
                exc_info=True,
            )
            await self._give_up(f"capture fenced by the lifecycle: {fenced}")
        except Exception as error:
            # A defect, not storage being down: fail the capture now and say why, rather than end this task with an
            # exception nobody retrieves while the capture goes on as if its blocks were being staged.
            log.exception(
                "staging failed unexpectedly; keeping the unstaged blocks on disk", extra={"blob": self.blob_name}
            )
            await self._give_up(f"staging failed: {type(error).__name__}: {error}")
        finally:
            self._pump = None

    async def _give_up(self, reason: str) -> None:
        """Stop staging this blob: every block not yet staged goes to the disk buffer (the recorder stages it from
        there later, or keeps it and says so when the generation is fenced), then the capture is failed."""
        self.broken = True
        try:
            await self._spill_waiting()
        except Exception as error:  # the disk buffer is full or failing too: the blocks stay in memory, and we say so
            log.exception("unstaged blocks could not be kept on disk", extra={"blob": self.blob_name})
            reason = f"{reason}; and {len(self._waiting)} blocks could not be kept on disk: {error}"
        self._on_failure(reason)

    async def _spill_waiting(self) -> None:
        """Move every block still only in memory to the disk buffer, in order (SpillOverflow propagates)."""
        index = 0
        while index < len(self._waiting):  # blocks queued while a write is under way are spilled too
            block = self._waiting[index]
            if block.data is not None:
                block.spilled = await asyncio.to_thread(self._spill.put, self.blob_name, block.sequence, block.data)
                block.data = None
                self.spilled += 1
            index += 1
