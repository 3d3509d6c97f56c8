"""Back-fill through the Teams export API: for each policy user, every message version of their chats modified
in a window (``GET /users/{id}/chats/getAllMessages?$filter=lastModifiedDateTime gt … and lastModifiedDateTime
lt …``, 50 a page, following ``@odata.nextLink``; Graph's 429s wait for ``Retry-After`` in the Graph client),
handed to ingestion, which stores what it lacks and ignores what it has (idempotent, version-gated).

It runs after a `missed`, `reauthorizationRequired` or `subscriptionRemoved` lifecycle notification (from the
last time the flow was known whole, less an overlap), hourly from a per-tenant watermark (outages of our own:
a webhook down longer than Graph's 4 hours of retries), at start-up, on an admin request, and for the daily
reconciliation. The export API shows each message's current state only: a version that came and went while
nothing was listening (an edit later edited again) is not recoverable from it — docs/chat.md says so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from azure.cosmos import ContainerProxy

from verbatim.chat.ingest import ChatIngestor
from verbatim.chat.messages import MessageRejected, parse_version
from verbatim.contracts.chat import ChatBackfillRequest
from verbatim.graph import GraphClient, GraphNotFound
from verbatim.platform.times import format_datetime, parse_datetime, utcnow

log = logging.getLogger(__name__)

PAGE = 50


class RecordedUsers(Protocol):
    def recorded(self, tenant_id: str, at: datetime) -> list[str]:
        """Object ids of the tenant's users whose chats must be captured at `at` (policy users, and users the
        coverage audit has not decided on yet)."""
        ...


class Watermarks(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


class CosmosWatermarks:
    """`control` documents `{id: "chat-backfill-<tenant>", until}`."""

    def __init__(self, container: ContainerProxy) -> None:
        self._c = container

    def get(self, key: str) -> str | None:
        items = list(
            self._c.query_items(
                "SELECT * FROM c WHERE c.id = @id", parameters=[{"name": "@id", "value": key}], partition_key=key
            )
        )
        value = items[0].get("until") if items else None
        return value if isinstance(value, str) else None

    def put(self, key: str, value: str) -> None:
        self._c.upsert_item({"id": key, "docType": "chatBackfillWatermark", "until": value})


@dataclass
class InMemoryWatermarks:
    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def put(self, key: str, value: str) -> None:
        self.values[key] = value


@dataclass
class BackfillResult:
    tenant_id: str
    reason: str
    since: str
    until: str
    users: int = 0
    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    not_recorded: int = 0
    rejected: int = 0
    pages: int = 0
    stored_keys: list[tuple[str, str, str]] = field(default_factory=list)


def export_filter(since: datetime, until: datetime) -> str:
    return f"lastModifiedDateTime gt {format_datetime(since)} and lastModifiedDateTime lt {format_datetime(until)}"


def watermark_key(tenant_id: str) -> str:
    return f"chat-backfill-{tenant_id}"


class ChatBackfiller:
    def __init__(
        self,
        *,
        graph_for: Callable[[str], GraphClient],
        ingestor: ChatIngestor,
        users: RecordedUsers,
        watermarks: Watermarks,
        overlap: timedelta = timedelta(hours=2),
        initial_lookback: timedelta = timedelta(days=1),
        payment_model: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._graph_for = graph_for
        self._ingestor = ingestor
        self._users = users
        self._watermarks = watermarks
        self._overlap = overlap
        self._initial = initial_lookback
        self._model = payment_model
        self._clock = clock

    def run(self, request: ChatBackfillRequest) -> BackfillResult:
        now = self._clock()
        until = parse_datetime(request.until) or now
        since = parse_datetime(request.since)
        if since is None:
            mark = parse_datetime(self._watermarks.get(watermark_key(request.tenant_id)))
            since = mark if mark is not None else until - self._initial
        since = min(since - self._overlap, until)
        users = request.user_ids or self._users.recorded(request.tenant_id, now)
        result = BackfillResult(request.tenant_id, request.reason, format_datetime(since), format_datetime(until))
        seen: set[tuple[str, str, str]] = set()
        for user in users:
            result.users += 1
            for item in self.export(request.tenant_id, user, since, until, result):
                self._one(item, request.tenant_id, seen, result)
        if not request.user_ids and request.until is None:
            self._watermarks.put(watermark_key(request.tenant_id), format_datetime(until))
        log.info(
            "chat back-fill done",
            extra={"tenant_id": request.tenant_id, "reason": request.reason, "stored": result.stored},
        )
        return result

    def export(
        self, tenant_id: str, user_id: str, since: datetime, until: datetime, result: BackfillResult | None = None
    ) -> Iterable[dict[str, Any]]:
        """Every item the export API lists for one user in the window."""
        graph = self._graph_for(tenant_id)
        params = {"$top": str(PAGE), "$filter": export_filter(since, until)}
        if self._model:
            params["model"] = self._model
        try:
            for page in graph.iter_pages(f"/users/{quote(user_id, safe='')}/chats/getAllMessages", params=params):
                if result is not None:
                    result.pages += 1
                yield from (item for item in page.get("value") or [] if isinstance(item, dict))
        except GraphNotFound:
            log.warning("export API: user not found", extra={"tenant_id": tenant_id})

    def _one(
        self, item: dict[str, Any], tenant_id: str, seen: set[tuple[str, str, str]], result: BackfillResult
    ) -> None:
        result.seen += 1
        try:
            version = parse_version(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
        except MessageRejected:
            result.rejected += 1
            return
        if version.key in seen:
            return  # the same message through another member of the chat
        seen.add(version.key)
        outcome = self._ingestor.ingest_version(version, tenant_id, "export")
        if outcome.action == "stored":
            result.stored += 1
            result.stored_keys.append(version.key)
        elif outcome.action == "duplicate":
            result.duplicates += 1
        elif outcome.action == "not-recorded":
            result.not_recorded += 1
