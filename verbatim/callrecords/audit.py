"""Security events and access records of call-record processing, in the Cosmos `audit` container (/day).

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

from verbatim.callrecords.times import format_datetime, utcnow
from verbatim.errors import DependencyUnavailable

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
