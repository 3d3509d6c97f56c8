"""The Opus access copy for replay, made from the sealed-to-be evidence in chunks that run as parallel
activities, then laid into one Ogg Opus stream whose tags and manifest entry name the evidence's SHA-256.

Each chunk reads only the blocks it needs (the stream header + a byte range, found from the block table),
so no activity downloads or runs for long whatever the length of the call.
"""

from __future__ import annotations

import hashlib
import posixpath

import numpy as np
import numpy.typing as npt

from verbatim.contracts.evidence import AccessCopy, EvidenceTrack
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
from verbatim.platform.blobs import BlobStore

ACCESS_COPY_NAME = "access.opus"
OGG_CONTENT_TYPE = "audio/ogg"
EVIDENCE_TAG = "VERBATIM_EVIDENCE_SHA256"


def access_copy_blob_name(evidence_blob_name: str) -> str:
    return posixpath.join(posixpath.dirname(evidence_blob_name), ACCESS_COPY_NAME)


def chunk_blob_name(recording_id: str, evidence_sha256: str, index: int) -> str:
    # Keyed by the evidence hash too, so chunks of a different object can never be mixed in.
    return f"access-chunks/{recording_id}/{evidence_sha256[:16]}/{index:05d}.vopk"


def plan_access_copy(track: EvidenceTrack, chunk_seconds: int) -> list[ChunkPlan]:
    if track.sample_rate != SAMPLE_RATE or track.channels != 1:
        raise ValueError(
            f"access copies are made from 16 kHz mono evidence, not {track.sample_rate} Hz x {track.channels}"
        )
    return plan_chunks(track.samples, chunk_seconds)


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
    track: EvidenceTrack,
    plan: ChunkPlan,
    *,
    bitrate: int = DEFAULT_BITRATE,
) -> str:
    """One transcoding activity: encode the plan's packets and leave them in scratch; returns the blob name."""
    samples = read_samples(recordings, track, plan.input_start, plan.input_end)
    chunk = encode_chunk(plan, samples, bitrate=bitrate)
    name = chunk_blob_name(recording_id, track.sha256, plan.index)
    scratch.write(name, pack_chunk(chunk))
    return name


def assemble_access_copy(
    recordings: BlobStore,
    scratch: BlobStore,
    recording_id: str,
    track: EvidenceTrack,
    chunk_names: list[str],
    *,
    bitrate: int = DEFAULT_BITRATE,
) -> AccessCopy:
    """The concatenation activity: one Ogg Opus stream from the chunks, uploaded beside the evidence. The
    chunks stay in scratch (a retry can assemble again) until `discard_access_chunks` after the seal."""
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
        input_sample_rate=track.sample_rate,
        total_samples=track.samples,
        serial=int(track.sha256[:8], 16),
        comments={"TITLE": f"recording {recording_id}", EVIDENCE_TAG: track.sha256, "ENCODER": "verbatim"},
    )
    name = access_copy_blob_name(track.blob_name)
    # Tagged for the access-copy tiering rule (verbatim.evidence.kinds).
    version_id = recordings.write(name, ogg, content_type=OGG_CONTENT_TYPE, tags=kind_tags(ACCESS_COPY))
    return AccessCopy(
        blob_name=name,
        version_id=version_id,
        bytes=len(ogg),
        sha256=hashlib.sha256(ogg).hexdigest(),
        bitrate=bitrate,
        duration_seconds=track.samples / track.sample_rate,
        source_track=track.track,
        source_sha256=track.sha256,
    )


def discard_access_chunks(scratch: BlobStore, recording_id: str) -> int:
    """Delete a recording's encoded chunks from scratch (best effort; returns how many were deleted)."""
    return sum(scratch.delete(name) for name in scratch.names(f"access-chunks/{recording_id}/"))
