"""Reconciliation wired from settings, built once per process (per settings object) and shared by the
triggers. Nothing connects until a service is first used."""

from __future__ import annotations

import threading
from functools import cached_property

from azure.cosmos import DatabaseProxy
from azure.storage.blob import ContainerClient

from verbatim import clients
from verbatim.api.index import CosmosRecordingIndex
from verbatim.callrecords.queues import StorageQueue
from verbatim.callrecords.runtime import callrecords_runtime
from verbatim.ledger import Ledger, ledger_from_settings
from verbatim.policy.snapshots import CosmosPolicySnapshotStore
from verbatim.reconciliation.evaluate import Tolerance
from verbatim.reconciliation.report import CompletenessReporter
from verbatim.reconciliation.service import Reconciler
from verbatim.reconciliation.store import CosmosRecordingFinder, CosmosVerdictStore
from verbatim.settings import Settings


class ReconciliationRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def database(self) -> DatabaseProxy:
        # The call-record runtime's client: one Cosmos connection pool per process.
        return callrecords_runtime(self.settings).database

    @cached_property
    def verdicts(self) -> CosmosVerdictStore:
        return CosmosVerdictStore(self.database.get_container_client("verdicts"))

    @cached_property
    def recordings(self) -> CosmosRecordingFinder:
        return CosmosRecordingFinder(self.database.get_container_client("recordings"))

    @cached_property
    def index(self) -> CosmosRecordingIndex:
        return CosmosRecordingIndex(self.database.get_container_client("recording_index"))

    @cached_property
    def ledger(self) -> Ledger:
        return ledger_from_settings(self.settings)

    @cached_property
    def reports(self) -> ContainerClient:
        service = clients.blob_service(self.settings.recordings_storage_connection)
        return service.get_container_client(self.settings.reports_container)

    @cached_property
    def requests_queue(self) -> StorageQueue:
        return StorageQueue(
            clients.queue_client(self.settings.runtime_storage_connection, self.settings.reconciliation_requests_queue)
        )

    @cached_property
    def reconciler(self) -> Reconciler:
        calls = callrecords_runtime(self.settings)
        return Reconciler(
            calls=calls.store,
            snapshots=CosmosPolicySnapshotStore(self.database.get_container_client("policy_snapshots")),
            recordings=self.recordings,
            verdicts=self.verdicts,
            alerts=calls.audit,
            index=self.index,
            tolerance=Tolerance(
                join_seconds=self.settings.reconciliation_join_tolerance_seconds,
                end_seconds=self.settings.reconciliation_end_tolerance_seconds,
            ),
        )

    @cached_property
    def reporter(self) -> CompletenessReporter:
        return CompletenessReporter(
            verdicts=self.verdicts,
            reports=self.reports,
            ledger=self.ledger,
            signer=self.ledger.signer,
            reconciler=self.reconciler,
        )


_current: tuple[Settings, ReconciliationRuntime] | None = None
_lock = threading.Lock()


def reconciliation_runtime(settings: Settings) -> ReconciliationRuntime:
    """The process's runtime for these settings (rebuilt when the settings object changes, e.g. in tests)."""
    global _current
    with _lock:
        if _current is None or _current[0] is not settings:
            _current = (settings, ReconciliationRuntime(settings))
        return _current[1]
