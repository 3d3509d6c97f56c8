"""HTTP Range for media responses (RFC 9110 §14), bounded: the Functions HTTP response is buffered, not
streamed, so one response never carries more than `chunk` bytes and players fetch the rest with further
Range requests (browsers' media elements do this by themselves).

- No `Range` header: the whole object (200) when it is at most `max_full` bytes; a larger one gets a 413
  problem asking for Range requests (a 206 may only answer a Range request).
- A header that is not a valid `bytes=` range is ignored (served as if absent), as RFC 9110 requires.
- Several ranges: only the first is served (a server may answer a subset; multipart bodies are not worth it).
- A range that starts at or beyond the end: 416 with `Content-Range: bytes */<size>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"^[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*$")
# Positions longer than this are beyond any object (and beyond what int() takes from a string).
_MAX_DIGITS = 18


@dataclass(frozen=True)
class ByteRange:
    """Bytes `start`..`end` inclusive, as in `Content-Range`."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


@dataclass(frozen=True)
class Unsatisfiable:
    size: int

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


RangeAnswer = ByteRange | Unsatisfiable | None


def parse_range(header: str | None, size: int, chunk: int) -> RangeAnswer:
    """The part of a `size`-byte object to send for a `Range` header, capped at `chunk` bytes; None to send the
    whole object (no header, or one that must be ignored); `Unsatisfiable` for a 416."""
    if chunk < 1:
        raise ValueError("chunk must be positive")
    if header is None:
        return None
    unit, _, specs = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or not specs.strip():
        return None
    first = specs.split(",")[0]
    match = _SPEC.match(first)
    if match is None:
        return None
    low, high = match.groups()
    if not low and not high:
        return None
    if len(low) > _MAX_DIGITS:
        return Unsatisfiable(size)  # a first position past any object
    high = high if len(high) <= _MAX_DIGITS else str(10**_MAX_DIGITS)  # "to the end" / "all of it"
    if not low:  # suffix: the last N bytes
        suffix = int(high)
        if suffix == 0 or size == 0:
            return Unsatisfiable(size)
        start = max(0, size - suffix)
        end = size - 1
    else:
        start = int(low)
        end = int(high) if high else size - 1
        if high and end < start:
            return None  # invalid range-spec: ignore the header
        if start >= size:
            return Unsatisfiable(size)
        end = min(end, size - 1)
    return ByteRange(start, min(end, start + chunk - 1))
