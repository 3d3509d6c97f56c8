"""Making a sealed part's access copies as work of its own: the request on `access-copies`, and the sweep that asks
again for a part whose copies are still pending long after its evidence was sealed.

The lifecycle orchestration seals and indexes the lossless evidence, then only sends a request here and ends: the
transcode (CPU-bound, ~1 s of CPU per recorded minute) runs in the `access-copies` queue trigger, never in the
orchestration's activity slots, so the evidence seals (and so the verdicts) of recordings that end together never
wait behind the access copies of the ones before them: the Azure Storage provider keeps all of a task hub's activity
messages in one work-item queue, with no priority between them (MicrosoftDocs azure-docs,
articles/azure-functions/durable/durable-functions-azure-storage-provider.md), and `maxConcurrentActivityFunctions`
bounds them together per instance. In Azure's Flex Consumption plan a queue-triggered function
is also scaled in instances of its own, apart from the Durable Functions group (MicrosoftDocs azure-docs,
articles/azure-functions/flex-consumption-plan.md, "Per-function scaling").

Delivery is at least once and every step is idempotent (chunks written under names derived from the evidence hash,
the copy and the access manifest written once, the ledger entry appended by idempotency key): a duplicate request
finds the part sealed and costs a read. A host that dies mid-transcode leaves the message to reappear; one that
fails on every delivery goes to `access-copies-poison`, and the sweep asks again once the part has been pending for
`access_copy_sweep_minutes`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from azure.cosmos import ContainerProxy

from verbatim.contracts.lifecycle import AccessCopyRequest, RecordingRecord
from verbatim.platform.queues import MessageQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingPart:
    """A sealed part whose access copies are not sealed yet, and when its evidence was sealed."""

    recording_id: str
    part: int
    sealed_at: datetime


class PendingAccessCopies(Protocol):
    def pending(self, sealed_before: datetime) -> list[PendingPart]:
        """Parts sealed before `sealed_before` whose access copies are still pending (records not being deleted)."""


class CosmosPendingAccessCopies:
    """The Cosmos `recordings` container: one cross-partition query over the sealed parts."""

    QUERY = (
        "SELECT c.id, p.part, p.sealed_at FROM c JOIN p IN c.seal.parts "
        "WHERE c.status = 'sealed' AND p.access_pending = true AND p.sealed_at < @before"
    )

    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def pending(self, sealed_before: datetime) -> list[PendingPart]:
        rows: Iterable[dict[str, Any]] = self._container.query_items(
            self.QUERY,
            # Compared as text with the stored ISO 8601 times (to the second: the sweep's threshold is minutes).
            parameters=[{"name": "@before", "value": sealed_before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")}],
            enable_cross_partition_query=True,
        )
        return [
            PendingPart(str(row["id"]), int(row["part"]), datetime.fromisoformat(str(row["sealed_at"]))) for row in rows
        ]


class InMemoryPendingAccessCopies:
    """Over the records a test keeps (e.g. `InMemoryRecordingStore.docs`)."""

    def __init__(self, records: Callable[[], Iterable[RecordingRecord]]) -> None:
        self._records = records

    def pending(self, sealed_before: datetime) -> list[PendingPart]:
        return [
            PendingPart(record.id, part.part, part.sealed_at)
            for record in self._records()
            if record.status == "sealed" and record.seal is not None
            for part in record.seal.parts
            if part.access_pending and part.sealed_at < sealed_before
        ]


def request_access_copy(queue: MessageQueue, request: AccessCopyRequest) -> None:
    """Send the request (`DependencyUnavailable` when it cannot be sent: the activity is retried)."""
    queue.send(request.model_dump_json())


def sweep(
    finder: PendingAccessCopies,
    queue: MessageQueue,
    now: datetime,
    after: timedelta,
    finalised_blob: Callable[[str, int], str],
) -> list[PendingPart]:
    """Ask again for every part whose access copies are still pending `after` its evidence seal; returns them."""
    pending = finder.pending(now - after)
    for part in pending:
        log.warning(
            "access copies still pending since the evidence seal; asking again",
            extra={"recording_id": part.recording_id, "part": part.part, "sealed_at": part.sealed_at.isoformat()},
        )
        request = AccessCopyRequest(
            recording_id=part.recording_id, part=part.part, finalised_blob=finalised_blob(part.recording_id, part.part)
        )
        request_access_copy(queue, request)
    return pending
