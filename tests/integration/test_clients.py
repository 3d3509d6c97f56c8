"""The client factories against a real Azurite."""

from __future__ import annotations

import base64

from azure.storage.queue import QueueClient

from verbatim.platform import clients
from verbatim.platform.settings import Settings


def test_queue_messages_are_base64_on_the_wire_as_the_functions_queue_trigger_expects(azurite_env: Settings) -> None:
    connection = azurite_env.runtime_storage_connection
    queue = clients.queue_service(connection).get_queue_client("factory-encoding")
    queue.create_queue()
    queue.send_message('{"hello": "wörld"}')

    assert connection.connection_string is not None
    raw = QueueClient.from_connection_string(connection.connection_string.get_secret_value(), "factory-encoding")
    (message,) = list(raw.peek_messages())
    assert base64.b64decode(message.content).decode() == '{"hello": "wörld"}'
    assert next(iter(queue.receive_messages())).content == '{"hello": "wörld"}'
