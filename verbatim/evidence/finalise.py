"""Finalise a capture: commit (or check) the staged blocks in the captures container against the capture
manifest, re-hash every block and the whole object, measure the duration by decoding, and write exactly the
bytes that were hashed into the recordings container under the name the server derives for the part — once:
a sealed name is never written again (a retry finds the same bytes there, anything else is refused).

Nothing is thrown away or repaired: what does not match is written down in the track's `problems` and
sealed with it, so a regulator sees exactly what was captured and what went wrong. The sealed block table is
the stored object's (its committed block list, hashed and measured by decoding), so it always covers the
samples sealed, whatever the capture manifest said.

A continuation part (a capture generation after a salvage) holds the recorder's blocks from where the part
before ended; its sealed object is the FLAC stream header of part 0 followed by those blocks, so it decodes on
its own, and its block table counts samples from the part's first sample (`first_sample` in the recording).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import tempfile
from typing import IO

from av.error import FFmpegError

from verbatim.contracts.evidence import AudioGap, ChunkDigests, EvidenceTrack, SealedBlock, SpeechSpan
from verbatim.contracts.recorder import CaptureManifest, CaptureTrack, CaptureVideoTrack
from verbatim.evidence import names
from verbatim.evidence.blocks import decode_block_id
from verbatim.evidence.dominant import dominant_speaker_spans
from verbatim.evidence.flac import count_samples, iter_samples, samples_per_block
from verbatim.evidence.kinds import EVIDENCE, kind_tags
from verbatim.evidence.sealed import ChunkHasher
from verbatim.evidence.speech import speech_spans
from verbatim.platform.blobs import BlobExists, BlobNotFound, BlobStore, Block

log = logging.getLogger(__name__)

FLAC_CONTENT_TYPE = "audio/flac"
_DOWNLOAD_CHUNK = 4 * 1024 * 1024


class SealedNameTaken(RuntimeError):
    """A sealed name already holds other bytes than the ones being sealed: it is never written again."""


def finalise(
    captures: BlobStore,
    recordings: BlobStore,
    capture: CaptureManifest,
    *,
    recording_id: str,
    part: int = 0,
    stream_header: bytes = b"",
) -> list[EvidenceTrack]:
    """Finalise every track of a capture (the mixed record first) into the sealed part `part`.
    `stream_header`: for a continuation, the FLAC stream header its blocks are decoded with (from part 0)."""
    tracks = sorted(capture.tracks, key=lambda t: (t.kind != "mixed", t.track))
    sealed = [
        finalise_track(
            captures,
            recordings,
            track,
            sealed_name=names.sealed_track_name(recording_id, part, track.track),
            capture_name=names.capture_track_name(recording_id, capture.generation, track.track),
            stream_header=stream_header if part else b"",
        )
        for track in tracks
    ]
    if capture.dominant_speakers and capture.started_at is not None:
        # The mixed track's sample 0 is the capture's first audio frame (`started_at`), the dominant-speaker
        # changes' timeline; without it (a salvage that lost the start) there is nothing to place them against.
        from verbatim.evidence.video import ticks_of  # here: the video module builds on this one

        origin = ticks_of(capture.started_at)
        for track in sealed:
            if track.kind == "mixed":
                track.speech = dominant_speaker_spans(
                    capture.dominant_speakers, origin_ticks=origin, duration_seconds=track.duration_seconds
                )
    return sealed


def finalise_track(
    captures: BlobStore,
    recordings: BlobStore,
    track: CaptureTrack,
    *,
    sealed_name: str,
    capture_name: str,
    stream_header: bytes = b"",
) -> EvidenceTrack:
    """`capture_name` is where the server says the track is; the manifest's own `blob_name` is not used.

    The sealed block table describes the object as stored — its committed block list, each block hashed from
    the bytes sealed and its samples measured by decoding — never the capture manifest's account of it: a
    manifest written before a late commit (a salvage that raced the recorder's stop) would describe fewer
    blocks than the object holds, and a table that does not cover the object's samples cannot be replayed
    from. Where the two differ, the difference is written in `problems`."""
    problems = _commit_or_check_blocks(captures, capture_name, track)
    if track.blob_name != capture_name:
        problems.append(f"the capture manifest names {track.blob_name[:200]!r}; the track was read from {capture_name}")
    with tempfile.TemporaryFile() as spool:
        stored, whole, block_hashes = _download_stored(captures, capture_name, spool, header=stream_header)
        size = spool.tell()
        ends = list(itertools.accumulate((block.size for block in stored), initial=len(stream_header)))[1:]
        spool.seek(0)
        try:
            per_block = samples_per_block(spool, ends) if stored else []
            samples = sum(per_block) if stored else _count(spool, size, len(stream_header))
        except (FFmpegError, ValueError) as error:
            problems.append(f"the object does not decode as FLAC: {error}")
            per_block, samples = [0] * len(stored), 0
        captured_size = size - len(stream_header)
        if not stream_header and whole != track.sha256:
            problems.append(f"SHA-256 of the stored object is {whole}, the recorder reported {track.sha256}")
        if captured_size != track.bytes:
            problems.append(f"the stored object has {captured_size} bytes, the recorder reported {track.bytes}")
        chunks = _chunk_digests(spool)
        speech = _speech(spool, track) if track.kind == "unmixed" and samples else []
        spool.seek(0)
        version_id = _write_once(recordings, sealed_name, spool, size, whole)
    described = {block.block_id: block for block in track.blocks}
    sealed: list[SealedBlock] = []
    offset, start = len(stream_header), 0
    for position, (block, digest, count) in enumerate(zip(stored, block_hashes, per_block, strict=True)):
        carried = decode_block_id(block.id)
        staged = described.get(block.id)
        if staged is not None and digest != staged.sha256:
            problems.append(
                f"block {staged.index} (bytes {staged.byte_offset}..{staged.byte_offset + staged.size}, "
                f"{staged.time_offset_seconds:.1f} s) hashes to {digest}, the recorder staged {staged.sha256}"
            )
        elif staged is None and carried is not None and digest != carried.sha256_hex:
            problems.append(f"block {carried.sequence} hashes to {digest}, its id says {carried.sha256_hex}")
        sealed.append(
            SealedBlock(
                index=carried.sequence if carried is not None else position,
                block_id=block.id,
                size=block.size,
                sha256=digest,
                byte_offset=offset,
                start_sample=start,
                samples=count,
            )
        )
        offset += block.size
        start += count
    reported = sum(block.samples for block in track.blocks)
    if samples and reported and samples != reported:
        problems.append(f"decoding gives {samples} samples, the recorder reported {reported}")
    first_sample = track.blocks[0].start_sample if track.blocks else 0
    rate = track.encoding.sample_rate
    for problem in problems:
        log.warning("finalise %s: %s", capture_name, problem)
    return EvidenceTrack(
        track=track.track,
        kind=track.kind,
        source_id=track.source_id,
        blob_name=sealed_name,
        version_id=version_id,
        bytes=size,
        sha256=whole,
        chunks=chunks,
        sample_rate=rate,
        channels=track.encoding.channels,
        bits_per_sample=track.encoding.bits_per_sample,
        samples=samples,
        duration_seconds=samples / rate,
        blocks=sealed,
        gaps=[
            AudioGap(start_sample=g.start_sample - first_sample, samples=g.samples)
            for g in track.gaps
            if g.start_sample >= first_sample
        ],
        speech=speech,
        problems=problems,
    )


def _speech(spool: IO[bytes], track: CaptureTrack) -> list[SpeechSpan]:
    """When the speaker of an unmixed track spoke (for the timeline); none when it does not decode."""
    spool.seek(0)
    try:
        return speech_spans(iter_samples(spool), track.encoding.sample_rate)
    except (FFmpegError, ValueError) as error:
        log.warning("speech activity of %s not measured: %s", track.track, error)
        return []


def _count(spool: IO[bytes], size: int, header: int) -> int:
    """Samples of an object stored without a block list (nothing committed: none)."""
    return count_samples(spool) if size > header else 0


def _write_once(
    recordings: BlobStore, name: str, spool: IO[bytes], size: int, sha256: str, content_type: str = FLAC_CONTENT_TYPE
) -> str | None:
    """Write the sealed object, tagged as evidence; a retry finds the same bytes there and reuses them."""
    try:
        return recordings.write_stream(name, spool, size, content_type=content_type, tags=kind_tags(EVIDENCE))
    except BlobExists:
        stored = recordings.read_versioned(name)
        if hashlib.sha256(stored.data).hexdigest() != sha256:
            raise SealedNameTaken(f"{name} already holds other bytes; a sealed name is never written twice") from None
        return stored.version_id


def _chunk_digests(spool: IO[bytes]) -> ChunkDigests:
    """The SHA-256 of each fixed-size chunk of the sealed object (what a ranged read of the sealed evidence is
    checked against, `verbatim.evidence.sealed`), from the spool that holds it whole."""
    spool.seek(0)
    hasher = ChunkHasher()
    while piece := spool.read(_DOWNLOAD_CHUNK):
        hasher.update(piece)
    return hasher.digests()


def _commit_or_check_blocks(
    container: BlobStore, name: str, track: CaptureTrack | CaptureVideoTrack, content_type: str = FLAC_CONTENT_TYPE
) -> list[str]:
    """Commit the manifest's blocks when the recorder could not, else check the committed list matches."""
    try:
        committed, uncommitted = container.blocks(name)
    except BlobNotFound:
        committed, uncommitted = [], []
    expected = [block.block_id for block in track.blocks]
    committed_ids = [block.id for block in committed]
    problems: list[str] = []
    for block in track.blocks:
        carried = decode_block_id(block.block_id)
        if carried is None or carried.sequence != block.index or carried.sha256_hex != block.sha256:
            problems.append(f"block {block.index}: its id does not carry its sequence and hash")
    if committed_ids == expected:
        return problems
    staged = {block.id for block in uncommitted} | set(committed_ids)
    if not committed_ids and set(expected) <= staged and expected:
        container.commit_blocks(name, expected, content_type=content_type)
        log.info("committed %d staged blocks of %s", len(expected), name)
        return problems
    missing = [i for i, block_id in enumerate(expected) if block_id not in staged]
    if missing:
        problems.append(f"blocks {_ranges(missing)} of the capture manifest were never staged")
    if committed_ids != expected:
        problems.append(
            f"the committed block list ({len(committed_ids)} blocks) differs from the capture manifest "
            f"({len(expected)} blocks)"
        )
    return problems


def _download_stored(
    container: BlobStore, name: str, spool: IO[bytes], *, header: bytes = b""
) -> tuple[list[Block], str, list[str]]:
    """Stream the committed object into `spool` (after `header`), hashing the whole sealed object (header
    included) and each committed block on the way; returns the committed block list the bytes are of. The
    list is read before and after the download: a commit in between (nothing should write a capture being
    finalised, but a late recorder did) means the download is done again over the new list."""
    start = spool.tell()
    for _ in range(_CONSISTENT_READS):
        spool.seek(start)
        spool.truncate()
        spool.write(header)
        before = _committed(container, name)
        whole, block_hashes, size = _hash_blocks(container, name, before, spool, header)
        after = _committed(container, name)
        if before == after and (size == sum(block.size for block in before) or not before):
            return before, whole, block_hashes
    raise StorageChanged(f"{name} kept changing while it was being finalised")


_CONSISTENT_READS = 5


class StorageChanged(RuntimeError):
    """The capture object changed under finalise every time it was read (retry the activity)."""


def _committed(container: BlobStore, name: str) -> list[Block]:
    try:
        committed, _ = container.blocks(name)
    except BlobNotFound:
        return []
    return committed


def _hash_blocks(
    container: BlobStore, name: str, blocks: list[Block], spool: IO[bytes], header: bytes
) -> tuple[str, list[str], int]:
    whole = hashlib.sha256(header)
    bounds = list(itertools.pairwise(itertools.accumulate((b.size for b in blocks), initial=0)))
    block_hashes = [hashlib.sha256() for _ in bounds]
    position = 0
    try:
        for chunk in container.chunks(name):
            whole.update(chunk)
            spool.write(chunk)
            end = position + len(chunk)
            for (lo, hi), digest in zip(bounds, block_hashes, strict=True):
                if lo < end and hi > position:
                    digest.update(chunk[max(0, lo - position) : min(len(chunk), hi - position)])
            position = end
    except BlobNotFound:
        pass  # nothing was committed: an empty object
    return whole.hexdigest(), [digest.hexdigest() for digest in block_hashes], position


def _ranges(indexes: list[int]) -> str:
    spans: list[str] = []
    start = previous = indexes[0]
    for index in [*indexes[1:], -2]:
        if index != previous + 1:
            spans.append(str(start) if start == previous else f"{start}-{previous}")
            start = index
        previous = index
    return ", ".join(spans)
