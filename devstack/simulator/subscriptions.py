"""Graph change-notification subscriptions for call records and their delivery.

Subscriptions: create with the endpoint validation handshake, the 4,230-minute maximum, ``clientState``,
``lifecycleNotificationUrl`` and the participant ``$filter``; read, renew, delete, reauthorize; expiry and
``reauthorizationRequired`` on the simulated clock.

Delivery behaves like Graph's webhook pipeline: notifications are batched per endpoint in ``value``
arrays, each POST must get a 2xx within the client timeout (3 s), failures are retried with back-off for
up to 4 hours, and endpoints answering slower than 2.9 s are throttled (10 % slow) or dropped (15 % slow)
once 100 notifications have been counted in the 10-minute window. Every attempt lands in a delivery log.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from yarl import URL

from .callrecords import record_participant_ids
from .chats import CertificateError, ChatMessagesResource, EncryptionCertificate, parse_chat_resource
from .chats import resource as chat_resource
from .chats.tokens import validation_token
from .clock import Clock, TimerHandle
from .config import SimConfig
from .faults import Fault, Faults
from .identity import Identity
from .odata import GraphError, bad_request, base_url, format_datetime, not_found, parse_datetime, read_model
from .tenant import TenantStore

READ = ("CallRecords.Read.All",)
CALL_RECORDS = "communications/callRecords"
_FILTER = re.compile(r"^participants/any\(\s*(\w+)\s*:\s*(.*)\)$")
LOG_LIMIT = 20_000


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")
    change_type: str = Field(alias="changeType", min_length=1)
    notification_url: str = Field(alias="notificationUrl", min_length=8, max_length=2048)
    resource: str = Field(min_length=1, max_length=4096)
    expiration_date_time: str = Field(alias="expirationDateTime")
    client_state: str | None = Field(default=None, alias="clientState", max_length=128)
    lifecycle_notification_url: str | None = Field(default=None, alias="lifecycleNotificationUrl", max_length=2048)
    latest_supported_tls_version: str | None = Field(default=None, alias="latestSupportedTlsVersion")
    include_resource_data: bool | None = Field(default=None, alias="includeResourceData")
    encryption_certificate: str | None = Field(default=None, alias="encryptionCertificate", max_length=64 * 1024)
    encryption_certificate_id: str | None = Field(default=None, alias="encryptionCertificateId", max_length=128)


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    expiration_date_time: str | None = Field(default=None, alias="expirationDateTime")
    # Key rotation: "Use the PATCH operation on the subscription and update the encryptionCertificate and
    # encryptionCertificateId properties" (change-notifications-with-resource-data.md, "Rotating keys").
    encryption_certificate: str | None = Field(default=None, alias="encryptionCertificate", max_length=64 * 1024)
    encryption_certificate_id: str | None = Field(default=None, alias="encryptionCertificateId", max_length=128)


class LifecycleRequest(BaseModel):
    event: Literal["reauthorizationRequired", "subscriptionRemoved", "missed"]


def _subscription_time(value: datetime) -> str:
    """The form change notifications carry: ``2023-02-28T00:00:00.000+00:00``."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+00:00"


def _redact(url: str) -> str:
    """Keep query keys, hide values (``?code=`` is an Azure Functions key)."""
    parsed = URL(url)
    if not parsed.query:
        return url
    return str(parsed.with_query({k: "***" for k in parsed.query}))


def _endpoint_key(url: str) -> str:
    parsed = URL(url)
    return str(parsed.with_query(None).with_fragment(None))


def parse_resource(resource: str) -> set[str] | None:
    """``/communications/callRecords[?$filter=participants/any(p:p/id eq 'x' or p/id in ('y'))]`` -> ids."""
    path, _, query = resource.strip().lstrip("/").partition("?")
    if path.lower() != CALL_RECORDS.lower():
        raise bad_request(
            f"Resource '{resource}' is not supported by the simulator; subscribe to '/communications/callRecords'.",
            "InvalidRequest",
        )
    if not query:
        return None
    if not query.startswith("$filter="):
        raise bad_request("Only a $filter query option is supported on callRecords subscriptions.")
    expression = query[len("$filter=") :].strip()
    match = _FILTER.match(expression)
    if not match:
        raise bad_request(
            "Unsupported filter: use participants/any(p:p/id eq '<id>' [or p/id eq '<id>'...]) "
            "or participants/any(p:p/id in ('<id>', ...))."
        )
    var, body = match.group(1), match.group(2)
    ids: set[str] = set()
    for clause in re.split(r"\s+or\s+", body.strip()):
        eq = re.fullmatch(rf"{var}/id\s+eq\s+'([^']+)'", clause.strip())
        within = re.fullmatch(rf"{var}/id\s+in\s+\(\s*('[^']+'(?:\s*,\s*'[^']+')*)\s*\)", clause.strip())
        if eq:
            ids.add(eq.group(1).lower())
        elif within:
            ids.update(v.lower() for v in re.findall(r"'([^']+)'", within.group(1)))
        else:
            raise bad_request(f"Unsupported filter clause '{clause}'.")
    return ids


@dataclass
class Subscription:
    id: str
    resource: str
    change_types: set[str]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expiration: datetime
    application_id: str | None
    creator_id: str | None
    tls: str | None
    participant_filter: set[str] | None
    timers: list[TimerHandle] = field(default_factory=list)
    chat: ChatMessagesResource | None = None
    include_resource_data: bool = False
    certificate: EncryptionCertificate | None = None

    def dump(self, base: str) -> dict[str, Any]:
        return {
            "@odata.context": f"{base}/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": ",".join(t for t in ("created", "updated", "deleted") if t in self.change_types),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": format_datetime(self.expiration),
            "creatorId": self.creator_id,
            "includeResourceData": self.include_resource_data if self.chat is not None else None,
            "latestSupportedTlsVersion": self.tls or "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": self.certificate.certificate_id if self.certificate else None,
            "notificationUrlAppId": None,
        }


@dataclass
class Pending:
    """One notification waiting to be delivered to one URL."""

    id: str
    url: str
    kind: Literal["notification", "lifecycle"]
    item: dict[str, Any]
    subscription_id: str
    not_before: datetime
    solo: bool = False
    token: tuple[str, str] | None = None  # (app id, tenant id) needing a validation token in the batch
    attempts: int = 0
    first_attempt: datetime | None = None
    note: str | None = None


@dataclass
class EndpointStats:
    window_started: datetime
    total: int = 0
    slow: int = 0
    state: Literal["healthy", "throttled", "dropping"] = "healthy"
    lifetime_total: int = 0
    lifetime_slow: int = 0

    def dump(self) -> dict[str, Any]:
        return {
            "windowStarted": format_datetime(self.window_started),
            "counted": self.total,
            "slow": self.slow,
            "slowRatio": round(self.slow / self.total, 4) if self.total else 0.0,
            "state": self.state,
            "lifetimeCounted": self.lifetime_total,
            "lifetimeSlow": self.lifetime_slow,
        }


class Subscriptions:
    def __init__(
        self, clock: Clock, config: SimConfig, identity: Identity, tenant: TenantStore, faults: Faults
    ) -> None:
        self.clock = clock
        self.config = config
        self.identity = identity
        self.tenant = tenant
        self.faults = faults
        self.items: dict[str, Subscription] = {}
        self.queues: dict[str, list[Pending]] = {}
        self.flushing: set[str] = set()
        self.endpoints: dict[str, EndpointStats] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self.http: aiohttp.ClientSession | None = None
        self._window_timer: TimerHandle | None = None

    def start(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    # -- Graph routes ---------------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1.0/subscriptions", self.create),
            web.get("/v1.0/subscriptions", self.list_subscriptions),
            web.get("/v1.0/subscriptions/{sid}", self.get),
            web.patch("/v1.0/subscriptions/{sid}", self.patch),
            web.delete("/v1.0/subscriptions/{sid}", self.delete),
            web.post("/v1.0/subscriptions/{sid}/reauthorize", self.reauthorize),
            web.get("/sim/subscriptions", self.sim_list),
            web.post("/sim/subscriptions/{sid}/lifecycle", self.sim_lifecycle),
            web.get("/sim/deliveries", self.sim_deliveries),
            web.delete("/sim/deliveries", self.sim_clear_deliveries),
        ]

    def _expiration(self, raw: str, *, chat: bool = False, lifecycle_url: str | None = None) -> datetime:
        try:
            when = parse_datetime(raw)
        except ValueError as error:
            raise bad_request(f"expirationDateTime '{raw}' is not a valid DateTimeOffset.") from error
        now = self.clock.now()
        if when <= now:
            raise bad_request("Subscription expiration can only be in the future.", "ExtensionError")
        if chat:
            limit = self.config.chat_subscription_max_minutes
            if when > now + timedelta(minutes=limit):
                raise bad_request(
                    f"Subscription expiration can only be {limit:g} minutes in the future for chatMessage.",
                    "ExtensionError",
                )
            if lifecycle_url is None and when > now + chat_resource.WITHOUT_LIFECYCLE_URL:
                raise bad_request(chat_resource.LIFECYCLE_REQUIRED, "ExtensionError")
            return when
        maximum = now + timedelta(minutes=self.config.subscription_max_minutes)
        if when > maximum:
            raise bad_request(
                "Subscription expiration can only be "
                f"{self.config.subscription_max_minutes:g} minutes in the future for callRecords.",
                "ExtensionError",
            )
        minimum = now + timedelta(minutes=self.config.subscription_min_minutes)
        return max(when, minimum)

    def _owned(self, request: web.Request) -> Subscription:
        principal = self.identity.authorize(request)
        sub = self.items.get(request.match_info["sid"])
        if sub is None or (sub.application_id and principal.app_id and sub.application_id != principal.app_id):
            raise not_found(
                f"The object was not found: subscription '{request.match_info['sid']}'.", "ResourceNotFound"
            )
        self.identity.authorize(request, *(chat_resource.PERMISSIONS if sub.chat else READ))
        return sub

    async def create(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *READ, *chat_resource.PERMISSIONS)  # some resource we serve
        body = await read_model(request, SubscriptionCreate, max_bytes=128 * 1024)
        chat = parse_chat_resource(body.resource)
        principal = self.identity.authorize(request, *(chat_resource.PERMISSIONS if chat else READ))
        change_types = {c.strip() for c in body.change_type.split(",") if c.strip()}
        for url in (body.notification_url, body.lifecycle_notification_url):
            if url is not None and not url.startswith(("https://", "http://")):
                raise bad_request(f"'{url}' is not an http(s) URL.", "ValidationError")
        participant_filter: set[str] | None = None
        certificate: EncryptionCertificate | None = None
        if chat is not None:
            if not change_types or not change_types <= chat_resource.CHANGE_TYPES:
                raise bad_request("changeType must be a comma-separated list of 'created', 'updated' and 'deleted'.")
            if body.include_resource_data:
                certificate = self._certificate(body.encryption_certificate, body.encryption_certificate_id)
            mine = [s for s in self.items.values() if s.chat is not None and s.application_id == principal.app_id]
            if len(mine) >= chat_resource.PER_APP_QUOTA:
                raise GraphError(
                    403,
                    "ExtensionError",
                    "Operation on target Cache failed: the maximum number of subscriptions per app for "
                    f"'/{chat_resource.CHAT_MESSAGES}' ({chat_resource.PER_APP_QUOTA}) has been reached.",
                )
        else:
            if not change_types or not change_types <= {"created", "updated"}:
                raise bad_request("changeType must be 'created', 'updated' or 'created,updated' for callRecords.")
            participant_filter = parse_resource(body.resource)
            if sum(1 for s in self.items.values() if s.chat is None) >= self.config.subscription_quota:
                raise GraphError(
                    403,
                    "ExtensionError",
                    "Operation on target Cache failed: The number of subscriptions for callRecords in this "
                    f"organization has reached the limit of {self.config.subscription_quota}.",
                )
        expiration = self._expiration(
            body.expiration_date_time, chat=chat is not None, lifecycle_url=body.lifecycle_notification_url
        )
        for url in [body.notification_url] + (
            [body.lifecycle_notification_url] if body.lifecycle_notification_url else []
        ):
            problem = await self._validate_endpoint(url)
            if problem is not None:
                raise bad_request(f"Subscription validation request failed. {problem}", "ValidationError")
        sub = Subscription(
            id=str(uuid.uuid4()),
            resource=body.resource,
            change_types=change_types,
            notification_url=body.notification_url,
            lifecycle_url=body.lifecycle_notification_url,
            client_state=body.client_state,
            expiration=expiration,
            application_id=principal.app_id,
            creator_id=principal.claims.get("oid"),
            tls=body.latest_supported_tls_version,
            participant_filter=participant_filter,
            chat=chat,
            include_resource_data=bool(body.include_resource_data) and chat is not None,
            certificate=certificate,
        )
        self.items[sub.id] = sub
        self._arm(sub)
        return web.json_response(sub.dump(base_url(request)), status=201)

    async def _validate_endpoint(self, url: str) -> str | None:
        """POST ``url?validationToken=...``; the endpoint must echo the decoded token as text/plain in time."""
        assert self.http is not None
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        target = URL(url).update_query({"validationToken": token})
        started = time.monotonic()
        try:
            async with self.http.post(
                target,
                data=b"",
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=aiohttp.ClientTimeout(total=self.config.validation_timeout_seconds),
            ) as response:
                text = await response.text()
                outcome = None
                if response.status != 200:
                    outcome = f"Response status code does not indicate success: {response.status}."
                elif not response.content_type.startswith("text/plain"):
                    outcome = f"Content-Type must be text/plain, was '{response.content_type}'."
                elif text != token:
                    outcome = "The response did not contain the exact (URL-decoded) validationToken."
        except TimeoutError:
            outcome = f"No response within {self.config.validation_timeout_seconds:g} seconds."
        except aiohttp.ClientError as error:
            outcome = f"The endpoint could not be reached: {error.__class__.__name__}."
        self._log(
            url,
            "validation",
            [],
            "delivered" if outcome is None else "failed",
            status=None,
            duration=time.monotonic() - started,
            reason=outcome,
        )
        return outcome

    def _arm(self, sub: Subscription) -> None:
        for timer in sub.timers:
            timer.cancel()
        sub.timers = [self.clock.call_at(sub.expiration, partial(self._expire, sub), label=f"expire {sub.id}")]
        if sub.lifecycle_url:
            lead = sub.expiration - timedelta(minutes=self.config.reauthorization_lead_minutes)
            if lead > self.clock.now():
                sub.timers.append(
                    self.clock.call_at(
                        lead, partial(self.lifecycle, sub, "reauthorizationRequired"), label=f"reauth {sub.id}"
                    )
                )

    def _expire(self, sub: Subscription) -> None:
        if self.items.get(sub.id) is sub and sub.expiration <= self.clock.now():
            del self.items[sub.id]

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        principal = self.identity.authorize(request, *READ)
        base = base_url(request)
        mine = [
            s.dump(base) for s in self.items.values() if not principal.app_id or s.application_id == principal.app_id
        ]
        for item in mine:
            item.pop("@odata.context", None)
        return web.json_response({"@odata.context": f"{base}/v1.0/$metadata#subscriptions", "value": mine})

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(self._owned(request).dump(base_url(request)))

    async def patch(self, request: web.Request) -> web.Response:
        sub = self._owned(request)
        body = await read_model(request, SubscriptionPatch, max_bytes=128 * 1024)
        if body.expiration_date_time is None and body.encryption_certificate is None:
            raise bad_request("Send expirationDateTime, encryptionCertificate or both.")
        if body.encryption_certificate is not None:
            if not sub.include_resource_data:
                raise bad_request("This subscription does not include resource data.")
            sub.certificate = self._certificate(body.encryption_certificate, body.encryption_certificate_id)
        if body.expiration_date_time is not None:
            sub.expiration = self._expiration(
                body.expiration_date_time, chat=sub.chat is not None, lifecycle_url=sub.lifecycle_url
            )
            self._arm(sub)
        return web.json_response(sub.dump(base_url(request)))

    @staticmethod
    def _certificate(encoded: str | None, certificate_id: str | None) -> EncryptionCertificate:
        if not encoded or not certificate_id:
            raise bad_request(
                "encryptionCertificate and encryptionCertificateId are required when includeResourceData is true.",
                "ValidationError",
            )
        try:
            return EncryptionCertificate.parse(encoded, certificate_id)
        except CertificateError as error:
            raise bad_request(str(error), "ValidationError") from error

    def wire_time(self, sub: Subscription) -> str:
        """``subscriptionExpirationDateTime`` as notifications carry it."""
        return _subscription_time(sub.expiration)

    async def delete(self, request: web.Request) -> web.Response:
        sub = self._owned(request)
        for timer in sub.timers:
            timer.cancel()
        del self.items[sub.id]
        return web.Response(status=204)

    async def reauthorize(self, request: web.Request) -> web.Response:
        self._owned(request)
        return web.Response(status=204)

    # -- publishing -----------------------------------------------------------------------------------
    def record_published(self, record: dict[str, Any], change: Literal["created", "updated"]) -> None:
        rid = str(record["id"])
        participants = record_participant_ids(record)
        for sub in list(self.items.values()):
            if sub.chat is not None or sub.expiration <= self.clock.now():
                continue
            if change == "created":
                kind = "created" if "created" in sub.change_types else "updated"
            elif "updated" in sub.change_types:
                kind = "updated"
            else:
                continue
            if sub.participant_filter is not None and not (sub.participant_filter & participants):
                continue
            item = {
                "subscriptionId": sub.id,
                "clientState": sub.client_state,
                "changeType": kind,
                "resource": f"communications/callRecords/{rid}",
                "subscriptionExpirationDateTime": _subscription_time(sub.expiration),
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.callRecord",
                    "@odata.id": f"communications/callRecords/{rid}",
                    "id": rid,
                },
                "tenantId": self.tenant.model.tenant.id,
            }
            self.enqueue(sub.notification_url, "notification", item, sub.id)

    def drop_window_added(self, fault: Fault) -> None:
        """At the end of a ``dropDeliveries`` window, tell the affected subscriptions ``missed`` if asked to."""
        if fault.spec.kind != "dropDeliveries" or fault.until is None:
            return

        def ended() -> None:
            if fault in self.faults.active:
                self.faults.active.remove(fault)
            if not fault.spec.send_missed:
                return
            for sub in list(self.items.values()):
                if fault.spec.subscription_id in (None, sub.id):
                    self.lifecycle(sub, "missed")

        self.clock.call_at(fault.until, ended, label=f"dropDeliveries window {fault.id} ends")

    def lifecycle(self, sub: Subscription, event: str) -> None:
        if sub.lifecycle_url is None:
            return
        item = {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": _subscription_time(sub.expiration),
            "tenantId": self.tenant.model.tenant.id,
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }
        self.enqueue(sub.lifecycle_url, "lifecycle", item, sub.id)

    def enqueue(
        self,
        url: str,
        kind: Literal["notification", "lifecycle"],
        item: dict[str, Any],
        sid: str,
        *,
        token: tuple[str, str] | None = None,
    ) -> None:
        now = self.clock.now()
        if kind == "notification" and self.faults.window("dropDeliveries", sid, now) is not None:
            self._log(url, kind, [(sid, item)], "dropped", reason="deliveries dropped (dropDeliveries fault)")
            return
        stats = self._stats(url)
        if stats.state == "dropping":
            self._log(
                url, kind, [(sid, item)], "dropped", reason="slow endpoint: at least 15 % of deliveries were slow"
            )
            return
        delay = timedelta(0)
        note = None
        if stats.state == "throttled":
            delay = timedelta(minutes=self.config.throttled_delay_minutes)
            note = "throttled endpoint: delivery delayed"

        def matches(spec: Any) -> bool:
            return spec.subscription_id in (None, sid)

        held = self.faults.take("outOfOrderNotifications", matches) if kind == "notification" else None
        if held is not None:
            delay += timedelta(seconds=held.delay_seconds)
            note = "held back (out-of-order fault)"
        pending = Pending(
            str(uuid.uuid4()), url, kind, item, sid, now + delay, solo=held is not None, token=token, note=note
        )
        self._queue(pending)
        if kind == "notification" and self.faults.take("duplicateNotifications", matches) is not None:
            copy = Pending(
                str(uuid.uuid4()),
                url,
                kind,
                dict(item),
                sid,
                now + delay,
                solo=True,
                token=token,
                note="duplicate (fault)",
            )
            self._queue(copy)

    def _queue(self, pending: Pending) -> None:
        self.queues.setdefault(pending.url, []).append(pending)
        if pending.not_before <= self.clock.now():
            self._kick(pending.url)
        else:
            self.clock.call_at(pending.not_before, partial(self._kick, pending.url), label="delivery")

    def _kick(self, url: str) -> None:
        if url not in self.flushing:
            self.flushing.add(url)
            self.clock.spawn(self._flush(url))

    def _stats(self, url: str) -> EndpointStats:
        key = _endpoint_key(url)
        stats = self.endpoints.get(key)
        if stats is None:
            stats = EndpointStats(self.clock.now())
            self.endpoints[key] = stats
            self._ensure_window_timer()
        return stats

    def _ensure_window_timer(self) -> None:
        if self._window_timer is None:
            self._window_timer = self.clock.call_later(
                self.config.slow_window_minutes * 60, self._flush_counters, label="slow-endpoint window"
            )

    def _flush_counters(self) -> None:
        self._window_timer = None
        for stats in self.endpoints.values():
            stats.window_started, stats.total, stats.slow, stats.state = self.clock.now(), 0, 0, "healthy"
        self._ensure_window_timer()

    async def _flush(self, url: str) -> None:
        try:
            while True:
                queue = self.queues.get(url, [])
                now = self.clock.now()
                due = [p for p in queue if p.not_before <= now]
                if not due:
                    return
                batch: list[Pending]
                if due[0].solo:
                    batch = [due[0]]
                else:
                    batch = []
                    for p in due:
                        if p.solo or len(batch) >= self.config.max_notifications_per_delivery:
                            break
                        batch.append(p)
                for p in batch:
                    queue.remove(p)
                await self._attempt(url, batch)
        finally:
            self.flushing.discard(url)

    async def _attempt(self, url: str, batch: list[Pending]) -> None:
        assert self.http is not None
        now = self.clock.now()
        for p in batch:
            p.attempts += 1
            if p.first_attempt is None:
                p.first_attempt = now
        started = time.monotonic()
        status: int | None = None
        outcome: Literal["delivered", "failed", "timeout"]
        try:
            body: dict[str, Any] = {"value": [p.item for p in batch]}
            tokens = sorted({p.token for p in batch if p.token is not None})
            if tokens:
                # "a single token for each distinct app and tenant pair for whom there's an item in the value
                # array" (change-notifications-with-resource-data.md)
                body["validationTokens"] = [validation_token(self.identity, app, tid) for app, tid in tokens]
            async with self.http.post(
                url,
                json=body,
                timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout_seconds),
            ) as response:
                status = response.status
                await response.read()
            outcome = "delivered" if 200 <= status < 300 else "failed"
            reason = None if outcome == "delivered" else f"HTTP {status}"
        except TimeoutError:
            outcome, reason = "timeout", f"no response within {self.config.webhook_timeout_seconds:g} s"
        except aiohttp.ClientError as error:
            outcome, reason = "failed", f"{error.__class__.__name__}"
        duration = time.monotonic() - started
        slow = duration > self.config.slow_threshold_seconds or outcome == "timeout"
        stats = self._stats(url)
        stats.total += len(batch)
        stats.lifetime_total += len(batch)
        if slow:
            stats.slow += len(batch)
            stats.lifetime_slow += len(batch)
        if stats.total >= self.config.slow_sample_size:
            ratio = stats.slow / stats.total
            stats.state = (
                "dropping"
                if ratio >= self.config.drop_ratio
                else "throttled"
                if ratio >= self.config.throttle_ratio
                else "healthy"
            )
        next_at: datetime | None = None
        exhausted: list[Pending] = []
        retry: list[Pending] = []
        if outcome != "delivered":
            for p in batch:
                assert p.first_attempt is not None
                deadline = p.first_attempt + timedelta(hours=self.config.retry_max_hours)
                if now >= deadline:
                    exhausted.append(p)
                    continue
                if stats.state == "throttled":
                    delay = self.config.throttled_delay_minutes * 60
                else:
                    schedule = self.config.retry_schedule_seconds
                    delay = schedule[min(p.attempts - 1, len(schedule) - 1)]
                p.not_before = min(now + timedelta(seconds=delay), deadline)
                retry.append(p)
            next_at = min((p.not_before for p in retry), default=None)
        self._log(
            url,
            batch[0].kind,
            [(p.subscription_id, p.item) for p in batch],
            outcome,
            status=status,
            duration=duration,
            slow=slow,
            reason=reason,
            attempt=max(p.attempts for p in batch),
            next_at=next_at,
            note=batch[0].note,
        )
        for p in exhausted:
            hours = f"{self.config.retry_max_hours:g}"
            items = [(p.subscription_id, p.item)]
            self._log(url, p.kind, items, "dropped", reason=f"retries exhausted after {hours} hours")
        for p in retry:
            self._queue(p)

    def _log(
        self,
        url: str,
        kind: str,
        items: list[tuple[str, dict[str, Any]]],
        outcome: str,
        *,
        status: int | None = None,
        duration: float | None = None,
        slow: bool = False,
        reason: str | None = None,
        attempt: int = 0,
        next_at: datetime | None = None,
        note: str | None = None,
    ) -> None:
        stats = self.endpoints.get(_endpoint_key(url))
        self.log.append(
            {
                "id": str(uuid.uuid4()),
                "at": format_datetime(self.clock.now()),
                "url": _redact(url),
                "kind": kind,
                "subscriptionIds": sorted({sid for sid, _ in items}),
                "resources": [i.get("resource") or i.get("lifecycleEvent") for _, i in items],
                "changeTypes": [i.get("changeType") for _, i in items],
                "notificationCount": len(items),
                "attempt": attempt,
                "outcome": outcome,
                "httpStatus": status,
                "durationMs": round(duration * 1000, 1) if duration is not None else None,
                "slow": slow,
                "endpointState": stats.state if stats else "healthy",
                "reason": reason,
                "note": note,
                "nextAttemptAt": format_datetime(next_at) if next_at else None,
            }
        )

    # -- /sim -----------------------------------------------------------------------------------------
    async def sim_list(self, request: web.Request) -> web.Response:
        base = base_url(request)
        return web.json_response({"value": [s.dump(base) for s in self.items.values()]})

    async def sim_lifecycle(self, request: web.Request) -> web.Response:
        sub = self.items.get(request.match_info["sid"])
        if sub is None:
            raise not_found(f"No subscription '{request.match_info['sid']}'.")
        body = await read_model(request, LifecycleRequest, max_bytes=4096)
        if sub.lifecycle_url is None:
            raise bad_request("This subscription has no lifecycleNotificationUrl.")
        self.lifecycle(sub, body.event)
        if body.event == "subscriptionRemoved":
            for timer in sub.timers:
                timer.cancel()
            self.items.pop(sub.id, None)
        await asyncio.sleep(0)
        return web.json_response({"queued": body.event}, status=202)

    async def sim_deliveries(self, request: web.Request) -> web.Response:
        entries = list(self.log)
        sid = request.query.get("subscriptionId")
        if sid:
            entries = [e for e in entries if sid in e["subscriptionIds"]]
        outcome = request.query.get("outcome")
        if outcome:
            entries = [e for e in entries if e["outcome"] == outcome]
        kind = request.query.get("kind")
        if kind:
            entries = [e for e in entries if e["kind"] == kind]
        pending = [
            {
                "id": p.id,
                "url": _redact(p.url),
                "kind": p.kind,
                "subscriptionId": p.subscription_id,
                "attempts": p.attempts,
                "notBefore": format_datetime(p.not_before),
                "note": p.note,
            }
            for queue in self.queues.values()
            for p in queue
        ]
        return web.json_response(
            {
                "value": entries,
                "pending": pending,
                "endpoints": {_redact(k): v.dump() for k, v in self.endpoints.items()},
            }
        )

    async def sim_clear_deliveries(self, request: web.Request) -> web.Response:
        self.log.clear()
        self.endpoints.clear()
        return web.Response(status=204)
