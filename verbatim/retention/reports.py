"""Retention reports for auditors: what expires in the next N days per class, what is held per matter, and
deletions per period — computed from the recording records, the holds and the tombstones."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Literal

from verbatim.contracts.retention import (
    DeletionBucket,
    DeletionsReport,
    ExpiringClass,
    ExpiringRecording,
    ExpiringReport,
    HoldsReport,
    MatterHold,
    MatterHolds,
    RetentionClass,
)
from verbatim.platform.errors import InvalidInput
from verbatim.retention.common import Clock, utc, utc_now
from verbatim.retention.deletion import effective_until
from verbatim.retention.holds import HoldStore
from verbatim.retention.recordings import RetentionRecordings

MAX_DAYS = 3660


class RetentionReports:
    def __init__(
        self,
        recordings: RetentionRecordings,
        holds: HoldStore,
        classes: Callable[[], Mapping[str, RetentionClass]],
        clock: Clock = utc_now,
    ) -> None:
        self._recordings = recordings
        self._holds = holds
        self._classes = classes
        self._clock = clock

    def expiring(self, days: int) -> ExpiringReport:
        """Sealed recordings whose retention ends in [now, now + days), per class; held ones are counted apart
        (they will not be deleted at their date)."""
        if not 1 <= days <= MAX_DAYS:
            raise InvalidInput(f"days must be between 1 and {MAX_DAYS}")
        now = self._clock()
        end = now + timedelta(days=days)
        classes = self._classes()
        per_class: dict[str, list[ExpiringRecording]] = defaultdict(list)
        for record in self._recordings.expiring(now, end):
            seal = record.seal
            if seal is None:
                continue
            until = effective_until(seal.retention_until, record.facts.started_at, classes.get(seal.retention_class))
            if now <= until < end:
                per_class[seal.retention_class].append(
                    ExpiringRecording(recording_id=record.id, retention_until=until, held=bool(seal.legal_holds))
                )
        return ExpiringReport(
            generated_at=now,
            days=days,
            until=end,
            classes=[
                ExpiringClass(
                    retention_class=name,
                    legal_basis=classes[name].legal_basis if name in classes else None,
                    count=len(items),
                    held=sum(1 for i in items if i.held),
                    recordings=sorted(items, key=lambda i: (i.retention_until, i.recording_id)),
                )
                for name, items in sorted(per_class.items())
            ],
        )

    def holds(self) -> HoldsReport:
        now = self._clock()
        held_by: dict[str, set[str]] = defaultdict(set)
        holds = self._holds.find()
        for hold in holds:
            held_by[hold.id] = {r.id for r in self._recordings.with_hold(hold.id) if r.status == "sealed"}
        matters: dict[str, list[MatterHold]] = defaultdict(list)
        recordings_of_matter: dict[str, set[str]] = defaultdict(set)
        for hold in holds:
            matters[hold.matter_id].append(
                MatterHold(
                    hold_id=hold.id,
                    status=hold.status,
                    created_at=hold.created_at,
                    released_at=hold.released_at,
                    custodians=len(hold.custodians),
                    recordings=len(held_by.get(hold.id, ())),
                )
            )
            if hold.status == "active":
                recordings_of_matter[hold.matter_id] |= held_by.get(hold.id, set())
        return HoldsReport(
            generated_at=now,
            matters=[
                MatterHolds(matter_id=m, holds=holds, recordings_held=len(recordings_of_matter[m]))
                for m, holds in sorted(matters.items())
            ],
        )

    def deletions(self, start: datetime, end: datetime, period: Literal["day", "month"]) -> DeletionsReport:
        start, end = utc(start), utc(end)
        if end <= start:
            raise InvalidInput("'to' must be after 'from'")
        buckets: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for record in self._recordings.deleted(start, end):
            deletion = record.deletion
            if deletion is None or deletion.deleted_at is None:
                continue
            at = utc(deletion.deleted_at)
            key = at.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")
            buckets[key].append((deletion.retention_class or "unknown", deletion.reason))
        return DeletionsReport(
            generated_at=self._clock(),
            from_=start,
            to=end,
            period=period,
            total=sum(len(items) for items in buckets.values()),
            buckets=[
                DeletionBucket(
                    period_start=key,
                    count=len(items),
                    by_class=dict(sorted(Counter(c for c, _ in items).items())),
                    by_reason=dict(sorted(Counter(r for _, r in items).items())),
                )
                for key, items in sorted(buckets.items())
            ],
        )
