"""Keep one Graph change-notification subscription per tenant alive, for one resource.

Call records (`/communications/callRecords`) and chat messages (`/chats/getAllMessages`) both need the same
care (subscription-post-subscriptions.md, subscription-update.md, change-notifications-lifecycle-events.md):
`ensure(tenant)` (timer, start-up, admin) creates the subscription when missing, adopts one of this app's after
lost state (deleting duplicates so Graph does not notify twice), renews it well before expiry, recreates it
when Graph no longer knows it or it differs from the configuration (URLs, clientState, encryption certificate,
resource), and reauthorizes it when Graph asks. Lifecycle notifications act at once: `reauthorizationRequired`
renews (which also reauthorizes), `subscriptionRemoved` recreates; a `SubscriptionKind` may ask to be told of
each gap (the chat flow catches up through the export API; call records rely on their back-fill timer).

State: one document per tenant and kind in Cosmos `subscriptions`, written with etags so two instances that
ensure at once do not both create; it keeps the SHA-256 of the clientState so the webhook can check
notifications per subscription.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosAccessConditionFailedError, CosmosResourceExistsError

from verbatim.contracts.callrecords import GraphLifecycleEvent
from verbatim.graph.client import GraphClient
from verbatim.graph.errors import GraphNotFound
from verbatim.platform.logging import correlation
from verbatim.platform.times import format_datetime, parse_datetime, utcnow

log = logging.getLogger(__name__)

EnsureAction = Literal["created", "adopted", "renewed", "reauthorized", "recreated", "unchanged"]
Gap = Literal["missed", "reauthorizationRequired", "subscriptionRemoved"]
ONE_HOUR = timedelta(hours=1)


def client_state_digest(client_state: str) -> bytes:
    return hashlib.sha256(client_state.encode()).digest()


@dataclass(frozen=True)
class SubscriptionKind:
    """What is subscribed to, and Graph's rules for it."""

    name: str  # the state document's id prefix: "<name>-<tenant id>"
    doc_type: str
    resource: str  # the path, without a query
    change_type: str
    max_lifetime: timedelta
    # Teams resources: a lifetime over one hour needs a lifecycleNotificationUrl.
    lifecycle_url_beyond_an_hour: bool = False

    def state_id(self, tenant_id: str) -> str:
        return f"{self.name}-{tenant_id}"


@dataclass(frozen=True)
class EncryptionCertificate:
    """For resource data included in notifications: the public certificate Graph encrypts the keys with."""

    certificate: str  # base64 DER X.509, public key only
    certificate_id: str


@dataclass(frozen=True)
class SubscriptionConfig:
    notification_url: str
    lifecycle_url: str | None
    client_state: str
    lifetime: timedelta = timedelta(minutes=4200)
    renew_before: timedelta = timedelta(hours=24)
    encryption: EncryptionCertificate | None = None  # set: includeResourceData
    resource_query: str | None = None  # e.g. "model=A"

    def resource(self, kind: SubscriptionKind) -> str:
        return f"{kind.resource}?{self.resource_query}" if self.resource_query else kind.resource

    def expiry_from(self, kind: SubscriptionKind, now: datetime) -> datetime:
        lifetime = min(self.lifetime, kind.max_lifetime - timedelta(minutes=1))
        if kind.lifecycle_url_beyond_an_hour and self.lifecycle_url is None:
            lifetime = min(lifetime, ONE_HOUR - timedelta(minutes=1))
        return now + lifetime


@dataclass(frozen=True)
class EnsureResult:
    tenant_id: str
    action: EnsureAction
    subscription_id: str
    expiration: str


class SubscriptionStateStore(Protocol):
    def load(self, tenant_id: str) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...

    def client_state_digest(self, subscription_id: str) -> bytes | None: ...

    def tenant_of(self, subscription_id: str) -> str | None: ...


class StateConflict(Exception):
    """Another instance changed the subscription state first."""


class CosmosSubscriptionStates:
    """One kind's state documents in Cosmos `subscriptions` (partition /id), written with etags."""

    def __init__(self, container: ContainerProxy, kind: SubscriptionKind) -> None:
        self._container = container
        self._kind = kind

    def load(self, tenant_id: str) -> dict[str, Any] | None:
        key = self._kind.state_id(tenant_id)
        items = list(
            self._container.query_items(
                "SELECT * FROM c WHERE c.id = @id", parameters=[{"name": "@id", "value": key}], partition_key=key
            )
        )
        return dict(items[0]) if items else None

    def save(self, state: dict[str, Any]) -> None:
        etag = state.get("_etag")
        body = {k: v for k, v in state.items() if not k.startswith("_")}
        try:
            if etag:
                self._container.replace_item(
                    item=body["id"], body=body, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            else:
                self._container.create_item(body)
        except (CosmosAccessConditionFailedError, CosmosResourceExistsError) as error:
            raise StateConflict(body["id"]) from error

    def _by_subscription(self, subscription_id: str) -> dict[str, Any] | None:
        items = list(
            self._container.query_items(
                "SELECT c.tenantId, c.clientStateSha256 FROM c WHERE c.docType = @t AND c.subscriptionId = @s",
                parameters=[{"name": "@t", "value": self._kind.doc_type}, {"name": "@s", "value": subscription_id}],
                enable_cross_partition_query=True,
            )
        )
        return dict(items[0]) if items else None

    def client_state_digest(self, subscription_id: str) -> bytes | None:
        found = self._by_subscription(subscription_id)
        value = found.get("clientStateSha256") if found else None
        return bytes.fromhex(value) if isinstance(value, str) else None

    def tenant_of(self, subscription_id: str) -> str | None:
        found = self._by_subscription(subscription_id)
        value = found.get("tenantId") if found else None
        return value if isinstance(value, str) else None


class InMemorySubscriptionStates:
    """The same rules in memory, for unit tests of the keeper."""

    def __init__(self, kind: SubscriptionKind) -> None:
        self._kind = kind
        self.states: dict[str, dict[str, Any]] = {}
        self._versions = 0

    def load(self, tenant_id: str) -> dict[str, Any] | None:
        state = self.states.get(self._kind.state_id(tenant_id))
        return dict(state) if state else None

    def save(self, state: dict[str, Any]) -> None:
        current = self.states.get(state["id"])
        if (current and current.get("_etag") != state.get("_etag")) or (current is None and state.get("_etag")):
            raise StateConflict(state["id"])
        self._versions += 1
        self.states[state["id"]] = {**state, "_etag": str(self._versions)}

    def _by_subscription(self, subscription_id: str) -> dict[str, Any] | None:
        return next((s for s in self.states.values() if s.get("subscriptionId") == subscription_id), None)

    def client_state_digest(self, subscription_id: str) -> bytes | None:
        found = self._by_subscription(subscription_id)
        return bytes.fromhex(found["clientStateSha256"]) if found else None

    def tenant_of(self, subscription_id: str) -> str | None:
        found = self._by_subscription(subscription_id)
        return str(found["tenantId"]) if found else None


class SubscriptionKeeper:
    """Creates, adopts, renews, reauthorizes and recreates one kind of subscription for each tenant.

    `on_gap(tenant, gap, since)` is told of every moment Graph says notifications may have been lost (the three
    lifecycle events, and a subscription found gone), with when the flow was last known whole."""

    def __init__(
        self,
        *,
        kind: SubscriptionKind,
        graph_for: Callable[[str], GraphClient],
        states: SubscriptionStateStore,
        config: SubscriptionConfig,
        on_gap: Callable[[str, Gap, str | None], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._kind = kind
        self._graph_for = graph_for
        self._states = states
        self._config = config
        self._on_gap = on_gap
        self._clock = clock

    def ensure(self, tenant_id: str, *, reauthorize: bool = False) -> EnsureResult:
        with correlation(tenant_id=tenant_id):
            try:
                return self._ensure(tenant_id, reauthorize)
            except StateConflict:
                # Another instance ensured it at the same time; its state wins, check that one.
                log.info("subscription state changed concurrently; checking again", extra={"kind": self._kind.name})
                return self._ensure(tenant_id, reauthorize)

    def handle_lifecycle(self, event: GraphLifecycleEvent) -> EnsureResult | None:
        """Act on a lifecycle notification: reauthorize, or recreate what Graph removed; report the gap."""
        tenant = (event.tenant_id or "").lower() or self._states.tenant_of(event.subscription_id)
        if not tenant:
            log.warning("lifecycle event for an unknown subscription", extra={"event": event.lifecycle_event})
            return None
        state = self._states.load(tenant) or {}
        since = state.get("healthyUntil")
        result: EnsureResult | None = None
        if event.lifecycle_event == "reauthorizationRequired":
            result = self.ensure(tenant, reauthorize=True)
        elif event.lifecycle_event == "subscriptionRemoved":
            if state.get("subscriptionId") == event.subscription_id:
                state["subscriptionId"] = None  # forces a new one
                self._states.save(state)
            result = self.ensure(tenant)
        else:
            log.warning("graph reports missed notifications", extra={"tenant_id": tenant, "kind": self._kind.name})
        if event.lifecycle_event in ("missed", "reauthorizationRequired", "subscriptionRemoved"):
            self._gap(tenant, event.lifecycle_event, since)  # type: ignore[arg-type]
        return result

    def _gap(self, tenant_id: str, gap: Gap, since: str | None) -> None:
        if self._on_gap is not None:
            self._on_gap(tenant_id, gap, since)

    def _ensure(self, tenant_id: str, reauthorize: bool) -> EnsureResult:
        graph = self._graph_for(tenant_id)
        state = self._states.load(tenant_id)
        now = self._clock()
        subscription: dict[str, Any] | None = None
        if state and state.get("subscriptionId"):
            try:
                subscription = graph.get_json(f"/subscriptions/{state['subscriptionId']}")
            except GraphNotFound:
                log.warning("subscription vanished; recreating", extra={"subscription_id": state["subscriptionId"]})
            if subscription is not None and not self._matches(subscription, state):
                log.warning("subscription differs from the configuration; recreating")
                self._delete(graph, str(subscription["id"]))
                subscription = None
            if subscription is None:
                result = self._record(tenant_id, state, self._create(graph, now), "recreated", now)
                self._gap(tenant_id, "subscriptionRemoved", state.get("healthyUntil"))
                return result
        else:
            subscription = self._adopt(graph)
            if subscription is None:
                return self._record(tenant_id, state, self._create(graph, now), "created", now)
            if self._needs_renewal(subscription, now):
                subscription = self._renew(graph, subscription, now)
            return self._record(tenant_id, state, subscription, "adopted", now)
        if reauthorize or state.get("reauthorizationRequired"):
            # Renewing also reauthorizes; it costs one request and extends the lifetime too.
            return self._record(tenant_id, state, self._renew(graph, subscription, now), "reauthorized", now)
        if self._needs_renewal(subscription, now):
            return self._record(tenant_id, state, self._renew(graph, subscription, now), "renewed", now)
        return self._record(tenant_id, state, subscription, "unchanged", now)

    # -- Graph ------------------------------------------------------------------------------------------

    def _matches(self, subscription: dict[str, Any], state: dict[str, Any] | None) -> bool:
        config = self._config
        stored_digest = (state or {}).get("clientStateSha256")
        return (
            subscription.get("notificationUrl") == config.notification_url
            and (subscription.get("resource") or "").lstrip("/") == config.resource(self._kind).lstrip("/")
            and stored_digest in (None, client_state_digest(config.client_state).hex())
            and subscription.get("encryptionCertificateId")
            in (None, config.encryption.certificate_id if config.encryption else None)
            and (
                config.lifecycle_url is None
                or subscription.get("lifecycleNotificationUrl") in (None, config.lifecycle_url)
            )
        )

    def _adopt(self, graph: GraphClient) -> dict[str, Any] | None:
        """One of this app's existing subscriptions to the resource that fits the configuration (our state was
        lost); the others are deleted so Graph does not notify twice (and, for chat messages, because Graph
        allows one per app)."""
        ours = [
            s
            for s in graph.iter_items("/subscriptions")
            if (s.get("resource") or "").lstrip("/").split("?")[0] == self._kind.resource.lstrip("/")
        ]
        # Graph returns clientState on reads; one created with another secret would fail verification.
        usable = [
            s for s in ours if self._matches(s, None) and s.get("clientState") in (None, self._config.client_state)
        ]
        usable.sort(key=lambda s: str(s.get("expirationDateTime") or ""), reverse=True)
        for extra in [s for s in ours if s not in usable[:1]]:
            self._delete(graph, str(extra["id"]))
        if not usable:
            return None
        log.info("adopted an existing subscription", extra={"subscription_id": usable[0].get("id")})
        return usable[0]

    def _create(self, graph: GraphClient, now: datetime) -> dict[str, Any]:
        config = self._config
        body: dict[str, Any] = {
            "changeType": self._kind.change_type,
            "notificationUrl": config.notification_url,
            "resource": config.resource(self._kind),
            "expirationDateTime": format_datetime(config.expiry_from(self._kind, now)),
            "clientState": config.client_state,
            "latestSupportedTlsVersion": "v1_2",
        }
        if config.encryption is not None:
            body["includeResourceData"] = True
            body["encryptionCertificate"] = config.encryption.certificate
            body["encryptionCertificateId"] = config.encryption.certificate_id
        if config.lifecycle_url:
            body["lifecycleNotificationUrl"] = config.lifecycle_url
        created = graph.post_json("/subscriptions", body)
        log.info("subscription created", extra={"subscription_id": created.get("id"), "kind": self._kind.name})
        return created

    def _renew(self, graph: GraphClient, subscription: dict[str, Any], now: datetime) -> dict[str, Any]:
        expiry = format_datetime(self._config.expiry_from(self._kind, now))
        renewed = graph.patch_json(f"/subscriptions/{subscription['id']}", {"expirationDateTime": expiry})
        log.info("subscription renewed", extra={"subscription_id": subscription["id"], "expires": expiry})
        return renewed or {**subscription, "expirationDateTime": expiry}

    def _delete(self, graph: GraphClient, subscription_id: str) -> None:
        with contextlib.suppress(GraphNotFound):
            graph.delete(f"/subscriptions/{subscription_id}")

    def _needs_renewal(self, subscription: dict[str, Any], now: datetime) -> bool:
        expiry = parse_datetime(subscription.get("expirationDateTime"))
        lifetime = self._config.expiry_from(self._kind, now) - now
        return expiry is None or expiry - now < min(self._config.renew_before, lifetime / 2)

    def _record(
        self,
        tenant_id: str,
        state: dict[str, Any] | None,
        subscription: dict[str, Any],
        action: EnsureAction,
        now: datetime,
    ) -> EnsureResult:
        config = self._config
        expiration = format_datetime(parse_datetime(subscription.get("expirationDateTime")) or now)
        document = dict(state or {"id": self._kind.state_id(tenant_id), "createdAt": format_datetime(now)})
        previous = document.get("subscriptionId")
        document.update(
            {
                "docType": self._kind.doc_type,
                "tenantId": tenant_id,
                "resource": config.resource(self._kind),
                "changeType": self._kind.change_type,
                "subscriptionId": subscription.get("id"),
                "expirationDateTime": expiration,
                "notificationUrl": config.notification_url,
                "lifecycleNotificationUrl": config.lifecycle_url,
                "clientStateSha256": client_state_digest(config.client_state).hex(),
                "encryptionCertificateId": config.encryption.certificate_id if config.encryption else None,
                "reauthorizationRequired": False,
                "lastAction": action,
                "lastActionAt": format_datetime(now),
                # The flow is whole up to now: a later gap is caught up from here.
                "healthyUntil": format_datetime(now),
            }
        )
        if previous and previous != subscription.get("id"):
            document["previousSubscriptionIds"] = [previous, *list(document.get("previousSubscriptionIds") or [])][:10]
        try:
            self._states.save(document)  # also when unchanged: it moves healthyUntil on
        except StateConflict:
            if action in {"created", "recreated"}:
                # Lost the race: withdraw our new subscription so Graph does not notify twice.
                self._delete(self._graph_for(tenant_id), str(subscription.get("id")))
            raise
        return EnsureResult(tenant_id, action, str(subscription.get("id")), expiration)
