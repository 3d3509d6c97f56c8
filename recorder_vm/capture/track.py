"""One audio track of a capture: PCM frames in, FLAC blocks staged on the track's block blob out.

Keeps real time: when frames stop arriving (a network gap, a muted stream the platform does not fill), the
missing stretch is written as silence, so an offset in the file is an offset in the call. Each block is cut
at a FLAC frame boundary, named by its sequence and SHA-256 (`verbatim.evidence.blocks`), and either staged
at once or, when storage is down, kept in the disk buffer and staged later in order.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from recorder_vm.capture.encoder import SAMPLE_RATE, EncodedPiece, FlacStreamEncoder
from recorder_vm.capture.spill import SpillBuffer, SpilledBlock
from recorder_vm.capture.storage import RecordingStore, StorageHealth, StorageUnavailable
from recorder_vm.media.base import AudioFrame
from verbatim.contracts.recorder import AudioEncoding, CaptureBlock, CaptureGap, CaptureTrack, TrackKind
from verbatim.evidence.blocks import BlockId

log = logging.getLogger(__name__)

TICKS_PER_SAMPLE = 10_000_000 // SAMPLE_RATE  # 625 ticks of 100 ns
GAP_THRESHOLD_TICKS = 600_000  # 60 ms: more than jitter, so a missing frame or more is a real gap
MAX_GAP_SAMPLES = SAMPLE_RATE * 900  # a gap longer than 15 minutes is a clock jump, not silence
# Azure allows 50,000 committed blocks per blob: after this many, blocks get twice as long (a 24-hour call fits).
LONG_CALL_BLOCKS = 40_000
SILENCE_CHUNK = bytes(SAMPLE_RATE * 2)  # one second


class TrackWriter:
    def __init__(
        self,
        *,
        track: str,
        kind: TrackKind,
        source_id: int | None,
        blob_name: str,
        origin_ticks: int,
        store: RecordingStore,
        spill: SpillBuffer,
        health: StorageHealth,
        block_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.track = track
        self.kind: TrackKind = kind
        self.source_id = source_id
        self.blob_name = blob_name
        self._origin = origin_ticks
        self._store = store
        self._spill = spill
        self._health = health
        self._block_seconds = block_seconds
        self._clock = clock
        self._encoder = FlacStreamEncoder()
        self._samples_in = 0  # samples handed to the encoder, silence included
        self._pending: list[EncodedPiece] = []
        self._pending_samples = 0
        self._last_cut = clock()
        self._hash = hashlib.sha256()
        self._bytes = 0
        self._spilled: deque[SpilledBlock] = deque()
        self._spilled_bytes = 0
        self._staged_hash: Any = None  # hash of the staged prefix, while newer blocks wait in the local buffer
        self._spilled_samples = 0
        self._samples_out = 0
        self.blocks: list[CaptureBlock] = []
        self.gaps: list[CaptureGap] = []
        self.finished = False

    # --- audio in ---

    def add(self, frame: AudioFrame) -> None:
        expected = self._origin + self._samples_in * TICKS_PER_SAMPLE
        late = frame.timestamp_ticks - expected
        if late >= GAP_THRESHOLD_TICKS:
            self.silence(min(late // TICKS_PER_SAMPLE, MAX_GAP_SAMPLES))
        self._feed(frame.pcm)

    def silence(self, samples: int) -> None:
        """Write `samples` of silence (a gap in the media), recorded as a gap in the manifest."""
        if samples <= 0:
            return
        self.gaps.append(CaptureGap(start_sample=self._samples_in, samples=samples))
        remaining = samples * 2
        while remaining > 0:
            chunk = min(remaining, len(SILENCE_CHUNK))
            self._feed(SILENCE_CHUNK[:chunk])
            remaining -= chunk

    def _feed(self, pcm: bytes) -> None:
        self._samples_in += len(pcm) // 2
        for piece in self._encoder.encode(pcm):
            self._pending.append(piece)
            self._pending_samples += piece.samples

    # --- blocks out ---

    @property
    def block_samples(self) -> int:
        factor = 2 if len(self.blocks) >= LONG_CALL_BLOCKS else 1
        return int(self._block_seconds * SAMPLE_RATE * factor)

    def due(self, now: float) -> bool:
        if not self._pending:
            return False
        return self._pending_samples >= self.block_samples or now - self._last_cut >= self._block_seconds

    def cut(self) -> None:
        """Make a block of everything encoded so far and stage it (or spill it). `SpillOverflow` when neither
        is possible; the block is then not part of the track."""
        self._last_cut = self._clock()
        if not self._pending and self.blocks:
            return
        sequence = len(self.blocks)
        data = (self._encoder.header if sequence == 0 else b"") + b"".join(piece.data for piece in self._pending)
        start = self._pending[0].start_sample if self._pending else 0
        samples = self._pending_samples
        block_id = BlockId.for_content(sequence, data)
        self._stage_or_spill(sequence, block_id.encode(), data, samples)
        self.blocks.append(
            CaptureBlock(
                index=sequence,
                block_id=block_id.encode(),
                size=len(data),
                sha256=block_id.sha256_hex,
                byte_offset=self._bytes,
                start_sample=start,
                samples=samples,
                time_offset_seconds=start / SAMPLE_RATE,
            )
        )
        self._hash.update(data)
        self._bytes += len(data)
        self._samples_out += samples
        self._pending.clear()
        self._pending_samples = 0

    def _stage_or_spill(self, sequence: int, block_id: str, data: bytes, samples: int) -> None:
        if not self._spilled and self._health.may_try():
            try:
                self._store.stage_block(self.blob_name, block_id, data)
            except StorageUnavailable as error:
                self._health.failed()
                log.warning("storage unavailable; spilling to the local buffer", extra={"error": str(error)})
            else:
                self._health.succeeded()
                return
        spilled = self._spill.put(self.blob_name, sequence, data)  # SpillOverflow propagates
        if not self._spilled:
            self._staged_hash = self._hash.copy()
        self._spilled.append(spilled)
        self._spilled_bytes += len(data)
        self._spilled_samples += samples

    def retry_spilled(self) -> None:
        """Stage spilled blocks, oldest first, while storage answers."""
        while self._spilled and self._health.may_try():
            block = self._spilled[0]
            block_id, data = block.read()
            try:
                self._store.stage_block(self.blob_name, block_id, data)
            except StorageUnavailable:
                self._health.failed()
                return
            self._health.succeeded()
            self._spill.remove(block)
            self._spilled.popleft()
            staged = self.blocks[block.sequence]
            self._spilled_bytes -= staged.size
            self._spilled_samples -= staged.samples
            if not self._spilled:
                self._staged_hash = None
                log.info("spilled blocks staged; storage is back", extra={"blob": self.blob_name})

    def finish(self) -> None:
        """Encode the tail, close the FLAC stream and stage the last block."""
        if self.finished:
            return
        for piece in self._encoder.finish():
            self._pending.append(piece)
            self._pending_samples += piece.samples
        if self._pending or not self.blocks:
            self.cut()
        self.finished = True

    def commit(self, metadata: dict[str, str], *, staged_prefix: bool = False) -> int:
        """Commit the block list (all blocks, or only the staged prefix); returns the blocks committed."""
        if self._spilled and not staged_prefix:
            raise StorageUnavailable(f"{len(self._spilled)} blocks of {self.blob_name} are still in the local buffer")
        blocks = self.blocks[: self.staged_blocks]
        self._store.commit_blocks(self.blob_name, [block.block_id for block in blocks], metadata)
        return len(blocks)

    # --- what it has done ---

    @property
    def spilled(self) -> int:
        return len(self._spilled)

    @property
    def staged_blocks(self) -> int:
        """Blocks 0..n-1 known to be staged (spilled blocks are always the newest)."""
        return len(self.blocks) - len(self._spilled)

    @property
    def staged_bytes(self) -> int:
        return self._bytes - self._spilled_bytes

    @property
    def staged_samples(self) -> int:
        return self._samples_out - self._spilled_samples

    @property
    def samples(self) -> int:
        return self._samples_out

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def manifest(self, committed_blocks: int | None = None) -> CaptureTrack:
        """The track as committed: all blocks, or the first `committed_blocks`."""
        blocks = self.blocks if committed_blocks is None else self.blocks[:committed_blocks]
        if len(blocks) == len(self.blocks) or self._staged_hash is None:
            sha256, size = self.sha256, self._bytes
        else:
            sha256, size = self._staged_hash.hexdigest(), self.staged_bytes
        samples = sum(block.samples for block in blocks)
        end = blocks[-1].start_sample + blocks[-1].samples if blocks else 0
        return CaptureTrack(
            track=self.track,
            kind=self.kind,
            source_id=self.source_id,
            blob_name=self.blob_name,
            encoding=AudioEncoding(),
            blocks=list(blocks),
            bytes=size,
            samples=samples,
            duration_seconds=samples / SAMPLE_RATE,
            sha256=sha256,
            gaps=[gap for gap in self.gaps if gap.start_sample < end],
        )
