"""Graph's timestamps and durations in one canonical form, so stored documents compare and sort as strings.

Graph writes DateTimeOffsets with up to 7 fractional digits (`2020-02-25T18:52:21.2169889Z`), sometimes
with an offset, and `0001-01-01T00:00:00Z` for "none"; durations are ISO-8601 (`PT0.016S`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE
)
_DURATION = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE
)


def parse_datetime(value: object) -> datetime | None:
    """A Graph DateTimeOffset as an aware UTC datetime; None for absent, unparseable or year-1 values."""
    if isinstance(value, datetime):
        parsed = value if value.tzinfo else value.replace(tzinfo=UTC)
        return None if parsed.year <= 1 else parsed.astimezone(UTC)
    if not isinstance(value, str):
        return None
    match = _DATETIME.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    offset = "+00:00" if not zone or zone.upper() == "Z" else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        parsed = datetime.fromisoformat(f"{year}-{month}-{day}T{hour}:{minute}:{second or '00'}.{micro:06d}{offset}")
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def format_datetime(value: datetime) -> str:
    """Canonical UTC form with microseconds: `2020-02-25T18:52:21.216988Z` (sorts and compares as text)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_datetime(value: object) -> str | None:
    parsed = parse_datetime(value)
    return format_datetime(parsed) if parsed is not None else None


def parse_duration_ms(value: object) -> float | None:
    """An ISO-8601 duration (`PT0.016S`, `PT1M2.5S`, `P1DT2H`) in milliseconds; None when not one."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value.strip())
    if not match or value.strip().upper() in {"P", "PT"}:
        return None
    days, hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    return round(((days * 24 + hours) * 60 + minutes) * 60_000 + seconds * 1000, 3)


def utcnow() -> datetime:
    return datetime.now(UTC)
