"""Reconciliation's services, built from the container's adapters: the reconciler (verdicts per call and policy
user) and the daily completeness reporter."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from azure.storage.blob import ContainerClient

from verbatim.ledger.log.service import TransparencyLog
from verbatim.platform.queues import StorageQueue
from verbatim.reconciliation.batching import RequestBatcher
from verbatim.reconciliation.evaluate import Tolerance
from verbatim.reconciliation.report import CompletenessReporter
from verbatim.reconciliation.service import Reconciler
from verbatim.reconciliation.store import CosmosRecordingFinder, CosmosVerdictStore
from verbatim.search.index import CosmosRecordingIndex

if TYPE_CHECKING:
    from verbatim.wiring.container import Container


class ReconciliationServices:
    def __init__(self, container: Container) -> None:
        self._c = container
        self.settings = container.settings

    @property
    def verdicts(self) -> CosmosVerdictStore:
        return self._c.verdicts

    @property
    def recordings(self) -> CosmosRecordingFinder:
        return self._c.recording_finder

    @property
    def index(self) -> CosmosRecordingIndex:
        return self._c.recording_index

    @property
    def ledger(self) -> TransparencyLog:
        return self._c.ledger

    @property
    def reports(self) -> ContainerClient:
        return self._c.reports

    @property
    def requests_queue(self) -> StorageQueue:
        return self._c.reconciliation_requests

    @cached_property
    def reconciler(self) -> Reconciler:
        return Reconciler(
            calls=self._c.callrecords.store,
            snapshots=self._c.policy_snapshots,
            recordings=self.recordings,
            verdicts=self.verdicts,
            alerts=self._c.audit,
            index=self.index,
            tolerance=Tolerance(
                join_seconds=self.settings.reconciliation_join_tolerance_seconds,
                end_seconds=self.settings.reconciliation_end_tolerance_seconds,
            ),
            requests=self.requests_queue,
            report_grace=timedelta(seconds=self.settings.reconciliation_recorder_report_grace_seconds),
        )

    @cached_property
    def batcher(self) -> RequestBatcher:
        """What the queue trigger hands each request to: concurrent invocations share one batch."""
        return RequestBatcher(self.reconciler.handle_many)

    @cached_property
    def reporter(self) -> CompletenessReporter:
        return CompletenessReporter(
            verdicts=self.verdicts,
            reports=self.reports,
            ledger=self.ledger,
            signer=self._c.signer,
            reconciler=self.reconciler,
            chat=self._c.chat.reconciler if self._c.settings.chat_capture_enabled else None,
        )
