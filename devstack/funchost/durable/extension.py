"""The Durable Functions extension of the local Functions host (see `devstack.funchost.extension`).

It owns the orchestration, activity and entity triggers and the durableClient binding, serves the Durable HTTP
API, and runs the task hub's dispatchers while the host runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from devstack.funchost.durable.api import DurableHttpApi
from devstack.funchost.durable.binding import WebhookUrls
from devstack.funchost.durable.client import ClientError, TaskHubClient
from devstack.funchost.durable.functions import (
    ACTIVITY_TRIGGER,
    DURABLE_CLIENT,
    ENTITY_TRIGGER,
    ORCHESTRATION_TRIGGER,
    FunctionCatalog,
)
from devstack.funchost.durable.runtime import DurableRuntime
from devstack.funchost.durable.taskhub import DEFAULT_HUB_NAME, DurableOptions, TaskHub, TaskHubConfigError
from devstack.funchost.extension import HostServices, IndexedFunction

log = logging.getLogger("devstack.funchost.durable")


class DurableExtension:
    """Durable Functions for the local host: orchestrations and activities, persisted in Azure Storage."""

    trigger_types = frozenset({ORCHESTRATION_TRIGGER, ACTIVITY_TRIGGER, ENTITY_TRIGGER})
    binding_types = frozenset({DURABLE_CLIENT})

    def __init__(self, options: DurableOptions | TaskHubConfigError, environ: Mapping[str, str]) -> None:
        self._config_error = options if isinstance(options, TaskHubConfigError) else None
        self.options = options if isinstance(options, DurableOptions) else DurableOptions(DEFAULT_HUB_NAME)
        self._environ = dict(environ)
        self._host: HostServices | None = None
        self._runtime: DurableRuntime | None = None
        self._api = DurableHttpApi(self._client, self.options.connection_name)

    @property
    def runtime(self) -> DurableRuntime:
        if self._runtime is None:
            raise RuntimeError("the Durable extension has not been started")
        return self._runtime

    def _client(self) -> TaskHubClient:
        if self._runtime is None:
            raise ClientError(503, "The Durable Functions extension is not running yet.")
        return self._runtime.client

    def routes(self) -> list[web.RouteDef]:
        return self._api.routes()

    def input_binding_value(self, function: IndexedFunction, binding: Mapping[str, Any]) -> Any:
        if binding.get("type") != DURABLE_CLIENT:
            raise ValueError(f"the Durable extension has no input binding of type {binding.get('type')!r}")
        if self._host is None:
            raise RuntimeError("the Durable extension has not been started")
        hub = binding.get("taskHub")
        if hub and str(hub).lower() != self.options.hub_name.lower():
            served = self.options.hub_name
            log.warning("function %s asks for task hub %s; the local host serves only %s", function.name, hub, served)
        urls = WebhookUrls(self._host.base_url, self.options.hub_name, self.options.connection_name)
        return urls.client_binding()

    async def start(self, host: HostServices) -> None:
        if self._config_error is not None:
            raise self._config_error
        self._host = host
        catalog = FunctionCatalog.index(host.functions)
        for name in sorted(catalog.entities):
            log.warning("entity function %s is not supported by the local host and will not run", name)
        hub = TaskHub.connect(self.options, {**self._environ, **host.environ})
        runtime = DurableRuntime(hub, catalog, host.invoke)
        await runtime.start()
        self._runtime = runtime
        log.info(
            "durable task hub %s: %d orchestrator(s), %d activity function(s)",
            self.options.hub_name,
            len(set(catalog.orchestrators.values())),
            len(set(catalog.activities.values())),
        )

    async def stop(self) -> None:
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            await runtime.stop()
