"""Reading the lossless evidence: FLAC metadata, decoding to count samples, decoding a sample range.

The recorder writes a native FLAC stream whose STREAMINFO carries no totals (unknown length, zero MD5), so
the duration is measured by decoding, and a range of blocks decodes on its own once the stream header
(`fLaC` + metadata blocks) is put in front of it. PyAV (libavcodec) decodes; libsndfile refuses streams
of unknown length.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

import av
import numpy as np
import numpy.typing as npt

FLAC_MAGIC = b"fLaC"
# The longest metadata we read to find the first frame; the recorder writes only STREAMINFO (42 bytes).
MAX_HEADER_BYTES = 64 * 1024


class NotFlac(ValueError):
    """Bytes that are not a FLAC stream (or whose header is cut short)."""


@dataclass(frozen=True)
class StreamInfo:
    sample_rate: int
    channels: int
    bits_per_sample: int
    total_samples: int  # 0 when unknown, as the recorder writes it
    header_length: int  # bytes of `fLaC` + metadata; the first audio frame starts here


def parse_header(data: bytes) -> StreamInfo:
    """Parse `fLaC` and the metadata blocks at the start of `data`."""
    if not data.startswith(FLAC_MAGIC):
        raise NotFlac("the object does not start with fLaC")
    offset, info = 4, None
    while True:
        if offset + 4 > len(data):
            raise NotFlac("the FLAC metadata is cut short")
        block_header = data[offset]
        length = int.from_bytes(data[offset + 1 : offset + 4], "big")
        body = data[offset + 4 : offset + 4 + length]
        if len(body) < length:
            raise NotFlac("the FLAC metadata is cut short")
        if block_header & 0x7F == 0:  # STREAMINFO
            packed = int.from_bytes(body[10:18], "big")
            info = (packed >> 44, ((packed >> 41) & 0x7) + 1, ((packed >> 36) & 0x1F) + 1, packed & ((1 << 36) - 1))
        offset += 4 + length
        if block_header & 0x80:
            break
    if info is None:
        raise NotFlac("the FLAC stream has no STREAMINFO")
    return StreamInfo(*info, header_length=offset)


def iter_samples(stream: IO[bytes] | bytes) -> Iterator[npt.NDArray[np.int16]]:
    """Decode a FLAC stream (mono or the first channel) to int16 arrays, frame by frame."""
    source = io.BytesIO(stream) if isinstance(stream, bytes) else stream
    with av.open(source, format="flac", mode="r") as container:
        for frame in container.decode(audio=0):
            samples = frame.to_ndarray()
            yield np.ascontiguousarray(samples[0] if samples.ndim == 2 else samples).astype(np.int16, copy=False)


def count_samples(stream: IO[bytes] | bytes) -> int:
    """Decode the whole stream and count its samples (per channel); raises av.error.FFmpegError on corrupt data."""
    return sum(len(chunk) for chunk in iter_samples(stream))


def samples_per_block(stream: IO[bytes] | bytes, ends: Sequence[int]) -> list[int]:
    """Decode the stream and count the samples of the frames that start in each block, the blocks ending at byte
    positions `ends` of the stream (ascending). Every decoded sample is counted in some block (a frame without a
    known position in the one before it), so the counts add up to the stream's samples. Raises
    av.error.FFmpegError (or ValueError) on data that does not decode."""
    per_block = [0] * len(ends)
    if not ends:
        return per_block
    source = io.BytesIO(stream) if isinstance(stream, bytes) else stream
    index = 0
    with av.open(source, format="flac", mode="r") as container:
        for packet in container.demux(audio=0):
            samples = sum(frame.samples for frame in packet.decode())
            if packet.pos is not None and packet.pos >= 0:
                index = bisect.bisect_right(ends, int(packet.pos))
            per_block[min(index, len(ends) - 1)] += samples
    return per_block


def decode_range(header: bytes, frames: bytes, skip: int, count: int) -> npt.NDArray[np.int16]:
    """Samples `skip` .. `skip + count` of `frames` (whole FLAC frames cut from a stream), decoded with the
    stream's `header` in front. Returns fewer samples when the frames end first."""
    out: list[npt.NDArray[np.int16]] = []
    position, wanted_end = 0, skip + count
    for chunk in iter_samples(header + frames):
        start, end = position, position + len(chunk)
        position = end
        if end <= skip:
            continue
        out.append(chunk[max(0, skip - start) : min(len(chunk), wanted_end - start)])
        if end >= wanted_end:
            break
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)
