"""Build the lifecycle's dependencies from settings, once per process."""

from __future__ import annotations

from verbatim import clients
from verbatim.evidence.progress import progress_table
from verbatim.ledger import ledger_from_settings
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.records import CosmosRecordingStore
from verbatim.retention.runtime import retention_runtime
from verbatim.settings import Settings

SCRATCH_CONTAINER = "lifecycle-scratch"
RECONCILIATION_QUEUE = "reconciliation-requests"


def lifecycle_deps(settings: Settings) -> LifecycleDeps:
    database = clients.cosmos_database(settings)
    retention = retention_runtime(settings)  # issue 8: retention class and legal holds at seal time
    return LifecycleDeps(
        recordings=clients.blob_service(settings.recordings_storage_connection).get_container_client(
            settings.recordings_container
        ),
        scratch=clients.blob_service(settings.runtime_storage_connection).get_container_client(SCRATCH_CONTAINER),
        store=CosmosRecordingStore(database.get_container_client("recordings")),
        ledger=ledger_from_settings(settings),
        retention=retention.retention_policy,
        progress=progress_table(clients.table_service(settings.runtime_storage_connection)),
        holds=retention.seal_holds,
        emulator=settings.recordings_storage_is_emulator,
        reconciliation=clients.queue_service(settings.runtime_storage_connection).get_queue_client(
            RECONCILIATION_QUEUE
        ),
    )
