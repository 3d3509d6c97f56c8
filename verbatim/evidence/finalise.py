"""Finalise a capture: commit (or check) the staged blocks against the recorder's capture manifest, re-hash
every block and the whole object from storage, and measure the duration by decoding.

Nothing is thrown away or repaired: what does not match is written down in the track's `problems` and
sealed with it, so a regulator sees exactly what was captured and what went wrong.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from typing import IO

from av.error import FFmpegError

from verbatim.contracts.evidence import AudioGap, EvidenceTrack, SealedBlock
from verbatim.contracts.recorder import CaptureManifest, CaptureTrack
from verbatim.evidence.blocks import decode_block_id
from verbatim.evidence.flac import count_samples
from verbatim.evidence.kinds import EVIDENCE, kind_tags
from verbatim.platform.blobs import BlobStore

log = logging.getLogger(__name__)

FLAC_CONTENT_TYPE = "audio/flac"
_DOWNLOAD_CHUNK = 4 * 1024 * 1024


def finalise(container: BlobStore, capture: CaptureManifest) -> list[EvidenceTrack]:
    """Finalise every track of a capture (the mixed record first)."""
    tracks = sorted(capture.tracks, key=lambda t: (t.kind != "mixed", t.track))
    return [finalise_track(container, track) for track in tracks]


def finalise_track(container: BlobStore, track: CaptureTrack) -> EvidenceTrack:
    problems = _commit_or_check_blocks(container, track)
    version_id = container.version_of(track.blob_name)
    # The tiering rule for evidence matches this tag on the current version (verbatim.evidence.kinds).
    container.set_tags(track.blob_name, kind_tags(EVIDENCE), version_id=version_id)
    with tempfile.TemporaryFile() as spool:
        whole, block_hashes = _download_and_hash(container, track, spool, version_id)
        size = spool.tell()
        spool.seek(0)
        try:
            samples = count_samples(spool)
        except (FFmpegError, ValueError) as error:
            problems.append(f"the object does not decode as FLAC: {error}")
            samples = 0
    if whole != track.sha256:
        problems.append(f"SHA-256 of the stored object is {whole}, the recorder reported {track.sha256}")
    if size != track.bytes:
        problems.append(f"the stored object has {size} bytes, the recorder reported {track.bytes}")
    for block, digest in zip(track.blocks, block_hashes, strict=True):
        if digest != block.sha256:
            problems.append(
                f"block {block.index} (bytes {block.byte_offset}..{block.byte_offset + block.size}, "
                f"{block.time_offset_seconds:.1f} s) hashes to {digest}, the recorder staged {block.sha256}"
            )
    if samples and track.samples and samples != track.samples:
        problems.append(f"decoding gives {samples} samples, the recorder reported {track.samples}")
    rate = track.encoding.sample_rate
    for problem in problems:
        log.warning("finalise %s: %s", track.blob_name, problem)
    return EvidenceTrack(
        track=track.track,
        kind=track.kind,
        source_id=track.source_id,
        blob_name=track.blob_name,
        version_id=version_id,
        bytes=size,
        sha256=whole,
        sample_rate=rate,
        channels=track.encoding.channels,
        bits_per_sample=track.encoding.bits_per_sample,
        samples=samples,
        duration_seconds=samples / rate,
        blocks=[
            SealedBlock(
                index=b.index,
                block_id=b.block_id,
                size=b.size,
                sha256=digest,
                byte_offset=b.byte_offset,
                start_sample=b.start_sample,
                samples=b.samples,
            )
            for b, digest in zip(track.blocks, block_hashes, strict=True)
        ],
        gaps=[AudioGap(start_sample=g.start_sample, samples=g.samples) for g in track.gaps],
        problems=problems,
    )


def _commit_or_check_blocks(container: BlobStore, track: CaptureTrack) -> list[str]:
    """Commit the manifest's blocks when the recorder could not, else check the committed list matches."""
    committed, uncommitted = container.blocks(track.blob_name)
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
        container.commit_blocks(track.blob_name, expected, content_type=FLAC_CONTENT_TYPE)
        log.info("committed %d staged blocks of %s", len(expected), track.blob_name)
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


def _download_and_hash(
    container: BlobStore, track: CaptureTrack, spool: IO[bytes], version_id: str | None
) -> tuple[str, list[str]]:
    """Stream the object into `spool`, hashing the whole and each manifest block on the way."""
    whole = hashlib.sha256()
    bounds = [(b.byte_offset, b.byte_offset + b.size) for b in track.blocks]
    block_hashes = [hashlib.sha256() for _ in bounds]
    position = 0
    for chunk in container.chunks(track.blob_name, version_id=version_id):
        whole.update(chunk)
        spool.write(chunk)
        end = position + len(chunk)
        for (start, stop), digest in zip(bounds, block_hashes, strict=True):
            if start < end and stop > position:
                digest.update(chunk[max(0, start - position) : min(len(chunk), stop - position)])
        position = end
    return whole.hexdigest(), [digest.hexdigest() for digest in block_hashes]


def _ranges(indexes: list[int]) -> str:
    spans: list[str] = []
    start = previous = indexes[0]
    for index in [*indexes[1:], -2]:
        if index != previous + 1:
            spans.append(str(start) if start == previous else f"{start}-{previous}")
            start = index
        previous = index
    return ", ".join(spans)
