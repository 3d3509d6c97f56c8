"""Recover call records whose notifications never arrived (lapsed subscription, dropped deliveries).

Lists `/communications/callRecords?$filter=startDateTime ge <from>` where <from> is the tenant's
watermark minus an overlap (calls are published up to 150 minutes after they end, and long calls start
long before), never older than Graph's 30-day retention, and enqueues every record we do not hold or
hold at a lower version. The watermark (Cosmos `control`) moves to the start of the run that completed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy

from verbatim.callrecords.store import CallRecordStore
from verbatim.contracts.callrecords import CallRecordNotification
from verbatim.graph import GraphClient
from verbatim.platform.logging import correlation
from verbatim.platform.queues import MessageQueue
from verbatim.platform.times import format_datetime, parse_datetime, utcnow

log = logging.getLogger(__name__)

RETENTION = timedelta(days=30)
# Stay clear of the retention edge: a record listed at 29d23h59m may be gone when it is fetched.
RETENTION_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class BackfillResult:
    tenant_id: str
    listed_from: str
    listed: int
    enqueued: int
    watermark: str


class WatermarkStore(Protocol):
    def load(self, key: str) -> datetime | None: ...

    def save(self, key: str, value: datetime) -> None: ...


class CosmosWatermarks:
    """Watermarks as small documents in Cosmos `control` (partition /id); they only move forward."""

    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def _read(self, key: str) -> dict[str, Any] | None:
        items = list(
            self._container.query_items(
                "SELECT * FROM c WHERE c.id = @id", parameters=[{"name": "@id", "value": key}], partition_key=key
            )
        )
        return dict(items[0]) if items else None

    def load(self, key: str) -> datetime | None:
        document = self._read(key)
        return parse_datetime(document.get("watermark")) if document else None

    def save(self, key: str, value: datetime) -> None:
        document = self._read(key)
        if document is None:
            self._container.upsert_item({"id": key, "docType": "watermark", "watermark": format_datetime(value)})
            return
        current = parse_datetime(document.get("watermark"))
        if current is not None and current >= value:
            return
        body = {k: v for k, v in document.items() if not k.startswith("_")}
        body["watermark"] = format_datetime(value)
        self._container.replace_item(
            item=key, body=body, etag=document["_etag"], match_condition=MatchConditions.IfNotModified
        )


class InMemoryWatermarks:
    def __init__(self) -> None:
        self.values: dict[str, datetime] = {}

    def load(self, key: str) -> datetime | None:
        return self.values.get(key)

    def save(self, key: str, value: datetime) -> None:
        if key not in self.values or self.values[key] < value:
            self.values[key] = value


def watermark_key(tenant_id: str) -> str:
    return f"callrecords-backfill-{tenant_id}"


class Backfiller:
    def __init__(
        self,
        *,
        graph_for: Callable[[str], GraphClient],
        store: CallRecordStore,
        notifications: MessageQueue,
        watermarks: WatermarkStore,
        overlap: timedelta = timedelta(hours=12),
        initial_lookback: timedelta = timedelta(days=2),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._graph_for = graph_for
        self._store = store
        self._notifications = notifications
        self._watermarks = watermarks
        self._overlap = overlap
        self._initial = initial_lookback
        self._clock = clock

    def window_start(self, tenant_id: str, since: datetime | None = None) -> datetime:
        now = self._clock()
        oldest = now - RETENTION + RETENTION_MARGIN
        if since is None:
            watermark = self._watermarks.load(watermark_key(tenant_id))
            since = (watermark - self._overlap) if watermark is not None else now - self._initial
        return max(since, oldest)

    def run(self, tenant_id: str, since: datetime | None = None) -> BackfillResult:
        """List the tenant's records from the window start and enqueue what we lack; `since` overrides
        the watermark (an operator re-running a period)."""
        with correlation(tenant_id=tenant_id):
            started = self._clock()
            start = self.window_start(tenant_id, since)
            graph = self._graph_for(tenant_id)
            listed: dict[str, int] = {}
            for item in graph.iter_items(
                "/communications/callRecords",
                params={"$filter": f"startDateTime ge {start.strftime('%Y-%m-%dT%H:%M:%SZ')}"},
            ):
                record_id, version = item.get("id"), item.get("version")
                if isinstance(record_id, str) and record_id:
                    listed[record_id] = max(listed.get(record_id, 0), version if isinstance(version, int) else 0)
            stored = self._store.versions(list(listed))
            seen_at = format_datetime(started)
            enqueued = 0
            for record_id, version in listed.items():
                if stored.get(record_id, -1) >= version:
                    continue
                message = CallRecordNotification(
                    call_record_id=record_id,
                    tenant_id=tenant_id,
                    source="backfill",
                    first_seen_at=seen_at,
                    known_version=version,
                )
                self._notifications.send(message.model_dump_json(by_alias=True))
                enqueued += 1
            if since is None:
                self._watermarks.save(watermark_key(tenant_id), started)
            log.info(
                "back-fill done", extra={"listed": len(listed), "enqueued": enqueued, "from": format_datetime(start)}
            )
            return BackfillResult(tenant_id, format_datetime(start), len(listed), enqueued, format_datetime(started))
