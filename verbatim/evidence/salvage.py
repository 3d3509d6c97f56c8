"""Salvage: turn what a dead recorder left (staged, uncommitted blocks) into a playable recording.

The recorder stages each block of a track's block blob with a self-describing id (sequence + SHA-256, see
`verbatim.evidence.blocks`). Salvage commits the longest run of blocks 0, 1, 2, ... that exist, reads the
committed object back, keeps the prefix whose bytes match the hashes in the ids and that decodes as FLAC,
and writes a capture manifest marked `salvaged` (never over a manifest the recorder completed itself).
Blocks after a hole cannot be placed and are dropped by the commit (Azure discards uncommitted blocks that a
commit leaves out), so salvage only when the recorder is known to be gone.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import av

from verbatim.contracts.recorder import (
    AudioEncoding,
    CaptureBlock,
    CaptureManifest,
    CaptureProgress,
    CaptureTrack,
)
from verbatim.evidence.blocks import BlockId, decode_block_id
from verbatim.evidence.capture import MIXED_TRACK
from verbatim.platform.blobs import BlobNotFound, BlobStore

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class SalvagedTrack:
    track: CaptureTrack
    blocks_found: int  # staged or committed blocks of ours on the blob
    blocks_committed: int
    dropped_after_hole: int  # staged blocks that could not be placed (a gap in the sequence)
    dropped_invalid: int  # blocks cut off because their bytes did not match or did not decode


@dataclass(frozen=True)
class SalvageResult:
    manifest: CaptureManifest
    manifest_blob_name: str
    tracks: list[SalvagedTrack]
    already_complete: bool  # the recorder had committed and written a complete manifest: nothing was changed

    @property
    def mixed(self) -> CaptureTrack:
        return self.manifest.track(MIXED_TRACK)

    def missing_seconds(self, progress: CaptureProgress | None) -> float | None:
        """How much less audio the salvaged recording has than the recorder last said it had staged."""
        if progress is None:
            return None
        return max(0.0, progress.seconds_staged - self.mixed.duration_seconds)


def salvage_capture(
    container: BlobStore,
    *,
    recording_id: str,
    call_id: str,
    recorder_instance: str,
    blob_name: str,
    manifest_blob_name: str,
    progress: CaptureProgress | None = None,
    call_chain_id: str | None = None,
) -> SalvageResult:
    """Commit what can be committed of a recording's tracks and write a salvaged capture manifest."""
    existing = _read_manifest(container, manifest_blob_name)
    if existing is not None and existing.complete:
        return SalvageResult(existing, manifest_blob_name, [], already_complete=True)
    prefix = blob_name.rsplit("/", 1)[0] + "/"
    unmixed = [
        name for name in container.names(prefix, uncommitted=True) if name != blob_name and name.endswith(".flac")
    ]
    names = [blob_name, *unmixed]
    tracks = [salvage_track(container, blob_name, recording_id=recording_id)]
    for name in names[1:]:
        stem = name.rsplit("/", 1)[1].removesuffix(".flac")
        source = stem.removeprefix("source-")
        tracks.append(
            salvage_track(
                container,
                name,
                recording_id=recording_id,
                track=stem,
                source_id=int(source) if source.isdigit() else None,
            )
        )
    now = datetime.now(UTC)
    started = progress.started_at if progress is not None else None
    mixed = tracks[0].track
    manifest = CaptureManifest(
        recording_id=recording_id,
        call_id=call_id,
        call_chain_id=call_chain_id,
        recorder_instance=recorder_instance,
        started_at=started,
        ended_at=None,
        written_at=now,
        complete=False,
        salvaged=True,
        frames_received=progress.frames_received if progress else 0,
        frames_dropped=progress.frames_dropped if progress else 0,
        tracks=[salvaged.track for salvaged in tracks],
    )
    container.write(manifest_blob_name, manifest.model_dump_json(indent=2).encode(), content_type="application/json")
    log.info(
        "recording salvaged",
        extra={
            "recording_id": recording_id,
            "blocks": len(mixed.blocks),
            "duration_seconds": round(mixed.duration_seconds, 3),
        },
    )
    return SalvageResult(manifest, manifest_blob_name, tracks, already_complete=False)


def _read_manifest(container: BlobStore, blob_name: str) -> CaptureManifest | None:
    try:
        return CaptureManifest.model_validate_json(container.read(blob_name))
    except BlobNotFound:
        return None


def salvage_track(
    container: BlobStore,
    blob_name: str,
    *,
    recording_id: str = "",
    track: str = MIXED_TRACK,
    source_id: int | None = None,
) -> SalvagedTrack:
    """Commit the longest valid prefix of one track's blocks; returns the track as committed."""
    try:
        committed, uncommitted = container.blocks(blob_name)
    except BlobNotFound:
        committed, uncommitted = [], []
    ours: dict[int, tuple[BlockId, str, int]] = {}
    for block in [*committed, *uncommitted]:
        parsed = decode_block_id(block.id)
        if parsed is not None and parsed.sequence not in ours:
            ours[parsed.sequence] = (parsed, block.id, block.size)
    run: list[tuple[BlockId, str, int]] = []
    while len(run) in ours:
        run.append(ours[len(run)])
    dropped_after_hole = len(ours) - len(run)
    candidate = run
    dropped_invalid = 0
    data = b""
    while candidate:
        container.commit_blocks(
            blob_name,
            [block_id for _, block_id, _ in candidate],
            content_type="audio/flac",
            metadata={"recording_id": recording_id, "salvaged": "true"} if recording_id else {"salvaged": "true"},
        )
        data = container.read(blob_name)
        valid = _valid_prefix(data, candidate)
        if valid == len(candidate):
            break
        # Uncommitted blocks beyond `valid` are gone after the first commit; shrinking is all that is left.
        dropped_invalid += len(candidate) - valid
        candidate = candidate[:valid]
    if not candidate:
        data = b""
    blocks, samples = _describe(data, candidate)
    described = CaptureTrack(
        track=track,
        kind="mixed" if track == MIXED_TRACK else "unmixed",
        source_id=source_id,
        blob_name=blob_name,
        encoding=AudioEncoding(),
        blocks=blocks,
        bytes=len(data),
        samples=samples,
        duration_seconds=samples / SAMPLE_RATE,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return SalvagedTrack(described, len(ours), len(candidate), dropped_after_hole, dropped_invalid)


def _valid_prefix(data: bytes, blocks: list[tuple[BlockId, str, int]]) -> int:
    """How many leading blocks have the bytes their ids promise and decode as FLAC."""
    offset = 0
    matching = 0
    for parsed, _, size in blocks:
        if not parsed.matches(data[offset : offset + size]):
            break
        offset += size
        matching += 1
    while matching and not _decodes(data[: sum(size for _, _, size in blocks[:matching])]):
        matching -= 1
    return matching


def _decodes(data: bytes) -> bool:
    try:
        with av.open(io.BytesIO(data), format="flac") as container:
            assert isinstance(container, av.container.InputContainer)
            for _ in container.decode(audio=0):
                pass
    except (av.FFmpegError, ValueError):
        return False
    return True


def _describe(data: bytes, blocks: list[tuple[BlockId, str, int]]) -> tuple[list[CaptureBlock], int]:
    """Per-block byte and sample offsets, measured by decoding the committed object."""
    ends: list[int] = []
    offset = 0
    for _, _, size in blocks:
        offset += size
        ends.append(offset)
    per_block = [0] * len(blocks)
    total = 0
    if data:
        with av.open(io.BytesIO(data), format="flac") as container:
            assert isinstance(container, av.container.InputContainer)
            for packet in container.demux(audio=0):
                if packet.size == 0 or packet.pos is None:
                    continue
                samples = sum(frame.samples for frame in packet.decode())
                index = _block_of(ends, int(packet.pos))
                per_block[index] += samples
                total += samples
    result: list[CaptureBlock] = []
    start = byte_offset = 0
    for index, (parsed, block_id, size) in enumerate(blocks):
        result.append(
            CaptureBlock(
                index=index,
                block_id=block_id,
                size=size,
                sha256=parsed.sha256_hex,
                byte_offset=byte_offset,
                start_sample=start,
                samples=per_block[index],
                time_offset_seconds=start / SAMPLE_RATE,
            )
        )
        start += per_block[index]
        byte_offset += size
    return result, total


def _block_of(ends: list[int], position: int) -> int:
    for index, end in enumerate(ends):
        if position < end:
            return index
    return len(ends) - 1
