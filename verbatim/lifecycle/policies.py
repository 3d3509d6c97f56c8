"""Ports the seal asks at seal time: which retention applies to a recording, and which legal holds match it.
Issue 8 (retention classes, holds) replaces the defaults here with its own implementations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from azure.cosmos import ContainerProxy

from verbatim.contracts.evidence import RecordingFacts, RetentionTerm


class RetentionPolicy(Protocol):
    def term_for(self, facts: RecordingFacts, sealed_at: datetime) -> RetentionTerm: ...


class HoldMatcher(Protocol):
    def holds_for(self, facts: RecordingFacts) -> list[str]:
        """Ids of the active legal holds that cover this recording."""


class FixedRetention:
    """One retention class for every recording (SEAL_DEFAULT_RETENTION_CLASS / _DAYS), from the call's start."""

    def __init__(self, retention_class: str, days: int, basis: str | None = None) -> None:
        self.retention_class, self.days, self.basis = retention_class, days, basis

    def term_for(self, facts: RecordingFacts, sealed_at: datetime) -> RetentionTerm:
        start = facts.started_at or sealed_at
        return RetentionTerm(
            retention_class=self.retention_class, until=start + timedelta(days=self.days), basis=self.basis
        )


class NoHolds:
    def holds_for(self, facts: RecordingFacts) -> list[str]:
        return []


class CosmosHoldMatcher:
    """Active holds in Cosmos `holds` that list the recording by id (`recordingIds`), or whose custodians include
    the observed user (by object id or UPN) and whose optional time range (`from` / `until`, ISO instants)
    overlaps the call. Reads only those fields,
    so the holds area can extend its documents freely."""

    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def holds_for(self, facts: RecordingFacts) -> list[str]:
        user = facts.observed_user
        keys = {k.lower() for k in (user.id, user.upn) if k} if user else set()
        docs: list[dict[str, Any]] = list(
            self._container.query_items(
                "SELECT c.id, c.custodians, c.recordingIds, c['from'], c['until'] FROM c WHERE c.status = 'active'",
                enable_cross_partition_query=True,
            )
        )
        matching = []
        for doc in docs:
            if facts.recording_id in (doc.get("recordingIds") or []):
                matching.append(str(doc["id"]))  # held by id, whatever its time range
                continue
            custodians = {str(c).lower() for c in doc.get("custodians") or []}
            if not custodians & keys:
                continue
            start, end = _instant(doc.get("from")), _instant(doc.get("until"))
            call_start = facts.started_at
            call_end = facts.ended_at or call_start
            if start and call_end and call_end < start:
                continue
            if end and call_start and call_start > end:
                continue
            matching.append(str(doc["id"]))
        return sorted(matching)


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
