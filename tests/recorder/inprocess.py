"""A recorder built in the test's own process (`recorder_vm.app.build`), for what a separate process cannot
show: the windows media adapter over a fake `clr`. Everything else is real: Azurite for the evidence and the
events queue, the test-side Teams platform for tokens and Graph, HTTP on a loopback port."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from azure.core.exceptions import ResourceNotFoundError

from devstack.processes import free_port
from devstack.testkit.teams_platform import FakePlatform
from recorder_vm.app import Runtime, build
from recorder_vm.media.base import MediaPlatform
from recorder_vm.settings import RecorderSettings
from tests.conftest import Azurite
from verbatim.contracts.recorder import RecorderEvent, parse_recorder_event
from verbatim.platform.clients import queue_client

T = TypeVar("T")

WINDOWS_INSTANCE = {
    "RECORDER_MEDIA_PLATFORM": "windows",
    "RECORDER_CERTIFICATE_THUMBPRINT": "ABCDEF0123456789",
    "RECORDER_SERVICE_FQDN": "rec.contoso.example",
    "RECORDER_MEDIA_PUBLIC_PORT": 20001,
    "RECORDER_MEDIA_PUBLIC_IP": "203.0.113.10",
}


def recorder_settings(azurite: Azurite, platform: FakePlatform, state_dir: Path, **overrides: Any) -> RecorderSettings:
    storage = azurite.connection_string
    values: dict[str, Any] = {
        **platform.recorder_env(),
        "AzureWebJobsStorage": storage,
        "RECORDINGS_STORAGE": storage,
        "RECORDER_EVENTS_QUEUE": f"events-{uuid.uuid4().hex[:10]}",
        "CAPTURES_CONTAINER": f"rec-{uuid.uuid4().hex[:10]}",
        "RECORDER_STATE_DIR": str(state_dir),
        "RECORDER_INSTANCE_ID": f"rec-{uuid.uuid4().hex[:6]}",
        "RECORDER_LISTEN_PORT": free_port(),
        "RECORDER_MEDIA_PORT": free_port(),
        "RECORDER_HEARTBEAT_SECONDS": 1,
        **overrides,
    }
    return RecorderSettings.model_validate(values)


@asynccontextmanager
async def running_recorder(settings: RecorderSettings, *, media: MediaPlatform | None = None) -> AsyncIterator[Runtime]:
    """Build the recorder, serve its routes on `settings.listen_port`, and shut it down afterwards."""
    runtime = await build(settings, media=media)
    runner = web.AppRunner(runtime.app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.listen_host, settings.listen_port).start()
    try:
        yield runtime
    finally:
        await runtime.recorder.shutdown(5.0)
        await runner.cleanup()
        await runtime.media.stop()
        await runtime.calls.aclose()
        await runtime.http.aclose()


async def on_platform(platform: FakePlatform, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the platform's own loop and await its result from the test's loop."""
    async with asyncio.timeout(30.0):
        return await asyncio.wrap_future(platform.submit(coroutine))


def url_of(settings: RecorderSettings) -> str:
    return f"http://{settings.listen_host}:{settings.listen_port}"


def events_of(settings: RecorderSettings) -> list[RecorderEvent]:
    """Every event on the recorder's queue so far (peeked, left in place), in sequence order."""
    queue = queue_client(settings.runtime_storage_connection, settings.recorder_events_queue)
    try:
        messages = queue.peek_messages(max_messages=32)
    except ResourceNotFoundError:
        return []
    events = [parse_recorder_event(message.content) for message in messages]
    return sorted(events, key=lambda event: (event.recording_id, event.sequence))
