"""HTTP triggers: route a request to its function, check its key, call it, and convert its response.

Requests become `azure.functions.HttpRequest` (repeated headers and query values joined with commas, as
the host hands them to the worker); the function's return value becomes the response: an
`HttpResponse`, or str/bytes/None/JSON-able values as the worker converts them. An unhandled exception
is a 500 with an empty body; the invoker has logged it, stack trace and invocation id included.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import azure.functions as func
from aiohttp import web

from devstack.funchost.indexing import HostedFunction
from devstack.funchost.invocation import Invoker
from devstack.funchost.routing import MethodNotAllowed, Router, RouteTemplate
from devstack.funchost.state import HostKeys

logger = logging.getLogger("devstack.funchost.http")


def _joined(pairs: Any, lower: bool = False) -> dict[str, str]:
    joined: dict[str, str] = {}
    for key, value in pairs:
        key = key.lower() if lower else key
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def to_request(request: web.Request, route_params: Mapping[str, str], body: bytes) -> func.HttpRequest:
    return func.HttpRequest(
        method=request.method,
        url=f"{request.scheme}://{request.host}{request.raw_path}",  # what str(request.url) gives, cheaper
        headers=_joined(request.headers.items(), lower=True),
        params=_joined(request.query.items()),
        route_params=route_params,
        body=body,
    )


def to_response(result: Any) -> web.Response:
    """The HTTP response for what an HTTP-triggered function returned."""
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers.items())
        if not any(name.lower() == "content-type" for name in headers):
            mimetype = result.mimetype
            text = mimetype.startswith("text/")
            headers["Content-Type"] = f"{mimetype}; charset={result.charset}" if text else mimetype
        return web.Response(status=result.status_code, body=result.get_body(), headers=headers)
    if result is None:
        return web.Response(status=204)
    if isinstance(result, str):
        return web.Response(status=200, text=result, content_type="text/plain")
    if isinstance(result, bytes | bytearray):
        return web.Response(status=200, body=bytes(result), content_type="application/octet-stream")
    return web.Response(status=200, text=json.dumps(result), content_type="application/json")


class HttpTriggers:
    """The app's HTTP-triggered functions behind one aiohttp handler."""

    def __init__(
        self,
        functions: Mapping[str, HostedFunction],
        route_prefix: str,
        keys: HostKeys,
        invoker: Invoker,
        accepting: Callable[[], bool] = lambda: True,
    ) -> None:
        self.keys = keys
        self.invoker = invoker
        self.accepting = accepting
        self.router: Router[tuple[HostedFunction, str]] = Router()
        for function in functions.values():
            if not function.is_http:
                continue
            route = function.trigger.get("route") or function.name
            template = RouteTemplate.compile(str(route), route_prefix)
            level = str(function.trigger.get("authLevel", "function")).lower()
            self.router.add(template, function.trigger.get("methods"), (function, level))

    def _authorized(self, request: web.Request, level: str) -> bool:
        if level == "anonymous":
            return True
        key = request.query.get("code") or request.headers.get("x-functions-key")
        if level == "admin":
            return self.keys.is_master(key)
        return self.keys.opens_function(key)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        found = self.router.match(request.method, request.rel_url.raw_path)
        if found is None:
            return web.Response(status=404)
        if isinstance(found, MethodNotAllowed):
            return web.Response(status=405, headers={"Allow": ", ".join(sorted(found.allowed))})
        function, level = found.target
        if not self._authorized(request, level):
            return web.Response(status=401)
        if not self.accepting():
            return web.Response(status=503, headers={"Retry-After": "1"})
        body = await request.read()
        try:
            result = await self.invoker.invoke(function.name, to_request(request, found.route_params, body))
        except Exception:
            return web.Response(status=500)
        try:
            return to_response(result)
        except Exception:
            logger.exception("function %s returned a value that is not an HTTP response", function.name)
            return web.Response(status=500)
