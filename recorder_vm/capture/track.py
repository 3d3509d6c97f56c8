"""One audio track of a capture: batches of PCM frames in, FLAC blocks out to the track's `BlobStager`.

Keeps real time: when frames stop arriving (a network gap, a muted stream the platform does not fill), the
missing stretch is written as silence, so an offset in the file is an offset in the call. A batch of frames
is checked for gaps with NumPy (their timestamps against where the samples put them) and joined into one
buffer; a block is encoded in one encoder call when a block's worth of whole FLAC frames has arrived (or
`block_seconds` have passed), so it never carries more than `block_seconds` of audio. Each block is named by
its sequence and SHA-256 (`verbatim.evidence.blocks`).

A track's first block is shorter by a phase of its own (whole FLAC frames, from its blob name): calls that start
together (a burst of invitations, a failed-over instance's calls re-invited at once) would otherwise fill their
blocks in the same tick of the worker, every block, for the whole call — one pass encoding and staging hundreds of
blocks, then a dozen passes with none. With the phases their blocks are spread over a block's length of ticks.
The FLAC stream is the same: only where it is cut into blocks moves.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recorder_vm.capture.encoder import BYTES_PER_SAMPLE, SAMPLE_RATE, EncodedPiece, FlacStreamEncoder
from recorder_vm.capture.staging import BlobStager, PendingBlock
from recorder_vm.media.base import FRAME_BYTES, FRAME_SAMPLES, AudioFrame
from verbatim.contracts.recorder import AudioEncoding, CaptureBlock, CaptureGap, CaptureTrack, TrackKind
from verbatim.evidence.blocks import BlockId

TICKS_PER_SAMPLE = 10_000_000 // SAMPLE_RATE  # 625 ticks of 100 ns
GAP_THRESHOLD_TICKS = 600_000  # 60 ms: more than jitter, so a missing frame or more is a real gap
MAX_GAP_SAMPLES = SAMPLE_RATE * 900  # a gap longer than 15 minutes is a clock jump, not silence
# Azure allows 50,000 committed blocks per blob: after this many, blocks get twice as long (a 24-hour call fits).
LONG_CALL_BLOCKS = 40_000

StagerFactory = Callable[[str, "TrackWriter"], BlobStager]


@dataclass(frozen=True)
class CommitPoint:
    """The first `blocks` blocks of a track, and the SHA-256 and size of those bytes."""

    blocks: int
    sha256: str
    bytes: int


def _phase(blob_name: str) -> int:
    """A number of FLAC frames that differs from one track to the next and is the same for a track every time."""
    return int.from_bytes(hashlib.sha256(blob_name.encode()).digest()[:4], "big")


class TrackWriter:
    def __init__(
        self,
        *,
        track: str,
        kind: TrackKind,
        source_id: int | None,
        blob_name: str,
        origin_ticks: int,
        stager: StagerFactory,
        block_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.track = track
        self.kind: TrackKind = kind
        self.source_id = source_id
        self.blob_name = blob_name
        self._origin = origin_ticks
        self._block_seconds = block_seconds
        self._clock = clock
        self._encoder = FlacStreamEncoder()
        self._frame_samples = self._encoder.frame_samples
        self._phase_frames = _phase(blob_name)  # frames the first block is shorter by (mod a block's frames)
        self._samples_in = 0  # samples received, silence included
        self._chunks: list[bytes] = []  # PCM received and not yet encoded
        self._buffered = 0  # samples in `_chunks`
        self._last_cut = clock()
        self._hash = hashlib.sha256()  # of every block cut
        self._bytes = 0
        self._samples_out = 0
        self._staged_hash: Any = hashlib.sha256()  # state of `_hash` after block staged-1
        self._boundaries: dict[int, Any] = {}  # state of `_hash` after each block cut and not yet staged
        self._staged_bytes = 0
        self._staged_samples = 0
        self.blocks: list[CaptureBlock] = []
        self.gaps: list[CaptureGap] = []
        self.finished = False
        self.stager = stager(blob_name, self)

    # --- audio in ---

    def add_frames(self, frames: Sequence[AudioFrame]) -> None:
        """Add a batch of this track's frames, in arrival order, filling gaps in their timestamps with silence."""
        count = len(frames)
        if not count:
            return
        pcm = b"".join([frame.pcm for frame in frames])
        if len(pcm) != count * FRAME_BYTES:  # not all 20 ms frames: one at a time
            for frame in frames:
                self.add(frame)
            return
        ticks = np.fromiter((frame.timestamp_ticks for frame in frames), dtype=np.int64, count=count)
        steps = np.arange(count, dtype=np.int64) * (FRAME_SAMPLES * TICKS_PER_SAMPLE)
        first = 0
        while first < count:
            expected = self._origin + self._samples_in * TICKS_PER_SAMPLE + steps[: count - first]
            late = ticks[first:] - expected
            gaps = np.flatnonzero(late >= GAP_THRESHOLD_TICKS)
            if not gaps.size:
                self._append(pcm[first * FRAME_BYTES :])
                return
            gap = first + int(gaps[0])
            if gap > first:
                self._append(pcm[first * FRAME_BYTES : gap * FRAME_BYTES])
            self.silence(min(int(late[gap - first]) // TICKS_PER_SAMPLE, MAX_GAP_SAMPLES))
            self._append(pcm[gap * FRAME_BYTES : (gap + 1) * FRAME_BYTES])
            first = gap + 1

    def add(self, frame: AudioFrame) -> None:
        """Add one frame (any length)."""
        expected = self._origin + self._samples_in * TICKS_PER_SAMPLE
        late = frame.timestamp_ticks - expected
        if late >= GAP_THRESHOLD_TICKS:
            self.silence(min(late // TICKS_PER_SAMPLE, MAX_GAP_SAMPLES))
        self._append(frame.pcm)

    def silence(self, samples: int) -> None:
        """Write `samples` of silence (a gap in the media), recorded as a gap in the manifest."""
        if samples <= 0:
            return
        self.gaps.append(CaptureGap(start_sample=self._samples_in, samples=samples))
        while samples > 0:
            chunk = min(samples, self.block_samples)
            self._append(bytes(chunk * BYTES_PER_SAMPLE))
            samples -= chunk

    def _append(self, pcm: bytes) -> None:
        samples = len(pcm) // BYTES_PER_SAMPLE
        self._chunks.append(pcm)
        self._buffered += samples
        self._samples_in += samples
        while self._buffered >= self.block_samples:
            self._encode(self.block_samples)

    # --- blocks out ---

    @property
    def block_samples(self) -> int:
        """Samples in a full block: whole FLAC frames, at most `block_seconds` (twice that in a very long call)."""
        factor = 2 if len(self.blocks) >= LONG_CALL_BLOCKS else 1
        frames = max(1, int(self._block_seconds * SAMPLE_RATE * factor) // self._frame_samples)
        if not self.blocks:
            frames -= self._phase_frames % frames  # at least one frame
        return frames * self._frame_samples

    def due(self, now: float) -> bool:
        """Whether a block is due although not full: audio arrives slower than real time."""
        return self._buffered >= self._frame_samples and now - self._last_cut >= self._block_seconds

    def cut(self) -> None:
        """Make a block of the whole FLAC frames received so far."""
        self._encode(self._buffered // self._frame_samples * self._frame_samples)

    def _encode(self, samples: int) -> None:
        if not samples:
            return
        pcm = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        size = samples * BYTES_PER_SAMPLE
        rest = pcm[size:]
        self._chunks = [rest] if rest else []
        self._buffered -= samples
        self._block(self._encoder.encode(pcm[:size] if rest else pcm))

    def _block(self, pieces: list[EncodedPiece]) -> None:
        """Name, record and hand over one block; `SpillOverflow` (disk buffer full) surfaces through the stager."""
        self._last_cut = self._clock()
        if not pieces and self.blocks:
            return
        sequence = len(self.blocks)
        data = (self._encoder.header if sequence == 0 else b"") + b"".join(piece.data for piece in pieces)
        samples = sum(piece.samples for piece in pieces)
        block_id = BlockId.for_content(sequence, data)
        self.blocks.append(
            CaptureBlock(
                index=sequence,
                block_id=block_id.encode(),
                size=len(data),
                sha256=block_id.sha256_hex,
                byte_offset=self._bytes,
                start_sample=self._samples_out,
                samples=samples,
                time_offset_seconds=self._samples_out / SAMPLE_RATE,
            )
        )
        self._hash.update(data)
        self._boundaries[sequence] = self._hash.copy()
        self._bytes += len(data)
        self._samples_out += samples
        self.stager.put(PendingBlock(sequence, self.blocks[-1].block_id, data))

    def staged(self, sequence: int, data: bytes) -> None:
        """The stager staged block `sequence` (blocks are staged in order)."""
        self._staged_hash = self._boundaries.pop(sequence)
        self._staged_bytes += len(data)
        self._staged_samples += self.blocks[sequence].samples

    def finish(self) -> None:
        """Encode the tail, close the FLAC stream and hand over the last block."""
        if self.finished:
            return
        pcm = b"".join(self._chunks)
        self._chunks = []
        self._buffered = 0
        pieces = self._encoder.encode(pcm) if pcm else []
        pieces.extend(self._encoder.finish())
        if pieces or not self.blocks:
            self._block(pieces)
        self.finished = True

    def close(self) -> None:
        """The capture is over: free the encoder (its native memory) and any PCM it was not given."""
        self._encoder.close()
        self._chunks = []
        self._buffered = 0

    # --- what it has done ---

    @property
    def spilled(self) -> int:
        return self.stager.spilled

    @property
    def staged_blocks(self) -> int:
        """Blocks 0..n-1 known to be staged."""
        return self.stager.staged

    @property
    def staged_bytes(self) -> int:
        return self._staged_bytes

    @property
    def staged_samples(self) -> int:
        return self._staged_samples

    @property
    def samples(self) -> int:
        return self._samples_out

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def commit_point(self, *, staged_prefix: bool) -> CommitPoint:
        """What a commit now would hold: every block, or only those known to be staged (after a failure)."""
        if staged_prefix and self.staged_blocks < len(self.blocks):
            return CommitPoint(self.staged_blocks, self._staged_hash.hexdigest(), self._staged_bytes)
        return CommitPoint(len(self.blocks), self.sha256, self._bytes)

    def manifest(self, committed: CommitPoint | None = None) -> CaptureTrack:
        """The track as committed at `committed`, or all of it (nothing committed)."""
        point = committed or CommitPoint(len(self.blocks), self.sha256, self._bytes)
        blocks = self.blocks[: point.blocks]
        sha256, size = point.sha256, point.bytes
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
