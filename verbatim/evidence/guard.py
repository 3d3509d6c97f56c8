"""The application's own refusal to delete evidence early or under hold — the second line behind Azure's
WORM, and the only line against Azurite, which enforces neither immutability nor legal holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from verbatim.platform.errors import RetentionViolation


def ensure_deletable(recording_id: str, *, retention_until: datetime, holds: Sequence[str], now: datetime) -> None:
    """Raise RetentionViolation unless the retention date has passed and no legal hold applies."""
    if holds:
        raise RetentionViolation(
            f"recording {recording_id} is under legal hold ({', '.join(sorted(holds))}) and cannot be deleted",
            recording_id=recording_id,
            holds=sorted(holds),
        )
    if now < retention_until:
        raise RetentionViolation(
            f"recording {recording_id} is retained until {retention_until.isoformat()} and cannot be deleted "
            "before then",
            recording_id=recording_id,
            retention_until=retention_until.isoformat(),
        )


def ensure_extension(recording_id: str, *, current_until: datetime, requested_until: datetime) -> None:
    """Retention is extend-only: refuse a date earlier than the one in force."""
    if requested_until < current_until:
        raise RetentionViolation(
            f"retention of recording {recording_id} can only be extended: {requested_until.isoformat()} is before "
            f"{current_until.isoformat()}",
            recording_id=recording_id,
            retention_until=current_until.isoformat(),
        )
