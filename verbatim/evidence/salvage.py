"""Salvage: turn what a recorder left in a capture generation (staged, uncommitted blocks) into a playable
capture, after fencing the generation so that the recorder, if it is alive after all, can change nothing in it.

Fence first: the recorder holds an infinite lease on each track blob of its generation and names it on every
Put Block and Put Block List; salvage breaks those leases (break period 0), so every later write of the
recorder to this generation is refused (412) and it goes on in the next generation instead (a continuation:
`verbatim.evidence.names`). Only then is the block list read, so it holds every block the recorder managed to
stage: nothing staged can slip in between the reading and the commit and be dropped by it.

The recorder stages each block with a self-describing id (sequence + SHA-256, see `verbatim.evidence.blocks`).
Salvage commits the longest run of blocks from the generation's first sequence that exist, reads the committed
object back, keeps the prefix whose bytes match the hashes in the ids and that decodes as FLAC, and describes
it in a capture manifest marked `salvaged` (the lifecycle keeps it beside its own work, never in the
recorder's container). A manifest the recorder completed itself is taken as it is.
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
    CaptureVideoBlock,
    CaptureVideoTrack,
)
from verbatim.evidence import names
from verbatim.evidence.blocks import BlockId, decode_block_id
from verbatim.evidence.capture import MIXED_TRACK
from verbatim.evidence.flac import samples_per_block
from verbatim.evidence.h264 import stamped_units
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
    tracks: list[SalvagedTrack]
    already_complete: bool  # the recorder had committed and written a complete manifest: nothing was changed
    leases_broken: int  # track blobs whose lease the fence broke (0: the recorder held none any more)

    @property
    def mixed(self) -> CaptureTrack:
        return self.manifest.track(MIXED_TRACK)

    def missing_seconds(self, progress: CaptureProgress | None) -> float | None:
        """How much less audio the salvaged recording has than the recorder last said it had staged."""
        if progress is None:
            return None
        return max(0.0, progress.seconds_staged - self.mixed.duration_seconds)


def fence_generation(captures: BlobStore, recording_id: str, generation: int) -> tuple[list[str], int]:
    """Fence the generation: write its fence marker first (a recorder that takes a new lease there afterwards
    finds it), then break the recorder's lease on every track blob there is; returns the track blobs and how many
    leases were broken."""
    captures.write(names.capture_fence_name(recording_id, generation), b"{}", content_type="application/json")
    prefix = names.capture_prefix(recording_id, generation) + "/"
    tracks = [
        name
        for name in captures.names(prefix, uncommitted=True)
        if names.track_of_capture_name(recording_id, generation, name) is not None
    ]
    mixed = names.capture_track_name(recording_id, generation)
    if mixed not in tracks:
        tracks.insert(0, mixed)
    broken = sum(1 for name in tracks if captures.break_lease(name))
    return tracks, broken


def read_capture_manifest(captures: BlobStore, recording_id: str, generation: int) -> CaptureManifest | None:
    try:
        return CaptureManifest.model_validate_json(captures.read(names.capture_manifest_name(recording_id, generation)))
    except BlobNotFound:
        return None


def salvage_capture(
    captures: BlobStore,
    *,
    recording_id: str,
    call_id: str,
    recorder_instance: str,
    generation: int = 0,
    progress: CaptureProgress | None = None,
    call_chain_id: str | None = None,
    first_block: int = 0,
    first_sample: int = 0,
    stream_header: bytes = b"",
) -> SalvageResult:
    """Fence the generation, then commit what can be committed of its tracks and describe it.
    For a continuation: `first_block` and `first_sample` say where it starts in the recording, and
    `stream_header` is the FLAC stream header its blocks decode with (part 0's)."""
    track_names, broken = fence_generation(captures, recording_id, generation)
    existing = read_capture_manifest(captures, recording_id, generation)
    if existing is not None and existing.complete and existing.recording_id == recording_id:
        return SalvageResult(existing, [], already_complete=True, leases_broken=broken)
    tracks = []
    videos: list[CaptureVideoTrack] = []
    for name in track_names:
        track = names.track_of_capture_name(recording_id, generation, name) or MIXED_TRACK
        if names.is_video_track(track):
            videos.append(salvage_video_track(captures, name, recording_id=recording_id, track=track))
            continue
        source = track.removeprefix("source-")
        tracks.append(
            salvage_track(
                captures,
                name,
                recording_id=recording_id,
                track=track,
                source_id=int(source) if source.isdigit() else None,
                first_sequence=first_block,
                first_sample=first_sample,
                stream_header=stream_header,
            )
        )
    now = datetime.now(UTC)
    started = progress.started_at if progress is not None else None
    mixed = next(t.track for t in tracks if t.track.track == MIXED_TRACK)
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
        generation=generation,
        frames_received=progress.frames_received if progress else 0,
        frames_dropped=progress.frames_dropped if progress else 0,
        tracks=[salvaged.track for salvaged in tracks],
        video_tracks=videos,
    )
    log.info(
        "recording salvaged",
        extra={
            "recording_id": recording_id,
            "generation": generation,
            "leases_broken": broken,
            "blocks": len(mixed.blocks),
            "duration_seconds": round(mixed.duration_seconds, 3),
        },
    )
    return SalvageResult(manifest, tracks, already_complete=False, leases_broken=broken)


def salvage_track(
    container: BlobStore,
    blob_name: str,
    *,
    recording_id: str = "",
    track: str = MIXED_TRACK,
    source_id: int | None = None,
    first_sequence: int = 0,
    first_sample: int = 0,
    stream_header: bytes = b"",
) -> SalvagedTrack:
    """Commit the longest valid run of one track's blocks from `first_sequence`; returns the track as committed
    (byte offsets within the blob, start samples counted in the recording)."""
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
    while first_sequence + len(run) in ours:
        run.append(ours[first_sequence + len(run)])
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
        valid = _valid_prefix(data, candidate, stream_header)
        if valid == len(candidate):
            break
        # Uncommitted blocks beyond `valid` are gone after the first commit; shrinking is all that is left.
        dropped_invalid += len(candidate) - valid
        candidate = candidate[:valid]
    if not candidate:
        data = b""
    blocks, samples = _describe(data, candidate, stream_header, first_sample)
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


def salvage_video_track(
    container: BlobStore, blob_name: str, *, recording_id: str, track: str, first_sequence: int = 0
) -> CaptureVideoTrack:
    """Commit the longest run of a video stream's staged blocks whose bytes match their ids, and describe it from the
    timestamps the stream carries (`verbatim.evidence.h264`): a cut stream still says when each frame was shown."""
    try:
        committed, uncommitted = container.blocks(blob_name)
    except BlobNotFound:
        committed, uncommitted = [], []
    ours: dict[int, tuple[BlockId, str, int]] = {}
    for block in [*committed, *uncommitted]:
        parsed = decode_block_id(block.id)
        if parsed is not None and parsed.sequence not in ours:
            ours[parsed.sequence] = (parsed, block.id, block.size)
    # A continuation's stream starts at whatever block the fence left it (video blocks carry their own times).
    start = first_sequence if first_sequence in ours or not ours else min(ours)
    run: list[tuple[BlockId, str, int]] = []
    while start + len(run) in ours:
        run.append(ours[start + len(run)])
    data = b""
    if run:
        metadata = {"recording_id": recording_id, "salvaged": "true"} if recording_id else {"salvaged": "true"}
        container.commit_blocks(
            blob_name, [block_id for _, block_id, _ in run], content_type="video/h264", metadata=metadata
        )
        data = container.read(blob_name)
        offset, valid = 0, 0
        for parsed, _, size in run:
            if not parsed.matches(data[offset : offset + size]):
                break
            offset, valid = offset + size, valid + 1
        if valid < len(run):
            run = run[:valid]
            container.commit_blocks(
                blob_name, [block_id for _, block_id, _ in run], content_type="video/h264", metadata=metadata
            )
            data = container.read(blob_name)
    units = stamped_units(data)
    blocks: list[CaptureVideoBlock] = []
    offset = 0
    for parsed, block_id, size in run:
        inside = [u for u in units if offset <= u.offset < offset + size]
        blocks.append(
            CaptureVideoBlock(
                index=parsed.sequence,
                block_id=block_id,
                size=size,
                sha256=parsed.sha256_hex,
                byte_offset=offset,
                units=len(inside),
                key_units=sum(u.key for u in inside),
                first_ticks=inside[0].ticks if inside else 0,
                last_ticks=inside[-1].ticks if inside else 0,
            )
        )
        offset += size
    kind, _, source = track.partition("-")
    return CaptureVideoTrack(
        track=track,
        kind="screenShare" if kind == "screen" else "camera",
        source_id=int(source),
        blob_name=blob_name,
        blocks=blocks,
        bytes=len(data),
        units=len(units),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _valid_prefix(data: bytes, blocks: list[tuple[BlockId, str, int]], header: bytes = b"") -> int:
    """How many leading blocks have the bytes their ids promise and decode as FLAC (after `header`)."""
    offset = 0
    matching = 0
    for parsed, _, size in blocks:
        if not parsed.matches(data[offset : offset + size]):
            break
        offset += size
        matching += 1
    while matching and not _decodes(header + data[: sum(size for _, _, size in blocks[:matching])]):
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


def _describe(
    data: bytes, blocks: list[tuple[BlockId, str, int]], header: bytes = b"", first_sample: int = 0
) -> tuple[list[CaptureBlock], int]:
    """Per-block byte offsets (within the blob) and start samples (from `first_sample`), measured by decoding
    the committed object (after `header`)."""
    ends: list[int] = []
    offset = len(header)
    for _, _, size in blocks:
        offset += size
        ends.append(offset)
    per_block = samples_per_block(header + data, ends) if data else [0] * len(blocks)
    total = sum(per_block)
    result: list[CaptureBlock] = []
    start, byte_offset = first_sample, 0
    for index, (parsed, block_id, size) in enumerate(blocks):
        result.append(
            CaptureBlock(
                index=parsed.sequence,
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
