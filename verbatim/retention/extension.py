"""Extending retention — of one recording or of a whole class — and never shortening it.

An extension moves the recording record's retention date (etag-guarded), sends the immutability-policy request
for every version of every object of the recording (`x-ms-immutability-policy-until-date`, mode Unlocked: Azure
accepts a later date and refuses an earlier one on a locked policy; Azurite answers 501), and is written to the
ledger. A class extension takes effect at once in the app's own guard (the sweep uses the longer of the sealed
date and what the class says now) and is then applied to the recordings of the class; a crash in between is
finished by the next sweep (`apply_pending_classes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from verbatim.contracts.evidence import EntryKind
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.retention import ExtensionResult, Officer, RetentionClass
from verbatim.evidence.guard import ensure_extension
from verbatim.evidence.worm import Enforcement
from verbatim.ledger.writer import LedgerWriter
from verbatim.platform.errors import Conflict, DependencyUnavailable, NotFound
from verbatim.retention.classes import RetentionCatalog
from verbatim.retention.common import Clock, class_subject, instant, recording_subject, utc, utc_now
from verbatim.retention.deletion import effective_until
from verbatim.retention.recordings import RetentionRecordings
from verbatim.retention.storage import RecordingBlobs

CLASS_APPLIED = "retention.class_applied"
MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class Applied:
    recordings: int
    blobs: int
    enforcement: Enforcement | None


def _worst(a: Enforcement | None, b: Enforcement | None) -> Enforcement | None:
    if a is None:
        return b
    if b is None:
        return a
    return "emulator-not-enforced" if "emulator-not-enforced" in (a, b) else "azure"


class RetentionExtender:
    def __init__(
        self,
        recordings: RetentionRecordings,
        blobs: RecordingBlobs,
        catalog: RetentionCatalog,
        ledger: LedgerWriter,
        clock: Clock = utc_now,
    ) -> None:
        self._recordings = recordings
        self._blobs = blobs
        self._catalog = catalog
        self._ledger = ledger
        self._clock = clock

    def extend_recording(self, recording_id: str, until: datetime, reason: str, officer: Officer) -> ExtensionResult:
        """Keep one recording until `until`; an earlier date than the one in force is refused."""
        until = utc(until)
        for _ in range(MAX_ATTEMPTS):
            found = self._recordings.read(recording_id)
            if found is None:
                raise NotFound(f"no recording {recording_id}", recording_id=recording_id)
            record = found.record
            if record.status != "sealed" or record.seal is None:
                raise Conflict(
                    f"recording {recording_id} is {record.status}: only a sealed recording's retention can be extended",
                    recording_id=recording_id,
                )
            current = effective_until(
                record.seal.retention_until, record.facts.started_at, self._catalog.find(record.seal.retention_class)
            )
            ensure_extension(recording_id, current_until=current, requested_until=until)
            updated = record.model_copy(update={"seal": record.seal.model_copy(update={"retention_until": until})})
            if self._recordings.replace(updated, found.etag):
                break
        else:
            raise DependencyUnavailable(f"recording {recording_id}: too many concurrent updates")
        enforcement, blobs = self._blobs.protect_until(updated, until)
        entry = self._ledger.append(
            EntryKind.RETENTION_EXTENDED,
            recording_subject(recording_id),
            {
                "retention_class": record.seal.retention_class,
                "previous_until": instant(current),
                "until": instant(until),
                "reason": reason,
                "blobs": blobs,
                "worm": enforcement,
            },
            actor=officer.subject,
        )
        return ExtensionResult(
            subject=recording_subject(recording_id),
            previous_until=current,
            until=until,
            recordings_extended=1,
            blobs_protected=blobs,
            worm=enforcement or "unchanged",
            ledger_seq=entry.seq,
        )

    def extend_class(self, name: str, days: int, reason: str, officer: Officer) -> ExtensionResult:
        """Lengthen a class (shorter is refused) and extend the immutability of its recordings."""
        before, after, seq = self._catalog.extend(name, days, actor=officer.subject, reason=reason)
        applied = self.apply_class(after)
        return ExtensionResult(
            subject=class_subject(name),
            previous_days=before.days,
            days=after.days,
            recordings_extended=applied.recordings,
            blobs_protected=applied.blobs,
            worm=applied.enforcement or "unchanged",
            ledger_seq=seq,
        )

    def apply_class(self, retention_class: RetentionClass) -> Applied:
        """Move every sealed recording of the class to `start + days` where it is earlier (idempotent)."""
        now = self._clock()
        days = timedelta(days=retention_class.days)
        recordings = blobs = 0
        enforcement: Enforcement | None = None
        for record in self._recordings.of_class(retention_class.name, now + days + timedelta(days=1)):
            outcome = self._extend_to_class(record.id, days)
            if outcome is None:
                continue
            recordings += 1
            blobs += outcome[1]
            enforcement = _worst(enforcement, outcome[0])
        if recordings:
            self._ledger.append(
                CLASS_APPLIED,
                class_subject(retention_class.name),
                {"days": retention_class.days, "recordings": recordings, "blobs": blobs, "worm": enforcement},
            )
        self._catalog.mark_applied(retention_class.name, retention_class.days)
        return Applied(recordings, blobs, enforcement)

    def apply_pending_classes(self) -> int:
        """Finish class extensions a crash interrupted; returns how many classes were applied."""
        pending = [c for c in self._catalog.all() if c.applied_days < c.days]
        for retention_class in pending:
            self.apply_class(retention_class)
        return len(pending)

    def _extend_to_class(self, recording_id: str, days: timedelta) -> tuple[Enforcement | None, int] | None:
        for _ in range(MAX_ATTEMPTS):
            found = self._recordings.read(recording_id)
            if found is None:
                return None
            record: RecordingRecord = found.record
            if record.status != "sealed" or record.seal is None or record.facts.started_at is None:
                return None
            target = utc(record.facts.started_at) + days
            if record.seal.retention_until >= target:
                return None
            updated = record.model_copy(update={"seal": record.seal.model_copy(update={"retention_until": target})})
            if self._recordings.replace(updated, found.etag):
                return self._blobs.protect_until(updated, target)
        raise DependencyUnavailable(f"recording {recording_id}: too many concurrent updates")
