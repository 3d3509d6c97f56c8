"""Queue triggers against Azure Storage queues (Azurite locally), with the real host's semantics.

One listener per function polls its queue: up to `batchSize` messages at a time, more once the number
still in flight falls to `newBatchThreshold`, and an exponential, randomised back-off (0.1 s doubling up
to `maxPollingInterval`) while the queue is empty. A message is invisible while its function runs; on
success it is deleted, on failure it becomes visible again after `visibilityTimeout`; once its
dequeue count reaches `maxDequeueCount` (or when it cannot be decoded) its original content moves to
`<queue>-poison`, created on first use, and the message is deleted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as QueueTriggerMessage
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from devstack.funchost.config import QueueOptions
from devstack.funchost.indexing import HostedFunction

logger = logging.getLogger("devstack.funchost.queues")

MIN_POLLING_INTERVAL = 0.1
# How long a received message stays invisible while its function runs (the real listener uses 10 min
# and renews it; functions here run well inside that).
PROCESSING_VISIBILITY = 600

Invoke = Callable[[str, Any], Awaitable[Any]]


def raw_queue_client(service: QueueServiceClient, queue_name: str) -> QueueClient:
    """A client that reads and writes message text as stored: the listener decodes per messageEncoding."""
    return service.get_queue_client(queue_name, message_encode_policy=None, message_decode_policy=None)


def decode_body(content: str, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.b64decode(content, validate=True)
    return content.encode("utf-8")


def encode_body(value: Any, encoding: str) -> str:
    """A queue output binding's value as message text (str, bytes, or JSON for anything else)."""
    if isinstance(value, func.QueueMessage):
        value = value.get_body()
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif isinstance(value, str):
        data = value.encode("utf-8")
    else:
        data = json.dumps(value).encode("utf-8")
    return base64.b64encode(data).decode("ascii") if encoding == "base64" else data.decode("utf-8")


def trigger_value(function: HostedFunction, message: QueueTriggerMessage) -> Any:
    """What the function's parameter annotation asks for: str, bytes, or the QueueMessage itself."""
    annotation = function.annotations.get(str(function.trigger.get("name")))
    if annotation is str:
        return message.get_body().decode("utf-8")
    if annotation is bytes:
        return message.get_body()
    return message


class Backoff:
    """Randomised exponential back-off between polls of an empty queue."""

    def __init__(self, maximum: float, minimum: float = MIN_POLLING_INTERVAL) -> None:
        self.minimum = minimum
        self.maximum = max(maximum, minimum)
        self.current = minimum

    def after(self, found_messages: bool) -> float:
        if found_messages:
            self.current = self.minimum
            return self.minimum
        self.current = min(self.current * 2, self.maximum)
        return min(self.maximum, self.current * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto


class QueueListener:
    """Feeds one queue's messages to one function."""

    def __init__(
        self,
        function: HostedFunction,
        queue: QueueClient,
        poison: QueueClient,
        options: QueueOptions,
        invoke: Invoke,
    ) -> None:
        self.function = function
        self.queue = queue
        self.poison = poison
        self.options = options
        self.invoke = invoke
        self.backoff = Backoff(options.max_polling_interval)
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._capacity = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._poison_ready = False

    @property
    def queue_name(self) -> str:
        return self.queue.queue_name

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name=f"queue:{self.function.name}")

    async def stop(self, grace: float) -> None:
        """Stop polling; let messages in flight finish for up to `grace` seconds."""
        deadline = asyncio.get_running_loop().time() + grace
        self._stopping.set()
        self._capacity.set()
        if self._task is not None:
            _, polling = await asyncio.wait({self._task}, timeout=grace)
            for task in polling:  # stuck in a receive: nothing it fetched has started yet
                task.cancel()
        if self._in_flight:
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.1)
            _, pending = await asyncio.wait(set(self._in_flight), timeout=remaining)
            for task in pending:
                task.cancel()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _receive(self, count: int) -> list[QueueMessage]:
        try:
            return list(self.queue.receive_messages(max_messages=count, visibility_timeout=PROCESSING_VISIBILITY))
        except ResourceNotFoundError:
            return []  # the queue does not exist yet: keep polling, as the real host does

    async def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = await asyncio.to_thread(self._receive, self.options.batch_size)
            except Exception:
                logger.exception("polling queue %s failed", self.queue_name)
                messages = []
            for message in messages:
                task = asyncio.create_task(self._process(message))
                self._in_flight.add(task)
                task.add_done_callback(self._finished)
            while len(self._in_flight) > self.options.new_batch_threshold and not self._stopping.is_set():
                self._capacity.clear()
                await self._capacity.wait()
            await self._sleep(self.backoff.after(bool(messages)))

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._capacity.set()

    async def _process(self, message: QueueMessage) -> None:
        dequeue_count = message.dequeue_count or 1
        if dequeue_count > self.options.max_dequeue_count:
            await self._to_poison(message, "it was dequeued more than maxDequeueCount times")
            return
        try:
            body = decode_body(message.content or "", self.options.message_encoding)
        except (binascii.Error, ValueError):
            await self._to_poison(message, f"its content is not valid {self.options.message_encoding}")
            return
        trigger = QueueTriggerMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body,
            dequeue_count=dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        try:
            await self.invoke(self.function.name, trigger_value(self.function, trigger))
        except Exception:
            await self._failed(message, dequeue_count)
            return
        try:
            await asyncio.to_thread(self.queue.delete_message, message.id, message.pop_receipt)
        except ResourceNotFoundError:
            logger.warning("message %s was gone before it could be deleted", message.id)

    async def _failed(self, message: QueueMessage, dequeue_count: int) -> None:
        if dequeue_count >= self.options.max_dequeue_count:
            await self._to_poison(message, f"it failed {dequeue_count} times (maxDequeueCount)")
            return
        try:
            await asyncio.to_thread(
                self.queue.update_message,
                message.id,
                message.pop_receipt,
                visibility_timeout=int(self.options.visibility_timeout),
            )
        except ResourceNotFoundError:
            logger.warning("message %s was gone before it could be released", message.id)

    def _send_poison(self, content: str) -> None:
        if not self._poison_ready:
            with contextlib.suppress(ResourceExistsError):
                self.poison.create_queue()
            self._poison_ready = True
        self.poison.send_message(content)

    async def _to_poison(self, message: QueueMessage, reason: str) -> None:
        logger.warning(
            "Moving message %s to queue %s: %s",
            message.id,
            self.poison.queue_name,
            reason,
            extra={"function": self.function.name, "message_id": message.id, "dequeue_count": message.dequeue_count},
        )
        await asyncio.to_thread(self._send_poison, message.content or "")
        with contextlib.suppress(ResourceNotFoundError):
            await asyncio.to_thread(self.queue.delete_message, message.id, message.pop_receipt)


class QueueOutputs:
    """Queue output bindings (`queue` type): send what a function set or returned."""

    def __init__(
        self,
        services: Callable[[str | None], QueueServiceClient],
        options: QueueOptions,
        resolve: Callable[[str], str] = lambda name: name,
    ) -> None:
        self.services = services
        self.options = options
        self.resolve = resolve
        self._created: set[tuple[str, str]] = set()

    def _send(self, connection: str | None, queue_name: str, texts: list[str]) -> None:
        client = raw_queue_client(self.services(connection), queue_name)
        if (str(connection), queue_name) not in self._created:
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            self._created.add((str(connection), queue_name))
        for text in texts:
            client.send_message(text)

    async def __call__(self, function: HostedFunction, binding: Mapping[str, Any], value: Any) -> None:
        values = value if isinstance(value, list) else [value]
        texts = [encode_body(item, self.options.message_encoding) for item in values]
        queue_name = self.resolve(str(binding.get("queueName", ""))).lower()
        await asyncio.to_thread(self._send, binding.get("connection"), queue_name, texts)
