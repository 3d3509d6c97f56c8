"""Export records in Cosmos `exports` (partition key /id; every read names the partition in its SQL, as the
emulator needs), and the in-memory fake beside it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosHttpResponseError

from verbatim.contracts.exports import ExportRecord
from verbatim.platform.errors import DependencyUnavailable, NotFound

MAX_ATTEMPTS = 10


class ExportStore(Protocol):
    def create(self, record: ExportRecord) -> None: ...

    def get(self, export_id: str) -> ExportRecord | None: ...

    def update(self, export_id: str, change: Callable[[ExportRecord], ExportRecord]) -> ExportRecord:
        """Apply `change` to the stored record (optimistic concurrency, retried); NotFound when there is none."""
        ...

    def recent(self, limit: int) -> list[ExportRecord]:
        """The newest exports first."""
        ...

    def expiring(self, before: str) -> list[ExportRecord]:
        """Completed or failed exports whose expiry is before `before`."""
        ...


class CosmosExportStore:
    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def create(self, record: ExportRecord) -> None:
        self._container.create_item(record.model_dump(mode="json", by_alias=True))

    def _read(self, export_id: str) -> dict[str, Any] | None:
        found = list(
            self._container.query_items(
                "SELECT * FROM c WHERE c.id = @id",
                parameters=[{"name": "@id", "value": export_id}],
                partition_key=export_id,
            )
        )
        return found[0] if found else None

    def get(self, export_id: str) -> ExportRecord | None:
        document = self._read(export_id)
        return ExportRecord.model_validate(document) if document else None

    def update(self, export_id: str, change: Callable[[ExportRecord], ExportRecord]) -> ExportRecord:
        for _ in range(MAX_ATTEMPTS):
            document = self._read(export_id)
            if document is None:
                raise NotFound(f"no export {export_id}")
            updated = change(ExportRecord.model_validate(document))
            try:
                self._container.replace_item(
                    export_id,
                    updated.model_dump(mode="json", by_alias=True),
                    etag=document["_etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except CosmosHttpResponseError as error:
                if error.status_code == 412:
                    continue
                raise
            return updated
        raise DependencyUnavailable(f"export {export_id}: too many concurrent updates")

    def recent(self, limit: int) -> list[ExportRecord]:
        found = self._container.query_items(
            "SELECT * FROM c ORDER BY c.createdAt DESC", enable_cross_partition_query=True, max_item_count=limit
        )
        records = []
        for document in found:
            records.append(ExportRecord.model_validate(document))
            if len(records) >= limit:
                break
        return records

    def expiring(self, before: str) -> list[ExportRecord]:
        found = self._container.query_items(
            "SELECT * FROM c WHERE (c.status = 'completed' OR c.status = 'failed') AND c.expiresAt < @before",
            parameters=[{"name": "@before", "value": before}],
            enable_cross_partition_query=True,
        )
        return [ExportRecord.model_validate(d) for d in found]


class InMemoryExportStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, ExportRecord] = {}

    def create(self, record: ExportRecord) -> None:
        with self._lock:
            if record.id in self._records:
                raise ValueError(f"export {record.id} exists")
            self._records[record.id] = record

    def get(self, export_id: str) -> ExportRecord | None:
        with self._lock:
            return self._records.get(export_id)

    def update(self, export_id: str, change: Callable[[ExportRecord], ExportRecord]) -> ExportRecord:
        with self._lock:
            record = self._records.get(export_id)
            if record is None:
                raise NotFound(f"no export {export_id}")
            self._records[export_id] = updated = change(record)
            return updated

    def recent(self, limit: int) -> list[ExportRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.created_at, reverse=True)[:limit]

    def expiring(self, before: str) -> list[ExportRecord]:
        with self._lock:
            return [r for r in self._records.values() if r.status in ("completed", "failed") and r.expires_at < before]
