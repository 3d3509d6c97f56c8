"""The Durable HTTP API under /runtime/webhooks/durabletask, as the SDK's client and the check-status links use it.

Status codes and payloads follow the real extension's HttpApiHandler: 202 + Location while an instance runs,
410 for events or termination of finished instances, 412 for purging a running one, `x-ms-continuation-token`
for paged listings. Entities, rewind, suspend and resume are not implemented and answer 501.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from devstack.funchost.durable.binding import WEBHOOK_PATH, WebhookUrls
from devstack.funchost.durable.client import ClientError, TaskHubClient
from devstack.funchost.durable.history import friendly_history, parse_timestamp, utc_now
from devstack.funchost.durable.store import InstanceQuery, InstanceRow

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTINUATION_HEADER = "x-ms-continuation-token"
_RUNNING = frozenset({"Running", "Pending", "ContinuedAsNew", "Suspended"})
_STATUS_NAMES = {status.value for status in OrchestrationRuntimeStatus}
NOT_IMPLEMENTED = {
    "rewind": "Rewind is not supported by the local Functions host.",
    "suspend": "Suspend is not supported by the local Functions host.",
    "resume": "Resume is not supported by the local Functions host.",
}
ENTITIES_NOT_IMPLEMENTED = "Durable entities are not supported by the local Functions host."


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"Message": message, "ExceptionMessage": message}, status=status)


def value_text(body: bytes) -> str | None:
    """The JSON text of the value a caller sent.

    The Python SDK serialises inputs and event data itself and aiohttp encodes that text as JSON once more, so
    a JSON string that holds JSON is unwrapped; any other JSON value is taken as the value itself.
    """
    if not body.strip():
        return None
    parsed = json.loads(body)
    if isinstance(parsed, str):
        try:
            json.loads(parsed)
        except ValueError:
            return json.dumps(parsed)
        return parsed
    return json.dumps(parsed)


def _format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def status_payload(
    row: InstanceRow, *, show_input: bool, history: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": row.name,
        "instanceId": row.instance_id,
        "runtimeStatus": row.runtime_status,
        "input": row.input if show_input else None,
        "customStatus": _loads(row.custom_status),
        "output": _loads(row.output),
        "createdTime": _format_time(row.created_time),
        "lastUpdatedTime": _format_time(row.last_updated_time),
    }
    if history is not None:
        payload["historyEvents"] = history
    return payload


def _flag(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    return default if value is None else value.strip().lower() == "true"


def _time(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    if not value:
        return None
    try:
        return parse_timestamp(value.strip().replace(" ", "+"))
    except ValueError as error:
        raise ClientError(400, f"{name} is not a date and time: {value!r}") from error


def _query(request: web.Request) -> InstanceQuery:
    statuses = {
        name.strip()
        for value in request.query.getall("runtimeStatus", [])
        for name in value.split(",")
        if name.strip() in _STATUS_NAMES
    }
    return InstanceQuery(
        runtime_statuses=frozenset(statuses),
        created_from=_time(request, "createdTimeFrom"),
        created_to=_time(request, "createdTimeTo"),
        instance_id_prefix=request.query.get("instanceIdPrefix") or None,
    )


class DurableHttpApi:
    """aiohttp handlers for one task hub."""

    def __init__(self, client: Callable[[], TaskHubClient], connection_name: str) -> None:
        self._client_of = client
        self._connection_name = connection_name

    @property
    def _client(self) -> TaskHubClient:
        return self._client_of()

    def routes(self) -> list[web.RouteDef]:
        base = WEBHOOK_PATH
        return [
            web.post(f"{base}/orchestrators/{{functionName}}", self._guard(self.start)),
            web.post(f"{base}/orchestrators/{{functionName}}/{{instanceId}}", self._guard(self.start)),
            web.get(f"{base}/instances", self._guard(self.list_instances)),
            web.get(f"{base}/instances/", self._guard(self.list_instances)),
            web.delete(f"{base}/instances", self._guard(self.purge_matching)),
            web.delete(f"{base}/instances/", self._guard(self.purge_matching)),
            web.get(f"{base}/instances/{{instanceId}}", self._guard(self.get_status)),
            web.delete(f"{base}/instances/{{instanceId}}", self._guard(self.purge)),
            web.post(f"{base}/instances/{{instanceId}}/raiseEvent/{{eventName}}", self._guard(self.raise_event)),
            web.post(f"{base}/instances/{{instanceId}}/terminate", self._guard(self.terminate)),
            web.post(f"{base}/instances/{{instanceId}}/restart", self._guard(self.restart)),
            web.post(f"{base}/instances/{{instanceId}}/{{operation}}", self._guard(self.not_implemented)),
            web.route("*", f"{base}/entities/{{tail:.*}}", self._guard(self.entities)),
            web.route("*", f"{base}/entities", self._guard(self.entities)),
        ]

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                served = self._client.hub_name
                hub = request.query.get("taskHub")
                if hub and hub.lower() != served.lower():
                    return _error(404, f"Task hub {hub!r} is not served here; this host serves {served!r}.")
                return await handler(request)
            except ClientError as error:
                return _error(error.status, error.message)
            except json.JSONDecodeError as error:
                return _error(400, f"Invalid JSON content: {error}")

        return guarded

    def _urls(self, request: web.Request) -> WebhookUrls:
        origin = f"{request.scheme}://{request.host}"
        return WebhookUrls(origin, self._client.hub_name, self._connection_name)

    def _check_status_response(self, request: web.Request, instance_id: str) -> web.Response:
        links = self._urls(request).management_urls(instance_id)
        payload = {key: links[key] for key in links if key != "rewindPostUri"}
        return web.json_response(
            payload, status=202, headers={"Location": links["statusQueryGetUri"], "Retry-After": "10"}
        )

    async def start(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["functionName"]
        instance_id = request.match_info.get("instanceId") or None
        input_text = value_text(await request.read())
        instance_id = await self._client.start_new(name, instance_id, input_text, request.query.get("version"))
        timeout = request.query.get("timeout")
        interval = request.query.get("pollingInterval")
        if timeout and interval:
            return await self._wait(request, instance_id, float(timeout), float(interval))
        return self._check_status_response(request, instance_id)

    async def _wait(self, request: web.Request, instance_id: str, seconds: float, interval: float) -> web.Response:
        deadline = time.monotonic() + seconds
        while True:
            row = await self._client.get(instance_id)
            if row is not None and row.runtime_status == "Completed":
                return web.json_response(_loads(row.output), status=200)
            if row is not None and row.is_terminal:
                return web.json_response(status_payload(row, show_input=True), status=200)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._check_status_response(request, instance_id)
            await asyncio.sleep(min(interval, remaining))

    async def get_status(self, request: web.Request) -> web.StreamResponse:
        row = await self._client.get(request.match_info["instanceId"])
        if row is None:
            return web.Response(status=404)
        history = None
        if _flag(request, "showHistory", False):
            history = friendly_history(
                await self._client.history(row), show_output=_flag(request, "showHistoryOutput", False)
            )
        payload = status_payload(row, show_input=_flag(request, "showInput", True), history=history)
        if row.runtime_status in _RUNNING:
            return web.json_response(payload, status=202, headers={"Location": str(request.url), "Retry-After": "5"})
        failed_as_500 = row.runtime_status == "Failed" and _flag(request, "returnInternalServerErrorOnFailure", False)
        return web.json_response(payload, status=500 if failed_as_500 else 200)

    async def list_instances(self, request: web.Request) -> web.StreamResponse:
        top_text = request.query.get("top")
        top = int(top_text) if top_text and top_text.isdigit() and int(top_text) > 0 else None
        rows, continuation = await self._client.query(
            _query(request), top, request.headers.get(CONTINUATION_HEADER) or None
        )
        show_input = _flag(request, "showInput", True)
        headers = {CONTINUATION_HEADER: continuation} if continuation else {}
        return web.json_response([status_payload(row, show_input=show_input) for row in rows], headers=headers)

    async def purge(self, request: web.Request) -> web.StreamResponse:
        deleted = await self._client.purge(request.match_info["instanceId"])
        return web.json_response({"instancesDeleted": deleted})

    async def purge_matching(self, request: web.Request) -> web.StreamResponse:
        query = _query(request)
        if query.created_from is None:
            return _error(400, "Please provide value for 'createdTimeFrom' parameter.")
        if query.created_to is None:
            query = InstanceQuery(query.runtime_statuses, query.created_from, utc_now(), query.instance_id_prefix)
        deleted = await self._client.purge_matching(query)
        if deleted == 0:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted})

    async def raise_event(self, request: web.Request) -> web.StreamResponse:
        if request.content_type.lower() != "application/json":
            return _error(400, "Only application/json request content is supported")
        data = value_text(await request.read())
        await self._client.raise_event(request.match_info["instanceId"], request.match_info["eventName"], data)
        return web.json_response(None, status=202)

    async def terminate(self, request: web.Request) -> web.StreamResponse:
        await self._client.terminate(request.match_info["instanceId"], request.query.get("reason"))
        return web.json_response(None, status=202)

    async def restart(self, request: web.Request) -> web.StreamResponse:
        row = await self._client.get(request.match_info["instanceId"])
        if row is None:
            return _error(404, f"No instance with ID '{request.match_info['instanceId']}' found.")
        new_id = None if _flag(request, "restartWithNewInstanceId", True) else row.instance_id
        instance_id = await self._client.start_new(row.name, new_id, row.input, row.version)
        return self._check_status_response(request, instance_id)

    async def not_implemented(self, request: web.Request) -> web.StreamResponse:
        message = NOT_IMPLEMENTED.get(request.match_info["operation"])
        return web.Response(status=404) if message is None else _error(501, message)

    async def entities(self, request: web.Request) -> web.StreamResponse:
        return _error(501, ENTITIES_NOT_IMPLEMENTED)
