"""H.264 evidence: the access units a recorder received, kept byte for byte, each preceded by one SEI NAL unit that
carries the platform's timestamp, so the stream is self-describing (a salvaged prefix still says when each frame was
shown) and still plays in any H.264 decoder.

Teams' media platform delivers H.264 video as whole access units in Annex-B byte-stream form (start codes, SPS/PPS
with each IDR, no B-frames, no SEI: `VideoColorFormat.H264`, Microsoft.Skype.Bots.Media reference). The platform's
timestamp of each buffer (`VideoMediaBuffer.Timestamp`, 100-ns units) is not part of the byte stream, so the recorder
writes it in front of each access unit as a *user data unregistered* SEI message (ITU-T H.264 section 7.3.2.3 and
annex D.1.7: payload type 5, a 16-byte UUID that names the format, then our bytes). Decoders ignore SEI messages whose
UUID they do not know. The payload after the UUID is the timestamp in ASCII decimal digits: it never contains two zero
bytes in a row, so no emulation-prevention byte is ever needed and the NAL unit's bytes are its payload's bytes.

Removing every NAL unit carrying `TIMESTAMP_UUID` from an evidence stream gives back exactly the bytes received.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

START_CODE = b"\x00\x00\x00\x01"
NAL_SEI = 6
NAL_IDR = 5
NAL_SPS = 7
SEI_USER_DATA_UNREGISTERED = 5
# "verbatim.ticks.1" as 16 bytes: no zero byte, so the payload never needs emulation prevention.
TIMESTAMP_UUID = b"verbatim.ticks.1"
TIMESTAMP_UUID_TEXT = str(uuid.UUID(bytes=TIMESTAMP_UUID))
_SEI_HEAD = START_CODE + bytes([NAL_SEI, SEI_USER_DATA_UNREGISTERED])
_RBSP_STOP = b"\x80"


class NotAnnexB(ValueError):
    """A buffer that does not start with an H.264 start code."""


def timestamp_nal(ticks: int) -> bytes:
    """The SEI NAL unit (with its 4-byte start code) that stamps the next access unit with `ticks`."""
    if ticks < 0:
        raise ValueError("timestamps are ticks since the Unix epoch, never negative")
    digits = str(ticks).encode("ascii")
    return _SEI_HEAD + bytes([len(TIMESTAMP_UUID) + len(digits)]) + TIMESTAMP_UUID + digits + _RBSP_STOP


def stamped(access_unit: bytes, ticks: int) -> bytes:
    """One access unit as the evidence holds it: its timestamp NAL, then the bytes received."""
    return timestamp_nal(ticks) + access_unit


def nal_units(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(offset of the start code, offset of the NAL header, NAL type) of each NAL unit in `data[start:end]`."""
    stop = len(data) if end is None else end
    position = data.find(b"\x00\x00\x01", start, stop)
    while position != -1 and position + 3 < stop:
        code = position - 1 if position > start and data[position - 1] == 0 else position
        header = position + 3
        yield code, header, data[header] & 0x1F
        position = data.find(b"\x00\x00\x01", header, stop)


def is_key_frame(access_unit: bytes) -> bool:
    """Whether an access unit holds an IDR picture (decoding can start there)."""
    return any(kind == NAL_IDR for _, _, kind in nal_units(access_unit))


def check_annex_b(access_unit: bytes) -> None:
    if not (access_unit.startswith(b"\x00\x00\x01") or access_unit.startswith(START_CODE)):
        raise NotAnnexB("an H.264 buffer must start with a start code (Annex B byte stream)")


def _timestamp_at(data: bytes, header: int) -> int | None:
    """The ticks of our timestamp SEI whose NAL header is at `header`, or None for any other SEI."""
    if data[header + 1 : header + 2] != bytes([SEI_USER_DATA_UNREGISTERED]):
        return None
    size = data[header + 2] if header + 2 < len(data) else 0
    body = data[header + 3 : header + 3 + size]
    if len(body) != size or not body.startswith(TIMESTAMP_UUID):
        return None
    digits = body[len(TIMESTAMP_UUID) :]
    return int(digits) if digits.isdigit() else None


@dataclass(frozen=True, slots=True)
class StampedUnit:
    """One access unit of an evidence stream: where it is (its timestamp NAL included), when, and whether it is a
    key frame."""

    offset: int
    size: int
    ticks: int
    key: bool


def stamped_units(data: bytes) -> list[StampedUnit]:
    """Every stamped access unit of an evidence stream, in order. Bytes before the first timestamp (none in what
    the recorder writes) belong to no unit; a cut last unit (a salvaged prefix) is listed with what is there."""
    marks: list[tuple[int, int]] = []  # (offset of a timestamp NAL's start code, ticks)
    keys: list[int] = []
    for code, header, kind in nal_units(data):
        if kind == NAL_SEI:
            ticks = _timestamp_at(data, header)
            if ticks is not None:
                marks.append((code, ticks))
        elif kind == NAL_IDR:
            keys.append(code)
    units: list[StampedUnit] = []
    key_index = 0
    for index, (offset, ticks) in enumerate(marks):
        end = marks[index + 1][0] if index + 1 < len(marks) else len(data)
        while key_index < len(keys) and keys[key_index] < offset:
            key_index += 1
        key = key_index < len(keys) and keys[key_index] < end
        units.append(StampedUnit(offset, end - offset, ticks, key))
    return units


def strip_timestamps(data: bytes) -> bytes:
    """The stream without our timestamp NAL units: exactly the bytes the platform delivered."""
    out = bytearray()
    previous = 0
    for code, header, kind in nal_units(data):
        if kind != NAL_SEI or _timestamp_at(data, header) is None:
            continue
        size = data[header + 2]
        out += data[previous:code]
        previous = header + 3 + size + len(_RBSP_STOP)
    out += data[previous:]
    return bytes(out)
