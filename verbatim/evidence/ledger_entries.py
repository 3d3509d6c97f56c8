"""A recording's entries in the ledger (v2 log), read page by page by subject: never the whole subject at once."""

from __future__ import annotations

from collections.abc import Iterator

from verbatim.contracts.evidence import EntryKind
from verbatim.contracts.ledger import LogEntry
from verbatim.evidence.seal import recording_subject
from verbatim.ledger.log.service import TransparencyLog

PAGE = 100


def subject_entries(log: TransparencyLog, subject: str) -> Iterator[LogEntry]:
    """Every entry about `subject`, oldest first, one page of the index at a time."""
    after = -1
    while True:
        page = log.entries_for_subject(subject, after=after, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].index


def sealed_entry(log: TransparencyLog, recording_id: str) -> LogEntry | None:
    """The recording's `sealed` entry (the first, should a retry ever have written two)."""
    return next((e for e in subject_entries(log, recording_subject(recording_id)) if e.kind == EntryKind.SEALED), None)
