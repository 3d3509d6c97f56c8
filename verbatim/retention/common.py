"""Small shared pieces of the retention area: the clock port, ledger subjects, and time formatting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from verbatim.ledger.canonical import format_instant

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc(moment: datetime) -> datetime:
    """`moment` in UTC (naive values are taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def instant(moment: datetime) -> str:
    """Fixed-width UTC text, as the ledger and the Cosmos range queries compare it."""
    return format_instant(utc(moment))


def recording_subject(recording_id: str) -> str:
    return f"recording:{recording_id}"


def hold_subject(hold_id: str) -> str:
    return f"hold:{hold_id}"


def class_subject(name: str) -> str:
    return f"retention-class:{name}"


def call_record_subject(call_record_id: str) -> str:
    return f"call:{call_record_id}"
