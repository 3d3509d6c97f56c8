"""One recording's capture generations: the capture pipeline writes its tracks under the names of generation 0,
and this store puts every block where it may go now.

When the lifecycle salvages a generation (it believed the recorder gone: no heartbeat, no answer) it fences it —
our leases there are broken — and the next write is refused (`CaptureFenced`). The recorder was alive after all,
so nothing it captured may be lost and nothing sealed may be changed: the block that was refused, and every block
after it, go into the next generation, a continuation the lifecycle seals as its own part. The blocks keep their
ids (sequence and hash), so the continuation's blob holds blocks n, n+1, ...; its capture manifest lists exactly
those, with their byte offsets in that blob and their start samples in the recording. The recording is told
once per new generation (`on_continued`), and gets `recording.continued`.

What the fenced generation kept is read from its committed block list: every block we managed to stage there is
in it (the lifecycle breaks the leases before it reads the list, and after the break no write of ours succeeds),
unless its bytes were corrupt; the continuation starts where that list ends.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from recorder_vm.capture.storage import AsyncRecordingStore, CaptureFenced, StorageUnavailable
from verbatim.contracts.recorder import CaptureBlock, CaptureManifest, CaptureTrack
from verbatim.evidence import names
from verbatim.evidence.blocks import decode_block_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Continued:
    """The capture went on in `generation` after `fenced` was fenced."""

    generation: int
    fenced: int
    first_block: int  # sequence of the first block of the mixed track written into `generation`
    kept_blocks: int  # blocks the fenced generation's mixed track kept, as its committed list says
    reason: str


@dataclass
class _Physical:
    """What was staged into one track blob of one generation, in order."""

    blocks: dict[int, tuple[str, int]] = field(default_factory=dict)  # sequence -> (block id, size)
    hash: Any = field(default_factory=hashlib.sha256)
    next_sequence: int | None = None  # the sequence whose bytes the running hash expects next
    hashed_bytes: int = 0


class GenerationStore:
    """`AsyncRecordingStore` for one recording's capture: maps the generation-0 names the pipeline uses to the
    generation that is current, and moves on to the next one when the current is fenced. It wraps the store of
    the capture worker the call runs on (`bind`), and runs on that worker's event loop."""

    def __init__(
        self,
        inner: AsyncRecordingStore | None,
        recording_id: str,
        *,
        on_continued: Callable[[Continued], None],
    ) -> None:
        self._inner = inner
        self._recording_id = recording_id
        self._on_continued = on_continued
        self._lock = threading.RLock()  # guards the state read from other threads (the session, progress)
        self.generation = 0
        self._first_block: dict[int, dict[str, int]] = {0: {}}  # generation -> track -> first sequence
        self._staged: dict[tuple[int, str], _Physical] = {}

    def bind(self, inner: AsyncRecordingStore) -> GenerationStore:
        """Write through `inner` (the store of the worker the capture was attached to)."""
        if self._inner is None:
            self._inner = inner
        return self

    @property
    def inner(self) -> AsyncRecordingStore:
        if self._inner is None:
            raise RuntimeError("the generation store is not bound to a capture worker's store")
        return self._inner

    # --- names ---

    def _track(self, logical: str) -> str:
        track = names.track_of_capture_name(self._recording_id, 0, logical)
        if track is None:
            raise ValueError(f"{logical} is not a track of recording {self._recording_id}")
        return track

    def physical(self, logical: str, generation: int | None = None) -> str:
        """Where a track of generation 0's name is written in `generation` (the current one by default)."""
        at = self.generation if generation is None else generation
        return names.capture_track_name(self._recording_id, at, self._track(logical))

    # --- AsyncRecordingStore ---

    async def stage_block(self, blob_name: str, block_id: str, data: bytes) -> None:
        track = self._track(blob_name)
        sequence = _sequence(block_id)
        while True:
            with self._lock:
                generation = self.generation
            try:
                await self.inner.stage_block(self.physical(blob_name, generation), block_id, data)
            except CaptureFenced as fenced:
                await self._move_on(generation, track, sequence, fenced.reason)
                continue
            self._note(generation, track, sequence, block_id, data)
            return

    async def commit_blocks(self, blob_name: str, block_ids: Sequence[str], metadata: dict[str, str]) -> None:
        track = self._track(blob_name)
        while True:
            with self._lock:
                generation = self.generation
                here = self._staged.get((generation, track), _Physical())
                first = self._first_block[generation].get(track, 0)
            ids = [block_id for block_id in block_ids if _sequence(block_id) >= first]
            missing = [block_id for block_id in ids if _sequence(block_id) not in here.blocks]
            if missing and generation > 0:
                # Blocks of the fenced generation that it did not keep cannot be staged again from here (their
                # bytes went to storage); they are left out, and the lifecycle reports the gap.
                log.error(
                    "blocks lost to the fence",
                    extra={"recording_id": self._recording_id, "blocks": len(missing), "generation": generation},
                )
                ids = [block_id for block_id in ids if block_id not in missing]
            try:
                await self.inner.commit_blocks(self.physical(blob_name, generation), ids, metadata)
                return
            except CaptureFenced as fenced:
                # Fenced between the last block and the commit: the salvage took every block we staged there.
                await self._move_on(generation, track, _sequence(block_ids[-1]) + 1 if block_ids else 0, fenced.reason)
                with self._lock:
                    if not any(_sequence(b) >= self._first_block[self.generation].get(track, 0) for b in block_ids):
                        return  # nothing is left to write: the sealed parts hold everything

    async def write_manifest(self, blob_name: str, manifest: CaptureManifest) -> None:
        with self._lock:
            generation = self.generation
            rewritten = self._for_generation(manifest, generation)
        await self.inner.write_manifest(names.capture_manifest_name(self._recording_id, generation), rewritten)

    async def committed_blocks(self, blob_name: str) -> list[str]:
        return await self.inner.committed_blocks(blob_name)

    async def close(self) -> None:
        """The worker closes its own store; nothing of ours to close."""

    # --- what it has done ---

    @property
    def manifest_name(self) -> str:
        return names.capture_manifest_name(self._recording_id, self.generation)

    def first_block(self, track: str = names.MIXED_TRACK) -> int:
        with self._lock:
            return self._first_block[self.generation].get(track, 0)

    # --- moving on ---

    async def _move_on(self, fenced: int, track: str, sequence: int, reason: str) -> None:
        """`fenced` was fenced while writing block `sequence` of `track`: go on in the next generation (once)."""
        with self._lock:
            if self.generation != fenced:
                return  # another track already moved on
            if fenced >= names.MAX_GENERATION:
                raise StorageUnavailable(f"capture fenced {fenced} times; giving up on it")
            mixed = names.capture_track_name(self._recording_id, fenced)
        try:
            kept_ids = await self.inner.committed_blocks(mixed)
        except StorageUnavailable:
            kept_ids = []
        with self._lock:
            if self.generation != fenced:
                return
            start = self._first_block[fenced].get(names.MIXED_TRACK, 0)
            kept = _contiguous(kept_ids, start)
            # Each track goes on with its first block not staged in the fenced generation: the refused one for
            # the track that met the fence, the one after its last staged block for the others.
            tracks = {track, names.MIXED_TRACK, *(t for (g, t) in self._staged if g == fenced)}
            first = {
                name: sequence if name == track else _next(self._staged.get((fenced, name)), start=0) for name in tracks
            }
            self.generation = fenced + 1
            self._first_block[self.generation] = first
            event = Continued(
                generation=self.generation,
                fenced=fenced,
                first_block=first.get(names.MIXED_TRACK, sequence),
                kept_blocks=kept,
                reason=reason,
            )
        log.warning(
            "capture fenced by the lifecycle; going on in the next generation",
            extra={
                "recording_id": self._recording_id,
                "generation": event.generation,
                "first_block": event.first_block,
            },
        )
        self._on_continued(event)

    def _note(self, generation: int, track: str, sequence: int, block_id: str, data: bytes) -> None:
        with self._lock:
            physical = self._staged.setdefault((generation, track), _Physical())
            if sequence in physical.blocks:
                return  # a retry of a block already staged here
            physical.blocks[sequence] = (block_id, len(data))
            if physical.next_sequence is None or physical.next_sequence == sequence:
                physical.hash.update(data)
                physical.hashed_bytes += len(data)
                physical.next_sequence = sequence + 1

    def _for_generation(self, manifest: CaptureManifest, generation: int) -> CaptureManifest:
        """The pipeline's manifest (every block of each track) as the generation holds it."""
        if generation == 0:
            return manifest.model_copy(update={"generation": 0})
        tracks = []
        for track in manifest.tracks:
            first = self._first_block[generation].get(track.track, 0)
            blocks = [b for b in track.blocks if b.index >= first]
            physical = self._staged.get((generation, track.track), _Physical())
            offset = blocks[0].byte_offset if blocks else 0
            moved = [CaptureBlock(**{**b.model_dump(), "byte_offset": b.byte_offset - offset}) for b in blocks]
            size = sum(b.size for b in moved)
            tracks.append(
                CaptureTrack(
                    track=track.track,
                    kind=track.kind,
                    source_id=track.source_id,
                    blob_name=names.capture_track_name(self._recording_id, generation, track.track),
                    encoding=track.encoding,
                    blocks=moved,
                    bytes=size,
                    samples=sum(b.samples for b in moved),
                    duration_seconds=sum(b.samples for b in moved) / track.encoding.sample_rate,
                    sha256=physical.hash.hexdigest() if physical.hashed_bytes == size else "",
                    gaps=[g for g in track.gaps if blocks and g.start_sample >= blocks[0].start_sample],
                )
            )
        videos = []
        for video in manifest.video_tracks:
            first = self._first_block[generation].get(video.track, 0)
            kept = [b for b in video.blocks if b.index >= first]
            physical = self._staged.get((generation, video.track), _Physical())
            offset = kept[0].byte_offset if kept else 0
            moved_video = [b.model_copy(update={"byte_offset": b.byte_offset - offset}) for b in kept]
            size = sum(b.size for b in moved_video)
            videos.append(
                video.model_copy(
                    update={
                        "blob_name": names.capture_track_name(self._recording_id, generation, video.track),
                        "blocks": moved_video,
                        "bytes": size,
                        "units": sum(b.units for b in moved_video),
                        "sha256": physical.hash.hexdigest() if physical.hashed_bytes == size else "",
                    }
                )
            )
        return manifest.model_copy(update={"generation": generation, "tracks": tracks, "video_tracks": videos})


def _sequence(block_id: str) -> int:
    parsed = decode_block_id(block_id)
    if parsed is None:
        raise ValueError("not one of our block ids")
    return parsed.sequence


def _contiguous(block_ids: list[str], start: int) -> int:
    """How many blocks from sequence `start` on the list holds without a gap."""
    sequences = set()
    for block_id in block_ids:
        parsed = decode_block_id(block_id)
        if parsed is not None:
            sequences.add(parsed.sequence)
    kept = 0
    while start + kept in sequences:
        kept += 1
    return kept


def _next(physical: _Physical | None, *, start: int) -> int:
    if physical is None or not physical.blocks:
        return start
    return max(physical.blocks) + 1
