"""The call-record services wired from settings, built once per process (per settings object) and
shared by every trigger. Nothing connects until a service is first used."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from functools import cached_property

from azure.cosmos import DatabaseProxy

from verbatim import clients
from verbatim.callrecords.audit import CosmosAuditLog
from verbatim.callrecords.backfill import Backfiller, CosmosWatermarks
from verbatim.callrecords.ingest import CallRecordIngestor, IngestPolicy
from verbatim.callrecords.pstn import CosmosRowStore, EmergencyNumbers, PstnReports
from verbatim.callrecords.queues import AsyncStorageQueue, StorageQueue, async_queue_client
from verbatim.callrecords.reads import AuditOnlyReads, CallRecordReader
from verbatim.callrecords.store import BlobRawArchive, CosmosCallRecordStore
from verbatim.callrecords.subscriptions import CosmosSubscriptionStates, SubscriptionConfig, SubscriptionKeeper
from verbatim.callrecords.webhook import ClientStates, NotificationReceiver
from verbatim.graph import GraphClient, GraphCredentials, RetryPolicy, graph_client, graph_credentials
from verbatim.settings import Settings


class CallRecordsRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._graphs: dict[str, GraphClient] = {}
        self._async_queues: dict[int, tuple[asyncio.AbstractEventLoop, AsyncStorageQueue]] = {}
        self._lock = threading.Lock()

    # -- adapters ---------------------------------------------------------------------------------------

    @cached_property
    def credentials(self) -> GraphCredentials:
        return graph_credentials(self.settings)

    def graph_for(self, tenant_id: str) -> GraphClient:
        with self._lock:
            client = self._graphs.get(tenant_id)
            if client is None:
                # Waits longer than 10 s go back to the queue (re-enqueued with that delay) instead of
                # holding one of the worker's few threads asleep.
                client = graph_client(
                    self.settings, tenant_id, credentials=self.credentials, retry=RetryPolicy(max_retry_after=10.0)
                )
                self._graphs[tenant_id] = client
            return client

    @cached_property
    def database(self) -> DatabaseProxy:
        return clients.cosmos_database(self.settings)

    @cached_property
    def store(self) -> CosmosCallRecordStore:
        archive = BlobRawArchive.from_service(clients.blob_service(self.settings.runtime_storage_connection))
        return CosmosCallRecordStore(self.database.get_container_client("calls"), archive)

    @cached_property
    def audit(self) -> CosmosAuditLog:
        return CosmosAuditLog(self.database.get_container_client("audit"))

    @cached_property
    def subscription_states(self) -> CosmosSubscriptionStates:
        return CosmosSubscriptionStates(self.database.get_container_client("subscriptions"))

    def _queue(self, name: str) -> StorageQueue:
        return StorageQueue(clients.queue_client(self.settings.runtime_storage_connection, name))

    @cached_property
    def notifications_queue(self) -> StorageQueue:
        return self._queue(self.settings.callrecord_notifications_queue)

    @cached_property
    def webhook_queue(self) -> StorageQueue:
        """The notifications queue as the webhook uses it: one attempt, then 503 (Graph retries for 4 hours)."""
        client = clients.queue_client(
            self.settings.runtime_storage_connection, self.settings.callrecord_notifications_queue
        )
        return StorageQueue(client, retries=0, connect_timeout=1.0, read_timeout=2.0)

    def async_webhook_queue(self) -> AsyncStorageQueue:
        """The notifications queue for the async webhook, one client per event loop (aio clients are
        bound to the loop they first ran on)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            for key, (owner, _) in list(self._async_queues.items()):
                if owner.is_closed():
                    del self._async_queues[key]
            entry = self._async_queues.get(id(loop))
            if entry is None or entry[0] is not loop:
                client = async_queue_client(
                    self.settings.runtime_storage_connection, self.settings.callrecord_notifications_queue
                )
                entry = (loop, AsyncStorageQueue(client, retries=0, connect_timeout=1.0, read_timeout=2.0))
                self._async_queues[id(loop)] = entry
            return entry[1]

    @cached_property
    def reconciliation_queue(self) -> StorageQueue:
        return self._queue(self.settings.reconciliation_requests_queue)

    @cached_property
    def lifecycle_queue(self) -> StorageQueue:
        return self._queue(self.settings.graph_lifecycle_queue)

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
            raise ValueError("GRAPH_NOTIFICATION_URL is not set")
        return SubscriptionKeeper(
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
            watermarks=CosmosWatermarks(self.database.get_container_client("control")),
            overlap=timedelta(minutes=self.settings.callrecord_backfill_overlap_minutes),
            initial_lookback=timedelta(days=self.settings.callrecord_backfill_initial_days),
        )

    @cached_property
    def pstn(self) -> PstnReports:
        return PstnReports(
            graph_for=self.graph_for,
            rows=CosmosRowStore(self.database.get_container_client("pstn_calls")),
            audit=self.audit,
            emergency=EmergencyNumbers(self.settings.pstn_emergency_numbers),
        )

    @cached_property
    def reader(self) -> CallRecordReader:
        """Reads recorded in the audit container only; the read API uses the ledger-backed `AccessLog`."""
        return CallRecordReader(store=self.store, access=AuditOnlyReads(self.audit))


_current: tuple[Settings, CallRecordsRuntime] | None = None
_current_lock = threading.Lock()


def callrecords_runtime(settings: Settings) -> CallRecordsRuntime:
    """The process's runtime for these settings (rebuilt when the settings object changes, e.g. in tests)."""
    global _current
    with _current_lock:
        if _current is None or _current[0] is not settings:
            _current = (settings, CallRecordsRuntime(settings))
        return _current[1]
