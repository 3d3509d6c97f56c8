"""Build the lifecycle's dependencies from settings, once per process."""

from __future__ import annotations

from verbatim import clients
from verbatim.evidence.progress import progress_table
from verbatim.ledger import ledger_from_settings
from verbatim.lifecycle.activities import LifecycleDeps
from verbatim.lifecycle.policies import CosmosHoldMatcher, FixedRetention
from verbatim.lifecycle.records import CosmosRecordingStore
from verbatim.settings import Settings

SCRATCH_CONTAINER = "lifecycle-scratch"
RECONCILIATION_QUEUE = "reconciliation-requests"


def lifecycle_deps(settings: Settings) -> LifecycleDeps:
    database = clients.cosmos_database(settings)
    return LifecycleDeps(
        recordings=clients.blob_service(settings.recordings_storage_connection).get_container_client(
            settings.recordings_container
        ),
        scratch=clients.blob_service(settings.runtime_storage_connection).get_container_client(SCRATCH_CONTAINER),
        store=CosmosRecordingStore(database.get_container_client("recordings")),
        ledger=ledger_from_settings(settings),
        retention=FixedRetention(settings.seal_default_retention_class, settings.seal_default_retention_days),
        progress=progress_table(clients.table_service(settings.runtime_storage_connection)),
        holds=CosmosHoldMatcher(database.get_container_client("holds")),
        emulator=settings.recordings_storage_is_emulator,
        reconciliation=clients.queue_service(settings.runtime_storage_connection).get_queue_client(
            RECONCILIATION_QUEUE
        ),
    )
