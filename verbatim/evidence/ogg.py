"""A minimal Ogg Opus muxer and demuxer (RFC 3533, RFC 7845) for the access copy.

Written here rather than through libavformat so that packets encoded by separate, parallel activities are
laid into ONE logical stream — one OpusHead, one OpusTags, continuous granule positions, end trimming on
the last page — instead of a chain of files that players handle poorly.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

OPUS_GRANULE_RATE = 48_000
_MAX_SEGMENTS = 255
_PACKETS_PER_PAGE = 50  # one second of 20 ms packets: a small page, cheap to seek


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32: polynomial 0x04C11DB7, no reflection, initial value and final XOR 0."""
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def opus_packet_samples(packet: bytes, rate: int = OPUS_GRANULE_RATE) -> int:
    """Samples (at `rate`) a packet decodes to, from its TOC byte (RFC 6716 §3.1)."""
    if not packet:
        raise ValueError("an empty Opus packet")
    toc = packet[0]
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        frame = (10, 20, 40, 60)[config & 3] * rate // 1000
    elif config < 16:  # hybrid: 10, 20 ms
        frame = (10, 20)[config & 1] * rate // 1000
    else:  # CELT: 2.5, 5, 10, 20 ms
        frame = (rate // 400) << (config & 3)
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        if len(packet) < 2:
            raise ValueError("a code-3 Opus packet without its frame count")
        frames = packet[1] & 0x3F
    return frame * frames


def opus_head(pre_skip: int, input_sample_rate: int, channels: int = 1) -> bytes:
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, input_sample_rate, 0, 0)


def opus_tags(vendor: str, comments: Mapping[str, str]) -> bytes:
    body = b"OpusTags" + struct.pack("<I", len(vendor.encode())) + vendor.encode()
    body += struct.pack("<I", len(comments))
    for key, value in comments.items():
        comment = f"{key}={value}".encode()
        body += struct.pack("<I", len(comment)) + comment
    return body


class _PageWriter:
    def __init__(self, serial: int) -> None:
        self.serial = serial
        self.sequence = 0
        self.out = bytearray()

    def page(self, packets: list[bytes], granule: int, *, first: bool = False, last: bool = False) -> None:
        lacing = bytearray()
        for packet in packets:
            lacing.extend([255] * (len(packet) // 255))
            lacing.append(len(packet) % 255)
        if len(lacing) > _MAX_SEGMENTS:
            raise ValueError("too many segments for one Ogg page")
        flags = (0x02 if first else 0) | (0x04 if last else 0)
        header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, self.serial, self.sequence, 0, len(lacing))
        page = bytearray(header + bytes(lacing) + b"".join(packets))
        struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
        self.out.extend(page)
        self.sequence += 1


def write_ogg_opus(
    packets: Iterable[bytes],
    *,
    pre_skip: int,
    input_sample_rate: int,
    total_samples: int,
    serial: int,
    comments: Mapping[str, str],
    vendor: str = "verbatim",
) -> bytes:
    """One Ogg Opus stream of mono `packets`. `total_samples` (at `input_sample_rate`) sets the end trim:
    the last page's granule is pre-skip + the real length, so players drop the encoder's padding."""
    writer = _PageWriter(serial)
    writer.page([opus_head(pre_skip, input_sample_rate)], 0, first=True)
    writer.page([opus_tags(vendor, comments)], 0)
    end_granule = pre_skip + total_samples * OPUS_GRANULE_RATE // input_sample_rate
    pages: list[tuple[list[bytes], int]] = []
    pending: list[bytes] = []
    granule = segments = 0
    for packet in packets:
        needed = len(packet) // 255 + 1
        if pending and (len(pending) >= _PACKETS_PER_PAGE or segments + needed > _MAX_SEGMENTS):
            pages.append((pending, granule))
            pending, segments = [], 0
        pending.append(packet)
        segments += needed
        granule += opus_packet_samples(packet)
    if pending:
        pages.append((pending, granule))
    if granule < end_granule or not pages:
        raise ValueError(f"the packets cover {granule} samples at 48 kHz, fewer than the {end_granule} to be played")
    for page_packets, page_granule in pages[:-1]:
        writer.page(page_packets, page_granule)
    # The last page carries end-of-stream and the trimmed granule, so players drop the encoder's padding.
    writer.page(pages[-1][0], end_granule, last=True)
    return bytes(writer.out)


@dataclass
class OggOpusStream:
    """What `read_ogg_opus` found: the header fields, comments, packets and the final granule."""

    pre_skip: int
    input_sample_rate: int
    channels: int
    vendor: str
    comments: dict[str, str]
    packets: list[bytes] = field(default_factory=list)
    final_granule: int = 0
    pages: int = 0

    @property
    def duration_samples_48k(self) -> int:
        return self.final_granule - self.pre_skip


class InvalidOgg(ValueError):
    """Not a single, intact Ogg Opus stream."""


def read_ogg_opus(data: bytes) -> OggOpusStream:
    """Parse and check a single-stream Ogg Opus file: page CRCs, sequence numbers, BOS/EOS, headers."""
    offset, expected_sequence, serial = 0, 0, None
    packets: list[bytes] = []
    partial = b""
    final_granule, ended = 0, False
    while offset < len(data):
        if ended:
            raise InvalidOgg(f"data after the end-of-stream page at byte {offset}")
        if data[offset : offset + 4] != b"OggS" or offset + 27 > len(data):
            raise InvalidOgg(f"no Ogg page at byte {offset}")
        _, version, flags, granule, page_serial, sequence, crc, count = struct.unpack_from("<4sBBqIIIB", data, offset)
        lacing = data[offset + 27 : offset + 27 + count]
        length = 27 + count + sum(lacing)
        page = bytearray(data[offset : offset + length])
        if len(page) < length:
            raise InvalidOgg(f"the page at byte {offset} is cut short")
        struct.pack_into("<I", page, 22, 0)
        if version != 0 or ogg_crc(bytes(page)) != crc:
            raise InvalidOgg(f"page {sequence} at byte {offset} fails its CRC")
        if serial is None:
            serial = page_serial
            if not flags & 0x02:
                raise InvalidOgg("the first page is not a beginning-of-stream page")
        elif page_serial != serial:
            raise InvalidOgg(f"a second logical stream (serial {page_serial}) — a chained or multiplexed file")
        if sequence != expected_sequence:
            raise InvalidOgg(f"page {expected_sequence} is missing (found {sequence})")
        expected_sequence += 1
        body = bytes(page[27 + count :])
        position = 0
        for value in lacing:
            partial += body[position : position + value]
            position += value
            if value < 255:
                packets.append(partial)
                partial = b""
        if granule != -1:
            final_granule = granule
        ended = bool(flags & 0x04)
        offset += length
    if not ended:
        raise InvalidOgg("no end-of-stream page")
    if len(packets) < 2 or not packets[0].startswith(b"OpusHead") or not packets[1].startswith(b"OpusTags"):
        raise InvalidOgg("missing OpusHead / OpusTags")
    _, channels, pre_skip, input_rate, _, _ = struct.unpack_from("<BBHIhB", packets[0], 8)
    tags = packets[1]
    vendor_length = struct.unpack_from("<I", tags, 8)[0]
    vendor = tags[12 : 12 + vendor_length].decode()
    position = 12 + vendor_length
    comments: dict[str, str] = {}
    (count,) = struct.unpack_from("<I", tags, position)
    position += 4
    for _ in range(count):
        (size,) = struct.unpack_from("<I", tags, position)
        key, _separator, text = tags[position + 4 : position + 4 + size].decode().partition("=")
        comments[key] = text
        position += 4 + size
    return OggOpusStream(
        pre_skip=pre_skip,
        input_sample_rate=input_rate,
        channels=channels,
        vendor=vendor,
        comments=comments,
        packets=packets[2:],
        final_granule=final_granule,
        pages=expected_sequence,
    )
