"""The audit log: security events, access records and alerts in the Cosmos `audit` container (/day), written
by every capability and read, one day at a time and newest first, by auditors.

A read that cannot be audited is not served: callers write the audit record first and fail with 503
when that fails. Alerts (a forged notification, an emergency call) are the same kind of record.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from azure.core.exceptions import AzureError
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosResourceExistsError

from verbatim.contracts.api import AuditRecord
from verbatim.platform.errors import DependencyUnavailable
from verbatim.platform.paging import cosmos_page, offset_page
from verbatim.platform.times import format_datetime, utcnow

AuditCategory = Literal["security", "access", "alert"]


@dataclass(frozen=True)
class AuditEvent:
    category: AuditCategory
    action: str  # e.g. "graph.notification.rejected", "callrecord.read", "pstn.emergency-call"
    actor: str  # principal subject, or "graph" / "system"
    target: str | None = None
    actor_name: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)
    # A deterministic id makes the record idempotent (an alert raised again by a re-run is stored once).
    event_id: str | None = None

    def document(self) -> dict[str, Any]:
        at = format_datetime(self.at)
        return {
            "id": self.event_id or str(uuid.uuid4()),
            "day": at[:10],
            "docType": "audit",
            "category": self.category,
            "action": self.action,
            "actor": self.actor,
            "actorName": self.actor_name,
            "target": self.target,
            "at": at,
            "detail": self.detail,
        }


class AuditLog(Protocol):
    def record(self, event: AuditEvent) -> None:
        """Persist the event; `DependencyUnavailable` when it could not be."""


class CosmosAuditLog:
    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def record(self, event: AuditEvent) -> None:
        try:
            self._container.create_item(event.document())
        except CosmosResourceExistsError:
            return  # the same deterministic event was recorded before
        except AzureError as error:
            raise DependencyUnavailable(f"audit record could not be written: {type(error).__name__}") from error


@dataclass
class InMemoryAuditLog:
    events: list[AuditEvent] = field(default_factory=list)
    fail: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, event: AuditEvent) -> None:
        if self.fail:
            raise DependencyUnavailable("audit unavailable (test)")
        with self._lock:
            if event.event_id and any(e.event_id == event.event_id for e in self.events):
                return
            self.events.append(event)


# --- reading ---
@dataclass(frozen=True)
class AuditQuery:
    day: str
    category: str | None = None
    action: str | None = None
    target: str | None = None
    limit: int = 100
    continuation: str | None = None


def _record(document: dict[str, Any]) -> AuditRecord:
    return AuditRecord.model_validate({k: v for k, v in document.items() if not k.startswith("_")})


class AuditReader(Protocol):
    def query(self, query: AuditQuery) -> tuple[list[AuditRecord], str | None]: ...


class CosmosAuditReader:
    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def query(self, query: AuditQuery) -> tuple[list[AuditRecord], str | None]:
        clauses = ["c.day = @day"]
        parameters: list[dict[str, Any]] = [{"name": "@day", "value": query.day}]
        for column, name, value in (
            ("category", "@category", query.category),
            ("action", "@action", query.action),
            ("target", "@target", query.target),
        ):
            if value is not None:
                clauses.append(f"c.{column} = {name}")
                parameters.append({"name": name, "value": value})
        sql = f"SELECT * FROM c WHERE {' AND '.join(clauses)} ORDER BY c.at DESC"  # noqa: S608 - fixed fields
        pages = self._container.query_items(
            sql, parameters=parameters, partition_key=query.day, max_item_count=query.limit
        )
        return cosmos_page(pages.by_page, query.continuation, _record)


class InMemoryAuditReader:
    """Reads an `InMemoryAuditLog` (service-level tests)."""

    def __init__(self, log: InMemoryAuditLog) -> None:
        self._log = log

    def query(self, query: AuditQuery) -> tuple[list[AuditRecord], str | None]:
        documents = [e.document() for e in self._log.events]
        found = [
            d
            for d in documents
            if d["day"] == query.day
            and (query.category is None or d["category"] == query.category)
            and (query.action is None or d["action"] == query.action)
            and (query.target is None or d["target"] == query.target)
        ]
        found.sort(key=lambda d: str(d["at"]), reverse=True)
        page, token = offset_page(found, query.continuation, query.limit)
        return [_record(d) for d in page], token
