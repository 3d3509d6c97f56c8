"""The seam between the local Functions host and the extensions it hosts (Durable Functions).

The host indexes `function_app.app`, serves HTTP, timers and queues itself, and hands every trigger or
input binding type it does not know to an extension. An extension gets the host's services when it
starts and contributes HTTP routes (e.g. the Durable HTTP API under /runtime/webhooks/durabletask).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import web


class IndexedFunction(Protocol):
    """One function of the app as the host indexed it."""

    name: str
    trigger_type: str  # e.g. "httpTrigger", "orchestrationTrigger", "activityTrigger"
    trigger: Mapping[str, Any]  # the trigger binding as in function.json (camelCase keys)
    bindings: list[Mapping[str, Any]]  # every binding as in function.json, the trigger included


class HostServices(Protocol):
    """What the host offers an extension."""

    @property
    def functions(self) -> Mapping[str, IndexedFunction]: ...

    @property
    def environ(self) -> Mapping[str, str]:
        """The app settings the app runs with."""
        ...

    @property
    def base_url(self) -> str:
        """e.g. http://127.0.0.1:7071 — where the host's own HTTP server listens."""
        ...

    async def invoke(self, function_name: str, trigger_value: Any) -> Any:
        """Run a user function with `trigger_value` bound to its trigger parameter.

        Other input bindings the function declares (e.g. durableClient) are filled in by the extension
        that owns them (`HostExtension.input_binding_value`). Sync functions run in the host's thread pool,
        async ones on its loop, as the Python worker does. Returns the function's return value; raises
        what it raises.
        """
        ...


class HostExtension(Protocol):
    """An extension: owns some trigger and binding types, may add HTTP routes and background work."""

    trigger_types: frozenset[str]
    binding_types: frozenset[str]

    def routes(self) -> list[web.RouteDef]: ...

    def input_binding_value(self, function: IndexedFunction, binding: Mapping[str, Any]) -> Any:
        """The value the host passes for an input binding of a type this extension owns."""
        ...

    async def start(self, host: HostServices) -> None: ...

    async def stop(self) -> None: ...
