"""Keep one `/chats/getAllMessages` subscription per tenant alive, with resource data included.

`ensure(tenant)` (timer, start-up, admin) creates it when missing, adopts one of this app's after lost state
(Graph allows one per app), renews it before expiry, recreates it when Graph no longer knows it or it differs
from the configuration (URL, certificate, payment model). Lifecycle notifications act at once:
`reauthorizationRequired` renews (which also reauthorizes), `subscriptionRemoved` recreates; both, and
`missed`, ask for a catch-up through the export API from the last time the flow was known to be whole — Graph
says notifications may be lost around each of them. State: one document per tenant in Cosmos `subscriptions`.

Chat messages subscriptions last at most 4,320 minutes, and more than an hour only with a
lifecycleNotificationUrl (teams-changenotifications-chatmessage.md); both are configured here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from azure.cosmos import ContainerProxy

from verbatim.contracts.callrecords import GraphLifecycleEvent
from verbatim.contracts.chat import BackfillReason, ChatBackfillRequest
from verbatim.graph import GraphClient, GraphNotFound
from verbatim.platform.queues import MessageQueue
from verbatim.platform.times import format_datetime, parse_datetime, utcnow

log = logging.getLogger(__name__)

RESOURCE = "/chats/getAllMessages"
CHANGE_TYPE = "created,updated,deleted"
MAX_LIFETIME = timedelta(minutes=4320)
ONE_HOUR = timedelta(hours=1)
Action = Literal["created", "adopted", "renewed", "reauthorized", "recreated", "unchanged"]


@dataclass(frozen=True)
class ChatSubscriptionConfig:
    notification_url: str
    lifecycle_url: str | None
    client_state: str
    certificate: str  # base64 DER X.509, public key only
    certificate_id: str
    payment_model: str | None = None  # "A" / "B": accepted by Graph, no longer metered since August 2025
    lifetime: timedelta = timedelta(minutes=4200)
    renew_before: timedelta = timedelta(hours=12)

    @property
    def resource(self) -> str:
        return f"{RESOURCE}?model={self.payment_model}" if self.payment_model else RESOURCE

    def expiry_from(self, now: datetime) -> datetime:
        lifetime = min(self.lifetime, MAX_LIFETIME - timedelta(minutes=1))
        if self.lifecycle_url is None:
            lifetime = min(lifetime, ONE_HOUR - timedelta(minutes=1))
        return now + lifetime


@dataclass(frozen=True)
class EnsureResult:
    tenant_id: str
    action: Action
    subscription_id: str
    expiration: str


class ChatSubscriptionStates(Protocol):
    def load(self, tenant_id: str) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...

    def tenant_of(self, subscription_id: str) -> str | None: ...


def state_id(tenant_id: str) -> str:
    return f"chatmessages-{tenant_id}"


class CosmosChatSubscriptionStates:
    def __init__(self, container: ContainerProxy) -> None:
        self._c = container

    def load(self, tenant_id: str) -> dict[str, Any] | None:
        key = state_id(tenant_id)
        items = list(
            self._c.query_items(
                "SELECT * FROM c WHERE c.id = @id", parameters=[{"name": "@id", "value": key}], partition_key=key
            )
        )
        return dict(items[0]) if items else None

    def save(self, state: dict[str, Any]) -> None:
        self._c.upsert_item({k: v for k, v in state.items() if not k.startswith("_")})

    def tenant_of(self, subscription_id: str) -> str | None:
        items = list(
            self._c.query_items(
                "SELECT c.tenantId FROM c WHERE c.docType = 'chatSubscription' AND c.subscriptionId = @s",
                parameters=[{"name": "@s", "value": subscription_id}],
                enable_cross_partition_query=True,
            )
        )
        value = items[0].get("tenantId") if items else None
        return value if isinstance(value, str) else None


class InMemoryChatSubscriptionStates:
    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}

    def load(self, tenant_id: str) -> dict[str, Any] | None:
        found = self.states.get(state_id(tenant_id))
        return dict(found) if found else None

    def save(self, state: dict[str, Any]) -> None:
        self.states[state["id"]] = dict(state)

    def tenant_of(self, subscription_id: str) -> str | None:
        for state in self.states.values():
            if state.get("subscriptionId") == subscription_id:
                return str(state["tenantId"])
        return None


class ChatSubscriptionKeeper:
    def __init__(
        self,
        *,
        graph_for: Callable[[str], GraphClient],
        states: ChatSubscriptionStates,
        config: ChatSubscriptionConfig,
        backfill: MessageQueue,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._graph_for = graph_for
        self._states = states
        self._config = config
        self._backfill = backfill
        self._clock = clock

    # -- ensure -----------------------------------------------------------------------------------------

    def ensure(self, tenant_id: str, *, reauthorize: bool = False) -> EnsureResult:
        graph = self._graph_for(tenant_id)
        state = self._states.load(tenant_id)
        now = self._clock()
        subscription: dict[str, Any] | None = None
        if state and state.get("subscriptionId"):
            try:
                subscription = graph.get_json(f"/subscriptions/{state['subscriptionId']}")
            except GraphNotFound:
                log.warning("chat subscription vanished; recreating", extra={"tenant_id": tenant_id})
            if subscription is not None and not self._matches(subscription):
                log.warning("chat subscription differs from the configuration; recreating")
                self._delete(graph, str(subscription["id"]))
                subscription = None
            if subscription is None:
                result = self._record(tenant_id, state, self._create(graph, tenant_id, now), "recreated", now)
                self.request_catch_up(tenant_id, "subscriptionRemoved", since=state.get("healthyUntil"))
                return result
        else:
            subscription = self._adopt(graph)
            if subscription is None:
                return self._record(tenant_id, state, self._create(graph, tenant_id, now), "created", now)
            if self._needs_renewal(subscription, now):
                subscription = self._renew(graph, subscription, now)
            return self._record(tenant_id, state, subscription, "adopted", now)
        if reauthorize:
            return self._record(tenant_id, state, self._renew(graph, subscription, now), "reauthorized", now)
        if self._needs_renewal(subscription, now):
            return self._record(tenant_id, state, self._renew(graph, subscription, now), "renewed", now)
        return self._record(tenant_id, state, subscription, "unchanged", now)

    def handle_lifecycle(self, event: GraphLifecycleEvent) -> EnsureResult | None:
        tenant = (event.tenant_id or "").lower() or self._states.tenant_of(event.subscription_id)
        if not tenant:
            log.warning("chat lifecycle event for an unknown subscription", extra={"event": event.lifecycle_event})
            return None
        state = self._states.load(tenant) or {}
        since = state.get("healthyUntil")
        result: EnsureResult | None = None
        if event.lifecycle_event == "reauthorizationRequired":
            result = self.ensure(tenant, reauthorize=True)
        elif event.lifecycle_event == "subscriptionRemoved":
            if state.get("subscriptionId") == event.subscription_id:
                state["subscriptionId"] = None
                self._states.save(state)
            result = self.ensure(tenant)
        reason: BackfillReason = (
            event.lifecycle_event  # type: ignore[assignment]
            if event.lifecycle_event in ("missed", "reauthorizationRequired", "subscriptionRemoved")
            else "timer"
        )
        self.request_catch_up(tenant, reason, since=since)
        return result

    def request_catch_up(self, tenant_id: str, reason: BackfillReason, *, since: str | None) -> None:
        """Ask for the export API's view since the flow was last known whole (the back-fill adds an overlap)."""
        request = ChatBackfillRequest(tenant_id=tenant_id, reason=reason, since=since)
        self._backfill.send(request.model_dump_json(by_alias=True))

    # -- Graph ------------------------------------------------------------------------------------------

    def _matches(self, subscription: dict[str, Any]) -> bool:
        return (
            subscription.get("notificationUrl") == self._config.notification_url
            and (subscription.get("resource") or "").lstrip("/") == self._config.resource.lstrip("/")
            and subscription.get("encryptionCertificateId") in (None, self._config.certificate_id)
            and (
                self._config.lifecycle_url is None
                or subscription.get("lifecycleNotificationUrl") in (None, self._config.lifecycle_url)
            )
        )

    def _adopt(self, graph: GraphClient) -> dict[str, Any] | None:
        ours = [
            s
            for s in graph.iter_items("/subscriptions")
            if (s.get("resource") or "").lstrip("/").split("?")[0] == RESOURCE.lstrip("/")
        ]
        usable = [s for s in ours if self._matches(s) and s.get("clientState") in (None, self._config.client_state)]
        for other in [s for s in ours if s not in usable[:1]]:
            self._delete(graph, str(other["id"]))  # Graph allows one per app: make room for ours
        return usable[0] if usable else None

    def _create(self, graph: GraphClient, tenant_id: str, now: datetime) -> dict[str, Any]:
        body: dict[str, Any] = {
            "changeType": CHANGE_TYPE,
            "notificationUrl": self._config.notification_url,
            "resource": self._config.resource,
            "includeResourceData": True,
            "encryptionCertificate": self._config.certificate,
            "encryptionCertificateId": self._config.certificate_id,
            "expirationDateTime": format_datetime(self._config.expiry_from(now)),
            "clientState": self._config.client_state,
            "latestSupportedTlsVersion": "v1_2",
        }
        if self._config.lifecycle_url:
            body["lifecycleNotificationUrl"] = self._config.lifecycle_url
        created = graph.post_json("/subscriptions", body)
        log.info("chat subscription created", extra={"subscription_id": created.get("id"), "tenant_id": tenant_id})
        return created

    def _renew(self, graph: GraphClient, subscription: dict[str, Any], now: datetime) -> dict[str, Any]:
        expiry = format_datetime(self._config.expiry_from(now))
        renewed = graph.patch_json(f"/subscriptions/{subscription['id']}", {"expirationDateTime": expiry})
        return renewed or {**subscription, "expirationDateTime": expiry}

    def _delete(self, graph: GraphClient, subscription_id: str) -> None:
        with contextlib.suppress(GraphNotFound):
            graph.delete(f"/subscriptions/{subscription_id}")

    def _needs_renewal(self, subscription: dict[str, Any], now: datetime) -> bool:
        expiry = parse_datetime(subscription.get("expirationDateTime"))
        lifetime = self._config.expiry_from(now) - now
        return expiry is None or expiry - now < min(self._config.renew_before, lifetime / 2)

    def _record(
        self, tenant_id: str, state: dict[str, Any] | None, subscription: dict[str, Any], action: Action, now: datetime
    ) -> EnsureResult:
        expiration = format_datetime(parse_datetime(subscription.get("expirationDateTime")) or now)
        document = dict(state or {"id": state_id(tenant_id), "createdAt": format_datetime(now)})
        document.update(
            {
                "docType": "chatSubscription",
                "tenantId": tenant_id,
                "resource": self._config.resource,
                "subscriptionId": subscription.get("id"),
                "expirationDateTime": expiration,
                "notificationUrl": self._config.notification_url,
                "lifecycleNotificationUrl": self._config.lifecycle_url,
                "encryptionCertificateId": self._config.certificate_id,
                "lastAction": action,
                "lastActionAt": format_datetime(now),
                # The flow is whole up to now: a later gap is caught up from here.
                "healthyUntil": format_datetime(now),
            }
        )
        self._states.save(document)
        return EnsureResult(tenant_id, action, str(subscription.get("id")), expiration)
