"""PSTN and Direct Routing call logs (`getPstnCalls`, `getDirectRoutingCalls`) into Cosmos `pstn_calls`.

A pull covers a date range in windows of at most 90 days (Graph's limit), follows `@odata.nextLink`
(1,000 rows a page), and upserts one document per row id, so pulling a period again changes nothing.
A call to an emergency number (112, 911, 999 and configured others) raises an alert event, once per row.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from azure.cosmos import ContainerProxy

from verbatim.graph import GraphClient
from verbatim.platform.audit import AuditEvent, AuditLog
from verbatim.platform.errors import InvalidInput
from verbatim.platform.logging import correlation
from verbatim.platform.times import canonical_datetime, utcnow

log = logging.getLogger(__name__)

ReportKind = Literal["pstn", "directRouting"]
MAX_WINDOW = timedelta(days=90)
DEFAULT_EMERGENCY_NUMBERS = ("112", "911", "999")
_FUNCTIONS: dict[ReportKind, str] = {
    "pstn": "/communications/callRecords/getPstnCalls(fromDateTime={start},toDateTime={end})",
    "directRouting": "/communications/callRecords/getDirectRoutingCalls(fromDateTime={start},toDateTime={end})",
}


class RowStore(Protocol):
    def upsert(self, document: dict[str, Any]) -> None: ...


class CosmosRowStore:
    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def upsert(self, document: dict[str, Any]) -> None:
        self._container.upsert_item(document)


@dataclass
class InMemoryRowStore:
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def upsert(self, document: dict[str, Any]) -> None:
        with self._lock:
            self.documents[document["id"]] = document


@dataclass(frozen=True)
class PullResult:
    tenant_id: str
    windows: int
    pstn_rows: int
    direct_routing_rows: int
    emergency_alerts: int


def windows(start: datetime, end: datetime, size: timedelta = MAX_WINDOW) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of at most `size`."""
    if end <= start:
        raise InvalidInput("the end of the range must be after its start")
    cursor = start
    while cursor < end:
        upper = min(cursor + size, end)
        yield cursor, upper
        cursor = upper


def _digits(number: object) -> str:
    return re.sub(r"\D", "", number) if isinstance(number, str) else ""


class EmergencyNumbers:
    """Is a dialled number an emergency number? Compares digits only (`+911`, `911`, `9-1-1` all match)."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.numbers = frozenset(d for d in (_digits(n) for n in (*DEFAULT_EMERGENCY_NUMBERS, *extra)) if d)

    def matches(self, number: object) -> bool:
        return _digits(number) in self.numbers


def row_document(kind: ReportKind, tenant_id: str, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """Our document for one report row (None when the row has no id)."""
    row_id = row.get("id")
    if not isinstance(row_id, str) or not row_id:
        return None
    start = canonical_datetime(row.get("startDateTime"))
    return {
        "id": f"{kind}-{row_id}",
        "day": start[:10] if start else "unknown",
        "docType": "pstnCall" if kind == "pstn" else "directRoutingCall",
        "kind": kind,
        "tenantId": tenant_id,
        "rowId": row_id,
        "callId": row.get("callId") if kind == "pstn" else row.get("correlationId"),
        "userId": row.get("userId"),
        "userPrincipalName": row.get("userPrincipalName"),
        "userDisplayName": row.get("userDisplayName"),
        "startDateTime": start,
        "endDateTime": canonical_datetime(row.get("endDateTime")),
        "failureDateTime": canonical_datetime(row.get("failureDateTime")),
        "durationSeconds": row.get("duration"),
        "callType": row.get("callType"),
        "callerNumber": row.get("callerNumber"),
        "calleeNumber": row.get("calleeNumber"),
        "successfulCall": row.get("successfulCall"),
        "charge": row.get("charge"),
        "currency": row.get("currency"),
        "row": dict(row),
    }


class PstnReports:
    def __init__(
        self,
        *,
        graph_for: Callable[[str], GraphClient],
        rows: RowStore,
        audit: AuditLog,
        emergency: EmergencyNumbers | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._graph_for = graph_for
        self._rows = rows
        self._audit = audit
        self._emergency = emergency or EmergencyNumbers()
        self._clock = clock

    def pull(self, tenant_id: str, start: datetime, end: datetime) -> PullResult:
        with correlation(tenant_id=tenant_id):
            graph = self._graph_for(tenant_id)
            counts: dict[ReportKind, int] = {"pstn": 0, "directRouting": 0}
            alerts = 0
            cuts = list(windows(start, end))
            for lower, upper in cuts:
                for kind in ("pstn", "directRouting"):
                    path = _FUNCTIONS[kind].format(start=_literal(lower), end=_literal(upper))
                    for row in graph.iter_items(path):
                        document = row_document(kind, tenant_id, row)
                        if document is None:
                            log.warning("report row without an id skipped", extra={"kind": kind})
                            continue
                        document["emergency"] = self._emergency.matches(document["calleeNumber"])
                        self._rows.upsert(document)
                        counts[kind] += 1
                        if document["emergency"]:
                            alerts += 1
                            self._alert(document)
            log.info("PSTN reports pulled", extra={"pstn": counts["pstn"], "direct_routing": counts["directRouting"]})
            return PullResult(tenant_id, len(cuts), counts["pstn"], counts["directRouting"], alerts)

    def _alert(self, document: dict[str, Any]) -> None:
        log.warning(
            "call to an emergency number",
            extra={"kind": document["kind"], "row_id": document["rowId"], "start": document["startDateTime"]},
        )
        self._audit.record(
            AuditEvent(
                category="alert",
                action="pstn.emergency-call",
                actor="system",
                target=document.get("userId"),
                actor_name=None,
                detail={
                    "kind": document["kind"],
                    "rowId": document["rowId"],
                    "callId": document["callId"],
                    "calleeNumber": document["calleeNumber"],
                    "userPrincipalName": document["userPrincipalName"],
                    "startDateTime": document["startDateTime"],
                    "callType": document["callType"],
                },
                at=self._clock(),
                event_id=f"alert-emergency-{document['id']}",
            )
        )


def _literal(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
