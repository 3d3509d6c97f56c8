"""The queues call-record processing writes to, behind a two-method port (Azure Storage queues, or memory)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient as AsyncQueueClient

from verbatim.platform.clients import connection_url, http_settings
from verbatim.platform.errors import DependencyUnavailable
from verbatim.platform.settings import StorageConnection

MAX_VISIBILITY_DELAY = 7 * 24 * 3600 - 60  # Azure Storage queues: at most 7 days


class MessageQueue(Protocol):
    def send(self, body: str, delay_seconds: int = 0) -> None:
        """Enqueue `body`; it becomes visible after `delay_seconds`. `DependencyUnavailable` on failure."""


class StorageQueue:
    """An Azure Storage queue (base64 text, as the Functions queue trigger reads it).

    The SDK's default retry policy (10 retries, the first after 15 s) can keep a send going for more than
    a minute; the webhook must answer Graph within 3 seconds. Each send here is bounded (`retries`, short
    timeouts) and a failure surfaces as `DependencyUnavailable`, so the caller's own retry takes over.
    """

    def __init__(
        self, client: QueueClient, *, retries: int = 1, connect_timeout: float = 2.0, read_timeout: float = 5.0
    ) -> None:
        self._client = client
        self._retries = retries
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout

    @property
    def name(self) -> str:
        return str(self._client.queue_name)

    def send(self, body: str, delay_seconds: int = 0) -> None:
        delay = max(0, min(int(delay_seconds), MAX_VISIBILITY_DELAY))
        try:
            self._client.send_message(
                body,
                visibility_timeout=delay or None,
                timeout=int(self._read_timeout) or 1,
                retry_total=self._retries,
                connection_timeout=self._connect_timeout,
                read_timeout=self._read_timeout,
            )
        except AzureError as error:
            raise DependencyUnavailable(f"could not enqueue on {self.name}: {type(error).__name__}") from error


class AsyncMessageQueue(Protocol):
    async def send(self, body: str, delay_seconds: int = 0) -> None:
        """Enqueue `body` without blocking the event loop; `DependencyUnavailable` on failure."""


def async_queue_client(connection: StorageConnection, queue_name: str) -> AsyncQueueClient:
    """An asyncio client for one queue, speaking base64 text like the sync factory in `verbatim.platform.clients`.
    Bound to the event loop it is first used on."""
    encode, decode = TextBase64EncodePolicy(), TextBase64DecodePolicy()
    if connection.connection_string is not None:
        secret = connection.connection_string.get_secret_value()
        return AsyncQueueClient.from_connection_string(
            secret,
            queue_name,
            message_encode_policy=encode,
            message_decode_policy=decode,
            # read once, not on every request; CAs from OpenSSL's defaults (see http_settings)
            **http_settings(connection_url(secret, "queue"), ca=False),
        )
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    credential = (
        ManagedIdentityCredential(client_id=connection.client_id)
        if connection.client_id
        else DefaultAzureCredential(exclude_interactive_browser_credential=True)
    )
    return AsyncQueueClient(
        connection.service_uri("queue"),
        queue_name,
        credential=credential,
        message_encode_policy=encode,
        message_decode_policy=decode,
        **http_settings(connection.service_uri("queue"), ca=False),
    )


class AsyncStorageQueue:
    """`StorageQueue` for asyncio code (the webhook): same bounded sends, no thread."""

    def __init__(
        self, client: AsyncQueueClient, *, retries: int = 0, connect_timeout: float = 1.0, read_timeout: float = 2.0
    ) -> None:
        self._client = client
        self._retries = retries
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout

    async def send(self, body: str, delay_seconds: int = 0) -> None:
        delay = max(0, min(int(delay_seconds), MAX_VISIBILITY_DELAY))
        try:
            await self._client.send_message(
                body,
                visibility_timeout=delay or None,
                timeout=int(self._read_timeout) or 1,
                retry_total=self._retries,
                connection_timeout=self._connect_timeout,
                read_timeout=self._read_timeout,
            )
        except AzureError as error:
            raise DependencyUnavailable(f"could not enqueue: {type(error).__name__}") from error


@dataclass
class InMemoryQueue:
    """For unit tests: messages with their delays, in order."""

    messages: list[tuple[str, int]] = field(default_factory=list)
    fail: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, body: str, delay_seconds: int = 0) -> None:
        if self.fail:
            raise DependencyUnavailable("queue unavailable (test)")
        with self._lock:
            self.messages.append((body, delay_seconds))

    def bodies(self) -> list[str]:
        return [body for body, _ in self.messages]


@dataclass
class InMemoryAsyncQueue:
    """The async flavour of `InMemoryQueue`, for unit tests of the webhook."""

    inner: InMemoryQueue = field(default_factory=InMemoryQueue)

    async def send(self, body: str, delay_seconds: int = 0) -> None:
        self.inner.send(body, delay_seconds)
