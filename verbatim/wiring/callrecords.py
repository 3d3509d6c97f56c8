"""Call-record ingestion's services, built from the container's adapters: the webhook receiver, the ingestor,
the subscription keeper, back-fill, PSTN reports and the read side."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from verbatim.callrecords.backfill import Backfiller, CosmosWatermarks
from verbatim.callrecords.ingest import CallRecordIngestor, IngestPolicy
from verbatim.callrecords.pstn import CosmosRowStore, EmergencyNumbers, PstnReports
from verbatim.callrecords.reads import CallRecordReader
from verbatim.callrecords.store import BlobRawArchive, CosmosCallRecordStore
from verbatim.callrecords.subscriptions import CALL_RECORDS
from verbatim.callrecords.webhook import ClientStates, NotificationReceiver
from verbatim.graph import GraphClient
from verbatim.graph.subscriptions import CosmosSubscriptionStates, SubscriptionConfig, SubscriptionKeeper
from verbatim.platform import layout
from verbatim.platform.audit import CosmosAuditLog
from verbatim.platform.errors import DependencyUnavailable
from verbatim.platform.queues import AsyncStorageQueue, StorageQueue

if TYPE_CHECKING:
    from verbatim.wiring.container import Container


class CallRecordServices:
    def __init__(self, container: Container) -> None:
        self._c = container
        self.settings = container.settings

    # -- adapters ---------------------------------------------------------------------------------------

    def graph_for(self, tenant_id: str) -> GraphClient:
        return self._c.graph_for(tenant_id)

    @property
    def audit(self) -> CosmosAuditLog:
        return self._c.audit

    @cached_property
    def store(self) -> CosmosCallRecordStore:
        archive = BlobRawArchive(self._c.raw_callrecords)
        return CosmosCallRecordStore(self._c.cosmos(layout.CALLS), archive)

    @cached_property
    def subscription_states(self) -> CosmosSubscriptionStates:
        return CosmosSubscriptionStates(self._c.cosmos(layout.SUBSCRIPTIONS), CALL_RECORDS)

    @cached_property
    def notifications_queue(self) -> StorageQueue:
        return self._c.queue(self.settings.callrecord_notifications_queue)

    @cached_property
    def webhook_queue(self) -> StorageQueue:
        """The notifications queue as the webhook uses it: one attempt, then 503 (Graph retries for 4 hours)."""
        return self._c.queue(self.settings.callrecord_notifications_queue, fail_fast=True)

    def async_webhook_queue(self) -> AsyncStorageQueue:
        """The notifications queue for the async webhook, one client per event loop."""
        return self._c.async_queue(self.settings.callrecord_notifications_queue)

    @property
    def reconciliation_queue(self) -> StorageQueue:
        return self._c.reconciliation_requests

    @cached_property
    def lifecycle_queue(self) -> StorageQueue:
        return self._c.queue(self.settings.graph_lifecycle_queue)

    def _client_state(self) -> str:
        if self.settings.graph_client_state is None:
            raise ValueError("GRAPH_CLIENT_STATE is not set")
        return self.settings.graph_client_state.get_secret_value()

    # -- services ---------------------------------------------------------------------------------------

    @cached_property
    def receiver(self) -> NotificationReceiver:
        secrets = [self._client_state()]
        if self.settings.graph_client_state_previous is not None:
            secrets.append(self.settings.graph_client_state_previous.get_secret_value())
        return NotificationReceiver(
            client_states=ClientStates(secrets, lookup=self.subscription_states.client_state_digest),
            queue=self.webhook_queue,
            audit=self.audit,
            tenants=self.settings.callrecord_tenant_ids,
            max_bytes=self.settings.graph_webhook_max_bytes,
        )

    @cached_property
    def ingestor(self) -> CallRecordIngestor:
        return CallRecordIngestor(
            graph_for=self.graph_for,
            store=self.store,
            notifications=self.notifications_queue,
            reconciliation=self.reconciliation_queue,
            policy=IngestPolicy(
                not_yet_grace=timedelta(minutes=self.settings.callrecord_not_yet_grace_minutes),
                not_yet_retry_seconds=self.settings.callrecord_not_yet_retry_seconds,
            ),
        )

    @cached_property
    def keeper(self) -> SubscriptionKeeper:
        if not self.settings.graph_notification_url:
            raise DependencyUnavailable(
                "call-record subscriptions are not configured: GRAPH_NOTIFICATION_URL is not set"
            )
        return SubscriptionKeeper(
            kind=CALL_RECORDS,
            graph_for=self.graph_for,
            states=self.subscription_states,
            config=SubscriptionConfig(
                notification_url=self.settings.graph_notification_url,
                lifecycle_url=self.settings.graph_lifecycle_url,
                client_state=self._client_state(),
                lifetime=timedelta(minutes=self.settings.callrecord_subscription_lifetime_minutes),
                renew_before=timedelta(minutes=self.settings.callrecord_subscription_renew_before_minutes),
            ),
        )

    @cached_property
    def backfiller(self) -> Backfiller:
        return Backfiller(
            graph_for=self.graph_for,
            store=self.store,
            notifications=self.notifications_queue,
            watermarks=CosmosWatermarks(self._c.cosmos(layout.CONTROL)),
            overlap=timedelta(minutes=self.settings.callrecord_backfill_overlap_minutes),
            initial_lookback=timedelta(days=self.settings.callrecord_backfill_initial_days),
        )

    @cached_property
    def pstn(self) -> PstnReports:
        return PstnReports(
            graph_for=self.graph_for,
            rows=CosmosRowStore(self._c.cosmos(layout.PSTN_CALLS)),
            audit=self.audit,
            emergency=EmergencyNumbers(self.settings.pstn_emergency_numbers),
        )

    @cached_property
    def reader(self) -> CallRecordReader:
        """The read API's reader: every read recorded in the ledger and the audit log (`AccessLog`)."""
        return CallRecordReader(store=self.store, access=self._c.access)
