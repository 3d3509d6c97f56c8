"""Instance and history tables of a task hub in Azure Table storage (Azurite locally).

`<hub>Instances` holds one row per instance (status, input, output, custom status, times, the current
execution and how many of its history rows are committed); `<hub>History` holds the events, partitioned by
instance, keyed by execution and position. The instance row is the commit point: history rows beyond its
`HistoryCount` (left by a crashed episode) are ignored and overwritten.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from devstack.funchost.durable.history import HistoryRecord

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})

# Azure Tables caps a string property at 64 KiB (32 Ki UTF-16 characters) and an entity at 1 MiB; longer texts
# are split across `<name>`, `<name>_1`, ... (with `<name>_parts`).
_PART_CHARS = 30_000
_MAX_PARTS = 15
_BATCH = 100


class ConcurrencyError(RuntimeError):
    """The instance row changed since it was read (another writer won); the caller retries from a fresh read."""


class PayloadTooLargeError(ValueError):
    """A value is larger than one table entity can hold."""


def _put_text(entity: dict[str, Any], name: str, text: str | None) -> None:
    if text is None:
        return
    parts = [text[i : i + _PART_CHARS] for i in range(0, len(text), _PART_CHARS)] or [""]
    if len(parts) > _MAX_PARTS:
        raise PayloadTooLargeError(f"{name} is {len(text)} characters; the local host keeps at most ~450k per value")
    entity[name] = parts[0]
    for index, part in enumerate(parts[1:], start=1):
        entity[f"{name}_{index}"] = part
    if len(parts) > 1:
        entity[f"{name}_parts"] = len(parts)


def _get_text(entity: Mapping[str, Any], name: str) -> str | None:
    first = entity.get(name)
    if first is None:
        return None
    parts = int(entity.get(f"{name}_parts") or 1)
    return str(first) + "".join(str(entity[f"{name}_{index}"]) for index in range(1, parts))


def _escape(value: str) -> str:
    return value.replace("'", "''")


@dataclass
class InstanceRow:
    """One orchestration instance as stored."""

    instance_id: str
    name: str
    execution_id: str
    runtime_status: str
    created_time: datetime
    last_updated_time: datetime
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    version: str | None = None
    parent: dict[str, Any] | None = None  # InstanceId, ExecutionId, TaskScheduledId, Name of the parent
    history_count: int = 0
    etag: str | None = field(default=None, compare=False)

    @property
    def is_terminal(self) -> bool:
        return self.runtime_status in TERMINAL_STATUSES

    def to_entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": self.instance_id,
            "RowKey": "",
            "Name": self.name,
            "ExecutionId": self.execution_id,
            "RuntimeStatus": self.runtime_status,
            "CreatedTime": self.created_time,
            "LastUpdatedTime": self.last_updated_time,
            "HistoryCount": self.history_count,
            "Version": self.version or "",
        }
        if self.parent:
            entity["Parent"] = json.dumps(self.parent)
        _put_text(entity, "Input", self.input)
        _put_text(entity, "Output", self.output)
        _put_text(entity, "CustomStatus", self.custom_status)
        return entity

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> InstanceRow:
        parent = entity.get("Parent")
        metadata = getattr(entity, "metadata", {}) or {}
        return cls(
            instance_id=str(entity["PartitionKey"]),
            name=str(entity["Name"]),
            execution_id=str(entity["ExecutionId"]),
            runtime_status=str(entity["RuntimeStatus"]),
            created_time=entity["CreatedTime"],
            last_updated_time=entity["LastUpdatedTime"],
            input=_get_text(entity, "Input"),
            output=_get_text(entity, "Output"),
            custom_status=_get_text(entity, "CustomStatus"),
            version=str(entity.get("Version") or "") or None,
            parent=json.loads(parent) if parent else None,
            history_count=int(entity.get("HistoryCount") or 0),
            etag=metadata.get("etag"),
        )


@dataclass(frozen=True)
class InstanceQuery:
    """Filters of the list and purge APIs (all optional)."""

    runtime_statuses: frozenset[str] = frozenset()
    created_from: datetime | None = None
    created_to: datetime | None = None
    instance_id_prefix: str | None = None

    def to_filter(self, after: str | None) -> tuple[str, dict[str, Any]]:
        clauses = ["RowKey eq ''"]
        parameters: dict[str, Any] = {}
        if self.runtime_statuses:
            statuses = " or ".join(f"RuntimeStatus eq '{_escape(status)}'" for status in sorted(self.runtime_statuses))
            clauses.append(f"({statuses})")
        if self.created_from is not None:
            clauses.append("CreatedTime ge @created_from")
            parameters["created_from"] = self.created_from
        if self.created_to is not None:
            clauses.append("CreatedTime le @created_to")
            parameters["created_to"] = self.created_to
        if self.instance_id_prefix:
            clauses.append("PartitionKey ge @prefix and PartitionKey lt @prefix_end")
            parameters["prefix"] = self.instance_id_prefix
            parameters["prefix_end"] = self.instance_id_prefix + "\U0010ffff"
        if after is not None:
            clauses.append("PartitionKey gt @after")
            parameters["after"] = after
        return " and ".join(clauses), parameters


class TaskHubStore:
    """Reads and writes one task hub's instance and history tables."""

    def __init__(self, service: TableServiceClient, hub: str) -> None:
        self.hub = hub
        self._service = service
        self.instances: TableClient = service.get_table_client(f"{hub}Instances")
        self.history: TableClient = service.get_table_client(f"{hub}History")

    async def create_if_missing(self) -> None:
        for table in (self.instances, self.history):
            with contextlib.suppress(ResourceExistsError):
                await table.create_table()

    async def close(self) -> None:
        await self.instances.close()
        await self.history.close()
        await self._service.close()

    # --- instances ---

    async def get_instance(self, instance_id: str) -> InstanceRow | None:
        try:
            entity = await self.instances.get_entity(instance_id, "")
        except ResourceNotFoundError:
            return None
        return InstanceRow.from_entity(entity)

    async def save_instance(self, row: InstanceRow) -> InstanceRow:
        """Insert a new row (etag None) or replace the row read earlier; ConcurrencyError if it changed."""
        try:
            if row.etag is None:
                metadata = await self.instances.create_entity(row.to_entity())
            else:
                metadata = await self.instances.update_entity(
                    row.to_entity(),
                    mode=UpdateMode.REPLACE,
                    etag=row.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError) as error:
            raise ConcurrencyError(f"instance {row.instance_id} was changed concurrently") from error
        except HttpResponseError as error:
            if error.status_code == 412:
                raise ConcurrencyError(f"instance {row.instance_id} was changed concurrently") from error
            raise
        return replace(row, etag=metadata.get("etag"))

    async def query_instances(
        self, query: InstanceQuery, *, top: int | None = None, after: str | None = None
    ) -> tuple[list[InstanceRow], str | None]:
        """Instances matching `query`, ordered by id, at most `top`; the second value continues the listing."""
        text, parameters = query.to_filter(after)
        rows: list[InstanceRow] = []
        async for entity in self.instances.query_entities(text, parameters=parameters):
            rows.append(InstanceRow.from_entity(entity))
            if top is not None and len(rows) > top:
                return rows[:top], rows[top - 1].instance_id
        return rows, None

    async def delete_instance(self, instance_id: str) -> bool:
        """Delete the instance row and all its history; False if there was no such instance."""
        existed = await self.get_instance(instance_id) is not None
        await self._delete_partition(self.history, instance_id)
        await self._delete_partition(self.instances, instance_id)
        return existed

    # --- history ---

    @staticmethod
    def _row_key(execution_id: str, index: int) -> str:
        return f"{execution_id}.{index:08d}"

    async def load_history(self, row: InstanceRow) -> list[HistoryRecord]:
        """The committed history of the instance's current execution, in order."""
        if row.history_count == 0:
            return []
        records: list[HistoryRecord] = []
        query = "PartitionKey eq @pk and RowKey ge @first and RowKey le @last"
        parameters = {
            "pk": row.instance_id,
            "first": self._row_key(row.execution_id, 0),
            "last": self._row_key(row.execution_id, row.history_count - 1),
        }
        async for entity in self.history.query_entities(query, parameters=parameters):
            records.append(
                HistoryRecord(json.loads(_get_text(entity, "Event") or "{}"), json.loads(entity.get("Meta") or "{}"))
            )
        if len(records) != row.history_count:
            raise RuntimeError(
                f"instance {row.instance_id}: expected {row.history_count} history rows, found {len(records)}"
            )
        return records

    async def write_history(
        self, instance_id: str, execution_id: str, start: int, records: Sequence[HistoryRecord]
    ) -> None:
        """Upsert history rows at positions start, start+1, ... (idempotent: same position, same key)."""
        operations: list[tuple[str, dict[str, Any]]] = []
        for offset, record in enumerate(records):
            entity: dict[str, Any] = {
                "PartitionKey": instance_id,
                "RowKey": self._row_key(execution_id, start + offset),
                "ExecutionId": execution_id,
                "EventType": int(record.event["EventType"]),
                "Meta": json.dumps(record.meta),
            }
            _put_text(entity, "Event", json.dumps(record.event))
            operations.append(("upsert", entity))
        for chunk in _chunks(operations):
            await self.history.submit_transaction(chunk)

    async def delete_other_executions(self, instance_id: str, keep_execution: str) -> None:
        """Drop history rows of earlier executions (after continue-as-new or a restart of the instance)."""
        keys = [
            entity["RowKey"]
            async for entity in self.history.query_entities(
                "PartitionKey eq @pk", parameters={"pk": instance_id}, select=["PartitionKey", "RowKey", "ExecutionId"]
            )
            if entity.get("ExecutionId") != keep_execution
        ]
        await self._delete_keys(self.history, instance_id, keys)

    async def _delete_partition(self, table: TableClient, partition: str) -> None:
        keys = [
            entity["RowKey"]
            async for entity in table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": partition}, select=["PartitionKey", "RowKey"]
            )
        ]
        await self._delete_keys(table, partition, keys)

    @staticmethod
    async def _delete_keys(table: TableClient, partition: str, keys: Sequence[str]) -> None:
        operations = [("delete", {"PartitionKey": partition, "RowKey": key}) for key in keys]
        for chunk in _chunks(operations):
            await table.submit_transaction(chunk)


Operation = tuple[str, dict[str, Any]]


def _chunks(operations: list[Operation]) -> list[list[Operation]]:
    """Entity-group transactions: at most 100 operations and (roughly) 4 MiB each."""
    chunks: list[list[Operation]] = []
    current: list[Operation] = []
    size = 0
    for operation in operations:
        weight = sum(len(str(value)) * 2 for value in operation[1].values())
        if current and (len(current) >= _BATCH or size + weight > 3_500_000):
            chunks.append(current)
            current, size = [], 0
        current.append(operation)
        size += weight
    if current:
        chunks.append(current)
    return chunks
