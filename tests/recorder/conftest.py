"""Recorder fixtures: the test-side Teams platform, and real recorder processes started with `launch_argv`."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import QueueClient

from devstack.emulators import AzuritePorts, azurite
from devstack.processes import ManagedProcess, free_port, http_ready
from devstack.testkit.teams_platform import FakePlatform
from recorder_vm import launch_argv
from tests.conftest import Azurite
from verbatim.contracts.recorder import RecorderEvent, parse_recorder_event
from verbatim.platform.clients import queue_client
from verbatim.platform.settings import StorageConnection

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakePlatform]:
    fake = FakePlatform(tmp_path_factory.mktemp("platform"))
    fake.start()
    yield fake
    fake.stop()


@dataclass
class RecorderProcess:
    """A recorder started as its own process, and the storage it writes to."""

    process: ManagedProcess
    port: int
    media_port: int
    state_dir: Path
    instance_id: str
    connection_string: str
    events_queue: str
    container: str
    env: dict[str, str] = field(default_factory=dict)
    event_log: EventLog | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.url}/health", timeout=5)

    def kill(self) -> None:
        """SIGKILL: the crash case (nothing gets to commit)."""
        os.killpg(self.pid, signal.SIGKILL)
        assert self.process.process is not None
        self.process.process.wait(timeout=10)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM: a graceful shutdown; returns the exit code."""
        assert self.process.process is not None
        os.killpg(self.pid, signal.SIGTERM)
        return self.process.process.wait(timeout=timeout)

    def container_client(self) -> ContainerClient:
        return BlobServiceClient.from_connection_string(self.connection_string).get_container_client(self.container)

    def queue(self) -> QueueClient:
        return queue_client(
            StorageConnection(name="AzureWebJobsStorage", connection_string=self.connection_string), self.events_queue
        )

    def events(self) -> list[RecorderEvent]:
        """Every event this recorder has published so far, in sequence order."""
        return self._events.seen()

    @property
    def _events(self) -> EventLog:
        if self.event_log is None:
            self.event_log = EventLog(self.queue())
        return self.event_log


class EventLog:
    """What a recorder published on its events queue, kept on the test's side.

    A queue's peek shows at most 32 messages, so a recorder that published more (heartbeat-driven events of
    earlier calls on a shared queue) would hide the newest ones; this reads every message off the queue
    (nothing else consumes a test recorder's queue) and keeps them all."""

    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue
        self._seen: list[RecorderEvent] = []

    def seen(self) -> list[RecorderEvent]:
        self._collect()
        return sorted(self._seen, key=lambda event: (event.recording_id, event.sequence))

    def _collect(self) -> None:
        try:
            for message in self._queue.receive_messages(messages_per_page=32, visibility_timeout=30):
                event = parse_recorder_event(message.content)
                self._seen.append(event)
                self._queue.delete_message(message)
        except ResourceNotFoundError:
            return


RecorderFactory = Callable[..., RecorderProcess]


@contextmanager
def recorder_starter(azurite_service: Azurite, platform: FakePlatform, tmp_path: Path) -> Iterator[RecorderFactory]:
    started: list[RecorderProcess] = []

    def start(
        *, connection_string: str | None = None, instance_id: str | None = None, **settings: str
    ) -> RecorderProcess:
        port, media_port = free_port(), free_port()
        instance = instance_id or f"rec-{uuid.uuid4().hex[:6]}"
        state_dir = tmp_path / instance
        storage = connection_string or azurite_service.connection_string
        queue_name = settings.pop("RECORDER_EVENTS_QUEUE", f"events-{uuid.uuid4().hex[:10]}")
        container = settings.pop("CAPTURES_CONTAINER", f"rec-{uuid.uuid4().hex[:10]}")
        env = {
            **platform.recorder_env(),
            "AzureWebJobsStorage": storage,
            "RECORDINGS_STORAGE": storage,
            "RECORDER_EVENTS_QUEUE": queue_name,
            "CAPTURES_CONTAINER": container,
            "RECORDER_HEARTBEAT_SECONDS": "1",
            "RECORDER_STOP_DRAIN_SECONDS": "10",
            "VERBATIM_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(REPO_ROOT),
            **settings,
        }
        process = ManagedProcess(
            name=f"recorder-{instance}",
            argv=launch_argv(
                port=port, media_port=media_port, state_dir=state_dir, instance_id=instance, python=sys.executable
            ),
            ready=http_ready(f"http://127.0.0.1:{port}/health/live", ok=lambda status: status == 200),
            env=env,
            cwd=REPO_ROOT,
            log_path=state_dir / "recorder.log",
            ports=(port, media_port),
            startup_timeout=30,
        )
        process.start()
        recorder = RecorderProcess(process, port, media_port, state_dir, instance, storage, queue_name, container, env)
        started.append(recorder)
        try:
            process.wait_ready()
        except BaseException:
            process.stop()
            raise
        return recorder

    try:
        yield start
    finally:
        for recorder in started:
            recorder.process.stop(timeout=30)


@pytest.fixture
def start_recorder(azurite_service: Azurite, platform: FakePlatform, tmp_path: Path) -> Iterator[RecorderFactory]:
    """Start recorder processes for one test (stopped by PID afterwards)."""
    with recorder_starter(azurite_service, platform, tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def start_module_recorder(
    azurite_service: Azurite, platform: FakePlatform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RecorderFactory]:
    """Start recorder processes shared by a module's tests."""
    with recorder_starter(azurite_service, platform, tmp_path_factory.mktemp("recorders")) as start:
        yield start


def log_of(recorder: RecorderProcess) -> str:
    path = recorder.state_dir / "recorder.log"
    return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class PrivateAzurite:
    ports: AzuritePorts
    data_dir: Path
    log: Path
    process: ManagedProcess | None = None
    started_once: bool = False

    def start(self) -> None:
        self.process = azurite(self.ports, self.data_dir, self.log)
        if self.started_once:
            # The ports were ours a moment ago; connections in TIME_WAIT make the free-port probe (bind without
            # SO_REUSEADDR) say "taken" although Azurite (node, SO_REUSEADDR) can listen again.
            self.process.ports = ()
        self.started_once = True
        self.process.start()
        self.process.wait_ready()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


@pytest.fixture
def private_azurite(tmp_path: Path) -> Iterator[PrivateAzurite]:
    service = PrivateAzurite(
        AzuritePorts(blob=free_port(), queue=free_port(), table=free_port()), tmp_path / "data", tmp_path / "a.log"
    )
    service.start()
    yield service
    service.stop()
