"""Real audio for the lifecycle tests and benchmarks: synthesised speech (espeak-ng), encoded to FLAC
frames exactly as the recorder leaves evidence — a native FLAC stream with no totals, cut into staged
blocks at frame boundaries."""

from __future__ import annotations

import functools
import hashlib
import io
import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from azure.storage.blob import ContainerClient

from verbatim.contracts.recorder import (
    AudioEncoding,
    CaptureBlock,
    CaptureManifest,
    CaptureTrack,
    CaptureVideoBlock,
    CaptureVideoTrack,
    DominantSpeakerChange,
    TrackKind,
)
from verbatim.evidence.blocks import BlockId
from verbatim.evidence.capture import capture_prefix, manifest_blob_name, track_blob_name
from verbatim.evidence.h264 import is_key_frame, stamped
from verbatim.evidence.names import video_track
from verbatim.evidence.video import ticks_of
from verbatim.platform.blobs import AzureBlobStore, BlobStore

RATE = 16_000
SENTENCES = (
    "Good morning, this is the rates desk. I would like to confirm the trade we discussed. "
    "We buy five million of the twenty thirty bond at ninety nine point five. "
    "Settlement on the usual terms, T plus two. Please read it back to me. "
)


@functools.lru_cache(maxsize=1)
def _speech_seed() -> bytes:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is needed (scripts/apt-packages.txt; `make setup`)")
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "160", "--stdout", SENTENCES], capture_output=True, check=True
    )
    with av.open(io.BytesIO(wav.stdout), mode="r") as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        frames += resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int16).tobytes()


def speech(seconds: float) -> npt.NDArray[np.int16]:
    """`seconds` of 16 kHz mono speech (the sentences repeated, with a little level variation)."""
    seed = np.frombuffer(_speech_seed(), dtype=np.int16)
    count = int(seconds * RATE)
    repeats = count // len(seed) + 1
    parts = [(seed * (0.6 + 0.4 * ((i % 3) / 2))).astype(np.int16) for i in range(repeats)]
    return np.concatenate(parts)[:count]


def _streaminfo(block_size: int) -> bytes:
    # Unknown frame sizes, unknown total samples, zero MD5: what a streaming encoder writes up front.
    packed = (RATE << 44) | (0 << 41) | (15 << 36)
    return struct.pack(">HH", block_size, block_size) + b"\0" * 6 + packed.to_bytes(8, "big") + b"\0" * 16


def flac_blocks(pcm: npt.NDArray[np.int16], block_seconds: float = 2.0) -> list[tuple[bytes, int, int]]:
    """(bytes, start_sample, samples) of each staged block; the first carries the stream header."""
    context = av.CodecContext.create("flac", "w")
    assert isinstance(context, av.AudioCodecContext)
    context.sample_rate, context.layout, context.format = RATE, "mono", "s16"
    context.open()
    size = context.frame_size
    packets: list[av.Packet[Any]] = []
    for start in range(0, len(pcm), size):
        piece = pcm[start : start + size]
        frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = RATE, start
        packets += context.encode(frame)
    packets += context.encode(None)
    # The flush ends with an empty packet carrying only updated STREAMINFO side data: not a frame.
    frames = [(bytes(p), int(p.duration or 0)) for p in packets if p.size and p.duration]
    header = b"fLaC" + bytes([0x80, 0, 0, 34]) + _streaminfo(size)
    blocks: list[tuple[bytes, int, int]] = []
    current, start_sample, samples = bytearray(header), 0, 0
    per_block = int(block_seconds * RATE)
    for data, frame_samples in frames:
        current += data
        samples += frame_samples
        if samples >= per_block:
            blocks.append((bytes(current), start_sample, samples))
            start_sample += samples
            current, samples = bytearray(), 0
    if current:
        blocks.append((bytes(current), start_sample, samples))
    return blocks


@dataclass(frozen=True)
class StagedCapture:
    manifest: CaptureManifest
    capture_blob: str
    evidence_blob: str
    blocks: list[tuple[bytes, int, int]]

    @property
    def data(self) -> bytes:
        return b"".join(block for block, _, _ in self.blocks)


def stage_flac_blocks(
    store: BlobStore,
    blob_name: str,
    blocks: Sequence[tuple[bytes, int, int]],
    *,
    first: int = 0,
    commit: bool = True,
    lease_id: str | None = None,
) -> list[CaptureBlock]:
    """Stage FLAC blocks as the recorder does (block ids from index and content, numbered from `first`), commit them
    (unless it 'crashed') and describe them as its capture manifest lists them."""
    leased: dict[str, Any] = {"lease_id": lease_id} if lease_id is not None else {}
    capture_blocks, offset = [], 0
    for index, (data, start_sample, samples) in enumerate(blocks, start=first):
        block_id = BlockId.for_content(index, data).encode()
        store.stage_block(blob_name, block_id, data, **leased)
        capture_blocks.append(
            CaptureBlock(
                index=index,
                block_id=block_id,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                byte_offset=offset,
                start_sample=start_sample,
                samples=samples,
                time_offset_seconds=start_sample / RATE,
            )
        )
        offset += len(data)
    if commit:
        store.commit_blocks(blob_name, [b.block_id for b in capture_blocks], **leased)
    return capture_blocks


def flac_track(
    track: str,
    kind: TrackKind,
    blob_name: str,
    blocks: Sequence[tuple[bytes, int, int]],
    capture_blocks: list[CaptureBlock],
    *,
    source_id: int | None = None,
) -> CaptureTrack:
    """A FLAC track of the capture manifest: its blocks, and the whole object's size, samples and hash."""
    whole = b"".join(data for data, _, _ in blocks)
    samples = sum(b.samples for b in capture_blocks)
    return CaptureTrack(
        track=track,
        kind=kind,
        source_id=source_id,
        blob_name=blob_name,
        encoding=AudioEncoding(),
        blocks=capture_blocks,
        bytes=len(whole),
        samples=samples,
        duration_seconds=samples / RATE,
        sha256=hashlib.sha256(whole).hexdigest(),
    )


def rewrite_capture(store: BlobStore, staged: StagedCapture, updated: CaptureManifest) -> StagedCapture:
    """Write the capture's manifest again, as the recorder does when a stream, a track or speaker changes join it."""
    store.write(staged.capture_blob, updated.model_dump_json(indent=2).encode(), content_type="application/json")
    return StagedCapture(updated, staged.capture_blob, staged.evidence_blob, staged.blocks)


def stage_capture(
    container: ContainerClient | BlobStore,
    recording_id: str,
    pcm: npt.NDArray[np.int16],
    *,
    commit: bool = True,
    started_at: datetime = datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
    block_seconds: float = 2.0,
    generation: int = 0,
    blocks_range: tuple[int, int | None] = (0, None),
    lease_id: str | None = None,
) -> StagedCapture:
    """Do what the recorder does: stage the blocks, commit them (unless it 'crashed'), write capture.json (on
    Azurite or in an in-memory store), in the recording's capture generation `generation` (its folder in the
    captures container: `verbatim.evidence.names`). `blocks_range` stages only blocks [start, end) of the stream
    (a continuation holds the blocks after those its fenced generation kept); `lease_id`, the lease the recorder
    holds (in-memory stores only)."""
    store = AzureBlobStore(container) if isinstance(container, ContainerClient) else container
    prefix = capture_prefix(recording_id, generation)
    blob_name = track_blob_name(prefix)
    everything = flac_blocks(pcm, block_seconds)
    first = blocks_range[0]
    blocks = everything[first : blocks_range[1]]
    capture_blocks = stage_flac_blocks(store, blob_name, blocks, first=first, commit=commit, lease_id=lease_id)
    manifest = CaptureManifest(
        recording_id=recording_id,
        call_id=f"call-{recording_id}",
        call_chain_id=f"chain-{recording_id}",
        recorder_instance="recorder-0",
        started_at=started_at,
        ended_at=started_at + timedelta(seconds=len(pcm) / RATE),
        written_at=started_at + timedelta(seconds=len(pcm) / RATE + 1),
        complete=commit,
        generation=generation,
        frames_received=len(pcm) // 320,
        tracks=[flac_track("mixed", "mixed", blob_name, blocks, capture_blocks)],
    )
    capture_blob = manifest_blob_name(prefix)
    store.write(capture_blob, manifest.model_dump_json(indent=2).encode(), content_type="application/json")
    return StagedCapture(manifest, capture_blob, blob_name, blocks)


def stage_video(
    container: ContainerClient | BlobStore,
    staged: StagedCapture,
    *,
    kind: str = "screenShare",
    source_id: int = 30_001,
    participant_id: str | None = "p1",
    start: float = 0.0,
    end: float = 4.0,
    block_seconds: float = 1.5,
) -> StagedCapture:
    """Do what the recorder does with a video stream: real H.264 from the simulator's encoder (its test pattern),
    each access unit behind its timestamp NAL unit, staged and committed in blocks; the capture's manifest is
    written again with the stream in `video_tracks`. `start`/`end`: seconds from the capture's first sample."""
    from devstack.simulator.video import CAMERA, SCREEN, encode

    store = AzureBlobStore(container) if isinstance(container, ContainerClient) else container
    manifest = staged.manifest
    assert manifest.started_at is not None
    origin = int((manifest.started_at - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 10
    frames = encode(
        SCREEN if kind == "screenShare" else CAMERA, f"source {source_id}", start, end, screen=kind == "screenShare"
    )
    name = video_track(kind, source_id)
    blob_name = track_blob_name(capture_prefix(manifest.recording_id, manifest.generation), name)
    blocks: list[CaptureVideoBlock] = []
    pending: list[tuple[int, bytes, bool]] = []
    offset = 0
    everything = bytearray()

    def cut() -> None:
        nonlocal offset, pending
        if not pending:
            return
        data = b"".join(stamped(unit, ticks) for ticks, unit, _ in pending)
        block_id = BlockId.for_content(len(blocks), data)
        store.stage_block(blob_name, block_id.encode(), data)
        blocks.append(
            CaptureVideoBlock(
                index=len(blocks),
                block_id=block_id.encode(),
                size=len(data),
                sha256=block_id.sha256_hex,
                byte_offset=offset,
                units=len(pending),
                key_units=sum(key for _, _, key in pending),
                first_ticks=pending[0][0],
                last_ticks=pending[-1][0],
            )
        )
        everything.extend(data)
        offset += len(data)
        pending = []

    block_start = start
    for frame in frames:
        if frame.seconds - block_start >= block_seconds:
            cut()
            block_start = frame.seconds
        pending.append((origin + round(frame.seconds * 10_000_000), frame.data, is_key_frame(frame.data)))
    cut()
    store.commit_blocks(blob_name, [b.block_id for b in blocks])
    profile = SCREEN if kind == "screenShare" else CAMERA
    track = CaptureVideoTrack(
        track=name,
        kind="screenShare" if kind == "screenShare" else "camera",
        source_id=source_id,
        participant_id=participant_id,
        blob_name=blob_name,
        blocks=blocks,
        bytes=len(everything),
        units=sum(b.units for b in blocks),
        width=profile.width,
        height=profile.height,
        sha256=hashlib.sha256(bytes(everything)).hexdigest(),
    )
    return rewrite_capture(store, staged, manifest.model_copy(update={"video_tracks": [*manifest.video_tracks, track]}))


def stage_speaker(
    container: ContainerClient | BlobStore,
    staged: StagedCapture,
    source_id: int,
    pcm: npt.NDArray[np.int16],
    *,
    block_seconds: float = 2.0,
) -> StagedCapture:
    """Do what the recorder does with unmixed audio: a speaker's own track (`source-<id>.flac`, from the recording's
    first sample, silence where they were quiet), staged and committed in blocks; the capture's manifest is written
    again with the track among its `tracks`."""
    store = AzureBlobStore(container) if isinstance(container, ContainerClient) else container
    manifest = staged.manifest
    name = f"source-{source_id}"
    blob_name = track_blob_name(capture_prefix(manifest.recording_id, manifest.generation), name)
    blocks = flac_blocks(pcm, block_seconds)
    capture_blocks = stage_flac_blocks(store, blob_name, blocks)
    track = flac_track(name, "unmixed", blob_name, blocks, capture_blocks, source_id=source_id)
    return rewrite_capture(store, staged, manifest.model_copy(update={"tracks": [*manifest.tracks, track]}))


def stage_dominant_speakers(
    container: ContainerClient | BlobStore, staged: StagedCapture, changes: Sequence[tuple[float, int | None]]
) -> StagedCapture:
    """Do what the recorder does with the platform's dominant-speaker changes: each (seconds from the recording's
    first sample, audio source id or None for nobody) kept on the audio frames' timeline in the capture's manifest,
    which is written again."""
    store = AzureBlobStore(container) if isinstance(container, ContainerClient) else container
    manifest = staged.manifest
    assert manifest.started_at is not None, "a capture with dominant speakers has a first sample"
    origin = ticks_of(manifest.started_at)
    kept = [DominantSpeakerChange(ticks=origin + round(at * 10_000_000), source_id=source) for at, source in changes]
    return rewrite_capture(store, staged, manifest.model_copy(update={"dominant_speakers": kept}))
