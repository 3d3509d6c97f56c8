"""The local Functions host: index the app once, serve HTTP, run timers and queues, host extensions.

Start order: app settings and host.json, app import and index, extensions (created when the app uses
their trigger or binding types), the HTTP server, `extension.start(host)`, then timers and queues; the
host reports "Running" at /admin/host/status. Stop order: HTTP functions answer 503, timers and queue
polling stop, in-flight invocations finish (bounded), extensions stop, the HTTP server closes.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from azure.storage.queue import QueueServiceClient

from devstack.funchost.admin import HOST_VERSION, AdminApi
from devstack.funchost.config import (
    HostConfig,
    HostConfigError,
    load_app_settings,
    load_host_config,
    resolve_setting_expressions,
)
from devstack.funchost.extension import HostExtension
from devstack.funchost.http_trigger import HttpTriggers
from devstack.funchost.indexing import HostedFunction, index_functions, load_app
from devstack.funchost.invocation import Invoker
from devstack.funchost.ncrontab import parse_schedule
from devstack.funchost.queues import QueueListener, QueueOutputs, raw_queue_client
from devstack.funchost.state import HostKeys, load_or_create_host_id, load_or_create_keys
from devstack.funchost.storage import ConnectionNotConfigured, storage_connection
from devstack.funchost.timers import BlobScheduleMonitor, TimerListener, monitor_by_default
from verbatim.platform.clients import blob_service, queue_service

logger = logging.getLogger("devstack.funchost")

DEFAULT_EXTENSIONS = ("devstack.funchost.durable",)
BUILT_IN_TRIGGERS = frozenset({"httpTrigger", "timerTrigger", "queueTrigger"})
MAX_REQUEST_BYTES = 100 * 1024 * 1024  # the real host's default request size limit


@dataclass(frozen=True)
class HostOptions:
    script_root: Path
    host: str = "127.0.0.1"
    port: int = 7071
    app: str = "function_app:app"
    state_dir: Path | None = None
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    shutdown_timeout: float = 8.0

    @property
    def resolved_state_dir(self) -> Path:
        return (self.state_dir or self.script_root / ".devstack" / "funchost").resolve()


def load_extension(module_name: str, host_json: Mapping[str, Any], environ: Mapping[str, str]) -> HostExtension | None:
    """The extension a module offers through `create_extension`, or None when there is no such module."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            return None
        raise
    create = getattr(module, "create_extension", None)
    if create is None:
        logger.debug("module %s has no create_extension; not an extension (yet)", module_name)
        return None
    extension: HostExtension = create(host_json, environ)
    return extension


def _uses(extension: HostExtension, function: HostedFunction) -> bool:
    return function.trigger_type in extension.trigger_types or any(
        binding.get("type") in extension.binding_types for binding in function.bindings
    )


@dataclass
class _Runtime:
    """Everything the host builds at start (kept apart so the constructor does no I/O)."""

    config: HostConfig
    keys: HostKeys
    host_id: str
    functions: dict[str, HostedFunction]
    invoker: Invoker
    executor: ThreadPoolExecutor
    extensions: list[HostExtension]
    runner: web.AppRunner
    timers: dict[str, TimerListener] = field(default_factory=dict)
    queues: list[QueueListener] = field(default_factory=list)


class FunctionHost:
    """One local host for one app; implements `devstack.funchost.extension.HostServices`."""

    def __init__(self, options: HostOptions, environ: Mapping[str, str] | None = None) -> None:
        self.options = options
        self._environ_source = environ
        self._settings: dict[str, str] = {}
        self._runtime: _Runtime | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._queue_services: dict[str, QueueServiceClient] = {}
        self._accepting = False
        self._started_at = time.monotonic()
        self.state = "Default"

    # --- HostServices ---

    @property
    def functions(self) -> Mapping[str, HostedFunction]:
        return self._require().functions

    @property
    def environ(self) -> Mapping[str, str]:
        return self._settings

    @property
    def base_url(self) -> str:
        return f"http://{self.options.host}:{self.options.port}"

    async def invoke(self, function_name: str, trigger_value: Any) -> Any:
        return await self._require().invoker.invoke(function_name, trigger_value)

    # --- extras for tests and tools ---

    @property
    def keys(self) -> HostKeys:
        return self._require().keys

    @property
    def host_id(self) -> str:
        return self._require().host_id

    def _require(self) -> _Runtime:
        if self._runtime is None:
            raise RuntimeError("the host has not started")
        return self._runtime

    # --- lifecycle ---

    async def start(self) -> None:
        self.state = "Initializing"
        options = self.options
        script_root = options.script_root.resolve()
        self._settings = load_app_settings(script_root, self._environ_source)
        # The app reads its settings from the environment, as under the real host: local.settings.json
        # values become environment variables unless the environment already has them.
        for name, value in self._settings.items():
            os.environ.setdefault(name, value)
        config = load_host_config(script_root)
        for category, level in config.log_levels.items():
            logging.getLogger(category).setLevel(level)
        state_dir = options.resolved_state_dir
        keys = load_or_create_keys(state_dir, self._settings)
        host_id = load_or_create_host_id(state_dir, script_root, self._settings)
        functions = index_functions(load_app(script_root, options.app))

        extensions = self._load_extensions(config, functions)
        self._warn_unserved(functions, extensions)

        threads = self._settings.get("PYTHON_THREADPOOL_THREAD_COUNT")
        executor = ThreadPoolExecutor(max_workers=int(threads) if threads else None, thread_name_prefix="function")
        invoker = Invoker(
            functions,
            executor,
            function_directory=str(script_root),
            binding_providers={t: ext for ext in extensions for t in ext.binding_types},
            output_sinks={"queue": QueueOutputs(self._queue_service, config.queues, self._resolve)},
        )
        app = self._web_app(config, keys, functions, invoker, extensions)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=options.shutdown_timeout)
        await runner.setup()
        self._runtime = _Runtime(config, keys, host_id, functions, invoker, executor, extensions, runner)
        site = web.TCPSite(runner, options.host, options.port, backlog=1024)
        await site.start()
        self._accepting = True
        logger.info(
            "listening on %s (functions under /%s)", self.base_url, config.route_prefix,
            extra={"functions": sorted(functions), "host_id": host_id},
        )  # fmt: skip
        for extension in extensions:
            await extension.start(self)
        self._start_timers()
        self._start_queues()
        # Everything loaded so far (the app, the SDKs, ~100k objects) lives as long as the process: keep it
        # out of the cyclic GC, whose full collections would otherwise pause every request for ~25 ms.
        gc.freeze()
        self.state = "Running"
        logger.info("host is running", extra={"state": self.state})

    def _load_extensions(self, config: HostConfig, functions: Mapping[str, HostedFunction]) -> list[HostExtension]:
        """The extensions the app uses (one of their trigger or binding types appears in a function)."""
        extensions: list[HostExtension] = []
        for module_name in self.options.extensions:
            extension = load_extension(module_name, config.raw, self._settings)
            if extension is not None and any(_uses(extension, f) for f in functions.values()):
                extensions.append(extension)
        return extensions

    def _web_app(
        self,
        config: HostConfig,
        keys: HostKeys,
        functions: Mapping[str, HostedFunction],
        invoker: Invoker,
        extensions: list[HostExtension],
    ) -> web.Application:
        """Extension routes first, then the admin API, then every other path to the HTTP triggers."""
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        for extension in extensions:
            app.add_routes(extension.routes())
        admin = AdminApi(
            functions=functions,
            keys=keys,
            fire=self._fire,
            status=self.status,
            timer_status=self._timer_status,
            base_url=lambda: self.base_url,
            route_prefix=config.route_prefix,
        )
        app.add_routes(admin.routes())
        http = HttpTriggers(functions, config.route_prefix, keys, invoker, accepting=lambda: self._accepting)
        # Any path, newlines included (a percent-encoded %0A decodes into the match path): the real host routes
        # such a request to the function and lets it answer.
        app.router.add_route("*", r"/{tail:[\s\S]*}", http.handle)
        return app

    async def stop(self) -> None:
        runtime = self._runtime
        if runtime is None or self.state in ("Stopping", "Stopped"):
            return
        self.state = "Stopping"
        self._accepting = False
        timeout = self.options.shutdown_timeout
        deadline = time.monotonic() + timeout
        listeners: list[TimerListener | QueueListener] = [*runtime.timers.values(), *runtime.queues]
        await asyncio.gather(*(listener.stop(timeout) for listener in listeners))
        if self._background:
            await asyncio.wait(set(self._background), timeout=max(deadline - time.monotonic(), 0.1))
        if not await runtime.invoker.wait_idle(max(deadline - time.monotonic(), 0.1)):
            logger.warning("%d invocation(s) still running at shutdown", runtime.invoker.in_flight)
        for extension in runtime.extensions:
            try:
                await extension.stop()
            except Exception:
                logger.exception("extension %s failed to stop", type(extension).__name__)
        await runtime.runner.cleanup()
        runtime.executor.shutdown(wait=False, cancel_futures=True)
        self.state = "Stopped"
        logger.info("host stopped")

    def status(self) -> dict[str, Any]:
        runtime = self._runtime
        return {
            "id": runtime.host_id if runtime else None,
            "state": self.state,
            "version": HOST_VERSION,
            "processUptime": int((time.monotonic() - self._started_at) * 1000),
            "functions": sorted(runtime.functions) if runtime else [],
            "extensionBundle": (runtime.config.raw.get("extensionBundle") if runtime else None),
        }

    # --- helpers ---

    def _resolve(self, text: str) -> str:
        return resolve_setting_expressions(text, self._settings)

    def _queue_service(self, connection: str | None) -> QueueServiceClient:
        key = connection or "AzureWebJobsStorage"
        if key not in self._queue_services:
            self._queue_services[key] = queue_service(storage_connection(key, self._settings))
        return self._queue_services[key]

    def _warn_unserved(self, functions: Mapping[str, HostedFunction], extensions: list[HostExtension]) -> None:
        handled = set(BUILT_IN_TRIGGERS).union(*(ext.trigger_types for ext in extensions))
        bound = {"http", "queue"}.union(*(ext.binding_types for ext in extensions))
        for function in functions.values():
            if function.trigger_type not in handled:
                logger.warning(
                    "function %s has a %s trigger, which this local host does not run",
                    function.name,
                    function.trigger_type,
                )
            for binding in function.bindings:
                if binding is not function.trigger and binding.get("type") not in bound:
                    logger.warning(
                        "function %s: %s binding %r is not supported locally (it gets None)",
                        function.name,
                        binding.get("type"),
                        binding.get("name"),
                    )

    def _fire(self, function: HostedFunction, trigger_value: Any) -> None:
        task = asyncio.create_task(self.invoke(function.name, trigger_value))
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # already logged by the invoker; retrieve it so asyncio does not warn

    def _timer_status(self, name: str) -> Mapping[str, str] | None:
        listener = self._require().timers.get(name)
        return listener.status.to_json() if listener and listener.status and listener.monitor else None

    def _start_timers(self) -> None:
        runtime = self._require()
        zone_name = self._settings.get("WEBSITE_TIME_ZONE")
        zone: tzinfo = ZoneInfo(zone_name) if zone_name else UTC
        monitor: BlobScheduleMonitor | None = None
        for function in runtime.functions.values():
            if function.trigger_type != "timerTrigger":
                continue
            try:
                schedule = parse_schedule(self._resolve(str(function.trigger.get("schedule", ""))), zone)
                default_monitor = monitor_by_default(schedule, datetime.now(UTC))
            except HostConfigError as error:
                # As in the real host, one broken timer is an error of that function, not of the host.
                logger.error("timer %s is not scheduled: %s", function.name, error, extra={"function": function.name})
                continue
            use_monitor = function.trigger.get("useMonitor")
            if use_monitor is None:
                use_monitor = default_monitor
            if use_monitor and monitor is None:
                monitor = self._schedule_monitor(runtime.host_id)
            listener = TimerListener(
                function,
                schedule,
                self.invoke,
                monitor if use_monitor else None,
                run_on_startup=bool(function.trigger.get("runOnStartup", False)),
            )
            runtime.timers[function.name] = listener
            listener.start()

    def _schedule_monitor(self, host_id: str) -> BlobScheduleMonitor | None:
        try:
            connection = storage_connection("AzureWebJobsStorage", self._settings)
        except ConnectionNotConfigured:
            logger.warning("AzureWebJobsStorage is not set: timers run without their schedule monitor")
            return None
        return BlobScheduleMonitor(blob_service(connection), host_id)

    def _start_queues(self) -> None:
        runtime = self._require()
        for function in runtime.functions.values():
            if function.trigger_type != "queueTrigger":
                continue
            queue_name = self._resolve(str(function.trigger.get("queueName", ""))).lower()
            connection = function.trigger.get("connection")
            service = self._queue_service(connection)
            listener = QueueListener(
                function,
                raw_queue_client(service, queue_name),
                raw_queue_client(service, f"{queue_name}-poison"),
                runtime.config.queues,
                self.invoke,
            )
            runtime.queues.append(listener)
            listener.start()


async def serve(options: HostOptions, stop_signal: asyncio.Event, on_started: Callable[[], None] | None = None) -> None:
    """Run a host until `stop_signal` is set, then shut it down gracefully."""
    host = FunctionHost(options)
    try:
        await host.start()
        if on_started is not None:
            on_started()
        await stop_signal.wait()
    finally:
        await host.stop()
