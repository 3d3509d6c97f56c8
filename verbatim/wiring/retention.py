"""Retention's services, built from the container's adapters: classes, holds, deletion, extension, the sweep,
data-subject requests and reports; and the lifecycle's seal-time ports (`retention_policy`, `seal_holds`)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from azure.storage.blob import ContainerClient

from verbatim.contracts.lifecycle import RecordingRecord
from verbatim.contracts.retention import RetentionClass
from verbatim.ledger.access import AccessLog
from verbatim.ledger.log.service import TransparencyLog
from verbatim.platform import layout
from verbatim.retention.classes import CosmosRetentionClassStore, RetentionCatalog, configured_classes
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

if TYPE_CHECKING:
    from verbatim.wiring.container import Container


class RetentionServices:
    def __init__(self, container: Container) -> None:
        self._c = container
        self.settings = container.settings
        self._sync_lock = threading.Lock()
        self._synced = False

    def clock(self) -> datetime:
        return self._c.clock()

    # --- adapters ---

    @property
    def media(self) -> ContainerClient:
        return self._c.recordings

    @property
    def ledger(self) -> TransparencyLog:
        return self._c.ledger

    @property
    def access(self) -> AccessLog:
        return self._c.access

    @cached_property
    def recordings(self) -> CosmosRetentionRecordings:
        return CosmosRetentionRecordings(self._c.cosmos(layout.RECORDINGS))

    @cached_property
    def hold_store(self) -> CosmosHoldStore:
        return CosmosHoldStore(self._c.cosmos(layout.HOLDS))

    @cached_property
    def blobs(self) -> RecordingBlobs:
        return RecordingBlobs(
            self.media,
            emulator=self.settings.recordings_storage_is_emulator,
            captures=self._c.captures,
            scratch=self._c.scratch,
        )

    # --- retention classes ---

    @cached_property
    def _catalog(self) -> RetentionCatalog:
        store = CosmosRetentionClassStore(self._c.cosmos(layout.CONTROL))
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
            snapshots=self._c.policy_snapshots,
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
        index = self._c.recording_index

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
                CosmosLeaseStore(self._c.cosmos(layout.CONTROL)),
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
        return DataSubjectService(
            self.recordings,
            CosmosCallRecordPeople(self._c.cosmos(layout.CALLS), self._c.raw_callrecords),
            self.deleter,
            self.hold_store,
            self.classes,
            self.ledger,
            self.clock,
            chats=self._c.chat.evidence,
        )

    @cached_property
    def reports(self) -> RetentionReports:
        return RetentionReports(self.recordings, self.hold_store, self.classes, self.clock)
