"""Chat capture's services, built from the container's adapters: the webhook receiver, the subscription
keeper, ingestion, back-fill, sealing, the daily reconciliation and the read side — and the adapters that give
chat capture what it asks of the other capabilities (policy users, recorded users, retention classes, legal
holds) without chat importing them."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verbatim.api.chats import RecordingChats
from verbatim.chat.backfill import ChatBackfiller, CosmosWatermarks
from verbatim.chat.certificates import EncryptionKeyPair, load_pem
from verbatim.chat.completeness import ChatReconciler
from verbatim.chat.directory import GraphChatDirectory
from verbatim.chat.exports import ChatEvidenceReader
from verbatim.chat.ingest import ChatIngestor
from verbatim.chat.reads import ChatReader
from verbatim.chat.retention import ChatEvidence, HoldScope
from verbatim.chat.sealing import ChatSealer
from verbatim.chat.store import CosmosChatRepository
from verbatim.chat.subscriptions import CHAT_MESSAGES, catch_up_on_gaps
from verbatim.chat.webhook import ChatNotificationReceiver, JwksKeys
from verbatim.contracts.chat import BackfillReason, ChatBackfillRequest
from verbatim.contracts.evidence import RecordingFacts, RetentionTerm
from verbatim.contracts.recorder import ObservedUser
from verbatim.graph.subscriptions import (
    CosmosSubscriptionStates,
    EncryptionCertificate,
    SubscriptionConfig,
    SubscriptionKeeper,
)
from verbatim.platform import layout
from verbatim.platform.blobs import AzureBlobStore
from verbatim.platform.errors import DependencyUnavailable
from verbatim.platform.queues import AsyncStorageQueue, StorageQueue
from verbatim.policy.snapshots import PolicySnapshotStore
from verbatim.reconciliation.evaluate import must_record
from verbatim.retention.holds import HoldStore, SealHoldMatcher
from verbatim.retention.selection import ClassRetention

if TYPE_CHECKING:
    from verbatim.wiring.container import Container


class SnapshotPolicyUsers:
    """`PolicyUsers` from the policy snapshot store, with reconciliation's reading of a first observation."""

    def __init__(self, snapshots: PolicySnapshotStore) -> None:
        self._snapshots = snapshots

    def must_record(self, user_id: str, at: datetime) -> bool | None:
        return must_record(self._snapshots.effective_at(user_id, at))


class SnapshotRecordedUsers:
    """`RecordedUsers`: users whose newest snapshot records (the coverage audit observes the tenant's users)."""

    def __init__(self, container: Any) -> None:
        self._c = container

    def recorded(self, tenant_id: str, at: datetime) -> list[str]:
        newest: dict[str, tuple[str, bool]] = {}
        for item in self._c.query_items(
            "SELECT c.userId, c.validFrom, c.effective FROM c", enable_cross_partition_query=True
        ):
            user, since = str(item["userId"]).lower(), str(item["validFrom"])
            records = bool((item.get("effective") or {}).get("records"))
            if user not in newest or since > newest[user][0]:
                newest[user] = (since, records)
        return sorted(user for user, (_, records) in newest.items() if records)


class ClassChatRetention:
    """A chat-day is kept as long as the longest class any of its policy users' recordings would get."""

    def __init__(self, retention: ClassRetention) -> None:
        self._retention = retention

    def term_for_chat(self, policy_users: Sequence[str], day_start: datetime, sealed_at: datetime) -> RetentionTerm:
        terms = [self._retention.term_for(_facts(user, day_start, day_start), sealed_at) for user in policy_users]
        if not terms:
            terms = [self._retention.term_for(_facts(None, day_start, day_start), sealed_at)]
        return max(terms, key=lambda term: term.until)


class ChatHoldMatcher:
    """Legal holds of the recordings' kind: a hold whose custodian is a member covers the chat-day."""

    def __init__(self, holds: SealHoldMatcher) -> None:
        self._holds = holds

    def holds_for_chat(self, members: Sequence[str], start: datetime, end: datetime) -> list[str]:
        found: set[str] = set()
        for member in members:
            found.update(self._holds.holds_for(_facts(member, start, end)))
        return sorted(found)


class StoredHolds:
    """`ActiveHolds` from the legal holds store (custodians as lower-case identifiers, the hold's time range)."""

    def __init__(self, store: HoldStore) -> None:
        self._store = store

    def active(self) -> list[HoldScope]:
        # A hold that only lists recordings by id holds no chat (with no custodians it would cover every chat).
        return [
            HoldScope(h.id, frozenset(c.strip().lower() for c in h.custodians), h.from_, h.until)
            for h in self._store.find("active")
            if h.selects_people
        ]


def _facts(user_id: str | None, start: datetime, end: datetime) -> RecordingFacts:
    return RecordingFacts(
        recording_id="(chat)",  # no recording id looks like this (RECORDING_ID_PATTERN): no hold by id matches it
        call_id="chat",
        observed_user=ObservedUser(id=user_id) if user_id else None,
        recorder_instance="chat",
        started_at=start,
        ended_at=end,
    )


class ChatServices:
    def __init__(self, container: Container) -> None:
        self._c = container
        self.settings = container.settings

    # -- adapters ---------------------------------------------------------------------------------------

    @cached_property
    def repository(self) -> CosmosChatRepository:
        return CosmosChatRepository(self._c.cosmos(layout.CHATS))

    @cached_property
    def blobs(self) -> AzureBlobStore:
        return AzureBlobStore(self._c.recordings)

    @cached_property
    def messages_queue(self) -> StorageQueue:
        return self._c.queue(layout.CHAT_MESSAGES_QUEUE)

    def async_messages_queue(self) -> AsyncStorageQueue:
        return self._c.async_queue(layout.CHAT_MESSAGES_QUEUE)

    @cached_property
    def lifecycle_queue(self) -> StorageQueue:
        return self._c.queue(layout.CHAT_LIFECYCLE_QUEUE, fail_fast=True)

    @cached_property
    def backfill_queue(self) -> StorageQueue:
        return self._c.queue(layout.CHAT_BACKFILL_QUEUE)

    def request_catch_up(self, tenant_id: str, reason: BackfillReason) -> None:
        """A back-fill from the tenant's watermark (less the overlap) through the export API."""
        self.backfill_queue.send(ChatBackfillRequest(tenant_id=tenant_id, reason=reason).model_dump_json(by_alias=True))

    @cached_property
    def key_pairs(self) -> list[EncryptionKeyPair]:
        """The current encryption certificate, then the previous one (still decrypted during a rotation)."""
        pems: list[bytes] = []
        if self.settings.chat_encryption_pem is not None:
            pems.append(self.settings.chat_encryption_pem.get_secret_value().encode())
        elif self.settings.chat_encryption_pem_file:
            pems.append(Path(self.settings.chat_encryption_pem_file).read_bytes())
        if self.settings.chat_encryption_pem_previous is not None:
            pems.append(self.settings.chat_encryption_pem_previous.get_secret_value().encode())
        if not pems:
            raise ValueError("CHAT_ENCRYPTION_PEM (or CHAT_ENCRYPTION_PEM_FILE) is not set")
        return [load_pem(pem) for pem in pems]

    def _client_states(self) -> list[str]:
        states = []
        if self.settings.graph_client_state is not None:
            states.append(self.settings.graph_client_state.get_secret_value())
        if self.settings.graph_client_state_previous is not None:
            states.append(self.settings.graph_client_state_previous.get_secret_value())
        if not states:
            raise ValueError("GRAPH_CLIENT_STATE is not set")
        return states

    @cached_property
    def signing_keys(self) -> JwksKeys:
        context = None
        if self.settings.graph_ca_cert and self.settings.chat_validation_jwks_url.startswith("https://127.0.0.1"):
            context = ssl.create_default_context(cafile=self.settings.graph_ca_cert)
        return JwksKeys(self.settings.chat_validation_jwks_url, context)

    # -- services ---------------------------------------------------------------------------------------

    @cached_property
    def receiver(self) -> ChatNotificationReceiver:
        if not self.settings.graph_client_id:
            raise ValueError("GRAPH_CLIENT_ID is not set")
        return ChatNotificationReceiver(
            certificates={pair.certificate_id: pair.decryption for pair in self.key_pairs},
            signing_keys=self.signing_keys,
            app_ids=[self.settings.graph_client_id],
            tenant_ids=self.settings.chat_tenant_ids,
            client_states=self._client_states(),
            audit=self._c.audit,
            catch_up=lambda tenant: self.request_catch_up(tenant, "undecryptable"),
            max_bytes=4 * self.settings.graph_webhook_max_bytes,
        )

    @cached_property
    def keeper(self) -> SubscriptionKeeper:
        if not self.settings.chat_notification_url:
            raise DependencyUnavailable("chat subscriptions are not configured: CHAT_NOTIFICATION_URL is not set")
        current = self.key_pairs[0]
        return SubscriptionKeeper(
            kind=CHAT_MESSAGES,
            graph_for=self._c.graph_for,
            states=CosmosSubscriptionStates(self._c.cosmos(layout.SUBSCRIPTIONS), CHAT_MESSAGES),
            config=SubscriptionConfig(
                notification_url=self.settings.chat_notification_url,
                lifecycle_url=self.settings.chat_lifecycle_url,
                client_state=self._client_states()[0],
                encryption=EncryptionCertificate(current.certificate_b64, current.certificate_id),
                resource_query=f"model={self.settings.chat_payment_model}"
                if self.settings.chat_payment_model
                else None,
                lifetime=timedelta(minutes=self.settings.chat_subscription_lifetime_minutes),
                renew_before=timedelta(minutes=self.settings.chat_subscription_renew_before_minutes),
            ),
            on_gap=catch_up_on_gaps(self.backfill_queue),
            clock=self._c.clock,
        )

    @cached_property
    def ingestor(self) -> ChatIngestor:
        return ChatIngestor(
            repository=self.repository,
            directory=GraphChatDirectory(self._c.graph_for),
            policy=SnapshotPolicyUsers(self._c.policy_snapshots),
            blobs=self.blobs,
            tenant_ids=self.settings.chat_tenant_ids,
            clock=self._c.clock,
            membership_ttl=timedelta(minutes=self.settings.chat_membership_ttl_minutes),
        )

    @cached_property
    def recorded_users(self) -> SnapshotRecordedUsers:
        return SnapshotRecordedUsers(self._c.cosmos(layout.POLICY_SNAPSHOTS))

    @cached_property
    def backfiller(self) -> ChatBackfiller:
        return ChatBackfiller(
            graph_for=self._c.graph_for,
            ingestor=self.ingestor,
            users=self.recorded_users,
            watermarks=CosmosWatermarks(self._c.cosmos(layout.CONTROL)),
            overlap=timedelta(minutes=self.settings.chat_backfill_overlap_minutes),
            initial_lookback=timedelta(days=self.settings.chat_backfill_initial_days),
            payment_model=self.settings.chat_payment_model,
            clock=self._c.clock,
        )

    @cached_property
    def sealer(self) -> ChatSealer:
        retention = self._c.retention
        return ChatSealer(
            repository=self.repository,
            blobs=self.blobs,
            worm=self._c.worm,
            ledger=self._c.ledger,
            retention=ClassChatRetention(retention.retention_policy),
            holds=ChatHoldMatcher(retention.seal_holds),
            grace=timedelta(minutes=self.settings.chat_seal_grace_minutes),
            clock=self._c.clock,
        )

    @cached_property
    def reconciler(self) -> ChatReconciler:
        return ChatReconciler(
            repository=self.repository,
            backfiller=self.backfiller,
            ingestor=self.ingestor,
            users=self.recorded_users,
            tenant_ids=self.settings.chat_tenant_ids,
            clock=self._c.clock,
        )

    @cached_property
    def reader(self) -> ChatReader:
        return ChatReader(self.repository, self._c.access)

    @cached_property
    def recording_chats(self) -> RecordingChats:
        return RecordingChats(self._c.recording_finder, self._c.callrecords.store, self.reader)

    @cached_property
    def evidence(self) -> ChatEvidence:
        return ChatEvidence(
            repository=self.repository,
            blobs=self.blobs,
            worm=self._c.worm,
            ledger=self._c.ledger,
            holds=StoredHolds(self._c.retention.hold_store),
            clock=self._c.clock,
        )

    @cached_property
    def evidence_reader(self) -> ChatEvidenceReader:
        """What an export calls for chat evidence (issue 18)."""
        return ChatEvidenceReader(self.repository, self.blobs, self._c.ledger)
