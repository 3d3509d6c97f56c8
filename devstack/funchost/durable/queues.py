"""The task hub's queues: control messages for orchestrations and work items for activities.

As in the real Azure Storage provider, everything that must survive a restart is a queue message: events
for an instance (start, activity results, raised events, terminate, sub-orchestration results) and durable
timers (a `TimerFired` message made invisible until the timer is due). Messages are JSON, base64-encoded;
payloads too large for a queue message are kept in a blob and the message points to it.
"""

from __future__ import annotations

import contextlib
import json
import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

# 64 KiB per message after base64: keep the JSON well under 48 KiB.
_INLINE_LIMIT = 45_000
# Azure Storage caps a message's initial invisibility at 7 days; longer timers are re-sent when they surface.
MAX_DELAY = timedelta(days=7) - timedelta(minutes=1)


@dataclass(frozen=True)
class Received:
    """A message taken from a queue (invisible to others until deleted, released or its lease runs out)."""

    body: dict[str, Any]
    message_id: str
    pop_receipt: str
    dequeue_count: int


class HubQueue:
    """One queue of the task hub."""

    def __init__(self, client: QueueClient, blobs: LargeMessageStore) -> None:
        self._client = client
        self._blobs = blobs
        self.name = client.queue_name

    async def create_if_missing(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._client.create_queue()

    async def send(self, body: dict[str, Any], delay: timedelta | None = None) -> timedelta:
        """Queue a message, invisible for `delay` (whole seconds, rounded up); returns the delay applied."""
        text = json.dumps(body)
        if len(text) > _INLINE_LIMIT:
            text = json.dumps({"$blob": await self._blobs.put(str(body.get("id") or ""), text)})
        seconds = 0 if delay is None else math.ceil(min(max(delay, timedelta(0)), MAX_DELAY).total_seconds())
        await self._client.send_message(text, visibility_timeout=seconds or None)
        return timedelta(seconds=seconds)

    async def receive(self, max_messages: int, lease: timedelta) -> list[Received]:
        received: list[Received] = []
        pager = self._client.receive_messages(
            max_messages=max(1, min(32, max_messages)), visibility_timeout=int(lease.total_seconds())
        )
        async for message in pager:
            body = json.loads(message.content)
            if "$blob" in body:
                body = json.loads(await self._blobs.get(str(body["$blob"])))
            received.append(Received(body, message.id, str(message.pop_receipt), message.dequeue_count or 1))
            if len(received) >= max_messages:
                break
        return received

    async def delete(self, message: Received) -> None:
        # Not found: already deleted, or its lease ran out and someone else holds it now.
        with contextlib.suppress(ResourceNotFoundError):
            await self._client.delete_message(message.message_id, message.pop_receipt)

    async def release(self, message: Received, delay: timedelta = timedelta(0)) -> Received | None:
        """Make the message visible again after `delay` (0: now); returns it with its new receipt."""
        try:
            updated = await self._client.update_message(
                message.message_id, message.pop_receipt, visibility_timeout=int(delay.total_seconds())
            )
        except ResourceNotFoundError:
            return None
        return Received(message.body, message.message_id, str(updated.pop_receipt), message.dequeue_count)

    async def close(self) -> None:
        await self._client.close()


class LargeMessageStore:
    """Blob container for message payloads that do not fit in a queue message."""

    def __init__(self, service: BlobServiceClient, container: str) -> None:
        self._service = service
        self._container = service.get_container_client(container)

    async def create_if_missing(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._container.create_container()

    async def put(self, name_hint: str, text: str) -> str:
        name = f"{name_hint.replace('|', '/')}/{uuid.uuid4().hex}.json"
        await self._container.upload_blob(name, text.encode(), overwrite=True)
        return name

    async def get(self, name: str) -> str:
        downloader = await self._container.download_blob(name)
        return (await downloader.readall()).decode()

    async def close(self) -> None:
        await self._container.close()
        await self._service.close()


def queue_client(service: QueueServiceClient, name: str) -> QueueClient:
    """A client of one queue that speaks base64 text, like the Functions runtime's own queues."""
    return service.get_queue_client(
        name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
    )
