"""Keep one Graph subscription per configured tenant for `/communications/callRecords` alive.

`ensure(tenant)` (timer and startup) creates it when missing, adopts an existing one of ours after lost
state, renews it well before its expiry (4,230 minutes at most), recreates it when Graph no longer knows
it or its URLs changed, and reauthorizes it when Graph asked (`reauthorizationRequired`). The state
lives in Cosmos `subscriptions` (one document per tenant), with the SHA-256 of the clientState the
subscription was created with, so the webhook can check notifications per subscription.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosAccessConditionFailedError, CosmosResourceExistsError

from verbatim.callrecords.webhook import digest
from verbatim.contracts.callrecords import GraphLifecycleEvent
from verbatim.graph import GraphClient, GraphNotFound
from verbatim.platform.logging import correlation
from verbatim.platform.times import format_datetime, parse_datetime, utcnow

log = logging.getLogger(__name__)

RESOURCE = "/communications/callRecords"
CHANGE_TYPE = "created,updated"
MAX_LIFETIME = timedelta(minutes=4230)
EnsureAction = Literal["created", "adopted", "renewed", "reauthorized", "recreated", "unchanged"]


@dataclass(frozen=True)
class SubscriptionConfig:
    notification_url: str
    lifecycle_url: str | None
    client_state: str
    lifetime: timedelta = timedelta(minutes=4200)
    renew_before: timedelta = timedelta(hours=24)

    def expiry_from(self, now: datetime) -> datetime:
        return now + min(self.lifetime, MAX_LIFETIME - timedelta(minutes=1))


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


def state_id(tenant_id: str) -> str:
    return f"callrecords-{tenant_id}"


class CosmosSubscriptionStates:
    """Subscription state documents in Cosmos `subscriptions` (partition /id), written with etags."""

    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def load(self, tenant_id: str) -> dict[str, Any] | None:
        key = state_id(tenant_id)
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
                "SELECT c.tenantId, c.clientStateSha256 FROM c WHERE c.subscriptionId = @s",
                parameters=[{"name": "@s", "value": subscription_id}],
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
    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self._versions = 0

    def load(self, tenant_id: str) -> dict[str, Any] | None:
        state = self.states.get(state_id(tenant_id))
        return dict(state) if state else None

    def save(self, state: dict[str, Any]) -> None:
        current = self.states.get(state["id"])
        if (current and current.get("_etag") != state.get("_etag")) or (current is None and state.get("_etag")):
            raise StateConflict(state["id"])
        self._versions += 1
        self.states[state["id"]] = {**state, "_etag": str(self._versions)}

    def client_state_digest(self, subscription_id: str) -> bytes | None:
        for state in self.states.values():
            if state.get("subscriptionId") == subscription_id:
                return bytes.fromhex(state["clientStateSha256"])
        return None

    def tenant_of(self, subscription_id: str) -> str | None:
        for state in self.states.values():
            if state.get("subscriptionId") == subscription_id:
                return str(state["tenantId"])
        return None


class SubscriptionKeeper:
    """Creates, adopts, renews, reauthorizes and recreates the callRecords subscription of each tenant."""

    def __init__(
        self,
        *,
        graph_for: Callable[[str], GraphClient],
        states: SubscriptionStateStore,
        config: SubscriptionConfig,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._graph_for = graph_for
        self._states = states
        self._config = config
        self._clock = clock

    def ensure(self, tenant_id: str, *, reauthorize: bool = False) -> EnsureResult:
        with correlation(tenant_id=tenant_id):
            try:
                return self._ensure(tenant_id, reauthorize)
            except StateConflict:
                # Another instance ensured it at the same time; its state wins, check that one.
                log.info("subscription state changed concurrently; checking again")
                return self._ensure(tenant_id, reauthorize)

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
                subscription = None
            if subscription is not None and not self._matches(subscription, state):
                log.warning("subscription differs from configuration; recreating")
                self._delete(graph, str(subscription["id"]))
                subscription = None
            if subscription is None:
                created = self._create(graph, now)
                return self._record(tenant_id, state, created, "recreated", now)
        else:
            subscription = self._adopt(graph, tenant_id)
            if subscription is None:
                return self._record(tenant_id, state, self._create(graph, now), "created", now)
            action: EnsureAction = "adopted"
            if self._needs_renewal(subscription, now):
                subscription = self._renew(graph, subscription, now)
            return self._record(tenant_id, state, subscription, action, now)
        assert state is not None
        if reauthorize or state.get("reauthorizationRequired"):
            # Renewing also reauthorizes; it costs one request and extends the lifetime too.
            return self._record(tenant_id, state, self._renew(graph, subscription, now), "reauthorized", now)
        if self._needs_renewal(subscription, now):
            return self._record(tenant_id, state, self._renew(graph, subscription, now), "renewed", now)
        return self._record(tenant_id, state, subscription, "unchanged", now)

    def handle_lifecycle(self, event: GraphLifecycleEvent) -> EnsureResult | None:
        """Act on a lifecycle notification: reauthorize, or recreate what Graph removed."""
        tenant = event.tenant_id or self._states.tenant_of(event.subscription_id)
        if not tenant:
            log.warning("lifecycle event for an unknown subscription", extra={"event": event.lifecycle_event})
            return None
        if event.lifecycle_event == "reauthorizationRequired":
            return self.ensure(tenant, reauthorize=True)
        if event.lifecycle_event == "subscriptionRemoved":
            state = self._states.load(tenant)
            if state is not None and state.get("subscriptionId") == event.subscription_id:
                state["subscriptionId"] = None  # forces a new one
                self._states.save(state)
            return self.ensure(tenant)
        # `missed`: notifications were dropped; the back-fill timer recovers the records.
        log.warning("graph reports missed notifications; back-fill will recover", extra={"tenant_id": tenant})
        return None

    # -- Graph ------------------------------------------------------------------------------------------

    def _matches(self, subscription: dict[str, Any], state: dict[str, Any]) -> bool:
        return (
            subscription.get("notificationUrl") == self._config.notification_url
            and (subscription.get("resource") or "").lstrip("/") == RESOURCE.lstrip("/")
            and state.get("clientStateSha256") == digest(self._config.client_state).hex()
            and (
                self._config.lifecycle_url is None
                or subscription.get("lifecycleNotificationUrl") in (None, self._config.lifecycle_url)
            )
        )

    def _adopt(self, graph: GraphClient, tenant_id: str) -> dict[str, Any] | None:
        """One of this app's existing subscriptions for the resource and URL (state was lost); extras are
        deleted so Graph does not notify twice."""
        ours = [
            s
            for s in graph.iter_items("/subscriptions")
            if (s.get("resource") or "").lstrip("/") == RESOURCE.lstrip("/")
            and s.get("notificationUrl") == self._config.notification_url
        ]
        # Graph returns clientState on reads; one created with another secret would fail verification.
        usable = [s for s in ours if s.get("clientState") in (None, self._config.client_state)]
        usable.sort(key=lambda s: str(s.get("expirationDateTime") or ""), reverse=True)
        for extra in [s for s in ours if s not in usable[:1]]:
            self._delete(graph, str(extra["id"]))
        if not usable:
            return None
        ours = usable
        log.info("adopted an existing subscription", extra={"subscription_id": ours[0].get("id")})
        return ours[0]

    def _create(self, graph: GraphClient, now: datetime) -> dict[str, Any]:
        body: dict[str, Any] = {
            "changeType": CHANGE_TYPE,
            "notificationUrl": self._config.notification_url,
            "resource": RESOURCE,
            "expirationDateTime": format_datetime(self._config.expiry_from(now)),
            "clientState": self._config.client_state,
            "latestSupportedTlsVersion": "v1_2",
        }
        if self._config.lifecycle_url:
            body["lifecycleNotificationUrl"] = self._config.lifecycle_url
        created = graph.post_json("/subscriptions", body)
        log.info("subscription created", extra={"subscription_id": created.get("id")})
        return created

    def _renew(self, graph: GraphClient, subscription: dict[str, Any], now: datetime) -> dict[str, Any]:
        expiry = format_datetime(self._config.expiry_from(now))
        renewed = graph.patch_json(f"/subscriptions/{subscription['id']}", {"expirationDateTime": expiry})
        log.info("subscription renewed", extra={"subscription_id": subscription["id"], "expires": expiry})
        return renewed or {**subscription, "expirationDateTime": expiry}

    def _delete(self, graph: GraphClient, subscription_id: str) -> None:
        with contextlib.suppress(GraphNotFound):
            graph.delete(f"/subscriptions/{subscription_id}")

    def _needs_renewal(self, subscription: dict[str, Any], now: datetime) -> bool:
        expiry = parse_datetime(subscription.get("expirationDateTime"))
        return expiry is None or expiry - now < self._config.renew_before

    def _record(
        self,
        tenant_id: str,
        state: dict[str, Any] | None,
        subscription: dict[str, Any],
        action: EnsureAction,
        now: datetime,
    ) -> EnsureResult:
        expiration = format_datetime(parse_datetime(subscription.get("expirationDateTime")) or now)
        document = dict(state or {"id": state_id(tenant_id), "createdAt": format_datetime(now)})
        previous = document.get("subscriptionId")
        document.update(
            {
                "docType": "graphSubscription",
                "tenantId": tenant_id,
                "resource": RESOURCE,
                "changeType": CHANGE_TYPE,
                "subscriptionId": subscription.get("id"),
                "expirationDateTime": expiration,
                "notificationUrl": self._config.notification_url,
                "lifecycleNotificationUrl": self._config.lifecycle_url,
                "clientStateSha256": digest(self._config.client_state).hex(),
                "reauthorizationRequired": False,
                "lastAction": action,
                "lastActionAt": format_datetime(now),
            }
        )
        if previous and previous != subscription.get("id"):
            document["previousSubscriptionIds"] = ([previous, *list(document.get("previousSubscriptionIds") or [])])[
                :10
            ]
        if action != "unchanged" or state is None:
            try:
                self._states.save(document)
            except StateConflict:
                if action in {"created", "recreated"}:
                    # Lost the race: withdraw our new subscription so Graph does not notify twice.
                    self._delete(self._graph_for(tenant_id), str(subscription.get("id")))
                raise
        return EnsureResult(tenant_id, action, str(subscription.get("id")), expiration)
