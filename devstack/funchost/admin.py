"""The real host's admin API, the parts a developer and `verbatim-dev up` use.

- `POST /admin/functions/{name}` with `{"input": "..."}` (master key) fires a non-HTTP function in the
  background and answers 202: a timer gets a `TimerRequest`, a queue function a `QueueMessage` whose
  body is the input, any other trigger the input string itself.
- `GET /admin/host/status` answers `{"state": "Running", ...}` with 200 once the host is ready (503 with
  the state until then). Unlike the real host it needs no key: it is the readiness probe, the host
  listens on loopback only, and it reveals nothing secret.
- `GET /admin/host/ping` (anonymous) and `GET /admin/functions` (master key, the indexed functions).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from devstack.funchost.indexing import HostedFunction
from devstack.funchost.queues import trigger_value as queue_trigger_value
from devstack.funchost.state import HostKeys

HOST_VERSION = "4.x (verbatim local host)"


def admin_trigger_value(function: HostedFunction, text: str, timer_status: Mapping[str, str] | None = None) -> Any:
    """What an admin invocation binds to the function's trigger parameter."""
    now = datetime.now(UTC)
    if function.trigger_type == "timerTrigger":
        return TimerRequest(past_due=False, schedule_status=dict(timer_status or {}), schedule={"AdjustForDST": True})
    if function.trigger_type == "queueTrigger":
        message = QueueMessage(  # type: ignore[no-untyped-call]
            id=str(uuid.uuid4()),
            body=text.encode("utf-8"),
            dequeue_count=1,
            insertion_time=now,
            expiration_time=now + timedelta(days=7),
            time_next_visible=now,
            pop_receipt=None,
        )
        return queue_trigger_value(function, message)
    return text


@dataclass
class AdminApi:
    """Routes under /admin; the host passes in what they need."""

    functions: Mapping[str, HostedFunction]
    keys: HostKeys
    fire: Callable[[HostedFunction, Any], None]
    status: Callable[[], dict[str, Any]]
    timer_status: Callable[[str], Mapping[str, str] | None]
    base_url: Callable[[], str]
    route_prefix: str

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/admin/functions/{name}", self.invoke),
            web.get("/admin/functions", self.list_functions),
            web.get("/admin/host/status", self.host_status),
            web.get("/admin/host/ping", self.ping),
            web.post("/admin/host/ping", self.ping),
        ]

    def _is_master(self, request: web.Request) -> bool:
        return self.keys.is_master(request.headers.get("x-functions-key") or request.query.get("code"))

    def _find(self, name: str) -> HostedFunction | None:
        return next((f for f in self.functions.values() if f.name.lower() == name.lower()), None)

    async def invoke(self, request: web.Request) -> web.Response:
        if not self._is_master(request):
            return web.Response(status=401)
        function = self._find(request.match_info["name"])
        if function is None:
            return web.json_response({"error": f"no function named {request.match_info['name']!r}"}, status=404)
        if function.is_http:
            return web.json_response({"error": "HTTP-triggered functions are invoked over HTTP"}, status=400)
        raw = await request.read()
        try:
            document = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return web.json_response({"error": 'the body must be JSON: {"input": "..."}'}, status=400)
        text = document.get("input", "") if isinstance(document, dict) else ""
        if not isinstance(text, str):
            text = json.dumps(text)
        self.fire(function, admin_trigger_value(function, text, self.timer_status(function.name)))
        return web.Response(status=202)

    async def list_functions(self, request: web.Request) -> web.Response:
        if not self._is_master(request):
            return web.Response(status=401)
        listing = []
        for function in self.functions.values():
            entry: dict[str, Any] = {"name": function.name, "config": {"bindings": function.bindings}}
            if function.is_http:
                route = function.trigger.get("route") or function.name
                prefix = f"/{self.route_prefix}" if self.route_prefix else ""
                entry["invoke_url_template"] = f"{self.base_url()}{prefix}/{route}"
            listing.append(entry)
        return web.json_response(listing)

    async def host_status(self, request: web.Request) -> web.Response:
        status = self.status()
        return web.json_response(status, status=200 if status["state"] == "Running" else 503)

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(status=200)
