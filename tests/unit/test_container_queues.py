"""The composition root's asyncio queue clients: one per queue name and event loop. Keyed by the loop alone,
the first webhook to send on a loop (call records) handed its queue to the next (chat messages), whose
messages then went to the call-record ingestion (seen end to end: tests/e2e/test_recorded_calls.py)."""

from __future__ import annotations

import asyncio

from verbatim.platform.settings import Settings
from verbatim.wiring import Container

AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "QueueEndpoint=http://127.0.0.1:1/devstoreaccount1;"
)


def test_each_queue_name_has_its_own_async_client_per_loop() -> None:
    container = Container(Settings.model_validate({"AzureWebJobsStorage": AZURITE}))

    async def clients() -> tuple[object, object, object]:
        return (
            container.async_queue("callrecord-notifications"),
            container.async_queue("chat-messages"),
            container.async_queue("chat-messages"),
        )

    calls, chats, chats_again = asyncio.run(clients())
    assert calls is not chats and chats is chats_again
    assert calls._client.queue_name == "callrecord-notifications"  # type: ignore[attr-defined]
    assert chats._client.queue_name == "chat-messages"  # type: ignore[attr-defined]
    # a new loop gets new clients (aio clients are bound to their loop)
    (_, chats_on_another_loop, _) = asyncio.run(clients())
    assert chats_on_another_loop is not chats
