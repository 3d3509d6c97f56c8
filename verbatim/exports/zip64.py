"""A ZIP64 archive written in independent segments, streamed: each segment is a run of complete entries (local
header, data, data descriptor) whose offsets are relative to the segment's start, so segments can be produced in
parallel (one per recording, by the export's fan-out) and laid end to end; the central directory, written last,
places every entry at its absolute offset.

Entries are stored (method 0: media is already compressed, and a recipient's tools read stored members fastest),
with UTF-8 names, a data descriptor (CRC-32 and sizes are known only once the data has streamed through) and the
ZIP64 extra field on every entry and in the end records, so nothing depends on an entry or the archive staying
under 4 GiB. Format: PKWARE APPNOTE.TXT 6.3.10, sections 4.3.7 (local header), 4.3.9 (data descriptor), 4.3.12
(central directory), 4.3.14-4.3.16 (ZIP64 end records), 4.5.3 (ZIP64 extra field).

Why not a library: `zipfile` and `stream-zip` write one archive from one process; none lays out entries whose
absolute offsets are unknown until every segment before them is done.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

LOCAL_HEADER = 0x04034B50
DATA_DESCRIPTOR = 0x08074B50
CENTRAL_HEADER = 0x02014B50
ZIP64_END = 0x06064B50
ZIP64_LOCATOR = 0x07064B50
END = 0x06054B50
ZIP64_EXTRA = 0x0001
VERSION = 45  # 4.5: ZIP64
MADE_BY = (3 << 8) | VERSION  # host 3 (UNIX): external attributes carry the file mode
FLAGS = 0x0008 | 0x0800  # data descriptor; names in UTF-8
FILE_MODE = 0o100644 << 16
U32 = 0xFFFFFFFF
U16 = 0xFFFF


@dataclass(frozen=True)
class ZipEntry:
    """One stored member: where it starts in its segment, what it holds."""

    name: str
    offset: int  # of its local header, from the start of its segment
    size: int
    crc32: int
    sha256: str
    dos_time: int
    dos_date: int


def dos_datetime(at: datetime) -> tuple[int, int]:
    """MS-DOS time and date (2-second resolution, 1980-2107), as ZIP headers hold them."""
    year = min(max(at.year, 1980), 2107)
    return (at.hour << 11) | (at.minute << 5) | (at.second // 2), ((year - 1980) << 9) | (at.month << 5) | at.day


def check_name(name: str) -> bytes:
    """An archive path: relative, forward slashes, no `..`, no empty parts; UTF-8 encoded."""
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a safe archive path: {name!r}")
    encoded = name.encode("utf-8")
    if len(encoded) > U16:
        raise ValueError("archive path too long")
    return encoded


def _local_header(name: bytes, dos_time: int, dos_date: int) -> bytes:
    extra = struct.pack("<HHQQ", ZIP64_EXTRA, 16, 0, 0)
    return (
        struct.pack(
            "<IHHHHHIIIHH", LOCAL_HEADER, VERSION, FLAGS, 0, dos_time, dos_date, 0, U32, U32, len(name), len(extra)
        )
        + name
        + extra
    )


def _descriptor(crc: int, size: int) -> bytes:
    return struct.pack("<IIQQ", DATA_DESCRIPTOR, crc, size, size)


Sink = Callable[[bytes], None]


class Streamer(Protocol):
    """Where a member's data may go in one stream instead of through the sink (the package's blocks)."""

    def streams(self, length: int) -> bool: ...

    def stream(self, chunks: Iterable[bytes], length: int) -> None: ...


class SegmentWriter:
    """Writes entries one after another into `sink`, counting offsets from the segment's start; the data of a
    member whose size is known and that `streamer` takes goes to it instead, in one stream."""

    def __init__(self, sink: Sink, at: datetime, streamer: Streamer | None = None) -> None:
        self._sink = sink
        self._streamer = streamer
        self._time, self._date = dos_datetime(at)
        self.position = 0
        self.entries: list[ZipEntry] = []

    def _emit(self, data: bytes) -> None:
        if data:
            self._sink(data)
            self.position += len(data)

    def add(self, name: str, chunks: Iterable[bytes], length: int | None = None) -> ZipEntry:
        """Stream one member from `chunks`; its CRC-32, size and SHA-256 are computed on the way. `length`: the
        size the member must have (then its data may be streamed to the streamer)."""
        encoded = check_name(name)
        offset = self.position
        self._emit(_local_header(encoded, self._time, self._date))
        crc, size, digest = 0, 0, hashlib.sha256()

        def hashed() -> Iterator[bytes]:
            nonlocal crc, size
            for chunk in chunks:
                crc = zlib.crc32(chunk, crc)
                digest.update(chunk)
                size += len(chunk)
                yield chunk

        if length is not None and self._streamer is not None and self._streamer.streams(length):
            self._streamer.stream(hashed(), length)
            self.position += length
        else:
            for chunk in hashed():
                self._emit(chunk)
        self._emit(_descriptor(crc, size))
        entry = ZipEntry(name, offset, size, crc, digest.hexdigest(), self._time, self._date)
        self.entries.append(entry)
        return entry

    def add_bytes(self, name: str, data: bytes) -> ZipEntry:
        return self.add(name, [data])


def central_directory(entries: Iterable[tuple[ZipEntry, int]], start: int) -> bytes:
    """The central directory and ZIP64 end records for `entries` (each with its segment's absolute offset),
    the directory itself starting at absolute offset `start`."""
    records: list[bytes] = []
    count = 0
    for entry, base in entries:
        name = check_name(entry.name)
        extra = struct.pack("<HHQQQ", ZIP64_EXTRA, 24, entry.size, entry.size, base + entry.offset)
        records.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                CENTRAL_HEADER,
                MADE_BY,
                VERSION,
                FLAGS,
                0,
                entry.dos_time,
                entry.dos_date,
                entry.crc32,
                U32,
                U32,
                len(name),
                len(extra),
                0,
                0,
                0,
                FILE_MODE,
                U32,
            )
            + name
            + extra
        )
        count += 1
    directory = b"".join(records)
    end64_at = start + len(directory)
    end64 = struct.pack("<IQHHIIQQQQ", ZIP64_END, 44, MADE_BY, VERSION, 0, 0, count, count, len(directory), start)
    locator = struct.pack("<IIQI", ZIP64_LOCATOR, 0, end64_at, 1)
    end = struct.pack("<IHHHHIIH", END, 0, 0, U16, U16, U32, U32, 0)
    return directory + end64 + locator + end
