"""The capture progress record: the recorder's heartbeat per recording, one table entity each.

The recorder overwrites it every few seconds while it captures (`CaptureProgress`); the lifecycle reads it
to decide whether a recorder went silent and how far its staged blocks should reach. It lives in the
runtime storage account's table service (Azurite locally), not on a queue: it is state, not an event.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from verbatim.contracts.recorder import CaptureProgress
from verbatim.platform import layout

PROGRESS_TABLE = layout.RECORDER_PROGRESS_TABLE
ROW_KEY = "progress"


def progress_table(service: TableServiceClient, name: str = PROGRESS_TABLE) -> TableClient:
    """The progress table, created when missing."""
    with contextlib.suppress(ResourceExistsError):
        service.create_table(name)
    return service.get_table_client(name)


def write_progress(table: TableClient, progress: CaptureProgress, **options: Any) -> None:
    entity: dict[str, Any] = {"PartitionKey": progress.recording_id, "RowKey": ROW_KEY}
    for key, value in progress.model_dump(mode="json").items():
        if value is not None:
            entity[key] = value
    table.upsert_entity(entity, mode=UpdateMode.REPLACE, **options)


def read_progress(table: TableClient, recording_id: str) -> CaptureProgress | None:
    try:
        entity = table.get_entity(recording_id, ROW_KEY)
    except ResourceNotFoundError:
        return None
    return CaptureProgress.model_validate(
        {key: value for key, value in entity.items() if key not in ("PartitionKey", "RowKey")}
    )


class ProgressReader(Protocol):
    """The lifecycle's view of the progress table: the latest heartbeat of a recording, if any."""

    def read(self, recording_id: str) -> CaptureProgress | None: ...


class TableProgress:
    """`ProgressReader` on the runtime account's table."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    def read(self, recording_id: str) -> CaptureProgress | None:
        return read_progress(self.table, recording_id)


class InMemoryProgress:
    """`ProgressReader` in memory (service-level tests): the heartbeats written so far, newest per recording."""

    def __init__(self) -> None:
        self.latest: dict[str, CaptureProgress] = {}

    def write(self, progress: CaptureProgress) -> None:
        self.latest[progress.recording_id] = progress

    def read(self, recording_id: str) -> CaptureProgress | None:
        return self.latest.get(recording_id)
