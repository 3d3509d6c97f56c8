"""Graph change notifications for callRecords, received: check, then enqueue; never call Graph here.

Graph allows 3 seconds and marks endpoints slow at 2.9 s, so the webhook only parses, verifies each
notification's `clientState` against its subscription (constant-time, on digests), and puts the call
record ids on `callrecord-notifications`. A request carrying any notification whose clientState does
not match is not from Graph (Graph always echoes the secret of its own subscription): it is refused
whole (403), recorded as a security event, and nothing from it is enqueued. Secrets are rotated by
accepting the previous one alongside the current one for a while.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from verbatim.contracts.callrecords import CallRecordNotification, GraphLifecycleEvent
from verbatim.platform.audit import AuditEvent, AuditLog
from verbatim.platform.errors import Forbidden, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from verbatim.platform.inputs import load_json
from verbatim.platform.queues import AsyncMessageQueue, MessageQueue
from verbatim.platform.times import format_datetime, utcnow

# Call record ids are GUIDs; allow a little more, never anything that could reshape a URL.
_RECORD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _sender_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="webhook-enqueue")
        return _pool


class ChangeNotification(BaseModel):
    """One item of Graph's `value` array (basic notification: the id only)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    subscription_id: str = Field(alias="subscriptionId", min_length=1, max_length=128)
    client_state: str | None = Field(default=None, alias="clientState", max_length=512)
    change_type: str | None = Field(default=None, alias="changeType", max_length=64)
    resource: str | None = Field(default=None, max_length=512)
    resource_data: dict[str, Any] | None = Field(default=None, alias="resourceData")
    tenant_id: str | None = Field(default=None, alias="tenantId", max_length=128)
    subscription_expiration: str | None = Field(default=None, alias="subscriptionExpirationDateTime")
    lifecycle_event: str | None = Field(default=None, alias="lifecycleEvent", max_length=64)

    def call_record_id(self) -> str | None:
        data = self.resource_data or {}
        candidate = data.get("id")
        if not isinstance(candidate, str) and self.resource:
            candidate = self.resource.rstrip("/").rsplit("/", 1)[-1]
        return candidate if isinstance(candidate, str) and _RECORD_ID.match(candidate) else None


class NotificationBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: list[ChangeNotification] = Field(min_length=1, max_length=10_000)


def digest(secret: str) -> bytes:
    """What we keep of a clientState: its SHA-256 (the secret itself stays in settings / Key Vault)."""
    return hashlib.sha256(secret.encode()).digest()


class ClientStates:
    """The clientState digest expected for each subscription: the one recorded when we created it, else
    the configured secret(s) (current and, during rotation, previous). Lookups are cached briefly."""

    def __init__(
        self,
        configured: Iterable[str],
        lookup: Callable[[str], bytes | None] | None = None,
        ttl_seconds: float = 300.0,
    ) -> None:
        self._configured = [digest(secret) for secret in configured if secret]
        self._lookup = lookup
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, bytes | None]] = {}
        self._lock = threading.Lock()

    def expected(self, subscription_id: str) -> list[bytes]:
        recorded: bytes | None = None
        if self._lookup is not None:
            now = time.monotonic()
            with self._lock:
                hit = self._cache.get(subscription_id)
            if hit is not None and now - hit[0] < self._ttl:
                recorded = hit[1]
            else:
                recorded = self._lookup(subscription_id)
                with self._lock:
                    if len(self._cache) > 10_000:
                        self._cache.clear()
                    self._cache[subscription_id] = (now, recorded)
        return [recorded] if recorded is not None else list(self._configured)

    def all_cached(self, subscription_ids: Iterable[str]) -> bool:
        """True when checking these subscriptions needs no lookup (nothing would block)."""
        if self._lookup is None:
            return True
        now = time.monotonic()
        with self._lock:
            return all(
                (hit := self._cache.get(sid)) is not None and now - hit[0] < self._ttl for sid in subscription_ids
            )

    def matches(self, subscription_id: str, client_state: str | None) -> bool:
        received = digest(client_state or "")
        ok = False
        for expected in self.expected(subscription_id):
            # Compare every candidate, so timing does not tell which one (if any) matched.
            ok |= hmac.compare_digest(received, expected)
        return ok and client_state is not None


@dataclass(frozen=True)
class Accepted:
    notifications: int
    enqueued: int


def parse_batch(body: bytes, content_type: str | None, max_bytes: int) -> NotificationBatch:
    """The notification batch of a webhook POST: 415 wrong content type, 413 too large, 400 malformed."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(f"expected application/json, got {media_type or 'no content type'}")
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"body of {len(body)} bytes exceeds {max_bytes}")
    payload = load_json(body, "the body")
    try:
        return NotificationBatch.model_validate(payload)
    except ValidationError as error:
        errors = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in error.errors(include_url=False)]
        raise InvalidInput("the body is not a Graph notification collection", errors=errors) from error


class NotificationReceiver:
    """Verifies notification batches and enqueues the call record ids they name."""

    def __init__(
        self,
        *,
        client_states: ClientStates,
        queue: MessageQueue,
        audit: AuditLog,
        tenants: Iterable[str] = (),
        max_bytes: int = 1024 * 1024,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._client_states = client_states
        self._queue = queue
        self._audit = audit
        self._tenants = {tenant.lower() for tenant in tenants}
        self._max_bytes = max_bytes
        self._clock = clock

    def verify(self, batch: NotificationBatch, endpoint: str, source_ip: str | None) -> None:
        """Forbidden (after recording a security event) unless every item carries its subscription's
        clientState and, when tenants are configured, names one of them."""
        problem = self._check(batch)
        if problem is not None:
            self._reject(batch, problem, endpoint, source_ip)

    def _check(self, batch: NotificationBatch) -> tuple[str, list[ChangeNotification]] | None:
        forged = [n for n in batch.value if not self._client_states.matches(n.subscription_id, n.client_state)]
        if forged:
            return "clientState mismatch", forged
        foreign = [n for n in batch.value if self._tenants and (n.tenant_id or "").lower() not in self._tenants]
        if foreign:
            return "tenant not configured", foreign
        return None

    def _reject(
        self,
        batch: NotificationBatch,
        problem: tuple[str, list[ChangeNotification]],
        endpoint: str,
        source_ip: str | None,
    ) -> None:
        reason, offending = problem
        self._audit.record(
            AuditEvent(
                category="security",
                action="graph.notification.rejected",
                actor="unverified",
                target=endpoint,
                detail={
                    "reason": reason,
                    "subscriptionIds": sorted({n.subscription_id for n in offending})[:20],
                    "notifications": len(batch.value),
                    "sourceIp": source_ip,
                },
                at=self._clock(),
            )
        )
        raise Forbidden(f"notification refused: {reason}")

    def accept(self, body: bytes, content_type: str | None, source_ip: str | None = None) -> Accepted:
        """Verify a POST to the notifications endpoint and enqueue its ids (raises domain errors)."""
        batch = parse_batch(body, content_type, self._max_bytes)
        self.verify(batch, "graph/notifications", source_ip)
        bodies = self._messages(batch)
        self._send_all(bodies)
        return Accepted(notifications=len(batch.value), enqueued=len(bodies))

    def _messages(self, batch: NotificationBatch) -> list[str]:
        """One `callrecord.notification` per (tenant, record) of a verified batch."""
        seen_at = format_datetime(self._clock())
        messages: dict[tuple[str, str], CallRecordNotification] = {}
        for item in batch.value:
            record_id = item.call_record_id()
            if record_id is None:
                raise InvalidInput("a notification names no valid call record id (resourceData.id)")
            tenant = item.tenant_id or ""
            # Within one batch, created+updated of the same record need one fetch.
            messages[(tenant, record_id)] = CallRecordNotification(
                call_record_id=record_id,
                tenant_id=tenant,
                change_type=item.change_type,
                subscription_id=item.subscription_id,
                source="notification",
                first_seen_at=seen_at,
            )
        return [message.model_dump_json(by_alias=True) for message in messages.values()]

    async def accept_async(
        self, body: bytes, content_type: str | None, queue: AsyncMessageQueue, source_ip: str | None = None
    ) -> Accepted:
        """`accept` for an async trigger: sends on the event loop, so the webhook never waits for a thread
        of the worker's pool (which queue triggers may all be holding). Verification touches Cosmos only
        for a subscription not seen in the last minutes, or to record a forgery: that part runs in a thread."""
        batch = parse_batch(body, content_type, self._max_bytes)
        if self._client_states.all_cached(n.subscription_id for n in batch.value):
            problem = self._check(batch)
            if problem is not None:
                await asyncio.to_thread(self._reject, batch, problem, "graph/notifications", source_ip)
        else:
            await asyncio.to_thread(self.verify, batch, "graph/notifications", source_ip)
        bodies = self._messages(batch)
        await asyncio.gather(*(queue.send(message) for message in bodies))
        return Accepted(notifications=len(batch.value), enqueued=len(bodies))

    def _send_all(self, bodies: list[str]) -> None:
        """Enqueue every body; a batch of up to 100 goes out concurrently, so a loaded storage account
        costs one round trip's worth of latency, not a hundred (Graph counts a response over 2.9 s as
        slow). If any send fails the whole request fails (503): Graph redelivers the batch, and what was
        already enqueued is a duplicate that ingestion absorbs."""
        if len(bodies) <= 1:
            for body in bodies:
                self._queue.send(body)
            return
        for future in [_sender_pool().submit(self._queue.send, body) for body in bodies]:
            future.result()

    def accept_lifecycle(
        self, body: bytes, content_type: str | None, lifecycle_queue: MessageQueue, source_ip: str | None = None
    ) -> Accepted:
        """Verify a POST to the lifecycle endpoint and enqueue its events for the subscription keeper."""
        batch = parse_batch(body, content_type, self._max_bytes)
        self.verify(batch, "graph/lifecycle", source_ip)
        for item in batch.value:
            if not item.lifecycle_event:
                raise InvalidInput("a lifecycle notification names no lifecycleEvent")
        received_at = format_datetime(self._clock())
        for item in batch.value:
            event = GraphLifecycleEvent(
                subscription_id=item.subscription_id,
                tenant_id=item.tenant_id,
                lifecycle_event=item.lifecycle_event or "",
                subscription_expiration_date_time=item.subscription_expiration,
                received_at=received_at,
            )
            lifecycle_queue.send(event.model_dump_json(by_alias=True))
        return Accepted(notifications=len(batch.value), enqueued=len(batch.value))
