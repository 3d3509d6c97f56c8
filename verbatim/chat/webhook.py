"""The chat-message webhook: Graph's rich notifications for `/chats/getAllMessages`, authenticated, decrypted
and queued for ingestion within Graph's response budget (2xx inside 3 s; slower than 2.9 s counts as slow).

For each POST: parse the `changeNotificationCollection`; every `validationTokens` JWT must be valid and every
item's tenant vouched for (`verbatim.chat.validation_tokens`); every item's `clientState` must be ours; every
item's `encryptedContent` must name our certificate, carry a `dataSignature` that the HMAC-SHA256 under the
decrypted key reproduces, and decrypt to the chat message the item names (`verbatim.chat.encrypted_content`).
Only when the whole batch passes is anything queued — one `chat.message-captured` per item on
`chat-messages`. A batch that fails any check is discarded whole ("If any tokens fail, consider the change
notification suspicious") and recorded as a security event; it is still answered 202, as Microsoft asks
("respond before validating ... prevents any potential rogue actors from finding out if they passed or failed
validation", change-notifications-with-resource-data.md). A body that is not a notification collection at all
is a 400; when the queue or the signing keys cannot be reached the answer is 503, so Graph redelivers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from verbatim.chat.encrypted_content import (
    DecryptionCertificate,
    EncryptedContent,
    ResourceDataRejected,
    decrypt_resource,
)
from verbatim.chat.messages import MessageRejected, parse_version
from verbatim.chat.validation_tokens import KeyLookup, ValidationTokenRejected, validate_collection
from verbatim.contracts.callrecords import GraphLifecycleEvent
from verbatim.contracts.chat import ChatMessageCaptured
from verbatim.platform.audit import AuditEvent, AuditLog
from verbatim.platform.errors import DependencyUnavailable, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from verbatim.platform.queues import AsyncMessageQueue, MessageQueue
from verbatim.platform.times import format_datetime, utcnow

log = logging.getLogger(__name__)


class Item(BaseModel):
    """One item of `value` (changeNotification)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    subscription_id: str = Field(alias="subscriptionId", min_length=1, max_length=128)
    client_state: str | None = Field(default=None, alias="clientState", max_length=512)
    change_type: Literal["created", "updated", "deleted"] | None = Field(default=None, alias="changeType")
    resource: str | None = Field(default=None, max_length=1024)
    resource_data: dict[str, Any] | None = Field(default=None, alias="resourceData")
    encrypted_content: EncryptedContent | None = Field(default=None, alias="encryptedContent")
    tenant_id: str | None = Field(default=None, alias="tenantId", max_length=64)
    subscription_expiration: str | None = Field(default=None, alias="subscriptionExpirationDateTime")
    lifecycle_event: str | None = Field(default=None, alias="lifecycleEvent", max_length=64)


class Collection(BaseModel):
    """changeNotificationCollection."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    value: list[Item] = Field(min_length=1, max_length=1000)
    validation_tokens: list[str] | None = Field(default=None, alias="validationTokens", max_length=100)


@dataclass(frozen=True)
class Accepted:
    notifications: int
    enqueued: int
    refused: str | None = None  # why the batch was discarded (never told to the caller)


def parse_collection(body: bytes, content_type: str | None, max_bytes: int) -> Collection:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(f"expected application/json, got {media_type or 'no content type'}")
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"body of {len(body)} bytes exceeds {max_bytes}")
    try:
        return Collection.model_validate_json(body)
    except ValidationError as error:
        errors = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in error.errors(include_url=False)]
        raise InvalidInput("the body is not a Graph change notification collection", errors=errors) from error


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class _Refused(Exception):
    """A batch not taken. `genuine`: its validation tokens held (Graph sent it for our app) and the content
    failed after that, so what it carried is fetched from the export API instead."""

    def __init__(self, reason: str, *, genuine: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.genuine = genuine


class ChatNotificationReceiver:
    def __init__(
        self,
        *,
        certificates: Mapping[str, DecryptionCertificate],
        signing_keys: KeyLookup,
        app_ids: Iterable[str],
        tenant_ids: Iterable[str],
        client_states: Iterable[str],
        audit: AuditLog,
        catch_up: Callable[[str], None] | None = None,
        max_bytes: int = 4 * 1024 * 1024,
        clock: Callable[[], datetime] = utcnow,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._certificates = dict(certificates)
        self._keys = signing_keys
        self._apps = [a.lower() for a in app_ids]
        self._tenants = [t.lower() for t in tenant_ids]
        self._states = [_digest(s) for s in client_states if s]
        self._audit = audit
        self._catch_up = catch_up
        self._max_bytes = max_bytes
        self._clock = clock
        self._wall = wall_clock

    # -- checks -----------------------------------------------------------------------------------------

    def verify(self, collection: Collection) -> list[ChatMessageCaptured]:
        """The messages of an authentic collection; `_Refused` (with a reason) otherwise."""
        items = collection.value
        if any(item.lifecycle_event for item in items):
            raise _Refused("a lifecycle notification sent to the notification URL")
        for item in items:
            ok = False
            received = _digest(item.client_state or "")
            for expected in self._states:
                ok |= hmac.compare_digest(received, expected)
            if not ok or item.client_state is None:
                raise _Refused("clientState mismatch")
        try:
            validate_collection(
                collection.validation_tokens,
                [item.tenant_id or "" for item in items],
                app_ids=self._apps,
                tenant_ids=self._tenants,
                keys=self._keys,
                now=self._wall(),
            )
        except ValidationTokenRejected as error:
            raise _Refused(f"validation token: {error.reason}") from error
        received_at = format_datetime(self._clock())
        messages = []
        for item in items:
            if item.encrypted_content is None:
                raise _Refused("no encryptedContent", genuine=True)
            try:
                raw, _ = decrypt_resource(item.encrypted_content, self._certificates)
            except ResourceDataRejected as error:
                raise _Refused(f"encrypted content: {error.reason}", genuine=True) from error
            try:
                version = parse_version(raw)
            except MessageRejected as error:
                raise _Refused(f"decrypted content is not a chat message: {error}", genuine=True) from error
            named = (item.resource_data or {}).get("id")
            if named is not None and str(named) != version.message_id:
                raise _Refused("the decrypted message is not the one the notification names", genuine=True)
            if item.resource and version.chat_id not in item.resource:
                raise _Refused("the decrypted message is not in the chat the notification names", genuine=True)
            messages.append(
                ChatMessageCaptured(
                    tenant_id=(item.tenant_id or "").lower(),
                    source="notification",
                    received_at=received_at,
                    raw=raw,
                    subscription_id=item.subscription_id,
                    change_type=item.change_type,
                )
            )
        return messages

    def _refuse(self, collection: Collection, reason: str, source_ip: str | None, *, genuine: bool = False) -> None:
        self._audit.record(
            AuditEvent(
                category="security",
                action="graph.chat-notification.rejected",
                actor="unverified",
                target="chat/notifications",
                detail={
                    "reason": reason,
                    "subscriptionIds": sorted({i.subscription_id for i in collection.value})[:20],
                    "notifications": len(collection.value),
                    "sourceIp": source_ip,
                    "genuine": genuine,
                },
                at=self._clock(),
            )
        )
        log.warning("chat notification batch refused: %s", reason)
        if genuine and self._catch_up is not None:
            for tenant in sorted({(item.tenant_id or "").lower() for item in collection.value} & set(self._tenants)):
                self._catch_up(tenant)

    def _checked(
        self, body: bytes, content_type: str | None, source_ip: str | None
    ) -> tuple[Collection, list[str], str | None]:
        collection = parse_collection(body, content_type, self._max_bytes)
        try:
            messages = self.verify(collection)
        except _Refused as refused:
            self._refuse(collection, refused.reason, source_ip, genuine=refused.genuine)
            return collection, [], refused.reason
        except jwt.PyJWKClientError as error:
            raise DependencyUnavailable("the identity platform's signing keys could not be read") from error
        return collection, [m.model_dump_json(by_alias=True) for m in messages], None

    # -- entry points -----------------------------------------------------------------------------------

    def accept(
        self, body: bytes, content_type: str | None, queue: MessageQueue, source_ip: str | None = None
    ) -> Accepted:
        collection, bodies, refused = self._checked(body, content_type, source_ip)
        for message in bodies:
            queue.send(message)
        return Accepted(len(collection.value), len(bodies), refused)

    async def accept_async(
        self, body: bytes, content_type: str | None, queue: AsyncMessageQueue, source_ip: str | None = None
    ) -> Accepted:
        """`accept` for the async trigger: the checks (about a millisecond of CPU per item: RSA, HMAC, AES, JWT) run
        on the event loop itself — a hand-off to a thread pool costs more than that, and under load waits behind
        the pool's other work (measured: benchmarks/chat.py) — and the sends go out concurrently. A refusal is
        recorded in a thread (a Cosmos write). If a send fails the request fails (503) and Graph redelivers; what
        was already queued is a duplicate that ingestion absorbs."""
        collection = parse_collection(body, content_type, self._max_bytes)
        try:
            messages = self.verify(collection)
        except _Refused as problem:
            await asyncio.to_thread(self._refuse, collection, problem.reason, source_ip, genuine=problem.genuine)
            return Accepted(len(collection.value), 0, problem.reason)
        except jwt.PyJWKClientError as error:
            raise DependencyUnavailable("the identity platform's signing keys could not be read") from error
        bodies = [m.model_dump_json(by_alias=True) for m in messages]
        await asyncio.gather(*(queue.send(message) for message in bodies))
        return Accepted(len(collection.value), len(bodies))

    def accept_lifecycle(
        self, body: bytes, content_type: str | None, queue: MessageQueue, source_ip: str | None = None
    ) -> Accepted:
        """Lifecycle notifications (`reauthorizationRequired`, `subscriptionRemoved`, `missed`): checked by
        clientState (they carry no resource data and no validation tokens) and queued for the keeper."""
        collection = parse_collection(body, content_type, self._max_bytes)
        for item in collection.value:
            received = _digest(item.client_state or "")
            if item.client_state is None or not any(hmac.compare_digest(received, e) for e in self._states):
                self._refuse(collection, "lifecycle clientState mismatch", source_ip)
                return Accepted(len(collection.value), 0, "lifecycle clientState mismatch")
            if not item.lifecycle_event:
                raise InvalidInput("a lifecycle notification names no lifecycleEvent")
        received_at = format_datetime(self._clock())
        for item in collection.value:
            event = GraphLifecycleEvent(
                subscription_id=item.subscription_id,
                tenant_id=item.tenant_id,
                lifecycle_event=item.lifecycle_event or "",
                subscription_expiration_date_time=item.subscription_expiration,
                received_at=received_at,
            )
            queue.send(event.model_dump_json(by_alias=True))
        return Accepted(len(collection.value), len(collection.value))


class JwksKeys:
    """The identity platform's signing keys (JWKS), fetched and cached by PyJWT's client; an unknown kid
    triggers one refetch (keys rotate)."""

    def __init__(self, uri: str, ssl_context: Any = None) -> None:
        self._client = jwt.PyJWKClient(uri, cache_keys=True, lifespan=3600, ssl_context=ssl_context)

    def __call__(self, kid: str) -> Any:
        try:
            return self._client.get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError:
            raise
        except jwt.PyJWKClientError:
            return None
