"""A host extension for tests of the seam (devstack/funchost/extension.py), standing in for Durable.

It owns the `echoTrigger` trigger type and the `greeting` input binding type, serves
POST /runtime/webhooks/echo/{function} (invokes that function with the request body through the host)
and records start/stop in the file named by FAKE_EXTENSION_LOG.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web

from devstack.funchost.extension import HostExtension, HostServices, IndexedFunction


class EchoExtension:
    trigger_types = frozenset({"echoTrigger"})
    binding_types = frozenset({"greeting"})

    def __init__(self, host_json: Mapping[str, Any], environ: Mapping[str, str]) -> None:
        self.greeting = str(host_json.get("extensions", {}).get("echo", {}).get("greeting", "Hello"))
        self.log_path = environ["FAKE_EXTENSION_LOG"]
        self.host: HostServices | None = None

    def _record(self, **fields: Any) -> None:
        with open(self.log_path, "a", encoding="utf-8") as file:
            file.write(json.dumps(fields) + "\n")

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/runtime/webhooks/echo/{function}", self._echo)]

    async def _echo(self, request: web.Request) -> web.Response:
        assert self.host is not None
        result = await self.host.invoke(request.match_info["function"], await request.text())
        return web.json_response(result)

    def input_binding_value(self, function: IndexedFunction, binding: Mapping[str, Any]) -> Any:
        return f"{self.greeting} ({function.name}/{binding['name']})"

    async def start(self, host: HostServices) -> None:
        self.host = host
        async with aiohttp.ClientSession() as session, session.get(f"{host.base_url}/admin/host/ping") as response:
            listening = response.status == 200
        self._record(
            event="start",
            listening=listening,
            functions={name: f.trigger_type for name, f in host.functions.items()},
            has_app_setting="FAKE_EXTENSION_LOG" in host.environ,
        )

    async def stop(self) -> None:
        self._record(event="stop")


def create_extension(host_json: Mapping[str, Any], environ: Mapping[str, str]) -> HostExtension:
    return EchoExtension(host_json, environ)
