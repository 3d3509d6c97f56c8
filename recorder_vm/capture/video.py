"""One video stream of a capture (a camera on a video socket, or the screen share on the VBSS socket): H.264 access
units in, exactly as received, out as hashed blocks of one block blob through the track's `BlobStager`.

Nothing is decoded or re-encoded: each access unit is written after a timestamp SEI NAL unit
(`verbatim.evidence.h264`), so the blob is a playable H.264 byte stream that also says when each frame was shown,
and a prefix of it (what a crash leaves) still does. A block holds the whole access units received since the last
one and is cut every `block_seconds` (as audio's are), so a crash loses at most the last block; each block is named
by its sequence and SHA-256 (`verbatim.evidence.blocks`) like audio's, and the same stager, disk spill, fencing and
salvage apply.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from recorder_vm.capture.staging import BlobStager, PendingBlock
from recorder_vm.capture.track import CommitPoint
from recorder_vm.media.base import VideoFrame
from verbatim.contracts.recorder import CaptureVideoBlock, CaptureVideoTrack, VideoKind
from verbatim.evidence.blocks import BlockId
from verbatim.evidence.h264 import is_key_frame, stamped

MAX_BLOCK_BYTES = 4 * 1024 * 1024  # Azure accepts far larger blocks; this keeps one block's loss small
VideoStagerFactory = Callable[[str, "VideoTrackWriter"], BlobStager]


class VideoTrackWriter:
    def __init__(
        self,
        *,
        track: str,
        kind: VideoKind,
        source_id: int,
        participant_id: str | None,
        blob_name: str,
        stager: VideoStagerFactory,
        block_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.track = track
        self.kind: VideoKind = kind
        self.source_id = source_id
        self.participant_id = participant_id
        self.blob_name = blob_name
        self._block_seconds = block_seconds
        self._clock = clock
        self._pending: list[bytes] = []  # stamped access units not yet in a block
        self._pending_bytes = 0
        self._pending_ticks: list[int] = []
        self._pending_keys = 0
        self._last_cut = clock()
        self._hash = hashlib.sha256()
        self._bytes = 0
        self._units = 0
        self._staged_hash: Any = hashlib.sha256()
        self._boundaries: dict[int, Any] = {}
        self._staged_bytes = 0
        self.width = 0
        self.height = 0
        self.blocks: list[CaptureVideoBlock] = []
        self.finished = False
        self.stager = stager(blob_name, self)

    def add(self, frames: list[VideoFrame]) -> None:
        """Add a batch of this stream's access units, in arrival order."""
        for frame in frames:
            unit = stamped(frame.data, frame.timestamp_ticks)
            self._pending.append(unit)
            self._pending_bytes += len(unit)
            self._pending_ticks.append(frame.timestamp_ticks)
            self._pending_keys += is_key_frame(frame.data)
            if frame.width:
                self.width, self.height = frame.width, frame.height
            if self._pending_bytes >= MAX_BLOCK_BYTES:
                self.cut()

    def due(self, now: float) -> bool:
        return bool(self._pending) and now - self._last_cut >= self._block_seconds

    def cut(self) -> None:
        """Make a block of every access unit received since the last one."""
        self._last_cut = self._clock()
        if not self._pending:
            return
        data = b"".join(self._pending)
        sequence = len(self.blocks)
        block_id = BlockId.for_content(sequence, data)
        self.blocks.append(
            CaptureVideoBlock(
                index=sequence,
                block_id=block_id.encode(),
                size=len(data),
                sha256=block_id.sha256_hex,
                byte_offset=self._bytes,
                units=len(self._pending),
                key_units=self._pending_keys,
                first_ticks=self._pending_ticks[0],
                last_ticks=self._pending_ticks[-1],
            )
        )
        self._units += len(self._pending)
        self._pending, self._pending_bytes, self._pending_ticks, self._pending_keys = [], 0, [], 0
        self._hash.update(data)
        self._boundaries[sequence] = self._hash.copy()
        self._bytes += len(data)
        self.stager.put(PendingBlock(sequence, self.blocks[-1].block_id, data))

    def staged(self, sequence: int, data: bytes) -> None:
        self._staged_hash = self._boundaries.pop(sequence)
        self._staged_bytes += len(data)

    def finish(self) -> None:
        if not self.finished:
            self.cut()
            self.finished = True

    @property
    def spilled(self) -> int:
        return self.stager.spilled

    @property
    def staged_blocks(self) -> int:
        return self.stager.staged

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def commit_point(self, *, staged_prefix: bool) -> CommitPoint:
        if staged_prefix and self.staged_blocks < len(self.blocks):
            return CommitPoint(self.staged_blocks, self._staged_hash.hexdigest(), self._staged_bytes)
        return CommitPoint(len(self.blocks), self.sha256, self._bytes)

    def manifest(self, committed: CommitPoint | None = None) -> CaptureVideoTrack:
        point = committed or CommitPoint(len(self.blocks), self.sha256, self._bytes)
        blocks = self.blocks[: point.blocks]
        return CaptureVideoTrack(
            track=self.track,
            kind=self.kind,
            source_id=self.source_id,
            participant_id=self.participant_id,
            blob_name=self.blob_name,
            blocks=list(blocks),
            bytes=point.bytes,
            units=sum(block.units for block in blocks),
            width=self.width,
            height=self.height,
            sha256=point.sha256,
        )
