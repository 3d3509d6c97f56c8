"""Builds the recorder from settings and runs it until SIGTERM/SIGINT, then shuts down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import web

from recorder_vm.calls_api import CallsApi, CallsApiError, GraphCallsApi, RecordingStatus, RejectReason
from recorder_vm.capture.engine import CaptureEngine
from recorder_vm.capture.spill import SpillBuffer
from recorder_vm.capture.storage import (
    AzureAsyncRecordingStore,
    AzureRecordingStore,
    StorageUnavailable,
    async_blob_service,
)
from recorder_vm.collector import freeze_startup_objects
from recorder_vm.event_log import add_event_log_handler
from recorder_vm.events import EventPublisher, QueueSink
from recorder_vm.http import create_app
from recorder_vm.media import MediaPlatform, create_media_platform
from recorder_vm.metrics import CallMetricsPublisher
from recorder_vm.platform_auth import PlatformTokenValidator
from recorder_vm.scale_in import ScaleInProtection
from recorder_vm.scheduled_events import ScheduledEventsWatcher
from recorder_vm.service import Recorder
from recorder_vm.settings import RecorderSettings
from recorder_vm.tls import TlsReloader
from verbatim.contracts.recorder import CaptureProgress
from verbatim.evidence.progress import progress_table, write_progress
from verbatim.graph import GraphCredentials
from verbatim.platform.auth import TokenValidator
from verbatim.platform.clients import blob_service, credential_for, queue_client, table_service
from verbatim.platform.logging import configure_logging

log = logging.getLogger(__name__)


class UnconfiguredCallsApi:
    """Stands in when GRAPH_CLIENT_ID / GRAPH_CLIENT_SECRET are missing: every request fails clearly."""

    async def _fail(self) -> None:
        raise CallsApiError("Graph is not configured (GRAPH_CLIENT_ID / GRAPH_CLIENT_SECRET)")

    async def answer(self, tenant_id: str, call_id: str, body: dict[str, Any]) -> None:
        await self._fail()

    async def reject(self, tenant_id: str, call_id: str, reason: RejectReason, callback_uri: str | None) -> None:
        await self._fail()

    async def update_recording_status(
        self, tenant_id: str, call_id: str, status: RecordingStatus, client_context: str
    ) -> None:
        await self._fail()

    async def keep_alive(self, tenant_id: str, call_id: str) -> None:
        await self._fail()

    async def hang_up(self, tenant_id: str, call_id: str) -> None:
        await self._fail()

    async def prepare(self, tenant_id: str) -> None:
        return None

    async def warm(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def calls_api_from(settings: RecorderSettings) -> CallsApi:
    if not settings.graph_configured or settings.graph_client_secret is None or settings.bot_app_id is None:
        log.warning("Graph is not configured: invitations cannot be answered")
        return UnconfiguredCallsApi()
    credentials = GraphCredentials(
        client_id=settings.bot_app_id,
        client_secret=settings.graph_client_secret.get_secret_value(),
        authority_host=settings.graph_authority_host,
        scope=settings.graph_scope,
        verify=settings.graph_ca_cert or True,
    )
    return GraphCallsApi(
        base_url=settings.graph_base_url,
        credentials=credentials,
        verify=settings.graph_ca_cert or True,
        timeout_seconds=settings.answer_budget_seconds,
    )


@dataclass
class Runtime:
    """Everything a running recorder holds, so tests can build it in-process too."""

    settings: RecorderSettings
    recorder: Recorder
    media: MediaPlatform
    calls: CallsApi
    validator: PlatformTokenValidator
    http: httpx.AsyncClient
    app: web.Application


def progress_sink(settings: RecorderSettings) -> Any:
    service = table_service(settings.runtime_storage_connection)
    table: list[Any] = []
    options = {"retry_total": 0, "connection_timeout": 2.0, "read_timeout": settings.storage_timeout_seconds}

    def sink(progress: CaptureProgress) -> None:
        if not table:
            table.append(progress_table(service))
        write_progress(table[0], progress, **options)

    return sink


async def build(
    settings: RecorderSettings, *, calls: CallsApi | None = None, media: MediaPlatform | None = None
) -> Runtime:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = AzureRecordingStore(
        blob_service(settings.recordings_storage_connection),
        settings.captures_container,
        timeout_seconds=settings.storage_timeout_seconds,
        instance_id=settings.instance_id,
    )
    try:
        await asyncio.to_thread(store.ensure_container)
    except StorageUnavailable as error:
        log.warning("recordings storage unreachable at start-up; captures will spill", extra={"error": str(error)})
    publisher = EventPublisher(
        settings.outbox_path,
        QueueSink(
            queue_client(settings.runtime_storage_connection, settings.recorder_events_queue),
            timeout_seconds=settings.storage_timeout_seconds,
        ),
    )
    publisher.start()
    spill = SpillBuffer(settings.spill_path, settings.spill_max_bytes)
    capture_engine = CaptureEngine(
        store_factory=lambda: AzureAsyncRecordingStore(
            async_blob_service(settings.recordings_storage_connection),
            settings.captures_container,
            timeout_seconds=settings.storage_timeout_seconds,
            instance_id=settings.instance_id,
        ),
        spill=spill,
        block_seconds=settings.block_seconds,
    )
    capture_engine.start()
    media = media or create_media_platform(settings)
    await media.start()
    calls = calls or calls_api_from(settings)
    if settings.graph_tenant_id:
        try:
            await calls.prepare(settings.graph_tenant_id)
        except Exception as error:  # a token now only saves time later
            log.warning("could not fetch a Graph token at start-up", extra={"error": type(error).__name__})
    try:
        await calls.warm()  # the Graph connections every tenant's answers share, open before the first invitation
    except Exception as error:  # warm connections only save time later
        log.warning("could not open the Graph connections at start-up", extra={"error": type(error).__name__})
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=5.0), verify=settings.platform_ca_cert or settings.graph_ca_cert or True
    )
    validator = PlatformTokenValidator(
        openid_config_url=settings.platform_openid_config_url,
        audience=settings.bot_app_id or "",
        issuers=settings.platform_issuers,
        tenants=settings.tenant_ids,
        http=http,
        refresh_seconds=settings.platform_keys_refresh_seconds,
        leeway_seconds=settings.platform_leeway_seconds,
    )
    recorder = Recorder(
        settings,
        calls=calls,
        media=media,
        store=store,
        publisher=publisher,
        capture_engine=capture_engine,
        progress_sink=progress_sink(settings),
    )
    publisher.hold = recorder.answers_waiting  # answers go first (recorder_vm.events)
    recorder.start()
    control = control_validator(settings)
    runtime = Runtime(settings, recorder, media, calls, validator, http, create_app(recorder, validator, control))
    return runtime


def control_validator(settings: RecorderSettings) -> TokenValidator | None:
    """Who may ask this recorder about its captures: tokens of the tenant for our API (the lifecycle's)."""
    if not settings.control_openid_config_url or not settings.control_audience:
        log.warning("AUTH_OPENID_CONFIG_URL / AUTH_AUDIENCE unset: the lifecycle cannot ask about captures")
        return None
    return TokenValidator(
        openid_config_url=settings.control_openid_config_url,
        audiences=[a.strip() for a in settings.control_audience.split(",") if a.strip()],
        ca_cert=settings.control_ca_cert,
    )


async def serve(settings: RecorderSettings) -> None:
    runtime = await build(settings)
    # What was built to start lives as long as the process (recorder_vm.collector). Here, in the process's own entry,
    # not in `build`: a recorder built inside another process (the tests' in-process recorders) must not freeze
    # that process's objects.
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # Windows: the service wrapper sends CTRL_BREAK instead
            loop.add_signal_handler(signum, stop.set)
    background: list[asyncio.Task[Any]] = [asyncio.create_task(_refresh_keys(runtime.validator))]
    if settings.scheduled_events_enabled:
        watcher = ScheduledEventsWatcher(
            url=settings.scheduled_events_url,
            instance_name=settings.instance_id,
            http=runtime.http,
            drain=runtime.recorder.drain,
            settled=runtime.recorder.settled,
            poll_seconds=settings.scheduled_events_poll_seconds,
        )
        background.append(asyncio.create_task(watcher.run()))
    if settings.vm_resource_id:
        protection = ScaleInProtection(
            vm_resource_id=settings.vm_resource_id,
            credential=credential_for(settings.azure_client_id),
            http=runtime.http,
            # protected while it holds a call, an undelivered event or a spilled block (Recorder.settled)
            active_calls=lambda: runtime.recorder.active_calls or (0 if runtime.recorder.settled() else 1),
            arm_endpoint=settings.arm_endpoint,
            release_after=settings.scale_in_release_seconds,
        )
        background.append(asyncio.create_task(protection.run()))
    if settings.metrics_endpoint and settings.metrics_resource_id:
        publisher = CallMetricsPublisher(
            endpoint=settings.metrics_endpoint,
            resource_id=settings.metrics_resource_id,
            instance=settings.instance_id,
            credential=credential_for(settings.azure_client_id),
            http=runtime.http,
            active_calls=lambda: runtime.recorder.active_calls,
        )
        background.append(asyncio.create_task(publisher.run()))
    runner = web.AppRunner(runtime.app, access_log=None, handle_signals=False)
    await runner.setup()
    ssl_context = None
    if settings.tls_cert_file:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
        if settings.tls_key_file:
            # A renewed certificate (renew-certificate.ps1 rewrites the PEM files) is served without a restart.
            background.append(
                asyncio.create_task(TlsReloader(ssl_context, settings.tls_cert_file, settings.tls_key_file).run())
            )
    for port in dict.fromkeys(p for p in (settings.listen_port, settings.callback_listen_port) if p):
        await web.TCPSite(runner, settings.listen_host, port, ssl_context=ssl_context).start()
    if settings.admin_port:
        await web.TCPSite(runner, "127.0.0.1", settings.admin_port).start()
    log.info(
        "recorder listening",
        extra={
            "address": f"{settings.listen_host}:{settings.listen_port}",
            "callback_uri": settings.callback_uri,
            "media_platform": settings.media_platform,
            "instance": settings.instance_id,
        },
    )
    requested: asyncio.Event = runtime.app["shutdown"]
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(requested.wait())]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    log.info("shutting down: committing what was captured")
    await runtime.recorder.shutdown(settings.shutdown_grace_seconds)
    for task in background:
        task.cancel()
    await runner.cleanup()
    await runtime.media.stop()
    await runtime.calls.aclose()
    await runtime.http.aclose()
    log.info("recorder stopped")


async def _refresh_keys(validator: PlatformTokenValidator) -> None:
    while True:
        try:
            await validator.refresh()
        except Exception as error:  # the next request retries; keep the loop alive
            log.warning("platform keys not refreshed", extra={"error": type(error).__name__})
            await asyncio.sleep(30)
            continue
        await asyncio.sleep(3600)


def run(settings: RecorderSettings) -> int:
    configure_logging(settings.log_level)
    add_event_log_handler(settings.event_log_level)
    asyncio.run(serve(settings))
    return 0
