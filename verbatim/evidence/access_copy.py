"""The Opus access copy for replay, made from the sealed-to-be evidence in chunks that run as parallel
activities, then laid into one Ogg Opus stream whose tags and manifest entry name the evidence's SHA-256.

Each chunk reads only the blocks it needs (the stream header + a byte range, found from the block table),
so no activity downloads or runs for long whatever the length of the call.

A recording sealed in parts (a continuation after a salvage) gets one access copy of the whole with each part:
the copy sealed with part n covers parts 0..n on the recording's timeline (each part at its first sample,
silence where nothing was sealed), and names the parts' evidence hashes.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from verbatim.contracts.evidence import AccessCopy, EvidenceTrack
from verbatim.evidence import names
from verbatim.evidence.flac import MAX_HEADER_BYTES, NotFlac, decode_range, parse_header
from verbatim.evidence.kinds import ACCESS_COPY, kind_tags
from verbatim.evidence.ogg import write_ogg_opus
from verbatim.evidence.opus import (
    DEFAULT_BITRATE,
    SAMPLE_RATE,
    ChunkPlan,
    encode_chunk,
    pack_chunk,
    plan_chunks,
    unpack_chunk,
)
from verbatim.evidence.sealed import chunk_digests
from verbatim.platform.blobs import BlobExists, BlobStore

ACCESS_COPY_NAME = "access.opus"
OGG_CONTENT_TYPE = "audio/ogg"
EVIDENCE_TAG = "VERBATIM_EVIDENCE_SHA256"


def access_copy_blob_name(evidence_blob_name: str) -> str:
    """The access copy beside a sealed evidence blob (for readers; the seal derives it from the id)."""
    return posixpath.join(posixpath.dirname(evidence_blob_name), ACCESS_COPY_NAME)


@dataclass(frozen=True)
class Timeline:
    """The mixed track of every sealed part so far, each at its first sample in the recording."""

    parts: tuple[tuple[int, EvidenceTrack], ...]

    @classmethod
    def single(cls, track: EvidenceTrack) -> Timeline:
        return cls(((0, track),))

    @property
    def samples(self) -> int:
        first, last = self.parts[-1]
        return first + last.samples

    @property
    def sample_rate(self) -> int:
        return self.parts[-1][1].sample_rate

    @property
    def source_sha256(self) -> str:
        """The evidence's SHA-256 for one part; for several, SHA-256 of their SHA-256s, one per line, in order."""
        if len(self.parts) == 1:
            return self.parts[0][1].sha256
        return hashlib.sha256("\n".join(track.sha256 for _, track in self.parts).encode()).hexdigest()


def chunk_blob_name(recording_id: str, evidence_sha256: str, index: int) -> str:
    # Keyed by the evidence hash too, so chunks of a different object can never be mixed in.
    return f"access-chunks/{recording_id}/{evidence_sha256[:16]}/{index:05d}.vopk"


def plan_access_copy(track: EvidenceTrack | Timeline, chunk_seconds: int) -> list[ChunkPlan]:
    timeline = track if isinstance(track, Timeline) else Timeline.single(track)
    for _, part in timeline.parts:
        if part.sample_rate != SAMPLE_RATE or part.channels != 1:
            raise ValueError(
                f"access copies are made from 16 kHz mono evidence, not {part.sample_rate} Hz x {part.channels}"
            )
    return plan_chunks(timeline.samples, chunk_seconds)


def read_timeline(recordings: BlobStore, timeline: Timeline, start: int, end: int) -> npt.NDArray[np.int16]:
    """Samples [start, end) of the recording: each part's own, silence where no part was sealed."""
    if len(timeline.parts) == 1 and timeline.parts[0][0] == 0:
        return read_samples(recordings, timeline.parts[0][1], start, end)
    out = np.zeros(max(0, end - start), dtype=np.int16)
    for first, part in timeline.parts:
        lo, hi = max(start, first), min(end, first + part.samples)
        if lo < hi:
            piece = read_samples(recordings, part, lo - first, hi - first)
            out[lo - start : lo - start + len(piece)] = piece[: hi - lo]
    return out


def read_samples(recordings: BlobStore, track: EvidenceTrack, start: int, end: int) -> npt.NDArray[np.int16]:
    """Evidence samples [start, end), reading only the blocks that hold them when the block table allows."""
    name = track.blob_name
    covering = [b for b in track.blocks if b.start_sample < end and b.start_sample + b.samples > start]
    if covering and all(b.samples for b in track.blocks):
        head = recordings.read(name, offset=0, length=min(MAX_HEADER_BYTES, track.bytes), version_id=track.version_id)
        try:
            header_length = parse_header(head).header_length
        except NotFlac:
            header_length = 0
        if header_length:
            first, last = covering[0], covering[-1]
            length = last.byte_offset + last.size - first.byte_offset
            body = recordings.read(name, offset=first.byte_offset, length=length, version_id=track.version_id)
            if first.byte_offset == 0:
                body = body[header_length:]
            return decode_range(head[:header_length], body, start - first.start_sample, end - start)
    # No usable block table (or an odd header): decode the whole object.
    data = recordings.read(name, version_id=track.version_id)
    return decode_range(b"", data, start, end - start)


def encode_access_chunk(
    recordings: BlobStore,
    scratch: BlobStore,
    recording_id: str,
    track: EvidenceTrack | Timeline,
    plan: ChunkPlan,
    *,
    bitrate: int = DEFAULT_BITRATE,
) -> str:
    """One transcoding activity: encode the plan's packets and leave them in scratch; returns the blob name."""
    timeline = track if isinstance(track, Timeline) else Timeline.single(track)
    samples = read_timeline(recordings, timeline, plan.input_start, plan.input_end)
    chunk = encode_chunk(plan, samples, bitrate=bitrate)
    name = chunk_blob_name(recording_id, timeline.source_sha256, plan.index)
    scratch.write(name, pack_chunk(chunk))
    return name


def assemble_access_copy(
    recordings: BlobStore,
    scratch: BlobStore,
    recording_id: str,
    track: EvidenceTrack | Timeline,
    chunk_names: list[str],
    *,
    part: int = 0,
    bitrate: int = DEFAULT_BITRATE,
) -> AccessCopy:
    """The concatenation activity: one Ogg Opus stream from the chunks, written once beside the part's evidence.
    The chunks stay in scratch (a retry can assemble again) until `discard_access_chunks` after the seal."""
    timeline = track if isinstance(track, Timeline) else Timeline.single(track)
    source = timeline.source_sha256
    chunks = [unpack_chunk(scratch.read(name)) for name in chunk_names]
    chunks.sort(key=lambda c: c.first_packet)
    expected = 0
    for chunk in chunks:
        if chunk.first_packet != expected:
            raise ValueError(f"access-copy chunks of {recording_id} do not join: packet {expected} is missing")
        expected += len(chunk.packets)
    ogg = write_ogg_opus(
        (packet for chunk in chunks for packet in chunk.packets),
        pre_skip=chunks[0].pre_skip,
        input_sample_rate=timeline.sample_rate,
        total_samples=timeline.samples,
        serial=int(source[:8], 16),
        comments={"TITLE": f"recording {recording_id}", EVIDENCE_TAG: source, "ENCODER": "verbatim"},
    )
    name = names.access_copy_name(recording_id, part)
    digest = hashlib.sha256(ogg).hexdigest()
    try:
        # Written once; tagged for the access-copy tiering rule (verbatim.evidence.kinds).
        version_id = recordings.write(
            name, ogg, overwrite=False, content_type=OGG_CONTENT_TYPE, tags=kind_tags(ACCESS_COPY)
        )
    except BlobExists:
        stored = recordings.read_versioned(name)
        if hashlib.sha256(stored.data).hexdigest() != digest:
            raise ValueError(f"{name} already holds another access copy; a sealed name is written once") from None
        version_id = stored.version_id
    return AccessCopy(
        blob_name=name,
        version_id=version_id,
        bytes=len(ogg),
        sha256=digest,
        chunks=chunk_digests(ogg),
        bitrate=bitrate,
        duration_seconds=timeline.samples / timeline.sample_rate,
        source_track=timeline.parts[-1][1].track,
        source_sha256=source,
        source_parts=[part_track.sha256 for _, part_track in timeline.parts] if len(timeline.parts) > 1 else [],
    )


def discard_access_chunks(scratch: BlobStore, recording_id: str, source_sha256: str | None = None) -> int:
    """Delete a recording's encoded chunks (of one source, when given) from scratch; returns how many."""
    prefix = f"access-chunks/{recording_id}/" + (f"{source_sha256[:16]}/" if source_sha256 else "")
    return sum(scratch.delete(name) for name in scratch.names(prefix))
