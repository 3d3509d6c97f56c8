"""Helpers shared by the call-record tests: trigger handlers, HTTP requests, queue and Cosmos peeks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import azure.functions as func

from verbatim.platform import clients
from verbatim.platform.settings import Settings

SECRET = "client-state-secret-for-tests"
TENANT = "dc368399-474c-4d40-900c-6265431fd81f"


def handler(builder: Any) -> Callable[..., Any]:
    """The user function behind a decorated trigger (a FunctionBuilder at module level)."""
    function: Callable[..., Any] = builder._function.get_user_function()
    return function


def post(
    route: str,
    body: bytes | dict[str, Any] | str = b"",
    *,
    content_type: str | None = "application/json",
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> func.HttpRequest:
    data = json.dumps(body).encode() if isinstance(body, dict) else body.encode() if isinstance(body, str) else body
    all_headers = dict(headers or {})
    if content_type:
        all_headers["content-type"] = content_type
    return func.HttpRequest(
        method="POST", url=f"http://localhost/api/{route}", headers=all_headers, params=params or {}, body=data
    )


def get(
    route: str,
    *,
    params: dict[str, str] | None = None,
    token: str | None = None,
    route_params: dict[str, str] | None = None,
) -> func.HttpRequest:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return func.HttpRequest(
        method="GET",
        url=f"http://localhost/api/{route}",
        headers=headers,
        params=params or {},
        route_params=route_params or {},
        body=b"",
    )


def queue_messages(settings: Settings, queue: str) -> list[dict[str, Any]]:
    """Every visible message on the queue (peeked, left in place)."""
    client = clients.queue_client(settings.runtime_storage_connection, queue)
    return [json.loads(m.content) for m in client.peek_messages(max_messages=32)]


def drain(settings: Settings, queue: str) -> list[dict[str, Any]]:
    client = clients.queue_client(settings.runtime_storage_connection, queue)
    found = []
    while batch := list(client.receive_messages(max_messages=32, visibility_timeout=60)):
        for message in batch:
            found.append(json.loads(message.content))
            client.delete_message(message)
    return found


def cosmos_items(settings: Settings, container: str, sql: str = "SELECT * FROM c") -> list[dict[str, Any]]:
    database = clients.cosmos_database(settings)
    return list(database.get_container_client(container).query_items(sql, enable_cross_partition_query=True))


def notification_body(
    record_ids: list[str], *, secret: str = SECRET, subscription: str = "sub-1", tenant: str = TENANT
) -> dict[str, Any]:
    return {
        "value": [
            {
                "subscriptionId": subscription,
                "clientState": secret,
                "changeType": "created",
                "resource": f"communications/callRecords/{rid}",
                "subscriptionExpirationDateTime": "2030-01-01T00:00:00.000+00:00",
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.callRecord",
                    "@odata.id": f"communications/callRecords/{rid}",
                    "id": rid,
                },
                "tenantId": tenant,
            }
            for rid in record_ids
        ]
    }
