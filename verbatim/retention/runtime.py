"""The retention services wired from settings, built once per process (per settings object); nothing connects
until a service is first used. Also the lifecycle's seal-time hooks (`retention_policy`, `seal_holds`)."""

from __future__ import annotations

import threading
from datetime import timedelta
from functools import cached_property

from azure.cosmos import DatabaseProxy
from azure.storage.blob import ContainerClient

from verbatim import clients
from verbatim.api.access import AccessLog
from verbatim.api.index import CosmosRecordingIndex
from verbatim.callrecords.audit import CosmosAuditLog
from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.retention import RetentionClass
from verbatim.ledger import Ledger, ledger_from_settings
from verbatim.policy.snapshots import CosmosPolicySnapshotStore
from verbatim.retention.classes import CosmosRetentionClassStore, RetentionCatalog, configured_classes
from verbatim.retention.common import Clock, utc_now
from verbatim.retention.deletion import RecordingDeleter
from verbatim.retention.extension import RetentionExtender
from verbatim.retention.holds import CosmosHoldStore, HoldService, SealHoldMatcher
from verbatim.retention.lease import CosmosLeaseStore, Leases
from verbatim.retention.recordings import CosmosRetentionRecordings
from verbatim.retention.reports import RetentionReports
from verbatim.retention.selection import ClassRetention
from verbatim.retention.storage import RecordingBlobs
from verbatim.retention.subjects import CosmosCallRecordPeople, DataSubjectService
from verbatim.retention.sweep import RetentionSweep, SweepLimits
from verbatim.settings import Settings

RAW_CALLRECORDS_CONTAINER = "callrecords"


class RetentionRuntime:
    def __init__(self, settings: Settings, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock  # tests run retention on simulated time
        self._sync_lock = threading.Lock()
        self._synced = False

    # --- adapters ---

    @cached_property
    def database(self) -> DatabaseProxy:
        return clients.cosmos_database(self.settings)

    @cached_property
    def media(self) -> ContainerClient:
        return clients.blob_service(self.settings.recordings_storage_connection).get_container_client(
            self.settings.recordings_container
        )

    @cached_property
    def ledger(self) -> Ledger:
        return ledger_from_settings(self.settings)

    @cached_property
    def recordings(self) -> CosmosRetentionRecordings:
        return CosmosRetentionRecordings(self.database.get_container_client("recordings"))

    @cached_property
    def hold_store(self) -> CosmosHoldStore:
        return CosmosHoldStore(self.database.get_container_client("holds"))

    @cached_property
    def blobs(self) -> RecordingBlobs:
        return RecordingBlobs(self.media, emulator=self.settings.recordings_storage_is_emulator)

    @cached_property
    def access(self) -> AccessLog:
        return AccessLog(ledger=self.ledger, audit=CosmosAuditLog(self.database.get_container_client("audit")))

    # --- retention classes ---

    @cached_property
    def _catalog(self) -> RetentionCatalog:
        store = CosmosRetentionClassStore(self.database.get_container_client("control"))
        return RetentionCatalog(store, self.ledger, self.clock)

    @property
    def catalog(self) -> RetentionCatalog:
        """The catalog, brought up to the configured classes once per process (extend-only)."""
        with self._sync_lock:
            if not self._synced:
                self._catalog.sync(configured_classes(self.settings))
                self._synced = True
        return self._catalog

    def classes(self) -> dict[str, RetentionClass]:
        return self.catalog.by_name()

    # --- services ---

    @cached_property
    def retention_policy(self) -> ClassRetention:
        """The lifecycle's `RetentionPolicy`: the class of each recording at seal time."""
        return ClassRetention(
            self.classes,
            self.settings.seal_default_retention_class,
            snapshots=CosmosPolicySnapshotStore(self.database.get_container_client("policy_snapshots")),
            group_classes=self.settings.retention_group_classes,
        )

    @cached_property
    def seal_holds(self) -> SealHoldMatcher:
        """The lifecycle's `HoldMatcher`: active holds that cover a recording at seal time."""
        return SealHoldMatcher(self.hold_store)

    @cached_property
    def holds(self) -> HoldService:
        return HoldService(self.hold_store, self.recordings, self.blobs, self.ledger, self.clock)

    @cached_property
    def deleter(self) -> RecordingDeleter:
        index = CosmosRecordingIndex(self.database.get_container_client("recording_index"))

        def reindex(tombstone: RecordingRecord) -> None:
            # The search index holds the participants too: replace it with the tombstone's facts.
            index.put(tombstone)

        return RecordingDeleter(
            self.recordings,
            self.blobs,
            self.hold_store,
            self.classes,
            self.ledger,
            clock=self.clock,
            on_deleted=reindex,
            emulator=self.settings.recordings_storage_is_emulator,
            stale_after=timedelta(seconds=self.settings.retention_sweep_lease_seconds),
        )

    @cached_property
    def extender(self) -> RetentionExtender:
        return RetentionExtender(self.recordings, self.blobs, self.catalog, self.ledger, self.clock)

    @cached_property
    def sweep(self) -> RetentionSweep:
        settings = self.settings
        return RetentionSweep(
            self.recordings,
            self.deleter,
            self.classes,
            Leases(
                CosmosLeaseStore(self.database.get_container_client("control")),
                timedelta(seconds=settings.retention_sweep_lease_seconds),
            ),
            holds=self.holds,
            extender=self.extender,
            limits=SweepLimits(
                batch_size=settings.retention_sweep_batch_size,
                page_size=settings.retention_sweep_page_size,
                max_deletions=settings.retention_sweep_max_deletions,
            ),
            clock=self.clock,
        )

    @cached_property
    def subjects(self) -> DataSubjectService:
        raw = clients.blob_service(self.settings.runtime_storage_connection).get_container_client(
            RAW_CALLRECORDS_CONTAINER
        )
        return DataSubjectService(
            self.recordings,
            CosmosCallRecordPeople(self.database.get_container_client("calls"), raw),
            self.deleter,
            self.hold_store,
            self.classes,
            self.ledger,
            self.clock,
        )

    @cached_property
    def reports(self) -> RetentionReports:
        return RetentionReports(self.recordings, self.hold_store, self.classes, self.clock)


_current: tuple[Settings, RetentionRuntime] | None = None
_lock = threading.Lock()


def retention_runtime(settings: Settings) -> RetentionRuntime:
    """The process's runtime for these settings (rebuilt when the settings object changes, e.g. in tests)."""
    global _current
    with _lock:
        if _current is None or _current[0] is not settings:
            _current = (settings, RetentionRuntime(settings))
        return _current[1]
